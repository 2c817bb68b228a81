//! `watch`: the memory watch, one app or a long-running agent on several. Each target (an
//! app leakhound starts, or a running process it attaches to) is sampled on its own task:
//! `process.memoryUsage()` with the heap limit, heap spaces and GC counts in one inspector
//! call ([`RuntimeSample`]), a forced full GC now and then when asked (by default only for
//! an app leakhound starts), the app's own major GCs as floor points, and a running floor
//! analysis and verdict, sent as a [`TargetStatus`] after every sample, until the time is
//! up, the caller says stop, or every target has ended.
//!
//! An attached process is left as it was found: the GC observer is removed and the
//! inspector that SIGUSR1 opened is closed again when the watch leaves it, and it is never
//! stopped. A target that ends (its app exited) is reported ([`WatchEvent::Ended`], a last
//! status with `up` false) while the others go on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leakhound_inspector::{GcKind, GcKindStats, HeapSpace, OutputLine, RuntimeSample, Session};
use leakhound_leaks::{Evidence, FloorAnalysis, MemorySample};
use tokio::sync::mpsc;

use crate::config::{AppTarget, WatchConfig};
use crate::error::HuntError;
use crate::outcome::Verdict;
use crate::run::StartedApp;
use crate::sampling::{Clock, Sampler};

/// Floor points a target keeps for its analysis: the newest ones (a forced GC every 5 s
/// fills it in 7 h; older points leave the fit).
pub const MAX_FLOOR_POINTS: usize = 5_000;
/// Samples a target keeps for its outcome: the newest ones, so a long-running agent's
/// memory stays bounded.
pub const MAX_KEPT_SAMPLES: usize = 20_000;

/// Which isolate a target is: a process and, for a worker thread, its `threadId` (None for
/// a process's main thread).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// The process id.
    pub pid: u32,
    /// The worker thread's `threadId`; None for the main thread.
    pub thread_id: Option<u64>,
}

/// What the watch knows about one target after its latest sample: what a metrics
/// endpoint, a health check or a live view shows.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    /// The target's place in the watch (0 for the first `--attach` or the started app).
    pub index: usize,
    /// Which isolate.
    pub key: TargetKey,
    /// Attached to a running process (else started by leakhound).
    pub attached: bool,
    /// Still watched: false once the target ended (its app exited, the inspector closed, or
    /// the watch stopped).
    pub up: bool,
    /// When leakhound began watching it.
    pub since: Instant,
    /// The latest `process.memoryUsage()` reading.
    pub last: Option<MemorySample>,
    /// The latest reading right after a full GC: the floor now.
    pub last_floor: Option<MemorySample>,
    /// `heap_size_limit` of `v8.getHeapStatistics()`, bytes (None if unknown).
    pub heap_limit_bytes: Option<u64>,
    /// The heap spaces at the latest sample.
    pub heap_spaces: Vec<HeapSpace>,
    /// GCs per kind since leakhound began watching (cumulative counts and durations).
    pub gc: Vec<GcKindStats>,
    /// The app's `process.uptime()` at the latest sample, seconds.
    pub app_uptime_seconds: Option<f64>,
    /// The floor analysis after the warm-up.
    pub floor: FloorAnalysis,
    /// The verdict so far (see [`judge`]).
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// With [`Verdict::Inconclusive`], what would decide it.
    pub what_would_decide: Option<String>,
    /// Why it ended, once it has.
    pub ended: Option<String>,
}

impl TargetStatus {
    /// Full (mark-compact) GCs seen since leakhound began watching, forced ones included.
    pub fn gc_full_total(&self) -> u64 {
        self.gc.iter().find(|k| k.kind == GcKind::Major).map_or(0, |k| k.count)
    }

    /// What the floor of each fitted memory kind shows on its own, per hour: `heap_used`,
    /// `external`, `rss`, in that order.
    pub fn evidence(&self) -> [(&'static str, Evidence); 3] {
        [
            ("heap_used", self.floor.heap_used.evidence_per_hour()),
            ("external", self.floor.external.evidence_per_hour()),
            ("rss", self.floor.rss.evidence_per_hour()),
        ]
    }
}

/// What [`TargetHook::after_sample`] returns.
pub type HookFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = HookAction> + Send + 'a>>;

/// What the watch does after a hook ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    /// Go on sampling.
    Continue,
    /// Restart the app leakhound started (`--restart-above`): SIGTERM, `kill_timeout`,
    /// SIGKILL, wait `delay` (a crash loop's back-off), start it again and watch the new
    /// process, as the same target. Ignored for an attached process (never stopped).
    Restart {
        /// Between SIGTERM and SIGKILL.
        kill_timeout: Duration,
        /// Before starting it again.
        delay: Duration,
    },
}

/// Called by each target's task after every sample, with the target's status and its
/// inspector session: where evidence capture plugs in (a heap snapshot when the floor
/// rises or the heap nears its limit, a restart with evidence). It runs on that target's
/// task: the target's next sample waits for it, the other targets and the metrics server
/// do not; the end of the watch does not wait for it either (it is dropped). A hook that
/// reports what it did sends its own events (e.g. to the agent's board).
pub trait TargetHook: Send + Sync + std::fmt::Debug {
    /// After a sample of a target that is up.
    fn after_sample<'a>(&'a self, status: &'a TargetStatus, session: &'a Session) -> HookFuture<'a>;
}

/// Progress of a watch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A target is being watched.
    Started {
        /// The target's place in the watch.
        target: usize,
        /// Process id of the app (spawned or attached to).
        pid: u32,
        /// Attached to a running process (else started by leakhound).
        attached: bool,
    },
    /// A line the app wrote (an app leakhound started).
    AppOutput(OutputLine),
    /// A target's state after a sample, and once more when it ends (`up` false).
    Status(Box<TargetStatus>),
    /// A started app was restarted at a hook's request (`--restart-above`) and the new
    /// process is watched in its place.
    Restarted {
        /// The target's place in the watch.
        target: usize,
        /// The process that was stopped.
        old_pid: u32,
        /// The process now watched.
        new_pid: u32,
        /// Restarts of this target so far.
        restarts: u32,
    },
    /// A target ended while the watch goes on for the others (or the watch ended).
    Ended {
        /// The target's place in the watch.
        target: usize,
        /// Its process id.
        pid: u32,
        /// Why: `the app exited (…)`, `the inspector connection closed`, `stopped`, `time up`.
        reason: String,
    },
}

/// What a watch saw of one target.
#[derive(Debug, Clone)]
pub struct WatchOutcome {
    /// Pid of the app.
    pub pid: u32,
    /// Attached to a running process (else started by leakhound).
    pub attached: bool,
    /// The `process.memoryUsage()` readings, oldest first (at most [`MAX_KEPT_SAMPLES`],
    /// the newest): leakhound's own and those taken right after the app's own full GCs.
    pub samples: Vec<MemorySample>,
    /// The floor analysis after the warm-up.
    pub floor: FloorAnalysis,
    /// Why it ended: `time up`, `stopped`, `the app exited (…)`.
    pub ended: String,
    /// The verdict (see [`judge`]).
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// With [`Verdict::Inconclusive`], what would decide it.
    pub what_would_decide: Option<String>,
}

/// The watch's verdict from its floors, per hour, and the time it watched:
///
/// 1. `Leak` when the floor of some memory kind rises (lower 95 % bound of its slope above
///    zero, by more than the noise: [`FloorFit::growing`](leakhound_leaks::FloorFit));
/// 2. `NoLeak` when the floors of the JS heap, external memory and RSS are all flat per
///    hour: at least [`leakhound_leaks::MIN_FLAT_POINTS`] points each and the upper 95 %
///    bound below [`leakhound_leaks::flat_bytes_per_hour`] (1 MiB/h or 1 %/h; RSS
///    4 MiB/h or 2 %/h);
/// 3. else `Inconclusive`, saying how many more floor points would decide it and, at the
///    pace points came so far, about how long that is.
pub fn judge(floor: &FloorAnalysis, watched: Duration) -> (Verdict, String, Option<String>) {
    if !floor.growing.is_empty() {
        let what: Vec<&str> = floor.growing.iter().map(|k| k.as_str()).collect();
        return (
            Verdict::Leak,
            format!("the post-GC floor of {} rises", what.join(" and ")),
            None,
        );
    }
    let fits = [&floor.heap_used, &floor.external, &floor.rss];
    let evidence: Vec<Evidence> = fits.iter().map(|f| f.evidence_per_hour()).collect();
    if evidence.iter().all(|e| *e == Evidence::Flat) {
        return (
            Verdict::NoLeak,
            format!(
                "the post-GC floor is flat ({} floor points; every slope's 95 % upper bound below the margin)",
                floor.heap_used.points
            ),
            None,
        );
    }
    let points = floor.heap_used.points;
    let more = Evidence::more_points_needed(&evidence).unwrap_or(1);
    let reason = if points == 0 {
        "no full GC has happened since the warm-up, so there is no floor to judge".to_owned()
    } else {
        format!(
            "{points} floor point{} cannot tell a flat floor from a slow rise yet",
            if points == 1 { "" } else { "s" }
        )
    };
    let pace = if points >= 2 {
        let secs = watched.as_secs_f64() * more as f64 / points as f64;
        format!(" (about {} more at the pace so far)", human_duration(secs))
    } else {
        " (the app runs few full GCs of its own: --gc-interval-ms makes leakhound force them)".to_owned()
    };
    (
        Verdict::Inconclusive,
        reason,
        Some(format!(
            "run longer: about {more} more floor point{}{pace}",
            if more == 1 { "" } else { "s" }
        )),
    )
}

/// `90 s`, `12 min`, `3.5 h`.
fn human_duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{:.0} s", secs.max(1.0))
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// Runs a watch on every target of `cfg`: all are started or attached to first (a failure
/// there ends the watch with that error, leaving the others as they were), then each is
/// sampled on its own task until the time is up, `cfg.stop` is set, or every target has
/// ended. Returns one outcome per target, in the order of `cfg.targets`.
///
/// # Errors
/// [`HuntError`] when an app cannot be started or attached to.
///
/// # Cancel safety
/// Dropping the future stops a spawned app; prefer setting `stop`.
pub async fn watch(
    cfg: WatchConfig,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> Result<Vec<WatchOutcome>, HuntError> {
    let mut started: Vec<(StartedApp, bool)> = Vec::new();
    for target in &cfg.targets {
        let fwd = events.clone();
        let attached = matches!(target, AppTarget::Attach { .. });
        match crate::run::start_app(target, cfg.ready_timeout, move |l| {
            let _ = fwd.send(WatchEvent::AppOutput(l));
        })
        .await
        {
            Ok(app) => started.push((app, attached)),
            Err(e) => {
                for (app, _) in started {
                    leave(app, false).await;
                }
                return Err(e);
            }
        }
    }
    let begun = Instant::now();
    let shared = Arc::new(Shared {
        sample_interval: cfg.sample_interval,
        gc_interval: cfg.gc_interval,
        warmup: cfg.warmup,
        deadline: cfg.duration.map(|d| begun + d),
        stop: cfg.stop.clone(),
        hook: cfg.hook.clone(),
        ready_timeout: cfg.ready_timeout,
    });
    let mut tasks = Vec::new();
    for (index, ((app, attached), spec)) in started.into_iter().zip(cfg.targets.iter().cloned()).enumerate() {
        tasks.push(tokio::spawn(watch_target(
            index,
            app,
            spec,
            attached,
            shared.clone(),
            events.clone(),
        )));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(o) => outcomes.push(o),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down; nothing to report for it.
            Err(_) => {}
        }
    }
    Ok(outcomes)
}

/// What every target's task shares.
struct Shared {
    sample_interval: Duration,
    gc_interval: Option<Duration>,
    warmup: Duration,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
    hook: Option<Arc<dyn TargetHook>>,
    ready_timeout: Duration,
}

/// How often a waiting target checks for the end of the watch and of its app.
const POLL: Duration = Duration::from_millis(200);

impl Shared {
    /// Why the whole watch ends now, if it does.
    fn over(&self) -> Option<&'static str> {
        if self.stop.load(Ordering::SeqCst) {
            Some("stopped")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("time up")
        } else {
            None
        }
    }

    /// Resolves when the watch is over (polled: the stop flag is a plain atomic).
    async fn until_over(&self) -> &'static str {
        loop {
            if let Some(why) = self.over() {
                return why;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A target being watched: the app leakhound started (or None), its session, and the
/// claim on an attached process.
struct Target {
    process: Option<leakhound_inspector::NodeProcess>,
    session: Arc<leakhound_inspector::Session>,
    _lock: Option<crate::lock::TargetLock>,
}

impl Target {
    fn new(app: StartedApp) -> Target {
        Target {
            process: app.process,
            session: Arc::new(app.session),
            _lock: app.lock,
        }
    }

    /// Why this target ends now, if it does: the watch is over, its app exited or its
    /// inspector closed.
    fn ended(&mut self, shared: &Shared) -> Option<String> {
        if let Some(why) = shared.over() {
            return Some(why.to_owned());
        }
        if let Some(p) = self.process.as_mut()
            && let Ok(Some(status)) = p.try_wait()
        {
            return Some(format!("the app exited ({status})"));
        }
        if self.session.is_closed() {
            return Some(if self.process.is_none() {
                "the app exited or closed its inspector".to_owned()
            } else {
                "the inspector connection closed".to_owned()
            });
        }
        None
    }

    /// Leaves the target: an attached process gets its GC observer removed and its
    /// inspector closed (when leakhound opened it) and goes on running; a started app is
    /// stopped.
    async fn leave(self, observer: bool) {
        if self.process.is_none() && observer && !self.session.is_closed() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.session.remove_gc_observer()).await;
        }
        self.session.close().await;
        if let Some(mut p) = self.process {
            let _ = p.kill_with_grace(Duration::from_secs(2)).await;
        }
    }
}

/// Leaves an app that was started or attached to before the watch began.
async fn leave(app: StartedApp, observer: bool) {
    Target::new(app).leave(observer).await;
}

/// Watches one target until it or the watch ends.
async fn watch_target(
    index: usize,
    app: StartedApp,
    spec: AppTarget,
    attached: bool,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> WatchOutcome {
    let mut target = Target::new(app);
    let mut session = target.session.clone();
    let mut restarts = 0u32;
    let mut pid = target
        .process
        .as_ref()
        .map(|p| p.pid())
        .unwrap_or_else(|| session.pid());
    let _ = events.send(WatchEvent::Started {
        target: index,
        pid,
        attached,
    });
    let mut observer = session.install_gc_observer().await.is_ok();
    let clock = Clock::start();
    let warmup_ms = shared.warmup.as_secs_f64() * 1000.0;
    let mut status = TargetStatus {
        index,
        key: TargetKey { pid, thread_id: None },
        attached,
        up: true,
        since: Instant::now(),
        last: None,
        last_floor: None,
        heap_limit_bytes: None,
        heap_spaces: Vec::new(),
        gc: Vec::new(),
        app_uptime_seconds: None,
        floor: leakhound_leaks::analyze_floor(&[], 0.0),
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        what_would_decide: None,
        ended: None,
    };
    let mut samples: VecDeque<MemorySample> = VecDeque::new();
    let mut floors: VecDeque<MemorySample> = VecDeque::new();
    let mut sampler = Sampler::new(session.clone(), clock, shared.gc_interval);
    let mut next = Instant::now();
    let ended = 'watch: loop {
        // Wait for the next sample, noticing meanwhile the end of the watch or of the app.
        loop {
            if let Some(why) = target.ended(&shared) {
                break 'watch why;
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            tokio::time::sleep((next - now).min(POLL)).await;
        }
        next += shared.sample_interval;
        if next < Instant::now() {
            next = Instant::now() + shared.sample_interval;
        }
        // A step waits for the app (a forced GC, a busy event loop): the end of the watch
        // does not wait for it.
        let step = tokio::select! {
            r = sampler.step_runtime() => r,
            why = shared.until_over() => break 'watch why.to_owned(),
        };
        // A failed step (the app busy or exiting) is retried; the checks above end the loop.
        let Ok((batch, runtime)) = step else { continue };
        record(&mut status, &mut samples, &mut floors, batch, runtime);
        status.floor = leakhound_leaks::analyze_floor(floors.make_contiguous(), warmup_ms);
        let watched = Duration::from_secs_f64((clock.now_ms() - warmup_ms).max(0.0) / 1000.0);
        (status.verdict, status.reason, status.what_would_decide) = judge(&status.floor, watched);
        let _ = events.send(WatchEvent::Status(Box::new(status.clone())));
        if let Some(hook) = &shared.hook {
            let action = tokio::select! {
                a = hook.after_sample(&status, &session) => a,
                why = shared.until_over() => break 'watch why.to_owned(),
            };
            if let HookAction::Restart { kill_timeout, delay } = action
                && !attached
            {
                // Stop the app gracefully, back off, start it again: the same target,
                // a new process and a new memory series.
                let old_pid = pid;
                let old = target.process.take();
                session.close().await;
                if let Some(mut p) = old {
                    let _ = p.kill_with_grace(kill_timeout).await;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    why = shared.until_over() => break 'watch why.to_owned(),
                }
                let fwd = events.clone();
                let app = match crate::run::start_app(&spec, shared.ready_timeout, move |l| {
                    let _ = fwd.send(WatchEvent::AppOutput(l));
                })
                .await
                {
                    Ok(app) => app,
                    Err(e) => break 'watch format!("the app could not be restarted: {e}"),
                };
                target = Target::new(app);
                session = target.session.clone();
                pid = target
                    .process
                    .as_ref()
                    .map(|p| p.pid())
                    .unwrap_or_else(|| session.pid());
                restarts += 1;
                observer = session.install_gc_observer().await.is_ok();
                sampler = Sampler::new(session.clone(), clock, shared.gc_interval);
                samples.clear();
                floors.clear();
                status.key.pid = pid;
                status.last = None;
                status.last_floor = None;
                status.floor = leakhound_leaks::analyze_floor(&[], 0.0);
                let _ = events.send(WatchEvent::Restarted {
                    target: index,
                    old_pid,
                    new_pid: pid,
                    restarts,
                });
                next = Instant::now();
            }
        }
    };
    target.leave(observer).await;
    let mut samples: Vec<MemorySample> = samples.into();
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let floor = leakhound_leaks::analyze_floor(floors.make_contiguous(), warmup_ms);
    let watched = Duration::from_secs_f64((clock.now_ms() - warmup_ms).max(0.0) / 1000.0);
    let (verdict, reason, what_would_decide) = judge(&floor, watched);
    status.up = false;
    status.ended = Some(ended.clone());
    status.floor = floor.clone();
    (status.verdict, status.reason, status.what_would_decide) = (verdict, reason.clone(), what_would_decide.clone());
    let _ = events.send(WatchEvent::Status(Box::new(status)));
    let _ = events.send(WatchEvent::Ended {
        target: index,
        pid,
        reason: ended.clone(),
    });
    WatchOutcome {
        pid,
        attached,
        samples,
        floor,
        ended,
        verdict,
        reason,
        what_would_decide,
    }
}

/// Adds a step's readings to a target: its samples (at most [`MAX_KEPT_SAMPLES`]), its
/// floor points (at most [`MAX_FLOOR_POINTS`], kept in time order) and its latest figures.
fn record(
    status: &mut TargetStatus,
    samples: &mut VecDeque<MemorySample>,
    floors: &mut VecDeque<MemorySample>,
    batch: Vec<MemorySample>,
    runtime: RuntimeSample,
) {
    status.last = batch.first().copied();
    for s in batch {
        if s.after_full_gc {
            floors.push_back(s);
            if status.last_floor.is_none_or(|f| f.t_ms <= s.t_ms) {
                status.last_floor = Some(s);
            }
        }
        samples.push_back(s);
    }
    while samples.len() > MAX_KEPT_SAMPLES {
        samples.pop_front();
    }
    while floors.len() > MAX_FLOOR_POINTS {
        floors.pop_front();
    }
    // The app's GCs are stamped with its own clock and may come before the last reading.
    if !floors.iter().is_sorted_by(|a, b| a.t_ms <= b.t_ms) {
        floors.make_contiguous().sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    }
    status.heap_limit_bytes = runtime.heap_limit_bytes.or(status.heap_limit_bytes);
    status.heap_spaces = runtime.heap_spaces;
    status.gc = runtime.gc;
    status.app_uptime_seconds = runtime.uptime_seconds.or(status.app_uptime_seconds);
}

#[cfg(test)]
mod tests {
    use leakhound_leaks::analyze_floor;

    use super::*;

    fn floors(n: u64, every_s: f64, heap: impl Fn(u64) -> u64) -> FloorAnalysis {
        let samples: Vec<MemorySample> = (0..n)
            .map(|i| MemorySample {
                t_ms: i as f64 * every_s * 1000.0,
                heap_used_bytes: heap(i),
                external_bytes: 2 << 20,
                rss_bytes: 80 << 20,
                after_full_gc: true,
                ..Default::default()
            })
            .collect();
        analyze_floor(&samples, 0.0)
    }

    #[test]
    fn an_hour_of_flat_floors_is_no_leak() {
        let f = floors(60, 60.0, |i| (40 << 20) + (i % 3) * 30_000);
        let (v, reason, next) = judge(&f, Duration::from_secs(3600));
        assert_eq!(v, Verdict::NoLeak, "{reason} {next:?}");
    }

    #[test]
    fn seconds_of_flat_floors_are_inconclusive_with_a_time_estimate() {
        let f = floors(6, 1.0, |i| (40 << 20) + (i % 3) * 300_000);
        let (v, _, next) = judge(&f, Duration::from_secs(6));
        assert_eq!(v, Verdict::Inconclusive);
        let next = next.expect("what would decide it");
        assert!(next.starts_with("run longer: about "), "{next}");
        assert!(next.contains("at the pace so far"), "{next}");
    }

    #[test]
    fn a_rising_floor_is_a_leak() {
        let f = floors(20, 30.0, |i| (40 << 20) + i * (2 << 20));
        assert_eq!(judge(&f, Duration::from_secs(600)).0, Verdict::Leak);
    }
}
