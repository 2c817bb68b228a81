//! Settling pending one-shot timers: a TTL cache, a rate limiter's per-client window or a
//! session expiry arms a `setTimeout(() => cache.delete(key), d)` per request. When the
//! load phases are shorter than `d`, the timers of the first phase are still pending at
//! the final snapshot, and the three snapshots show a growing timer list
//! (`timerListMap[d]`, pattern `uncleared_timer`) and a growing cache: a leak by the
//! snapshots alone, though everything goes once the timers fire.
//!
//! So when a cluster is a list of timers of duration `d` that are one-shot (counted in the
//! live app: [`CENSUS_FUNCTION`]; where they cannot be counted, as the final snapshot has
//! them: a one-shot timer's `_repeat` is null, recorded as an edge to the null oddball, a
//! repeating one's is its period, a number the snapshot leaves out), the hunt waits until
//! `d` plus a margin ([`wait_after_load_ms`]) after the last load with no load running,
//! takes a `settled` snapshot (headroom checked first, as every snapshot) and keeps only the
//! clusters the leak finder still finds with the settled snapshot in the final's place
//! (memlab's "final": taken after the action is undone). Clusters it drops are reported
//! as such ([`DroppedCluster`]), so the verdict has evidence either way. When no settled
//! snapshot can be taken (the wait would exceed `--settle-max-wait`, the app exited, no
//! headroom), the clusters stand and the verdict says what would decide it
//! ([`annotate`]). Timers that repeat (`setInterval`) are never due: their clusters stand
//! without a wait.
//!
//! This module is the pure part (records, decisions, wording); `run/settling.rs` drives
//! the app.

use leakhound_leaks::{Cluster, LeakReport, TimerList};

use crate::outcome::{CalmDown, SnapshotRecord, Verdict};

/// Timers of one duration in the live app, counted after the calm-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerCount {
    /// Their duration, ms (the key of their list in Node's `timerListMap`).
    pub duration_ms: u64,
    /// Pending one-shot timers (`setTimeout`: `_repeat` is null).
    pub one_shot: u64,
    /// Pending repeating timers (`setInterval`: `_repeat` is their period).
    pub repeating: u64,
}

/// A growing cluster that is a list of Node's timers, and what the live app had on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTimers {
    /// The cluster's holder: `timerListMap[8000]`.
    pub holder: String,
    /// The list's duration, ms.
    pub duration_ms: u64,
    /// The timers of that duration in the live app after the calm-down; `None` when they
    /// could not be counted (Deno, a refused inspector call).
    pub counted: Option<TimerCount>,
    /// The list's timers in the final snapshot, one-shot (a `_repeat` edge to null) or
    /// repeating: what decides when the live app's could not be counted.
    pub in_final: TimerList,
}

impl PendingTimers {
    /// Whether the timers may be one-shot timers not yet due: the live app's are one-shot
    /// or have all fired already (none left); where they could not be counted, the final
    /// snapshot's are one-shot. Not when every timer of the duration repeats
    /// (`setInterval`: never due).
    pub fn may_come_due(&self) -> bool {
        !self.all_repeat()
    }

    /// Every timer of the duration left repeats (in the live app, or in the final
    /// snapshot when the app's could not be counted).
    fn all_repeat(&self) -> bool {
        let (one_shot, repeating) = match self.counted {
            Some(c) => (c.one_shot, c.repeating),
            None => (self.in_final.one_shot, self.in_final.repeating),
        };
        one_shot == 0 && repeating > 0
    }

    /// `one-shot timers of 8000 ms`, `repeating timers (setInterval) of 60000 ms`.
    pub fn describe(&self) -> String {
        let kind = if self.all_repeat() {
            "repeating timers (setInterval)"
        } else {
            "one-shot timers"
        };
        format!("{kind} of {} ms", self.duration_ms)
    }
}

/// What the settle step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleStatus {
    /// A `settled` snapshot was taken and the clusters were compared with it.
    Settled,
    /// Every timer of the clusters' durations repeats: they are never due, so nothing was
    /// waited for and the clusters stand.
    Repeating,
    /// No settled snapshot could be taken: the clusters stand, undecided.
    NotSettled {
        /// Why (the wait would exceed the limit, the app exited, no headroom…).
        why: String,
        /// What would decide it.
        what_would_decide: String,
    },
}

impl SettleStatus {
    /// The wire name: `settled`, `repeating` or `not_settled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SettleStatus::Settled => "settled",
            SettleStatus::Repeating => "repeating",
            SettleStatus::NotSettled { .. } => "not_settled",
        }
    }
}

/// A cluster of the three snapshots that the settled snapshot no longer shows growing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedCluster {
    /// Its holder, as [`Cluster::holder`].
    pub holder: String,
    /// Its holder's class.
    pub holder_class: String,
    /// Its pattern's wire name.
    pub pattern: String,
    /// Class of its roots.
    pub root_class: String,
    /// Its counts in the snapshots before the settled one (baseline first, final last).
    pub counts_per_snapshot: Vec<u64>,
    /// Its count in the settled snapshot, when the leak finder still saw its holder there
    /// (as a cluster that stopped growing); `None`: gone.
    pub settled_count: Option<u64>,
}

/// The settle step's record for one isolate: present when its clusters included a list
/// of timers.
#[derive(Debug, Clone)]
pub struct Settle {
    /// The growing timer lists that called for it.
    pub pending: Vec<PendingTimers>,
    /// What was done.
    pub status: SettleStatus,
    /// With [`SettleStatus::Settled`], the `settled` snapshot.
    pub snapshot: Option<SnapshotRecord>,
    /// With a settled snapshot, the time from the end of the last load phase to it, ms.
    pub after_load_ms: Option<u64>,
    /// Clusters the settled snapshot dropped.
    pub dropped: Vec<DroppedCluster>,
    /// Holders of the clusters it still shows growing.
    pub kept: Vec<String>,
    /// With a settled snapshot, memory read after a GC right after it, against the
    /// baseline (the calm-down's check, once the timers were due).
    pub calm_down: Option<CalmDown>,
}

/// How long after the load stopped a settled snapshot comes for timers of `duration_ms`:
/// the duration, plus 1 s and 5 % of it for timers armed a little after their request
/// and for the GC before the snapshot.
pub fn wait_after_load_ms(duration_ms: u64) -> u64 {
    duration_ms + 1000 + duration_ms / 20
}

/// The clusters of `report` that are lists of Node's timers, with their timers in the
/// final snapshot.
pub fn timer_clusters(report: &LeakReport) -> Vec<(String, TimerList)> {
    report
        .clusters
        .iter()
        .filter_map(|c| c.timer_list.map(|t| (c.holder.clone(), t)))
        .collect()
}

/// Joins the timer clusters with what the live app had pending (`census`, `None` when it
/// could not be counted).
pub fn pending_timers(clusters: Vec<(String, TimerList)>, census: Option<&[TimerCount]>) -> Vec<PendingTimers> {
    clusters
        .into_iter()
        .map(|(holder, in_final)| PendingTimers {
            counted: census.map(|c| {
                let duration_ms = in_final.duration_ms;
                c.iter()
                    .find(|t| t.duration_ms == duration_ms)
                    .copied()
                    .unwrap_or(TimerCount {
                        duration_ms,
                        one_shot: 0,
                        repeating: 0,
                    })
            }),
            holder,
            duration_ms: in_final.duration_ms,
            in_final,
        })
        .collect()
}

/// Whether the leak finder still finds `c` with the settled snapshot: a cluster of the
/// same holder grows there.
fn still_found(c: &Cluster, settled: &LeakReport) -> bool {
    settled.clusters.iter().any(|s| s.holder == c.holder)
}

/// Keeps the clusters of `report` (from baseline, target, …, final) that `settled` (the
/// leak finder on baseline, target, …, settled) still finds; the others are returned as
/// dropped.
pub fn compare(mut report: LeakReport, settled: &LeakReport) -> (LeakReport, Vec<DroppedCluster>) {
    let (kept, gone): (Vec<Cluster>, Vec<Cluster>) = report.clusters.into_iter().partition(|c| still_found(c, settled));
    report.clusters = kept;
    let dropped = gone
        .into_iter()
        .map(|c| DroppedCluster {
            settled_count: settled
                .not_growing
                .iter()
                .find(|n| n.holder == c.holder)
                .and_then(|n| n.counts_per_snapshot.last().copied()),
            holder: c.holder,
            holder_class: c.holder_class,
            pattern: c.pattern.as_str().to_owned(),
            root_class: c.root_class,
            counts_per_snapshot: c.counts_per_snapshot,
        })
        .collect();
    (report, dropped)
}

/// `"8 s"`, `"6.5 s"`: a wait in seconds as a person reads it.
pub fn seconds(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if (s - s.round()).abs() < 0.05 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

impl Settle {
    /// The timers it waited for, in words: `one-shot timers of 5000 ms` (joined with
    /// `and` when several).
    pub fn timers_text(&self) -> String {
        let parts: Vec<String> = self.pending.iter().map(PendingTimers::describe).collect();
        parts.join(" and ")
    }

    /// Why the dropped clusters were dropped, in one clause: `pending one-shot timers of
    /// 5000 ms: gone in a snapshot taken 6.5 s after the load stopped`.
    pub fn dropped_why(&self) -> String {
        format!(
            "pending {}: gone in a snapshot taken {} after the load stopped",
            self.timers_text(),
            seconds(self.after_load_ms.unwrap_or(0))
        )
    }

    /// The calm-down the verdict should use: the one read after the settled snapshot,
    /// when there is one, else `calm`.
    pub fn effective_calm_down(settle: Option<&Settle>, calm: CalmDown) -> CalmDown {
        match settle {
            Some(s) if s.status == SettleStatus::Settled => s.calm_down.unwrap_or(calm),
            _ => calm,
        }
    }
}

/// The verdict, reason and what would decide it, with what the settle step found added:
/// the settled snapshot's evidence in the reason (clusters it dropped, or that it
/// confirmed); for clusters it could not settle, the timers that may not have been due
/// and what would decide it (the verdict stays `leak`: a cluster grew through every
/// snapshot taken); for repeating timers, that they are never due.
pub fn annotate(
    (verdict, mut reason, mut what_would_decide): (Verdict, String, Option<String>),
    settle: Option<&Settle>,
) -> (Verdict, String, Option<String>) {
    let Some(s) = settle else {
        return (verdict, reason, what_would_decide);
    };
    match &s.status {
        SettleStatus::Settled => {
            let after = seconds(s.after_load_ms.unwrap_or(0));
            let holders: Vec<&str> = s.dropped.iter().map(|d| d.holder.as_str()).collect();
            let clusters = |n: usize| match n {
                1 => "1 cluster".to_owned(),
                n => format!("{n} clusters"),
            };
            if verdict == Verdict::Leak && !s.kept.is_empty() {
                reason.push_str(&format!(
                    "; still growing in a snapshot taken {after} after the load stopped, once the {} were due",
                    s.timers_text()
                ));
                if !holders.is_empty() {
                    reason.push_str(&format!(
                        " (which no longer shows {} growing: {})",
                        clusters(holders.len()),
                        holders.join(", ")
                    ));
                }
            } else if !holders.is_empty() {
                reason.push_str(&format!(
                    "; {} grew only until the final snapshot ({}): {}",
                    clusters(holders.len()),
                    holders.join(", "),
                    s.dropped_why()
                ));
            }
        }
        SettleStatus::Repeating => {
            if verdict == Verdict::Leak {
                reason.push_str(&format!("; the {} never come due", s.timers_text()));
            }
        }
        SettleStatus::NotSettled {
            why,
            what_would_decide: next,
        } => {
            if verdict == Verdict::Leak {
                reason.push_str(&format!(
                    "; but the {} were still pending at the final snapshot and may free what the clusters hold when they fire, and no later snapshot was taken ({why})",
                    s.timers_text()
                ));
                what_would_decide = Some(next.clone());
            }
        }
    }
    (verdict, reason, what_would_decide)
}

/// The expression that returns the prototype of Node's `Timeout` objects (of a timer
/// armed and cleared at once, for the longest duration a timer may have), or
/// `undefined` where timers are not objects (Deno, browsers' numbers).
pub const TIMEOUT_PROTOTYPE_EXPRESSION: &str = "(() => { if (typeof setTimeout !== 'function') return undefined; const t = setTimeout(() => {}, 2147483647); clearTimeout(t); return (typeof t === 'object' && t !== null) ? Object.getPrototypeOf(t) : undefined; })()";

/// The function called on the array `Runtime.queryObjects` gives for that prototype: the
/// pending timers by duration (`_idleTimeout`, the key of their list in `timerListMap`),
/// one-shot (`_repeat` null) or repeating; timers that fired or were cleared
/// (`_destroyed`) left out. Returns `[{duration_ms, one_shot, repeating}]`.
pub const CENSUS_FUNCTION: &str = "function () { const lists = new Map(); for (const t of this) { if (!t || t._destroyed !== false || typeof t._idleTimeout !== 'number' || t._idleTimeout < 0) continue; const d = t._idleTimeout; let l = lists.get(d); if (!l) { l = { duration_ms: d, one_shot: 0, repeating: 0 }; lists.set(d, l); } if (t._repeat == null) l.one_shot++; else l.repeating++; } return [...lists.values()]; }";

/// Reads [`CENSUS_FUNCTION`]'s answer; `None` when it is not a list of counts.
pub fn parse_census(v: &serde_json::Value) -> Option<Vec<TimerCount>> {
    v.as_array()?
        .iter()
        .map(|e| {
            Some(TimerCount {
                duration_ms: e.get("duration_ms")?.as_f64()?.max(0.0) as u64,
                one_shot: e.get("one_shot")?.as_u64()?,
                repeating: e.get("repeating")?.as_u64()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(duration_ms: u64, one_shot: u64, repeating: u64) -> TimerCount {
        TimerCount {
            duration_ms,
            one_shot,
            repeating,
        }
    }

    fn in_final(duration_ms: u64, one_shot: u64, repeating: u64) -> TimerList {
        TimerList {
            duration_ms,
            one_shot,
            repeating,
        }
    }

    #[test]
    fn only_timers_that_all_repeat_are_never_due() {
        let list = |counted| PendingTimers {
            holder: "timerListMap[5000]".into(),
            duration_ms: 5000,
            counted,
            in_final: in_final(5000, 300, 0),
        };
        assert!(list(Some(count(5000, 300, 0))).may_come_due());
        // Fired already (counted after the calm-down): the settled snapshot shows it.
        assert!(list(Some(count(5000, 0, 0))).may_come_due());
        // Some one-shot among intervals: a settled snapshot decides.
        assert!(list(Some(count(5000, 3, 300))).may_come_due());
        // Not counted: the final snapshot's say.
        assert!(list(None).may_come_due());
        let intervals = PendingTimers {
            in_final: in_final(5000, 0, 300),
            ..list(None)
        };
        assert!(!intervals.may_come_due());
        assert!(!list(Some(count(5000, 0, 300))).may_come_due());
        assert_eq!(
            list(Some(count(5000, 0, 300))).describe(),
            "repeating timers (setInterval) of 5000 ms"
        );
        assert_eq!(list(Some(count(5000, 1, 0))).describe(), "one-shot timers of 5000 ms");
    }

    #[test]
    fn pending_timers_are_matched_by_duration() {
        let census = [count(30000, 0, 1), count(5000, 120, 0)];
        let p = pending_timers(
            vec![
                ("timerListMap[5000]".into(), in_final(5000, 300, 0)),
                ("timerListMap[7000]".into(), in_final(7000, 300, 0)),
            ],
            Some(&census),
        );
        assert_eq!(p[0].counted, Some(count(5000, 120, 0)));
        // None of that duration left: counted as none, not unknown.
        assert_eq!(p[1].counted, Some(count(7000, 0, 0)));
        assert_eq!(
            pending_timers(vec![("timerListMap[5000]".into(), in_final(5000, 300, 0))], None)[0].counted,
            None
        );
    }

    #[test]
    fn the_wait_covers_the_duration_and_a_margin() {
        assert_eq!(wait_after_load_ms(5000), 6250);
        assert_eq!(wait_after_load_ms(60_000), 64_000);
        assert_eq!(seconds(6250), "6.2 s");
        assert_eq!(seconds(9000), "9 s");
    }

    #[test]
    fn the_census_answer_is_read_back() {
        let v = serde_json::json!([{ "duration_ms": 5000, "one_shot": 12, "repeating": 0 }]);
        assert_eq!(parse_census(&v), Some(vec![count(5000, 12, 0)]));
        assert_eq!(parse_census(&serde_json::json!({})), None);
        assert_eq!(parse_census(&serde_json::json!([{ "duration_ms": 1 }])), None);
    }

    fn settle(status: SettleStatus, dropped: Vec<DroppedCluster>, kept: Vec<String>) -> Settle {
        Settle {
            pending: vec![PendingTimers {
                holder: "timerListMap[5000]".into(),
                duration_ms: 5000,
                counted: Some(count(5000, 600, 0)),
                in_final: in_final(5000, 600, 0),
            }],
            status,
            snapshot: None,
            after_load_ms: Some(6500),
            dropped,
            kept,
            calm_down: None,
        }
    }

    fn dropped(holder: &str) -> DroppedCluster {
        DroppedCluster {
            holder: holder.into(),
            holder_class: "Map".into(),
            pattern: "unbounded_collection".into(),
            root_class: "Object".into(),
            counts_per_snapshot: vec![0, 300, 600],
            settled_count: None,
        }
    }

    #[test]
    fn a_settled_no_leak_names_what_the_settled_snapshot_dropped() {
        let s = settle(
            SettleStatus::Settled,
            vec![dropped("timerListMap[5000]"), dropped("cache")],
            Vec::new(),
        );
        let (v, reason, next) = annotate((Verdict::NoLeak, "nothing keeps growing".into(), None), Some(&s));
        assert_eq!(v, Verdict::NoLeak);
        assert!(next.is_none());
        assert!(
            reason.ends_with("2 clusters grew only until the final snapshot (timerListMap[5000], cache): pending one-shot timers of 5000 ms: gone in a snapshot taken 6.5 s after the load stopped"),
            "{reason}"
        );
    }

    #[test]
    fn a_cluster_the_settled_snapshot_keeps_is_a_leak_with_that_evidence() {
        let s = settle(
            SettleStatus::Settled,
            vec![dropped("timerListMap[5000]")],
            vec!["cache".into()],
        );
        let (v, reason, _) = annotate(
            (Verdict::Leak, "cache (Map) keeps 1.00 Object per request".into(), None),
            Some(&s),
        );
        assert_eq!(v, Verdict::Leak);
        assert!(
            reason.ends_with("; still growing in a snapshot taken 6.5 s after the load stopped, once the one-shot timers of 5000 ms were due (which no longer shows 1 cluster growing: timerListMap[5000])"),
            "{reason}"
        );
    }

    #[test]
    fn timers_that_could_not_be_settled_leave_the_leak_with_what_would_decide_it() {
        let s = settle(
            SettleStatus::NotSettled {
                why: "the wait would exceed --settle-max-wait".into(),
                what_would_decide: "a snapshot taken 6.2 s after the load stops".into(),
            },
            Vec::new(),
            Vec::new(),
        );
        let (v, reason, next) = annotate((Verdict::Leak, "timerListMap[5000] grows".into(), None), Some(&s));
        assert_eq!(v, Verdict::Leak);
        assert!(reason.contains("may free what the clusters hold"), "{reason}");
        assert_eq!(next.as_deref(), Some("a snapshot taken 6.2 s after the load stops"));
    }
}
