//! `leakhound hunt`, `demo` and `snapshot`: the library's config from the flags, the
//! async runtime, progress on stderr, and the report on stdout (and in an HTML file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use leakhound_hunt::{HuntConfig, HuntEvent, HuntOptions, Verdict};
use leakhound_report::hunt::HuntJson;
use leakhound_report::terminal::{TerminalSafe, terminal_safe};
use tokio::sync::mpsc;

use crate::cli::{DemoArgs, HuntArgs, ReportArgs};

/// `leakhound hunt`: runs the hunt and prints its report. Exit code 0 no leak, 1 leak.
pub fn run_hunt(args: HuntArgs, quiet: bool) -> Result<ExitCode> {
    let report = args.report.clone();
    hunt_and_report(args.options(), &report, quiet)
}

/// Runs a hunt with `options` and writes its report: text or JSON on stdout, and the
/// HTML page when asked.
fn hunt_and_report(options: HuntOptions, report_args: &ReportArgs, quiet: bool) -> Result<ExitCode> {
    let cfg = HuntConfig::from_options(options)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let ui = tokio::spawn(show_progress(rx, quiet));
        let r = tokio::select! {
            r = leakhound_hunt::hunt(cfg, tx) => r.map_err(|e| Err(anyhow::Error::from(e))),
            // Dropping the hunt stops the app (SIGKILL to its process group) and removes a
            // half-written snapshot; the finished ones stay.
            signal = crate::signals::termination() => Err(Ok(signal)),
        };
        let taken = ui.await.unwrap_or_default();
        r.map_err(|e| match e {
            Err(e) => e,
            Ok(signal) => {
                let kept = if taken.is_empty() {
                    "no snapshot was taken yet".to_owned()
                } else {
                    let list: Vec<String> = taken.iter().map(|p| p.display().to_string()).collect();
                    format!("snapshots kept: {}", list.join(", "))
                };
                anyhow::anyhow!("interrupted ({signal}): the app was stopped; {kept}")
            }
        })
    })?;
    let report = HuntJson::from_outcome(&outcome);
    // The verdict first: a report file that cannot be written (a full disk) must not
    // cost the user, or a CI gate, the answer already computed.
    {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if report_args.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            let mut safe = TerminalSafe::new(&mut out);
            leakhound_report::hunt::write_hunt_text(&report, &mut safe)?;
            safe.flush()?;
        }
        out.flush()?;
    }
    if let Some(path) = &report_args.html {
        #[allow(clippy::print_stderr, reason = "where the report went, or why it did not")]
        match write_atomically(path, |w| leakhound_report::html::write_html(&report, w)) {
            Ok(()) if !quiet => eprintln!("leakhound: HTML report written to {}", path.display()),
            Ok(()) => {}
            // Even with --quiet: the file the user asked for is missing.
            Err(e) => eprintln!("leakhound: warning: no HTML report: {e:#} (the verdict above stands)"),
        }
    }
    Ok(if outcome.verdict == Verdict::Leak {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes a file through a temporary file in the same folder, renamed over `path` when
/// complete and synced; on any failure the temporary file is removed and `path` is left
/// as it was. The temporary file gets a fresh random name, created with `O_EXCL` (it never
/// follows or reuses a file someone else planted in a shared folder) and mode 0600.
///
/// # Errors
/// The folder cannot take a new file, `f` fails, or the rename fails; each names `path`.
pub fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let result = (|| -> std::io::Result<tempfile::NamedTempFile> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempfile_in(dir)?;
        let mut w = std::io::BufWriter::new(tmp);
        f(&mut w)?;
        w.flush()?;
        let tmp = w.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        Ok(tmp)
    })();
    // Dropping a NamedTempFile removes it.
    let tmp = result.map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
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
            HuntEvent::AppOutput(l) if !quiet => say(format!("app| {}", terminal_safe(&l.line))),
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

/// The bundled leaky server of `leakhound demo`.
pub const DEMO_SERVER: &str = include_str!("../assets/demo-server.js");

/// `leakhound demo`: hunts the bundled leaky server; exit code 0 when its leak is found.
pub fn run_demo(mut args: DemoArgs, quiet: bool) -> Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("leakhound-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let server = dir.path().join("shop-server.js");
    std::fs::write(&server, DEMO_SERVER).with_context(|| format!("cannot write {}", server.display()))?;
    if args.run.out_dir.is_none() {
        args.run.out_dir = Some(PathBuf::from("leakhound-demo"));
    }
    if args.report.html.is_none() {
        args.report.html = Some(PathBuf::from("leakhound-demo.html"));
    }
    let report = args.report.clone();
    let options = args.options(vec!["node".into(), server.into_os_string()]);
    // The demo server leaks on purpose: finding it is success (exit 0); a demo that
    // finds nothing, or fails, is not.
    let code = hunt_and_report(options, &report, quiet)?;
    Ok(if code == ExitCode::from(1) {
        ExitCode::SUCCESS
    } else {
        bail!("the demo's leak was not found (see the report above)")
    })
}

/// `leakhound snapshot`: one snapshot of a running process, after a GC.
pub fn run_snapshot(args: crate::cli::SnapshotArgs, quiet: bool) -> Result<ExitCode> {
    let crate::cli::SnapshotArgs {
        pid,
        inspect,
        output: out,
        ignore_headroom,
    } = args;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let session = match (pid, inspect) {
            (Some(pid), _) => {
                // One leakhound per process (see leakhound_hunt::lock_target).
                let lock = leakhound_hunt::lock_target(pid)?;
                (
                    leakhound_inspector::attach(pid, Duration::from_secs(10)).await?,
                    Some(lock),
                )
            }
            (None, Some(url)) => (leakhound_inspector::Session::connect_url(&url).await?, None),
            (None, None) => bail!("give --pid PID or --inspect URL"),
        };
        let (session, _lock) = session;
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
        let b = bar.clone();
        let mut warnings = Vec::new();
        let work = async {
            b.set_message("garbage collection");
            session.collect_garbage().await?;
            b.set_message("memory headroom");
            warnings = headroom_gate(&session, pid, ignore_headroom).await?;
            b.set_message("snapshot");
            let file = session
                .take_heap_snapshot(&path, move |bytes, _| {
                    b.set_message(format!("snapshot: {} received", leakhound_report::format::bytes(bytes)));
                })
                .await?;
            anyhow::Ok(file)
        };
        // A termination signal drops the snapshot in progress (its partial file is removed)
        // and leaves the process running.
        let r = tokio::select! {
            r = work => r,
            signal = crate::signals::termination() => {
                Err(anyhow::anyhow!("interrupted ({signal}): no snapshot was written"))
            }
        };
        bar.finish_and_clear();
        #[allow(clippy::print_stderr, reason = "warnings of the headroom check")]
        for w in warnings.iter().filter(|_| !quiet) {
            eprintln!("leakhound: warning: {w}");
        }
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

/// The memory headroom check before `leakhound snapshot` (see
/// `leakhound_inspector::headroom`): against the machine's `MemAvailable` and, with `--pid`,
/// the process's cgroup limit (with `--inspect` the process behind the URL is not known for
/// sure: the machine's figure only). Returns the warnings to print.
///
/// # Errors
/// The snapshot does not fit and `ignore` is not set (nothing is written), or the target's
/// connection failed.
async fn headroom_gate(session: &leakhound_inspector::Session, pid: Option<u32>, ignore: bool) -> Result<Vec<String>> {
    use leakhound_inspector::headroom::{self, Fit};
    let figures = match session.heap_figures().await {
        Ok(f) => f,
        Err(e) if session.is_closed() => return Err(e.into()),
        Err(e) => return Ok(vec![format!("memory headroom not checked: {e}")]),
    };
    let check = match pid {
        Some(pid) => headroom::check(pid, &figures),
        None => {
            headroom::available_on_machine().map(|a| headroom::judge(headroom::estimate_snapshot_cost(&figures), a))
        }
    };
    Ok(match check {
        Ok(c) => match c.fit {
            Fit::Fits => Vec::new(),
            Fit::Tight => vec![format!("memory is tight: {c}")],
            Fit::DoesNotFit if ignore => vec![format!("taken with --ignore-headroom: {c}")],
            Fit::DoesNotFit => bail!(
                "{c}: no snapshot taken, so that the kernel does not kill the process mid-snapshot \
                 (--ignore-headroom takes it anyway)"
            ),
        },
        Err(e) => vec![format!("memory headroom not checked: {e}")],
    })
}
