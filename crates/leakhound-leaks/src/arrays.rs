//! Old collections of primitives whose backing store grows at every step: Arrays (their
//! element store) and Maps and Sets (their hash table). Numbers and booleans have no node
//! of their own, so no new object appears and no cluster finds them.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::trace_steps;
use crate::consistency::IdIndex;
use crate::holder::{holder_label, holder_owner_source, is_own_instrumentation};
use crate::model::{Cluster, LeakOptions, PerRequest};
use crate::pattern::Pattern;
use crate::source::{ScriptMap, SourceRef};
use crate::trace::Traces;

/// `o`'s self size plus that of the node its internal edge `edge` leads to: the backing
/// store, wherever the analysis counted it (DevTools moves an owned store's size into
/// its owner).
fn store_bytes(s: &HeapSnapshot, o: NodeId, edge: &str) -> u64 {
    let store = s
        .edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == edge)
        .map(|e| s.edge_target(e));
    s.self_size(o) + store.map_or(0, |t| s.self_size(t))
}

/// A collection of primitives, as its backing store shows it.
#[derive(Clone, Copy)]
struct Collection {
    /// Its DevTools class: `Array`, `Map` or `Set`.
    class: &'static str,
    /// The internal edge to its backing store.
    store_edge: &'static str,
    /// Bytes the store takes per slot of capacity: 8 for an Array's element; for V8's
    /// ordered hash tables, half a bucket plus the entry (key, value, chain link): 28
    /// for a Map, 20 for a Set (`OrderedHashMap`/`OrderedHashSet`).
    slot_bytes: u64,
    /// What a slot is called in the report.
    unit: &'static str,
}

const ARRAY: Collection = Collection {
    class: "Array",
    store_edge: "elements",
    slot_bytes: 8,
    unit: "(element slot)",
};
const MAP: Collection = Collection {
    class: "Map",
    store_edge: "table",
    slot_bytes: 28,
    unit: "(entry slot)",
};
const SET: Collection = Collection {
    class: "Set",
    store_edge: "table",
    slot_bytes: 20,
    unit: "(entry slot)",
};

/// Old Arrays of primitives (numbers, booleans: values with no node of their own) whose
/// element store grows at every step, and old Maps and Sets whose hash table does (a
/// `Map` of counters keyed by a new number per request). Counts are estimated from the
/// store's bytes, capacity included: a hash table doubles as it fills, so its count moves
/// in steps. Collections that already name a cluster (`known`) are left to it.
pub(crate) fn growing_primitive_collections(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &Traces,
    is_new: &[bool],
    known: &std::collections::HashSet<String>,
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> Vec<Cluster> {
    let last_i = snaps.len() - 1;
    let s = snaps[last_i];
    let kinds: Vec<(Vec<u32>, Collection)> = [ARRAY, MAP, SET]
        .into_iter()
        .map(|c| (s.strings().find_all(c.class), c))
        .collect();
    let mut out = Vec::new();
    for o in 0..s.node_count() as NodeId {
        if is_new[o as usize] || s.node_type(o) != NodeType::Object || !traces.is_reached(o) {
            continue;
        }
        let name = s.raw_name_index(o);
        let Some(&(_, kind)) = kinds.iter().find(|(names, _)| names.contains(&name)) else {
            continue;
        };
        // An Array with elements of its own is the object finder's: what it holds is new.
        if kind.class == ARRAY.class && s.edges(o).any(|e| s.edge_type(e) == EdgeType::Element) {
            continue;
        }
        let id = s.id(o);
        let sizes: Option<Vec<u64>> = snaps
            .iter()
            .zip(ids)
            .map(|(snap, ix)| ix.get(id).map(|x| store_bytes(snap, x, kind.store_edge)))
            .collect();
        let Some(sizes) = sizes else { continue };
        let grows = (1..snaps.len()).all(|k| sizes[k] > sizes[k - 1]);
        let growth = sizes[last_i].saturating_sub(sizes[1]);
        if !grows || growth < 1024 || growth / kind.slot_bytes < opts.min_growth {
            continue;
        }
        let label = holder_label(s, traces, o);
        if known.contains(&label) || is_own_instrumentation(s, traces, o) {
            continue;
        }
        let counts: Vec<u64> = sizes.iter().map(|b| b / kind.slot_bytes).collect();
        let per_request = opts.requests_between(1, last_i).map(|req| PerRequest {
            count: growth as f64 / kind.slot_bytes as f64 / req,
            retained_size_bytes: growth as f64 / req,
            objects: Vec::new(),
            string_bytes: None,
        });
        let is_root = vec![false; s.node_count()];
        let pattern = Pattern::UNBOUNDED_COLLECTION;
        let sources: Vec<SourceRef> = holder_owner_source(s, traces, scripts, o).into_iter().collect();
        out.push(Cluster {
            holder: label,
            holder_class: kind.class.into(),
            holder_id: id,
            holder_nodes: 1,
            // Estimated from the store's bytes (capacity included).
            root_class: kind.unit.into(),
            unit: kind.unit.into(),
            pattern,
            count: growth / kind.slot_bytes,
            object_count: 0,
            retained_size_bytes: s.retained_size(o),
            counts_per_snapshot: counts,
            holder_retained_per_snapshot: snaps
                .iter()
                .zip(ids)
                .map(|(snap, ix)| {
                    ix.get(id)
                        .filter(|_| snap.is_fully_analyzed())
                        .map(|x| snap.retained_size(x))
                })
                .collect(),
            objects: Vec::new(),
            brought_along: Vec::new(),
            source: sources.first().cloned(),
            sources,
            fix_hint: pattern.fix_hint(),
            trace: trace_steps(s, traces, o, o, &is_root),
            listener_count: None,
            per_request,
            external_share: 0.0,
            allocation_stacks: Vec::new(),
            string_bytes_per_snapshot: Vec::new(),
            source_unknown_why: None,
            app_scripts: Vec::new(),
        });
    }
    out
}
