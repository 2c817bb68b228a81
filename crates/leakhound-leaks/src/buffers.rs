//! A variable or property whose Buffer, typed array or ArrayBuffer is larger at every
//! snapshot: `log = Buffer.concat([log, line])` per request allocates a new, longer
//! Buffer each time and drops the old one, so no object stays alive from one snapshot to
//! the next and no cluster of leaked objects finds it, while the bytes it keeps grow
//! without bound (off the JS heap, a few dozen bytes a request: under the floor's noise).

use std::collections::HashSet;

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::{HolderGrowth, holder_growth_cluster};
use crate::consistency::IdIndex;
use crate::holder::{holder_label, is_own_instrumentation};
use crate::model::{Cluster, LeakOptions, PerRequest};
use crate::nodes::is_internal;
use crate::pattern::Pattern;
use crate::source::ScriptMap;
use crate::trace::Traces;

/// The classes whose bytes are an ArrayBuffer's backing store.
const BYTE_CLASSES: &[&str] = &[
    "Buffer",
    "ArrayBuffer",
    "SharedArrayBuffer",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "DataView",
];

/// Least growth, in bytes, from the target to the last snapshot.
const MIN_GROWTH_BYTES: u64 = 1024;

/// The node an internal edge named `name` of `o` leads to.
fn internal(s: &HeapSnapshot, o: NodeId, name: &str) -> Option<NodeId> {
    s.edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == name)
        .map(|e| s.edge_target(e))
}

/// Bytes of the backing store of `o`: an ArrayBuffer's, or a view's (a Buffer, a typed
/// array) ArrayBuffer's. A pooled Buffer counts its pool's 8 KiB, which does not grow.
fn backing_bytes(s: &HeapSnapshot, o: NodeId) -> Option<u64> {
    let ab = match s.raw_name(o) {
        "ArrayBuffer" | "SharedArrayBuffer" => o,
        _ => internal(s, o, "buffer")?,
    };
    let store = internal(s, ab, "backing_store")?;
    (s.node_type(store) == NodeType::Native).then(|| s.self_size(store))
}

/// The slot `(owner id, edge type, edge name)` of `e`: a closure variable, or a named
/// property of an object that is not a V8 internal.
fn slot_of(s: &HeapSnapshot, owner: NodeId, e: leakhound_heap::EdgeId) -> Option<(u32, EdgeType, String)> {
    let t = s.edge_type(e);
    let ok = match t {
        EdgeType::Context => true,
        EdgeType::Property => !is_internal(s, owner),
        _ => false,
    };
    ok.then(|| (s.id(owner), t, s.edge_name(e).into_owned()))
}

/// The value of slot `(owner, ty, name)` in `s` (its owner found by id).
fn value_in(s: &HeapSnapshot, ids: &IdIndex, owner: u32, ty: EdgeType, name: &str) -> Option<NodeId> {
    let o = ids.get(owner)?;
    s.edges(o)
        .find(|&e| s.edge_type(e) == ty && s.edge_name(e) == name)
        .map(|e| s.edge_target(e))
}

/// Slots (closure variables, properties) holding a Buffer, typed array or ArrayBuffer
/// whose backing store is larger at every snapshot than at the one before, by at least
/// 1 KiB from the target to the last: one cluster each, in bytes, pattern
/// `external_memory`. Labels in `known` (already a cluster) are left out.
pub(crate) fn growing_buffers(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &Traces,
    known: &HashSet<String>,
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> Vec<Cluster> {
    let last_i = snaps.len() - 1;
    let s = snaps[last_i];
    let names: Vec<u32> = BYTE_CLASSES.iter().flat_map(|c| s.strings().find_all(c)).collect();
    if names.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Each value once, with the slot its own retainer trace names it by (one cluster per
    // value): a pass over the nodes, not over every edge.
    for v in 0..s.node_count() as NodeId {
        if s.node_type(v) != NodeType::Object || !names.contains(&s.raw_name_index(v)) {
            continue;
        }
        let (Some(owner), Some(e)) = (traces.parent(v), traces.parent_edge(v)) else {
            continue;
        };
        let Some((owner_id, ty, name)) = slot_of(s, owner, e) else {
            continue;
        };
        let sizes: Option<Vec<u64>> = snaps
            .iter()
            .zip(ids)
            .map(|(snap, ix)| value_in(snap, ix, owner_id, ty, &name).and_then(|x| backing_bytes(snap, x)))
            .collect();
        let Some(sizes) = sizes else { continue };
        let grows = (1..snaps.len()).all(|k| sizes[k] > sizes[k - 1]);
        let growth = sizes[last_i].saturating_sub(sizes[1]);
        if !grows || growth < MIN_GROWTH_BYTES.max(opts.min_growth) {
            continue;
        }
        let label = holder_label(s, traces, v);
        if known.contains(&label) || is_own_instrumentation(s, traces, v) {
            continue;
        }
        let per_request = opts.requests_between(1, last_i).map(|req| PerRequest {
            count: growth as f64 / req,
            retained_size_bytes: growth as f64 / req,
            objects: Vec::new(),
            string_bytes: None,
        });
        out.push(holder_growth_cluster(
            s,
            traces,
            scripts,
            v,
            HolderGrowth {
                label,
                class: s.class(v).name.clone(),
                unit: "byte",
                pattern: Pattern::EXTERNAL_MEMORY,
                count: growth,
                counts_per_snapshot: sizes.clone(),
                retained_size_bytes: sizes[last_i],
                holder_retained_per_snapshot: snaps
                    .iter()
                    .zip(ids)
                    .map(|(snap, ix)| {
                        value_in(snap, ix, owner_id, ty, &name)
                            .filter(|_| snap.is_fully_analyzed())
                            .map(|x| snap.retained_size(x))
                    })
                    .collect(),
                per_request,
                external_share: 1.0,
            },
        ));
    }
    out
}
