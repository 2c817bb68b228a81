//! The production watch's evidence capture ([`CaptureHook`], a [`TargetHook`]): after
//! every sample of a target it asks the [`CaptureScheduler`] what to do, and runs capture
//! episodes through the target's own session: a sampling heap profile from the start of an
//! episode, snapshots taken safely ([`capture_snapshot`]: one per machine at a time,
//! memory headroom, free disk) or skipped with a reason (the profile then stands in), the
//! leak finder on the series, and an [`EpisodeOutcome`] sent to the caller, which writes
//! the report and updates the metrics. With `--restart-above` it also asks the watch to
//! restart a started app, after taking its evidence.
//!
//! It prints and serializes nothing: what it did goes out as [`CaptureEvent`]s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakhound_inspector::SamplingOptions;
use leakhound_inspector::Session;
use leakhound_inspector::headroom::PreviousSnapshot;
use tokio::sync::mpsc;

use crate::capture::{SkipReason, capture_snapshot};
use crate::evidence::{
    CaptureConfig, CaptureScheduler, CaptureStep, EpisodeOutcome, EpisodeSnapshot, EpisodeTrigger, RestartBackoff,
    analyse_episode, prune_episodes,
};
use crate::outcome::Verdict;
use crate::watch::{HookAction, HookFuture, TargetHook, TargetKey, TargetStatus};

/// How long a capture waits for another one on the machine before it is skipped.
const SLOT_WAIT: Duration = Duration::from_secs(30);

/// A restart's sampling profile starts when memory passes this share of the threshold, so
/// that a profile exists if the snapshot before the restart does not fit.
const RESTART_PROFILE_SHARE: f64 = 0.8;

/// What evidence capture did, for the caller to log, count and write.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CaptureEvent {
    /// An episode started.
    Started {
        /// The target.
        key: TargetKey,
        /// Its folder.
        dir: PathBuf,
        /// Why.
        trigger: EpisodeTrigger,
    },
    /// A snapshot was written.
    Taken {
        /// The target.
        key: TargetKey,
        /// The file.
        path: PathBuf,
        /// Its size, bytes.
        bytes: u64,
    },
    /// A snapshot was skipped (`leakhound_captures_skipped_total{reason}`).
    Skipped {
        /// The target.
        key: TargetKey,
        /// Why.
        reason: SkipReason,
    },
    /// An episode finished: write its report beside its files.
    Finished(Box<EpisodeOutcome>),
    /// Something went wrong that did not stop the watch (a snapshot failed, a folder could
    /// not be made), in a sentence.
    Warning(String),
}

/// An episode under way.
#[derive(Debug)]
struct Running {
    dir: PathBuf,
    trigger: EpisodeTrigger,
    started_unix_ms: u64,
    snapshots: Vec<EpisodeSnapshot>,
    marker: Option<String>,
    warnings: Vec<String>,
}

/// One target's capture state.
#[derive(Debug)]
struct PerTarget {
    pid: u32,
    scheduler: CaptureScheduler,
    episode: Option<Running>,
    previous: Option<PreviousSnapshot>,
    sampling: bool,
    process_started: Instant,
    backoff: RestartBackoff,
}

/// Evidence capture for a watch: set it as [`crate::WatchConfig::hook`].
#[derive(Debug)]
pub struct CaptureHook {
    cfg: CaptureConfig,
    app_name: Option<String>,
    events: mpsc::UnboundedSender<CaptureEvent>,
    t0: Instant,
    targets: Mutex<HashMap<usize, Arc<tokio::sync::Mutex<PerTarget>>>>,
}

impl CaptureHook {
    /// A hook capturing by `cfg`; what it does goes to `events`.
    pub fn new(cfg: CaptureConfig, app_name: Option<String>, events: mpsc::UnboundedSender<CaptureEvent>) -> Self {
        CaptureHook {
            cfg,
            app_name,
            events,
            t0: Instant::now(),
            targets: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self, index: usize, pid: u32) -> Arc<tokio::sync::Mutex<PerTarget>> {
        let mut map = self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(index)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(self.fresh(pid))))
            .clone()
    }

    fn fresh(&self, pid: u32) -> PerTarget {
        PerTarget {
            pid,
            scheduler: CaptureScheduler::new(self.cfg.policy.clone()),
            episode: None,
            previous: None,
            sampling: false,
            process_started: Instant::now(),
            backoff: RestartBackoff::default(),
        }
    }

    fn now_ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1000.0
    }

    async fn run(&self, status: &TargetStatus, session: &Session) -> HookAction {
        let state = self.state(status.index, status.key.pid);
        let mut t = state.lock().await;
        if t.pid != status.key.pid {
            // A new process (restarted): its own series, costs and scheduler; the back-off
            // remembers the restarts.
            let backoff = std::mem::take(&mut t.backoff);
            *t = self.fresh(status.key.pid);
            t.backoff = backoff;
        }
        let Some(last) = status.last else {
            return HookAction::Continue;
        };
        // A restart is the started app's own (its main process), never an isolate's below it.
        let restartable = !status.attached && status.isolate.kind == leakhound_inspector::IsolateKind::Main;
        if let Some(threshold) = self.cfg.restart.filter(|_| restartable) {
            if threshold.crossed(last.rss_bytes, last.heap_used_bytes) {
                let value = threshold.value(last.rss_bytes, last.heap_used_bytes);
                if self.cfg.dir.is_some() {
                    let trigger = EpisodeTrigger::Restart {
                        threshold,
                        value_bytes: value,
                    };
                    if self.begin(&mut t, status, session, trigger).await {
                        self.snapshot(&mut t, status, session, 0).await;
                        self.finish(&mut t, status, session).await;
                    }
                }
                let ran = t.process_started.elapsed();
                let delay = t.backoff.next_delay(ran);
                return HookAction::Restart {
                    kill_timeout: self.cfg.kill_timeout,
                    delay,
                };
            }
            let near = threshold.value(last.rss_bytes, last.heap_used_bytes) as f64
                >= threshold.bytes as f64 * RESTART_PROFILE_SHARE;
            if near && !t.sampling && session.start_sampling(SamplingOptions::default()).await.is_ok() {
                t.sampling = true;
            }
        }
        if self.cfg.dir.is_none() {
            return HookAction::Continue;
        }
        let rising = status.verdict == Verdict::Leak;
        let step = t
            .scheduler
            .step(self.now_ms(), rising, last.heap_used_bytes, status.heap_limit_bytes);
        match step {
            CaptureStep::Idle => {}
            CaptureStep::StartEpisode => {
                let trigger = EpisodeTrigger::RisingFloor {
                    growing: status.floor.growing.clone(),
                    rising_ms: self.cfg.policy.capture_after.as_secs_f64() * 1000.0,
                };
                if self.begin(&mut t, status, session, trigger).await {
                    self.snapshot(&mut t, status, session, 0).await;
                } else {
                    t.scheduler.taken(self.now_ms());
                }
            }
            CaptureStep::Snapshot { index } => {
                let reset = match (
                    &t.episode.as_ref().and_then(|e| e.marker.clone()),
                    session.object_id_marker().await,
                ) {
                    (Some(before), Ok(now)) => *before != now,
                    _ => false,
                };
                if reset {
                    // Another inspector client's session ended and V8 cleared its ids: the
                    // series cannot be compared across that; start it again.
                    if let Some(ep) = t.episode.as_mut() {
                        for s in ep.snapshots.drain(..) {
                            if let EpisodeSnapshot::Taken { file, .. } = s {
                                let _ = std::fs::remove_file(&file.path);
                            }
                        }
                        ep.marker = None;
                        ep.warnings.push(
                            "V8's object ids were reset during the episode (another inspector session ended): its series was started again".into(),
                        );
                    }
                    t.scheduler.restart_series(self.now_ms());
                } else {
                    self.snapshot(&mut t, status, session, index).await;
                }
            }
            CaptureStep::Finish => self.finish(&mut t, status, session).await,
            CaptureStep::NearLimit {
                heap_used_bytes,
                limit_bytes,
            } => {
                let trigger = EpisodeTrigger::NearLimit {
                    heap_used_bytes,
                    limit_bytes,
                };
                // A one-snapshot episode of its own, unless one is under way (then the
                // snapshot joins it).
                if t.episode.is_some() {
                    let n = t.episode.as_ref().map_or(0, |e| e.snapshots.len() as u32);
                    self.snapshot(&mut t, status, session, n).await;
                } else if self.begin(&mut t, status, session, trigger).await {
                    self.snapshot(&mut t, status, session, 0).await;
                    self.finish(&mut t, status, session).await;
                } else {
                    t.scheduler.taken(self.now_ms());
                }
            }
        }
        HookAction::Continue
    }

    /// Starts an episode: its folder (private) and a sampling profile.
    async fn begin(
        &self,
        t: &mut PerTarget,
        status: &TargetStatus,
        session: &Session,
        trigger: EpisodeTrigger,
    ) -> bool {
        let Some(root) = &self.cfg.dir else { return false };
        let started_unix_ms = unix_ms();
        let mut name = format!("episode-{}-pid{}", utc_stamp(started_unix_ms / 1000), status.key.pid);
        if let Some(tid) = status.key.thread_id {
            name.push_str(&format!("-thread{tid}"));
        }
        let dir = root.join(name);
        if let Err(e) = make_private_dir(root).and_then(|()| make_private_dir(&dir)) {
            let _ = self.events.send(CaptureEvent::Warning(format!(
                "no evidence folder {}: {e}",
                dir.display()
            )));
            return false;
        }
        if !t.sampling && session.start_sampling(SamplingOptions::default()).await.is_ok() {
            t.sampling = true;
        }
        let _ = self.events.send(CaptureEvent::Started {
            key: status.key.clone(),
            dir: dir.clone(),
            trigger: trigger.clone(),
        });
        t.episode = Some(Running {
            dir,
            trigger,
            started_unix_ms,
            snapshots: Vec::new(),
            marker: None,
            warnings: Vec::new(),
        });
        true
    }

    /// Takes (or skips) the episode's snapshot `index`.
    async fn snapshot(&self, t: &mut PerTarget, status: &TargetStatus, session: &Session, index: u32) {
        let Some(ep) = t.episode.as_mut() else {
            t.scheduler.taken(self.now_ms());
            return;
        };
        let path = ep.dir.join(format!("{:02}.heapsnapshot", index + 1));
        let at = unix_ms();
        match capture_snapshot(session, status.key.pid, &path, t.previous, SLOT_WAIT).await {
            Ok(Ok(c)) => {
                ep.warnings.extend(c.warnings.iter().cloned());
                let _ = self.events.send(CaptureEvent::Taken {
                    key: status.key.clone(),
                    path: c.file.path.clone(),
                    bytes: c.file.bytes,
                });
                ep.snapshots.push(EpisodeSnapshot::Taken {
                    file: c.file,
                    taken_unix_ms: at,
                });
                // V8 numbers objects from the series' first snapshot on: the marker is read
                // after it, and a change of it before a later one means the ids were reset.
                if ep.marker.is_none() {
                    ep.marker = session.object_id_marker().await.ok();
                }
                t.previous = c.previous.or(t.previous);
            }
            Ok(Err(reason)) => {
                let _ = self.events.send(CaptureEvent::Skipped {
                    key: status.key.clone(),
                    reason: reason.clone(),
                });
                ep.snapshots.push(EpisodeSnapshot::Skipped { reason, at_unix_ms: at });
                // The profile so far stands in for it.
                if t.sampling
                    && let Ok(profile) = session.sampling_profile().await
                {
                    let _ = profile.write(&ep.dir.join("profile.heapprofile"));
                }
            }
            Err(e) => {
                let msg = format!("snapshot {} of pid {} failed: {e}", path.display(), status.key.pid);
                ep.warnings.push(msg.clone());
                let _ = self.events.send(CaptureEvent::Warning(msg));
            }
        }
        t.scheduler.taken(self.now_ms());
        let dir = ep.dir.clone();
        if let Some(root) = &self.cfg.dir
            && let Ok(removed) = prune_episodes(root, self.cfg.max_bytes, Some(&dir))
        {
            for r in removed {
                let _ = self.events.send(CaptureEvent::Warning(format!(
                    "removed the oldest evidence {} (--capture-max-bytes)",
                    r.display()
                )));
            }
        }
    }

    /// Ends the episode: the profile, the leak finder, the outcome.
    async fn finish(&self, t: &mut PerTarget, status: &TargetStatus, session: &Session) {
        let Some(ep) = t.episode.take() else { return };
        let mut profile_path = None;
        if t.sampling {
            t.sampling = false;
            match session.stop_sampling().await {
                Ok(profile) => {
                    let path = ep.dir.join("profile.heapprofile");
                    match profile.write(&path) {
                        Ok(()) => profile_path = Some(path),
                        Err(e) => {
                            let _ = self.events.send(CaptureEvent::Warning(e.to_string()));
                        }
                    }
                }
                Err(e) => {
                    let _ = self
                        .events
                        .send(CaptureEvent::Warning(format!("no sampling profile: {e}")));
                }
            }
        }
        let mut outcome = EpisodeOutcome {
            dir: ep.dir,
            pid: status.key.pid,
            thread_id: status.key.thread_id,
            app_name: self.app_name.clone(),
            trigger: ep.trigger,
            started_unix_ms: ep.started_unix_ms,
            finished_unix_ms: 0,
            snapshots: ep.snapshots,
            profile: profile_path,
            floor: status.floor.clone(),
            leaks: Err(String::new()),
            warnings: ep.warnings,
        };
        let paths = outcome.taken_paths();
        outcome.leaks = tokio::task::spawn_blocking(move || analyse_episode(&paths))
            .await
            .unwrap_or_else(|e| Err(format!("the leak finder stopped: {e}")));
        outcome.finished_unix_ms = unix_ms();
        let _ = self.events.send(CaptureEvent::Finished(Box::new(outcome)));
    }
}

impl TargetHook for CaptureHook {
    fn after_sample<'a>(&'a self, status: &'a TargetStatus, session: &'a Session) -> HookFuture<'a> {
        Box::pin(self.run(status, session))
    }

    /// Forgets the isolate's capture state; an episode under way is abandoned (its
    /// snapshots stay in its folder) and said.
    fn isolate_ended(&self, status: &TargetStatus) {
        let state = self
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&status.index);
        let running = state
            .and_then(|s| s.try_lock().ok().and_then(|mut t| t.episode.take()))
            .map(|ep| ep.dir);
        if let Some(dir) = running {
            let _ = self.events.send(CaptureEvent::Warning(format!(
                "{} ended during an evidence episode: its snapshots so far stay in {}",
                status.isolate,
                dir.display()
            )));
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `secs` since the Unix epoch as `YYYYMMDDTHHMMSSZ` (UTC), which sorts by time (days to
/// civil date: Howard Hinnant's algorithm).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Creates `dir` with mode 0700 when missing.
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_and_sort_by_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_796_342_400), "20261204T000000Z");
        assert_eq!(utc_stamp(951_782_400 + 3_661), "20000229T010101Z");
        assert!(utc_stamp(1_796_342_399) < utc_stamp(1_796_342_400));
    }
}
