//! The agent's HTTP server (hyper, HTTP/1.1): `GET /metrics` (OpenMetrics text when the
//! client asks for it, as Prometheus does; else the Prometheus text format) and
//! `GET /health` (JSON; 200 for `ok` and `warning`, 503 for `critical`). It reads only the
//! [`Board`](crate::Board), never the app, so it answers while a sample, a forced GC or a
//! snapshot keeps the app busy.
//!
//! The socket is bound by [`AgentServer::bind`] before the watch starts, so a taken port
//! or a bad address is an error at once, not after the app was attached to. It listens
//! where the user says (`--metrics-addr`; loopback by default), at most 64 connections at
//! a time, each given 10 s to send its request headers.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::PoisonError;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::board::SharedBoard;
use crate::health::{HealthConfig, health};

/// The default `--metrics-addr`: loopback, port 9464 (OpenTelemetry's Prometheus exporter
/// port).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;
/// Time a connection has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process listens on the address.
    #[error(
        "cannot serve metrics on {addr}: the address is already in use (another leakhound or exporter?); give a free one with --metrics-addr"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other failure to listen (no such local address, a privileged port).
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
}

/// A bound metrics server, not yet serving.
#[derive(Debug)]
pub struct AgentServer {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl AgentServer {
    /// Binds `addr` (port 0: a free port; see [`AgentServer::local_addr`]).
    ///
    /// # Errors
    /// [`ServeError::AddrInUse`] when the port is taken, [`ServeError::Bind`] otherwise.
    pub fn bind(addr: SocketAddr) -> Result<AgentServer, ServeError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                ServeError::AddrInUse { addr }
            } else {
                ServeError::Bind { addr, source }
            }
        })?;
        let bind_err = |source| ServeError::Bind { addr, source };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok(AgentServer { listener, addr: local })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `/metrics` and `/health` from `board` until the future is dropped. Must run
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// When the socket cannot be handed to Tokio; a failed accept is retried.
    ///
    /// # Cancel safety
    /// Dropping it stops accepting; connections being answered finish on their own tasks.
    pub async fn serve(self, board: SharedBoard, cfg: HealthConfig) -> io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // little rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let board = board.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let answer = respond(&req, &board, &cfg);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(permit);
            });
        }
    }
}

fn answer(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// The answer to one request.
fn respond<B>(req: &Request<B>, board: &SharedBoard, cfg: &HealthConfig) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let format = crate::metrics::Format::from_accept(accept);
            answer(
                StatusCode::OK,
                format.content_type(),
                crate::metrics::render(board, format),
            )
        }
        "/health" => {
            let (status, doc) = {
                let b = board.read().unwrap_or_else(PoisonError::into_inner);
                health(&b, cfg)
            };
            let code = StatusCode::from_u16(status.http_status()).unwrap_or(StatusCode::OK);
            let body = leakhound_report::health::health_json_text(&doc) + "\n";
            answer(code, "application/json", body)
        }
        "/" => answer(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "leakhound watch agent: /metrics (Prometheus, OpenMetrics text), /health (JSON)\n".into(),
        ),
        _ => answer(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics or /health\n".into(),
        ),
    }
}
