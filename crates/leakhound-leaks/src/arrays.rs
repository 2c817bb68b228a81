//! Old arrays of primitives whose element store grows at every step.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::trace_steps;
use crate::consistency::IdIndex;
use crate::holder::{holder_label, holder_owner_source, is_own_instrumentation};
use crate::model::{Cluster, LeakOptions, PerRequest};
use crate::pattern::Pattern;
use crate::source::{ScriptMap, SourceRef};
use crate::trace::Traces;

/// Bytes of an Array's element store (header included), whatever the analysis level:
/// with the full analysis the store's size was moved into the Array's self size.
pub(crate) fn array_store_bytes(s: &HeapSnapshot, o: NodeId) -> u64 {
    let store = s
        .edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "elements")
        .map(|e| s.edge_target(e));
    s.self_size(o) + store.map_or(0, |t| s.self_size(t))
}

/// Old Arrays of primitives (numbers, booleans: values with no node of their own) whose
/// element store grows at every step: no new object appears, so no cluster finds them.
/// Element counts are estimated at 8 bytes per element.
pub(crate) fn growing_primitive_arrays(
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
    let array_names = s.strings().find_all("Array");
    let mut out = Vec::new();
    for o in 0..s.node_count() as NodeId {
        if is_new[o as usize]
            || s.node_type(o) != NodeType::Object
            || !array_names.contains(&s.raw_name_index(o))
            || !traces.is_reached(o)
            || s.edges(o).any(|e| s.edge_type(e) == EdgeType::Element)
        {
            continue;
        }
        let id = s.id(o);
        let sizes: Option<Vec<u64>> = snaps
            .iter()
            .zip(ids)
            .map(|(snap, ix)| ix.get(id).map(|x| array_store_bytes(snap, x)))
            .collect();
        let Some(sizes) = sizes else { continue };
        let grows = (1..snaps.len()).all(|k| sizes[k] > sizes[k - 1]);
        let growth = sizes[last_i].saturating_sub(sizes[1]);
        if !grows || growth < 1024 || growth / 8 < opts.min_growth {
            continue;
        }
        let label = holder_label(s, traces, o);
        if known.contains(&label) || is_own_instrumentation(s, traces, o) {
            continue;
        }
        let counts: Vec<u64> = sizes.iter().map(|b| b / 8).collect();
        let per_request = opts.requests_between(1, last_i).map(|req| PerRequest {
            count: growth as f64 / 8.0 / req,
            retained_size_bytes: growth as f64 / req,
            objects: Vec::new(),
            string_bytes: None,
        });
        let is_root = vec![false; s.node_count()];
        let pattern = Pattern::UNBOUNDED_COLLECTION;
        let sources: Vec<SourceRef> = holder_owner_source(s, traces, scripts, o).into_iter().collect();
        out.push(Cluster {
            holder: label,
            holder_class: "Array".into(),
            holder_id: id,
            holder_nodes: 1,
            // Estimated from the store's bytes (8 per slot, capacity included).
            root_class: "(element slot)".into(),
            unit: "(element slot)".into(),
            pattern,
            count: growth / 8,
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
            timer_list: None,
        });
    }
    out
}
