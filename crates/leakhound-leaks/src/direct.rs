//! A holder's direct elements: the objects whose retainer is the holder (a listener in an
//! emitter's array, a value in a Map), reached from it through V8's own objects only (a
//! Map's table, an array's element store) or through links of their own kind (a linked
//! list of Timeouts). What a user counts is these, not everything they bring along: one
//! logger per request is one listener per request, whatever number of bound functions
//! each logger holds. The finder picks a cluster's roots among them in the last snapshot
//! and counts them in every snapshot with the same rule, so its numbers agree.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};
use rayon::prelude::*;

use crate::nodes::{is_internal, is_reportable, same_kind};
use crate::timers::TimerLists;
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
/// nearer one's. `wanted` must select whole kinds (every node of a kind or none, as
/// [`Kinds`] does); the fewer nodes it selects, the faster the walk.
///
/// `is_new` and `wanted` are asked about every node once, on every core of the rayon
/// pool; the walk along the traces that follows is sequential.
pub(crate) fn direct_holders(
    s: &HeapSnapshot,
    traces: &Traces,
    is_holder: &[bool],
    is_new: &(dyn Fn(NodeId) -> bool + Sync),
    wanted: &(dyn Fn(NodeId) -> bool + Sync),
) -> Vec<NodeId> {
    let n = s.node_count();
    // `is_timer_link` by string index: one comparison per node instead of a string's.
    let links: Vec<u32> = ["_idleNext", "_idlePrev"]
        .iter()
        .flat_map(|t| s.strings().find_all(t))
        .collect();
    let is_link = |e| s.edge_type(e) == EdgeType::Property && links.contains(&s.edge_name_or_index(e));
    // What each node is, on every core: the walk below is sequential (a node's answer
    // comes from its parent's) and touches only these bits and the trace.
    let flags: Vec<u8> = (0..n as NodeId)
        .into_par_iter()
        .map(|o| {
            let mut f = 0;
            if is_internal(s, o) || (is_new(o) && !is_reportable(s, o)) {
                f |= PASSABLE;
            }
            if wanted(o) {
                f |= WANTED;
                if traces.parent_edge(o).is_some_and(is_link) {
                    f |= TIMER_LINK;
                }
            }
            f
        })
        .collect();
    // The first node above each node on its trace that is a holder or cannot be passed.
    let mut up = vec![NONE; n];
    let mut direct = vec![NONE; n];
    let mut timer_lists = TimerLists::default();
    for &o in traces.order() {
        let Some(p) = traces.parent(o) else { continue };
        let passable = !is_holder[p as usize] && flags[p as usize] & PASSABLE != 0;
        up[o as usize] = if passable { up[p as usize] } else { p };
        if flags[o as usize] & WANTED == 0 {
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
            && flags[o as usize] & TIMER_LINK != 0
            && let Some(l) = timer_lists.list_of(s, o)
            && is_holder[l as usize]
        {
            direct[o as usize] = l;
        }
    }
    direct
}

/// [`direct_holders`]' per-node bits: the node can be passed through (an internal, or a
/// new object that cannot be reported) unless it is a holder.
const PASSABLE: u8 = 1;
/// `wanted` selects the node.
const WANTED: u8 = 2;
/// The node's trace edge is a timer list link.
const TIMER_LINK: u8 = 4;

/// A set of whole kinds as [`same_kind`] tells them apart, coarser where that is cheap:
/// every string, every function, and objects by DevTools class. A node of a kind in the
/// set is in it, so it selects whole kinds, as [`direct_holders`]' `wanted` must.
pub(crate) struct Kinds {
    /// By class index.
    classes: Vec<bool>,
    strings: bool,
    functions: bool,
}

impl Kinds {
    /// The kinds of `nodes`.
    pub(crate) fn of(s: &HeapSnapshot, nodes: impl Iterator<Item = NodeId>) -> Kinds {
        let mut k = Kinds {
            classes: vec![false; s.classes().len()],
            strings: false,
            functions: false,
        };
        for o in nodes {
            if s.is_string(o) {
                k.strings = true;
            } else if s.node_type(o) == NodeType::Closure {
                k.functions = true;
            } else {
                k.classes[s.class_index(o) as usize] = true;
            }
        }
        k
    }

    /// Whether `o`'s kind is in the set.
    pub(crate) fn contains(&self, s: &HeapSnapshot, o: NodeId) -> bool {
        if s.is_string(o) {
            self.strings
        } else if s.node_type(o) == NodeType::Closure {
            self.functions
        } else {
            self.classes[s.class_index(o) as usize]
        }
    }
}
