//! `worker_threads` Workers as sessions of their own, multiplexed over their process's
//! connection through the inspector's `NodeWorker` domain: `NodeWorker.enable
//! {waitForDebuggerOnStart: false}` announces every worker (those running and those
//! started later) with `NodeWorker.attachedToWorker`; each then has a `sessionId`, and CDP
//! messages travel to it as `NodeWorker.sendMessageToWorker` and back as
//! `NodeWorker.receivedMessageFromWorker` (the transport's tunnel, `transport.rs`). A
//! worker thread's [`Session`] offers everything a process's does: `Runtime.evaluate`,
//! `process.memoryUsage()` (in a worker, `heapUsed`, `heapTotal` and `external` are the
//! worker's own isolate's; `rss` is the whole process's: checked on node 20), forced GCs
//! and heap snapshots of the worker's heap.

use serde_json::{Value, json};

use crate::error::InspectorError;
use crate::session::Session;

/// A worker thread announced by `NodeWorker.attachedToWorker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerThreadInfo {
    /// The `NodeWorker` session id that carries its messages.
    pub session_id: String,
    /// Its `threadId` (`workerId` in the protocol).
    pub thread_id: Option<u32>,
    /// The title node gives it (`[worker 1] …`).
    pub title: String,
    /// The worker's script URL.
    pub url: String,
}

impl WorkerThreadInfo {
    fn from_event(params: &Value) -> Option<WorkerThreadInfo> {
        let info = params.get("workerInfo")?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        Some(WorkerThreadInfo {
            session_id: params.get("sessionId")?.as_str()?.to_owned(),
            thread_id: info
                .get("workerId")
                .and_then(|w| w.as_str().and_then(|s| s.parse().ok()).or_else(|| w.as_u64()))
                .and_then(|w| u32::try_from(w).ok()),
            title: text(info.get("title")),
            url: text(info.get("url")),
        })
    }
}

impl Session {
    /// Asks the target to announce its worker threads (`NodeWorker.enable` without
    /// pausing them); read them with [`Session::new_worker_threads`].
    ///
    /// # Errors
    ///
    /// As [`Session::call`] ([`InspectorError::Protocol`] from a target without the
    /// `NodeWorker` domain, such as Deno).
    pub async fn enable_worker_threads(&self) -> Result<(), InspectorError> {
        self.call("NodeWorker.enable", json!({ "waitForDebuggerOnStart": false }))
            .await
            .map(|_| ())
    }

    /// The worker threads announced since the last call, oldest first.
    pub fn new_worker_threads(&self) -> Vec<WorkerThreadInfo> {
        self.transport
            .take_attached_workers()
            .iter()
            .filter_map(WorkerThreadInfo::from_event)
            .collect()
    }

    /// A session with worker thread `info` of this session's process, carried over this
    /// session's connection (it ends when the worker exits or this session closes).
    ///
    /// # Errors
    ///
    /// As [`Session::evaluate`] while reading its `process.pid`.
    pub async fn connect_worker_thread(&self, info: &WorkerThreadInfo) -> Result<Session, InspectorError> {
        let url = format!("{}#worker-{}", self.url(), info.thread_id.unwrap_or(0));
        let transport = self.transport.tunnel(&info.session_id, url);
        Session::over(transport, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_events_are_read() {
        let e = json!({"sessionId": "1", "workerInfo": {"workerId": "3", "type": "worker", "title": "[worker 3] x", "url": "file:///w.js"}, "waitingForDebugger": false});
        let info = WorkerThreadInfo::from_event(&e).unwrap();
        assert_eq!(info.thread_id, Some(3));
        assert_eq!(info.session_id, "1");
        assert_eq!(WorkerThreadInfo::from_event(&json!({})), None);
    }
}
