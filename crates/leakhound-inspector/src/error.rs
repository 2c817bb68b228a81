//! The crate's error type, [`InspectorError`], and [`CloseReason`], the plain value it carries
//! for a session that ended.
//!
//! A leaf module: it imports no other module of this crate, so every other module may use it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a [`Session`](crate::Session) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The target ran out of work and is waiting for debuggers to disconnect
    /// (`NodeRuntime.waitingForDisconnect`). The session closed itself so that node can exit.
    TargetFinished,
    /// This side closed the session ([`Session::close`](crate::Session::close) or drop).
    ClosedByUs,
    /// The inspector sent a WebSocket close frame.
    ClosedByPeer,
    /// The connection broke: the target was killed, crashed or exited. Carries the I/O cause.
    ConnectionLost(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::TargetFinished => f.write_str("the target finished running and is waiting to exit"),
            CloseReason::ClosedByUs => f.write_str("the session was closed by leakhound"),
            CloseReason::ClosedByPeer => f.write_str("the inspector closed the connection"),
            CloseReason::ConnectionLost(cause) => write!(f, "the connection was lost ({cause})"),
        }
    }
}

/// Everything that can go wrong while starting, attaching to or talking to a Node.js inspector.
///
/// Every variant carries the context needed to act on it (pid, url, CDP method, path). Messages
/// are lowercase sentence fragments without a final period; the underlying cause, when there is
/// one, is exposed through [`std::error::Error::source`] rather than repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectorError {
    /// The program could not be started (not found, not executable, bad working directory).
    #[error("failed to start `{program}`")]
    Spawn {
        /// The program as given by the caller.
        program: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// The started program exited before its inspector printed a `ws://` URL.
    #[error(
        "`{program}` (pid {pid}) exited with {status} before its inspector was ready{}",
        tail_suffix(stderr_tail)
    )]
    ExitedBeforeReady {
        /// The program as given by the caller.
        program: String,
        /// Its process id.
        pid: u32,
        /// Its exit status, as text (`exit status: 1`, `signal: 9 (SIGKILL)`).
        status: String,
        /// The last lines it wrote to stderr (at most 20).
        stderr_tail: Vec<String>,
    },

    /// The started program did not print a usable inspector URL in time.
    #[error(
        "`{program}` (pid {pid}) did not open an inspector within {timeout_ms} ms{}",
        tail_suffix(stderr_tail)
    )]
    ReadyTimeout {
        /// The program as given by the caller.
        program: String,
        /// Its process id.
        pid: u32,
        /// The timeout that passed, in milliseconds.
        timeout_ms: u64,
        /// The last lines it wrote to stderr (at most 20).
        stderr_tail: Vec<String>,
    },

    /// Waiting for, or signalling, our own child process failed.
    #[error("failed to {action} process {pid}")]
    Process {
        /// The process id.
        pid: u32,
        /// What was attempted (`wait for`, `signal`, `kill`).
        action: &'static str,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// The process is not node: leakhound sends SIGUSR1 only to node.
    #[error(
        "process {pid} is not node (its executable is {}); leakhound attaches only to node processes",
        exe.display()
    )]
    NotNode {
        /// The process id.
        pid: u32,
        /// Its executable, from `/proc/PID/exe`.
        exe: std::path::PathBuf,
    },

    /// Opening the inspector would make it listen on a non-loopback address.
    #[error(
        "process {pid} would open its inspector on a non-loopback address ({setting}), where anyone who can reach the machine could run code in it; leakhound refuses. Restart it with the inspector on 127.0.0.1 (e.g. --inspect-port=127.0.0.1:9229)"
    )]
    NonLoopbackInspector {
        /// The process id.
        pid: u32,
        /// The setting or listener that says so (`--inspect-port=0.0.0.0:9231`, or the
        /// address it opened).
        setting: String,
    },

    /// No process with this pid exists (or it is not visible to us).
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The process id.
        pid: u32,
    },

    /// The process does not catch SIGUSR1, so sending it would kill the process instead of
    /// opening an inspector.
    #[error(
        "process {pid} does not handle SIGUSR1 (not a node process, still starting up, or started \
         with --disable-sigusr1); refusing to send a signal that would terminate it"
    )]
    Sigusr1NotHandled {
        /// The process id.
        pid: u32,
    },

    /// Sending a signal failed.
    #[error("failed to send {signal} to pid {pid}")]
    Signal {
        /// The target pid (or process group id).
        pid: u32,
        /// The signal name, e.g. `SIGUSR1`.
        signal: &'static str,
        /// The errno returned by `kill(2)`.
        #[source]
        source: nix::errno::Errno,
    },

    /// Reading `/proc` (to find the inspector port of a process) failed.
    #[error("failed to read {} while looking for the inspector of pid {pid}", path.display())]
    ProcFs {
        /// The process id.
        pid: u32,
        /// The file or directory under `/proc`.
        path: PathBuf,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// After SIGUSR1, no inspector showed up on a loopback port of the process.
    #[error(
        "no inspector found on a loopback port of pid {pid} within {timeout_ms} ms (the inspector \
         port, 9229 unless --inspect-port is set, may be taken by another process, or the target \
         runs in another network namespace){}",
        probed_suffix(probed_ports)
    )]
    InspectorNotFound {
        /// The process id.
        pid: u32,
        /// The timeout that passed, in milliseconds.
        timeout_ms: u64,
        /// Loopback ports of the process that were probed and did not answer like an inspector.
        probed_ports: Vec<u16>,
    },

    /// A URL could not be parsed or uses an unsupported scheme.
    #[error("invalid inspector url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A URL points at a host other than the loopback interface.
    #[error(
        "refusing to connect to `{url}`: the inspector executes arbitrary code, so only \
         127.0.0.1, ::1 and localhost are allowed"
    )]
    NotLoopback {
        /// The URL as given.
        url: String,
    },

    /// The inspector's HTTP endpoint (`/json/list`) did not give a usable answer.
    #[error("inspector http request to {url} failed: {reason}")]
    Http {
        /// The URL that was requested.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// `/json/list` answered but listed no target with a WebSocket URL.
    #[error("no debuggable node target listed at {url}")]
    NoTarget {
        /// The URL that was requested.
        url: String,
    },

    /// The TCP connection to the inspector could not be established.
    #[error("failed to connect to the inspector at {url}")]
    Connect {
        /// The URL being connected to.
        url: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// The WebSocket handshake with the inspector failed.
    #[error("websocket handshake with {url} failed")]
    WebSocket {
        /// The URL being connected to.
        url: String,
        /// The WebSocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },

    /// The inspector we reached belongs to another process than the one we meant.
    #[error("inspector at {url} belongs to pid {actual}, not to pid {expected}")]
    PidMismatch {
        /// The URL of the inspector.
        url: String,
        /// The pid we wanted.
        expected: u32,
        /// The pid reported by `process.pid` in the target.
        actual: u32,
    },

    /// The inspector answered a command with a CDP error.
    #[error("{method} failed with cdp error {code}: {message}")]
    Protocol {
        /// The CDP method, e.g. `HeapProfiler.collectGarbage`.
        method: String,
        /// The CDP error code (`-32601` unknown method, `-32000` runtime error, ...).
        code: i64,
        /// The error message sent by the inspector.
        message: String,
    },

    /// The WebSocket is closed: the target exited, finished, or the connection broke.
    #[error("inspector connection {url} closed during {method}: {reason}")]
    Closed {
        /// The URL of the inspector.
        url: String,
        /// The CDP method in progress, or what was being done.
        method: String,
        /// Why the connection closed.
        reason: CloseReason,
    },

    /// A command got no reply within its timeout.
    #[error("{method} got no reply from {url} within {timeout_ms} ms")]
    Timeout {
        /// The URL of the inspector.
        url: String,
        /// The CDP method.
        method: String,
        /// The timeout that passed, in milliseconds.
        timeout_ms: u64,
    },

    /// `Runtime.evaluate` threw a JavaScript exception.
    #[error("javascript exception while evaluating `{expression}`: {text}")]
    Exception {
        /// The expression, shortened to at most 120 characters.
        expression: String,
        /// The exception description (message and stack when available).
        text: String,
    },

    /// A reply did not have the expected shape.
    #[error("unexpected reply to {method}: {reason}")]
    UnexpectedReply {
        /// The CDP method or expression.
        method: String,
        /// What was wrong with it.
        reason: String,
    },

    /// [`Session::drain_gc_events`](crate::Session::drain_gc_events) found no observer; call
    /// [`Session::install_gc_observer`](crate::Session::install_gc_observer) first.
    #[error("no gc observer is installed in pid {pid}")]
    GcObserverMissing {
        /// The target pid.
        pid: u32,
    },

    /// Writing the heap snapshot file failed (disk full, permission denied, ...).
    #[error("failed to write heap snapshot file {}", path.display())]
    SnapshotIo {
        /// The file that could not be written (the temporary `.partial-<pid>` file or the
        /// final path).
        path: PathBuf,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// Writing a heap profile file (`.heapprofile`) failed; the partial file was removed.
    #[error("failed to write heap profile file {}", path.display())]
    ProfileIo {
        /// The requested destination path.
        path: PathBuf,
        /// The operating system error.
        #[source]
        source: io::Error,
    },

    /// Taking a heap snapshot failed; the partial file was removed.
    #[error("heap snapshot {} failed", path.display())]
    Snapshot {
        /// The requested destination path.
        path: PathBuf,
        /// What failed: [`InspectorError::SnapshotIo`], [`InspectorError::Closed`],
        /// [`InspectorError::Protocol`], [`InspectorError::Exception`] or
        /// [`InspectorError::UnexpectedReply`].
        #[source]
        source: Box<InspectorError>,
    },
}

/// Why the memory free for a target could not be read (see [`crate::headroom`]).
///
/// Only the machine's figure and the target's own `/proc` entries are required; a cgroup
/// that cannot be read is not an error but a note in
/// [`Available::cgroup_note`](crate::headroom::Available::cgroup_note).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeadroomError {
    /// No process with this pid exists (or it is not visible to us).
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The process id.
        pid: u32,
    },

    /// A file under `/proc` could not be read or parsed.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file, e.g. `/proc/meminfo` or `/proc/1234/cgroup`.
        path: PathBuf,
        /// The operating system error, or what was wrong with the contents.
        #[source]
        source: io::Error,
    },

    /// The override of the free memory (`LEAKHOUND_AVAILABLE_BYTES`) is not a size.
    #[error("{name}={value:?} is not a size (bytes, or a number with K, M, G or T: 300M, 1.5G)")]
    BadOverride {
        /// The variable's name.
        name: &'static str,
        /// Its value as given.
        value: String,
    },
}

fn tail_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::from(" (no stderr output)")
    } else {
        format!("; last stderr lines:\n  {}", lines.join("\n  "))
    }
}

fn probed_suffix(ports: &[u16]) -> String {
    if ports.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        format!("; probed ports without an inspector: {}", list.join(", "))
    }
}

/// Shortens `s` to at most `max` characters for use in an error message.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Whole milliseconds of a duration, saturating at `u64::MAX`: the unit of every `*_ms` field.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
