//! [`Session`]: one CDP connection over one WebSocket.
//!
//! Design (`../shared/reference/crates.md` §5): a reader task parses every text frame; replies
//! (frames with an `id`) go to the `oneshot` waiting for that id, events (frames with a `method`)
//! go to whichever operation currently listens for them, in wire order. A writer task owns the
//! sink. Events nobody listens for are dropped right away, so a chatty target cannot make us
//! buffer without bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::endpoint::{self, Endpoint};
use crate::error::{CloseReason, InspectorError, duration_ms, shorten};

type Ws = WebSocketStream<TcpStream>;

/// Largest WebSocket message and frame we accept, in bytes (tungstenite's defaults of 64 MiB and
/// 16 MiB are too small for big `getSamplingProfile` or `Runtime.evaluate` replies).
const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Default per-call timeout.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout for the TCP connect and the WebSocket handshake.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll interval while node is still bootstrapping.
const PID_POLL: Duration = Duration::from_millis(10);
/// How long [`Session::close`] waits for the inspector to acknowledge the close.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Quiet period that ends the collection of `Debugger.scriptParsed` events.
const SCRIPTS_QUIET: Duration = Duration::from_millis(100);
/// Upper bound on the time spent collecting `Debugger.scriptParsed` after `Debugger.enable`.
const SCRIPTS_MAX: Duration = Duration::from_secs(2);

/// A CDP event routed to the operation listening for it.
#[derive(Debug)]
pub(crate) struct Event {
    pub method: String,
    pub params: Value,
}

/// The `error` object of a CDP reply.
#[derive(Debug, Deserialize)]
pub(crate) struct RpcError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<Value>,
}

/// A CDP reply: its `result` or its `error`.
pub(crate) type Reply = Result<Value, RpcError>;

#[derive(Debug, Deserialize)]
struct Incoming {
    id: Option<u64>,
    method: Option<String>,
    #[serde(default)]
    params: Value,
    result: Option<Value>,
    error: Option<RpcError>,
}

enum WriterMsg {
    Text(String),
    Close,
}

struct Pending {
    open: bool,
    map: HashMap<u64, oneshot::Sender<Reply>>,
}

struct Route {
    methods: &'static [&'static str],
    tx: mpsc::UnboundedSender<Event>,
}

/// State shared by the session handle and its reader and writer tasks.
pub(crate) struct Shared {
    url: String,
    pending: Mutex<Pending>,
    route: Mutex<Option<Route>>,
    close_tx: watch::Sender<Option<CloseReason>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Records why the session ended; the first reason wins.
    fn set_closed(&self, reason: CloseReason) {
        self.close_tx.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.close_tx.borrow().clone()
    }

    fn dispatch(&self, text: &str, writer: &mpsc::WeakUnboundedSender<WriterMsg>) {
        let Ok(msg) = serde_json::from_str::<Incoming>(text) else {
            return;
        };
        if let Some(id) = msg.id {
            let waiter = lock(&self.pending).map.remove(&id);
            if let Some(waiter) = waiter {
                let reply = match msg.error {
                    Some(e) => Err(e),
                    None => Ok(msg.result.unwrap_or(Value::Null)),
                };
                // The caller may have given up (timeout, cancellation): nothing to do then.
                let _ = waiter.send(reply);
            }
            return;
        }
        let Some(method) = msg.method else {
            return;
        };
        if method == "NodeRuntime.waitingForDisconnect" {
            // Node keeps running until every debugger disconnects: let it exit.
            self.set_closed(CloseReason::TargetFinished);
            if let Some(writer) = writer.upgrade() {
                let _ = writer.send(WriterMsg::Close);
            }
            return;
        }
        let route = lock(&self.route);
        if let Some(route) = route.as_ref()
            && route.methods.contains(&method.as_str())
        {
            let _ = route.tx.send(Event {
                method,
                params: msg.params,
            });
        }
    }
}

/// Runs when the reader task ends, including when it is aborted: fails every pending call,
/// stops event routing and reports the session as finished.
struct ReaderExit {
    shared: Arc<Shared>,
    finished: watch::Sender<bool>,
}

impl Drop for ReaderExit {
    fn drop(&mut self) {
        self.shared
            .set_closed(CloseReason::ConnectionLost(String::from("reader stopped")));
        {
            let mut pending = lock(&self.shared.pending);
            pending.open = false;
            pending.map.clear();
        }
        lock(&self.shared.route).take();
        let _ = self.finished.send(true);
    }
}

async fn reader_task(
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    writer: mpsc::WeakUnboundedSender<WriterMsg>,
    finished: watch::Sender<bool>,
) {
    let exit = ReaderExit {
        shared: Arc::clone(&shared),
        finished,
    };
    let reason = loop {
        match stream.next().await {
            None => {
                break CloseReason::ConnectionLost(String::from("connection closed without a close frame"));
            }
            Some(Err(e)) => break CloseReason::ConnectionLost(e.to_string()),
            Some(Ok(Message::Text(text))) => shared.dispatch(text.as_str(), &writer),
            Some(Ok(Message::Close(_))) => break CloseReason::ClosedByPeer,
            Some(Ok(_)) => {}
        }
    };
    shared.set_closed(reason);
    drop(exit);
}

async fn writer_task(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    mut reader_finished: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            // The connection is gone: drop the sink so the socket closes now rather than
            // when the session is dropped.
            _ = reader_finished.wait_for(|done| *done) => break,
        };
        match msg {
            Some(WriterMsg::Text(text)) => {
                if let Err(e) = sink.send(Message::Text(text.into())).await {
                    shared.set_closed(CloseReason::ConnectionLost(e.to_string()));
                    break;
                }
            }
            Some(WriterMsg::Close) | None => {
                shared.set_closed(CloseReason::ClosedByUs);
                // An explicit close frame: dropping the sink is not enough while the reader
                // half keeps the socket open, and node waits for the debugger to disconnect.
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
    rx.close();
    let abort = reader.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE, reader).await.is_err() {
        abort.abort();
    }
}

/// Unregisters an event route when dropped.
pub(crate) struct RouteGuard {
    shared: Arc<Shared>,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        lock(&self.shared.route).take();
    }
}

/// Removes a pending call when the waiting future ends or is dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).map.remove(&self.id);
    }
}

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
    pub(crate) shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<WriterMsg>,
    finished: watch::Receiver<bool>,
    next_id: AtomicU64,
    call_timeout: Duration,
    pid: u32,
    heap_profiler: OnceCell<()>,
    pub(crate) event_lock: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.shared.url)
            .field("pid", &self.pid)
            .field("closed", &self.shared.close_reason())
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.writer.send(WriterMsg::Close);
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
        let url = endpoint.ws_url();
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint.addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(InspectorError::Connect { url, source }),
            Err(_) => {
                return Err(InspectorError::Connect {
                    url,
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "tcp connect timed out"),
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let handshake = tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config));
        let ws = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => {
                return Err(InspectorError::WebSocket {
                    url,
                    source: Box::new(e),
                });
            }
            Err(_) => {
                return Err(InspectorError::WebSocket {
                    url,
                    source: Box::new(tokio_tungstenite::tungstenite::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "websocket handshake timed out",
                    ))),
                });
            }
        };
        let mut session = Session::start(ws, url);
        match session
            .call("NodeRuntime.notifyWhenWaitingForDisconnect", json!({ "enabled": true }))
            .await
        {
            // Older or non-node targets may not know the NodeRuntime domain.
            Ok(_) | Err(InspectorError::Protocol { .. }) => {}
            Err(e) => return Err(e),
        }
        session.pid = session.wait_for_pid().await?;
        Ok(session)
    }

    /// Reads `process.pid`. Node opens its inspector before it finishes bootstrapping, and
    /// `process.pid` is only defined right before the main script runs: until then, poll.
    /// Waiting for it also means the app's globals (`PerformanceObserver`) exist once
    /// `connect` returns.
    async fn wait_for_pid(&self) -> Result<u32, InspectorError> {
        const EXPR: &str = "(typeof process === 'object' && process !== null) ? process.pid : undefined";
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let value = self.evaluate(EXPR).await?;
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

    fn start(ws: Ws, url: String) -> Session {
        let (sink, stream) = ws.split();
        let (close_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            url,
            pending: Mutex::new(Pending {
                open: true,
                map: HashMap::new(),
            }),
            route: Mutex::new(None),
            close_tx,
        });
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        let (finished_tx, finished_rx) = watch::channel(false);
        let reader = tokio::spawn(reader_task(
            stream,
            Arc::clone(&shared),
            writer_tx.downgrade(),
            finished_tx,
        ));
        tokio::spawn(writer_task(
            sink,
            writer_rx,
            Arc::clone(&shared),
            reader,
            finished_rx.clone(),
        ));
        Session {
            shared,
            writer: writer_tx,
            finished: finished_rx,
            next_id: AtomicU64::new(1),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            pid: 0,
            heap_profiler: OnceCell::new(),
            event_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The pid of the target process, as reported by its `process.pid` when connecting.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The WebSocket URL this session is connected to (`ws://127.0.0.1:PORT/UUID`).
    pub fn url(&self) -> &str {
        &self.shared.url
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
        self.shared.close_reason()
    }

    /// True once the session has ended (see [`Session::close_reason`]).
    pub fn is_closed(&self) -> bool {
        self.shared.close_reason().is_some()
    }

    /// Resolves when the session ends: the target finished, exited, crashed or was killed, or
    /// someone closed the session. Returns why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; meant for `tokio::select!`.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.shared.close_tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason
                .clone()
                .unwrap_or(CloseReason::ConnectionLost(String::from("unknown"))),
            // The sender lives in `self.shared`, so this cannot happen while `self` exists.
            Err(_) => CloseReason::ConnectionLost(String::from("session state dropped")),
        }
    }

    /// Sends a WebSocket close frame and waits (at most 3 s) until the inspector acknowledges
    /// it or the connection drops. Node exits only once no debugger is connected, so always
    /// close (or drop) sessions. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the close frame is queued before the first await.
    pub async fn close(&self) {
        let _ = self.writer.send(WriterMsg::Close);
        let mut finished = self.finished.clone();
        let _ = tokio::time::timeout(CLOSE_GRACE, finished.wait_for(|done| *done)).await;
    }

    pub(crate) fn closed_error(&self, method: &str) -> InspectorError {
        InspectorError::Closed {
            url: self.shared.url.clone(),
            method: method.to_owned(),
            reason: self
                .shared
                .close_reason()
                .unwrap_or(CloseReason::ConnectionLost(String::from("unknown"))),
        }
    }

    /// Queues a command and returns its id and the receiver for its reply.
    fn send(&self, method: &str, params: Value) -> Result<(u64, oneshot::Receiver<Reply>), InspectorError> {
        if self.shared.close_reason().is_some() {
            return Err(self.closed_error(method));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.shared.pending);
            if !pending.open {
                return Err(self.closed_error(method));
            }
            pending.map.insert(id, tx);
        }
        if self.writer.send(WriterMsg::Text(text)).is_err() {
            lock(&self.shared.pending).map.remove(&id);
            return Err(self.closed_error(method));
        }
        Ok((id, rx))
    }

    /// Sends a command whose reply will be awaited by the caller without a timeout; the
    /// reply is delivered through the returned receiver (used for takeHeapSnapshot).
    pub(crate) fn send_untimed(&self, method: &str, params: Value) -> Result<oneshot::Receiver<Reply>, InspectorError> {
        self.send(method, params).map(|(_, rx)| rx)
    }

    /// Converts the outcome of a reply receiver into a result.
    pub(crate) fn reply_result(
        &self,
        method: &str,
        reply: Result<Reply, oneshot::error::RecvError>,
    ) -> Result<Value, InspectorError> {
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(protocol_error(method, e)),
            Err(_) => Err(self.closed_error(method)),
        }
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
        let (id, rx) = self.send(method, params)?;
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(reply) => self.reply_result(method, reply),
            Err(_) => match self.shared.close_reason() {
                Some(_) => Err(self.closed_error(method)),
                None => Err(InspectorError::Timeout {
                    url: self.shared.url.clone(),
                    method: method.to_owned(),
                    timeout_ms: duration_ms(timeout),
                }),
            },
        }
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
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "returnByValue": true,
                    "awaitPromise": true,
                }),
            )
            .await?;
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

    /// Enables the HeapProfiler domain once per session.
    pub(crate) async fn ensure_heap_profiler(&self) -> Result<(), InspectorError> {
        self.heap_profiler
            .get_or_try_init(|| async { self.call("HeapProfiler.enable", json!({})).await.map(|_| ()) })
            .await
            .map(|_| ())
    }

    /// Routes the given event methods to `tx` until the guard is dropped. The caller must
    /// hold [`Session::event_lock`].
    pub(crate) fn route_events(
        &self,
        methods: &'static [&'static str],
        tx: mpsc::UnboundedSender<Event>,
    ) -> RouteGuard {
        *lock(&self.shared.route) = Some(Route { methods, tx });
        RouteGuard {
            shared: Arc::clone(&self.shared),
        }
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
        let _exclusive = self.event_lock.lock().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _route = self.route_events(EVENTS, tx);
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

fn protocol_error(method: &str, e: RpcError) -> InspectorError {
    let mut message = e.message;
    if let Some(data) = e.data {
        let data = match data {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if !data.is_empty() {
            message = format!("{message} ({})", shorten(&data, 200));
        }
    }
    InspectorError::Protocol {
        method: method.to_owned(),
        code: e.code,
        message,
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

    #[test]
    fn incoming_messages_tolerate_odd_shapes() {
        for text in [
            r#"{"id":1,"result":{}}"#,
            r#"{"id":2,"error":{"code":-32601,"message":"nope"}}"#,
            r#"{"id":3,"error":{}}"#,
            r#"{"method":"X.y"}"#,
            r#"{"method":"X.y","params":{"a":1}}"#,
        ] {
            assert!(serde_json::from_str::<Incoming>(text).is_ok(), "{text}");
        }
        assert!(serde_json::from_str::<Incoming>(r#"{"id":-1}"#).is_err());
        assert!(serde_json::from_str::<Incoming>("not json").is_err());
    }

    #[test]
    fn protocol_errors_include_data() {
        let e = protocol_error(
            "A.b",
            RpcError {
                code: -32602,
                message: String::from("Invalid parameters"),
                data: Some(Value::String(String::from("x: string expected"))),
            },
        );
        assert_eq!(
            e.to_string(),
            "A.b failed with cdp error -32602: Invalid parameters (x: string expected)"
        );
    }
}
