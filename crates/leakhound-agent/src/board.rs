//! [`Board`]: the agent's view of every watched process, kept up to date from the watch's
//! events.

use std::sync::{Arc, RwLock};
use std::time::Instant;

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
                });
                entry.key = status.key.clone();
                entry.up = status.up;
                if status.ended.is_some() {
                    entry.ended = status.ended.clone();
                }
                entry.status = Some((**status).clone());
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

    fn slot(&mut self, index: usize) -> &mut Option<TargetEntry> {
        if self.targets.len() <= index {
            self.targets.resize(index + 1, None);
        }
        &mut self.targets[index]
    }
}
