//! `leakhound hunt`, `demo` and `snapshot`: argument handling, progress on stderr, and
//! conversion of the hunt's outcome to the report's wire types.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use leakhound_hunt::{AppTarget, HuntConfig, HuntEvent, HuntOutcome, LoadKind, Verdict};
use leakhound_report::hunt::{
    AppJson, CalmDownJson, FloorFitJson, FloorJson, HuntJson, LoadJson, MemoryPointJson, PhaseJson, SnapshotJson,
};
use tokio::sync::mpsc;

/// Options of `hunt` after parsing.
#[derive(Debug, Clone)]
pub struct HuntArgs {
    /// Command to start (empty with --attach).
    pub command: Vec<OsString>,
    /// Attach to this pid.
    pub attach: Option<u32>,
    /// App URL.
    pub url: Option<String>,
    /// Connections.
    pub connections: usize,
    /// Requests per phase.
    pub requests: u64,
    /// Phase duration.
    pub duration: Option<Duration>,
    /// Rate.
    pub rate: Option<f64>,
    /// Method.
    pub method: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<String>,
    /// External load command.
    pub load: Option<String>,
    /// Units per external run.
    pub units: Option<u64>,
    /// Warm-up requests.
    pub warmup: u64,
    /// Load phases.
    pub phases: usize,
    /// Sample interval.
    pub sample_ms: u64,
    /// Forced GC interval (0 = off).
    pub gc_interval_ms: u64,
    /// Calm-down wait.
    pub calm_down_ms: u64,
    /// Snapshot folder.
    pub out_dir: Option<PathBuf>,
    /// Ready timeout.
    pub ready_timeout_s: u64,
    /// Ready pattern.
    pub ready: Option<String>,
    /// Minimum growth for clusters.
    pub min_growth: u64,
    /// JSON on stdout.
    pub json: bool,
    /// HTML report file.
    pub html: Option<PathBuf>,
    /// No progress / app output echo.
    pub quiet: bool,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// Runs `hunt` and prints the report. Exit code 0 no leak, 1 leak.
pub fn run_hunt(args: HuntArgs) -> Result<ExitCode> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let url = match (&args.url, args.attach) {
        (Some(u), _) => Some(u.clone()),
        (None, None) if args.load.is_none() => {
            let port = free_port()?;
            env.push(("PORT".into(), port.to_string().into()));
            Some(format!("http://127.0.0.1:{port}/"))
        }
        (None, Some(_)) if args.load.is_none() => bail!("with --attach, give the app's address with --url"),
        _ => None,
    };
    let target = match (args.attach, args.command.split_first()) {
        (Some(pid), _) => AppTarget::Attach { pid },
        (None, Some((program, rest))) => AppTarget::Spawn {
            program: program.clone(),
            args: rest.to_vec(),
            cwd: None,
            env: env.clone(),
        },
        (None, None) => {
            bail!("give the app's command after `--` (e.g. `leakhound hunt -- node server.js`) or --attach PID")
        }
    };
    let load = match &args.load {
        Some(cmd) => LoadKind::External(leakhound_load::ExternalLoad {
            command: cmd.clone(),
            units: args.units.unwrap_or(1),
            env: url.iter().map(|u| ("LEAKHOUND_URL".to_owned(), u.clone())).collect(),
        }),
        None => {
            let mut spec = leakhound_load::LoadSpec::new(url.clone().unwrap_or_default());
            spec.connections = args.connections;
            spec.rate_per_s = args.rate;
            spec.method = args.method.clone();
            spec.headers = args.headers.clone();
            spec.body = args.body.clone().map(String::into_bytes);
            spec.requests = Some(args.requests);
            spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            LoadKind::Builtin(spec)
        }
    };
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("leakhound-{stamp}"))
    });
    let cfg = HuntConfig {
        target,
        url: url.clone(),
        load,
        requests_per_phase: args.units.filter(|_| args.load.is_some()).unwrap_or(args.requests),
        duration_per_phase: args.duration,
        warmup_requests: args.warmup,
        phases: args.phases,
        sample_interval: Duration::from_millis(args.sample_ms.max(10)),
        gc_interval: (args.gc_interval_ms > 0).then(|| Duration::from_millis(args.gc_interval_ms)),
        calm_down: Duration::from_millis(args.calm_down_ms),
        out_dir,
        ready_timeout: Duration::from_secs(args.ready_timeout_s),
        ready_pattern: args.ready.clone(),
        leak_options: leakhound_leaks::LeakOptions {
            min_growth: args.min_growth,
            ..Default::default()
        },
    };
    let command_line = (!args.command.is_empty()).then(|| {
        args.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let quiet = args.quiet;
    let outcome = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let ui = tokio::spawn(show_progress(rx, quiet));
        let r = tokio::select! {
            r = leakhound_hunt::hunt(cfg, tx) => r.map_err(|e| Some(anyhow::Error::from(e))),
            // Dropping the hunt stops the app (SIGKILL to its process group) and removes a
            // half-written snapshot; the finished ones stay.
            _ = tokio::signal::ctrl_c() => Err(None),
        };
        let taken = ui.await.unwrap_or_default();
        r.map_err(|e| {
            e.unwrap_or_else(|| {
                let kept = if taken.is_empty() {
                    "no snapshot was taken yet".to_owned()
                } else {
                    let list: Vec<String> = taken.iter().map(|p| p.display().to_string()).collect();
                    format!("snapshots kept: {}", list.join(", "))
                };
                anyhow::anyhow!("interrupted (Ctrl-C): the app was stopped; {kept}")
            })
        })
    })?;
    let report = to_json(&outcome, command_line, url);
    if let Some(path) = &args.html {
        write_atomically(path, |w| leakhound_report::html::write_html(&report, w))?;
        if !args.quiet {
            #[allow(clippy::print_stderr, reason = "where the report went")]
            {
                eprintln!("leakhound: HTML report written to {}", path.display());
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        leakhound_report::hunt::write_hunt_text(&report, &mut out)?;
    }
    out.flush()?;
    Ok(if outcome.verdict == Verdict::Leak {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes a file through a temporary name in the same folder, renamed when complete.
pub fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        f(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!("cannot write {}: {e}", path.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Shows the hunt's progress on stderr: a spinner on a terminal, plain lines otherwise
/// (logs, CI). Returns the snapshots taken.
async fn show_progress(mut rx: mpsc::UnboundedReceiver<HuntEvent>, quiet: bool) -> Vec<PathBuf> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    // A spinner on a non-terminal draws nothing, and its println() neither: print plainly.
    let plain = !quiet && bar.is_hidden();
    let say = |line: String| {
        if plain {
            #[allow(clippy::print_stderr, reason = "progress lines when stderr is not a terminal")]
            {
                eprintln!("{line}");
            }
        } else {
            bar.println(line);
        }
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut last_mem = String::new();
    let mut step = String::new();
    let mut taken = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            HuntEvent::AppOutput(l) if !quiet => say(format!("app| {}", l.line)),
            HuntEvent::Started { pid } => say(format!("leakhound: app started, pid {pid}")),
            HuntEvent::Step(s) => {
                step = s;
                bar.set_message(format!("{step} {last_mem}"));
            }
            HuntEvent::LoadProgress { phase, done, total } => {
                bar.set_message(format!("{phase}: {done}/{total} requests {last_mem}"));
            }
            HuntEvent::LoadDone { phase, report } => say(format!("leakhound: {phase}: {}", report.summary_line())),
            HuntEvent::SnapshotProgress { label, done, .. } => {
                bar.set_message(format!(
                    "{label} snapshot: {} received",
                    leakhound_report::format::bytes(done)
                ));
            }
            HuntEvent::SnapshotTaken(s) => {
                say(format!(
                    "leakhound: {} snapshot {} ({}, {} ms)",
                    s.label,
                    s.path.display(),
                    leakhound_report::format::bytes(s.bytes),
                    s.duration_ms
                ));
                taken.push(s.path);
            }
            HuntEvent::Sample(m) => {
                last_mem = format!(
                    "| heapUsed {} external {} rss {}",
                    leakhound_report::format::bytes(m.heap_used_bytes),
                    leakhound_report::format::bytes(m.external_bytes),
                    leakhound_report::format::bytes(m.rss_bytes)
                );
                bar.set_message(format!("{step} {last_mem}"));
            }
            _ => {}
        }
    }
    bar.finish_and_clear();
    taken
}

fn fit_json(f: &leakhound_leaks::FloorFit) -> FloorFitJson {
    FloorFitJson {
        metric: f.metric.as_str().to_owned(),
        points: f.points,
        first_bytes: f.first_bytes,
        last_bytes: f.last_bytes,
        bytes_per_request: f.bytes_per_request,
        bytes_per_request_ci95: f.bytes_per_request_ci95,
        bytes_per_hour: f.bytes_per_hour,
        bytes_per_hour_ci95: f.bytes_per_hour_ci95,
        growing: f.growing,
    }
}

/// The hunt's outcome as the report's wire type.
pub fn to_json(o: &HuntOutcome, command: Option<String>, url: Option<String>) -> HuntJson {
    let leaks = leakhound_report::leaks::leaks_json(&[], &o.leaks, Some(o.requests_per_phase as f64));
    HuntJson {
        schema_version: 1,
        kind: "hunt".into(),
        verdict: if o.verdict == Verdict::Leak { "leak" } else { "no_leak" }.into(),
        reason: o.reason.clone(),
        app: AppJson {
            command,
            pid: o.pid,
            url,
        },
        requests_sent: o.requests_sent,
        requests_per_phase: o.requests_per_phase,
        phases: o
            .phases
            .iter()
            .map(|p| PhaseJson {
                name: p.name.clone(),
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                requests: p.requests,
            })
            .collect(),
        snapshots: o
            .snapshots
            .iter()
            .map(|s| SnapshotJson {
                label: s.label.clone(),
                path: s.path.display().to_string(),
                bytes: s.bytes,
                t_ms: s.t_ms,
                duration_ms: s.duration_ms,
                requests: s.requests,
            })
            .collect(),
        memory: o
            .samples
            .iter()
            .map(|m| MemoryPointJson {
                t_ms: m.t_ms,
                requests: m.requests,
                rss_bytes: m.rss_bytes,
                heap_total_bytes: m.heap_total_bytes,
                heap_used_bytes: m.heap_used_bytes,
                external_bytes: m.external_bytes,
                array_buffers_bytes: m.array_buffers_bytes,
                after_full_gc: m.after_full_gc,
            })
            .collect(),
        floor: FloorJson {
            heap_used: fit_json(&o.floor.heap_used),
            external: fit_json(&o.floor.external),
            rss: fit_json(&o.floor.rss),
            growing: o.floor.growing.iter().map(|s| s.to_string()).collect(),
            growing_last_phase: o.floor_last_phase.growing.iter().map(|s| s.to_string()).collect(),
        },
        calm_down: CalmDownJson {
            baseline_heap_used_bytes: o.calm_down.baseline_heap_used_bytes,
            after_heap_used_bytes: o.calm_down.after_heap_used_bytes,
            baseline_external_bytes: o.calm_down.baseline_external_bytes,
            after_external_bytes: o.calm_down.after_external_bytes,
            returned_to_baseline: o.calm_down.returned_to_baseline,
            waited_ms: o.calm_down.waited_ms,
        },
        load: o
            .phases
            .iter()
            .filter_map(|p| p.load.as_ref().map(|l| (p, l)))
            .map(|(p, l)| LoadJson {
                phase: p.name.clone(),
                requests_sent: l.requests_sent,
                responses_2xx_3xx: l.responses_2xx_3xx,
                responses_4xx: l.responses_4xx,
                responses_5xx: l.responses_5xx,
                errors: l.errors,
                requests_per_s: l.requests_per_s,
                latency_p50_ms: l.latency_ms.p50,
                latency_p90_ms: l.latency_ms.p90,
                latency_p99_ms: l.latency_ms.p99,
                latency_max_ms: l.latency_ms.max,
                elapsed_ms: l.elapsed_ms,
            })
            .collect(),
        clusters: leaks.clusters,
        not_growing: leaks.not_growing,
        warnings: o.warnings.clone(),
    }
}

/// The bundled leaky server of `leakhound demo`.
pub const DEMO_SERVER: &str = include_str!("../assets/demo-server.js");

/// `leakhound demo`: hunts the bundled leaky server; exit code 0 when its leak is found.
pub fn run_demo(mut args: HuntArgs) -> Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("leakhound-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let server = dir.path().join("shop-server.js");
    std::fs::write(&server, DEMO_SERVER).with_context(|| format!("cannot write {}", server.display()))?;
    args.command = vec!["node".into(), server.into_os_string()];
    if args.out_dir.is_none() {
        args.out_dir = Some(PathBuf::from("leakhound-demo"));
    }
    if args.html.is_none() {
        args.html = Some(PathBuf::from("leakhound-demo.html"));
    }
    // The demo server leaks on purpose: finding it is success (exit 0); a demo that
    // finds nothing, or fails, is not.
    let code = run_hunt(args)?;
    Ok(if code == ExitCode::from(1) {
        ExitCode::SUCCESS
    } else {
        bail!("the demo's leak was not found (see the report above)")
    })
}

/// `leakhound snapshot`: one snapshot of a running process, after a GC.
pub fn run_snapshot(pid: Option<u32>, inspect: Option<String>, out: Option<PathBuf>, quiet: bool) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let session = match (pid, inspect) {
            (Some(pid), _) => leakhound_inspector::attach(pid, Duration::from_secs(10)).await?,
            (None, Some(url)) => leakhound_inspector::Session::connect_url(&url).await?,
            (None, None) => bail!("give --pid PID or --inspect URL"),
        };
        let path = out.unwrap_or_else(|| {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from(format!("Heap-{}-{stamp}.heapsnapshot", session.pid()))
        });
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new_spinner()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("garbage collection");
        session.collect_garbage().await?;
        bar.set_message("snapshot");
        let b = bar.clone();
        let r = session
            .take_heap_snapshot(&path, move |bytes, _| {
                b.set_message(format!("snapshot: {} received", leakhound_report::format::bytes(bytes)));
            })
            .await;
        bar.finish_and_clear();
        session.close().await;
        let file = r?;
        #[allow(clippy::print_stdout, reason = "the command's result")]
        {
            println!(
                "{} ({} bytes, {} ms)",
                file.path.display(),
                file.bytes,
                file.duration_ms
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `leakhound watch`: the memory watch alone, printing the floor and verdict live.
#[allow(clippy::too_many_arguments, reason = "one parameter per command-line flag")]
pub fn run_watch(
    command: Vec<OsString>,
    attach: Option<u32>,
    duration: Option<Duration>,
    interval: Duration,
    gc_interval: Option<Duration>,
    warmup: Duration,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let target = match (attach, command.split_first()) {
        (Some(pid), _) => AppTarget::Attach { pid },
        (None, Some((program, rest))) => AppTarget::Spawn {
            program: program.clone(),
            args: rest.to_vec(),
            cwd: None,
            env: vec![],
        },
        (None, None) => {
            bail!("give the app's command after `--` (e.g. `leakhound watch -- node server.js`) or --attach PID")
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cfg = leakhound_hunt::WatchConfig {
        target,
        sample_interval: interval,
        gc_interval,
        duration,
        warmup,
        stop: stop.clone(),
        ready_timeout: Duration::from_secs(30),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            let mut last_print = std::time::Instant::now() - Duration::from_secs(10);
            while let Some(e) = rx.recv().await {
                match e {
                    leakhound_hunt::WatchEvent::Started { pid } if !quiet => {
                        eprintln_wrapped(&format!("leakhound: watching pid {pid} (Ctrl-C to stop)"));
                    }
                    leakhound_hunt::WatchEvent::AppOutput(l) if !quiet => eprintln_wrapped(&format!("app| {}", l.line)),
                    leakhound_hunt::WatchEvent::Sample(s, floor)
                        if !quiet && last_print.elapsed() >= Duration::from_secs(1) =>
                    {
                        last_print = std::time::Instant::now();
                        eprintln_wrapped(&watch_line(&s, &floor));
                    }
                    _ => {}
                }
            }
        });
        let stopper = stop.clone();
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stopper.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let r = leakhound_hunt::watch(cfg, tx).await;
        ctrl_c.abort();
        let _ = printer.await;
        r
    })?;
    let f = &outcome.floor;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        let doc = serde_json::json!({
            "schema_version": 1,
            "kind": "watch",
            "pid": outcome.pid,
            "ended": outcome.ended,
            "verdict": if f.growing.is_empty() { "no_leak" } else { "leak" },
            "growing": f.growing.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "floor": {
                "heap_used": fit_json(&f.heap_used),
                "external": fit_json(&f.external),
                "rss": fit_json(&f.rss),
            },
            "memory": outcome.samples.iter().map(|m| serde_json::json!({
                "t_ms": m.t_ms, "rss_bytes": m.rss_bytes, "heap_total_bytes": m.heap_total_bytes,
                "heap_used_bytes": m.heap_used_bytes, "external_bytes": m.external_bytes,
                "array_buffers_bytes": m.array_buffers_bytes, "after_full_gc": m.after_full_gc,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let verdict = if f.growing.is_empty() {
            "NO LEAK: the post-GC floor does not rise".to_owned()
        } else {
            format!("LEAK: the post-GC floor of {} rises", kinds(&f.growing, " and "))
        };
        writeln!(
            out,
            "{verdict} ({}; {} floor points after the warm-up)",
            outcome.ended, f.heap_used.points
        )?;
        for fit in [&f.heap_used, &f.external, &f.rss] {
            writeln!(out, "   {:<9} {}", fit.metric, per_hour(fit))?;
        }
    }
    Ok(if f.growing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn per_hour(f: &leakhound_leaks::FloorFit) -> String {
    use leakhound_report::format::bytes;
    match (f.bytes_per_hour, f.bytes_per_hour_ci95) {
        (Some(s), Some((lo, hi))) => format!(
            "{} → {}, {}{}/h (95 % CI {}…{}){}",
            bytes(f.first_bytes),
            bytes(f.last_bytes),
            if s < 0.0 { "−" } else { "+" },
            bytes(s.abs() as u64),
            signed(lo),
            signed(hi),
            if f.growing { "  growing" } else { "" }
        ),
        _ => format!(
            "{} → {} (not enough floor points yet)",
            bytes(f.first_bytes),
            bytes(f.last_bytes)
        ),
    }
}

fn signed(x: f64) -> String {
    let b = leakhound_report::format::bytes(x.abs() as u64);
    if x < 0.0 { format!("−{b}") } else { format!("+{b}") }
}

fn watch_line(s: &leakhound_leaks::MemorySample, f: &leakhound_leaks::FloorAnalysis) -> String {
    use leakhound_report::format::bytes;
    format!(
        "t={:>5.0}s heapUsed {:>9} external {:>9} rss {:>9} | floor heap {} | {}",
        s.t_ms / 1000.0,
        bytes(s.heap_used_bytes),
        bytes(s.external_bytes),
        bytes(s.rss_bytes),
        per_hour(&f.heap_used),
        if f.growing.is_empty() {
            "flat so far".to_owned()
        } else {
            format!("GROWING: {}", kinds(&f.growing, ", "))
        }
    )
}

/// The names of `growing` memory kinds joined by `sep`.
fn kinds(growing: &[leakhound_leaks::MemoryKind], sep: &str) -> String {
    growing.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(sep)
}

fn eprintln_wrapped(line: &str) {
    #[allow(clippy::print_stderr, reason = "live progress goes to stderr")]
    {
        eprintln!("{line}");
    }
}
