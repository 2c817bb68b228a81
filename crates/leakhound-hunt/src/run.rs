//! The hunt itself.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakhound_inspector::{NodeProcess, OutputLine, Session, SpawnOptions};
use leakhound_leaks::{FloorAnalysis, LeakOptions, LeakReport, MemorySample};
use leakhound_load::{ExternalLoad, LoadReport, LoadSpec};
use tokio::sync::{Mutex, mpsc};

/// What to hunt.
#[derive(Debug, Clone)]
pub enum AppTarget {
    /// Start this command under `--inspect=127.0.0.1:0` (node) or `NODE_OPTIONS` (npm…).
    Spawn {
        /// Program (`node`, `npm`, ...).
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
        /// Working directory.
        cwd: Option<PathBuf>,
        /// Extra environment.
        env: Vec<(OsString, OsString)>,
    },
    /// Attach to a running node process (SIGUSR1).
    Attach {
        /// Its pid.
        pid: u32,
    },
}

/// How load is made.
#[derive(Debug, Clone)]
pub enum LoadKind {
    /// leakhound's own HTTP/1.1 keep-alive load; `requests`/`duration` of the template are
    /// replaced per phase.
    Builtin(LoadSpec),
    /// An external command run once per load phase, making `units` units of load.
    External(ExternalLoad),
}

/// Settings of a hunt.
#[derive(Debug, Clone)]
pub struct HuntConfig {
    /// The app.
    pub target: AppTarget,
    /// The app's URL: readiness is checked there (any HTTP status) unless `ready_pattern`.
    pub url: Option<String>,
    /// The load.
    pub load: LoadKind,
    /// Units of load per load phase (built-in load: requests; ignored with `duration`).
    pub requests_per_phase: u64,
    /// Built-in load by time instead of count.
    pub duration_per_phase: Option<Duration>,
    /// Units of warm-up load before the baseline (0 for none).
    pub warmup_requests: u64,
    /// Load phases (at least 2: target and final; more add snapshots).
    pub phases: usize,
    /// Interval between `process.memoryUsage()` samples.
    pub sample_interval: Duration,
    /// Force a full GC this often during load, for floor points (None: only the app's
    /// own GCs and those before snapshots).
    pub gc_interval: Option<Duration>,
    /// How long to wait after the load before the calm-down GC.
    pub calm_down: Duration,
    /// Where snapshots are written (created if missing).
    pub out_dir: PathBuf,
    /// How long to wait for the app to become ready.
    pub ready_timeout: Duration,
    /// A substring of the app's output that means ready (instead of polling `url`).
    pub ready_pattern: Option<String>,
    /// Leak-finder options (`requests_per_step` is set from the load).
    pub leak_options: LeakOptions,
}

/// Progress of a hunt, for the caller to show.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HuntEvent {
    /// A line the app wrote.
    AppOutput(OutputLine),
    /// The app runs with this pid.
    Started {
        /// Pid of the app.
        pid: u32,
    },
    /// A new step began (human-readable).
    Step(String),
    /// Load progress in the current phase.
    LoadProgress {
        /// Phase name.
        phase: String,
        /// Units sent in this phase.
        done: u64,
        /// Units planned (0 when bounded by time).
        total: u64,
    },
    /// A phase's load finished.
    LoadDone {
        /// Phase name.
        phase: String,
        /// The figures.
        report: LoadReport,
    },
    /// Snapshot progress.
    SnapshotProgress {
        /// Snapshot label.
        label: String,
        /// Bytes of the snapshot received so far.
        done: u64,
        /// Always 0: the size is not known in advance (V8 is not asked for progress, which
        /// would cost it an extra pass over the heap while the app is paused).
        total: u64,
    },
    /// A snapshot is on disk.
    SnapshotTaken(SnapshotRecord),
    /// A memory sample.
    Sample(MemorySample),
}

/// A phase of the hunt.
#[derive(Debug, Clone)]
pub struct PhaseRecord {
    /// `warmup`, `load-1`, ..., `calm-down`.
    pub name: String,
    /// ms since the hunt started.
    pub start_ms: f64,
    /// ms since the hunt started.
    pub end_ms: f64,
    /// Units of load sent.
    pub requests: u64,
    /// Built-in load figures, if any.
    pub load: Option<LoadReport>,
}

/// A snapshot taken.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    /// `baseline`, `target`, `final`, ...
    pub label: String,
    /// File.
    pub path: PathBuf,
    /// Size.
    pub bytes: u64,
    /// ms since the hunt started.
    pub t_ms: f64,
    /// Capture time, ms.
    pub duration_ms: u64,
    /// Units of load sent before it.
    pub requests: u64,
}

/// The calm-down check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalmDown {
    /// heapUsed after the GC before the baseline.
    pub baseline_heap_used_bytes: u64,
    /// heapUsed after the calm-down GC.
    pub after_heap_used_bytes: u64,
    /// external before the baseline.
    pub baseline_external_bytes: u64,
    /// external after the calm-down.
    pub after_external_bytes: u64,
    /// Both within 2 % of the baseline, at least 512 KiB (heap) or 1 MiB (external).
    pub returned_to_baseline: bool,
    /// How long it waited, ms.
    pub waited_ms: u64,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Something keeps growing.
    Leak,
    /// Nothing keeps growing.
    NoLeak,
}

/// Everything a hunt found.
#[derive(Debug, Clone)]
pub struct HuntOutcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Pid of the app.
    pub pid: u32,
    /// Units of load sent in all.
    pub requests_sent: u64,
    /// Units per load phase.
    pub requests_per_phase: u64,
    /// Phases.
    pub phases: Vec<PhaseRecord>,
    /// Snapshots.
    pub snapshots: Vec<SnapshotRecord>,
    /// Memory samples.
    pub samples: Vec<MemorySample>,
    /// Floor statistics over all load phases.
    pub floor: FloorAnalysis,
    /// Floor statistics over the last load phase.
    pub floor_last_phase: FloorAnalysis,
    /// The calm-down check.
    pub calm_down: CalmDown,
    /// The leak finder's report.
    pub leaks: LeakReport,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Why a hunt stopped. Snapshots already written are listed and kept on disk.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {}", with_snapshots_note(.message, .snapshots))]
pub struct HuntError {
    /// What was going on.
    pub stage: String,
    /// What went wrong.
    pub message: String,
    /// Snapshots written before the failure (kept).
    pub snapshots: Vec<PathBuf>,
}

/// `e` and its sources, `: `-separated (a source already spelled out by the one above it
/// is not repeated).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// The message with the kept snapshots named at the end of its first line (details such
/// as the app's last output follow on the next lines).
fn with_snapshots_note(message: &str, s: &[PathBuf]) -> String {
    if s.is_empty() {
        return message.to_owned();
    }
    let list: Vec<String> = s.iter().map(|p| p.display().to_string()).collect();
    let note = format!(" (snapshots kept: {})", list.join(", "));
    match message.split_once('\n') {
        Some((first, rest)) => format!("{first}{note}\n{rest}"),
        None => format!("{message}{note}"),
    }
}

struct Shared {
    started: Instant,
    unix_start_ms: u64,
    requests: AtomicU64,
    paused: AtomicBool,
    stop: AtomicBool,
    samples: Mutex<Vec<MemorySample>>,
}

impl Shared {
    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
    fn sample(
        &self,
        m: leakhound_inspector::MemoryUsage,
        t_ms: f64,
        after_full_gc: bool,
        forced: bool,
    ) -> MemorySample {
        MemorySample {
            t_ms,
            requests: self.requests.load(Ordering::SeqCst),
            rss_bytes: m.rss_bytes,
            heap_total_bytes: m.heap_total_bytes,
            heap_used_bytes: m.heap_used_bytes,
            external_bytes: m.external_bytes,
            array_buffers_bytes: m.array_buffers_bytes,
            after_full_gc,
            forced_gc: forced,
        }
    }
}

struct Ctx {
    cfg: HuntConfig,
    session: Arc<Session>,
    process: Option<NodeProcess>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<HuntEvent>,
    snapshots: Vec<SnapshotRecord>,
    phases: Vec<PhaseRecord>,
    warnings: Vec<String>,
    ready_seen: Arc<AtomicBool>,
}

impl Ctx {
    fn err(&self, stage: &str, message: impl std::fmt::Display) -> HuntError {
        HuntError {
            stage: stage.to_owned(),
            message: message.to_string(),
            snapshots: self.snapshots.iter().map(|s| s.path.clone()).collect(),
        }
    }

    fn emit(&self, e: HuntEvent) {
        let _ = self.events.send(e);
    }

    /// Fails if the app has exited or the inspector socket closed.
    fn check_alive(&mut self, stage: &str) -> Result<(), HuntError> {
        if let Some(p) = self.process.as_mut()
            && let Ok(Some(status)) = p.try_wait()
        {
            // node's own farewell to the debugger says nothing about the app.
            let tail: Vec<String> = p
                .stderr_tail()
                .into_iter()
                .filter(|l| l != "Waiting for the debugger to disconnect..." && !l.starts_with("Debugger ending on "))
                .collect();
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("\nits last output:\n  {}", tail.join("\n  "))
            };
            return Err(self.err(stage, format!("the app exited ({status}){tail}")));
        }
        if self.session.is_closed() {
            let reason = self.session.close_reason().map(|r| r.to_string()).unwrap_or_default();
            let still = if self.process.is_some() {
                " though the app is still running (does it call require('inspector').close()?)"
            } else {
                ""
            };
            return Err(self.err(
                stage,
                format!("the app's inspector connection closed ({reason}){still}; leakhound needs it for snapshots"),
            ));
        }
        Ok(())
    }

    /// The error for a failed step: when the inspector connection is gone, what became of
    /// the app (it exited: with which status and last output) rather than the bare
    /// protocol error; otherwise `e` with its causes.
    async fn fail(&mut self, stage: &str, e: &dyn std::error::Error) -> HuntError {
        if self.session.is_closed() {
            self.wait_for_exit(Duration::from_secs(1)).await;
            if let Err(err) = self.check_alive(stage) {
                return err;
            }
        }
        self.err(stage, causes(e))
    }

    /// Gives a started app up to `limit` to finish exiting (after its inspector went away).
    async fn wait_for_exit(&mut self, limit: Duration) {
        let Some(p) = self.process.as_mut() else { return };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !matches!(p.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn floor_point(&mut self, stage: &str) -> Result<MemorySample, HuntError> {
        self.check_alive(stage)?;
        if let Err(e) = self.session.collect_garbage().await {
            return Err(self.fail(stage, &e).await);
        }
        let m = match self.session.memory_usage().await {
            Ok(m) => m,
            Err(e) => return Err(self.fail(stage, &e).await),
        };
        let s = self.shared.sample(m, self.shared.now_ms(), true, true);
        self.shared.samples.lock().await.push(s);
        self.emit(HuntEvent::Sample(s));
        Ok(s)
    }

    async fn snapshot(&mut self, label: &str, index: usize) -> Result<(), HuntError> {
        let stage = format!("taking the {label} snapshot");
        self.check_alive(&stage)?;
        self.emit(HuntEvent::Step(format!("{label} snapshot")));
        let path = self.cfg.out_dir.join(format!("{:02}-{label}.heapsnapshot", index + 1));
        self.shared.paused.store(true, Ordering::SeqCst);
        let t_ms = self.shared.now_ms();
        let events = self.events.clone();
        let l = label.to_owned();
        let r = self
            .session
            .take_heap_snapshot(&path, move |done, total| {
                let _ = events.send(HuntEvent::SnapshotProgress {
                    label: l.clone(),
                    done,
                    total,
                });
            })
            .await;
        self.shared.paused.store(false, Ordering::SeqCst);
        let file = match r {
            Ok(f) => f,
            Err(e) => return Err(self.fail(&stage, &e).await),
        };
        let rec = SnapshotRecord {
            label: label.to_owned(),
            path: file.path,
            bytes: file.bytes,
            t_ms,
            duration_ms: file.duration_ms,
            requests: self.shared.requests.load(Ordering::SeqCst),
        };
        self.emit(HuntEvent::SnapshotTaken(rec.clone()));
        self.snapshots.push(rec);
        Ok(())
    }

    async fn load_phase(&mut self, name: &str, units: u64) -> Result<(), HuntError> {
        let stage = format!("load phase {name}");
        self.check_alive(&stage)?;
        self.emit(HuntEvent::Step(format!("{name}: load")));
        let start_ms = self.shared.now_ms();
        let before = self.shared.requests.load(Ordering::SeqCst);
        let load = match &self.cfg.load {
            LoadKind::Builtin(template) => {
                let mut spec = template.clone();
                if let Some(d) = self.cfg.duration_per_phase {
                    spec.duration = Some(d);
                    spec.requests = None;
                } else {
                    spec.requests = Some(units);
                    spec.duration = None;
                }
                let shared = self.shared.clone();
                let events = self.events.clone();
                let phase = name.to_owned();
                let total = spec.requests.unwrap_or(0);
                let fut = leakhound_load::run(&spec, move |done| {
                    shared.requests.store(before + done, Ordering::SeqCst);
                    let _ = events.send(HuntEvent::LoadProgress {
                        phase: phase.clone(),
                        done,
                        total,
                    });
                });
                let report = match self.race_app(&stage, fut).await? {
                    Ok(r) => r,
                    Err(e) => return Err(self.fail(&stage, &e).await),
                };
                self.shared
                    .requests
                    .store(before + report.requests_sent, Ordering::SeqCst);
                if report.errors == report.requests_sent && report.requests_sent > 0 {
                    return Err(self.err(&stage, format!("every request failed ({})", report.summary_line())));
                }
                if report.errors > 0 {
                    self.warnings.push(format!(
                        "{name}: {} of {} requests failed",
                        report.errors, report.requests_sent
                    ));
                }
                self.emit(HuntEvent::LoadDone {
                    phase: name.to_owned(),
                    report: report.clone(),
                });
                Some(report)
            }
            LoadKind::External(ext) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                let events = self.events.clone();
                let forward = tokio::spawn(async move {
                    while let Some(line) = rx.recv().await {
                        let _ = events.send(HuntEvent::AppOutput(OutputLine {
                            stream: leakhound_inspector::Stream::Stdout,
                            line: format!("[load] {line}"),
                        }));
                    }
                });
                let ext = ext.clone();
                let r = self.race_app(&stage, leakhound_load::run_external(&ext, tx)).await?;
                let _ = forward.await;
                let report = match r {
                    Ok(r) => r,
                    Err(e) => return Err(self.fail(&stage, &e).await),
                };
                self.shared.requests.store(before + report.units, Ordering::SeqCst);
                None
            }
        };
        let end_ms = self.shared.now_ms();
        let sent = self.shared.requests.load(Ordering::SeqCst) - before;
        self.phases.push(PhaseRecord {
            name: name.to_owned(),
            start_ms,
            end_ms,
            requests: sent,
            load,
        });
        Ok(())
    }

    /// Runs `fut` unless the app dies first.
    async fn race_app<T>(&mut self, stage: &str, fut: impl std::future::Future<Output = T>) -> Result<T, HuntError> {
        let session = self.session.clone();
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Ok(r),
                reason = session.closed() => {
                    self.wait_for_exit(Duration::from_secs(1)).await;
                    self.check_alive(stage)?;
                    return Err(self.err(stage, format!("the app's inspector connection closed ({reason})")));
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    self.check_alive(stage)?;
                }
            }
        }
    }
}

/// Starts (or attaches to) the app; every line it writes goes to `on_line`.
pub(crate) async fn start_app(
    target: &AppTarget,
    ready_timeout: Duration,
    on_line: impl Fn(OutputLine) + Send + 'static,
) -> Result<(Option<NodeProcess>, Session), HuntError> {
    let early = |stage: &str, m: String| HuntError {
        stage: stage.into(),
        message: m,
        snapshots: vec![],
    };
    match target {
        AppTarget::Spawn {
            program,
            args,
            cwd,
            env,
        } => {
            let (tx, mut rx) = mpsc::unbounded_channel::<OutputLine>();
            tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    on_line(line);
                }
            });
            let mut opts = SpawnOptions::new(tx);
            opts.cwd = cwd.clone();
            opts.env = env.clone();
            opts.ready_timeout = ready_timeout;
            let (p, s) = NodeProcess::spawn(program, args, opts)
                .await
                .map_err(|e| early("starting the app", causes(&e)))?;
            Ok((Some(p), s))
        }
        AppTarget::Attach { pid } => {
            let s = leakhound_inspector::attach(*pid, ready_timeout)
                .await
                .map_err(|e| early(&format!("attaching to pid {pid}"), causes(&e)))?;
            Ok((None, s))
        }
    }
}

/// Runs a hunt.
///
/// # Errors
/// [`HuntError`] when the app cannot start, exits early, never becomes ready, closes the
/// inspector, when load fails entirely, or a snapshot cannot be written (disk full). The
/// app is stopped on every path; snapshots already written are kept and listed.
///
/// # Cancel safety
/// Dropping the future stops the app (SIGKILL to its process group) and leaves the
/// snapshots already written.
pub async fn hunt(cfg: HuntConfig, events: mpsc::UnboundedSender<HuntEvent>) -> Result<HuntOutcome, HuntError> {
    let early = |stage: &str, m: String| HuntError {
        stage: stage.into(),
        message: m,
        snapshots: vec![],
    };
    if cfg.phases < 2 {
        return Err(early(
            "configuration",
            "a hunt needs at least 2 load phases (target and final)".into(),
        ));
    }
    std::fs::create_dir_all(&cfg.out_dir)
        .map_err(|e| early("configuration", format!("cannot create {}: {e}", cfg.out_dir.display())))?;
    let unix_start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let shared = Arc::new(Shared {
        started: Instant::now(),
        unix_start_ms,
        requests: AtomicU64::new(0),
        paused: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        samples: Mutex::new(Vec::new()),
    });
    let ready_seen = Arc::new(AtomicBool::new(false));

    events.send(HuntEvent::Step("starting the app".into())).ok();
    let (process, session) = {
        let fwd = events.clone();
        let pattern = cfg.ready_pattern.clone();
        let seen = ready_seen.clone();
        start_app(&cfg.target, cfg.ready_timeout, move |line: OutputLine| {
            if let Some(p) = &pattern
                && line.line.contains(p.as_str())
            {
                seen.store(true, Ordering::SeqCst);
            }
            let _ = fwd.send(HuntEvent::AppOutput(line));
        })
        .await?
    };
    let pid = process.as_ref().map(|p| p.pid()).unwrap_or_else(|| session.pid());
    events.send(HuntEvent::Started { pid }).ok();
    let mut ctx = Ctx {
        cfg,
        session: Arc::new(session),
        process,
        shared: shared.clone(),
        events,
        snapshots: Vec::new(),
        phases: Vec::new(),
        warnings: Vec::new(),
        ready_seen,
    };
    let result = run_phases(&mut ctx).await;
    // Stop sampling, the session and the app on every path.
    shared.stop.store(true, Ordering::SeqCst);
    ctx.session.close().await;
    if let Some(mut p) = ctx.process.take() {
        let _ = p.kill_with_grace(Duration::from_secs(2)).await;
    }
    let calm = result?;
    analyse(ctx, pid, calm).await
}

async fn run_phases(ctx: &mut Ctx) -> Result<CalmDown, HuntError> {
    if let Err(e) = ctx.session.install_gc_observer().await {
        return Err(ctx.fail("installing the GC observer", &e).await);
    }
    let sampler = tokio::spawn(sample_loop(
        ctx.session.clone(),
        ctx.shared.clone(),
        ctx.events.clone(),
        ctx.cfg.sample_interval,
        ctx.cfg.gc_interval,
    ));
    let r = run_phases_inner(ctx).await;
    ctx.shared.stop.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    r
}

async fn run_phases_inner(ctx: &mut Ctx) -> Result<CalmDown, HuntError> {
    // Readiness.
    ctx.emit(HuntEvent::Step("waiting for the app to be ready".into()));
    let deadline = Instant::now() + ctx.cfg.ready_timeout;
    if ctx.cfg.ready_pattern.is_some() {
        while !ctx.ready_seen.load(Ordering::SeqCst) {
            ctx.check_alive("waiting for the ready pattern")?;
            if Instant::now() > deadline {
                return Err(ctx.err(
                    "waiting for the app",
                    format!(
                        "the ready pattern {:?} did not appear within {:?}",
                        ctx.cfg.ready_pattern.clone().unwrap_or_default(),
                        ctx.cfg.ready_timeout
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else if let Some(url) = ctx.cfg.url.clone() {
        let timeout = ctx.cfg.ready_timeout;
        let r = ctx
            .race_app(
                "waiting for the app to become ready",
                leakhound_load::wait_ready(&url, timeout),
            )
            .await?;
        if let Err(e) = r {
            return Err(ctx.fail("waiting for the app to become ready", &e).await);
        }
    }
    let units = match &ctx.cfg.load {
        LoadKind::Builtin(_) => ctx.cfg.requests_per_phase,
        LoadKind::External(e) => e.units,
    };
    if ctx.cfg.warmup_requests > 0 {
        let w = ctx.cfg.warmup_requests;
        ctx.load_phase("warmup", w).await?;
    }
    let base = ctx.floor_point("measuring the baseline floor").await?;
    ctx.snapshot("baseline", 0).await?;
    let phases = ctx.cfg.phases;
    for i in 1..=phases {
        let name = format!("load-{i}");
        ctx.load_phase(&name, units).await?;
        ctx.floor_point(&format!("after {name}")).await?;
        let label = match i {
            1 => "target".to_owned(),
            n if n == phases => "final".to_owned(),
            n => format!("final-{}", n - 1),
        };
        ctx.snapshot(&label, i).await?;
    }
    // Calm-down: no load, wait, GC, compare with the baseline.
    ctx.emit(HuntEvent::Step("calm-down".into()));
    let start_ms = ctx.shared.now_ms();
    tokio::time::sleep(ctx.cfg.calm_down).await;
    ctx.check_alive("calm-down")?;
    if let Err(e) = ctx.session.collect_garbage().await {
        return Err(ctx.fail("calm-down", &e).await);
    }
    let after = ctx.floor_point("calm-down").await?;
    let end_ms = ctx.shared.now_ms();
    ctx.phases.push(PhaseRecord {
        name: "calm-down".into(),
        start_ms,
        end_ms,
        requests: 0,
        load: None,
    });
    // Back at the baseline: within 2 % of it, and at most 512 KiB (heap) or 1 MiB
    // (external) above it.
    let close = |a: u64, b: u64, slack: u64| a <= b + (b / 50).max(slack);
    Ok(CalmDown {
        baseline_heap_used_bytes: base.heap_used_bytes,
        after_heap_used_bytes: after.heap_used_bytes,
        baseline_external_bytes: base.external_bytes,
        after_external_bytes: after.external_bytes,
        returned_to_baseline: close(after.heap_used_bytes, base.heap_used_bytes, 512 << 10)
            && close(after.external_bytes, base.external_bytes, 1 << 20),
        waited_ms: (end_ms - start_ms) as u64,
    })
}

async fn sample_loop(
    session: Arc<Session>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<HuntEvent>,
    interval: Duration,
    gc_interval: Option<Duration>,
) {
    let mut last_gc = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) && !session.is_closed() {
        tokio::time::sleep(interval).await;
        if shared.paused.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
            continue;
        }
        let forced = gc_interval.is_some_and(|g| last_gc.elapsed() >= g);
        if forced {
            last_gc = Instant::now();
            if session.collect_garbage().await.is_err() {
                break;
            }
        }
        let Ok(m) = session.memory_usage().await else { break };
        let s = shared.sample(m, shared.now_ms(), forced, forced);
        // The app's own major GCs (ours are recorded above).
        let gcs = session.drain_gc_events().await.unwrap_or_default();
        let mut batch = vec![s];
        for g in gcs.into_iter().filter(|g| !g.forced) {
            let t = g.unix_ms.saturating_sub(shared.unix_start_ms) as f64;
            batch.push(shared.sample(g.memory, t, true, false));
        }
        let mut all = shared.samples.lock().await;
        for s in batch {
            all.push(s);
            let _ = events.send(HuntEvent::Sample(s));
        }
    }
}

async fn analyse(ctx: Ctx, pid: u32, calm_down: CalmDown) -> Result<HuntOutcome, HuntError> {
    let Ctx {
        cfg,
        shared,
        snapshots,
        phases,
        mut warnings,
        events,
        ..
    } = ctx;
    let _ = events.send(HuntEvent::Step("analysing the snapshots".into()));
    let mut samples = shared.samples.lock().await.clone();
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let paths: Vec<PathBuf> = snapshots.iter().map(|s| s.path.clone()).collect();
    let requests_per_phase = phases
        .iter()
        .find(|p| p.name == "load-1")
        .map(|p| p.requests)
        .unwrap_or(cfg.requests_per_phase);
    let mut leak_opts = cfg.leak_options.clone();
    leak_opts.requests_per_step = Some(requests_per_phase as f64).filter(|r| *r > 0.0);
    let keep = paths.clone();
    let leaks = tokio::task::spawn_blocking(move || analyse_snapshots(&paths, &leak_opts))
        .await
        .map_err(|e| HuntError {
            stage: "analysing".into(),
            message: e.to_string(),
            snapshots: keep.clone(),
        })?
        .map_err(|m| HuntError {
            stage: "analysing the snapshots".into(),
            message: m,
            snapshots: keep,
        })?;
    warnings.extend(leaks.warnings.iter().cloned());
    let from = phases
        .iter()
        .find(|p| p.name == "load-1")
        .map(|p| p.start_ms)
        .unwrap_or(0.0);
    // The floor is judged under load: from the first load phase to the calm-down.
    let until = phases
        .iter()
        .find(|p| p.name == "calm-down")
        .map(|p| p.start_ms)
        .unwrap_or(f64::INFINITY);
    let under_load: Vec<MemorySample> = samples.iter().copied().filter(|s| s.t_ms < until).collect();
    let floor = leakhound_leaks::analyze_floor(&under_load, from);
    let last_from = phases
        .iter()
        .rev()
        .find(|p| p.name.starts_with("load-"))
        .map(|p| p.start_ms)
        .unwrap_or(0.0);
    // The last phase's floor: its samples plus the floor before it.
    let floor_last_phase = leakhound_leaks::analyze_floor(&under_load, last_from - 1.0);
    let (verdict, reason) = decide(&leaks, &floor_last_phase, &calm_down);
    Ok(HuntOutcome {
        verdict,
        reason,
        pid,
        requests_sent: shared.requests.load(Ordering::SeqCst),
        requests_per_phase,
        phases,
        snapshots,
        samples,
        floor,
        floor_last_phase,
        calm_down,
        leaks,
        warnings,
    })
}

fn analyse_snapshots(paths: &[PathBuf], opts: &LeakOptions) -> Result<LeakReport, String> {
    let (loaded, prepared): (Vec<_>, Vec<_>) = leakhound_leaks::load_series(paths, &|_, _| {})
        .map_err(|e| e.to_string())?
        .into_iter()
        .unzip();
    let snaps: Vec<&leakhound_heap::HeapSnapshot> = loaded.iter().map(|l| &l.snapshot).collect();
    leakhound_leaks::find_leaks_prepared(&snaps, prepared, opts).map_err(|e| e.to_string())
}

fn decide(leaks: &LeakReport, last: &FloorAnalysis, calm: &CalmDown) -> (Verdict, String) {
    if let Some(c) = leaks.clusters.first() {
        let rate = c
            .per_request
            .as_ref()
            .map(|p| format!("{:.2} {} per request", p.count, c.root_class))
            .unwrap_or_else(|| format!("{} {}", c.count, c.root_class));
        let more = if leaks.clusters.len() > 1 {
            format!(" (+{} more clusters)", leaks.clusters.len() - 1)
        } else {
            String::new()
        };
        let calm_note = if calm.returned_to_baseline {
            ""
        } else {
            "; memory did not return to the baseline after the load stopped"
        };
        return (
            Verdict::Leak,
            format!(
                "{} ({}) keeps {rate}: {}{more}{calm_note}",
                c.holder, c.holder_class, c.pattern,
            ),
        );
    }
    if !last.growing.is_empty() && !calm.returned_to_baseline {
        let what = last
            .growing
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        return (
            Verdict::Leak,
            format!(
                "the post-GC floor of {what} kept rising through the last load phase and did not return to the baseline, though no growing object cluster was found in the snapshots"
            ),
        );
    }
    let calm_note = if calm.returned_to_baseline {
        "memory returned to the baseline after the load"
    } else {
        "memory stayed above the baseline after the load, but stopped growing (bounded)"
    };
    (
        Verdict::NoLeak,
        format!("nothing allocated after the baseline keeps growing; {calm_note}"),
    )
}
