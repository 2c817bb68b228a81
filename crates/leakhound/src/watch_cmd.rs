//! `leakhound watch`: the memory watch alone, a live line per second on stderr and the
//! verdict on stdout at the end.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use leakhound_hunt::{WatchConfig, WatchEvent};
use leakhound_report::terminal::terminal_safe;
use leakhound_report::watch::{WatchJson, watch_line, write_watch_json, write_watch_text};
use tokio::sync::mpsc;

use crate::cli::WatchArgs;

/// Runs the watch until its duration is up, the app exits or a termination signal; exit
/// code 1 when the post-GC floor rises, 0 when it is shown flat, 3 when inconclusive.
pub fn run_watch(args: &WatchArgs, quiet: bool) -> Result<ExitCode> {
    let cfg = WatchConfig::from_options(args.options())?;
    let stop = cfg.stop.clone();
    let rt = crate::runtime()?;
    let outcome = rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let printer = tokio::spawn(show_live(rx, quiet));
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        write_watch_json(&WatchJson::from_outcome(&outcome), &mut out)?;
    } else {
        let mut safe = crate::text_out(&mut out);
        write_watch_text(&outcome, &mut safe)?;
        safe.flush()?;
    }
    out.flush()?;
    Ok(crate::verdict_exit_code(outcome.verdict))
}

/// Prints the app's output and, at most once a second, the live memory line.
async fn show_live(mut rx: mpsc::UnboundedReceiver<WatchEvent>, quiet: bool) {
    let mut last_print = Instant::now() - Duration::from_secs(10);
    while let Some(e) = rx.recv().await {
        match e {
            WatchEvent::Started { pid } if !quiet => say(&format!("leakhound: watching pid {pid} (Ctrl-C to stop)")),
            WatchEvent::AppOutput(l) if !quiet => say(&format!("app| {}", terminal_safe(&l.line))),
            WatchEvent::Sample(s, floor) if !quiet && last_print.elapsed() >= Duration::from_secs(1) => {
                last_print = Instant::now();
                say(&watch_line(&s, &floor));
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
