//! [`Session`]: one CDP session with a Node.js process, over a [`Transport`]: connecting to
//! a node target (by `ws://` or `http://` URL, or a known loopback endpoint) and the typed CDP
//! calls built on raw [`Session::call`]s (`Runtime.evaluate`, script URLs).
//!
//! Memory samples and the GC observer are in `memory.rs`, heap snapshots in `snapshot.rs`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{OnceCell, mpsc};

use crate::endpoint::{self, Endpoint};
use crate::error::{CloseReason, InspectorError, shorten};
use crate::transport::{CONNECT_TIMEOUT, Event, Transport};

/// Timeout of [`Session::call`] until [`Session::set_call_timeout`] changes it.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`Session::evaluate`] asks again when Deno lost its result's promise.
const EVALUATE_RETRIES: u32 = 5;
/// Poll interval while node is still bootstrapping.
const PID_POLL: Duration = Duration::from_millis(10);
/// Quiet period that ends the collection of `Debugger.scriptParsed` events.
const SCRIPTS_QUIET: Duration = Duration::from_millis(100);
/// Upper bound on the time spent collecting `Debugger.scriptParsed` after `Debugger.enable`.
const SCRIPTS_MAX: Duration = Duration::from_secs(2);

/// One Chrome DevTools Protocol session with a Node.js process, over one WebSocket to a
/// loopback address.
///
/// All methods take `&self`; share a session between tasks with an `Arc`. Operations that
/// consume events ([`take_heap_snapshot`](Session::take_heap_snapshot),
/// [`script_urls`](Session::script_urls)) run one at a time; plain calls can run concurrently
/// with them, but node handles commands one after the other, so a call made during a long
/// snapshot waits for the snapshot (and may hit its timeout).
///
/// Dropping a session sends a WebSocket close frame from a background task (node would
/// otherwise keep waiting for the debugger to disconnect when the app ends); call
/// [`close`](Session::close) to wait for that to finish.
pub struct Session {
    pub(crate) transport: Transport,
    call_timeout: Duration,
    pid: u32,
    heap_profiler: OnceCell<()>,
    /// Close the target's inspector when this session closes: leakhound opened it
    /// (SIGUSR1) and leaves the process as it found it.
    close_inspector: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.transport.url())
            .field("pid", &self.pid)
            .field("closed", &self.transport.close_reason())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to a `ws://HOST:PORT/PATH` inspector URL, as printed by node
    /// (`Debugger listening on ws://127.0.0.1:9229/<uuid>`).
    ///
    /// `HOST` must be a loopback address (`127.0.0.0/8`, `::1`) or `localhost` (mapped to
    /// 127.0.0.1 without name resolution); a missing port means 9229. After the handshake the
    /// session asks node to report when the app finishes (`NodeRuntime.waitingForDisconnect`,
    /// which makes the session close itself so node can exit) and reads `process.pid`.
    ///
    /// # Errors
    ///
    /// [`InspectorError::InvalidUrl`] / [`InspectorError::NotLoopback`] for a bad URL,
    /// [`InspectorError::Connect`] / [`InspectorError::WebSocket`] when nothing answers within
    /// 10 s, any call error while reading `process.pid`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future drops the half-open connection.
    pub async fn connect(ws_url: &str) -> Result<Session, InspectorError> {
        let endpoint = endpoint::parse_url(ws_url, "ws")?;
        Session::connect_endpoint(&endpoint).await
    }

    /// Connects through an inspector's HTTP address such as `http://127.0.0.1:9229`: reads
    /// `/json/list` and connects to the first `node` target's WebSocket.
    ///
    /// The URL's path is ignored. The same loopback rules as [`Session::connect`] apply.
    ///
    /// # Errors
    ///
    /// As [`Session::connect`], plus [`InspectorError::Http`] / [`InspectorError::NoTarget`]
    /// when `/json/list` gives no usable answer within 10 s.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn connect_http(http_url: &str) -> Result<Session, InspectorError> {
        let endpoint = endpoint::parse_url(http_url, "http")?;
        let targets = endpoint::json_list(&endpoint, CONNECT_TIMEOUT).await?;
        let mut last_err = None;
        for target in targets {
            let ws = Endpoint {
                path: target.ws_path,
                ..endpoint.clone()
            };
            match Session::connect_endpoint(&ws).await {
                Ok(session) => return Ok(session),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or(InspectorError::NoTarget {
            url: endpoint.http_url(),
        }))
    }

    /// Connects to either kind of URL: `ws://…` as [`Session::connect`], `http://…` as
    /// [`Session::connect_http`].
    ///
    /// # Errors
    ///
    /// As those two; [`InspectorError::InvalidUrl`] for any other scheme.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn connect_url(url: &str) -> Result<Session, InspectorError> {
        let lower = url.trim_start().to_ascii_lowercase();
        if lower.starts_with("ws://") {
            Session::connect(url).await
        } else if lower.starts_with("http://") {
            Session::connect_http(url).await
        } else {
            Err(InspectorError::InvalidUrl {
                url: url.to_owned(),
                reason: String::from("expected a ws:// or http:// url"),
            })
        }
    }

    pub(crate) async fn connect_endpoint(endpoint: &Endpoint) -> Result<Session, InspectorError> {
        let transport = Transport::connect(endpoint).await?;
        Session::over(transport, true).await
    }

    /// A session over `transport`: asks node to report when the app finishes (`notify`;
    /// a worker thread's session does not) and reads `process.pid`.
    pub(crate) async fn over(transport: Transport, notify: bool) -> Result<Session, InspectorError> {
        let mut session = Session {
            transport,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            pid: 0,
            heap_profiler: OnceCell::new(),
            close_inspector: std::sync::atomic::AtomicBool::new(false),
        };
        if notify {
            match session
                .call("NodeRuntime.notifyWhenWaitingForDisconnect", json!({ "enabled": true }))
                .await
            {
                // Older or non-node targets may not know the NodeRuntime domain.
                Ok(_) | Err(InspectorError::Protocol { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        session.pid = session.wait_for_pid().await?;
        Ok(session)
    }

    /// Reads `process.pid`. Node opens its inspector before it finishes bootstrapping, and
    /// `process.pid` is only defined right before the main script runs: until then, poll.
    /// Waiting for it also means the app's globals (`PerformanceObserver`) exist once
    /// `connect` returns.
    async fn wait_for_pid(&self) -> Result<u32, InspectorError> {
        const EXPR: &str = "(typeof process === 'object' && process !== null && process.pid) ? process.pid \
             : (typeof Deno === 'object' && Deno !== null) ? Deno.pid : undefined";
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let value = match self.evaluate(EXPR).await {
                Ok(v) => v,
                // Deno answers this while its main module is still being loaded: not yet.
                Err(InspectorError::Protocol { message, .. })
                    if message.contains("Promise was collected") && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(PID_POLL).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(pid) = value.as_u64().and_then(|p| u32::try_from(p).ok()) {
                return Ok(pid);
            }
            if !value.is_null() || tokio::time::Instant::now() >= deadline {
                return Err(InspectorError::UnexpectedReply {
                    method: String::from("Runtime.evaluate(process.pid)"),
                    reason: format!("expected a pid, got {}", shorten(&value.to_string(), 80)),
                });
            }
            tokio::time::sleep(PID_POLL).await;
        }
    }

    /// The pid of the target process, as reported by its `process.pid` when connecting.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The WebSocket URL this session is connected to (`ws://127.0.0.1:PORT/UUID`).
    pub fn url(&self) -> &str {
        self.transport.url()
    }

    /// The timeout applied by [`Session::call`] and the helpers built on it (default 30 s).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Sets the timeout applied by [`Session::call`] and the helpers built on it.
    ///
    /// [`Session::take_heap_snapshot`] never uses it; [`Session::collect_garbage`] uses at
    /// least 120 s.
    pub fn set_call_timeout(&mut self, timeout: Duration) {
        self.call_timeout = timeout;
    }

    /// Why the session ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.transport.close_reason()
    }

    /// True once the session has ended (see [`Session::close_reason`]).
    pub fn is_closed(&self) -> bool {
        self.transport.close_reason().is_some()
    }

    /// Resolves when the session ends: the target finished, exited, crashed or was killed, or
    /// someone closed the session. Returns why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; meant for `tokio::select!`.
    pub async fn closed(&self) -> CloseReason {
        self.transport.closed().await
    }

    /// Sends a WebSocket close frame and waits (at most 3 s) until the inspector acknowledges
    /// it or the connection drops. Node exits only once no debugger is connected, so always
    /// close (or drop) sessions. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the close frame is queued before the first await.
    pub async fn close(&self) {
        if self.close_inspector.swap(false, std::sync::atomic::Ordering::SeqCst) && !self.is_closed() {
            // `inspector.close()` stops the server and blocks the app's main thread until no
            // connection is left; run it a little after this reply, once our own connection
            // (closed right below) is gone, so it neither blocks on us nor tears a live
            // session down (an unref'd timer never keeps the app alive). Node 20.16+ and 22
            // have `process.getBuiltinModule`; CommonJS apps have `mainModule`;
            // `_debugEnd` is the internal fallback.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                self.evaluate(
                    "setTimeout(() => { try { const i = process.getBuiltinModule?.('node:inspector') \
                     ?? process.mainModule?.require('inspector'); if (i) i.close(); \
                     else process._debugEnd?.(); } catch {} }, 200).unref(), true",
                ),
            )
            .await;
            self.transport.close().await;
            // Return once the inspector really is closed, so whoever comes next (another
            // attach, the user) finds the process as it was before leakhound came.
            let port = url::Url::parse(self.url()).ok().and_then(|u| u.port());
            for _ in 0..40 {
                let open = crate::proc::listening_addrs(self.pid())
                    .map(|a| a.iter().any(|a| Some(a.port()) == port))
                    .unwrap_or(false);
                if !open {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return;
        }
        self.transport.close().await;
    }

    /// Whether [`Session::close`] will close the target's inspector too: `attach` opened it
    /// (SIGUSR1) and the session has not been closed yet.
    pub fn closes_inspector(&self) -> bool {
        self.close_inspector.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes [`Session::close`] close the target's inspector too (set by
    /// `attach` when SIGUSR1 opened it, and by callers for an inspector opened because of
    /// leakhound: node's cluster opens every worker's when the primary's is opened), so an
    /// attached process is left with no inspector listening, as leakhound found it.
    pub fn close_inspector_on_close(&self) {
        self.close_inspector.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The [`InspectorError::Closed`] error for `method` (a CDP method or what was being done).
    pub(crate) fn closed_error(&self, method: &str) -> InspectorError {
        self.transport.closed_error(method)
    }

    /// Sends a CDP command and waits for its reply, at most [`Session::call_timeout`].
    ///
    /// `params` is the command's parameter object (`json!({})` for none). Returns the reply's
    /// `result` object.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Protocol`] when the inspector answers with an error,
    /// [`InspectorError::Closed`] when the connection is or becomes closed,
    /// [`InspectorError::Timeout`] when no reply comes in time.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe in that nothing is corrupted: the reply, if it comes, is discarded. The
    /// command may still run in the target.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, InspectorError> {
        self.call_with_timeout(method, params, self.call_timeout).await
    }

    /// [`Session::call`] with an explicit timeout.
    ///
    /// # Errors
    ///
    /// As [`Session::call`].
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, InspectorError> {
        self.transport.request(method, params, timeout).await
    }

    /// Evaluates a JavaScript expression in the target's main context and returns its value
    /// as JSON (`returnByValue: true`; promises are awaited).
    ///
    /// `undefined` and values JSON cannot carry (`NaN`, `Infinity`, `-0`, BigInt) come back as
    /// `null`. Values that cannot be serialized (cycles, functions inside objects) give a
    /// [`InspectorError::Protocol`] error.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Exception`] when the expression throws or the promise rejects (with
    /// the exception text), and everything [`Session::call`] returns.
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn evaluate(&self, expression: &str) -> Result<Value, InspectorError> {
        let params = json!({
            "expression": expression,
            "returnByValue": true,
            "awaitPromise": true,
        });
        let mut tries = 0;
        let reply = loop {
            match self.call("Runtime.evaluate", params.clone()).await {
                // Deno drops the promise it wraps an evaluation's result in when a GC runs
                // meanwhile (a forced GC right before, or a heap snapshot): ask again.
                Err(InspectorError::Protocol { message, .. })
                    if message.contains("Promise was collected") && tries < EVALUATE_RETRIES =>
                {
                    tries += 1;
                    tokio::time::sleep(PID_POLL).await;
                }
                other => break other?,
            }
        };
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(InspectorError::Exception {
                expression: shorten(expression, 120),
                text: exception_text(details),
            });
        }
        let result = reply.get("result").ok_or_else(|| InspectorError::UnexpectedReply {
            method: String::from("Runtime.evaluate"),
            reason: String::from("no result field"),
        })?;
        Ok(result.get("value").cloned().unwrap_or(Value::Null))
    }

    /// The heap snapshot id V8 gives the global object (`HeapProfiler.getHeapObjectId`),
    /// a marker of V8's object-id map: ids are stable for the life of that map, and V8
    /// clears the map when any inspector session that enabled the heap profiler ends (its
    /// agent's `disable()` calls `ClearObjectIds()`), after which the same object gets
    /// another id. Snapshots taken on both sides of such a reset cannot be compared by id:
    /// a change of this marker between two snapshots says so.
    ///
    /// # Errors
    ///
    /// As [`Session::call`]; [`InspectorError::UnexpectedReply`] when a reply lacks its field.
    pub async fn object_id_marker(&self) -> Result<String, InspectorError> {
        self.ensure_heap_profiler().await?;
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": "globalThis", "returnByValue": false }),
            )
            .await?;
        let unexpected = |reason: &str| InspectorError::UnexpectedReply {
            method: String::from("HeapProfiler.getHeapObjectId"),
            reason: reason.to_owned(),
        };
        let object_id = reply
            .pointer("/result/objectId")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected("no objectId for globalThis"))?
            .to_owned();
        let id = self
            .call("HeapProfiler.getHeapObjectId", json!({ "objectId": object_id }))
            .await?;
        let _ = self
            .call("Runtime.releaseObject", json!({ "objectId": object_id }))
            .await;
        id.get("heapSnapshotObjectId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| unexpected("no heapSnapshotObjectId"))
    }

    /// Enables the HeapProfiler domain once per session.
    pub(crate) async fn ensure_heap_profiler(&self) -> Result<(), InspectorError> {
        self.heap_profiler
            .get_or_try_init(|| async { self.call("HeapProfiler.enable", json!({})).await.map(|_| ()) })
            .await
            .map(|_| ())
    }

    /// Maps every loaded script's `scriptId` to its URL (`file:///…` for CommonJS and ES
    /// modules, `node:internal/…` for node's own), as needed to name the scripts referenced by
    /// a heap snapshot's `locations`.
    ///
    /// Enables the Debugger domain (which replays `Debugger.scriptParsed` for every loaded
    /// script), collects events until the enable reply plus a 100 ms quiet period (at most
    /// 2 s), then disables it again. Pauses are skipped meanwhile, and a pause that happens
    /// anyway (a `debugger;` statement hit in between) is resumed. Scripts without a URL
    /// (`eval`, `new Function`) are left out.
    ///
    /// # Errors
    ///
    /// As [`Session::call`].
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: cancelling may leave the Debugger domain enabled, which makes the
    /// target stop on `debugger;` statements.
    pub async fn script_urls(&self) -> Result<HashMap<String, String>, InspectorError> {
        const EVENTS: &[&str] = &["Debugger.scriptParsed", "Debugger.paused"];
        let _exclusive = self.transport.event_lock.lock().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _route = self.transport.route_events(EVENTS, tx);
        let mut urls = HashMap::new();
        let collected = async {
            self.call("Debugger.enable", json!({})).await?;
            // Best effort: an old target without it still works.
            let _ = self.call("Debugger.setSkipAllPauses", json!({ "skip": true })).await;
            let deadline = tokio::time::Instant::now() + SCRIPTS_MAX;
            loop {
                let quiet_end = (tokio::time::Instant::now() + SCRIPTS_QUIET).min(deadline);
                match tokio::time::timeout_at(quiet_end, rx.recv()).await {
                    Ok(Some(event)) => self.script_event(event, &mut urls).await?,
                    Ok(None) => return Err(self.closed_error("Debugger.enable")),
                    Err(_) => break,
                }
            }
            Ok::<(), InspectorError>(())
        }
        .await;
        let disabled = self.call("Debugger.disable", json!({})).await;
        collected?;
        disabled?;
        Ok(urls)
    }

    async fn script_event(&self, event: Event, urls: &mut HashMap<String, String>) -> Result<(), InspectorError> {
        match event.method.as_str() {
            "Debugger.scriptParsed" => {
                let id = event.params.get("scriptId").and_then(Value::as_str);
                let url = event.params.get("url").and_then(Value::as_str);
                if let (Some(id), Some(url)) = (id, url)
                    && !url.is_empty()
                {
                    urls.insert(id.to_owned(), url.to_owned());
                }
            }
            "Debugger.paused" => {
                self.call("Debugger.resume", json!({})).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The most useful text of a CDP `ExceptionDetails` object.
pub(crate) fn exception_text(details: &Value) -> String {
    let description = details.get("exception").and_then(|e| {
        e.get("description").and_then(Value::as_str).or_else(|| {
            // A thrown primitive has a value instead of a description.
            e.get("value").and_then(Value::as_str)
        })
    });
    if let Some(d) = description {
        return d.to_owned();
    }
    if let Some(v) = details.get("exception").and_then(|e| e.get("value")) {
        return v.to_string();
    }
    details
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("unknown exception")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_text_prefers_the_description() {
        let d = json!({"text": "Uncaught", "exception": {"description": "Error: boom\n    at x"}});
        assert_eq!(exception_text(&d), "Error: boom\n    at x");
        let d = json!({"text": "Uncaught", "exception": {"type": "string", "value": "str"}});
        assert_eq!(exception_text(&d), "str");
        let d = json!({"text": "Uncaught", "exception": {"type": "number", "value": 3}});
        assert_eq!(exception_text(&d), "3");
        assert_eq!(exception_text(&json!({"text": "Uncaught"})), "Uncaught");
        assert_eq!(exception_text(&json!(null)), "unknown exception");
    }
}
