//! The `leakhound` command line: flag definitions (`cli`) and glue. It opens files
//! (`open`), draws progress on stderr, picks output formats and destinations, and maps
//! results to exit codes (0 no leak / success, 1 leak found, 2 error, 3 inconclusive); the
//! crates check
//! settings, compute and render.

mod cli;
mod hunt_cmd;
mod lint_cmd;
mod offline;
mod open;
mod signals;
mod watch_cmd;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use leakhound_report::terminal::{Highlight, TerminalSafe, color_enabled, terminal_safe};

/// Whether text reports on stdout are coloured, decided once from `--color`, whether
/// stdout is a terminal, `NO_COLOR` and `TERM`.
static STDOUT_COLOR: OnceLock<bool> = OnceLock::new();

/// The way every text report goes to `out`: control characters from snapshots or the app
/// made visible ([`TerminalSafe`]), then coloured when stdout takes colour ([`Highlight`]).
pub(crate) fn text_out<W: Write>(out: W) -> TerminalSafe<Highlight<W>> {
    TerminalSafe::new(Highlight::new(out, STDOUT_COLOR.get().copied().unwrap_or(false)))
}

/// Keeps glibc's `M_MMAP_THRESHOLD` at its 128 KiB default for the whole run (called
/// before any thread exists).
///
/// glibc raises the threshold to the size of each mmap'd block freed (up to 32 MiB), so
/// once the analysis frees one per-node array, later arrays of that size come from the
/// `brk` heap, whose freed pages stay resident: on a 100 MB snapshot that kept ~7 MB
/// of dead arrays in the peak RSS. Setting the threshold explicitly turns the dynamic
/// adjustment off (mallopt(3)), so every large array is mapped and unmapped on its own.
///
/// The price is a fresh, zeroed mapping (page faults) for every array where the heap
/// would have reused freed pages: worth it where one snapshot's peak RSS is the point
/// (`summary`, `stats`, `retainers`), not in the multi-snapshot commands, whose two
/// threads load snapshots side by side and measured ~10 % slower with it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "one libc call, before any thread or allocation of note")]
fn fix_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it takes plain integers, is
    // called before any other thread exists, and a failure (0) just keeps the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Elsewhere the allocator's defaults stay.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version are not errors; a bad argument with --json is one.
            if e.use_stderr() && json_in_args() {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                print_error_json(first.strip_prefix("error: ").unwrap_or(first));
            }
            e.exit()
        }
    };
    let json = cli.command.json();
    let _ = STDOUT_COLOR.set(color_enabled(
        cli.color.into(),
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    ));
    if matches!(
        cli.command,
        Command::Summary { .. } | Command::Stats { .. } | Command::Retainers { .. }
    ) {
        fix_mmap_threshold();
    }
    match set_up_thread_pool(cli.threads).and_then(|()| run(cli)) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr, reason = "the one place errors are printed")]
            {
                // Errors can quote the snapshot or the app: no control characters reach the
                // terminal.
                eprintln!("leakhound: {}", terminal_safe(&error_text(&e)));
            }
            // A tool reading --json's stdout gets an answer, not nothing.
            if json {
                print_error_json(&error_text(&e));
            }
            ExitCode::from(2)
        }
    }
}

/// `e` and its causes, `: `-separated, a cause whose text the message already holds left
/// out: many errors spell out their source (`invalid url: …` wrapping the load driver's
/// `invalid url: …`), and `{e:#}` printed such a text twice.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// Whether `--json` is among the arguments (before a `--`), for errors clap finds before
/// there is a command to ask.
fn json_in_args() -> bool {
    std::env::args_os().take_while(|a| a != "--").any(|a| a == "--json")
}

/// The error object of a command given `--json`, on stdout.
fn print_error_json(message: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = leakhound_report::error::write_error_json(message, &mut out);
    let _ = out.flush();
}

/// Sizes rayon's global pool, the one pool every crate's parallel work runs on:
/// `threads` workers, or one per core when `None`.
fn set_up_thread_pool(threads: Option<u16>) -> Result<()> {
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("leakhound-{i}"));
    if let Some(n) = threads {
        builder = builder.num_threads(usize::from(n));
    }
    builder
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start the thread pool: {e}"))
}

/// The async runtime of the live commands (the inspector's WebSocket, the load driver):
/// two worker threads; analyses run on the rayon pool.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The exit code of a verdict: 0 no leak, 1 leak, 3 inconclusive (2 is an error).
pub(crate) fn verdict_exit_code(v: leakhound_hunt::Verdict) -> ExitCode {
    match v {
        leakhound_hunt::Verdict::NoLeak => ExitCode::SUCCESS,
        leakhound_hunt::Verdict::Leak => ExitCode::from(1),
        leakhound_hunt::Verdict::Inconclusive => ExitCode::from(3),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs `f` on `out`, through [`TerminalSafe`] unless the output is JSON (which escapes
/// control characters itself): text reports quote class names, property names and
/// strings from snapshots, which may hold terminal escape sequences.
fn text_safe<T>(out: &mut dyn Write, json: bool, f: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    if json {
        return f(out);
    }
    let mut safe = text_out(out);
    let r = f(&mut safe)?;
    safe.flush()?;
    Ok(r)
}

/// Runs one subcommand; its results go to stdout, progress and warnings to stderr.
fn run(cli: Cli) -> Result<ExitCode> {
    let ui = open::Ui { quiet: cli.quiet };
    // Not locked for the whole command: the live commands write stdout from other threads
    // (the watch's live view), which a lock held here would block for ever.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let code = match cli.command {
        Command::Hunt(args) => return hunt_cmd::run_hunt(args, cli.quiet),
        Command::Demo(args) => return hunt_cmd::run_demo(args, cli.quiet),
        Command::Watch(args) => return watch_cmd::run_watch(&args, cli.quiet),
        Command::Snapshot(args) => return hunt_cmd::run_snapshot(args, cli.quiet),
        Command::Lint(args) => return lint_cmd::run_lint(&args),
        Command::Summary { file, top, sort, json } => {
            text_safe(&mut out, json, |w| offline::summary(&file, top, sort, json, ui, w))?;
            ExitCode::SUCCESS
        }
        Command::Stats { file, json } => {
            text_safe(&mut out, json, |w| offline::stats(&file, json, ui, w))?;
            ExitCode::SUCCESS
        }
        Command::Diff {
            base,
            current,
            top,
            sort,
            json,
        } => {
            text_safe(&mut out, json, |w| {
                offline::diff(&base, &current, top, sort, json, ui, w)
            })?;
            ExitCode::SUCCESS
        }
        Command::Retainers {
            file,
            id,
            class,
            depth,
            max_retainers,
            instances,
            json,
        } => {
            let pick = match (id, class) {
                (Some(id), _) => offline::Pick::Id(id),
                (None, Some(name)) => offline::Pick::Class { name, instances },
                (None, None) => anyhow::bail!("give --id or --class"),
            };
            text_safe(&mut out, json, |w| {
                offline::retainers(&file, pick, depth, max_retainers, json, ui, w)
            })?;
            ExitCode::SUCCESS
        }
        Command::Leaks {
            snapshots,
            requests_per_step,
            min_growth,
            json,
        } => text_safe(&mut out, json, |w| {
            offline::leaks(&snapshots, requests_per_step, min_growth, json, ui, w)
        })?,
    };
    out.flush()?;
    Ok(code)
}
