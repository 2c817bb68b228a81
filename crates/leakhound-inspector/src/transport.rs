//! [`Transport`]: the WebSocket under a [`Session`](crate::Session), one connection to a
//! loopback inspector, with CDP request/reply matching and event routing but no knowledge of
//! any CDP domain.
//!
//! A reader task parses every text frame; replies (frames with an `id`) go to the `oneshot`
//! waiting for that id, events (frames with a `method`) go to whichever operation currently
//! listens for them, in wire order. A writer task owns the sink. Events nobody listens for are
//! dropped right away, so a chatty target cannot make us buffer without bound.
//!
//! Two inspector quirks are handled here: node keeps running until every debugger has
//! disconnected, and dropping our half of the socket is not enough while the reader half keeps
//! it open, so closing always sends an explicit WebSocket close frame (and the
//! `NodeRuntime.waitingForDisconnect` event, the app having finished, triggers one); and
//! tungstenite's default message and frame limits (64 MiB and 16 MiB) are raised to 1 GiB.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::endpoint::Endpoint;
use crate::error::{CloseReason, InspectorError, duration_ms, shorten};

type Ws = WebSocketStream<TcpStream>;

/// Largest WebSocket message and frame we accept, in bytes (tungstenite's defaults of 64 MiB and
/// 16 MiB are too small for big `getSamplingProfile` or `Runtime.evaluate` replies).
const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Timeout for the TCP connect and the WebSocket handshake.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Transport::close`] waits for the inspector to acknowledge the close.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// A CDP event routed to the operation listening for it.
#[derive(Debug)]
pub(crate) struct Event {
    /// The event's method, e.g. `HeapProfiler.addHeapSnapshotChunk`.
    pub method: String,
    /// The event's `params` object (`null` when it has none).
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

/// State shared by the [`Transport`] handle and its reader and writer tasks.
pub(crate) struct Shared {
    url: String,
    pending: Mutex<Pending>,
    route: Mutex<Option<Route>>,
    close_tx: watch::Sender<Option<CloseReason>>,
    /// Worker-thread sessions carried by this connection, by their `sessionId`.
    tunnels: Mutex<HashMap<String, Tunnel>>,
    /// `NodeWorker.attachedToWorker` events not yet taken by [`Transport::take_attached_workers`]
    /// (at most [`MAX_ATTACHED_QUEUE`]).
    attached: Mutex<Vec<Value>>,
}

/// Most `NodeWorker.attachedToWorker` events kept until they are taken.
const MAX_ATTACHED_QUEUE: usize = 256;
/// Ids of the `NodeWorker.sendMessageToWorker` commands a tunnel sends start here, far from
/// the connection's own ids and below 2^31 (node takes ids as 32-bit integers); their
/// replies are not awaited.
const TUNNEL_ID_BASE: u64 = 1 << 30;

/// The far end of a worker-thread session: what the parent connection's reader feeds.
struct Tunnel {
    shared: Arc<Shared>,
    writer: mpsc::WeakUnboundedSender<WriterMsg>,
    finished: Arc<watch::Sender<bool>>,
}

impl Tunnel {
    /// Ends the tunnel's session: pending calls fail, routes stop, `closed()` resolves.
    fn end(&self, reason: CloseReason) {
        self.shared.set_closed(reason);
        {
            let mut pending = lock(&self.shared.pending);
            pending.open = false;
            pending.map.clear();
        }
        lock(&self.shared.route).take();
        for (_, t) in lock(&self.shared.tunnels).drain() {
            t.end(CloseReason::ConnectionLost(String::from("the parent session ended")));
        }
        let _ = self.finished.send(true);
    }
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
        let Some(msg) = parse_incoming(text) else {
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
        match method.as_str() {
            "NodeWorker.attachedToWorker" => {
                let mut queue = lock(&self.attached);
                if queue.len() < MAX_ATTACHED_QUEUE {
                    queue.push(msg.params);
                }
                return;
            }
            "NodeWorker.receivedMessageFromWorker" => {
                let id = msg.params.get("sessionId").and_then(Value::as_str).unwrap_or_default();
                let text = msg.params.get("message").and_then(Value::as_str).unwrap_or_default();
                let target = lock(&self.tunnels)
                    .get(id)
                    .map(|t| (Arc::clone(&t.shared), t.writer.clone()));
                if let Some((shared, writer)) = target {
                    shared.dispatch(text, &writer);
                }
                return;
            }
            "NodeWorker.detachedFromWorker" => {
                let id = msg.params.get("sessionId").and_then(Value::as_str).unwrap_or_default();
                let gone = lock(&self.tunnels).remove(id);
                if let Some(t) = gone {
                    t.end(CloseReason::ClosedByPeer);
                }
                return;
            }
            _ => {}
        }
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
        for (_, t) in lock(&self.shared.tunnels).drain() {
            t.end(CloseReason::ConnectionLost(String::from("the parent session ended")));
        }
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

/// Nesting levels a message may have to be parsed past serde_json's default limit of 128:
/// a sampling heap profile's call tree nests two levels per frame and V8 records up to
/// 128 frames; deeper messages are dropped (their caller times out) rather than risking
/// the stack.
const MAX_MESSAGE_DEPTH: usize = 600;

/// Parses a message; one nesting deeper than 128 levels only when a byte scan finds it
/// within [`MAX_MESSAGE_DEPTH`].
fn parse_incoming(text: &str) -> Option<Incoming> {
    use serde::Deserialize;
    if let Ok(msg) = serde_json::from_str::<Incoming>(text) {
        return Some(msg);
    }
    if nesting_depth(text.as_bytes()) > MAX_MESSAGE_DEPTH {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let msg = Incoming::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(msg)
}

/// The deepest nesting of `[`/`{` outside strings.
fn nesting_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
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

/// One WebSocket connection to an inspector: sends CDP commands, matches their replies,
/// routes events, and reports how the connection ended.
///
/// Dropping it sends a WebSocket close frame from the writer task.
pub(crate) struct Transport {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<WriterMsg>,
    finished: watch::Receiver<bool>,
    next_id: AtomicU64,
    /// Held by the operations that consume events (snapshots, script URLs) while their route
    /// is installed: there is one route at a time.
    pub(crate) event_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        let _ = self.writer.send(WriterMsg::Close);
    }
}

impl Transport {
    /// Opens a TCP connection to `endpoint.addr` and does the WebSocket handshake for
    /// `endpoint.ws_url()`, each within [`CONNECT_TIMEOUT`], then starts the reader and
    /// writer tasks.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Connect`] when the TCP connection fails or times out,
    /// [`InspectorError::WebSocket`] when the handshake does.
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Transport, InspectorError> {
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
        Ok(Transport::start(ws, url))
    }

    /// Splits the socket between a reader and a writer task.
    fn start(ws: Ws, url: String) -> Transport {
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
            tunnels: Mutex::new(HashMap::new()),
            attached: Mutex::new(Vec::new()),
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
        Transport {
            shared,
            writer: writer_tx,
            finished: finished_rx,
            next_id: AtomicU64::new(1),
            event_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// A transport to the worker thread whose `NodeWorker` session is `session_id`, carried
    /// inside this connection: each command goes out as `NodeWorker.sendMessageToWorker`,
    /// each `NodeWorker.receivedMessageFromWorker` for it comes back as the tunnel's own
    /// reply or event, and `NodeWorker.detachedFromWorker` (the worker exited) closes it.
    /// Closing it sends `NodeWorker.detach`. `url` names it in errors.
    pub(crate) fn tunnel(&self, session_id: &str, url: String) -> Transport {
        let (close_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            url,
            pending: Mutex::new(Pending {
                open: true,
                map: HashMap::new(),
            }),
            route: Mutex::new(None),
            close_tx,
            tunnels: Mutex::new(HashMap::new()),
            attached: Mutex::new(Vec::new()),
        });
        let (writer_tx, mut writer_rx) = mpsc::unbounded_channel::<WriterMsg>();
        let (finished_tx, finished_rx) = watch::channel(false);
        let finished = Arc::new(finished_tx);
        let tunnel = Tunnel {
            shared: Arc::clone(&shared),
            writer: writer_tx.downgrade(),
            finished: Arc::clone(&finished),
        };
        if self.shared.close_reason().is_some() {
            tunnel.end(CloseReason::ConnectionLost(String::from("the parent session ended")));
        } else {
            lock(&self.shared.tunnels).insert(session_id.to_owned(), tunnel);
        }
        let parent = Arc::clone(&self.shared);
        let parent_writer = self.writer.downgrade();
        let sid = session_id.to_owned();
        let own = Arc::clone(&shared);
        tokio::spawn(async move {
            let next = AtomicU64::new(TUNNEL_ID_BASE);
            let send = |method: &str, params: Value| {
                let id = next.fetch_add(1, Ordering::Relaxed);
                let text = json!({ "id": id, "method": method, "params": params }).to_string();
                match parent_writer.upgrade() {
                    Some(w) if parent.close_reason().is_none() => w.send(WriterMsg::Text(text)).is_ok(),
                    _ => false,
                }
            };
            loop {
                match writer_rx.recv().await {
                    Some(WriterMsg::Text(text)) => {
                        let sent = send(
                            "NodeWorker.sendMessageToWorker",
                            json!({ "sessionId": sid, "message": text }),
                        );
                        if !sent {
                            break;
                        }
                    }
                    Some(WriterMsg::Close) | None => {
                        own.set_closed(CloseReason::ClosedByUs);
                        let _ = send("NodeWorker.detach", json!({ "sessionId": sid }));
                        break;
                    }
                }
            }
            let gone = lock(&parent.tunnels).remove(&sid);
            match gone {
                Some(t) => t.end(CloseReason::ConnectionLost(String::from("the parent session ended"))),
                None => {
                    own.set_closed(CloseReason::ConnectionLost(String::from("the parent session ended")));
                    let _ = finished.send(true);
                }
            }
        });
        Transport {
            shared,
            writer: writer_tx,
            finished: finished_rx,
            next_id: AtomicU64::new(1),
            event_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The `params` of the `NodeWorker.attachedToWorker` events received since the last
    /// call, oldest first.
    pub(crate) fn take_attached_workers(&self) -> Vec<Value> {
        std::mem::take(&mut *lock(&self.shared.attached))
    }

    /// The WebSocket URL of the connection (`ws://127.0.0.1:PORT/UUID`).
    pub(crate) fn url(&self) -> &str {
        &self.shared.url
    }

    /// Why the connection ended, or `None` while it is open.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// Resolves when the connection ends, with the reason.
    pub(crate) async fn closed(&self) -> CloseReason {
        let mut rx = self.shared.close_tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason
                .clone()
                .unwrap_or(CloseReason::ConnectionLost(String::from("unknown"))),
            // The sender lives in `self.shared`, so this cannot happen while `self` exists.
            Err(_) => CloseReason::ConnectionLost(String::from("session state dropped")),
        }
    }

    /// Queues a close frame and waits at most [`CLOSE_GRACE`] for the reader to stop.
    pub(crate) async fn close(&self) {
        let _ = self.writer.send(WriterMsg::Close);
        let mut finished = self.finished.clone();
        let _ = tokio::time::timeout(CLOSE_GRACE, finished.wait_for(|done| *done)).await;
    }

    /// The [`InspectorError::Closed`] error for `method` (a CDP method or what was being done).
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

    /// Sends a command and waits at most `timeout` for its reply's `result`.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Protocol`] for an error reply, [`InspectorError::Closed`] when the
    /// connection is or becomes closed, [`InspectorError::Timeout`] when no reply comes in
    /// time.
    pub(crate) async fn request(
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

    /// Routes the given event methods to `tx` until the guard is dropped. The caller must
    /// hold [`Transport::event_lock`].
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A sampling heap profile of a deep stack nests past serde_json's 128 levels: read
    /// after the depth scan, up to [`MAX_MESSAGE_DEPTH`]; deeper is dropped.
    #[test]
    fn deep_replies_are_read_up_to_the_depth_cap() {
        let nested = |levels: usize| {
            format!(
                r#"{{"id":7,"result":{}"x\"[{{"{}}}"#,
                r#"{"c":["#.repeat(levels),
                "]}".repeat(levels)
            )
        };
        assert_eq!(nesting_depth(br#"{"a":"[[[{{{"}"#), 1);
        let msg = parse_incoming(&nested(200)).expect("400 levels");
        assert_eq!(msg.id, Some(7));
        assert!(parse_incoming(&nested(400)).is_none());
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
