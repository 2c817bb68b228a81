//! [`NodeProcess`]: a target app started by us, with its inspector on a random loopback port.
//!
//! The child runs in its own process group (so the terminal's Ctrl-C reaches only us and the
//! caller decides what to do), its stdout and stderr are drained by background tasks and
//! forwarded line by line, and killing it signals the whole group so no grandchild is left
//! behind.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{InspectorError, duration_ms};
use crate::preload::Preload;
use crate::proc::{is_deno_binary, is_node_binary};
use crate::session::Session;

/// The inspector flag we add: loopback only, random port.
const INSPECT_ARG: &str = "--inspect=127.0.0.1:0";
/// Lines longer than this are split, in bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// How many stderr lines are kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// Grace period between SIGTERM and SIGKILL in [`NodeProcess::kill`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
/// Default of [`SpawnOptions::ready_timeout`].
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long we wait for stderr to drain after the app exits before its inspector was ready.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// Which output stream of the app a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The app's standard output.
    Stdout,
    /// The app's standard error.
    Stderr,
}

/// One line written by the app, without its line terminator. Invalid UTF-8 is replaced
/// with U+FFFD; lines longer than 64 KiB are split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The stream the line was written to.
    pub stream: Stream,
    /// The text of the line.
    pub line: String,
}

/// How [`NodeProcess::spawn`] starts the app.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// Working directory of the app; `None` keeps ours.
    pub cwd: Option<PathBuf>,
    /// Environment variables set on top of ours (later entries win).
    pub env: Vec<(OsString, OsString)>,
    /// How long to wait for the inspector to come up and accept our connection.
    pub ready_timeout: Duration,
    /// Receives every line the app writes to stdout and stderr, except node's own inspector
    /// notices (`Debugger listening on ws://…`, `For help, see: …`, `Debugger attached.`,
    /// `Debugger ending on ws://…`).
    /// Output keeps being drained (and dropped) if the receiver goes away.
    pub output: mpsc::UnboundedSender<OutputLine>,
}

impl SpawnOptions {
    /// Options with no working directory or environment changes and a 30 s ready timeout.
    pub fn new(output: mpsc::UnboundedSender<OutputLine>) -> SpawnOptions {
        SpawnOptions {
            cwd: None,
            env: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            output,
        }
    }
}

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running app started by [`NodeProcess::spawn`].
///
/// Dropping it sends SIGKILL to the app's whole process group (and tokio's `kill_on_drop`
/// backs that up for the direct child); prefer [`NodeProcess::kill`], which lets the app shut
/// down cleanly first. When leakhound itself is killed (SIGKILL, which runs no code), the
/// app's [`Reaper`] kills the group instead.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    pid: u32,
    program: String,
    stderr_tail: Tail,
    group_killed: bool,
    /// Kills the app's group if leakhound dies without doing it.
    reaper: Option<Reaper>,
    /// The file preloaded into the app (cluster workers' inspector ports), removed after
    /// the app is stopped.
    preload: Option<Preload>,
}

/// A watcher that kills the app's process group when leakhound dies, however it dies.
///
/// A small `sh` in a process group of its own (terminal signals do not reach it, and it
/// ignores HUP, INT, TERM and QUIT) blocks reading a pipe whose only write end leakhound
/// holds (close-on-exec, so the app does not inherit it). When leakhound exits, even by
/// SIGKILL, the kernel closes that end, the read returns, and the watcher sends SIGKILL
/// to the app's group. `PR_SET_PDEATHSIG` would not do: it fires when the *thread* that
/// forked exits, and reaches only the direct child, not an app that `npm` started.
/// (`kill -9 -PGID`: dash's `kill` refuses `-KILL -- -PGID`.)
/// When leakhound stops the app itself, it kills the watcher first, so the watcher never
/// signals a process group id that may have been reused.
#[derive(Debug)]
struct Reaper {
    child: Child,
}

impl Reaper {
    /// Starts the watcher for process group `pgid`; None when `sh` cannot be started
    /// (then only leakhound's own exit paths stop the app).
    fn start(pgid: u32) -> Option<Reaper> {
        let child = Command::new("sh")
            .args([
                "-c",
                "trap '' HUP INT TERM QUIT; read -r _line; kill -9 -\"$1\" 2>/dev/null",
                "leakhound-reaper",
            ])
            .arg(pgid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        Some(Reaper { child })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Stop the watcher before its pipe closes (it would signal the group).
        let _ = self.child.start_kill();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if !self.group_killed {
            let _ = self.signal_group(Signal::SIGKILL);
        }
        // The reaper goes last: killed before its pipe closes.
        drop(self.reaper.take());
        drop(self.preload.take());
    }
}

/// A JS expression that is true when the target is a package manager or launcher that
/// starts the real app as a child (its inspector is the first one printed under
/// `NODE_OPTIONS`, and the wrong one to analyse).
const LAUNCHER_CHECK: &str = r"(() => {
  const script = String(process.argv[1] || '').replace(/\\/g, '/');
  const base = script.slice(script.lastIndexOf('/') + 1);
  return /^(npm|npx|yarn|yarnpkg|pnpm|pnpx|corepack|nodemon|node-dev|ts-node-dev|tsx|nx|lerna)(-cli)?(\.[cm]?js)?$/.test(base);
})()";

impl NodeProcess {
    /// Starts `program args…` with its inspector on `127.0.0.1:0` and connects a [`Session`]
    /// to it.
    ///
    /// For a node binary (`node`, `nodejs`, `node20`…), `--inspect=127.0.0.1:0` is inserted
    /// as the first argument. For anything else (`npm start`, a shell script), it is appended
    /// to `NODE_OPTIONS` instead, so every node process the program starts gets an inspector;
    /// the session goes to the first one that is not a package manager or launcher (`npm`,
    /// `npx`, `yarn`, `pnpm`, `corepack`, and the restarters and runners that start the app
    /// as a child: `nodemon`, `node-dev`, `ts-node-dev`, `tsx`, `nx`, `lerna`; judged by the
    /// file name of `process.argv[1]`). For Deno (`deno run …`), the flag goes right after
    /// the subcommand. A node app also gets `--require` of a one-line preload that gives
    /// cluster workers inspector ports of their own (`preload.rs`).
    ///
    /// The inspector URL is read from the app's stderr (`Debugger listening on ws://…`). The
    /// app runs in its own process group with stdin closed; its output goes to
    /// `opts.output`.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Spawn`] when the program cannot be started,
    /// [`InspectorError::ExitedBeforeReady`] when it exits first (with its exit status and
    /// last stderr lines), [`InspectorError::ReadyTimeout`] when `opts.ready_timeout` passes,
    /// [`InspectorError::PidMismatch`] when a node binary's inspector reports another pid, and
    /// connection errors from [`Session::connect`]. The app is killed on every error path.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future kills the app's process group.
    pub async fn spawn(
        program: &OsStr,
        args: &[OsString],
        opts: SpawnOptions,
    ) -> Result<(NodeProcess, Session), InspectorError> {
        let program_name = program.to_string_lossy().into_owned();
        let deno = is_deno_binary(program);
        let node = is_node_binary(program);
        let mut cmd = Command::new(program);
        let preload = if deno { None } else { Preload::write() };
        if node {
            cmd.arg(INSPECT_ARG);
            if let Some(p) = &preload {
                cmd.arg("--require").arg(p.path());
            }
        }
        if deno {
            // `deno run [flags] script`: the flag goes after the subcommand.
            let (sub, rest) = args.split_first().map_or((None, args), |(s, r)| (Some(s), r));
            cmd.args(sub);
            cmd.arg(INSPECT_ARG);
            cmd.args(rest);
        } else {
            cmd.args(args);
        }
        if let Some(cwd) = &opts.cwd {
            cmd.current_dir(cwd);
        }
        for (key, value) in &opts.env {
            cmd.env(key, value);
        }
        if !node && !deno {
            let existing = opts
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == "NODE_OPTIONS")
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var_os("NODE_OPTIONS"))
                .unwrap_or_default();
            let mut value = existing;
            if !value.is_empty() {
                value.push(" ");
            }
            value.push(INSPECT_ARG);
            if let Some(p) = &preload {
                // NODE_OPTIONS splits on spaces unless quoted.
                value.push(format!(" --require \"{}\"", p.path().display()));
            }
            cmd.env("NODE_OPTIONS", value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);

        let mut child = cmd.spawn().map_err(|source| InspectorError::Spawn {
            program: program_name.clone(),
            source,
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let Some(pid) = child.id() else {
            // Only possible if the child was already reaped, which we never did.
            return Err(InspectorError::Spawn {
                program: program_name,
                source: std::io::Error::other("child has no pid"),
            });
        };
        let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut process = NodeProcess {
            child,
            pid,
            program: program_name,
            stderr_tail: Arc::clone(&tail),
            group_killed: false,
            reaper: Reaper::start(pid),
            preload,
        };

        let (url_tx, mut url_rx) = mpsc::unbounded_channel();
        if let Some(stdout) = stdout {
            tokio::spawn(drain(stdout, Stream::Stdout, opts.output.clone(), None));
        }
        let mut stderr_done =
            stderr.map(|stderr| tokio::spawn(drain(stderr, Stream::Stderr, opts.output.clone(), Some((url_tx, tail)))));

        let ready = process
            .wait_ready(node || deno, &mut url_rx, &mut stderr_done, opts.ready_timeout)
            .await;
        match ready {
            Ok(session) => Ok((process, session)),
            Err(e) => {
                let _ = process.kill().await;
                Err(e)
            }
        }
    }

    async fn wait_ready(
        &mut self,
        node: bool,
        urls: &mut mpsc::UnboundedReceiver<String>,
        stderr_done: &mut Option<JoinHandle<()>>,
        timeout: Duration,
    ) -> Result<Session, InspectorError> {
        let deadline = Instant::now() + timeout;
        let mut stderr_open = true;
        loop {
            tokio::select! {
                url = urls.recv(), if stderr_open => match url {
                    Some(url) => match self.try_url(&url, node, deadline, timeout).await {
                        Ok(Some(session)) => return Ok(session),
                        Ok(None) => {}
                        Err(e) => return Err(self.exited_instead(e, stderr_done).await),
                    },
                    None => stderr_open = false,
                },
                status = self.child.wait() => {
                    let status = status.map_err(|source| InspectorError::Process {
                        pid: self.pid,
                        action: "wait for",
                        source,
                    })?;
                    return Err(self.exited_before_ready(status, stderr_done).await);
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(self.ready_timeout(timeout));
                }
            }
        }
    }

    async fn exited_before_ready(
        &self,
        status: ExitStatus,
        stderr_done: &mut Option<JoinHandle<()>>,
    ) -> InspectorError {
        if let Some(handle) = stderr_done.as_mut() {
            let _ = tokio::time::timeout(EXIT_DRAIN, handle).await;
        }
        InspectorError::ExitedBeforeReady {
            program: self.program.clone(),
            pid: self.pid,
            status: status.to_string(),
            stderr_tail: self.stderr_tail(),
        }
    }

    /// A connection error while the app is dying (a startup exception right after the
    /// inspector came up) is reported as the exit it really is.
    async fn exited_instead(
        &mut self,
        error: InspectorError,
        stderr_done: &mut Option<JoinHandle<()>>,
    ) -> InspectorError {
        match tokio::time::timeout(EXIT_DRAIN, self.child.wait()).await {
            Ok(Ok(status)) => self.exited_before_ready(status, stderr_done).await,
            _ => error,
        }
    }

    fn ready_timeout(&self, timeout: Duration) -> InspectorError {
        InspectorError::ReadyTimeout {
            program: self.program.clone(),
            pid: self.pid,
            timeout_ms: duration_ms(timeout),
            stderr_tail: self.stderr_tail(),
        }
    }

    /// Connects to one announced inspector URL. `Ok(None)` means "not the app, keep waiting".
    async fn try_url(
        &self,
        url: &str,
        node: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<Session>, InspectorError> {
        let connected = tokio::time::timeout_at(deadline, Session::connect(url)).await;
        let session = match connected {
            Err(_) => return Err(self.ready_timeout(timeout)),
            Ok(Ok(session)) => session,
            Ok(Err(e)) if node => return Err(e),
            // Under NODE_OPTIONS, short-lived helper processes come and go: skip them.
            Ok(Err(_)) => return Ok(None),
        };
        if node {
            if session.pid() != self.pid {
                let actual = session.pid();
                session.close().await;
                return Err(InspectorError::PidMismatch {
                    url: url.to_owned(),
                    expected: self.pid,
                    actual,
                });
            }
            return Ok(Some(session));
        }
        let launcher = tokio::time::timeout_at(deadline, session.evaluate(LAUNCHER_CHECK)).await;
        match launcher {
            Err(_) => {
                session.close().await;
                Err(self.ready_timeout(timeout))
            }
            Ok(Ok(Value::Bool(false))) => Ok(Some(session)),
            Ok(_) => {
                session.close().await;
                Ok(None)
            }
        }
    }

    /// The app's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines (at most 20) the app wrote to stderr, oldest first, without node's
    /// inspector notices. Useful to explain an early exit.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Returns the app's exit status if it has exited, without blocking.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Process`] when `waitpid` fails.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, InspectorError> {
        self.child.try_wait().map_err(|source| InspectorError::Process {
            pid: self.pid,
            action: "wait for",
            source,
        })
    }

    /// Waits for the app to exit and returns its status (again on later calls).
    ///
    /// # Errors
    ///
    /// [`InspectorError::Process`] when `waitpid` fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe; meant for `tokio::select!` to notice an app that exits early.
    pub async fn wait(&mut self) -> Result<ExitStatus, InspectorError> {
        self.child.wait().await.map_err(|source| InspectorError::Process {
            pid: self.pid,
            action: "wait for",
            source,
        })
    }

    /// Sends `signal` to the app's whole process group (e.g. `SIGINT` to forward a Ctrl-C).
    /// A group that no longer exists is not an error.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Signal`] when `killpg` fails otherwise.
    pub fn signal_group(&self, signal: Signal) -> Result<(), InspectorError> {
        let Ok(pgid) = i32::try_from(self.pid) else {
            return Ok(());
        };
        match killpg(Pid::from_raw(pgid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(InspectorError::Signal {
                pid: self.pid,
                signal: signal.as_str(),
                source,
            }),
        }
    }

    /// Stops the app: SIGTERM to its process group, then SIGKILL to the group after
    /// [`DEFAULT_KILL_GRACE`] (5 s) if the app is still running. Returns the app's exit
    /// status. Also fine to call after the app exited by itself (its leftover children are
    /// still killed).
    ///
    /// # Errors
    ///
    /// [`InspectorError::Signal`] or [`InspectorError::Process`] when signalling or waiting
    /// fails.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a cancelled kill leaves the app to [`Drop`], which sends SIGKILL.
    pub async fn kill(&mut self) -> Result<ExitStatus, InspectorError> {
        self.kill_with_grace(DEFAULT_KILL_GRACE).await
    }

    /// [`NodeProcess::kill`] with a custom grace period between SIGTERM and SIGKILL.
    ///
    /// # Errors
    ///
    /// As [`NodeProcess::kill`].
    ///
    /// # Cancel safety
    ///
    /// As [`NodeProcess::kill`].
    pub async fn kill_with_grace(&mut self, grace: Duration) -> Result<ExitStatus, InspectorError> {
        self.signal_group(Signal::SIGTERM)?;
        let first = tokio::time::timeout(grace, self.wait()).await;
        self.signal_group(Signal::SIGKILL)?;
        let status = match first {
            Ok(status) => status,
            Err(_) => {
                let _ = self.child.start_kill();
                match tokio::time::timeout(DEFAULT_KILL_GRACE, self.wait()).await {
                    Ok(status) => status,
                    Err(_) => Err(InspectorError::Process {
                        pid: self.pid,
                        action: "kill",
                        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "still running after SIGKILL"),
                    }),
                }
            }
        };
        self.group_killed = true;
        status
    }
}

/// Reads one line of at most `max` bytes into `buf` (without the `\n`). Returns false at EOF
/// with nothing read.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let room = max.saturating_sub(buf.len());
        match available.iter().position(|b| *b == b'\n') {
            Some(i) if i <= room => {
                buf.extend_from_slice(&available[..i]);
                reader.consume(i + 1);
                return Ok(true);
            }
            _ => {
                let take = available.len().min(room);
                buf.extend_from_slice(&available[..take]);
                reader.consume(take);
                if buf.len() >= max {
                    return Ok(true);
                }
            }
        }
    }
}

/// True for node's own inspector notices, which are not forwarded (`Debugger ending on
/// ws://…` comes when leakhound's session closes the inspector, after the verdict).
fn is_inspector_notice(line: &str) -> bool {
    line.starts_with("Debugger listening on ws://")
        || line.starts_with("Debugger ending on ws://")
        || line.starts_with("For help, see: https://nodejs.org")
        || line == "Debugger attached."
}

/// Drains one pipe to the end, forwarding lines; for stderr, also picks up inspector URLs
/// and keeps the tail.
async fn drain<R: AsyncRead + Unpin>(
    pipe: R,
    stream: Stream,
    output: mpsc::UnboundedSender<OutputLine>,
    stderr: Option<(mpsc::UnboundedSender<String>, Tail)>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut buf = Vec::new();
    loop {
        match read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES).await {
            Ok(true) => {}
            // EOF, or a read error on a pipe (nothing sensible to do but stop).
            Ok(false) | Err(_) => break,
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        if let Some((urls, tail)) = &stderr {
            if let Some(rest) = line.strip_prefix("Debugger listening on ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = urls.send(url.to_owned());
            }
            if is_inspector_notice(&line) {
                continue;
            }
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() >= STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        let _ = output.send(OutputLine { stream, line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_node_binaries() {
        for p in [
            "node",
            "/usr/bin/node",
            "nodejs",
            "node20",
            "node-v20.1.0",
            "./bin/node.exe",
        ] {
            assert!(is_node_binary(OsStr::new(p)), "{p}");
        }
        for p in ["npm", "npx", "nodemon", "/usr/bin/yarn", "sh", "", "/"] {
            assert!(!is_node_binary(OsStr::new(p)), "{p}");
        }
    }

    #[test]
    fn filters_inspector_notices() {
        assert!(is_inspector_notice("Debugger listening on ws://127.0.0.1:1/abc"));
        assert!(is_inspector_notice(
            "For help, see: https://nodejs.org/en/docs/inspector"
        ));
        assert!(is_inspector_notice("Debugger attached."));
        assert!(is_inspector_notice("Debugger ending on ws://127.0.0.1:1/abc"));
        assert!(!is_inspector_notice("Waiting for the debugger to disconnect..."));
    }

    #[tokio::test]
    async fn splits_long_lines_and_keeps_the_last_partial_line() {
        let data: &[u8] = b"ab\r\ncdefgh\nlast";
        let mut reader = BufReader::with_capacity(2, data);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while read_line_capped(&mut reader, &mut buf, 4).await.unwrap() {
            lines.push(String::from_utf8_lossy(&buf).into_owned());
        }
        assert_eq!(lines, ["ab\r", "cdef", "gh", "last"]);
    }
}
