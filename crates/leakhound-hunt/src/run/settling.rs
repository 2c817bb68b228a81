//! The settle step of a hunt (`crate::settle` has its rules): after the calm-down, with
//! the app still running, the leak finder runs on each isolate's series; when an isolate's
//! clusters include a list of timers that may be one-shot, the hunt waits until they are
//! due (their duration plus a margin after the last load), takes a `settled` snapshot
//! (headroom checked first, as for every snapshot), runs the leak finder again with the
//! settled snapshot in the final's place and keeps only the clusters it still finds.
//! Nothing here ends the hunt: a step that fails leaves the clusters as they were, with
//! why in the isolate's [`Settle`] record.

use std::path::PathBuf;
use std::time::Duration;

use leakhound_inspector::{IsolateKind, Session};
use serde_json::{Value, json};

use super::{Ctx, calm_down_of, find_in, own_phases, requests_per_step};
use crate::error::Stage;
use crate::outcome::HuntEvent;
use crate::phase::SnapshotLabel;
use crate::sampling::sample;
use crate::settle::{
    CENSUS_FUNCTION, PendingTimers, Settle, SettleStatus, TIMEOUT_PROTOTYPE_EXPRESSION, TimerCount, compare,
    parse_census, pending_timers, seconds, timer_clusters, wait_after_load_ms,
};

/// The inspector's object group of the census's remote objects (released after it).
const GROUP: &str = "leakhound-settle";

/// An isolate whose clusters call for a settled snapshot.
struct Plan {
    /// Its index in `Ctx::iso`.
    i: usize,
    pending: Vec<PendingTimers>,
    opts: leakhound_leaks::LeakOptions,
    /// When the settled snapshot is due, ms since the hunt started.
    due_ms: f64,
}

/// Counts the app's pending timers by duration, one-shot or repeating
/// ([`CENSUS_FUNCTION`] over `Runtime.queryObjects` of the `Timeout` prototype); `None`
/// where timers are not objects (Deno) or a call is refused.
async fn census(session: &Session) -> Option<Vec<TimerCount>> {
    let counted = async {
        let proto = session
            .call(
                "Runtime.evaluate",
                json!({ "expression": TIMEOUT_PROTOTYPE_EXPRESSION, "objectGroup": GROUP, "silent": true }),
            )
            .await
            .ok()?;
        let proto_id = proto.pointer("/result/objectId").and_then(Value::as_str)?.to_owned();
        let all = session
            .call(
                "Runtime.queryObjects",
                json!({ "prototypeObjectId": proto_id, "objectGroup": GROUP }),
            )
            .await
            .ok()?;
        let all_id = all.pointer("/objects/objectId").and_then(Value::as_str)?.to_owned();
        let reply = session
            .call(
                "Runtime.callFunctionOn",
                json!({
                    "objectId": all_id,
                    "functionDeclaration": CENSUS_FUNCTION,
                    "returnByValue": true,
                    "silent": true,
                }),
            )
            .await
            .ok()?;
        parse_census(reply.pointer("/result/value")?)
    }
    .await;
    let _ = session
        .call("Runtime.releaseObjectGroup", json!({ "objectGroup": GROUP }))
        .await;
    counted
}

impl Ctx {
    /// The settle step (see the module's doc): records each isolate's leak report in
    /// `leaks` and, where its clusters include a list of timers, its `settle` record.
    pub(super) async fn settle(&mut self) {
        let Some(load_end_ms) = self.phases.iter().rev().find(|p| p.kind.is_load()).map(|p| p.end_ms) else {
            return;
        };
        let processes = self
            .iso
            .iter()
            .filter(|s| s.isolate().kind != IsolateKind::WorkerThread)
            .count();
        let max_wait_ms = self.cfg.settle_max_wait.as_millis() as u64;
        let mut plans = Vec::new();
        for i in 0..self.iso.len() {
            let st = &self.iso[i];
            if !st.in_series || st.snapshots.len() != self.cfg.phases + 1 || (i > 0 && !st.alive()) {
                continue;
            }
            let (own, _) = own_phases(st, &self.phases, processes);
            let mut opts = self.cfg.leak_options.clone();
            (opts.requests_per_step, opts.requests_per_step_each) = requests_per_step(&own);
            let paths: Vec<PathBuf> = st.snapshots.iter().map(|s| s.path.clone()).collect();
            self.emit(HuntEvent::Step(format!("{}analysing the snapshots", self.who(i))));
            // A failure is reported when the analysis runs again, after the app stopped.
            let Ok(report) = find_in(paths, opts.clone(), &self.snapshots).await else {
                continue;
            };
            let timers = timer_clusters(&report);
            self.iso[i].leaks = Some(report);
            if timers.is_empty() {
                continue;
            }
            let session = self.iso[i].tracked.session.clone();
            let pending = pending_timers(timers, census(&session).await.as_deref());
            let Some(longest) = pending.iter().filter(|p| p.may_come_due()).map(|p| p.duration_ms).max() else {
                self.iso[i].settle = Some(record(pending, SettleStatus::Repeating));
                continue;
            };
            let wait = wait_after_load_ms(longest);
            if longest > max_wait_ms {
                let why = if max_wait_ms == 0 {
                    "--settle-max-wait 0".to_owned()
                } else {
                    format!(
                        "their duration, {}, is longer than --settle-max-wait {}",
                        seconds(longest),
                        seconds(max_wait_ms)
                    )
                };
                let next = format!(
                    "a snapshot taken {} after the load stops, once they are due: run again with --settle-max-wait {}s",
                    seconds(wait),
                    longest.div_ceil(1000)
                );
                self.iso[i].settle = Some(record(
                    pending,
                    SettleStatus::NotSettled {
                        why,
                        what_would_decide: next,
                    },
                ));
                continue;
            }
            plans.push(Plan {
                i,
                pending,
                opts,
                due_ms: load_end_ms + wait as f64,
            });
        }
        let Some(due_ms) = plans.iter().map(|p| p.due_ms).reduce(f64::max) else {
            return;
        };
        let left_ms = due_ms - self.shared.now_ms();
        if left_ms > 0.0 {
            let timers: Vec<String> = plans
                .iter()
                .flat_map(|p| p.pending.iter().map(PendingTimers::describe))
                .collect();
            self.emit(HuntEvent::Step(format!(
                "settle: waiting {} for the {} to come due",
                seconds(left_ms as u64),
                timers.join(" and ")
            )));
            let stage = Stage::Snapshot(SnapshotLabel::Settled);
            let waited = self
                .race_app(stage, tokio::time::sleep(Duration::from_millis(left_ms as u64)))
                .await;
            if let Err(e) = waited {
                for p in plans {
                    self.iso[p.i].settle = Some(record(
                        p.pending,
                        SettleStatus::NotSettled {
                            why: format!("the app stopped while waiting for them: {}", e.failure),
                            what_would_decide: format!(
                                "a snapshot taken {} after the load stops, with the app still running",
                                seconds((due_ms - load_end_ms) as u64)
                            ),
                        },
                    ));
                }
                return;
            }
        }
        for p in plans {
            let settle = self.settle_isolate(&p, load_end_ms).await;
            self.iso[p.i].settle = Some(settle);
        }
    }

    /// Takes isolate `p.i`'s settled snapshot, a memory reading after a GC, and runs the
    /// leak finder with the settled snapshot in the final's place.
    async fn settle_isolate(&mut self, p: &Plan, load_end_ms: f64) -> Settle {
        let i = p.i;
        let after_ms = (p.due_ms - load_end_ms) as u64;
        let not_settled = |why: String| SettleStatus::NotSettled {
            why,
            what_would_decide: format!(
                "a snapshot taken {} after the load stops, once they are due",
                seconds(after_ms)
            ),
        };
        if i > 0 && !self.iso[i].alive() {
            return record(
                p.pending.clone(),
                not_settled("it exited while waiting for them".into()),
            );
        }
        let index = self.iso[i].snapshots.len();
        if let Err(e) = self.snapshot_of(i, SnapshotLabel::Settled, index).await {
            return record(
                p.pending.clone(),
                not_settled(format!("the settled snapshot was not taken: {}", e.failure)),
            );
        }
        let st = &self.iso[i];
        let snapshot = st.snapshots.last().cloned();
        // The series with the settled snapshot in the final's place.
        let mut paths: Vec<PathBuf> = st.snapshots.iter().map(|s| s.path.clone()).collect();
        paths.remove(paths.len() - 2);
        // The calm-down's check again, now that the timers are due.
        let session = st.tracked.session.clone();
        let reading = match session.collect_garbage().await {
            Ok(()) => session.memory_usage().await.ok(),
            Err(_) => None,
        };
        let calm_down = match (reading, st.baseline) {
            (Some(m), Some(base)) => {
                let s = sample(
                    m,
                    self.shared.now_ms(),
                    self.shared.requests.load(std::sync::atomic::Ordering::SeqCst),
                    true,
                    true,
                );
                st.tracked.samples.lock().await.push(s);
                if i == 0 {
                    self.emit(HuntEvent::Sample(s));
                }
                Some(calm_down_of(&base, &s, (s.t_ms - load_end_ms).max(0.0) as u64))
            }
            _ => None,
        };
        let found = find_in(paths, p.opts.clone(), &self.snapshots).await;
        let st = &mut self.iso[i];
        let (Ok(settled), Some(report)) = (found, st.leaks.clone()) else {
            return Settle {
                snapshot,
                calm_down,
                ..record(
                    p.pending.clone(),
                    not_settled("the leak finder failed on the settled snapshot".into()),
                )
            };
        };
        let (kept, dropped) = compare(report, &settled);
        let settle = Settle {
            pending: p.pending.clone(),
            status: SettleStatus::Settled,
            after_load_ms: snapshot.as_ref().map(|s| (s.t_ms - load_end_ms).max(0.0) as u64),
            snapshot,
            kept: kept.clusters.iter().map(|c| c.holder.clone()).collect(),
            dropped,
            calm_down,
        };
        st.leaks = Some(kept);
        settle
    }
}

/// A settle record with no settled snapshot.
fn record(pending: Vec<PendingTimers>, status: SettleStatus) -> Settle {
    Settle {
        pending,
        status,
        snapshot: None,
        after_load_ms: None,
        dropped: Vec::new(),
        kept: Vec::new(),
        calm_down: None,
    }
}
