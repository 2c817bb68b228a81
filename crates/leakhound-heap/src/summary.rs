//! The Summary view (`heapsnapshot-format.md` §3.7; DevTools `buildAggregates` and
//! `calculateClassesRetainedSize`).

use crate::class_of::ClassOf;
use crate::classes::js_cmp;
use crate::ids::NodeId;
use crate::snapshot::{Class, HeapSnapshot};

/// One row of the Summary view: all nodes of one class with a non-zero self size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Index into the class table the row was built from.
    pub class_index: u32,
    /// Class name (the "Constructor" column).
    pub class_name: String,
    /// DevTools class key (see [`Class::key`]).
    pub class_key: String,
    /// Number of nodes.
    pub count: u64,
    /// Minimum distance over the nodes.
    pub distance: i32,
    /// Sum of adjusted self sizes, bytes.
    pub self_size_bytes: u64,
    /// Sum of retained sizes over the top-most instances (no node dominated by another of
    /// the same class counts), bytes.
    pub retained_size_bytes: u64,
}

/// Summary rows in DevTools' default order: retained size descending, then class name
/// ascending (JS string order), then order of first appearance.
pub fn summary(s: &HeapSnapshot) -> Vec<SummaryRow> {
    summary_with(s, &s.classes, &s.class_of, None)
}

/// Summary rows of only the nodes for which `filter` holds (DevTools' Summary filters,
/// e.g. "objects allocated between snapshots").
pub fn summary_filtered(s: &HeapSnapshot, filter: &dyn Fn(NodeId) -> bool) -> Vec<SummaryRow> {
    summary_with(s, &s.classes, &s.class_of, Some(filter))
}

/// Summary over an explicit classification (`classes`, and `class_of` per node).
pub(crate) fn summary_with(
    s: &HeapSnapshot,
    classes: &[Class],
    class_of: &ClassOf,
    filter: Option<&dyn Fn(NodeId) -> bool>,
) -> Vec<SummaryRow> {
    let pass = |o: NodeId| filter.is_none_or(|f| f(o));
    let mut row_of: Vec<u32> = vec![u32::MAX; classes.len()];
    let mut rows: Vec<SummaryRow> = Vec::new();
    for o in 0..s.node_count() as NodeId {
        let size = s.self_size(o);
        if size == 0 || !pass(o) {
            continue;
        }
        let c = class_of.get(o);
        let d = s.distance(o);
        let slot = &mut row_of[c as usize];
        if *slot == u32::MAX {
            *slot = rows.len() as u32;
            let class = &classes[c as usize];
            rows.push(SummaryRow {
                class_index: c,
                class_name: class.name.clone(),
                class_key: class.key(),
                count: 1,
                distance: d,
                self_size_bytes: size,
                retained_size_bytes: 0,
            });
        } else {
            let r = &mut rows[*slot as usize];
            r.count += 1;
            r.self_size_bytes += size;
            r.distance = r.distance.min(d);
        }
    }
    // Retained: DFS over the dominator tree; a node counts for its class unless a
    // dominator-tree ancestor of the same class already counted.
    let mut seen = vec![false; classes.len()];
    let mut list: Vec<NodeId> = vec![s.root()];
    let mut sizes: Vec<usize> = Vec::new();
    let mut class_stack: Vec<u32> = Vec::new();
    while let Some(o) = list.pop() {
        let c = class_of.get(o);
        let dominated = s.dominated(o);
        if !seen[c as usize] && s.self_size(o) > 0 && pass(o) {
            let r = row_of[c as usize];
            if r != u32::MAX {
                rows[r as usize].retained_size_bytes += s.retained_size(o);
            }
            if !dominated.is_empty() {
                seen[c as usize] = true;
                sizes.push(list.len());
                class_stack.push(c);
            }
        }
        list.extend_from_slice(dominated);
        while sizes.last() == Some(&list.len()) {
            sizes.pop();
            if let Some(c) = class_stack.pop() {
                seen[c as usize] = false;
            }
        }
    }
    // Stable sort keeps first-appearance order among ties.
    rows.sort_by(|a, b| {
        b.retained_size_bytes
            .cmp(&a.retained_size_bytes)
            .then_with(|| js_cmp(&a.class_name, &b.class_name))
    });
    rows
}
