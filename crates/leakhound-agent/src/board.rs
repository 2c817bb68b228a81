//! [`Board`]: the agent's view of every watched process, kept up to date from the watch's
//! events.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use leakhound_hunt::capture_hook::CaptureEvent;
use leakhound_hunt::{TargetKey, TargetStatus, WatchEvent};

/// One watched process on the board.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// Which isolate.
    pub key: TargetKey,
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

/// The latest state of every watched process, in the watch's order.
#[derive(Debug, Clone)]
pub struct Board {
    /// The `app` label of every series (`--app-name`).
    pub app: String,
    /// When the agent started.
    pub started: Instant,
    /// The targets, by their place in the watch.
    pub targets: Vec<Option<TargetEntry>>,
}

/// A board shared between the watch's event loop (the only writer) and the server.
pub type SharedBoard = Arc<RwLock<Board>>;

impl Board {
    /// An empty board for the app named `app`, started now.
    pub fn new(app: impl Into<String>) -> Board {
        Board {
            app: app.into(),
            started: Instant::now(),
            targets: Vec::new(),
        }
    }

    /// An empty board behind a lock, to share.
    pub fn shared(app: impl Into<String>) -> SharedBoard {
        Arc::new(RwLock::new(Board::new(app)))
    }

    /// The targets known so far, in the watch's order.
    pub fn entries(&self) -> impl Iterator<Item = &TargetEntry> {
        self.targets.iter().flatten()
    }

    /// Takes in one event of the watch: a target started, its status after a sample, its
    /// end. Other events (the app's output) change nothing.
    pub fn apply(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Started { target, pid, attached } => {
                *self.slot(*target) = Some(TargetEntry {
                    key: TargetKey {
                        pid: *pid,
                        thread_id: None,
                    },
                    attached: *attached,
                    up: true,
                    ended: None,
                    status: None,
                    restarts: 0,
                    captures_skipped: Default::default(),
                    episodes: 0,
                    evidence: None,
                });
            }
            WatchEvent::Status(status) => {
                let slot = self.slot(status.index);
                let entry = slot.get_or_insert_with(|| TargetEntry {
                    key: status.key.clone(),
                    attached: status.attached,
                    up: status.up,
                    ended: None,
                    status: None,
                    restarts: 0,
                    captures_skipped: Default::default(),
                    episodes: 0,
                    evidence: None,
                });
                entry.key = status.key.clone();
                entry.up = status.up;
                if status.ended.is_some() {
                    entry.ended = status.ended.clone();
                }
                entry.status = Some((**status).clone());
            }
            WatchEvent::Restarted { target, restarts, .. } => {
                if let Some(entry) = self.slot(*target) {
                    entry.restarts = u64::from(*restarts);
                }
            }
            WatchEvent::Ended { target, reason, .. } => {
                if let Some(entry) = self.slot(*target) {
                    entry.up = false;
                    entry.ended = Some(reason.clone());
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
        let Some(entry) = self.targets.iter_mut().flatten().find(|e| e.key == key) else {
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

    fn slot(&mut self, index: usize) -> &mut Option<TargetEntry> {
        if self.targets.len() <= index {
            self.targets.resize(index + 1, None);
        }
        &mut self.targets[index]
    }
}
