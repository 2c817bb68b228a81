//! [`Board`]: the agent's view of every watched isolate (each app's process, its cluster
//! workers and other node children, their worker threads), kept up to date from the
//! watch's events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use leakhound_hunt::capture_hook::CaptureEvent;
use leakhound_hunt::{Isolate, IsolateKind, TargetKey, TargetStatus, WatchEvent};

/// Isolates found below an app (not the apps' own processes) kept on the board after they
/// ended (`leakhound_up` 0), the newest ones: an app that replaces its workers for months
/// adds no series past these.
pub const ENDED_ISOLATES_KEPT: usize = 32;

/// One watched isolate on the board.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// Which isolate, by pid and thread (the metrics' labels).
    pub key: TargetKey,
    /// Which isolate: an app's own process (`main`), a cluster worker, another node child,
    /// a worker thread.
    pub isolate: Isolate,
    /// The app (its place among those started or attached to) it belongs to.
    pub target: usize,
    /// Attached to a running process (else started by leakhound).
    pub attached: bool,
    /// Still watched.
    pub up: bool,
    /// Why it ended, once it has.
    pub ended: Option<String>,
    /// Its latest status (None before the first sample).
    pub status: Option<TargetStatus>,
    /// Times leakhound restarted it (`--restart-above`).
    pub restarts: u64,
    /// Snapshots evidence capture skipped, by reason (`headroom`, `disk`, `busy`).
    pub captures_skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Capture episodes finished.
    pub episodes: u64,
    /// The last finished episode's answer.
    pub evidence: Option<Evidence>,
}

/// What the last capture episode of a process concluded: what `/health` and the metrics
/// show.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The watch's verdict when it finished: `leak`, `no_leak`, `inconclusive`.
    pub verdict: &'static str,
    /// The leak finder's top holder, when it named one.
    pub top_holder: Option<String>,
    /// The episode's folder, with its report.
    pub dir: String,
}

/// The latest state of every watched isolate, in the watch's order.
#[derive(Debug, Clone)]
pub struct Board {
    /// The `app` label of every series (`--app-name`).
    pub app: String,
    /// When the agent started.
    pub started: Instant,
    /// The isolates, by their place in the watch ([`TargetStatus::index`]): each app's
    /// own process first, then the isolates found below them.
    pub targets: BTreeMap<usize, TargetEntry>,
    /// The places of the isolates found below an app that ended, oldest first (at most
    /// [`ENDED_ISOLATES_KEPT`] stay on the board).
    ended_order: VecDeque<usize>,
}

/// A board shared between the watch's event loop (the only writer) and the server.
pub type SharedBoard = Arc<RwLock<Board>>;

impl Board {
    /// An empty board for the app named `app`, started now.
    pub fn new(app: impl Into<String>) -> Board {
        Board {
            app: app.into(),
            started: Instant::now(),
            targets: BTreeMap::new(),
            ended_order: VecDeque::new(),
        }
    }

    /// An empty board behind a lock, to share.
    pub fn shared(app: impl Into<String>) -> SharedBoard {
        Arc::new(RwLock::new(Board::new(app)))
    }

    /// The isolates known so far, in the watch's order.
    pub fn entries(&self) -> impl Iterator<Item = &TargetEntry> {
        self.targets.values()
    }

    /// Takes in one event of the watch: an app's process or an isolate below it watched,
    /// its status after a sample, its end. Other events (the app's output) change nothing.
    pub fn apply(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Started { target, pid, attached } => {
                self.targets.insert(
                    *target,
                    TargetEntry::new(Isolate::process(*pid, IsolateKind::Main), *target, *attached),
                );
            }
            WatchEvent::Followed {
                index,
                target,
                isolate,
                attached,
            } => {
                self.targets
                    .insert(*index, TargetEntry::new(*isolate, *target, *attached));
            }
            WatchEvent::Status(status) => {
                let entry = self
                    .targets
                    .entry(status.index)
                    .or_insert_with(|| TargetEntry::new(status.isolate, status.target, status.attached));
                entry.key = status.key.clone();
                entry.isolate = status.isolate;
                entry.up = status.up;
                if status.ended.is_some() {
                    entry.ended = status.ended.clone();
                }
                entry.status = Some((**status).clone());
            }
            WatchEvent::Restarted { target, restarts, .. } => {
                if let Some(entry) = self.targets.get_mut(target) {
                    entry.restarts = u64::from(*restarts);
                }
            }
            WatchEvent::Ended { target, reason, .. } => {
                let mut below = false;
                if let Some(entry) = self.targets.get_mut(target) {
                    below = entry.up && entry.isolate.kind != IsolateKind::Main;
                    entry.up = false;
                    entry.ended = Some(reason.clone());
                }
                if below {
                    self.ended_order.push_back(*target);
                    while self.ended_order.len() > ENDED_ISOLATES_KEPT {
                        if let Some(old) = self.ended_order.pop_front() {
                            self.targets.remove(&old);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Takes in what evidence capture did: skipped snapshots by reason, finished
    /// episodes and their answer, for the process they concern (found by its pid and
    /// thread).
    pub fn apply_capture(&mut self, event: &CaptureEvent) {
        let key = match event {
            CaptureEvent::Skipped { key, .. } => key.clone(),
            CaptureEvent::Finished(o) => TargetKey {
                pid: o.pid,
                thread_id: o.thread_id,
            },
            _ => return,
        };
        // The newest isolate with that pid and thread (a pid may have been reused).
        let found = self.targets.iter().rev().find(|(_, e)| e.key == key).map(|(i, _)| *i);
        let Some(entry) = found.and_then(|i| self.targets.get_mut(&i)) else {
            return;
        };
        match event {
            CaptureEvent::Skipped { reason, .. } => *entry.captures_skipped.entry(reason.label()).or_default() += 1,
            CaptureEvent::Finished(o) => {
                entry.episodes += 1;
                let verdict = leakhound_report::hunt::VerdictJson::from(o.verdict().0).as_str();
                entry.evidence = Some(Evidence {
                    verdict,
                    top_holder: o.top_holder().map(str::to_owned),
                    dir: o.dir.display().to_string(),
                });
            }
            _ => {}
        }
    }
}

impl TargetEntry {
    /// An isolate just watched, before its first sample.
    fn new(isolate: Isolate, target: usize, attached: bool) -> TargetEntry {
        TargetEntry {
            key: TargetKey {
                pid: isolate.pid,
                thread_id: isolate.thread_id.map(u64::from),
            },
            isolate,
            target,
            attached,
            up: true,
            ended: None,
            status: None,
            restarts: 0,
            captures_skipped: Default::default(),
            episodes: 0,
            evidence: None,
        }
    }
}
