//! `leakhound hunt`, `demo` and `snapshot`: the library's config from the flags, the
//! async runtime, progress on stderr, and the report on stdout (and in an HTML file).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use leakhound_hunt::{HuntConfig, HuntEvent, HuntOptions};
use leakhound_report::hunt::HuntJson;
use leakhound_report::terminal::terminal_safe;
use tokio::sync::mpsc;

use crate::cli::{AppOutput, DemoArgs, HuntArgs, ReportArgs};

/// `leakhound hunt`: runs the hunt and prints its report. Exit code 0 no leak, 1 leak.
pub fn run_hunt(args: HuntArgs, quiet: bool) -> Result<ExitCode> {
    let report = args.report.clone();
    let app_output = args.run.app_output.clone();
    hunt_and_report(args.options(), &report, app_output, quiet)
}

/// Where the app's lines go while a hunt runs.
enum AppLines {
    /// On stderr after `app| `.
    Show,
    /// Dropped: read and not shown.
    Hide,
    /// Into a file of the user's.
    File(std::io::BufWriter<std::fs::File>),
}

impl AppLines {
    /// `--app-output` as given; without it shown, or hidden with `--quiet`.
    fn open(choice: Option<AppOutput>, quiet: bool) -> Result<AppLines> {
        Ok(match choice {
            None if quiet => AppLines::Hide,
            None | Some(AppOutput::Show) => AppLines::Show,
            Some(AppOutput::Hide) => AppLines::Hide,
            Some(AppOutput::File(path)) => {
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options
                    .open(&path)
                    .with_context(|| format!("cannot write the app's output to {}", path.display()))?;
                AppLines::File(std::io::BufWriter::new(file))
            }
        })
    }
}

/// Runs a hunt with `options` and writes its report: text or JSON on stdout, and the
/// HTML page when asked.
fn hunt_and_report(
    options: HuntOptions,
    report_args: &ReportArgs,
    app_output: Option<AppOutput>,
    quiet: bool,
) -> Result<ExitCode> {
    let attached = options.attach.is_some();
    let app_lines = AppLines::open(app_output, quiet)?;
    let cfg = HuntConfig::from_options(options)?;
    let rt = crate::runtime()?;
    let outcome = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let ui = tokio::spawn(show_progress(rx, quiet, attached, app_lines));
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
    let mut report = HuntJson::from_outcome(&outcome);
    // The lint findings inside the functions the clusters' sources name.
    crate::lint_cmd::attach_to_clusters(&mut report.clusters);
    // The verdict first: a report file that cannot be written (a full disk) must not
    // cost the user, or a CI gate, the answer already computed.
    {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if report_args.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
            // Inside the JSON they are easy to miss (a wrong URL answered 404 throughout).
            #[allow(
                clippy::print_stderr,
                reason = "the warnings of a JSON report, for the person watching"
            )]
            if !quiet {
                for w in &outcome.warnings {
                    eprintln!("leakhound: warning: {}", terminal_safe(w));
                }
            }
        } else {
            let mut safe = crate::text_out(&mut out);
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
            Err(e) => eprintln!(
                "leakhound: warning: no HTML report: {} (the verdict above stands)",
                crate::error_text(&e)
            ),
        }
    }
    Ok(crate::verdict_exit_code(outcome.verdict))
}

/// Writes a file through a temporary file in the same folder, renamed over `path` when
/// complete and synced; on any failure the temporary file is removed and `path` is left
/// as it was. The temporary file gets a fresh random name, created with `O_EXCL` (it never
/// follows or reuses a file someone else planted in a shared folder) and mode 0600.
///
/// # Errors
/// The folder cannot take a new file, `f` fails, or the rename fails; each names `path`.
pub(crate) fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
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
/// (logs, CI); the app's lines where `app_lines` says. Returns the snapshots taken.
/// `attached`: the app was running already.
async fn show_progress(
    mut rx: mpsc::UnboundedReceiver<HuntEvent>,
    quiet: bool,
    attached: bool,
    mut app_lines: AppLines,
) -> Vec<PathBuf> {
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
            HuntEvent::AppOutput(l) => match &mut app_lines {
                AppLines::Show => {
                    let line = format!("app| {}", terminal_safe(&l.line));
                    // With --quiet there is no bar to print above.
                    #[allow(clippy::print_stderr, reason = "the app's output, asked for with --quiet")]
                    if quiet {
                        eprintln!("{line}");
                    } else {
                        say(line);
                    }
                }
                AppLines::Hide => {}
                AppLines::File(w) => {
                    let _ = writeln!(w, "{}", l.line);
                }
            },
            HuntEvent::Started { pid } if attached => say(format!("leakhound: attached to pid {pid}")),
            HuntEvent::Started { pid } => say(format!("leakhound: app started, pid {pid}")),
            HuntEvent::Step(s) => {
                // A wait for pending timers may be long: said on its own line too.
                if s.starts_with("settle: ") {
                    say(format!("leakhound: {s}"));
                }
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
            HuntEvent::Followed(i) => say(format!("leakhound: following {i}")),
            HuntEvent::Exited(i) => say(format!("leakhound: {i} exited")),
            _ => {}
        }
    }
    bar.finish_and_clear();
    if let AppLines::File(w) = &mut app_lines {
        let _ = w.flush();
    }
    taken
}

/// The bundled leaky server of `leakhound demo`.
pub const DEMO_SERVER: &str = include_str!("../assets/demo-server.js");

/// `leakhound demo`: hunts the bundled leaky server; exit code 0 when its leak is found.
/// The server's file stays beside the report (`leakhound-demo/shop-server.js` next to
/// `leakhound-demo.html`), where the report's source locations point.
pub fn run_demo(mut args: DemoArgs, quiet: bool) -> Result<ExitCode> {
    if args.run.out_dir.is_none() {
        args.run.out_dir = Some(PathBuf::from("leakhound-demo"));
    }
    let html = args
        .report
        .html
        .get_or_insert_with(|| PathBuf::from("leakhound-demo.html"));
    let dir = html
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("leakhound-demo");
    // As private as a snapshot folder: it may become one.
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.recursive(true).create(&dir) {
        Ok(()) => {}
        Err(e) => return Err(anyhow::anyhow!("cannot create {}: {e}", dir.display())),
    }
    let server = dir.join("shop-server.js");
    write_atomically(&server, |w| w.write_all(DEMO_SERVER.as_bytes()))?;
    let server = std::fs::canonicalize(&server).with_context(|| format!("cannot find {}", server.display()))?;
    let report = args.report.clone();
    let app_output = args.run.app_output.clone();
    let options = args.options(vec!["node".into(), server.into_os_string()]);
    // The demo server leaks on purpose: finding it is success (exit 0); a demo that
    // finds nothing, or fails, is not.
    let code = hunt_and_report(options, &report, app_output, quiet)?;
    if code == ExitCode::from(1) {
        return Ok(ExitCode::SUCCESS);
    }
    // Not an error of the run: its report is printed already (with --json, the one JSON
    // document on stdout).
    #[allow(clippy::print_stderr, reason = "why the demo's exit code is 2")]
    {
        eprintln!("leakhound: the demo's leak was not found (see the report above)");
    }
    Ok(ExitCode::from(2))
}

/// The session of worker thread `thread_id` of `process` (`NodeWorker`), waiting up to
/// 5 s for node to announce it.
async fn connect_thread(
    process: &leakhound_inspector::Session,
    thread_id: u32,
) -> Result<leakhound_inspector::Session> {
    process
        .enable_worker_threads()
        .await
        .with_context(|| format!("pid {}: its worker threads cannot be reached", process.pid()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        for info in process.new_worker_threads() {
            if info.thread_id == Some(thread_id) {
                return Ok(process.connect_worker_thread(&info).await?);
            }
            seen.extend(info.thread_id);
        }
        if tokio::time::Instant::now() >= deadline {
            seen.sort_unstable();
            let have = if seen.is_empty() {
                "it has no worker threads".to_owned()
            } else {
                format!(
                    "its worker threads are {}",
                    seen.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                )
            };
            bail!("pid {} has no worker thread {thread_id}: {have}", process.pid());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `leakhound snapshot`: one snapshot of a running process after a GC, or `--count` of
/// them `--interval` apart in one inspector session (V8's object ids stay the same, so
/// `diff` and `leaks` can compare them). Each file is printed when written; on leaving,
/// the inspector `--pid` opened is closed again, and the command says so.
pub fn run_snapshot(args: crate::cli::SnapshotArgs, quiet: bool) -> Result<ExitCode> {
    let crate::cli::SnapshotArgs {
        pid,
        inspect,
        thread,
        output: out,
        count,
        interval,
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
        let (process_session, _lock) = session;
        // `--thread N`: the worker thread's own session, carried by the process's.
        let worker = match thread {
            Some(n) => Some(connect_thread(&process_session, n).await?),
            None => None,
        };
        let session = worker.as_ref().unwrap_or(&process_session);
        let target = process_session.pid();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let paths = leakhound_hunt::capture::snapshot_paths(out.as_deref(), count, target, stamp);
        if let Some(dir) = paths[0].parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
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
        let say = |line: String| {
            if quiet {
                return;
            }
            if bar.is_hidden() {
                #[allow(clippy::print_stderr, reason = "notes when stderr is not a terminal")]
                {
                    eprintln!("{line}");
                }
            } else {
                bar.println(line);
            }
        };
        let mut written: Vec<PathBuf> = Vec::new();
        let work = async {
            let start = tokio::time::Instant::now();
            let mut marker = None;
            for (i, path) in paths.iter().enumerate() {
                if i > 0 {
                    let due = start + interval * i as u32;
                    bar.set_message(format!("snapshot {} of {count} at +{:?}", i + 1, interval * i as u32));
                    tokio::time::sleep_until(due).await;
                }
                let of = if count > 1 {
                    format!(" {} of {count}", i + 1)
                } else {
                    String::new()
                };
                bar.set_message(format!("garbage collection before snapshot{of}"));
                session.collect_garbage().await?;
                bar.set_message(format!("memory headroom before snapshot{of}"));
                for w in leakhound_hunt::capture::snapshot_headroom(session, pid, ignore_headroom)
                    .await
                    .map_err(|f| anyhow::anyhow!("{f}"))?
                {
                    say(format!("leakhound: warning: {w}"));
                }
                let b = bar.clone();
                let of2 = of.clone();
                let file = session
                    .take_heap_snapshot(path, move |bytes, _| {
                        b.set_message(format!(
                            "snapshot{of2}: {} received",
                            leakhound_report::format::bytes(bytes)
                        ));
                    })
                    .await?;
                #[allow(clippy::print_stdout, reason = "the command's result, each file as it is written")]
                {
                    println!(
                        "{} ({}, {} ms)",
                        file.path.display(),
                        leakhound_report::format::bytes(file.bytes),
                        file.duration_ms
                    );
                }
                written.push(file.path);
                // Another inspector client ending its session meanwhile resets V8's ids.
                if count > 1 {
                    let now = session.object_id_marker().await.ok();
                    match (&marker, now) {
                        (None, now) => marker = now,
                        (Some(m), Some(now)) if *m != now => {
                            say(format!(
                                "leakhound: warning: V8's object ids were reset before snapshot {} (another inspector client, such as DevTools, ended its session): it cannot be compared with the ones before it",
                                i + 1
                            ));
                            marker = Some(now);
                        }
                        _ => {}
                    }
                }
            }
            anyhow::Ok(())
        };
        // A termination signal drops the snapshot in progress (its partial file is removed)
        // and leaves the process running.
        let r = tokio::select! {
            r = work => r,
            signal = crate::signals::termination() => Err(anyhow::anyhow!("interrupted ({signal})")),
        };
        bar.finish_and_clear();
        if let Some(w) = &worker {
            w.close().await;
        }
        let opened = process_session.closes_inspector();
        let inspector = process_session.url().to_owned();
        process_session.close().await;
        if opened {
            say(leakhound_hunt::capture::inspector_closed_note(target, &inspector).await);
        } else if pid.is_some() {
            say(format!(
                "leakhound: the inspector of pid {target} was already open: left open, as found"
            ));
        }
        if let Err(e) = r {
            let kept = if written.is_empty() {
                "no snapshot was written".to_owned()
            } else {
                let list: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                format!("snapshots kept: {}", list.join(", "))
            };
            return Err(anyhow::anyhow!("{}; {kept}", crate::error_text(&e)));
        }
        if count == 1 {
            say(format!(
                "leakhound: V8 resets its object ids when an inspector session ends: to compare snapshots with diff or leaks, take them in one run (leakhound snapshot --pid {target} --count 3 --interval 60s)"
            ));
        }
        Ok(ExitCode::SUCCESS)
    })
}
