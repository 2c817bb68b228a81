//! A holder's direct elements: the objects whose retainer is the holder (a listener in an
//! emitter's array, a value in a Map), reached from it through V8's own objects only (a
//! Map's table, an array's element store) or through links of their own kind (a linked
//! list of Timeouts). What a user counts is these, not everything they bring along: one
//! logger per request is one listener per request, whatever number of bound functions
//! each logger holds. The finder picks a cluster's roots among them in the last snapshot
//! and counts them in every snapshot with the same rule, so its numbers agree.

use leakhound_heap::{HeapSnapshot, NodeId};

use crate::nodes::{is_internal, is_reportable, same_kind};
use crate::timers::{TimerLists, is_timer_link};
use crate::trace::Traces;

/// No node.
pub(crate) const NONE: NodeId = NodeId::MAX;

/// For every node `o` of `s` that `wanted` selects: the holder (a node `is_holder` marks)
/// `o` is a direct element of, or [`NONE`]. On `o`'s retainer trace, the nodes between the
/// holder and `o` are all V8 internals, objects `is_new` says were allocated after the
/// baseline that cannot be reported (new internals without a class of their own), or
/// objects of `o`'s own kind ([`same_kind`]) that are direct elements themselves; a timer
/// on a timer list reached through another object's timer is its list's (`timers.rs`). A
/// holder is never passed through: an element of a holder held by another holder is the
/// nearer one's. `wanted` must select whole kinds (every node of a kind or none).
pub(crate) fn direct_holders(
    s: &HeapSnapshot,
    traces: &Traces,
    is_holder: &[bool],
    is_new: &dyn Fn(NodeId) -> bool,
    wanted: &dyn Fn(NodeId) -> bool,
) -> Vec<NodeId> {
    let n = s.node_count();
    // The first node above each node on its trace that is a holder or cannot be passed.
    let mut up = vec![NONE; n];
    let mut direct = vec![NONE; n];
    let mut timer_lists = TimerLists::default();
    for &o in traces.order() {
        let Some(p) = traces.parent(o) else { continue };
        let passable = !is_holder[p as usize] && (is_internal(s, p) || (is_new(p) && !is_reportable(s, p)));
        up[o as usize] = if passable { up[p as usize] } else { p };
        if !wanted(o) {
            continue;
        }
        let q = up[o as usize];
        if q == NONE {
            continue;
        }
        direct[o as usize] = if is_holder[q as usize] {
            q
        } else if same_kind(s, q, o) {
            // Traces list parents first: a link above is already settled.
            direct[q as usize]
        } else {
            NONE
        };
        // A timer reached along its timer list from another object's timer is its list's
        // element, as `find_holder` says.
        if direct[o as usize] == NONE
            && traces.parent_edge(o).is_some_and(|e| is_timer_link(s, e))
            && let Some(l) = timer_lists.list_of(s, o)
            && is_holder[l as usize]
        {
            direct[o as usize] = l;
        }
    }
    direct
}
