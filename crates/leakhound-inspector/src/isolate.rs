//! Which isolate of an app a [`Session`](crate::Session) talks to: the process leakhound
//! started or attached to, a cluster worker or other node child it forked, or a
//! `worker_threads` Worker inside any of them. One V8 isolate has one heap, one memory
//! series and one verdict.

use std::fmt;

/// What kind of isolate: the wire names are `main`, `cluster_worker`, `child`,
/// `worker_thread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IsolateKind {
    /// The main thread of the process leakhound started or attached to.
    Main,
    /// The main thread of a `node:cluster` worker process (it has `NODE_UNIQUE_ID`).
    ClusterWorker,
    /// The main thread of another node process the app started (`child_process.fork`…).
    Child,
    /// A `worker_threads` Worker inside one of the processes.
    WorkerThread,
}

impl IsolateKind {
    /// The wire name: `main`, `cluster_worker`, `child`, `worker_thread`.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolateKind::Main => "main",
            IsolateKind::ClusterWorker => "cluster_worker",
            IsolateKind::Child => "child",
            IsolateKind::WorkerThread => "worker_thread",
        }
    }
}

impl fmt::Display for IsolateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One isolate of the app, by process and thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Isolate {
    /// The process it runs in.
    pub pid: u32,
    /// What it is.
    pub kind: IsolateKind,
    /// For a worker thread, its `threadId` (`require('worker_threads').threadId`, which
    /// the inspector's `NodeWorker` domain calls `workerId`); None for a process's main
    /// thread.
    pub thread_id: Option<u32>,
    /// For a cluster worker, its `cluster.worker.id` (1, 2, … in fork order, also after
    /// replacements); None otherwise.
    pub worker_id: Option<u32>,
}

impl Isolate {
    /// The main thread of process `pid`, of `kind`.
    pub fn process(pid: u32, kind: IsolateKind) -> Isolate {
        Isolate {
            pid,
            kind,
            thread_id: None,
            worker_id: None,
        }
    }
}

impl fmt::Display for Isolate {
    /// `main process, pid 4711`, `cluster worker 2, pid 4712`, `child process, pid 4713`,
    /// `worker thread 1 of pid 4711`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.worker_id, self.thread_id) {
            (IsolateKind::Main, ..) => write!(f, "main process, pid {}", self.pid),
            (IsolateKind::ClusterWorker, Some(id), _) => write!(f, "cluster worker {id}, pid {}", self.pid),
            (IsolateKind::ClusterWorker, None, _) => write!(f, "cluster worker, pid {}", self.pid),
            (IsolateKind::Child, ..) => write!(f, "child process, pid {}", self.pid),
            (IsolateKind::WorkerThread, _, Some(t)) => write!(f, "worker thread {t} of pid {}", self.pid),
            (IsolateKind::WorkerThread, _, None) => write!(f, "worker thread of pid {}", self.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolates_are_named_as_users_say_them() {
        let mut w = Isolate::process(4711, IsolateKind::ClusterWorker);
        w.worker_id = Some(2);
        assert_eq!(w.to_string(), "cluster worker 2, pid 4711");
        let t = Isolate {
            pid: 4711,
            kind: IsolateKind::WorkerThread,
            thread_id: Some(1),
            worker_id: None,
        };
        assert_eq!(t.to_string(), "worker thread 1 of pid 4711");
        assert_eq!(
            Isolate::process(9, IsolateKind::Main).to_string(),
            "main process, pid 9"
        );
        assert_eq!(IsolateKind::WorkerThread.as_str(), "worker_thread");
    }
}
