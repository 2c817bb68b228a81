//! The HTTP load driver: one worker task per keep-alive connection.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::LoadError;
use crate::pool::{ConnectionPool, Net};
use crate::report::{Latency, LoadReport};
use crate::spec::{LoadSpec, Prepared};
use crate::target::Conn;

/// How often [`run`] reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// How many times one request is re-tried on a fresh connection when hyper hands it back
/// unsent (the server closed the keep-alive connection just before it was written).
const MAX_UNSENT_RETRIES: u32 = 3;

/// Backoff after a failed reconnect in a run with a duration, doubled per consecutive failure
/// up to the maximum, so that a dead server does not turn the driver into a busy loop.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Highest latency the histogram tracks (larger values are clamped): one hour, in µs.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// State shared by all workers of one run.
struct Shared {
    spec: Prepared,
    net: Arc<Net>,
    start: Instant,
    deadline: Option<Instant>,
    /// Next request number to claim (may overshoot `requests`; only claims below it send).
    tickets: AtomicU64,
    /// Requests finished (response or error), for progress.
    done: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// What one worker counted.
#[derive(Default)]
struct Tally {
    ok: u64,
    client_err: u64,
    server_err: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
}

enum Outcome {
    Response { status: u16, latency: Duration },
    ConnectFailed,
    Failed,
}

/// One request of `spec`: its method, path, headers and body.
pub(crate) fn request_of(spec: &Prepared) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(spec.body.clone()));
    *req.method_mut() = spec.method.clone();
    *req.uri_mut() = spec.target.path.clone();
    *req.headers_mut() = spec.headers.clone();
    req
}

impl Shared {
    fn request(&self) -> Request<Full<Bytes>> {
        request_of(&self.spec)
    }

    /// Claims the next request number, waits for its slot in the rate schedule, and returns
    /// `false` when this phase has no more requests for this worker.
    async fn claim(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        let n = self.tickets.fetch_add(1, Ordering::Relaxed);
        if self.spec.requests.is_some_and(|max| n >= max) {
            return false;
        }
        if let Some(rate) = self.spec.rate_per_s {
            let due = Duration::try_from_secs_f64(n as f64 / rate)
                .ok()
                .and_then(|offset| self.start.checked_add(offset));
            match (due, self.deadline) {
                (Some(due), Some(deadline)) if due >= deadline => return false,
                (None, Some(_)) => return false,
                (Some(due), _) => tokio::time::sleep_until(due).await,
                // Not representable: further away than any deadline could be.
                (None, None) => tokio::time::sleep(Duration::MAX).await,
            }
        }
        true
    }

    /// Sends one request (reconnecting first if needed) and reads its whole response.
    async fn send_one(&self, conn: &mut Option<Conn>) -> Outcome {
        let timeout = self.spec.request_timeout;
        for _ in 0..=MAX_UNSENT_RETRIES {
            if conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
                *conn = None;
                match self.net.connect().await {
                    Ok(c) => *conn = Some(c),
                    Err(_) => return Outcome::ConnectFailed,
                }
            }
            let Some(c) = conn.as_mut() else {
                return Outcome::ConnectFailed;
            };
            match tokio::time::timeout(timeout, c.sender.ready()).await {
                Ok(Ok(())) => {}
                // Closed by the server after the previous response: nothing was sent.
                Ok(Err(_)) => {
                    *conn = None;
                    continue;
                }
                Err(_) => {
                    *conn = None;
                    return Outcome::Failed;
                }
            }
            let started = Instant::now();
            let exchange = async {
                let response = c.sender.try_send_request(self.request()).await?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    // Data frames are dropped as they arrive.
                    if frame.is_err() {
                        return Ok(None);
                    }
                }
                Ok(Some(status))
            };
            let result: Result<Result<Option<u16>, hyper::client::conn::TrySendError<_>>, _> =
                tokio::time::timeout(timeout, exchange).await;
            match result {
                Ok(Ok(Some(status))) => {
                    c.idle_since = Instant::now();
                    return Outcome::Response {
                        status,
                        latency: started.elapsed(),
                    };
                }
                Ok(Err(e)) if e.message().is_some() => {
                    // hyper never started writing it: retry on a new connection.
                    *conn = None;
                }
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    *conn = None;
                    return Outcome::Failed;
                }
            }
        }
        Outcome::Failed
    }

    fn record_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut h = self.latency_us.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        h.saturating_record(us);
    }
}

/// One worker: requests in sequence on one connection, reconnecting as needed. Returns
/// what it counted and its connection, if still open.
async fn worker(shared: Arc<Shared>, mut conn: Option<Conn>) -> (Tally, Option<Conn>) {
    let mut tally = Tally::default();
    let mut backoff = BACKOFF_MIN;
    while shared.claim().await {
        match shared.send_one(&mut conn).await {
            Outcome::Response { status, latency } => {
                backoff = BACKOFF_MIN;
                shared.record_latency(latency);
                *tally.statuses.entry(status).or_insert(0) += 1;
                match status {
                    ..400 => tally.ok += 1,
                    400..500 => tally.client_err += 1,
                    _ => tally.server_err += 1,
                }
            }
            Outcome::Failed => {
                backoff = BACKOFF_MIN;
                tally.errors += 1;
            }
            Outcome::ConnectFailed => {
                tally.errors += 1;
                shared.done.fetch_add(1, Ordering::Relaxed);
                // A run bounded by a count ends fast by itself (every failure uses up a
                // request), so that a crashed server is reported quickly; a run bounded by
                // time would spin until the deadline, so it backs off.
                if let Some(deadline) = shared.deadline {
                    let wake = Instant::now()
                        .checked_add(backoff)
                        .map_or(deadline, |w| w.min(deadline));
                    tokio::time::sleep_until(wake).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                continue;
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    (tally, conn)
}

/// Drives the load described by `spec` against a live server and measures it.
///
/// Opens `spec.connections` HTTP/1.1 keep-alive connections (fewer when `spec.requests` is
/// smaller), one worker task each. Workers claim request numbers from a shared counter, so
/// exactly `spec.requests` requests are sent when it is set; with `spec.duration`, no new
/// request starts after it ends. With `spec.rate_per_s`, request n waits for its slot
/// `n / rate_per_s` after the start. A connection closed by the server (for example after a
/// `connection: close` response) is reopened before the next request; a request hyper did not
/// start writing is re-sent on the new connection, so it still counts once. Response bodies are
/// read to the end and dropped.
///
/// `progress` is called with the number of finished requests (responses and errors) about
/// every 50 ms while it changes, and once more at the end with the final count. It runs on
/// the task awaiting `run`, so it should be quick (e.g. `ProgressBar::set_position`).
///
/// Works on both the current-thread and the multi-thread tokio runtime. On a small machine
/// shared with the server under test, prefer a current-thread runtime (or one worker thread)
/// so that the server gets the CPU.
///
/// # Errors
///
/// - [`LoadError::InvalidSpec`] if `spec` does not [validate](LoadSpec::validate).
/// - [`LoadError::Connect`] if the host does not resolve, or if every initial connection fails
///   (e.g. connection refused). Failures of some connections, or later, are counted in
///   [`LoadReport::errors`] instead.
/// - [`LoadError::Worker`] if a worker task panicked or was cancelled by a runtime shutdown.
///
/// # Cancel safety
///
/// Not resumable, but safe to drop: dropping the future aborts all worker tasks and closes
/// their connections (requests in flight are cut off and not reported).
pub async fn run(spec: &LoadSpec, progress: impl Fn(u64) + Send + Sync) -> Result<LoadReport, LoadError> {
    // A pool of its own, dropped at the end: every connection is closed.
    let mut pool = ConnectionPool::new();
    run_kept(spec, &mut pool, progress).await
}

/// [`run`] on connections kept in `pool`: the phase uses the pool's open connections to
/// the same URL first (opening only what is missing), and puts every connection that is
/// still open back when it ends, so the next phase, or
/// [`ConnectionPool::keep_warm`] between phases, goes on with the same sockets. A
/// connection the server closed meanwhile is replaced, as within a phase.
///
/// # Errors
///
/// As [`run`]. On an error, connections taken from the pool may be closed.
///
/// # Cancel safety
///
/// As [`run`]: dropping the future closes the connections it took from the pool.
pub async fn run_kept(
    spec: &LoadSpec,
    pool: &mut ConnectionPool,
    progress: impl Fn(u64) + Send + Sync,
) -> Result<LoadReport, LoadError> {
    let prepared = spec.prepare()?;
    let url = prepared.target.url.clone();
    let net = pool.net_for(&prepared).await?;
    let workers = match prepared.requests {
        Some(n) => usize::try_from(n).map_or(prepared.connections, |n| n.min(prepared.connections)),
        None => prepared.connections,
    };
    let histogram = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_US, 3).map_err(|e| LoadError::Worker {
        reason: format!("cannot create the latency histogram: {e}"),
    })?;

    // The pool's connections first; open the missing ones concurrently; the phase starts
    // once they are open.
    let mut conns: Vec<Option<Conn>> = pool.take(workers).into_iter().map(Some).collect();
    let mut connecting = JoinSet::new();
    for _ in conns.len()..workers {
        let net = Arc::clone(&net);
        connecting.spawn(async move { net.connect().await });
    }
    let mut first_error = None;
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(conn)) => conns.push(Some(conn)),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
                conns.push(None);
            }
            Err(e) => return Err(worker_failed(&e)),
        }
    }
    if conns.iter().all(Option::is_none) {
        return Err(LoadError::Connect {
            url,
            source: first_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no connection")),
        });
    }

    let start = Instant::now();
    let deadline = prepared.duration.and_then(|d| start.checked_add(d));
    let shared = Arc::new(Shared {
        spec: prepared,
        net,
        start,
        deadline,
        tickets: AtomicU64::new(0),
        done: AtomicU64::new(0),
        latency_us: Mutex::new(histogram),
    });
    let mut running = JoinSet::new();
    for conn in conns {
        running.spawn(worker(Arc::clone(&shared), conn));
    }

    let mut total = Tally::default();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reported = 0;
    loop {
        tokio::select! {
            joined = running.join_next() => match joined {
                None => break,
                Some(Ok((tally, conn))) => {
                    pool.put_back(conn);
                    total.ok += tally.ok;
                    total.client_err += tally.client_err;
                    total.server_err += tally.server_err;
                    total.errors += tally.errors;
                    for (status, n) in tally.statuses {
                        *total.statuses.entry(status).or_insert(0) += n;
                    }
                }
                Some(Err(e)) => return Err(worker_failed(&e)),
            },
            _ = ticker.tick() => {
                let done = shared.done.load(Ordering::Relaxed);
                if done != reported {
                    reported = done;
                    progress(done);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    progress(shared.done.load(Ordering::Relaxed));

    let latency_ms = {
        let h = shared
            .latency_us
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Latency::from_histogram_us(&h)
    };
    let requests_sent = total.ok + total.client_err + total.server_err + total.errors;
    let elapsed_s = elapsed.as_secs_f64();
    Ok(LoadReport {
        requests_sent,
        responses_2xx_3xx: total.ok,
        responses_4xx: total.client_err,
        responses_5xx: total.server_err,
        errors: total.errors,
        elapsed_ms: elapsed_s * 1000.0,
        requests_per_s: if elapsed_s > 0.0 {
            requests_sent as f64 / elapsed_s
        } else {
            0.0
        },
        latency_ms,
        status_counts: total.statuses,
    })
}

fn worker_failed(e: &tokio::task::JoinError) -> LoadError {
    LoadError::Worker {
        reason: if e.is_panic() {
            "a worker task panicked".into()
        } else {
            "a worker task was cancelled (runtime shutting down?)".into()
        },
    }
}
