//! `leakhound watch`: the memory watch of one app or several running processes, and of
//! every isolate of each (cluster workers, other node children, worker threads). While it
//! runs: a live view on a terminal (one refreshing row per isolate), or a plain line per
//! second per isolate on stderr, naming it, when stdout is not a terminal; with `--metrics-addr`, the
//! agent's `/metrics` and `/health`. The verdict goes to stdout at the end.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakhound_agent::{AgentServer, Board, HealthConfig, SharedBoard};
use leakhound_hunt::capture_hook::{CaptureEvent, CaptureHook};
use leakhound_hunt::evidence::CaptureConfig;
use leakhound_hunt::{WatchConfig, WatchEvent};
use leakhound_report::terminal::terminal_safe;
use leakhound_report::watch::{WatchJson, target_row, watch_line, worst_outcome, write_watch_json, write_watch_texts};
use tokio::sync::mpsc;

use crate::cli::WatchArgs;

/// Runs the watch until its duration is up, every app has exited or a termination signal;
/// exit code 1 when a post-GC floor rises, 0 when every floor is shown flat, 3 when
/// inconclusive (the worst of the targets), 2 for an error (a taken `--metrics-addr` among
/// them, before any app is touched).
pub fn run_watch(args: &WatchArgs, quiet: bool) -> Result<ExitCode> {
    let mut cfg = WatchConfig::from_options(args.options())?;
    let capture = CaptureConfig::from_options(&args.capture.options(!args.attach.is_empty()))?;
    // Bound first: a taken port fails before any app is started or attached to.
    let server = args.metrics_addr.map(AgentServer::bind).transpose()?;
    let health = HealthConfig {
        warn: args.warn_heap,
        critical: args.critical_heap,
    };
    let app = args
        .app_name
        .clone()
        .unwrap_or_else(|| default_app_name(&args.command, &args.attach));
    let board = Board::shared(app.clone());
    // The capture events' receiver ends when the hook (its only sender) is dropped with the
    // watch; with no capture asked for, the sender goes now.
    let (capture_tx, capture_rx) = mpsc::unbounded_channel();
    match capture {
        Some(c) => cfg.hook = Some(std::sync::Arc::new(CaptureHook::new(c, Some(app), capture_tx))),
        None => drop(capture_tx),
    }
    let stop = cfg.stop.clone();
    let several = cfg.targets.len() > 1;
    let live_view = !quiet && !args.json && std::io::stdout().is_terminal();
    let rt = crate::runtime()?;
    let outcomes = rt.block_on(async move {
        if let Some(server) = server {
            // Said even with --quiet: with port 0 it is the only way to know the port.
            let addr = server.local_addr();
            say(&format!(
                "leakhound: metrics on http://{addr}/metrics, health on http://{addr}/health"
            ));
            if !quiet && !addr.ip().is_loopback() {
                say("leakhound: note: that address is not loopback: other hosts can read the metrics and health (figures only, no control)");
            }
            let board = board.clone();
            tokio::spawn(async move {
                if let Err(e) = server.serve(board, health).await {
                    say(&format!("leakhound: the metrics server stopped: {e}"));
                }
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let evidence = tokio::spawn(take_captures(capture_rx, board.clone(), quiet));
        let printer = tokio::spawn(show_live(rx, board, quiet, several, live_view));
        // A termination signal ends the watch with its verdict so far (a started app is
        // stopped, an attached one left running).
        let ctrl_c = tokio::spawn(async move {
            crate::signals::termination().await;
            stop.store(true, Ordering::SeqCst);
        });
        let r = leakhound_hunt::watch(cfg, tx).await;
        ctrl_c.abort();
        let _ = printer.await;
        let _ = evidence.await;
        r
    })?;
    let Some(worst) = worst_outcome(&outcomes) else {
        bail!("the watch had no target");
    };
    let code = crate::verdict_exit_code(worst.verdict);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        if let Some(doc) = WatchJson::from_outcomes(&outcomes) {
            write_watch_json(&doc, &mut out)?;
        }
    } else {
        let mut safe = crate::text_out(&mut out);
        write_watch_texts(&outcomes, &mut safe)?;
        safe.flush()?;
    }
    out.flush()?;
    Ok(code)
}

/// Takes in what evidence capture did: the board counts it (metrics, `/health`), each
/// finished episode's report is written beside its files (`report.json`, `report.txt`,
/// `report.html`), and a line goes to stderr for the person watching.
async fn take_captures(mut rx: mpsc::UnboundedReceiver<CaptureEvent>, board: SharedBoard, quiet: bool) {
    use leakhound_report::episode::{EpisodeJson, write_episode_html, write_episode_text};
    while let Some(e) = rx.recv().await {
        board.write().unwrap_or_else(PoisonError::into_inner).apply_capture(&e);
        let line = match &e {
            CaptureEvent::Started { key, dir, trigger } => {
                format!(
                    "evidence: {}: {trigger}; capturing into {}",
                    key_label(key),
                    dir.display()
                )
            }
            CaptureEvent::Taken { key, path, bytes } => format!(
                "evidence: {}: snapshot {} ({:.1} MB)",
                key_label(key),
                path.display(),
                *bytes as f64 / 1e6
            ),
            CaptureEvent::Skipped { key, reason } => {
                format!(
                    "evidence: {}: snapshot skipped ({}): {reason}",
                    key_label(key),
                    reason.label()
                )
            }
            CaptureEvent::Warning(w) => format!("evidence: warning: {w}"),
            CaptureEvent::Finished(o) => {
                let doc = EpisodeJson::from_outcome(o);
                let mut written = Vec::new();
                let json = |w: &mut dyn Write| -> std::io::Result<()> {
                    serde_json::to_writer_pretty(&mut *w, &doc)?;
                    writeln!(w)
                };
                for (name, write) in [
                    ("report.json", &json as &dyn Fn(&mut dyn Write) -> std::io::Result<()>),
                    ("report.txt", &|w: &mut dyn Write| write_episode_text(&doc, w)),
                    ("report.html", &|w: &mut dyn Write| write_episode_html(&doc, w)),
                ] {
                    let path = o.dir.join(name);
                    match crate::hunt_cmd::write_atomically(&path, |w| write(w)) {
                        Ok(()) => written.push(name),
                        Err(err) => say(&format!("evidence: warning: {}: {err:#}", path.display())),
                    }
                }
                format!(
                    "evidence: {}: {} — {}; report in {}",
                    key_label(&leakhound_hunt::TargetKey {
                        pid: o.pid,
                        thread_id: o.thread_id
                    }),
                    match doc.verdict {
                        leakhound_report::hunt::VerdictJson::Leak => "LEAK",
                        leakhound_report::hunt::VerdictJson::NoLeak => "NO LEAK",
                        leakhound_report::hunt::VerdictJson::Inconclusive => "INCONCLUSIVE",
                    },
                    doc.top_holder
                        .as_deref()
                        .map_or_else(|| doc.reason.clone(), |h| format!("the leak finder names {h}")),
                    o.dir.join("report.html").display()
                )
            }
            _ => continue,
        };
        if !quiet {
            say(&terminal_safe(&line));
        }
    }
}

/// How evidence lines name an isolate: `pid 4711`, `worker thread 1 of pid 4711`.
fn key_label(key: &leakhound_hunt::TargetKey) -> String {
    match key.thread_id {
        Some(t) => format!("worker thread {t} of pid {}", key.pid),
        None => format!("pid {}", key.pid),
    }
}

/// The `app` label when `--app-name` is not given: the script's name without its
/// extension (`node server.js` → `server`), else the program's; for `--attach`, the same
/// read from the first process's command line.
fn default_app_name(command: &[std::ffi::OsString], attach: &[u32]) -> String {
    let args: Vec<String> = if let Some(pid) = attach.first() {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        command.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    };
    let stem = |a: &str| {
        Path::new(a)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let script = args.iter().skip(1).find(|a| !a.starts_with('-')).map(|a| stem(a));
    script
        .or_else(|| args.first().map(|a| stem(a)))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}

/// Takes in the watch's events: each updates the board (what `/metrics` and `/health`
/// serve), and is shown: in the live view (one refreshing row per isolate, on stdout), or
/// as plain lines on stderr, at most one a second per isolate, each naming its isolate
/// when there are several.
async fn show_live(
    mut rx: mpsc::UnboundedReceiver<WatchEvent>,
    board: SharedBoard,
    quiet: bool,
    several: bool,
    live_view: bool,
) {
    let mut view = live_view.then(LiveView::new);
    let mut last_print: HashMap<usize, Instant> = HashMap::new();
    // Several isolates (several apps, or isolates found below one): lines name theirs.
    let mut many = several;
    while let Some(e) = rx.recv().await {
        board.write().unwrap_or_else(PoisonError::into_inner).apply(&e);
        many |= matches!(e, WatchEvent::Followed { .. });
        if quiet {
            continue;
        }
        match &e {
            WatchEvent::Restarted {
                old_pid,
                new_pid,
                restarts,
                ..
            } => say(&format!(
                "leakhound: restarted the app (--restart-above): pid {old_pid} stopped, now watching pid {new_pid} ({restarts} restart{} so far)",
                if *restarts == 1 { "" } else { "s" }
            )),
            WatchEvent::Unfollowed { isolate, reason, .. } => {
                say(&terminal_safe(&format!(
                    "leakhound: warning: {isolate} is not watched: {reason}"
                )));
            }
            WatchEvent::Warning(w) => say(&terminal_safe(&format!("leakhound: warning: {w}"))),
            _ => {}
        }
        if let Some(view) = view.as_mut() {
            view.show(&e);
            continue;
        }
        match e {
            WatchEvent::Started { pid, attached, .. } => say(&format!(
                "leakhound: watching pid {pid}{} (Ctrl-C to stop)",
                if attached { ", attached" } else { "" }
            )),
            WatchEvent::Followed { isolate, .. } => say(&format!("leakhound: watching {isolate}")),
            WatchEvent::AppOutput(l) => say(&format!("app| {}", terminal_safe(&l.line))),
            WatchEvent::Status(st) if !st.up => {
                last_print.remove(&st.index);
                if let Some(why) = st.ended.as_deref().filter(|w| *w != "stopped" && *w != "time up") {
                    say(&format!("leakhound: {}: {why}", isolate_label(&st)));
                }
            }
            WatchEvent::Status(st) => {
                let due = last_print
                    .get(&st.index)
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if due && let Some(s) = st.last {
                    last_print.insert(st.index, Instant::now());
                    let line = watch_line(&s, &st.floor);
                    say(&if many {
                        format!("{}: {line}", isolate_label(&st))
                    } else {
                        line
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(view) = view {
        view.finish();
    }
}

/// How lines name an isolate: `pid 4700` for an app's own process, else in words
/// (`cluster worker 2, pid 4711`, `worker thread 1 of pid 4711`).
fn isolate_label(st: &leakhound_hunt::TargetStatus) -> String {
    if st.isolate.kind == leakhound_hunt::IsolateKind::Main {
        format!("pid {}", st.key.pid)
    } else {
        st.isolate.to_string()
    }
}

/// Rows of isolates found below an app that ended kept in the live view (the newest).
const ENDED_ROWS_KEPT: usize = 4;

/// The live view on a terminal: one row per isolate, redrawn in place (indicatif), with
/// the app's output and the agent's notes printed above the rows.
struct LiveView {
    multi: MultiProgress,
    rows: BTreeMap<usize, ProgressBar>,
    /// Rows of ended isolates found below an app, oldest first.
    ended: VecDeque<usize>,
}

impl LiveView {
    fn new() -> LiveView {
        LiveView {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            rows: BTreeMap::new(),
            ended: VecDeque::new(),
        }
    }

    fn row(&mut self, index: usize) -> &ProgressBar {
        let multi = &self.multi;
        self.rows.entry(index).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar
        })
    }

    fn note(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    fn show(&mut self, e: &WatchEvent) {
        match e {
            WatchEvent::Started { target, pid, attached } => {
                self.row(*target).set_message(format!(
                    "pid {pid}  {} (waiting for the first sample)",
                    if *attached { "attached" } else { "started" }
                ));
            }
            WatchEvent::Followed { index, isolate, .. } => {
                self.row(*index)
                    .set_message(format!("{isolate}  (waiting for the first sample)"));
            }
            WatchEvent::AppOutput(l) => self.note(&format!("app| {}", terminal_safe(&l.line))),
            WatchEvent::Status(st) => {
                let row = terminal_safe(&target_row(st)).into_owned();
                self.row(st.index).set_message(row);
                if let Some(why) = st.ended.as_deref().filter(|w| *w != "stopped" && *w != "time up") {
                    self.note(&terminal_safe(&format!("leakhound: {}: {why}", isolate_label(st))));
                }
                if !st.up && st.isolate.kind != leakhound_hunt::IsolateKind::Main {
                    self.ended.push_back(st.index);
                    while self.ended.len() > ENDED_ROWS_KEPT {
                        if let Some(bar) = self.ended.pop_front().and_then(|i| self.rows.remove(&i)) {
                            bar.finish_and_clear();
                            self.multi.remove(&bar);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Clears the rows, so the verdict is printed in their place.
    fn finish(self) {
        for bar in self.rows.values() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

fn say(line: &str) {
    #[allow(clippy::print_stderr, reason = "live progress goes to stderr")]
    {
        eprintln!("{line}");
    }
}
