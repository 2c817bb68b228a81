//! Finding the isolates of an app, shared by the hunt (`isolates.rs`) and the watch
//! (`watch.rs`): the node processes below the app in `/proc`'s process tree (cluster
//! workers and other children, classified by `NODE_UNIQUE_ID` and connected through the
//! loopback ports they really listen on, or opened with SIGUSR1 when they have no
//! inspector: [`connect_child`]) and the `worker_threads` Workers announced by the
//! `NodeWorker` domain of every process and thread followed. A [`Discovery`] remembers what
//! it has already found, so each pass returns only what is new; polled, it follows workers
//! that exit and are replaced.
//!
//! A pass is split in two ([`Discovery::children`], then [`Discovery::threads`]) so that the
//! caller can add the children found before asking for worker threads: a new child's own
//! threads are then found in the same pass.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leakhound_inspector::children::{
    classify_child, connect_child, connect_child_of_attached, listeners_below, node_descendants,
};
use leakhound_inspector::{Isolate, IsolateKind, Session};

/// How long a new child gets to show its inspector.
pub(crate) const CHILD_CONNECT: Duration = Duration::from_secs(10);
/// Most isolates followed at a time (an app that starts a worker thread or a child per
/// request would otherwise get a session and a sampling task for each); past it, new ones
/// are left alone and the caller says so once.
pub(crate) const MAX_ISOLATES: usize = 64;
/// How often `/proc` and the `NodeWorker` announcements are polled.
pub(crate) const DISCOVERY_INTERVAL: Duration = Duration::from_millis(500);
/// How long the announcements of running workers take to follow `NodeWorker.enable`'s
/// reply.
const ANNOUNCEMENTS: Duration = Duration::from_millis(50);

/// What a pass found.
pub(crate) enum Found {
    /// A new isolate, with its own session (a worker thread's is tunnelled through its
    /// process's).
    Isolate(Isolate, Session),
    /// A new isolate whose inspector could not be reached, and why.
    Unfollowed(Isolate, String),
    /// There were more isolates than [`MAX_ISOLATES`]: some were left alone.
    Full,
}

/// What has been found so far below one app.
#[derive(Debug)]
pub(crate) struct Discovery {
    /// Follow children and worker threads at all (false: a pass finds nothing, but still
    /// notes whether children exist).
    follow: bool,
    /// Pids of child processes already followed or given up on, among those still below
    /// the app (a pid that is gone is forgotten: the kernel may give it to a new process).
    seen_pids: BTreeSet<u32>,
    /// Sessions whose worker threads are announced (`NodeWorker.enable` done), by pid and
    /// thread.
    workers_enabled: BTreeSet<(u32, Option<u32>)>,
    /// Whether other node processes were ever seen below the app (followed or not).
    children_seen: bool,
    /// For an app leakhound attached to: the loopback ports its children listened on
    /// before (an inspector found elsewhere on a child is left closed again, as found).
    open_before: Option<BTreeMap<u32, BTreeSet<SocketAddr>>>,
}

/// What the children of an app listened on before leakhound attached to it (see
/// [`Discovery::attached`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenBefore(BTreeMap<u32, BTreeSet<SocketAddr>>);

impl OpenBefore {
    /// Read now, below `root` (call it before attaching).
    pub(crate) fn read(root: u32) -> OpenBefore {
        OpenBefore(listeners_below(root))
    }
}

impl Discovery {
    /// Nothing found yet; `follow` false finds nothing (`--main-only`).
    pub(crate) fn new(follow: bool) -> Discovery {
        Discovery {
            follow,
            seen_pids: BTreeSet::new(),
            workers_enabled: BTreeSet::new(),
            children_seen: false,
            open_before: None,
        }
    }

    /// Leaves the processes `pids` alone (watched as targets of their own: `--attach` of a
    /// primary and of one of its workers).
    pub(crate) fn skipping(mut self, pids: impl IntoIterator<Item = u32>) -> Discovery {
        self.seen_pids.extend(pids);
        self
    }

    /// For an app leakhound attached to: what its children listened on before. Inspectors
    /// its children open since (node's cluster opens every worker's when the primary's is
    /// opened, and SIGUSR1 here) are closed again when their sessions close.
    pub(crate) fn attached(mut self, before: OpenBefore) -> Discovery {
        self.open_before = Some(before.0);
        self
    }

    /// Whether other node processes were ever seen below the app (followed or not).
    pub(crate) fn children_seen(&self) -> bool {
        self.children_seen
    }

    /// The node processes below `root` not found before, each classified and connected
    /// (at most `room` of them connected; [`Found::Full`] when there were more). Nothing
    /// when following is off or `stop` is set; a child that exits meanwhile is no news.
    pub(crate) async fn children(&mut self, root: u32, mut room: usize, stop: &AtomicBool) -> Vec<Found> {
        let kids = node_descendants(root);
        if !kids.is_empty() {
            self.children_seen = true;
        }
        // Forget the pids that are gone (bounded by the processes alive below the app).
        self.seen_pids.retain(|p| kids.binary_search(p).is_ok());
        let mut found = Vec::new();
        if !self.follow {
            return found;
        }
        for pid in kids {
            if stop.load(Ordering::SeqCst) || self.seen_pids.contains(&pid) {
                continue;
            }
            if room == 0 {
                if !matches!(found.last(), Some(Found::Full)) {
                    found.push(Found::Full);
                }
                continue;
            }
            self.seen_pids.insert(pid);
            let Ok(isolate) = classify_child(pid) else {
                // Gone already (a short-lived child).
                continue;
            };
            let connected = match &self.open_before {
                Some(before) => {
                    let empty = BTreeSet::new();
                    connect_child_of_attached(pid, CHILD_CONNECT, before.get(&pid).unwrap_or(&empty)).await
                }
                None => connect_child(pid, CHILD_CONNECT).await,
            };
            match connected {
                Ok(session) => {
                    room -= 1;
                    found.push(Found::Isolate(isolate, session));
                }
                Err(e) => {
                    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        found.push(Found::Unfollowed(isolate, e.to_string()));
                    }
                }
            }
        }
        found
    }

    /// The worker threads announced since the last pass in each of `of` (the processes and
    /// threads followed, nested workers included), each connected through its process's
    /// session (at most `room`; [`Found::Full`] when there were more). The first pass on a
    /// session asks it to announce its workers (`NodeWorker.enable`). Closed sessions are
    /// skipped; nothing when following is off or `stop` is set.
    pub(crate) async fn threads(
        &mut self,
        of: &[(Isolate, Arc<Session>)],
        mut room: usize,
        stop: &AtomicBool,
    ) -> Vec<Found> {
        let mut found = Vec::new();
        if !self.follow {
            return found;
        }
        // Forget the sessions no longer given (their isolates ended).
        let live: BTreeSet<(u32, Option<u32>)> = of
            .iter()
            .filter(|(_, s)| !s.is_closed())
            .map(|(i, _)| (i.pid, i.thread_id))
            .collect();
        self.workers_enabled.retain(|k| live.contains(k));
        for (isolate, session) in of {
            if session.is_closed() || stop.load(Ordering::SeqCst) {
                continue;
            }
            let key = (isolate.pid, isolate.thread_id);
            if self.workers_enabled.insert(key) {
                if session.enable_worker_threads().await.is_err() {
                    // No NodeWorker domain (Deno): asked once.
                    continue;
                }
                tokio::time::sleep(ANNOUNCEMENTS).await;
            }
            for info in session.new_worker_threads() {
                if room == 0 {
                    if !matches!(found.last(), Some(Found::Full)) {
                        found.push(Found::Full);
                    }
                    break;
                }
                let thread = Isolate {
                    pid: isolate.pid,
                    kind: IsolateKind::WorkerThread,
                    thread_id: info.thread_id,
                    worker_id: None,
                };
                match session.connect_worker_thread(&info).await {
                    Ok(s) => {
                        room -= 1;
                        found.push(Found::Isolate(thread, s));
                    }
                    Err(e) => found.push(Found::Unfollowed(thread, e.to_string())),
                }
            }
        }
        found
    }
}

/// The warning when [`Found::Full`] was returned.
pub(crate) fn full_warning() -> String {
    format!(
        "the app has more than {MAX_ISOLATES} isolates (processes and worker threads): the ones past the first {MAX_ISOLATES} are not followed"
    )
}
