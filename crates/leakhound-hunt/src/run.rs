//! The hunt: start (or attach to) the app, then warm-up → baseline → load phases with a
//! snapshot after each → calm-down, sampling memory all along; then the leak finder on
//! the snapshots and the verdict.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leakhound_inspector::headroom::{self, Fit, HeapFigures, PreviousSnapshot};
use leakhound_inspector::{Isolate, IsolateKind, NodeProcess, OutputLine, SamplingOptions, Session, SpawnOptions};
use leakhound_leaks::{FloorAnalysis, LeakOptions, LeakReport, MemorySample};
use leakhound_load::LoadReport;
use tokio::sync::mpsc;

use crate::config::{AppTarget, HuntConfig, LoadKind};
use crate::error::{Failure, HuntError, Stage};
use crate::heap_profile::HeapProfileRecord;
use crate::isolates::{Registry, RegistryParts, Tracked, served_at};
use crate::kept::Kept;
use crate::listening::{ListensElsewhere, path_of, port_of};
use crate::node_warnings::NodeWarnings;
use crate::outcome::{
    CalmDown, HuntEvent, HuntOutcome, IsolateOutcome, KeptConnections, PhaseRecord, RequestsMethod, SnapshotRecord,
    Verdict, decide,
};
use crate::phase::{PhaseKind, SnapshotLabel};
use crate::sampling::{Clock, sample};
use crate::settle::Settle;

mod settling;

/// How many times a series is started again after V8's object ids were reset under it.
const MAX_SERIES_RESTARTS: u32 = 2;

/// State the phases and the sampling tasks share.
struct Shared {
    clock: Clock,
    /// Units of load sent so far.
    requests: Arc<AtomicU64>,
    /// Set while a snapshot is written: no samples then (the app is paused).
    paused: Arc<AtomicBool>,
}

/// The hunt's own record of one followed isolate.
struct IsoState {
    tracked: Arc<Tracked>,
    /// In the current snapshot series (it serves load and was there at its baseline).
    in_series: bool,
    /// Whether it was in any series (for the report).
    snapshotted: bool,
    /// Its snapshots of the current series.
    snapshots: Vec<SnapshotRecord>,
    /// Its last snapshot and what it cost, for the next headroom check.
    previous_snapshot: Option<PreviousSnapshot>,
    /// Its resident set before its first snapshot, in bytes.
    rss_before_snapshots: Option<u64>,
    /// V8's object-id marker at its baseline.
    marker: Option<String>,
    /// `(requests sent, requests it served)` read along the hunt.
    checkpoints: Vec<(u64, u64)>,
    /// Requests it served in each load phase (when counted), by phase.
    served_per_phase: Vec<(PhaseKind, u64)>,
    /// Its floor point before the baseline snapshot.
    baseline: Option<MemorySample>,
    /// Its floor point after the calm-down.
    after: Option<MemorySample>,
    /// Its last floor point read by [`Ctx::floor_point`].
    last_floor: Option<MemorySample>,
    /// What the report should say about it.
    notes: Vec<String>,
    /// Its leak finder's report, when found while the app still ran (`settling.rs`).
    leaks: Option<LeakReport>,
    /// What the settle step did, when its clusters included a list of timers.
    settle: Option<Settle>,
}

impl IsoState {
    fn new(tracked: Arc<Tracked>) -> IsoState {
        IsoState {
            tracked,
            in_series: false,
            snapshotted: false,
            snapshots: Vec::new(),
            previous_snapshot: None,
            rss_before_snapshots: None,
            marker: None,
            checkpoints: Vec::new(),
            served_per_phase: Vec::new(),
            baseline: None,
            after: None,
            last_floor: None,
            notes: Vec::new(),
            leaks: None,
            settle: None,
        }
    }

    fn alive(&self) -> bool {
        !self.tracked.session.is_closed()
    }

    fn isolate(&self) -> Isolate {
        self.tracked.isolate
    }
}

impl Shared {
    fn now_ms(&self) -> f64 {
        self.clock.now_ms()
    }
}

struct Ctx {
    cfg: HuntConfig,
    /// The prepared output folder.
    out_dir: PathBuf,
    session: Arc<Session>,
    process: Option<NodeProcess>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<HuntEvent>,
    snapshots: Vec<SnapshotRecord>,
    phases: Vec<PhaseRecord>,
    warnings: Vec<String>,
    /// Every isolate followed, the main one first.
    registry: Arc<Registry>,
    /// The hunt's record of each, in the registry's order.
    iso: Vec<IsoState>,
    ready_seen: Arc<AtomicBool>,
    /// The app's last lines that mention listening (`listening on 3000`), to say where it
    /// listens when it does not answer at its URL.
    listen_lines: Arc<std::sync::Mutex<VecDeque<String>>>,
    /// The sampling heap profiler is running (`--sample-allocations`).
    sampling: bool,
    /// The sampling heap profile, once taken.
    heap_profile: Option<HeapProfileRecord>,
    /// Node's listener warnings read from the app's output.
    node_warnings: Arc<std::sync::Mutex<NodeWarnings>>,
    /// The built-in load's connections, kept open across the phases.
    kept: Kept,
    /// What was kept, once the connections are closed.
    connections: Option<KeptConnections>,
    /// Keep-warm requests sent before each snapshot of the current series, in order.
    keep_warm_at_snapshot: Vec<u64>,
}

impl Ctx {
    /// Starts the sampling heap profiler after the baseline (`--sample-allocations`),
    /// keeping only what survives; a failure is a warning.
    async fn start_sampling(&mut self) {
        if !self.cfg.sample_allocations || self.sampling {
            return;
        }
        match self.session.start_sampling(SamplingOptions::default()).await {
            Ok(()) => self.sampling = true,
            Err(e) => self
                .warnings
                .push(format!("the sampling heap profiler could not be started: {e}")),
        }
    }

    /// After the last snapshot (whose GC has collected what did not survive): reads the
    /// sampling profile, stops the profiler and writes `allocations.heapprofile`; a
    /// failure is a warning.
    async fn finish_sampling(&mut self) {
        if !self.sampling {
            return;
        }
        self.emit(HuntEvent::Step("reading the sampling heap profile".into()));
        let profile = self.session.sampling_profile().await;
        let _ = self.session.stop_sampling().await;
        self.sampling = false;
        let path = self.out_dir.join("allocations.heapprofile");
        let written = profile.and_then(|p| p.write(&path).map(|()| p));
        match written {
            Ok(p) => {
                self.heap_profile = Some(HeapProfileRecord::of(
                    &p,
                    path,
                    SamplingOptions::default().interval_bytes,
                ))
            }
            Err(e) => self
                .warnings
                .push(format!("the sampling heap profile could not be kept: {e}")),
        }
    }

    fn err(&self, stage: Stage, failure: impl Into<Failure>) -> HuntError {
        HuntError {
            stage,
            failure: Box::new(failure.into()),
            snapshots: self.snapshots.iter().map(|s| s.path.clone()).collect(),
        }
    }

    fn emit(&self, e: HuntEvent) {
        let _ = self.events.send(e);
    }

    /// Fails if the app has exited or the inspector socket closed.
    fn check_alive(&mut self, stage: Stage) -> Result<(), HuntError> {
        if let Some(p) = self.process.as_mut()
            && let Ok(Some(status)) = p.try_wait()
        {
            // node's own farewell to the debugger says nothing about the app.
            let last_output: Vec<String> = p
                .stderr_tail()
                .into_iter()
                .filter(|l| l != "Waiting for the debugger to disconnect..." && !l.starts_with("Debugger ending on "))
                .collect();
            return Err(self.err(
                stage,
                Failure::AppExited {
                    status: status.to_string(),
                    last_output,
                },
            ));
        }
        if self.session.is_closed() {
            let reason = self.session.close_reason().map(|r| r.to_string()).unwrap_or_default();
            let app_still_running = self.process.is_some();
            return Err(self.err(
                stage,
                Failure::InspectorClosed {
                    reason,
                    app_still_running,
                },
            ));
        }
        Ok(())
    }

    /// The error for a failed step: when the inspector connection is gone, what became of
    /// the app (it exited: with which status and last output) rather than the bare
    /// protocol error; otherwise `e`.
    async fn fail(&mut self, stage: Stage, e: impl Into<Failure>) -> HuntError {
        if self.session.is_closed() {
            self.wait_for_exit(Duration::from_secs(1)).await;
            if let Err(err) = self.check_alive(stage.clone()) {
                return err;
            }
        }
        self.err(stage, e)
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

    /// Brings the hunt's list of isolates up to date with the registry's.
    fn sync_isolates(&mut self) {
        let all = self.registry.snapshot();
        for t in all.into_iter().skip(self.iso.len()) {
            self.iso.push(IsoState::new(t));
        }
    }

    /// Records, for each isolate whose requests are counted, how many it has served now
    /// that `sent` units were sent. Returns the counts (None: not counted or gone).
    async fn checkpoint(&mut self) -> Vec<Option<u64>> {
        let sent = self.shared.requests.load(Ordering::SeqCst);
        let mut counts = Vec::with_capacity(self.iso.len());
        for st in &mut self.iso {
            let served = if st.alive() { st.tracked.served().await } else { None };
            if let Some(n) = served {
                st.checkpoints.push((sent, n));
            }
            counts.push(served);
        }
        counts
    }

    /// A forced full GC and a memory reading right after it in every live isolate, one
    /// after the other: a floor point each. Returns the main isolate's; the others are
    /// recorded in their series (one that exited meanwhile is skipped).
    async fn floor_point(&mut self, stage: Stage) -> Result<MemorySample, HuntError> {
        self.sync_isolates();
        self.check_alive(stage.clone())?;
        let mut main = None;
        for i in 0..self.iso.len() {
            if i > 0 && !self.iso[i].alive() {
                continue;
            }
            let session = self.iso[i].tracked.session.clone();
            let read = async {
                session.collect_garbage().await?;
                session.memory_usage().await
            }
            .await;
            let m = match read {
                Ok(m) => m,
                Err(e) if i == 0 => return Err(self.fail(stage, e).await),
                Err(_) => continue,
            };
            let s = sample(
                m,
                self.shared.now_ms(),
                self.shared.requests.load(Ordering::SeqCst),
                true,
                true,
            );
            self.iso[i].tracked.samples.lock().await.push(s);
            self.iso[i].last_floor = Some(s);
            if i == 0 {
                self.emit(HuntEvent::Sample(s));
                main = Some(s);
            }
        }
        self.checkpoint().await;
        match main {
            Some(s) => Ok(s),
            None => Err(self.err(stage, Failure::AnalysisStopped("no memory reading of the app".into()))),
        }
    }

    /// Checks that writing the `label` snapshot of isolate `i` fits the memory free for
    /// its process ([`headroom::check`]): refuses it when it does not (unless
    /// `--ignore-headroom`), records a warning when it is tight. A check that cannot be
    /// made is a warning too. Returns the heap figures it used, for the next check.
    async fn check_headroom(&mut self, i: usize, label: SnapshotLabel) -> Result<Option<HeapFigures>, HuntError> {
        let stage = Stage::Snapshot(label);
        let session = self.iso[i].tracked.session.clone();
        let who = self.who(i);
        let mut figures = match session.heap_figures().await {
            Ok(f) => f,
            Err(e) if i == 0 && session.is_closed() => return Err(self.fail(stage, e).await),
            Err(e) => {
                self.warnings
                    .push(format!("{who}{label} snapshot: memory headroom not checked: {e}"));
                return Ok(None);
            }
        };
        figures.previous = self.iso[i].previous_snapshot;
        match headroom::check(session.pid(), &figures) {
            Ok(check) => match check.fit {
                Fit::Fits => {}
                Fit::Tight => self
                    .warnings
                    .push(format!("{who}{label} snapshot: memory is tight: {check}")),
                Fit::DoesNotFit if self.cfg.ignore_headroom => self
                    .warnings
                    .push(format!("{who}{label} snapshot taken with --ignore-headroom: {check}")),
                Fit::DoesNotFit => return Err(self.err(stage, Failure::NoHeadroom(Box::new(check)))),
            },
            Err(e) => self
                .warnings
                .push(format!("{who}{label} snapshot: memory headroom not checked: {e}")),
        }
        Ok(Some(figures))
    }

    /// `"cluster worker 2, pid 4711: "` for an isolate other than the main one of a
    /// single-isolate hunt, else nothing: a prefix for warnings.
    fn who(&self, i: usize) -> String {
        if self.iso.len() > 1 {
            format!("{}: ", self.iso[i].isolate())
        } else {
            String::new()
        }
    }

    /// Writes snapshot number `index` (from 0) of the series of every isolate in it, one
    /// at a time, once the headroom check lets each. An isolate other than the main one
    /// that exits meanwhile leaves the series.
    async fn snapshot(&mut self, label: SnapshotLabel, index: usize) -> Result<(), HuntError> {
        self.keep_warm_at_snapshot.truncate(index);
        self.keep_warm_at_snapshot.push(self.kept.keep_warm_sent());
        for i in 0..self.iso.len() {
            if !self.iso[i].in_series {
                continue;
            }
            if i > 0 && !self.iso[i].alive() {
                self.leave_series(i, label);
                continue;
            }
            match self.snapshot_of(i, label, index).await {
                Ok(()) => {}
                Err(e) if i > 0 && !self.iso[i].alive() => {
                    drop(e);
                    self.leave_series(i, label);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Isolate `i` exited before its `label` snapshot: its series is incomplete.
    fn leave_series(&mut self, i: usize, label: SnapshotLabel) {
        let st = &mut self.iso[i];
        st.in_series = false;
        st.notes.push(format!(
            "exited before its {label} snapshot: its snapshots are kept but not compared"
        ));
    }

    /// The file name of isolate `i`'s snapshot: `01-baseline.heapsnapshot` for the main
    /// one, `01-baseline-pid4712.heapsnapshot`, `01-baseline-pid4711-thread1.heapsnapshot`.
    fn snapshot_name(&self, i: usize, label: SnapshotLabel, index: usize) -> String {
        let iso = self.iso[i].isolate();
        match (iso.kind, iso.thread_id) {
            (IsolateKind::Main, _) => format!("{:02}-{label}.heapsnapshot", index + 1),
            (_, Some(t)) => format!("{:02}-{label}-pid{}-thread{t}.heapsnapshot", index + 1, iso.pid),
            (_, None) => format!("{:02}-{label}-pid{}.heapsnapshot", index + 1, iso.pid),
        }
    }

    /// Writes isolate `i`'s snapshot number `index` of the series.
    async fn snapshot_of(&mut self, i: usize, label: SnapshotLabel, index: usize) -> Result<(), HuntError> {
        let stage = Stage::Snapshot(label);
        self.check_alive(stage.clone())?;
        let figures = self.check_headroom(i, label).await?;
        let session = self.iso[i].tracked.session.clone();
        let pid = session.pid();
        if self.iso[i].rss_before_snapshots.is_none() {
            self.iso[i].rss_before_snapshots = headroom::rss_of(pid).ok().map(|r| r.rss_bytes);
        }
        let who = self.who(i);
        self.emit(HuntEvent::Step(format!("{who}{label} snapshot")));
        let path = self.out_dir.join(self.snapshot_name(i, label, index));
        self.shared.paused.store(true, Ordering::SeqCst);
        let t_ms = self.shared.now_ms();
        let events = self.events.clone();
        let r = session
            .take_heap_snapshot(&path, move |done, total| {
                let _ = events.send(HuntEvent::SnapshotProgress { label, done, total });
            })
            .await;
        self.shared.paused.store(false, Ordering::SeqCst);
        let file = match r {
            Ok(f) => f,
            Err(e) if i == 0 => return Err(self.fail(stage, e).await),
            Err(e) => return Err(self.err(stage, e)),
        };
        // What it cost the process (its peak RSS now) sizes the next check.
        let st = &mut self.iso[i];
        st.previous_snapshot = match (figures, st.rss_before_snapshots, headroom::rss_of(pid)) {
            (Some(f), Some(rss_before_bytes), Ok(after)) => Some(PreviousSnapshot {
                heap_used_bytes: f.heap_used_bytes,
                large_object_bytes: f.large_object_bytes,
                rss_before_bytes,
                peak_rss_bytes: after.peak_bytes,
                file_bytes: file.bytes,
            }),
            _ => None,
        };
        let rec = SnapshotRecord {
            label,
            path: file.path,
            bytes: file.bytes,
            t_ms,
            duration_ms: file.duration_ms,
            requests: self.shared.requests.load(Ordering::SeqCst),
            isolate: st.isolate(),
        };
        st.snapshots.push(rec.clone());
        self.emit(HuntEvent::SnapshotTaken(rec.clone()));
        self.snapshots.push(rec);
        Ok(())
    }

    /// Forgets the snapshots and load phases of a series whose object ids were reset: their
    /// files are removed (they cannot be compared with the next ones) and the phases will
    /// be run again; the warm-up and the memory samples stay.
    fn discard_series(&mut self) {
        self.keep_warm_at_snapshot.clear();
        for s in self.snapshots.drain(..) {
            let _ = std::fs::remove_file(&s.path);
        }
        for st in &mut self.iso {
            st.snapshots.clear();
            st.served_per_phase.clear();
        }
        self.phases.retain(|p| !p.kind.is_load());
    }

    /// Starts a new series at the baseline: every live isolate that serves load is in it.
    /// Which ones serve is known from the requests counted in them so far: an isolate
    /// that counted none while others counted some (a cluster's primary) is left out;
    /// worker threads, which do work for requests without serving them, are always in;
    /// when nothing was counted, every isolate is.
    async fn start_series(&mut self, base: &MemorySample) {
        self.sync_isolates();
        let counts: Vec<Option<u64>> = {
            let mut c = Vec::new();
            for st in &self.iso {
                c.push(if st.alive() { st.tracked.served().await } else { None });
            }
            c
        };
        let any_served = counts.iter().any(|c| matches!(c, Some(n) if *n > 0));
        for (i, st) in self.iso.iter_mut().enumerate() {
            let serves = match st.isolate().kind {
                IsolateKind::WorkerThread => true,
                _ => !any_served || counts[i] != Some(0),
            };
            st.in_series = (i == 0 || st.alive()) && serves;
            st.snapshotted |= st.in_series;
            st.marker = None;
            if i == 0 {
                st.baseline = Some(*base);
            } else if st.baseline.is_none() {
                st.baseline = st.last_floor;
            }
        }
    }

    /// Reads each serving isolate's object-id marker at the start of its series.
    async fn mark_series(&mut self) {
        for st in &mut self.iso {
            if st.in_series {
                st.marker = st.tracked.session.object_id_marker().await.ok();
            }
        }
    }

    /// Whether V8's object ids were reset in a serving isolate since its baseline (another
    /// inspector client ended its session).
    async fn ids_reset(&mut self) -> bool {
        for st in &self.iso {
            if !st.in_series || !st.alive() {
                continue;
            }
            if let Some(m) = &st.marker
                && let Ok(now) = st.tracked.session.object_id_marker().await
                && &now != m
            {
                return true;
            }
        }
        false
    }

    /// Drives `units` of load (or the phase's duration) and records the phase.
    async fn load_phase(&mut self, phase: PhaseKind, units: u64) -> Result<(), HuntError> {
        let stage = Stage::Load(phase);
        self.check_alive(stage.clone())?;
        self.emit(HuntEvent::Step(format!("{phase}: load")));
        self.sync_isolates();
        let served_before = self.checkpoint().await;
        let start_ms = self.shared.now_ms();
        let before = self.shared.requests.load(Ordering::SeqCst);
        let kind = match (&self.cfg.warmup_load, phase) {
            (Some(w), PhaseKind::Warmup) => LoadKind::External(w.clone()),
            _ => self.cfg.load.clone(),
        };
        let load = match &kind {
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
                let total = spec.requests.unwrap_or(0);
                // The kept connections (a fresh pool, closed after the phase, when they
                // are not kept).
                let mut pool = self.kept.take().await;
                let fut = async move {
                    let r = leakhound_load::run_kept(&spec, &mut pool, move |done| {
                        shared.requests.store(before + done, Ordering::SeqCst);
                        let _ = events.send(HuntEvent::LoadProgress { phase, done, total });
                    })
                    .await;
                    (r, pool)
                };
                let (r, pool) = self.race_app(stage.clone(), fut).await?;
                self.kept.give_back(pool);
                let report = match r {
                    Ok(r) => r,
                    Err(e) => return Err(self.fail(stage, e).await),
                };
                self.shared
                    .requests
                    .store(before + report.requests_sent, Ordering::SeqCst);
                self.emit(HuntEvent::LoadDone {
                    phase,
                    report: report.clone(),
                });
                if report.errors == report.requests_sent && report.requests_sent > 0 {
                    return Err(self.err(
                        stage,
                        Failure::EveryRequestFailed {
                            summary: report.summary_line(),
                        },
                    ));
                }
                self.check_statuses(stage, phase, &report)?;
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
                let r = self
                    .race_app(stage.clone(), leakhound_load::run_external(&ext, tx))
                    .await?;
                let _ = forward.await;
                let report = match r {
                    Ok(r) => r,
                    Err(e) => return Err(self.fail(stage, e).await),
                };
                self.shared.requests.store(before + report.units, Ordering::SeqCst);
                None
            }
        };
        let end_ms = self.shared.now_ms();
        let sent = self.shared.requests.load(Ordering::SeqCst) - before;
        let served_after = self.checkpoint().await;
        for (i, st) in self.iso.iter_mut().enumerate() {
            let first = served_before.get(i).copied().flatten();
            let last = served_after.get(i).copied().flatten();
            match (first, last) {
                (Some(a), Some(b)) => st.served_per_phase.push((phase, b.saturating_sub(a))),
                // Joined during the phase: what it counted is all it served.
                (None, Some(b)) if i >= served_before.len() => st.served_per_phase.push((phase, b)),
                _ => {}
            }
        }
        self.phases.push(PhaseRecord {
            kind: phase,
            start_ms,
            end_ms,
            requests: sent,
            load,
        });
        Ok(())
    }

    /// With `--expect-status`, fails when any request of the phase got another status or
    /// none; without, warns when most did not get a 2xx/3xx (a 404 on every request is
    /// no load on the app's real work, and its NO LEAK means little), or when some failed.
    fn check_statuses(&mut self, stage: Stage, phase: PhaseKind, report: &LoadReport) -> Result<(), HuntError> {
        let sent = report.requests_sent;
        if let Some(expect) = &self.cfg.expect_status {
            let (unexpected, details) = off_status(report, |c| expect.accepts(c));
            if unexpected > 0 {
                return Err(self.err(
                    stage,
                    Failure::UnexpectedStatus {
                        expected: expect.to_string(),
                        unexpected,
                        sent,
                        details,
                    },
                ));
            }
            return Ok(());
        }
        let (not_ok, details) = off_status(report, |c| c < 400);
        if not_ok * 2 > sent {
            self.warnings.push(format!(
                "{phase}: {not_ok} of {sent} requests were not answered 2xx/3xx ({details}): the load \
                 probably missed the app's real work (check --url, --method, -H), so this verdict \
                 says little; --expect-status 2xx makes such a run fail"
            ));
        } else if report.errors > 0 {
            self.warnings
                .push(format!("{phase}: {} of {sent} requests failed", report.errors));
        }
        Ok(())
    }

    /// Runs `fut` unless the app dies first.
    async fn race_app<T>(&mut self, stage: Stage, fut: impl std::future::Future<Output = T>) -> Result<T, HuntError> {
        let session = self.session.clone();
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Ok(r),
                reason = session.closed() => {
                    self.wait_for_exit(Duration::from_secs(1)).await;
                    self.check_alive(stage.clone())?;
                    return Err(self.err(stage, Failure::InspectorClosedDuring { reason: reason.to_string() }));
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    self.check_alive(stage.clone())?;
                }
            }
        }
    }
}

/// The requests of `report` whose status is not `ok` (or that got no response), and what
/// they got, most first: `(302, "300 × 404, 2 without a response")`.
fn off_status(report: &LoadReport, ok: impl Fn(u16) -> bool) -> (u64, String) {
    let mut off: Vec<(u64, String)> = report
        .status_counts
        .iter()
        .filter(|(code, _)| !ok(**code))
        .map(|(code, n)| (*n, format!("{n} × {code}")))
        .collect();
    if report.errors > 0 {
        off.push((report.errors, format!("{} without a response", report.errors)));
    }
    off.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let total = off.iter().map(|(n, _)| n).sum();
    let mut words: Vec<String> = off.iter().take(4).map(|(_, w)| w.clone()).collect();
    if off.len() > 4 {
        words.push("…".into());
    }
    (total, words.join(", "))
}

/// The app once started or attached to.
pub(crate) struct StartedApp {
    /// The process leakhound started (None when attached).
    pub(crate) process: Option<NodeProcess>,
    /// The inspector session.
    pub(crate) session: Session,
    /// The claim on an attached process, held as long as this value.
    pub(crate) lock: Option<crate::lock::TargetLock>,
}

/// Starts (or attaches to) the app; every line it writes goes to `on_line`. Before
/// attaching, the target is claimed ([`crate::lock::lock_target`]) so that no second
/// leakhound attaches while this one runs.
pub(crate) async fn start_app(
    target: &AppTarget,
    ready_timeout: Duration,
    on_line: impl Fn(OutputLine) + Send + 'static,
) -> Result<StartedApp, HuntError> {
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
                .map_err(|e| HuntError::early(Stage::StartingApp, e))?;
            Ok(StartedApp {
                process: Some(p),
                session: s,
                lock: None,
            })
        }
        AppTarget::Attach { pid } => {
            let lock =
                crate::lock::lock_target(*pid).map_err(|e| HuntError::early(Stage::Attaching { pid: *pid }, e))?;
            let s = leakhound_inspector::attach(*pid, ready_timeout)
                .await
                .map_err(|e| HuntError::early(Stage::Attaching { pid: *pid }, e))?;
            Ok(StartedApp {
                process: None,
                session: s,
                lock: Some(lock),
            })
        }
    }
}

/// Stops the registry's tasks when dropped.
struct StopOnDrop(Arc<Registry>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.abort_tasks();
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
    if cfg.phases < 2 {
        return Err(HuntError::early(
            Stage::Configuration,
            Failure::Config("a hunt needs at least 2 load phases (target and final)".into()),
        ));
    }
    let out_dir = crate::out_dir::prepare(&cfg.out_dir).map_err(|e| HuntError::early(Stage::Configuration, e))?;
    // A hunt that ends before its first snapshot (an error, or the future dropped on
    // Ctrl-C) leaves no empty folder behind; one with snapshots keeps it.
    let _cleanup = crate::out_dir::RemoveIfEmpty(&out_dir);
    let notes = crate::out_dir::remove_stale_partials(&out_dir.path);
    hunt_in(cfg, events, &out_dir.path, notes).await
}

/// [`hunt`] once its output folder exists.
async fn hunt_in(
    cfg: HuntConfig,
    events: mpsc::UnboundedSender<HuntEvent>,
    out_dir: &std::path::Path,
    notes: Vec<String>,
) -> Result<HuntOutcome, HuntError> {
    let shared = Arc::new(Shared {
        clock: Clock::start(),
        requests: Arc::new(AtomicU64::new(0)),
        paused: Arc::new(AtomicBool::new(false)),
    });
    let registry = Registry::new(RegistryParts {
        clock: shared.clock,
        gc_interval: cfg.gc_interval,
        sample_interval: cfg.sample_interval,
        events: events.clone(),
        paused: shared.paused.clone(),
        requests: shared.requests.clone(),
        follow: cfg.follow_isolates,
        // Read before attaching: inspectors the app's children open since are closed again.
        open_before: match &cfg.target {
            AppTarget::Attach { pid } => Some(crate::discovery::OpenBefore::read(*pid)),
            AppTarget::Spawn { .. } => None,
        },
    });
    // However the hunt ends (also when its future is dropped on Ctrl-C), the discovery and
    // sampling tasks stop, and with them their copies of the event sender.
    let _stop = StopOnDrop(registry.clone());
    let ready_seen = Arc::new(AtomicBool::new(false));
    let listen_lines = Arc::new(std::sync::Mutex::new(VecDeque::new()));
    let node_warnings = Arc::new(std::sync::Mutex::new(NodeWarnings::new()));

    events.send(HuntEvent::Step("starting the app".into())).ok();
    let started = {
        let fwd = events.clone();
        let pattern = cfg.ready_pattern.clone();
        let seen = ready_seen.clone();
        let said = listen_lines.clone();
        let warned = node_warnings.clone();
        start_app(&cfg.target, cfg.ready_timeout, move |line: OutputLine| {
            if let Some(p) = &pattern
                && line.line.contains(p.as_str())
            {
                seen.store(true, Ordering::SeqCst);
            }
            if line.line.to_ascii_lowercase().contains("listen")
                && let Ok(mut said) = said.lock()
            {
                if said.len() == 5 {
                    said.pop_front();
                }
                said.push_back(line.line.chars().take(160).collect());
            }
            if let Ok(mut warned) = warned.lock() {
                warned.feed(&line.line);
            }
            let _ = fwd.send(HuntEvent::AppOutput(line));
        })
        .await?
    };
    // Held until the hunt ends: no second leakhound attaches meanwhile.
    let StartedApp {
        process,
        session,
        lock: _lock,
    } = started;
    let pid = process.as_ref().map(|p| p.pid()).unwrap_or_else(|| session.pid());
    events.send(HuntEvent::Started { pid }).ok();
    let session = Arc::new(session);
    let kept_spec = match (&cfg.load, cfg.keep_connections) {
        (LoadKind::Builtin(spec), true) => Some(spec.clone()),
        _ => None,
    };
    let kept = Kept::new(kept_spec, shared.paused.clone());
    let mut ctx = Ctx {
        cfg,
        out_dir: out_dir.to_owned(),
        session,
        process,
        shared: shared.clone(),
        events,
        snapshots: Vec::new(),
        phases: Vec::new(),
        warnings: notes,
        registry: registry.clone(),
        iso: Vec::new(),
        ready_seen,
        listen_lines,
        sampling: false,
        heap_profile: None,
        node_warnings,
        kept,
        connections: None,
        keep_warm_at_snapshot: Vec::new(),
    };
    let result = run_phases(&mut ctx).await;
    if result.is_ok() {
        // With the app still alive: clusters of one-shot timers get a settled snapshot.
        ctx.settle().await;
    }
    // The kept connections are closed before the app is stopped, on every path.
    let kept = ctx.kept.close().await;
    ctx.connections = ctx.connections.or(kept);
    if ctx.cfg.track_allocations && ctx.process.is_none() {
        // An attached app keeps running: its allocation tracking ends with the hunt.
        let _ = ctx.session.stop_tracking_allocations().await;
    }
    // Stop sampling, the sessions and the app on every path.
    registry.close_others().await;
    ctx.session.close().await;
    if let Some(mut p) = ctx.process.take() {
        let _ = p.kill_with_grace(Duration::from_secs(2)).await;
    }
    let calm = result?;
    analyse(ctx, pid, calm).await
}

async fn run_phases(ctx: &mut Ctx) -> Result<CalmDown, HuntError> {
    if let Err(e) = ctx.session.install_gc_observer().await {
        return Err(ctx.fail(Stage::InstallingGcObserver, e).await);
    }
    let main = Isolate::process(ctx.session.pid(), IsolateKind::Main);
    ctx.registry.add(main, ctx.session.clone()).await;
    ctx.sync_isolates();
    let root = ctx
        .process
        .as_ref()
        .map(|p| p.pid())
        .unwrap_or_else(|| ctx.session.pid());
    let discovery = tokio::spawn(ctx.registry.clone().discover_loop(root));
    ctx.registry.keep_task(discovery.abort_handle());
    let r = run_phases_inner(ctx).await;
    ctx.registry.stop.store(true, Ordering::SeqCst);
    ctx.registry.abort_tasks();
    r
}

async fn run_phases_inner(ctx: &mut Ctx) -> Result<CalmDown, HuntError> {
    // Readiness.
    ctx.emit(HuntEvent::Step("waiting for the app to be ready".into()));
    let deadline = Instant::now() + ctx.cfg.ready_timeout;
    if ctx.cfg.ready_pattern.is_some() {
        while !ctx.ready_seen.load(Ordering::SeqCst) {
            ctx.check_alive(Stage::WaitingForReadyPattern)?;
            if Instant::now() > deadline {
                return Err(ctx.err(
                    Stage::WaitingForApp,
                    Failure::ReadyPatternTimeout {
                        pattern: ctx.cfg.ready_pattern.clone().unwrap_or_default(),
                        timeout: ctx.cfg.ready_timeout,
                    },
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else if let Some(url) = ctx.cfg.url.clone() {
        let timeout = ctx.cfg.ready_timeout;
        let elsewhere = ListensElsewhere {
            pid: ctx.session.pid(),
            inspector_port: port_of(ctx.session.url()),
            url_port: port_of(&url),
            said: ctx.listen_lines.clone(),
            url_path: path_of(&url),
        };
        let events = ctx.events.clone();
        let polled = url.clone();
        let looking = elsewhere.clone();
        // Said while waiting too (the timeout may be long): where the app listens instead.
        let wait = async move {
            let wait = leakhound_load::wait_ready(&polled, timeout);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    r = &mut wait => return r,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {
                        if let Some((evidence, suggested)) = looking.find() {
                            let _ = events.send(HuntEvent::Step(format!(
                                "waiting for the app at {polled}: {evidence}; if it ignores PORT, stop and run again with --url {suggested}"
                            )));
                        }
                    }
                }
            }
        };
        let r = ctx.race_app(Stage::WaitingForReady, wait).await?;
        if let Err(e) = r {
            if let leakhound_load::LoadError::NotReady { url, timeout, .. } = &e
                && let Some((evidence, suggested)) = elsewhere.find()
            {
                return Err(ctx.err(
                    Stage::WaitingForReady,
                    Failure::ListensElsewhere {
                        url: url.clone(),
                        timeout: *timeout,
                        evidence,
                        suggested,
                    },
                ));
            }
            if let leakhound_load::LoadError::NotReady {
                url,
                timeout,
                last_error,
            } = &e
                && last_error.starts_with("no valid HTTP response")
            {
                return Err(ctx.err(
                    Stage::WaitingForReady,
                    Failure::NoHttpAnswer {
                        url: url.clone(),
                        timeout: *timeout,
                        last_error: last_error.clone(),
                    },
                ));
            }
            return Err(ctx.fail(Stage::WaitingForReady, e).await);
        }
    }
    let units = match &ctx.cfg.load {
        LoadKind::Builtin(_) => ctx.cfg.requests_per_phase,
        LoadKind::External(e) => e.units,
    };
    // The isolates there are once the app is ready (a cluster's workers, forked at its
    // start) are followed before the warm-up, so their request counters see it and tell
    // which isolates serve the load.
    let root = ctx
        .process
        .as_ref()
        .map(|p| p.pid())
        .unwrap_or_else(|| ctx.session.pid());
    ctx.registry.discover(root).await;
    if ctx.cfg.warmup_requests > 0 {
        let w = ctx.cfg.warmup_requests;
        ctx.load_phase(PhaseKind::Warmup, w).await?;
    }
    let phases = ctx.cfg.phases as u32;
    let mut restarts = 0;
    // The connections the phases keep are open before the baseline (whatever the warm-up
    // was), so their sockets are old in every snapshot and only what piles on them is new.
    if let Err(e) = ctx.kept.open().await {
        ctx.warnings.push(format!(
            "the load's connections could not be opened before the baseline ({e}): each phase opens its own"
        ));
    }
    // Every isolate there is by now (the workers the warm-up reached) is in the series.
    ctx.registry.discover(root).await;
    let base = 'series: loop {
        if ctx.cfg.track_allocations {
            ctx.emit(HuntEvent::Step("allocation tracking on".into()));
            if let Err(e) = ctx.session.start_tracking_allocations().await {
                ctx.warnings.push(format!(
                    "allocation tracking could not be turned on ({e}): the clusters have no allocation stacks"
                ));
            }
        }
        let base = ctx.floor_point(Stage::BaselineFloor).await?;
        ctx.start_series(&base).await;
        ctx.snapshot(SnapshotLabel::Baseline, 0).await?;
        ctx.start_sampling().await;
        // V8's object ids, which the leak finder compares across snapshots, live until any
        // inspector session that used the heap profiler ends (a DevTools window closed
        // meanwhile clears them): a marker taken now must be the same after each snapshot.
        ctx.mark_series().await;
        for i in 1..=phases {
            let phase = PhaseKind::Load(i);
            let label = SnapshotLabel::after_phase(i, phases);
            ctx.load_phase(phase, units).await?;
            ctx.floor_point(Stage::FloorAfter(phase)).await?;
            // Right after a reset V8 knows no ids at all (the marker reads "0") until the
            // next snapshot assigns new ones: check before the snapshot, and after it for
            // a reset in between.
            let reset_before = ctx.ids_reset().await;
            if !reset_before {
                ctx.snapshot(label, i as usize).await?;
            }
            if reset_before || ctx.ids_reset().await {
                if restarts == MAX_SERIES_RESTARTS {
                    return Err(ctx.err(Stage::Snapshot(label), Failure::ObjectIdsReset { restarts }));
                }
                restarts += 1;
                ctx.warnings.push(format!(
                    "V8's object ids were reset before the {label} snapshot (another inspector client, such as DevTools, ended its session): the series was started again from a new baseline"
                ));
                ctx.discard_series();
                continue 'series;
            }
        }
        break base;
    };
    ctx.finish_sampling().await;
    // Calm-down: no load, wait, GC, compare with the baseline.
    ctx.emit(HuntEvent::Step("calm-down".into()));
    let start_ms = ctx.shared.now_ms();
    tokio::time::sleep(ctx.cfg.calm_down).await;
    ctx.check_alive(Stage::CalmDown)?;
    if let Err(e) = ctx.session.collect_garbage().await {
        return Err(ctx.fail(Stage::CalmDown, e).await);
    }
    let after = ctx.floor_point(Stage::CalmDown).await?;
    ctx.connections = ctx.kept.close().await;
    for st in &mut ctx.iso {
        if st.alive() {
            st.after = st.last_floor;
        }
    }
    let end_ms = ctx.shared.now_ms();
    ctx.phases.push(PhaseRecord {
        kind: PhaseKind::CalmDown,
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

/// The floor statistics of `samples` over all load phases and over the last one.
fn floors(samples: &[MemorySample], phases: &[PhaseRecord]) -> (FloorAnalysis, FloorAnalysis) {
    let from = phases
        .iter()
        .find(|p| p.kind == PhaseKind::Load(1))
        .map(|p| p.start_ms)
        .unwrap_or(0.0);
    // The floor is judged under load: from the first load phase to the calm-down.
    let until = phases
        .iter()
        .find(|p| p.kind == PhaseKind::CalmDown)
        .map(|p| p.start_ms)
        .unwrap_or(f64::INFINITY);
    let under_load: Vec<MemorySample> = samples.iter().copied().filter(|s| s.t_ms < until).collect();
    let floor = leakhound_leaks::analyze_floor(&under_load, from);
    let last_from = phases
        .iter()
        .rev()
        .find(|p| p.kind.is_load())
        .map(|p| p.start_ms)
        .unwrap_or(0.0);
    // The last phase's floor: its samples plus the floor before it.
    let floor_last_phase = leakhound_leaks::analyze_floor(&under_load, last_from - 1.0);
    (floor, floor_last_phase)
}

/// Back at the baseline: within 2 % of it, and at most 512 KiB (heap) or 1 MiB
/// (external) above it.
fn calm_down_of(base: &MemorySample, after: &MemorySample, waited_ms: u64) -> CalmDown {
    let close = |a: u64, b: u64, slack: u64| a <= b + (b / 50).max(slack);
    CalmDown {
        baseline_heap_used_bytes: base.heap_used_bytes,
        after_heap_used_bytes: after.heap_used_bytes,
        baseline_external_bytes: base.external_bytes,
        after_external_bytes: after.external_bytes,
        returned_to_baseline: close(after.heap_used_bytes, base.heap_used_bytes, 512 << 10)
            && close(after.external_bytes, base.external_bytes, 1 << 20),
        waited_ms,
    }
}

/// Runs the leak finder on one series of snapshots on a blocking thread.
async fn find_in(paths: Vec<PathBuf>, opts: LeakOptions, all: &[SnapshotRecord]) -> Result<LeakReport, HuntError> {
    let keep: Vec<PathBuf> = all.iter().map(|s| s.path.clone()).collect();
    tokio::task::spawn_blocking(move || analyse_snapshots(&paths, &opts))
        .await
        .map_err(|e| HuntError {
            stage: Stage::Analysing,
            failure: Box::new(Failure::AnalysisStopped(e.to_string())),
            snapshots: keep.clone(),
        })?
        .map_err(|m| HuntError {
            stage: Stage::Analysing,
            failure: Box::new(m),
            snapshots: keep,
        })
}

fn empty_report() -> LeakReport {
    LeakReport {
        clusters: Vec::new(),
        not_growing: Vec::new(),
        leaked_object_count: 0,
        warnings: Vec::new(),
    }
}

/// How requests were counted across the app's isolates.
#[derive(Debug, Clone, Copy)]
struct Counting {
    /// Processes followed (worker threads left out).
    processes: usize,
    /// Whether the request counter saw any request in any isolate.
    saw_requests: bool,
}

/// One isolate's outcome: its series (in requests it served when they were counted and
/// the app has several processes), floors, leak finder (on a whole series of snapshots)
/// and verdict.
async fn analyse_isolate(
    st: IsoState,
    cfg: &HuntConfig,
    phases: &[PhaseRecord],
    counting: Counting,
    calm_waited_ms: u64,
    all_snapshots: &[SnapshotRecord],
    keep_warm_per_step: &[u64],
) -> Result<IsolateOutcome, HuntError> {
    let processes = counting.processes;
    let iso = st.isolate();
    let mut samples = st.tracked.samples.lock().await.clone();
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let served_total = st.checkpoints.last().map(|c| c.1);
    let (own_phases, counted) = own_phases(&st, phases, processes);
    if counted {
        let mut cps = st.checkpoints.clone();
        cps.sort_by_key(|c| c.0);
        for s in &mut samples {
            s.requests = served_at(s.requests, &cps);
        }
    }
    let (mut floor, mut floor_last_phase) = floors(&samples, &own_phases);
    if iso.kind == IsolateKind::WorkerThread {
        // A worker thread's rss is its whole process's: native growth is not its own.
        floor.growing.retain(|k| *k != leakhound_leaks::MemoryKind::Native);
        floor_last_phase
            .growing
            .retain(|k| *k != leakhound_leaks::MemoryKind::Native);
    }
    let whole_series = st.in_series && st.snapshots.len() == cfg.phases + 1;
    let leaks = if let Some(found) = st.leaks.clone() {
        found
    } else if whole_series {
        let mut opts = cfg.leak_options.clone();
        (opts.requests_per_step, opts.requests_per_step_each) = requests_per_step(&own_phases);
        if !counted {
            add_keep_warm(&mut opts, keep_warm_per_step);
        }
        let paths = st.snapshots.iter().map(|s| s.path.clone()).collect();
        find_in(paths, opts, all_snapshots).await?
    } else {
        empty_report()
    };
    let calm_down = match (st.baseline, st.after) {
        (Some(b), Some(a)) => Some(calm_down_of(&b, &a, calm_waited_ms)),
        _ => None,
    };
    let exited_ms = st.tracked.exited();
    let mut notes = st.notes.clone();
    if let Some(t) = exited_ms {
        notes.insert(0, format!("exited at {:.1} s", t / 1000.0));
    }
    let baseline_ms = phases
        .iter()
        .find(|p| p.kind == PhaseKind::Load(1))
        .map(|p| p.start_ms)
        .unwrap_or(0.0);
    let joined_late = st.tracked.joined_ms > baseline_ms && iso.kind != IsolateKind::Main;
    if joined_late {
        notes.push(format!(
            "followed from {:.1} s, after the baseline (a replacement): memory series only",
            st.tracked.joined_ms / 1000.0
        ));
    }
    let (verdict, reason, what_would_decide) = match &calm_down {
        _ if !leaks.clusters.is_empty() => {
            let calm = calm_down.unwrap_or(CalmDown {
                baseline_heap_used_bytes: 0,
                after_heap_used_bytes: 0,
                baseline_external_bytes: 0,
                after_external_bytes: 0,
                returned_to_baseline: false,
                waited_ms: 0,
            });
            let calm = Settle::effective_calm_down(st.settle.as_ref(), calm);
            decide(&leaks, &floor, &floor_last_phase, &calm, &own_phases)
        }
        Some(calm) if exited_ms.is_none() => decide(
            &leaks,
            &floor,
            &floor_last_phase,
            &Settle::effective_calm_down(st.settle.as_ref(), *calm),
            &own_phases,
        ),
        _ => (
            Verdict::Inconclusive,
            "it exited during the hunt, before its memory could be judged".to_owned(),
            Some("a hunt in which it lives from the baseline to the calm-down".to_owned()),
        ),
    };
    let (verdict, reason, what_would_decide) =
        crate::settle::annotate((verdict, reason, what_would_decide), st.settle.as_ref());
    Ok(IsolateOutcome {
        isolate: iso,
        verdict,
        reason,
        what_would_decide,
        requests_served: if st.tracked.counting && counting.saw_requests {
            served_total
        } else {
            None
        },
        requests_method: if counted {
            RequestsMethod::Counted
        } else {
            RequestsMethod::Sent
        },
        requests_per_phase: own_phases
            .iter()
            .filter(|p| p.kind.is_load())
            .map(|p| p.requests)
            .collect(),
        joined_ms: if iso.kind == IsolateKind::Main {
            0.0
        } else {
            st.tracked.joined_ms
        },
        exited_ms,
        snapshotted: st.snapshotted,
        followed_throughout: !joined_late && exited_ms.is_none() && calm_down.is_some(),
        snapshots: st.snapshots,
        samples,
        floor,
        floor_last_phase,
        calm_down,
        leaks,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        settle: st.settle,
    })
}

async fn analyse(ctx: Ctx, pid: u32, calm_down: CalmDown) -> Result<HuntOutcome, HuntError> {
    let Ctx {
        cfg,
        shared,
        snapshots,
        phases,
        mut warnings,
        events,
        iso,
        registry,
        heap_profile,
        node_warnings,
        connections,
        keep_warm_at_snapshot,
        ..
    } = ctx;
    let node_warnings = node_warnings.lock().map(|w| w.warnings().to_vec()).unwrap_or_default();
    if let Some(k) = &connections
        && k.closed_by_app() > 0
    {
        warnings.push(format!(
            "the app closed {} of the load's kept connections during the hunt (each reopened): what it piles on a connection's socket is freed with it, so a per-connection leak may look smaller or be missed (a keep-alive timeout shorter than a snapshot's pause, or `connection: close` answers)",
            k.closed_by_app()
        ));
    }
    let _ = events.send(HuntEvent::Step("analysing the snapshots".into()));
    warnings.extend(registry.warnings.lock().map(|w| w.clone()).unwrap_or_default());
    let requests_per_phase = phases
        .iter()
        .find(|p| p.kind == PhaseKind::Load(1))
        .map(|p| p.requests)
        .unwrap_or(cfg.requests_per_phase);
    let calm_waited_ms = calm_down.waited_ms;
    let keep_warm_per_step: Vec<u64> = keep_warm_at_snapshot
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    let processes_count = iso
        .iter()
        .filter(|s| s.isolate().kind != IsolateKind::WorkerThread)
        .count();
    let single = iso.len() == 1;
    // A counter that saw no request in any isolate of an app with no node children, while
    // requests were sent, did not see the app's server (Deno's `Deno.serve`, a server not
    // built on node's `http`): what it served is unknown then, not 0. (With children, a
    // main process counting 0 means they served: a cluster's primary, `--main-only`.)
    let counter_saw_requests = registry.children_seen()
        || iso
            .iter()
            .any(|s| s.tracked.counting && s.checkpoints.last().is_some_and(|c| c.1 > 0));
    let mut processes = Vec::with_capacity(iso.len());
    // One isolate at a time: one series of snapshots in memory at once.
    for st in iso {
        let outcome = analyse_isolate(
            st,
            &cfg,
            &phases,
            Counting {
                processes: processes_count,
                saw_requests: counter_saw_requests,
            },
            calm_waited_ms,
            &snapshots,
            &keep_warm_per_step,
        )
        .await?;
        let who = if single {
            String::new()
        } else {
            format!("{}: ", outcome.isolate)
        };
        warnings.extend(outcome.leaks.warnings.iter().map(|w| format!("{who}{w}")));
        if let Some(note) = &outcome.note {
            warnings.push(format!("{}: {note}", outcome.isolate));
        }
        processes.push(outcome);
    }
    let main = processes.first();
    let samples = main.map(|m| m.samples.clone()).unwrap_or_default();
    let (floor, floor_last_phase) = floors(&samples, &phases);
    let mut clusters: Vec<(Isolate, leakhound_leaks::Cluster)> = processes
        .iter()
        .flat_map(|p| p.leaks.clusters.iter().map(|c| (p.isolate, c.clone())))
        .collect();
    if !single {
        // Most important first across isolates: the largest retained size.
        clusters.sort_by_key(|(_, c)| std::cmp::Reverse(c.retained_size_bytes));
    }
    let (cluster_isolates, merged): (Vec<Isolate>, Vec<leakhound_leaks::Cluster>) = clusters.into_iter().unzip();
    let leaks = LeakReport {
        clusters: merged,
        not_growing: processes
            .iter()
            .flat_map(|p| p.leaks.not_growing.iter().cloned())
            .collect(),
        leaked_object_count: processes.iter().map(|p| p.leaks.leaked_object_count).sum(),
        warnings: processes
            .iter()
            .flat_map(|p| p.leaks.warnings.iter().cloned())
            .collect(),
    };
    // The main process's, or (a cluster's primary serves nothing) the first isolate's.
    let settle = processes.iter().find_map(|p| p.settle.clone());
    let (mut verdict, mut reason, mut what_would_decide) = if single {
        let calm = Settle::effective_calm_down(settle.as_ref(), calm_down);
        crate::settle::annotate(
            decide(&leaks, &floor, &floor_last_phase, &calm, &phases),
            settle.as_ref(),
        )
    } else {
        combine(&processes)
    };
    // An isolate that could not be followed may be the one that leaks: no "no leak" then.
    let unfollowed = registry.unfollowed.lock().map(|u| u.clone()).unwrap_or_default();
    if verdict == Verdict::NoLeak
        && let Some((isolate, _)) = unfollowed.first()
    {
        verdict = Verdict::Inconclusive;
        reason = format!(
            "nothing keeps growing in the isolates followed, but {isolate}{} could not be followed (no inspector could be reached) and may serve the load",
            match unfollowed.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            }
        );
        what_would_decide = Some(
            "let leakhound start the app (`leakhound hunt -- node app.js`: each worker gets an inspector of its own), or start it with --inspect=127.0.0.1:0 before attaching"
                .to_owned(),
        );
    }
    // The requests went elsewhere (cluster workers with --main-only, or children that were
    // never found): the main process's "no leak" says nothing about them.
    if single
        && verdict == Verdict::NoLeak
        && processes.first().and_then(|p| p.requests_served) == Some(0)
        && shared.requests.load(Ordering::SeqCst) > 0
        && registry.children_seen()
    {
        verdict = Verdict::Inconclusive;
        reason = "the main process served none of the requests sent: another process served them (cluster workers?), and it was not followed".to_owned();
        what_would_decide = Some(if cfg.follow_isolates {
            "make sure the processes that serve the requests are node processes below the app (leakhound follows those)"
                .to_owned()
        } else {
            "run without --main-only, so the processes that serve the requests are followed too".to_owned()
        });
    }
    // A load mostly answered 4xx/5xx (a 404 on every request) missed the app's real work:
    // its "no leak" is no evidence. Statuses the user declared with --expect-status count.
    if verdict == Verdict::NoLeak
        && cfg.expect_status.is_none()
        && let Some((phase, not_ok, sent, details)) = phases.iter().filter(|p| p.kind.is_load()).find_map(|p| {
            let l = p.load.as_ref()?;
            let (not_ok, details) = off_status(l, |c| c < 400);
            (not_ok * 2 > l.requests_sent).then_some((p.kind, not_ok, l.requests_sent, details))
        })
    {
        verdict = Verdict::Inconclusive;
        reason = format!(
            "nothing keeps growing, but {phase} got {not_ok} of {sent} requests answered otherwise than 2xx/3xx ({details}): the load missed the app's real work"
        );
        what_would_decide = Some(
            "send the load where the app does its work (--url with the route's path, --method, --body, -H), or declare these statuses expected with --expect-status"
                .to_owned(),
        );
    }
    // Node itself warned that listeners pile up on an emitter: no "no leak" then, but
    // what would decide it.
    if verdict == Verdict::NoLeak
        && let Some((why, next)) = crate::node_warnings::undecided(&node_warnings, connections.is_some())
    {
        verdict = Verdict::Inconclusive;
        reason = why;
        what_would_decide = Some(next);
    }
    Ok(HuntOutcome {
        verdict,
        reason,
        what_would_decide,
        node_warnings,
        connections,
        pid,
        command_line: cfg.command_line,
        url: cfg.url,
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
        cluster_isolates,
        processes,
        heap_profile,
        settle,
    })
}

/// The verdict of an app of several isolates: `Leak` when any isolate leaks (the one
/// with the largest cluster named first); `NoLeak` when every isolate followed from the
/// baseline to the calm-down has no leak and at least one of them was snapshotted
/// (served load); else `Inconclusive`, with what the first undecided isolate needs.
fn combine(processes: &[IsolateOutcome]) -> (Verdict, String, Option<String>) {
    let mut leaking: Vec<&IsolateOutcome> = processes.iter().filter(|p| p.verdict == Verdict::Leak).collect();
    leaking.sort_by_key(|p| std::cmp::Reverse(p.leaks.clusters.first().map(|c| c.retained_size_bytes).unwrap_or(0)));
    if let Some(first) = leaking.first() {
        let more = match leaking.len() {
            1 => String::new(),
            2 => format!(" (and {} too)", leaking[1].isolate),
            n => format!(" (and {} more isolates)", n - 1),
        };
        return (
            Verdict::Leak,
            format!("{}: {}{more}", first.isolate, first.reason),
            None,
        );
    }
    let whole: Vec<&IsolateOutcome> = processes.iter().filter(|p| p.followed_throughout).collect();
    let partial = processes.len() - whole.len();
    let partial_note = match partial {
        0 => String::new(),
        1 => "; 1 isolate was followed for part of the hunt only".to_owned(),
        n => format!("; {n} isolates were followed for part of the hunt only"),
    };
    if let Some(undecided) = whole.iter().find(|p| p.verdict == Verdict::Inconclusive) {
        return (
            Verdict::Inconclusive,
            format!("{}: {}{partial_note}", undecided.isolate, undecided.reason),
            undecided.what_would_decide.clone(),
        );
    }
    if !whole.iter().any(|p| p.snapshotted) {
        return (
            Verdict::Inconclusive,
            format!("no isolate that served the load was followed from the baseline to the calm-down{partial_note}"),
            Some("a hunt in which the workers serving the load live from the baseline to the calm-down (fewer requests per phase, or workers that are not replaced)".to_owned()),
        );
    }
    (
        Verdict::NoLeak,
        format!(
            "nothing allocated after the baseline keeps growing in any of the {} isolates followed through the hunt{partial_note}",
            whole.len()
        ),
        None,
    )
}

/// The load between consecutive snapshots, as the leak finder takes it: what each load
/// phase really delivered (snapshot `i + 1` follows load phase `i + 1`; by time, or cut
/// short, phases differ from the plan and from each other), and their mean as the one
/// number. None and empty when no load phase sent anything.
fn requests_per_step(phases: &[PhaseRecord]) -> (Option<f64>, Vec<f64>) {
    let each: Vec<f64> = phases
        .iter()
        .filter(|p| p.kind.is_load())
        .map(|p| p.requests as f64)
        .collect();
    let mean = each.iter().sum::<f64>() / each.len().max(1) as f64;
    if mean > 0.0 {
        (Some(mean), each)
    } else {
        (None, Vec::new())
    }
}

/// Isolate `st`'s load phases in the unit its rates divide by: with several processes and
/// its requests counted in it, each load phase's requests are those it served; else the
/// requests sent. The flag: whether they were counted.
fn own_phases(st: &IsoState, phases: &[PhaseRecord], processes: usize) -> (Vec<PhaseRecord>, bool) {
    let served_total = st.checkpoints.last().map(|c| c.1);
    let counted = st.tracked.counting && processes > 1 && served_total.is_some_and(|n| n > 0);
    let mut own = phases.to_vec();
    if counted {
        for p in own.iter_mut().filter(|p| p.kind.is_load()) {
            p.requests = st
                .served_per_phase
                .iter()
                .rev()
                .find(|(k, _)| *k == p.kind)
                .map(|(_, n)| *n)
                .unwrap_or(0);
        }
    }
    (own, counted)
}

/// Adds the keep-warm requests sent between consecutive snapshots (`per_step[i]`: from
/// snapshot `i` to `i + 1`) to the load the leak finder divides by: the app served them
/// too, between the phases. Nothing changes when none were sent.
fn add_keep_warm(opts: &mut LeakOptions, per_step: &[u64]) {
    if per_step.iter().all(|n| *n == 0) {
        return;
    }
    let Some(mean) = opts.requests_per_step else { return };
    if opts.requests_per_step_each.len() != per_step.len() {
        opts.requests_per_step_each = vec![mean; per_step.len()];
    }
    for (each, extra) in opts.requests_per_step_each.iter_mut().zip(per_step) {
        *each += *extra as f64;
    }
    let n = opts.requests_per_step_each.len().max(1) as f64;
    opts.requests_per_step = Some(opts.requests_per_step_each.iter().sum::<f64>() / n);
}

fn analyse_snapshots(paths: &[PathBuf], opts: &LeakOptions) -> Result<LeakReport, Failure> {
    let (loaded, prepared): (Vec<_>, Vec<_>) = leakhound_leaks::load_series(paths, &|_, _| {})?.into_iter().unzip();
    let snaps: Vec<&leakhound_heap::HeapSnapshot> = loaded.iter().map(|l| &l.snapshot).collect();
    Ok(leakhound_leaks::find_leaks_prepared(&snaps, prepared, opts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_gets_the_requests_its_phase_delivered() {
        let phase = |kind, requests| PhaseRecord {
            kind,
            start_ms: 0.0,
            end_ms: 0.0,
            requests,
            load: None,
        };
        // `--duration 3 --rate 300`: 835 and 880 requests, not 900 each.
        let phases = [
            phase(PhaseKind::Warmup, 200),
            phase(PhaseKind::Load(1), 835),
            phase(PhaseKind::Load(2), 880),
            phase(PhaseKind::CalmDown, 0),
        ];
        assert_eq!(requests_per_step(&phases), (Some(857.5), vec![835.0, 880.0]));
        let opts = LeakOptions {
            requests_per_step_each: requests_per_step(&phases).1,
            ..LeakOptions::default()
        };
        // An exact 1-per-request leak grows by 880 from target to final.
        assert_eq!(opts.requests_between(1, 2).map(|r| 880.0 / r), Some(1.0));
        assert_eq!(requests_per_step(&[phase(PhaseKind::Load(1), 0)]), (None, Vec::new()));
    }

    #[test]
    fn keep_warm_requests_between_snapshots_count_as_load_of_their_step() {
        let mut opts = LeakOptions {
            requests_per_step: Some(300.0),
            ..LeakOptions::default()
        };
        add_keep_warm(&mut opts, &[0, 0]);
        assert_eq!(
            (opts.requests_per_step, opts.requests_per_step_each.len()),
            (Some(300.0), 0)
        );
        // 10 keep-warm requests while the target snapshot was written and load-2 began.
        add_keep_warm(&mut opts, &[0, 10]);
        assert_eq!(opts.requests_per_step_each, vec![300.0, 310.0]);
        assert_eq!(opts.requests_between(1, 2), Some(310.0));
        assert_eq!(opts.requests_per_step, Some(305.0));
    }

    #[test]
    fn statuses_off_the_mark_are_counted_most_first() {
        let report = LoadReport {
            requests_sent: 310,
            responses_2xx_3xx: 5,
            responses_4xx: 300,
            errors: 2,
            status_counts: [(200, 5), (404, 300), (503, 3)].into_iter().collect(),
            ..LoadReport::default()
        };
        assert_eq!(
            off_status(&report, |c| c < 400),
            (305, "300 × 404, 3 × 503, 2 without a response".to_owned())
        );
        assert_eq!(
            off_status(&report, |c| c == 200 || c == 404),
            (5, "3 × 503, 2 without a response".to_owned())
        );
    }
}
