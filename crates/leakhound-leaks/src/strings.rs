//! A string grown with `+=` is a tree of V8 strings: each `+=` makes a `ConsString`
//! whose `first` is the string so far and whose `second` is what was appended (V8 flattens
//! a tree into one sequential string when it is read as a whole, and a `slice` keeps its
//! parent through a `SlicedString`). The finder counts the tree's new pieces under the
//! variable that holds its top (the cluster's roots); a person reads a string's size in
//! bytes. Here: the bytes of a string tree in one snapshot (every string node reachable
//! from its top through string-to-string edges, once: a sequential string's self size is
//! its header plus its characters, `SeqOneByteString::SizeFor(length)`, so the sum is the
//! string's length-based size, and its retained size when no piece is shared), and the
//! cluster's growth in bytes.

use std::collections::HashSet;

use leakhound_heap::{HeapSnapshot, NodeId};

use crate::model::{Cluster, LeakOptions};

/// Pieces visited per tree at most (a tree of a million appends is still counted; past
/// this the figure is a lower bound).
const MAX_PIECES: usize = 4_000_000;

/// The bytes of the strings `tops` are the tops of: every string node reachable from them
/// through edges between strings, each counted once, their self sizes summed.
pub(crate) fn string_bytes(s: &HeapSnapshot, tops: &[NodeId]) -> u64 {
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = tops.iter().copied().filter(|&t| s.is_string(t)).collect();
    let mut total = 0u64;
    while let Some(x) = stack.pop() {
        if seen.len() >= MAX_PIECES || !seen.insert(x) {
            continue;
        }
        total += s.self_size(x);
        stack.extend(s.edges(x).map(|e| s.edge_target(e)).filter(|&t| s.is_string(t)));
    }
    total
}

/// Gives a `growing_string` cluster its size in bytes per snapshot (`bytes`, from
/// `count_under_holders`) and its growth in bytes per request (from the target to the
/// last snapshot, as the count's rate is measured).
pub(crate) fn set_string_bytes(cluster: &mut Cluster, bytes: Vec<Option<u64>>, opts: &LeakOptions) {
    if bytes.iter().all(Option::is_none) {
        return;
    }
    let last = bytes.len() - 1;
    if let (Some(p), Some(after_target), Some(target), Some(end)) = (
        cluster.per_request.as_mut(),
        opts.requests_between(1, last),
        bytes.get(1).copied().flatten(),
        bytes[last],
    ) {
        p.string_bytes = Some(end.saturating_sub(target) as f64 / after_target);
    }
    cluster.string_bytes_per_snapshot = bytes;
}
