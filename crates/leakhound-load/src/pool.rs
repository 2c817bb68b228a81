//! [`ConnectionPool`]: keep-alive connections kept open from one load phase to the next,
//! and [`KeepWarm`], which keeps them from idling out between phases.
//!
//! A server that adds something to a connection's socket on every request (a `close`
//! listener, a timeout callback) leaks on every long-lived keep-alive connection, and the
//! leak lives as long as the connection does: load that opens fresh connections for each
//! phase and closes them at its end frees it before any snapshot can see it. A pool
//! handed from one [`run_kept`](crate::run_kept) to the next keeps the same sockets alive
//! across the phases; [`ConnectionPool::keep_warm`] sends a request on each connection
//! that has been idle for a while (node's `server.keepAliveTimeout` is 5 s by default)
//! until it is stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::LoadError;
use crate::spec::{LoadSpec, Prepared};
use crate::target::{Conn, connect, resolve};

/// The header every keep-warm request carries (`x-leakhound-keep-warm: 1`), so that a
/// counter of the app's requests can leave them out.
pub const KEEP_WARM_HEADER: &str = "x-leakhound-keep-warm";

/// Default [`KeepWarmOptions::idle`]: 1 s, a fifth of node's default keep-alive timeout.
pub const DEFAULT_KEEP_WARM_IDLE: Duration = Duration::from_secs(1);

/// How often the keep-warm task looks for idle connections.
const KEEP_WARM_TICK: Duration = Duration::from_millis(200);

/// Where to connect, shared by the connect phase and the workers.
pub(crate) struct Net {
    pub(crate) addrs: Vec<SocketAddr>,
    /// Index into `addrs` of the address that accepted last.
    addr_hint: AtomicUsize,
    pub(crate) timeout: Duration,
    /// Connections opened so far.
    opened: AtomicU64,
}

impl Net {
    pub(crate) fn new(addrs: Vec<SocketAddr>, timeout: Duration) -> Net {
        Net {
            addrs,
            addr_hint: AtomicUsize::new(0),
            timeout,
            opened: AtomicU64::new(0),
        }
    }

    pub(crate) async fn connect(&self) -> io::Result<Conn> {
        let first = self.addr_hint.load(Ordering::Relaxed);
        let (conn, used) = connect(&self.addrs, first, self.timeout).await?;
        if used != first {
            self.addr_hint.store(used, Ordering::Relaxed);
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}

/// Keep-alive connections to one URL's server, kept open between load phases.
///
/// Empty when created; [`run_kept`](crate::run_kept) opens what it needs and puts the
/// connections that are still open back when it ends, and [`ConnectionPool::fill`] opens
/// connections ahead of a phase. Dropping the pool closes its connections.
#[derive(Default)]
pub struct ConnectionPool {
    /// The URL the connections go to, and where it resolved.
    net: Option<(String, Arc<Net>)>,
    conns: Vec<Conn>,
    /// Connections opened by the pool's earlier targets (a new URL starts a new `Net`).
    opened_before: u64,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("url", &self.net.as_ref().map(|(u, _)| u))
            .field("open", &self.conns.len())
            .field("opened", &self.opened())
            .finish()
    }
}

impl ConnectionPool {
    /// An empty pool.
    pub fn new() -> ConnectionPool {
        ConnectionPool::default()
    }

    /// Open connections held now (the server may close one at any time; the next use
    /// finds it and replaces it).
    pub fn len(&self) -> usize {
        self.conns.iter().filter(|c| !c.sender.is_closed()).count()
    }

    /// Whether the pool holds no open connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections opened through this pool in all, reopened ones included: more than
    /// the most it ever held means the server closed some of them.
    pub fn opened(&self) -> u64 {
        self.opened_before + self.net.as_ref().map_or(0, |(_, n)| n.opened.load(Ordering::Relaxed))
    }

    /// The `Net` for `prepared`'s URL: the pool's own when it is the same URL, else a new
    /// one (resolved now; the connections to the old URL are closed).
    pub(crate) async fn net_for(&mut self, prepared: &Prepared) -> Result<Arc<Net>, LoadError> {
        let url = &prepared.target.url;
        if let Some((u, net)) = &self.net
            && u == url
        {
            return Ok(Arc::clone(net));
        }
        let addrs = resolve(&prepared.target).await.map_err(|source| LoadError::Connect {
            url: url.clone(),
            source,
        })?;
        self.opened_before = self.opened();
        self.conns.clear();
        let net = Arc::new(Net::new(addrs, prepared.request_timeout));
        self.net = Some((url.clone(), Arc::clone(&net)));
        Ok(net)
    }

    /// Takes up to `n` connections the server has not closed (the closed ones are
    /// dropped).
    pub(crate) fn take(&mut self, n: usize) -> Vec<Conn> {
        self.conns.retain(|c| !c.sender.is_closed());
        let keep = self.conns.len().saturating_sub(n);
        self.conns.split_off(keep)
    }

    /// Puts connections back (the closed ones are dropped).
    pub(crate) fn put_back(&mut self, conns: impl IntoIterator<Item = Conn>) {
        self.conns.extend(conns.into_iter().filter(|c| !c.sender.is_closed()));
    }

    /// Opens connections (without sending anything) until the pool holds
    /// `spec.connections` open ones, so that they exist before the first phase; returns
    /// how many it holds.
    ///
    /// # Errors
    /// [`LoadError::InvalidSpec`] for a bad `spec`; [`LoadError::Connect`] when the host
    /// does not resolve or no connection at all could be opened.
    pub async fn fill(&mut self, spec: &LoadSpec) -> Result<usize, LoadError> {
        let prepared = spec.prepare()?;
        let net = self.net_for(&prepared).await?;
        self.conns.retain(|c| !c.sender.is_closed());
        let missing = prepared.connections.saturating_sub(self.conns.len());
        let mut opening = JoinSet::new();
        for _ in 0..missing {
            let net = Arc::clone(&net);
            opening.spawn(async move { net.connect().await });
        }
        let mut first_error = None;
        while let Some(joined) = opening.join_next().await {
            match joined {
                Ok(Ok(conn)) => self.conns.push(conn),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(io::Error::other(e.to_string()));
                }
            }
        }
        if self.conns.is_empty() {
            return Err(LoadError::Connect {
                url: prepared.target.url.clone(),
                source: first_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no connection")),
            });
        }
        Ok(self.conns.len())
    }

    /// Hands the pool to a task that keeps its connections from idling out: every
    /// connection idle for `opts.idle` gets one request like `spec`'s (same method, URL,
    /// headers and body, plus [`KEEP_WARM_HEADER`]), read to the end, while
    /// `opts.hold` is not set. A connection the server closed, or whose request fails or
    /// times out (`spec.request_timeout`), is dropped, not reopened: the next phase opens
    /// what it needs. [`KeepWarm::stop`] gives the pool back.
    ///
    /// # Errors
    /// [`LoadError::InvalidSpec`] for a bad `spec` (the pool is dropped then).
    pub fn keep_warm(self, spec: &LoadSpec, opts: KeepWarmOptions) -> Result<KeepWarm, LoadError> {
        let prepared = spec.prepare()?;
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keep_warm_task(
            self,
            Arc::new(prepared),
            opts,
            Arc::clone(&sent),
            Arc::clone(&failed),
            stop_rx,
        ));
        Ok(KeepWarm {
            stop: Some(stop_tx),
            task: Some(task),
            sent,
            failed,
        })
    }
}

/// How [`ConnectionPool::keep_warm`] keeps connections open.
#[derive(Debug, Clone, Default)]
pub struct KeepWarmOptions {
    /// A connection idle this long gets a request ([`DEFAULT_KEEP_WARM_IDLE`] when zero).
    pub idle: Duration,
    /// No request is sent while this is set (the app is paused writing a heap snapshot:
    /// a request would only wait in its socket).
    pub hold: Option<Arc<AtomicBool>>,
}

/// A running keep-warm task (see [`ConnectionPool::keep_warm`]). Dropping it aborts the
/// task and closes the connections.
#[derive(Debug)]
pub struct KeepWarm {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<ConnectionPool>>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl KeepWarm {
    /// Keep-warm requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Keep-warm requests that got no whole response (their connection was dropped).
    pub fn requests_failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Stops the task, once its requests in flight have ended (each within the spec's
    /// request timeout), and gives the pool back; an empty pool if the task failed.
    pub async fn stop(mut self) -> ConnectionPool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => ConnectionPool::new(),
        }
    }
}

impl Drop for KeepWarm {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The keep-warm request: `prepared`'s, marked with [`KEEP_WARM_HEADER`].
fn keep_warm_request(prepared: &Prepared) -> Request<Full<Bytes>> {
    let mut req = crate::driver::request_of(prepared);
    req.headers_mut()
        .insert(HeaderName::from_static(KEEP_WARM_HEADER), HeaderValue::from_static("1"));
    req
}

/// One keep-warm request on `conn`; false when it got no whole response.
async fn ping(conn: &mut Conn, prepared: &Prepared) -> bool {
    let timeout = prepared.request_timeout;
    let exchange = async {
        conn.sender.ready().await.ok()?;
        let response = conn.sender.send_request(keep_warm_request(prepared)).await.ok()?;
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.ok()?;
        }
        Some(())
    };
    let ok = matches!(tokio::time::timeout(timeout, exchange).await, Ok(Some(())));
    conn.idle_since = Instant::now();
    ok
}

async fn keep_warm_task(
    mut pool: ConnectionPool,
    prepared: Arc<Prepared>,
    opts: KeepWarmOptions,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    mut stop: oneshot::Receiver<()>,
) -> ConnectionPool {
    let idle = if opts.idle.is_zero() {
        DEFAULT_KEEP_WARM_IDLE
    } else {
        opts.idle
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(KEEP_WARM_TICK) => {}
        }
        if opts.hold.as_ref().is_some_and(|h| h.load(Ordering::SeqCst)) {
            continue;
        }
        pool.conns.retain(|c| !c.sender.is_closed());
        let now = Instant::now();
        let (due, rest): (Vec<Conn>, Vec<Conn>) = std::mem::take(&mut pool.conns)
            .into_iter()
            .partition(|c| now.saturating_duration_since(c.idle_since) >= idle);
        pool.conns = rest;
        if due.is_empty() {
            continue;
        }
        let mut pinging = JoinSet::new();
        for mut conn in due {
            let prepared = Arc::clone(&prepared);
            pinging.spawn(async move {
                let ok = ping(&mut conn, &prepared).await;
                (ok, conn)
            });
        }
        while let Some(joined) = pinging.join_next().await {
            sent.fetch_add(1, Ordering::Relaxed);
            match joined {
                Ok((true, conn)) => pool.conns.push(conn),
                Ok((false, _)) | Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    pool
}
