//! [`run_external`]: load made by a user command (autocannon, k6, a shell script...).

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::LoadError;

/// How many of the last output lines [`LoadError::ExternalFailed`] keeps.
pub const EXTERNAL_TAIL_LINES: usize = 20;

/// Output lines longer than this many bytes are cut (and end with `…`).
const MAX_LINE_BYTES: usize = 16 * 1024;

/// After the command exits, how long to keep reading output still buffered in its pipes
/// (a background process it left behind may hold them open forever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Load produced by an external command instead of the built-in HTTP driver.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalLoad {
    /// Shell command line, run as `sh -c <command>` in the current directory.
    pub command: String,
    /// Units of load one run of the command makes (for example requests, or "iterations"),
    /// as declared by the user; copied into [`ExternalReport::units`].
    pub units: u64,
    /// Extra environment variables `(name, value)` for the command, on top of the inherited
    /// environment.
    pub env: Vec<(String, String)>,
}

/// The outcome of one successful [`run_external`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExternalReport {
    /// The exit code (always `Some(0)` for a report: failures are errors).
    pub exit_code: Option<i32>,
    /// Wall-clock time from spawning the command to its exit, in milliseconds.
    pub elapsed_ms: f64,
    /// Units of load the run made, as declared in [`ExternalLoad::units`] (not measured).
    pub units: u64,
}

/// Runs `load.command` with `sh -c`, forwarding every line it writes to stdout or stderr to
/// `output` (without the line ending; invalid UTF-8 replaced by `�`; stdout and stderr lines
/// interleaved as they arrive), and waits for it to exit.
///
/// The command gets no stdin. On Unix it runs in its own process group, so that everything
/// it started can be killed together (see cancel safety); as a consequence a terminal's
/// Ctrl-C does not reach it directly: the caller's signal handling should drop this future.
/// A closed `output` receiver is not an error: lines are then dropped.
///
/// # Errors
///
/// - [`LoadError::InvalidSpec`] (field `command`) if the command is empty.
/// - [`LoadError::Spawn`] if `sh` cannot be started.
/// - [`LoadError::ExternalIo`] if waiting for the process fails.
/// - [`LoadError::ExternalFailed`] if it exits with a non-zero code or is killed by a signal;
///   it carries the code and the last [`EXTERNAL_TAIL_LINES`] lines of output.
///
/// # Cancel safety
///
/// Safe to drop: dropping the future kills the command's whole process group with `SIGKILL`
/// (the `sh` itself with it) and stops reading its output.
pub async fn run_external(load: &ExternalLoad, output: UnboundedSender<String>) -> Result<ExternalReport, LoadError> {
    if load.command.trim().is_empty() {
        return Err(LoadError::invalid("command", "the command is empty"));
    }
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&load.command)
        .envs(load.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);

    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| LoadError::Spawn {
        command: load.command.clone(),
        source,
    })?;
    let mut group = GroupKiller::new(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let tail = Mutex::new(VecDeque::with_capacity(EXTERNAL_TAIL_LINES));
    let readers = async {
        tokio::join!(
            forward_lines(stdout, &output, &tail),
            forward_lines(stderr, &output, &tail)
        )
    };
    tokio::pin!(readers);
    let mut drained = false;
    let status = {
        let wait = child.wait();
        tokio::pin!(wait);
        tokio::select! {
            status = &mut wait => status,
            _ = &mut readers => {
                drained = true;
                wait.await
            }
        }
    };
    // Reaped: the process group id may be reused from now on, never signal it again.
    group.disarm();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !drained {
        let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, &mut readers).await;
    }
    let status = status.map_err(|source| LoadError::ExternalIo {
        command: load.command.clone(),
        source,
    })?;

    if status.success() {
        Ok(ExternalReport {
            exit_code: status.code(),
            elapsed_ms,
            units: load.units,
        })
    } else {
        let last_lines = tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default();
        Err(LoadError::ExternalFailed {
            command: load.command.clone(),
            code: status.code(),
            status: status.to_string(),
            last_lines,
        })
    }
}

/// Reads `reader` line by line (lines capped at [`MAX_LINE_BYTES`]) until end of file or an
/// error, sending each to `output` and keeping the last ones in `tail`.
async fn forward_lines<R: AsyncRead + Unpin>(
    reader: Option<R>,
    output: &UnboundedSender<String>,
    tail: &Mutex<VecDeque<String>>,
) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();
    let mut truncated = false;
    let emit = |line: &mut Vec<u8>, truncated: &mut bool| {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut text = String::from_utf8_lossy(line).into_owned();
        if *truncated {
            text.push('…');
        }
        line.clear();
        *truncated = false;
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == EXTERNAL_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.clone());
        }
        let _ = output.send(text);
    };
    // An I/O error ends the stream like end of file does.
    while let Ok(buf) = reader.fill_buf().await {
        if buf.is_empty() {
            break;
        }
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        if chunk.len() > room {
            truncated = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            emit(&mut line, &mut truncated);
        }
    }
    if !line.is_empty() || truncated {
        emit(&mut line, &mut truncated);
    }
}

/// Kills the child's process group with `SIGKILL` when dropped, unless disarmed.
struct GroupKiller {
    #[cfg_attr(not(unix), allow(dead_code))]
    pgid: Option<u32>,
}

impl GroupKiller {
    fn new(pid: Option<u32>) -> Self {
        GroupKiller { pgid: pid }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 1) {
            // The leader is not reaped yet (we disarm right after wait()), so the id is ours.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}
