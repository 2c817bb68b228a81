//! Where the app writes a global: a snapshot has no call stacks, but a function that
//! reads or writes a global variable keeps, in its feedback vector, a weak reference to
//! the global's `PropertyCell` (V8's global load and store ICs), or, for a property of
//! the global read through another object (`globalThis.x[k] = v`), to a `LoadHandler` /
//! `StoreHandler` that keeps the cell. From the value the
//! global holds: its `PropertyCell`, the feedback vectors referring to that cell, their
//! feedback cells, and the closures with those feedback cells, whose locations are the
//! functions that use the global.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::nodes::{fn_name, is_global_object};
use crate::source::{ScriptMap, SourceKind, SourceRef};
use crate::trace::Traces;

/// The functions of the app's own code that use the global variable `holder` hangs off
/// (`holder` or an ancestor on its trace is the value of a property of the global object),
/// best first (the app's own code, then by location); empty when there is none.
pub(crate) fn global_users(s: &HeapSnapshot, traces: &Traces, scripts: &ScriptMap, holder: NodeId) -> Vec<SourceRef> {
    // The value of the global property, and the property's name.
    let mut value = holder;
    let mut name = None;
    for _ in 0..8 {
        let (Some(e), Some(p)) = (traces.parent_edge(value), traces.parent(value)) else {
            break;
        };
        if is_global_object(s, p) && s.edge_type(e) == EdgeType::Property {
            name = Some(s.edge_name(e).into_owned());
            break;
        }
        value = p;
    }
    let Some(name) = name else { return Vec::new() };
    let n = s.node_count() as NodeId;
    let edge_to = |from: NodeId, to: &[bool]| s.edges(from).any(|e| to[s.edge_target(e) as usize]);
    let mut mark = vec![false; s.node_count()];
    mark[value as usize] = true;
    // PropertyCells whose value is it.
    let cells: Vec<bool> = (0..n)
        .map(|o| s.raw_name(o) == "system / PropertyCell" && edge_to(o, &mark))
        .collect();
    if !cells.iter().any(|&c| c) {
        return Vec::new();
    }
    // A load or store through another object (`globalThis.x`, `global.x`) keeps the cell
    // in its IC's handler, which the feedback vector keeps.
    let handlers: Vec<bool> = (0..n)
        .map(|o| {
            cells[o as usize]
                || (matches!(s.raw_name(o), "system / LoadHandler" | "system / StoreHandler") && edge_to(o, &cells))
        })
        .collect();
    let vectors: Vec<bool> = (0..n)
        .map(|o| s.raw_name(o) == "system / FeedbackVector" && edge_to(o, &handlers))
        .collect();
    let feedback_cells: Vec<bool> = (0..n)
        .map(|o| s.raw_name(o) == "system / FeedbackCell" && edge_to(o, &vectors))
        .collect();
    let mut out: Vec<SourceRef> = Vec::new();
    for o in 0..n {
        if s.node_type(o) != NodeType::Closure {
            continue;
        }
        let uses = s.edges(o).any(|e| {
            s.edge_type(e) == EdgeType::Internal
                && s.edge_name(e) == "feedback_cell"
                && feedback_cells[s.edge_target(e) as usize]
        });
        if !uses {
            continue;
        }
        let Some(loc) = s.location(o) else { continue };
        if let Some(r) = scripts.resolve(
            loc,
            format!("function {} (uses global `{name}`)", fn_name(s, o)),
            SourceKind::HolderOwner,
        ) && !out.iter().any(|x| x.location() == r.location())
        {
            out.push(r);
        }
    }
    out.sort_by(|a, b| {
        a.origin_rank()
            .cmp(&b.origin_rank())
            .then(a.path.cmp(&b.path))
            .then(a.line.cmp(&b.line))
    });
    out
}
