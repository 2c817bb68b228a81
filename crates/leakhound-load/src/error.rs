//! [`LoadError`]: why a load run, a readiness wait or an external load command failed.

use std::io;
use std::time::Duration;

/// Everything that can go wrong while driving load.
///
/// Messages are lowercase, carry the context needed to act on them (the field, the URL, the
/// command) and already include the text of the underlying error, so printing the top-level
/// message alone is enough.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A field of [`LoadSpec`](crate::LoadSpec) or [`ExternalLoad`](crate::ExternalLoad), or the
    /// URL given to [`wait_ready`](crate::wait_ready), is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// Name of the offending field, as spelled in the struct (`url`, `method`, `headers`,
        /// `connections`, `requests`, `duration`, `rate_per_s`, `request_timeout`, `command`).
        field: &'static str,
        /// What is wrong with it, including the bad value.
        reason: String,
    },

    /// The target could not be reached at all: the host name did not resolve, or every load
    /// connection failed to connect when the run started.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL of the load spec.
        url: String,
        /// The first resolve or connect error.
        source: io::Error,
    },

    /// [`wait_ready`](crate::wait_ready) gave up: the URL did not answer within the timeout.
    #[error(
        "{url} did not answer within {} ms; last error: {last_error}",
        timeout.as_millis()
    )]
    NotReady {
        /// The URL that was polled.
        url: String,
        /// The timeout that ran out.
        timeout: Duration,
        /// The error of the last attempt (connect error, I/O error or attempt timeout).
        last_error: String,
    },

    /// The external load command could not be started.
    #[error("cannot start external load command `{command}`: {source}")]
    Spawn {
        /// The command line, as given.
        command: String,
        /// Why `sh -c` could not be spawned.
        source: io::Error,
    },

    /// Waiting for the external load command failed.
    #[error("cannot wait for external load command `{command}`: {source}")]
    ExternalIo {
        /// The command line, as given.
        command: String,
        /// The I/O error.
        source: io::Error,
    },

    /// The external load command exited unsuccessfully (non-zero code, or killed by a signal).
    #[error("external load command `{command}` failed ({status}){}", format_tail(last_lines))]
    ExternalFailed {
        /// The command line, as given.
        command: String,
        /// The exit code; `None` if the process was killed by a signal.
        code: Option<i32>,
        /// Human-readable exit status, e.g. `exit status: 3` or `signal: 9 (SIGKILL)`.
        status: String,
        /// The last lines (at most [`EXTERNAL_TAIL_LINES`](crate::EXTERNAL_TAIL_LINES)) the
        /// command wrote to stdout or stderr, oldest first.
        last_lines: Vec<String>,
    },

    /// A load worker task ended abnormally (this is a bug in this crate or a runtime shutdown).
    #[error("load worker failed: {reason}")]
    Worker {
        /// What happened to the task.
        reason: String,
    },
}

fn format_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::from("; no output")
    } else {
        // On lines of their own, indented, as the hunt shows the app's: whatever is added
        // at the end of the first line (the snapshots kept) stays on it.
        format!("\nits last output:\n  {}", lines.join("\n  "))
    }
}

impl LoadError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        LoadError::InvalidSpec {
            field,
            reason: reason.into(),
        }
    }
}
