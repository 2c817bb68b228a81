//! Node's timer lists: one `TimersList` per duration (in `timerListMap`), the head of a
//! circular list of `Timeout`s linked by `_idleNext` / `_idlePrev`. A pending timer is held
//! by its list; the shortest retainer path may still reach it through another timer of the
//! same duration that some object owns (the http server's 30 s
//! `connectionsCheckingInterval`), which owns that one timer, not the list.

use std::collections::HashMap;

use leakhound_heap::{EdgeId, EdgeType, HeapSnapshot, NodeId};

/// The class of a timer list's head.
pub(crate) const TIMERS_LIST: &str = "TimersList";

/// Whether `e` is a link of a timer list (`_idleNext`, `_idlePrev`).
pub(crate) fn is_timer_link(s: &HeapSnapshot, e: EdgeId) -> bool {
    s.edge_type(e) == EdgeType::Property && matches!(&*s.edge_name(e), "_idleNext" | "_idlePrev")
}

/// The `TimersList` of each timer asked about, found once per list: a walk along
/// `_idleNext` links records its answer for every node it passed, so a whole list costs
/// one walk.
#[derive(Default)]
pub(crate) struct TimerLists {
    list_of: HashMap<NodeId, Option<NodeId>>,
}

impl TimerLists {
    /// The `TimersList` whose circular list `t` is on (following `_idleNext` links);
    /// `None` when the links end, lead back without reaching a list head, or `t` is a
    /// list head itself.
    pub(crate) fn list_of(&mut self, s: &HeapSnapshot, t: NodeId) -> Option<NodeId> {
        let mut path: Vec<NodeId> = Vec::new();
        let mut cur = t;
        let found = loop {
            if let Some(&known) = self.list_of.get(&cur) {
                break known;
            }
            if cur != t && s.class(cur).name == TIMERS_LIST {
                break Some(cur);
            }
            // Links that never reach a head (a cycle not through `t`): no list.
            if path.len() > s.node_count() {
                break None;
            }
            path.push(cur);
            let Some(e) = s
                .edges(cur)
                .find(|&e| is_timer_link(s, e) && s.edge_name(e) == "_idleNext")
            else {
                break None;
            };
            cur = s.edge_target(e);
            if cur == t {
                break None;
            }
        };
        for o in path {
            self.list_of.insert(o, found);
        }
        found
    }
}

/// The duration in ms of the Node timer list a cluster's holder is, read from its label:
/// `Some(8000)` for a holder `timerListMap[8000]` of class `TimersList` (Node keeps one
/// list per duration in `timerListMap`, keyed by the duration in ms); `None` for any
/// other holder, or a list reached by another path (whose label names no duration).
pub fn timer_list_duration_ms(holder: &str, holder_class: &str) -> Option<u64> {
    if holder_class != TIMERS_LIST {
        return None;
    }
    let key = holder.strip_prefix("timerListMap[")?.strip_suffix(']')?;
    key.parse().ok()
}

/// The timers of a growing Node timer list, as the last snapshot has them: a one-shot
/// timer (`setTimeout`) keeps `_repeat: null`, which the snapshot records as an edge to
/// the null oddball; a repeating one (`setInterval`) keeps its period there, a small
/// integer that a snapshot taken without numeric values (as leakhound takes them) leaves
/// out. One-shot timers that grew may simply not be due yet when the snapshot was taken:
/// a snapshot taken their duration after the load stopped decides whether what they hold
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerList {
    /// The list's duration, ms (its key in `timerListMap`).
    pub duration_ms: u64,
    /// Timers on it with a `_repeat` edge: one-shot (`setTimeout`).
    pub one_shot: u64,
    /// Timers on it without one: repeating (`setInterval`).
    pub repeating: u64,
}

/// The timer list `holder` (labelled `label`) of `s`, its timers counted along its
/// `_idleNext` links; `None` when the holder is not a `TimersList` keyed by a duration.
pub(crate) fn timer_list_of(s: &HeapSnapshot, label: &str, holder: NodeId) -> Option<TimerList> {
    let duration_ms = timer_list_duration_ms(label, &s.class(holder).name)?;
    let next = |o: NodeId| {
        s.edges(o)
            .find(|&e| is_timer_link(s, e) && s.edge_name(e) == "_idleNext")
            .map(|e| s.edge_target(e))
    };
    let mut list = TimerList {
        duration_ms,
        one_shot: 0,
        repeating: 0,
    };
    let mut cur = next(holder);
    for _ in 0..s.node_count() {
        let Some(t) = cur.filter(|&t| t != holder) else { break };
        let one_shot = s
            .edges(t)
            .any(|e| s.edge_type(e) == EdgeType::Property && s.edge_name(e) == "_repeat");
        if one_shot {
            list.one_shot += 1;
        } else {
            list.repeating += 1;
        }
        cur = next(t);
    }
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_lists_duration_comes_from_its_key_in_timer_list_map() {
        assert_eq!(timer_list_duration_ms("timerListMap[8000]", "TimersList"), Some(8000));
        assert_eq!(timer_list_duration_ms("timerListMap[1]", "TimersList"), Some(1));
        // Not a timer list, or a label that names no duration.
        assert_eq!(timer_list_duration_ms("timerListMap[8000]", "Map"), None);
        assert_eq!(timer_list_duration_ms("timerListQueue._heap[1]", "TimersList"), None);
        assert_eq!(timer_list_duration_ms("timerListMap[x]", "TimersList"), None);
        assert_eq!(timer_list_duration_ms("timerListMap", "TimersList"), None);
    }
}
