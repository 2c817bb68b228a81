//! Objects kept only by native handles: a socket, a server, a file watcher or a zlib
//! stream is kept alive by its libuv handle, which Node reports in a heap snapshot as a
//! GC root of its own (a `Node / TCPSocketWrap` node under the snapshot's root, its
//! `native_to_javascript` edge to the JS wrapper, whose `owner_symbol` property is the
//! `Socket`). Every such handle is its own root, so no dominator and no holder names a
//! container: the finder's walk up from what accumulates reaches the root and stops.
//! Here the handles are grouped by their kind and the JS type they keep (the wrapper's
//! owner, else the wrapper), counted in every snapshot, and reported when that number
//! grows at every step from the target on.

use std::collections::HashMap;

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::{build_cluster, cluster_facts};
use crate::model::{Cluster, LeakOptions, NotGrowing};
use crate::pattern::{PATTERNS, Shape, classify};
use crate::source::ScriptMap;
use crate::trace::Traces;

/// The prefix Node gives its embedder nodes' names.
const NODE_PREFIX: &str = "Node / ";

/// The handles under the snapshot's root: for each, the handle node and what it keeps
/// (the JS wrapper's owner, else the wrapper).
fn handles(s: &HeapSnapshot) -> Vec<(NodeId, NodeId)> {
    let mut out = Vec::new();
    for e in s.edges(s.root()) {
        let h = s.edge_target(e);
        if !matches!(s.node_type(h), NodeType::Synthetic | NodeType::Native) || !s.raw_name(h).starts_with(NODE_PREFIX)
        {
            continue;
        }
        let Some(wrapper) = s
            .edges(h)
            .find(|&x| s.edge_type(x) == EdgeType::Internal && s.edge_name(x) == "native_to_javascript")
            .map(|x| s.edge_target(x))
            .filter(|&w| s.node_type(w) == NodeType::Object)
        else {
            continue;
        };
        let owner = s
            .edges(wrapper)
            .find(|&x| s.edge_type(x) == EdgeType::Property && s.edge_name(x) == "<symbol owner_symbol>")
            .map(|x| s.edge_target(x))
            .filter(|&o| s.node_type(o) == NodeType::Object);
        out.push((h, owner.unwrap_or(wrapper)));
    }
    out
}

/// The handle kind as a user reads it: the embedder node's name without `Node / `.
fn kind_of(s: &HeapSnapshot, h: NodeId) -> &str {
    s.raw_name(h).strip_prefix(NODE_PREFIX).unwrap_or(s.raw_name(h))
}

/// Groups of leaked objects kept by native handles, by handle kind and kept class, as
/// clusters when their number grows at every step from the target on (by at least
/// `opts.min_growth`), else as not growing. `leaked` marks the last snapshot's leaked
/// objects.
pub(crate) fn handle_clusters(
    snaps: &[&HeapSnapshot],
    traces: &Traces,
    leaked: &[bool],
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> (Vec<Cluster>, Vec<NotGrowing>) {
    let s = snaps[snaps.len() - 1];
    // (kind, kept class) -> (first handle, kept objects that are leaked)
    let mut groups: Vec<((String, String), NodeId, Vec<NodeId>)> = Vec::new();
    let mut group_of_key: HashMap<(String, String), usize> = HashMap::new();
    let mut group_of_handle: HashMap<NodeId, usize> = HashMap::new();
    for (h, kept) in handles(s) {
        if !leaked[kept as usize] {
            continue;
        }
        let key = (kind_of(s, h).to_owned(), s.class(kept).name.clone());
        let g = *group_of_key.entry(key.clone()).or_insert_with(|| {
            groups.push((key, h, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push(kept);
        group_of_handle.insert(h, g);
    }
    if groups.iter().all(|g| (g.2.len() as u64) < opts.min_growth.max(2)) {
        return (Vec::new(), Vec::new());
    }
    // The leaked objects whose trace starts at a handle of each group.
    let mut objects: Vec<Vec<NodeId>> = vec![Vec::new(); groups.len()];
    let mut under: Vec<u32> = vec![u32::MAX; s.node_count()];
    for &o in traces.order() {
        let Some(p) = traces.parent(o) else { continue };
        let g = if p == s.root() {
            group_of_handle.get(&o).map_or(u32::MAX, |&g| g as u32)
        } else {
            under[p as usize]
        };
        under[o as usize] = g;
        if g != u32::MAX && leaked[o as usize] {
            objects[g as usize].push(o);
        }
    }
    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    for (g, ((kind, class), first, mut kept)) in groups.into_iter().enumerate() {
        kept.sort_unstable();
        let counts: Vec<u64> = snaps
            .iter()
            .map(|snap| {
                handles(snap)
                    .into_iter()
                    .filter(|&(h, k)| kind_of(snap, h) == kind && snap.class(k).name == class)
                    .count() as u64
            })
            .collect();
        let last_i = counts.len() - 1;
        let growing = (2..counts.len()).all(|k| counts[k] > counts[k - 1])
            && counts[last_i].saturating_sub(counts[1]) >= opts.min_growth;
        let label = format!("{kind} handles");
        if !growing {
            not_growing.push(NotGrowing {
                holder: label,
                root_class: class,
                counts_per_snapshot: counts,
            });
            continue;
        }
        let objs = &objects[g];
        let mut cluster = build_cluster(
            s,
            traces,
            scripts,
            &label,
            &class,
            false,
            &[(first, &kept[..], &objs[..])],
            counts,
            vec![None; snaps.len()],
            opts,
            PATTERNS,
        );
        let sample = kept
            .iter()
            .copied()
            .max_by_key(|&r| (s.retained_size(r), std::cmp::Reverse(r)))
            .unwrap_or(first);
        let mut facts = cluster_facts(
            s,
            traces,
            first,
            &label,
            sample,
            cluster.count,
            cluster.retained_size_bytes,
            cluster.external_share,
        );
        facts.shape = Shape::NativeHandle;
        cluster.holder_class = s.raw_name(first).to_owned();
        // The trace's handle (the root's child) is the holder of its sample.
        for (k, t) in cluster.trace.iter_mut().enumerate() {
            t.is_holder = k == 1;
        }
        facts.kept_classes = cluster.objects.iter().map(|c| c.class_name.as_str()).collect();
        let pattern = classify(PATTERNS, &facts);
        cluster.pattern = pattern;
        cluster.fix_hint = pattern.fix_hint();
        clusters.push(cluster);
    }
    (clusters, not_growing)
}
