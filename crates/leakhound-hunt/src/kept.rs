//! The built-in load's connections, kept open across a hunt's phases.
//!
//! Browsers, load balancers and proxies keep their connections to a server open for
//! hours, so what a server piles on a connection per request (a `close` listener on
//! `req.socket`, a callback on `res.connection.setTimeout`) leaks for as long. A hunt that
//! closed its connections at the end of each phase freed it before every snapshot, and
//! called such a server `no_leak`. [`Kept`] holds one [`ConnectionPool`] from before the
//! baseline to the end of the calm-down: each load phase runs on it
//! ([`leakhound_load::run_kept`]), and between phases (snapshots, floor points, the
//! calm-down) [`leakhound_load::ConnectionPool::keep_warm`] sends one request, marked
//! [`leakhound_load::KEEP_WARM_HEADER`], on each connection idle for a second, so that the
//! app's keep-alive timeout (node's default is 5 s) does not close it; none while a
//! snapshot is written (the app is paused then).
//!
//! What it does to the measurements: the keep-warm requests are the only app activity
//! between phases, about one per connection per second, each allocating what one request
//! does (a few KiB, garbage by the next GC), so a floor point taken then may carry one
//! request's garbage. They are not in the load's counts (`requests_sent`, the requests an
//! isolate served); the hunt records how many were sent before each snapshot and the leak
//! finder adds those of each step to its load (single-process rates), so a cluster's rate
//! stays per request the app served. The floor's slope is still per load request: with
//! 10 connections and a second or two between phases, 10-20 keep-warm requests per
//! phase of 2,000, a rate about 1 % above the truth, never below it. The sockets
//! themselves, opened before the baseline, are in every snapshot and not new in any, so
//! they are never a leak of their own.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use leakhound_load::{ConnectionPool, KeepWarm, KeepWarmOptions, LoadError, LoadSpec};

use crate::outcome::KeptConnections;

/// Where the pool is between uses.
enum State {
    /// Not kept (`--fresh-connections`, a load command), or closed at the end.
    Off,
    /// Held, nothing running on it.
    Idle(ConnectionPool),
    /// Handed to the keep-warm task.
    Warm(KeepWarm),
}

/// The hunt's kept connections (see the module's documentation).
pub(crate) struct Kept {
    /// The built-in load's spec (its URL, method, headers, body), when connections are kept.
    spec: Option<LoadSpec>,
    state: State,
    /// Set while a snapshot is written: no keep-warm request then.
    hold: Arc<AtomicBool>,
    /// Keep-warm requests sent by the tasks stopped so far.
    keep_warm_requests: u64,
}

impl Kept {
    /// Kept connections for the built-in load `spec` (None: not kept); `hold` is the
    /// hunt's "a snapshot is being written" flag.
    pub(crate) fn new(spec: Option<LoadSpec>, hold: Arc<AtomicBool>) -> Kept {
        Kept {
            state: if spec.is_some() {
                State::Idle(ConnectionPool::new())
            } else {
                State::Off
            },
            spec,
            hold,
            keep_warm_requests: 0,
        }
    }

    /// Keep-warm requests sent so far (by the task running now too).
    pub(crate) fn keep_warm_sent(&self) -> u64 {
        self.keep_warm_requests
            + match &self.state {
                State::Warm(w) => w.requests_sent(),
                _ => 0,
            }
    }

    /// The pool for the next phase (the keep-warm task stopped first); a new, empty one
    /// (dropped after the phase) when connections are not kept.
    pub(crate) async fn take(&mut self) -> ConnectionPool {
        match std::mem::replace(&mut self.state, State::Off) {
            State::Off => ConnectionPool::new(),
            State::Idle(pool) => pool,
            State::Warm(warm) => {
                self.keep_warm_requests += warm.requests_sent();
                warm.stop().await
            }
        }
    }

    /// The pool back after a phase: kept warm until the next one; dropped (its
    /// connections closed) when connections are not kept.
    pub(crate) fn give_back(&mut self, pool: ConnectionPool) {
        let Some(spec) = &self.spec else { return };
        let opts = KeepWarmOptions {
            hold: Some(self.hold.clone()),
            ..KeepWarmOptions::default()
        };
        // The spec was validated when the hunt was configured; a failure only loses the
        // keep-warm (the next phase reopens what the app closed).
        self.state = match pool.keep_warm(spec, opts) {
            Ok(warm) => State::Warm(warm),
            Err(_) => State::Idle(ConnectionPool::new()),
        };
    }

    /// Opens the connections before the baseline (when kept and not open yet), so the
    /// sockets of every phase are in the baseline too.
    ///
    /// # Errors
    /// [`LoadError`] when none could be opened; the hunt goes on, each phase opening
    /// what it needs.
    pub(crate) async fn open(&mut self) -> Result<(), LoadError> {
        let Some(spec) = self.spec.clone() else { return Ok(()) };
        let mut pool = self.take().await;
        let r = pool.fill(&spec).await.map(|_| ());
        self.give_back(pool);
        r
    }

    /// Closes the connections at the end of the hunt; what was kept, when connections
    /// were.
    pub(crate) async fn close(&mut self) -> Option<KeptConnections> {
        let connections = self.spec.as_ref()?.connections;
        let pool = self.take().await;
        self.spec = None;
        Some(KeptConnections {
            connections,
            opened: pool.opened(),
            open_at_end: pool.len(),
            keep_warm_requests: self.keep_warm_requests,
        })
    }
}
