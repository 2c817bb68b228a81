//! `leakhound watch`: the memory watch of one app or several running processes, a live line
//! per second on stderr and the verdict on stdout at the end.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use leakhound_hunt::{WatchConfig, WatchEvent};
use leakhound_report::terminal::{TerminalSafe, terminal_safe};
use leakhound_report::watch::{WatchJson, watch_line, worst_outcome, write_watch_json, write_watch_texts};
use tokio::sync::mpsc;

use crate::cli::WatchArgs;

/// Runs the watch until its duration is up, every app has exited or a termination signal;
/// exit code 1 when a post-GC floor rises, 0 when every floor is shown flat, 3 when
/// inconclusive (the worst of the targets).
pub fn run_watch(args: &WatchArgs, quiet: bool) -> Result<ExitCode> {
    let cfg = WatchConfig::from_options(args.options())?;
    let stop = cfg.stop.clone();
    let several = cfg.targets.len() > 1;
    let rt = crate::runtime()?;
    let outcomes = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let printer = tokio::spawn(show_live(rx, quiet, several));
        // A termination signal ends the watch with its verdict so far (a started app is
        // stopped, an attached one left running).
        let ctrl_c = tokio::spawn(async move {
            crate::signals::termination().await;
            stop.store(true, Ordering::SeqCst);
        });
        let r = leakhound_hunt::watch(cfg, tx).await;
        ctrl_c.abort();
        let _ = printer.await;
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
        let mut safe = TerminalSafe::new(&mut out);
        write_watch_texts(&outcomes, &mut safe)?;
        safe.flush()?;
    }
    out.flush()?;
    Ok(code)
}

/// Prints the app's output and, at most once a second per target, the live memory line.
async fn show_live(mut rx: mpsc::UnboundedReceiver<WatchEvent>, quiet: bool, several: bool) {
    let mut last_print: Vec<Instant> = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            WatchEvent::Started { pid, attached, .. } if !quiet => say(&format!(
                "leakhound: watching pid {pid}{} (Ctrl-C to stop)",
                if attached { ", attached" } else { "" }
            )),
            WatchEvent::AppOutput(l) if !quiet => say(&format!("app| {}", terminal_safe(&l.line))),
            WatchEvent::Ended { pid, reason, .. } if !quiet && reason != "stopped" && reason != "time up" => {
                say(&format!("leakhound: pid {pid}: {reason}"));
            }
            WatchEvent::Status(st) if !quiet && st.up => {
                if last_print.len() <= st.index {
                    last_print.resize(st.index + 1, Instant::now() - Duration::from_secs(10));
                }
                if last_print[st.index].elapsed() >= Duration::from_secs(1)
                    && let Some(s) = st.last
                {
                    last_print[st.index] = Instant::now();
                    let line = watch_line(&s, &st.floor);
                    say(&if several {
                        format!("pid {}: {line}", st.key.pid)
                    } else {
                        line
                    });
                }
            }
            _ => {}
        }
    }
}

fn say(line: &str) {
    #[allow(clippy::print_stderr, reason = "live progress goes to stderr")]
    {
        eprintln!("{line}");
    }
}
