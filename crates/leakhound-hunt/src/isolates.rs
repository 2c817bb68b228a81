//! Every isolate of the app, followed during a hunt: the process leakhound started or
//! attached to, the node processes it forks (cluster workers and other children, found
//! in `/proc`'s process tree and polled, so replaced workers are followed) and the
//! `worker_threads` Workers inside any of them (`NodeWorker`). Each one gets its own
//! session, memory series, request counter and sampling task.
//!
//! Requests an isolate served are counted in it through `diagnostics_channel`'s
//! `http.server.request.start` (node ≥ 18.7: every request an `http` or `https` server of
//! that isolate starts to handle), installed with one `Runtime.evaluate`; where that
//! channel is missing (Deno, old node) the count is unknown and rates are per request
//! sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use leakhound_inspector::{Isolate, IsolateKind, Session};
use leakhound_leaks::MemorySample;
use tokio::sync::{Mutex, mpsc};

use crate::discovery::{Discovery, Found, MAX_ISOLATES, OpenBefore, full_warning};
use crate::outcome::HuntEvent;
use crate::sampling::{Clock, Sampler};

/// Key of the request counter's state on `globalThis`.
const COUNTER_KEY: &str = "leakhound.requests";

/// One isolate followed by the hunt.
pub(crate) struct Tracked {
    /// Which one.
    pub(crate) isolate: Isolate,
    /// Its own session (a worker thread's is tunnelled through its process's).
    pub(crate) session: Arc<Session>,
    /// Its memory samples, in the order taken.
    pub(crate) samples: Mutex<Vec<MemorySample>>,
    /// When it was first followed, ms since the hunt started.
    pub(crate) joined_ms: f64,
    /// When its session ended (the isolate exited), ms since the hunt started.
    pub(crate) exited_ms: StdMutex<Option<f64>>,
    /// Whether its request counter is installed.
    pub(crate) counting: bool,
}

impl Tracked {
    /// Requests its HTTP servers started to handle so far; None when not counted.
    pub(crate) async fn served(&self) -> Option<u64> {
        if !self.counting {
            return None;
        }
        let v = self
            .session
            .evaluate(&format!(
                "globalThis[Symbol.for('{COUNTER_KEY}')] ? globalThis[Symbol.for('{COUNTER_KEY}')].n : null"
            ))
            .await
            .ok()?;
        v.as_u64()
    }

    /// Records that its session ended, once.
    pub(crate) fn mark_exited(&self, t_ms: f64) {
        let mut e = self.exited_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if e.is_none() {
            *e = Some(t_ms);
        }
    }

    /// When it exited, if it did.
    pub(crate) fn exited(&self) -> Option<f64> {
        *self.exited_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The script that installs the request counter; true when installed (or already there).
/// The load's keep-warm requests between phases (marked with
/// [`leakhound_load::KEEP_WARM_HEADER`]) are not counted: the counts are the load's.
fn counter_script() -> String {
    let keep_warm = leakhound_load::KEEP_WARM_HEADER;
    format!(
        r"(() => {{
  const key = Symbol.for('{COUNTER_KEY}');
  if (globalThis[key]) return true;
  if (typeof process !== 'object' || !process) return false;
  let dc = null;
  try {{
    dc = typeof process.getBuiltinModule === 'function'
      ? process.getBuiltinModule('node:diagnostics_channel')
      : (process.mainModule ? process.mainModule.require('diagnostics_channel') : null);
  }} catch {{ dc = null; }}
  if (!dc || typeof dc.channel !== 'function') return false;
  const state = {{ n: 0 }};
  state.on = (m) => {{
    const h = m && m.request && m.request.headers;
    if (h && h['{keep_warm}']) return;
    state.n++;
  }};
  state.channel = dc.channel('http.server.request.start');
  state.channel.subscribe(state.on);
  Object.defineProperty(globalThis, key, {{ value: state, configurable: true, enumerable: false, writable: false }});
  return true;
}})()"
    )
}

/// Everything the discovery and the sampling tasks share with the hunt.
pub(crate) struct Registry {
    /// Every isolate followed so far, the main one first; never shrinks.
    pub(crate) all: StdMutex<Vec<Arc<Tracked>>>,
    /// What discovery has found so far; one pass at a time.
    discovery: Mutex<Discovery>,
    /// Warnings for the report (a child that could not be followed).
    pub(crate) warnings: StdMutex<Vec<String>>,
    /// The isolates found but not followed (no inspector could be reached), with why.
    pub(crate) unfollowed: StdMutex<Vec<(Isolate, String)>>,
    /// Set when the hunt's phases end.
    pub(crate) stop: AtomicBool,
    /// Whether other node processes were ever seen below the app (followed or not).
    children: AtomicBool,
    /// The tasks to abort when the hunt ends (discovery, sampling).
    tasks: StdMutex<Vec<tokio::task::AbortHandle>>,
    /// Set while a snapshot is written: no samples then.
    pub(crate) paused: Arc<AtomicBool>,
    /// Units of load sent so far (the hunt's counter).
    pub(crate) requests: Arc<std::sync::atomic::AtomicU64>,
    clock: Clock,
    gc_interval: Option<Duration>,
    sample_interval: Duration,
    events: mpsc::UnboundedSender<HuntEvent>,
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a [`Registry`] needs from the hunt.
pub(crate) struct RegistryParts {
    pub(crate) clock: Clock,
    pub(crate) gc_interval: Option<Duration>,
    pub(crate) sample_interval: Duration,
    pub(crate) events: mpsc::UnboundedSender<HuntEvent>,
    pub(crate) paused: Arc<AtomicBool>,
    pub(crate) requests: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) follow: bool,
    /// For an app attached to: what its children listened on before.
    pub(crate) open_before: Option<OpenBefore>,
}

impl Registry {
    /// A registry holding nothing yet.
    pub(crate) fn new(p: RegistryParts) -> Arc<Registry> {
        Arc::new(Registry {
            all: StdMutex::new(Vec::new()),
            discovery: Mutex::new(match p.open_before {
                Some(before) => Discovery::new(p.follow).attached(before),
                None => Discovery::new(p.follow),
            }),
            warnings: StdMutex::new(Vec::new()),
            unfollowed: StdMutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            tasks: StdMutex::new(Vec::new()),
            children: AtomicBool::new(false),
            paused: p.paused,
            requests: p.requests,
            clock: p.clock,
            gc_interval: p.gc_interval,
            sample_interval: p.sample_interval,
            events: p.events,
        })
    }

    /// Keeps `task` to be aborted by [`Registry::abort_tasks`].
    pub(crate) fn keep_task(&self, task: tokio::task::AbortHandle) {
        lock(&self.tasks).push(task);
    }

    /// Aborts the discovery and sampling tasks (at the end of the hunt, however it ends).
    pub(crate) fn abort_tasks(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// Every isolate followed so far, the main one first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Tracked>> {
        lock(&self.all).clone()
    }

    /// Starts following `isolate` through `session`: its GC observer (a warning when it
    /// cannot be installed, except for the main isolate, whose failure is the caller's),
    /// its request counter, its sampling task. Returns it.
    pub(crate) async fn add(self: &Arc<Self>, isolate: Isolate, session: Arc<Session>) -> Arc<Tracked> {
        if isolate.kind != IsolateKind::Main
            && let Err(e) = session.install_gc_observer().await
        {
            lock(&self.warnings).push(format!(
                "{isolate}: the app's own GCs are not observed ({e}); only leakhound's GCs give floor points"
            ));
        }
        let counting = session
            .evaluate(&counter_script())
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let tracked = Arc::new(Tracked {
            isolate,
            session,
            samples: Mutex::new(Vec::new()),
            joined_ms: self.clock.now_ms(),
            exited_ms: StdMutex::new(None),
            counting,
        });
        lock(&self.all).push(tracked.clone());
        if isolate.kind != IsolateKind::Main {
            let _ = self.events.send(HuntEvent::Followed(isolate));
        }
        let task = tokio::spawn(sample_loop(self.clone(), tracked.clone()));
        self.keep_task(task.abort_handle());
        tracked
    }

    /// Whether other node processes were ever seen below the app (followed or not).
    pub(crate) fn children_seen(&self) -> bool {
        self.children.load(Ordering::SeqCst)
    }

    /// Takes in what a discovery pass found: each new isolate is added, the others are
    /// warnings (the limit said once).
    async fn take(self: &Arc<Self>, found: Vec<Found>) {
        for f in found {
            match f {
                Found::Isolate(isolate, session) => {
                    self.add(isolate, Arc::new(session)).await;
                }
                Found::Unfollowed(isolate, why) => {
                    lock(&self.warnings).push(format!("{isolate} is not followed: {why}"));
                    lock(&self.unfollowed).push((isolate, why));
                }
                Found::Full => {
                    let note = full_warning();
                    let mut w = lock(&self.warnings);
                    if !w.contains(&note) {
                        w.push(note);
                    }
                }
            }
        }
    }

    /// How many more isolates may be followed.
    fn room(&self) -> usize {
        MAX_ISOLATES.saturating_sub(lock(&self.all).len())
    }

    /// One pass: new node processes below `root` in `/proc` and new worker threads in every
    /// process followed (theirs too), each connected and added. Nothing when following is
    /// off.
    pub(crate) async fn discover(self: &Arc<Self>, root: u32) {
        let mut d = self.discovery.lock().await;
        let found = d.children(root, self.room(), &self.stop).await;
        if d.children_seen() {
            self.children.store(true, Ordering::SeqCst);
        }
        self.take(found).await;
        // Worker threads of every process (and of worker threads: nested workers).
        let of: Vec<(Isolate, Arc<Session>)> = self.snapshot().iter().map(|t| (t.isolate, t.session.clone())).collect();
        let found = d.threads(&of, self.room(), &self.stop).await;
        self.take(found).await;
    }

    /// Polls [`Registry::discover`] until the hunt stops.
    pub(crate) async fn discover_loop(self: Arc<Self>, root: u32) {
        while !self.stop.load(Ordering::SeqCst) {
            self.discover(root).await;
            tokio::time::sleep(crate::discovery::DISCOVERY_INTERVAL).await;
        }
    }

    /// Closes every session but the main one's (children's first, worker threads' with
    /// them), leaving the processes as they were found (an inspector opened with SIGUSR1
    /// is closed again).
    pub(crate) async fn close_others(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.snapshot().iter().rev() {
            if t.isolate.kind != IsolateKind::Main {
                t.session.close().await;
            }
        }
    }
}

/// Samples one isolate every interval until the hunt stops or its session ends, pausing
/// while a snapshot is written. The main isolate's samples are also sent as events.
async fn sample_loop(reg: Arc<Registry>, t: Arc<Tracked>) {
    let mut sampler = Sampler::new(t.session.clone(), reg.clock, reg.gc_interval);
    while !reg.stop.load(Ordering::SeqCst) && !t.session.is_closed() {
        tokio::time::sleep(reg.sample_interval).await;
        if reg.paused.load(Ordering::SeqCst) || reg.stop.load(Ordering::SeqCst) {
            continue;
        }
        let Ok(batch) = sampler.step(reg.requests.load(Ordering::SeqCst)).await else {
            break;
        };
        let mut all = t.samples.lock().await;
        for s in batch {
            all.push(s);
            if t.isolate.kind == IsolateKind::Main {
                let _ = reg.events.send(HuntEvent::Sample(s));
            }
        }
    }
    if t.session.is_closed() && !reg.stop.load(Ordering::SeqCst) {
        t.mark_exited(reg.clock.now_ms());
        if t.isolate.kind != IsolateKind::Main {
            let _ = reg.events.send(HuntEvent::Exited(t.isolate));
        }
    }
}

/// The requests an isolate had served when `sent` units had been sent, from checkpoints
/// `(sent, served)` read along the hunt (sorted by `sent`): linear between checkpoints,
/// flat outside them.
pub(crate) fn served_at(sent: u64, checkpoints: &[(u64, u64)]) -> u64 {
    let Some(first) = checkpoints.first() else {
        return sent;
    };
    if sent <= first.0 {
        return first.1;
    }
    for w in checkpoints.windows(2) {
        let ((s0, v0), (s1, v1)) = (w[0], w[1]);
        if sent <= s1 {
            if s1 == s0 {
                return v1;
            }
            let f = (sent - s0) as f64 / (s1 - s0) as f64;
            return v0 + ((v1.saturating_sub(v0)) as f64 * f).round() as u64;
        }
    }
    checkpoints.last().map(|c| c.1).unwrap_or(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_requests_are_interpolated_between_checkpoints() {
        let cps = [(100, 50), (1100, 550), (2100, 1000)];
        assert_eq!(served_at(0, &cps), 50);
        assert_eq!(served_at(600, &cps), 300);
        assert_eq!(served_at(1100, &cps), 550);
        assert_eq!(served_at(1600, &cps), 775);
        assert_eq!(served_at(5000, &cps), 1000);
        assert_eq!(served_at(7, &[]), 7);
    }
}
