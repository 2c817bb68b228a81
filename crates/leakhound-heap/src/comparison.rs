//! The Comparison view (`heapsnapshot-format.md` §3.8; DevTools `aggregatesForDiff`,
//! `calculateSnapshotDiff`, `calculateDiffForClass`), plus the retained-size delta per
//! class that DevTools does not show.

use std::collections::HashMap;

use crate::class_of::ClassOf;
use crate::classes::{classify, js_cmp};
use crate::ids::NodeId;
use crate::snapshot::HeapSnapshot;
use crate::summary::summary_with;

/// One row of the Comparison view (current against base). Sizes are adjusted self sizes
/// in bytes, except `retained_size_delta_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComparisonRow {
    /// Class name (the current snapshot's, or the base's for classes gone from current).
    pub class_name: String,
    /// DevTools class key (the join key).
    pub class_key: String,
    /// `# New`: objects of the class whose id is not in the base.
    pub new_count: u64,
    /// `# Deleted`: objects of the base whose id is not in current.
    pub deleted_count: u64,
    /// `# Delta`: new − deleted.
    pub delta_count: i64,
    /// `Alloc. Size`: self sizes of the new objects.
    pub alloc_size_bytes: u64,
    /// `Freed Size`: self sizes of the deleted objects.
    pub freed_size_bytes: u64,
    /// `Size Delta`: alloc − freed.
    pub size_delta_bytes: i64,
    /// Retained size of the class in current minus in base, each summed over the class's
    /// top-most instances (no double counting; the Summary's Retained Size column).
    pub retained_size_delta_bytes: i64,
}

struct Aggregate {
    name: String,
    key: String,
    /// (id, self size, node) sorted by id.
    members: Vec<(u32, u64, NodeId)>,
}

fn aggregates(s: &HeapSnapshot, classes: &[crate::snapshot::Class], class_of: &ClassOf) -> Vec<Aggregate> {
    let mut row_of: Vec<u32> = vec![u32::MAX; classes.len()];
    let mut out: Vec<Aggregate> = Vec::new();
    for o in 0..s.node_count() as NodeId {
        let size = s.self_size(o);
        if size == 0 {
            continue;
        }
        let c = class_of.get(o) as usize;
        if row_of[c] == u32::MAX {
            row_of[c] = out.len() as u32;
            out.push(Aggregate {
                name: classes[c].name.clone(),
                key: classes[c].key(),
                members: Vec::new(),
            });
        }
        out[row_of[c] as usize].members.push((s.id(o), size, o));
    }
    for a in &mut out {
        a.members.sort_by_key(|m| m.0);
    }
    out
}

/// The Comparison view of `current` against `base`, in DevTools' default order (Alloc.
/// Size descending, then class name, then engine order). Both snapshots must come from
/// one process (ids are matched); the caller checks that.
pub fn compare(current: &HeapSnapshot, base: &HeapSnapshot) -> Vec<ComparisonRow> {
    // Base objects are classified with the current snapshot's interface definitions.
    let (base_classes, base_class_of) = classify(base, current.interface_definitions());
    let mut base_aggs = aggregates(base, &base_classes, &base_class_of);
    // The base aggregate's name is the class (under the base's own definitions) of its
    // member with the largest id, as DevTools leaves it.
    for a in &mut base_aggs {
        if let Some(&(_, _, o)) = a.members.last() {
            a.name = base.class(o).name.clone();
        }
    }
    let cur_aggs = aggregates(current, &current.classes, &current.class_of);
    let cur_index: HashMap<&str, usize> = cur_aggs.iter().enumerate().map(|(i, a)| (a.key.as_str(), i)).collect();
    let base_keys: HashMap<&str, usize> = base_aggs.iter().enumerate().map(|(i, a)| (a.key.as_str(), i)).collect();

    let cur_summary = summary_with(current, &current.classes, &current.class_of, None);
    let base_summary = summary_with(base, &base_classes, &base_class_of, None);
    let cur_ret: HashMap<&str, u64> = cur_summary
        .iter()
        .map(|r| (r.class_key.as_str(), r.retained_size_bytes))
        .collect();
    let base_ret: HashMap<&str, u64> = base_summary
        .iter()
        .map(|r| (r.class_key.as_str(), r.retained_size_bytes))
        .collect();

    let empty: Vec<(u32, u64, NodeId)> = Vec::new();
    let mut rows = Vec::new();
    let mut push = |key: &str, name: &str, base_members: &[(u32, u64, NodeId)], cur_members: &[(u32, u64, NodeId)]| {
        let (mut i, mut j) = (0, 0);
        let mut row = ComparisonRow {
            class_name: name.to_owned(),
            class_key: key.to_owned(),
            new_count: 0,
            deleted_count: 0,
            delta_count: 0,
            alloc_size_bytes: 0,
            freed_size_bytes: 0,
            size_delta_bytes: 0,
            retained_size_delta_bytes: 0,
        };
        while i < base_members.len() && j < cur_members.len() {
            let (a, b) = (base_members[i], cur_members[j]);
            if a.0 < b.0 {
                row.deleted_count += 1;
                row.freed_size_bytes += a.1;
                i += 1;
            } else if a.0 > b.0 {
                row.new_count += 1;
                row.alloc_size_bytes += b.1;
                j += 1;
            } else {
                i += 1;
                j += 1;
            }
        }
        for a in &base_members[i..] {
            row.deleted_count += 1;
            row.freed_size_bytes += a.1;
        }
        for b in &cur_members[j..] {
            row.new_count += 1;
            row.alloc_size_bytes += b.1;
        }
        if row.new_count == 0 && row.deleted_count == 0 {
            return;
        }
        row.delta_count = row.new_count as i64 - row.deleted_count as i64;
        row.size_delta_bytes = row.alloc_size_bytes as i64 - row.freed_size_bytes as i64;
        row.retained_size_delta_bytes =
            cur_ret.get(key).copied().unwrap_or(0) as i64 - base_ret.get(key).copied().unwrap_or(0) as i64;
        rows.push(row);
    };
    for b in &base_aggs {
        match cur_index.get(b.key.as_str()) {
            Some(&ci) => push(&b.key, &cur_aggs[ci].name, &b.members, &cur_aggs[ci].members),
            None => push(&b.key, &b.name, &b.members, &empty),
        }
    }
    for c in &cur_aggs {
        if !base_keys.contains_key(c.key.as_str()) {
            push(&c.key, &c.name, &empty, &c.members);
        }
    }
    rows.sort_by(|a, b| {
        b.alloc_size_bytes
            .cmp(&a.alloc_size_bytes)
            .then_with(|| js_cmp(&a.class_name, &b.class_name))
    });
    rows
}
