//! `watch`: the memory watch, one app or a long-running agent on several. Each target (an
//! app leakhound starts, or a running process it attaches to) and every isolate of it (the
//! cluster workers and other node processes below it, the `worker_threads` Workers inside
//! any of them, found as the hunt finds them: `discovery.rs`, polled, so replaced workers
//! are followed) is sampled on its own task: `process.memoryUsage()` with the heap limit,
//! heap spaces and GC counts in one inspector call ([`RuntimeSample`]), a forced full GC now
//! and then when asked (by default only for an app leakhound starts), the isolate's own
//! major GCs as floor points, and a running floor analysis and verdict, sent as a
//! [`TargetStatus`] after every sample, until the time is up, the caller says stop, or every
//! target has ended.
//!
//! An attached process is left as it was found: the GC observers are removed and the
//! inspectors that SIGUSR1 opened (its own, its children's) are closed again when the watch
//! leaves, worker threads first, then the children, then the process; none is ever stopped.
//! A started app's whole process group is stopped on every exit path. An isolate that ends
//! (its process or thread exited) is reported ([`WatchEvent::Ended`], a last status with
//! `up` false) while the others go on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use leakhound_inspector::{GcKind, GcKindStats, HeapSpace, Isolate, IsolateKind, OutputLine, RuntimeSample, Session};
use leakhound_leaks::{Evidence, FloorAnalysis, MemorySample};
use tokio::sync::mpsc;

use crate::config::{AppTarget, WatchConfig};
use crate::discovery::{DISCOVERY_INTERVAL, Discovery, Found, MAX_ISOLATES, OpenBefore, full_warning};
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

/// Most isolates of one target whose outcome is kept after they ended (a long-running
/// watch of an app that replaces its workers keeps the newest ones).
pub const MAX_ENDED_KEPT: usize = 64;

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
    /// The isolate's place in the watch: the targets' main isolates first, in the order
    /// given (0 for the first `--attach` or the started app), then every isolate found
    /// after them, numbered as found (never reused).
    pub index: usize,
    /// The target the isolate belongs to: its place among the apps started or attached to.
    pub target: usize,
    /// Which isolate: the target's own process (`main`), a cluster worker or other node
    /// child below it, or a worker thread in any of them.
    pub isolate: Isolate,
    /// Which isolate, by pid and thread (the metrics' labels).
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
    /// After a sample of a target that is up (any isolate: `session` is that isolate's
    /// own, a worker thread's tunnelled through its process's).
    fn after_sample<'a>(&'a self, status: &'a TargetStatus, session: &'a Session) -> HookFuture<'a>;

    /// An isolate other than a target's main one ended while the watch goes on (a cluster
    /// worker or thread exited): what the hook kept for it can go. Nothing by default.
    fn isolate_ended(&self, _status: &TargetStatus) {}
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
    /// Another isolate of a target is watched from now on (a cluster worker or other node
    /// child of it, or a worker thread in any of its processes), at its own place `index`.
    Followed {
        /// The isolate's place in the watch (its statuses carry it).
        index: usize,
        /// The target it belongs to.
        target: usize,
        /// Which isolate.
        isolate: Isolate,
        /// Of an attached app (else of one leakhound started).
        attached: bool,
    },
    /// An isolate of a target was found but cannot be watched (its inspector could not be
    /// reached), and why.
    Unfollowed {
        /// The target it belongs to.
        target: usize,
        /// Which isolate.
        isolate: Isolate,
        /// Why, in a sentence.
        reason: String,
    },
    /// Something the person watching should know that does not end the watch.
    Warning(String),
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
    /// An isolate ended while the watch goes on for the others (or the watch ended).
    Ended {
        /// The isolate's place in the watch ([`TargetStatus::index`]).
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
    /// Pid of the app (of the isolate's process).
    pub pid: u32,
    /// Which isolate.
    pub isolate: Isolate,
    /// The target it belongs to (its place among the apps started or attached to).
    pub target: usize,
    /// When it was first watched, ms since the watch started (0 for a target's main
    /// isolate).
    pub joined_ms: f64,
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
/// sampled on its own task, and so is every isolate found below it (unless
/// `cfg.follow_isolates` is false), until the time is up, `cfg.stop` is set, or every
/// target has ended. Returns one outcome per isolate: per target, in the order of
/// `cfg.targets`, its main isolate first, then the others in the order found (of those
/// that ended before the watch did, the newest [`MAX_ENDED_KEPT`]).
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
    // Read before attaching to any: what the processes and their children listen on (an
    // inspector opened since, by SIGUSR1 or because a cluster's primary was attached to,
    // is closed again when leakhound leaves).
    let mut ports_before = std::collections::BTreeMap::new();
    let mut children_before = Vec::new();
    for target in &cfg.targets {
        children_before.push(match target {
            AppTarget::Attach { pid } => {
                ports_before.insert(
                    *pid,
                    leakhound_inspector::proc::listening_addrs(*pid).unwrap_or_default(),
                );
                cfg.follow_isolates.then(|| OpenBefore::read(*pid))
            }
            AppTarget::Spawn { .. } => None,
        });
    }
    let mut started: Vec<(StartedApp, bool, Option<OpenBefore>)> = Vec::new();
    for (target, before) in cfg.targets.iter().zip(children_before) {
        let fwd = events.clone();
        let attached = matches!(target, AppTarget::Attach { .. });
        match crate::run::start_app(target, cfg.ready_timeout, move |l| {
            let _ = fwd.send(WatchEvent::AppOutput(l));
        })
        .await
        {
            Ok(app) => {
                if let AppTarget::Attach { pid } = target
                    && !app.session.closes_inspector()
                    && let Some(port) = ws_port(app.session.url())
                    && ports_before
                        .get(pid)
                        .is_some_and(|b| !b.iter().any(|a| a.port() == port))
                {
                    // Opened since the watch began (attaching another target, its
                    // cluster's primary, opened it): closed again like one SIGUSR1 opened.
                    app.session.close_inspector_on_close();
                }
                started.push((app, attached, before));
            }
            Err(e) => {
                for (app, ..) in started {
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
        clock: Clock::start(),
        follow: cfg.follow_isolates,
        next_index: AtomicUsize::new(cfg.targets.len()),
        target_pids: started
            .iter()
            .map(|(app, ..)| app.process.as_ref().map_or_else(|| app.session.pid(), |p| p.pid()))
            .collect(),
    });
    let mut tasks = Vec::new();
    for (index, ((app, attached, before), spec)) in started.into_iter().zip(cfg.targets.iter().cloned()).enumerate() {
        tasks.push(tokio::spawn(watch_target(
            index,
            app,
            Spec {
                target: spec,
                attached,
                open_before: before,
            },
            shared.clone(),
            events.clone(),
        )));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(o) => outcomes.extend(o),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down; nothing to report for it.
            Err(_) => {}
        }
    }
    Ok(outcomes)
}

/// The port of an inspector WebSocket URL (`ws://127.0.0.1:9229/…`).
fn ws_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// A target as given, and what was read before attaching to it.
struct Spec {
    /// How to start it (again) or attach to it.
    target: AppTarget,
    /// Attached to a running process.
    attached: bool,
    /// For an attached app: what its children listened on before.
    open_before: Option<OpenBefore>,
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
    /// The watch's clock: every sample's `t_ms`.
    clock: Clock,
    /// Follow the isolates below each target (false: `--main-only`).
    follow: bool,
    /// The next isolate's place in the watch.
    next_index: AtomicUsize,
    /// The targets' own pids: never found again as another target's child.
    target_pids: Vec<u32>,
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
    /// stopped (its whole process group).
    async fn leave(self, observer: bool) {
        leave_session(&self.session, self.process.is_none() && observer).await;
        if let Some(mut p) = self.process {
            let _ = p.kill_with_grace(Duration::from_secs(2)).await;
        }
    }
}

/// Leaves one isolate's session: its GC observer removed first when `observer` (an
/// attached app's), then the session closed (which closes an inspector leakhound opened
/// with SIGUSR1).
async fn leave_session(session: &Session, observer: bool) {
    if observer && !session.is_closed() {
        let _ = tokio::time::timeout(Duration::from_secs(2), session.remove_gc_observer()).await;
    }
    session.close().await;
}

/// Leaves an app that was started or attached to before the watch began.
async fn leave(app: StartedApp, observer: bool) {
    Target::new(app).leave(observer).await;
}

/// One isolate's series and status while it is watched.
struct Series {
    status: TargetStatus,
    samples: VecDeque<MemorySample>,
    floors: VecDeque<MemorySample>,
    /// When it joined, ms on the watch's clock.
    joined_ms: f64,
    /// Floor points before this (ms on the watch's clock) are its warm-up.
    warm_until_ms: f64,
    clock: Clock,
}

impl Series {
    /// A series for `isolate`, joining now.
    fn new(index: usize, target: usize, isolate: Isolate, attached: bool, shared: &Shared) -> Series {
        let joined_ms = shared.clock.now_ms();
        Series {
            status: TargetStatus {
                index,
                target,
                isolate,
                key: TargetKey {
                    pid: isolate.pid,
                    thread_id: isolate.thread_id.map(u64::from),
                },
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
            },
            samples: VecDeque::new(),
            floors: VecDeque::new(),
            joined_ms,
            warm_until_ms: joined_ms + shared.warmup.as_secs_f64() * 1000.0,
            clock: shared.clock,
        }
    }

    /// The floor analysis and verdict of the floor points so far.
    fn judge(&mut self) {
        let floor = leakhound_leaks::analyze_floor(self.floors.make_contiguous(), self.warm_until_ms);
        let watched = Duration::from_secs_f64((self.clock.now_ms() - self.warm_until_ms).max(0.0) / 1000.0);
        let st = &mut self.status;
        (st.verdict, st.reason, st.what_would_decide) = judge(&floor, watched);
        st.floor = floor;
    }

    /// Takes in one step's readings.
    fn take(&mut self, batch: Vec<MemorySample>, runtime: RuntimeSample) {
        record(&mut self.status, &mut self.samples, &mut self.floors, batch, runtime);
        self.judge();
    }

    /// A new process in the target's place (a restart): a new memory series.
    fn restart(&mut self, pid: u32) {
        self.samples.clear();
        self.floors.clear();
        self.status.key.pid = pid;
        self.status.isolate.pid = pid;
        self.status.last = None;
        self.status.last_floor = None;
        self.status.floor = leakhound_leaks::analyze_floor(&[], 0.0);
    }

    /// Its last status (`up` false, why it ended) and its outcome.
    fn end(mut self, ended: String) -> (TargetStatus, WatchOutcome) {
        self.judge();
        let mut samples: Vec<MemorySample> = self.samples.into();
        samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        let st = &mut self.status;
        st.up = false;
        st.ended = Some(ended.clone());
        let outcome = WatchOutcome {
            pid: st.key.pid,
            isolate: st.isolate,
            target: st.target,
            joined_ms: self.joined_ms,
            attached: st.attached,
            samples,
            floor: st.floor.clone(),
            ended,
            verdict: st.verdict,
            reason: st.reason.clone(),
            what_would_decide: st.what_would_decide.clone(),
        };
        (self.status, outcome)
    }
}

/// Watches one target, its main isolate on this task and every isolate found below it on
/// tasks of their own, until it or the watch ends; then leaves them all (worker threads
/// first, then child processes, then the target itself). Its outcomes, the main isolate's
/// first.
async fn watch_target(
    index: usize,
    app: StartedApp,
    spec: Spec,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> Vec<WatchOutcome> {
    let Spec {
        target: spec,
        attached,
        open_before,
    } = spec;
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
    let main = Isolate::process(pid, IsolateKind::Main);
    let family = Family::new(index, attached, main, session.clone());
    let discovery = shared.follow.then(|| {
        let mut d = Discovery::new(true).skipping(shared.target_pids.iter().copied().filter(|p| *p != pid));
        if let Some(before) = open_before {
            d = d.attached(before);
        }
        tokio::spawn(discover_loop(d, family.clone(), shared.clone(), events.clone()))
    });
    let mut series = Series::new(index, index, main, attached, &shared);
    let mut sampler = Sampler::new(session.clone(), shared.clock, shared.gc_interval);
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
        series.take(batch, runtime);
        family.unwatched_say_so(&mut series.status);
        let _ = events.send(WatchEvent::Status(Box::new(series.status.clone())));
        if let Some(hook) = &shared.hook {
            let action = tokio::select! {
                a = hook.after_sample(&series.status, &session) => a,
                why = shared.until_over() => break 'watch why.to_owned(),
            };
            if let HookAction::Restart { kill_timeout, delay } = action
                && !attached
            {
                // Stop the app gracefully, back off, start it again: the same target,
                // a new process and a new memory series (its isolates end with it and
                // the new process's are found again).
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
                sampler = Sampler::new(session.clone(), shared.clock, shared.gc_interval);
                series.restart(pid);
                family.restarted(Isolate::process(pid, IsolateKind::Main), session.clone());
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
    // Every isolate below ends with the target, and is left before it.
    family.end(&ended);
    if let Some(d) = discovery {
        // A pass under way finishes (a child's inspector it opened is then closed with
        // the others), bounded by the time one child gets to connect.
        let _ = d.await;
    }
    let others = family.finish().await;
    target.leave(observer).await;
    let (mut status, mut outcome) = series.end(ended.clone());
    family.unwatched_say_so(&mut status);
    (outcome.verdict, outcome.reason, outcome.what_would_decide) =
        (status.verdict, status.reason.clone(), status.what_would_decide.clone());
    let _ = events.send(WatchEvent::Status(Box::new(status)));
    let _ = events.send(WatchEvent::Ended {
        target: index,
        pid,
        reason: ended,
    });
    let mut outcomes = vec![outcome];
    outcomes.extend(others);
    outcomes
}

/// The isolates of one target beside its main one, and what their tasks share.
struct Family {
    /// The target's place.
    target: usize,
    /// An attached app (else one leakhound started).
    attached: bool,
    /// The pid of the target's process now (a restart changes it): where discovery looks.
    root: AtomicU32,
    /// Set when the target ended: every isolate of it ends too, and discovery stops.
    stopping: AtomicBool,
    /// Why the target ended, once it has.
    why: StdMutex<Option<String>>,
    /// The target's own isolate and its session (a restart changes them).
    main: StdMutex<(Isolate, Arc<Session>)>,
    /// The other isolates being watched, with their sessions.
    others: StdMutex<Vec<(Isolate, Arc<Session>)>>,
    /// The tasks of the isolates found, not yet reaped.
    tasks: StdMutex<Vec<tokio::task::JoinHandle<IsolateEnd>>>,
    /// What the isolates that ended left, the newest [`MAX_ENDED_KEPT`].
    ended: StdMutex<VecDeque<IsolateEnd>>,
    /// Isolates found so far.
    found: AtomicUsize,
    /// The isolate limit was said.
    full_said: AtomicBool,
    /// Isolates found but not watched (their inspector could not be reached), and why.
    unfollowed: StdMutex<Vec<(Isolate, String)>>,
    /// More isolates than [`MAX_ISOLATES`] were found at a time.
    past_limit: AtomicBool,
}

/// What an isolate's task leaves: its outcome and, to be left by the target, its session.
struct IsolateEnd {
    /// Its place in the order found.
    order: usize,
    outcome: WatchOutcome,
    session: Arc<Session>,
    /// Its GC observer was installed.
    observer: bool,
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Family {
    fn new(target: usize, attached: bool, main: Isolate, session: Arc<Session>) -> Arc<Family> {
        Arc::new(Family {
            target,
            attached,
            root: AtomicU32::new(main.pid),
            stopping: AtomicBool::new(false),
            why: StdMutex::new(None),
            main: StdMutex::new((main, session)),
            others: StdMutex::new(Vec::new()),
            tasks: StdMutex::new(Vec::new()),
            ended: StdMutex::new(VecDeque::new()),
            found: AtomicUsize::new(0),
            full_said: AtomicBool::new(false),
            unfollowed: StdMutex::new(Vec::new()),
            past_limit: AtomicBool::new(false),
        })
    }

    /// The target's own verdict, said with the isolates that went unwatched
    /// ([`unwatched_say_so`]).
    fn unwatched_say_so(&self, st: &mut TargetStatus) {
        let missed = lock(&self.unfollowed);
        unwatched_say_so(st, &missed, self.past_limit.load(Ordering::SeqCst));
    }

    /// Why the isolates of this target end now, if they do: the watch or the target ended.
    fn over(&self, shared: &Shared) -> Option<String> {
        if let Some(why) = lock(&self.why).clone() {
            return Some(why);
        }
        shared.over().map(str::to_owned)
    }

    /// Resolves when [`Family::over`] says so.
    async fn until_over(&self, shared: &Shared) -> String {
        loop {
            if let Some(why) = self.over(shared) {
                return why;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The target's process was restarted: the new one is the main isolate and where
    /// discovery looks.
    fn restarted(&self, main: Isolate, session: Arc<Session>) {
        self.root.store(main.pid, Ordering::SeqCst);
        *lock(&self.main) = (main, session);
    }

    /// The target ended (`why`): its isolates end too.
    fn end(&self, why: &str) {
        lock(&self.why).get_or_insert_with(|| why.to_owned());
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The isolates watched now, with their sessions, the main one first (closed ones
    /// left out).
    fn live(&self) -> Vec<(Isolate, Arc<Session>)> {
        let mut others = lock(&self.others);
        others.retain(|(_, s)| !s.is_closed());
        let main = lock(&self.main).clone();
        let mut live = Vec::with_capacity(others.len() + 1);
        if !main.1.is_closed() {
            live.push(main);
        }
        live.extend(others.iter().cloned());
        live
    }

    /// How many more isolates may be followed.
    fn room(&self) -> usize {
        MAX_ISOLATES.saturating_sub(self.live().len())
    }

    /// Keeps what an ended isolate left, dropping the oldest past [`MAX_ENDED_KEPT`]
    /// whose session is closed (one still to be left is never dropped).
    fn keep(&self, end: IsolateEnd) {
        let mut ended = lock(&self.ended);
        ended.push_back(end);
        while ended.len() > MAX_ENDED_KEPT {
            let Some(oldest) = ended.iter().position(|e| e.session.is_closed()) else {
                break;
            };
            ended.remove(oldest);
        }
    }

    /// Takes in the tasks that have finished (isolates that ended while the watch goes on).
    async fn reap(&self) {
        let done: Vec<tokio::task::JoinHandle<IsolateEnd>> = {
            let mut tasks = lock(&self.tasks);
            let (done, running): (Vec<_>, Vec<_>) = tasks.drain(..).partition(|t| t.is_finished());
            *tasks = running;
            done
        };
        for t in done {
            if let Ok(end) = t.await {
                self.keep(end);
            }
        }
    }

    /// Waits for every isolate's task (they end with the target), then leaves their
    /// sessions: worker threads first (their sessions travel over their process's), then
    /// child processes. Their outcomes, in the order found.
    async fn finish(&self) -> Vec<WatchOutcome> {
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        let mut ends: Vec<IsolateEnd> = lock(&self.ended).drain(..).collect();
        for t in tasks {
            match t.await {
                Ok(end) => ends.push(end),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        ends.sort_by_key(|e| e.order);
        for threads in [true, false] {
            let mut leaving = tokio::task::JoinSet::new();
            for e in ends
                .iter()
                .filter(|e| (e.outcome.isolate.kind == IsolateKind::WorkerThread) == threads)
            {
                let (session, observer) = (e.session.clone(), self.attached && e.observer);
                leaving.spawn(async move { leave_session(&session, observer).await });
            }
            while leaving.join_next().await.is_some() {}
        }
        ends.into_iter().map(|e| e.outcome).collect()
    }

    /// Takes in what a discovery pass found: each new isolate gets a task of its own.
    fn take(self: &Arc<Self>, found: Vec<Found>, shared: &Arc<Shared>, events: &mpsc::UnboundedSender<WatchEvent>) {
        for f in found {
            match f {
                Found::Isolate(isolate, session) => {
                    let session = Arc::new(session);
                    let index = shared.next_index.fetch_add(1, Ordering::SeqCst);
                    let order = self.found.fetch_add(1, Ordering::SeqCst);
                    lock(&self.others).push((isolate, session.clone()));
                    let _ = events.send(WatchEvent::Followed {
                        index,
                        target: self.target,
                        isolate,
                        attached: self.attached,
                    });
                    let task = tokio::spawn(watch_isolate(
                        IsolateTask {
                            index,
                            order,
                            isolate,
                            session,
                        },
                        self.clone(),
                        shared.clone(),
                        events.clone(),
                    ));
                    lock(&self.tasks).push(task);
                }
                Found::Unfollowed(isolate, reason) => {
                    {
                        let mut missed = lock(&self.unfollowed);
                        if missed.len() < MAX_ISOLATES {
                            missed.push((isolate, reason.clone()));
                        }
                    }
                    let _ = events.send(WatchEvent::Unfollowed {
                        target: self.target,
                        isolate,
                        reason,
                    });
                }
                Found::Full => {
                    self.past_limit.store(true, Ordering::SeqCst);
                    if !self.full_said.swap(true, Ordering::SeqCst) {
                        let _ = events.send(WatchEvent::Warning(full_warning()));
                    }
                }
            }
        }
    }
}

/// A target's own verdict may not say "no leak" for the app while isolates of it went
/// unwatched (`missed`: a cluster whose workers' inspectors could not be reached, while the
/// primary serves nothing; `past_limit`: more than [`MAX_ISOLATES`] at a time): it is
/// inconclusive then, saying which and what would decide. Other verdicts stand.
fn unwatched_say_so(st: &mut TargetStatus, missed: &[(Isolate, String)], past_limit: bool) {
    if st.verdict != Verdict::NoLeak {
        return;
    }
    if let Some((first, why)) = missed.first() {
        st.verdict = Verdict::Inconclusive;
        st.reason = format!(
            "its own floor is flat, but {} isolate{} of the app could not be watched ({first}: {why})",
            missed.len(),
            if missed.len() == 1 { "" } else { "s" }
        );
        st.what_would_decide = Some(
            "inspectors the workers can open on ports of their own: start the app with --inspect=127.0.0.1:0, or with --inspect-port=0 and cluster.setupPrimary({ inspectPort: 0 })".to_owned(),
        );
    } else if past_limit {
        st.verdict = Verdict::Inconclusive;
        st.reason = format!("its own floor is flat, but {}", full_warning());
        st.what_would_decide = Some("a watch of the isolates left out (--attach each process)".to_owned());
    }
}

/// Finds the isolates below a target every [`DISCOVERY_INTERVAL`] until it ends: new node
/// processes below its process, new worker threads in every isolate watched.
async fn discover_loop(
    mut d: Discovery,
    family: Arc<Family>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<WatchEvent>,
) {
    while family.over(&shared).is_none() {
        family.reap().await;
        let root = family.root.load(Ordering::SeqCst);
        let found = d.children(root, family.room(), &family.stopping).await;
        family.take(found, &shared, &events);
        let of = family.live();
        let found = d.threads(&of, family.room(), &family.stopping).await;
        family.take(found, &shared, &events);
        tokio::select! {
            () = tokio::time::sleep(DISCOVERY_INTERVAL) => {}
            _ = family.until_over(&shared) => {}
        }
    }
}

/// An isolate found below a target, to be watched on its own task.
struct IsolateTask {
    index: usize,
    order: usize,
    isolate: Isolate,
    session: Arc<Session>,
}

/// Why an isolate whose session closed ended: its process exited (or is a zombie), the
/// worker thread exited, or its inspector closed. A process's connection closes while it
/// exits, a moment before it is gone from `/proc`: it gets up to a second to go.
async fn gone(isolate: &Isolate) -> String {
    let alive = || {
        std::fs::read_to_string(format!("/proc/{}/stat", isolate.pid))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    while alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match (alive(), isolate.kind) {
        (false, IsolateKind::WorkerThread) => "its process exited".to_owned(),
        (false, _) => "the process exited".to_owned(),
        (true, IsolateKind::WorkerThread) => "the worker thread exited".to_owned(),
        (true, _) => "its inspector closed".to_owned(),
    }
}

/// Watches one isolate found below a target until it or its target ends. Its session is
/// left by the target ([`Family::finish`]); an isolate that ended by itself is reported
/// ended at once.
async fn watch_isolate(
    task: IsolateTask,
    family: Arc<Family>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<WatchEvent>,
) -> IsolateEnd {
    let IsolateTask {
        index,
        order,
        isolate,
        session,
    } = task;
    let observer = session.install_gc_observer().await.is_ok();
    if !observer && !session.is_closed() {
        let _ = events.send(WatchEvent::Warning(format!(
            "{isolate}: its own GCs are not observed; only forced GCs (--gc-interval-ms) give it floor points"
        )));
    }
    let mut series = Series::new(index, family.target, isolate, family.attached, &shared);
    let mut sampler = Sampler::new(session.clone(), shared.clock, shared.gc_interval);
    let mut next = Instant::now();
    let mut by_itself = false;
    let ended = 'watch: loop {
        loop {
            if let Some(why) = family.over(&shared) {
                break 'watch why;
            }
            if session.is_closed() {
                by_itself = true;
                break 'watch gone(&isolate).await;
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
        let step = tokio::select! {
            r = sampler.step_runtime() => r,
            why = family.until_over(&shared) => break 'watch why,
        };
        let Ok((batch, runtime)) = step else { continue };
        series.take(batch, runtime);
        let _ = events.send(WatchEvent::Status(Box::new(series.status.clone())));
        if let Some(hook) = &shared.hook {
            // Evidence capture per isolate; a restart is the target's alone.
            tokio::select! {
                _ = hook.after_sample(&series.status, &session) => {}
                why = family.until_over(&shared) => break 'watch why,
            }
        }
    };
    let (status, outcome) = series.end(ended.clone());
    if by_itself && let Some(hook) = &shared.hook {
        hook.isolate_ended(&status);
    }
    let _ = events.send(WatchEvent::Status(Box::new(status)));
    let _ = events.send(WatchEvent::Ended {
        target: index,
        pid: isolate.pid,
        reason: ended,
    });
    IsolateEnd {
        order,
        outcome,
        session,
        observer,
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
    fn no_leak_is_never_said_for_an_app_with_isolates_left_unwatched() {
        let flat = floors(60, 60.0, |i| (40 << 20) + (i % 3) * 30_000);
        let (verdict, reason, what_would_decide) = judge(&flat, Duration::from_secs(3600));
        assert_eq!(verdict, Verdict::NoLeak);
        let status = || TargetStatus {
            index: 0,
            target: 0,
            isolate: Isolate::process(4700, IsolateKind::Main),
            key: TargetKey {
                pid: 4700,
                thread_id: None,
            },
            attached: true,
            up: true,
            since: Instant::now(),
            last: None,
            last_floor: None,
            heap_limit_bytes: None,
            heap_spaces: Vec::new(),
            gc: Vec::new(),
            app_uptime_seconds: None,
            floor: flat.clone(),
            verdict,
            reason: reason.clone(),
            what_would_decide: what_would_decide.clone(),
            ended: None,
        };
        let mut st = status();
        unwatched_say_so(&mut st, &[], false);
        assert_eq!(st.verdict, Verdict::NoLeak, "nothing left out");
        let worker = Isolate {
            pid: 4711,
            kind: IsolateKind::ClusterWorker,
            thread_id: None,
            worker_id: Some(1),
        };
        unwatched_say_so(&mut st, &[(worker, "no inspector found".into())], false);
        assert_eq!(st.verdict, Verdict::Inconclusive);
        assert!(
            st.reason.contains("cluster worker 1, pid 4711: no inspector found"),
            "{}",
            st.reason
        );
        assert!(st.what_would_decide.as_deref().unwrap_or("").contains("inspectPort: 0"));
        let mut st = status();
        unwatched_say_so(&mut st, &[], true);
        assert_eq!(st.verdict, Verdict::Inconclusive, "past the isolate limit");
        // A leak stays a leak.
        let mut leak = status();
        leak.verdict = Verdict::Leak;
        unwatched_say_so(&mut leak, &[(worker, "gone".into())], true);
        assert_eq!(leak.verdict, Verdict::Leak);
    }

    #[test]
    fn a_rising_floor_is_a_leak() {
        let f = floors(20, 30.0, |i| (40 << 20) + i * (2 << 20));
        assert_eq!(judge(&f, Duration::from_secs(600)).0, Verdict::Leak);
    }
}
