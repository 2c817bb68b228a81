//! The signals that end leakhound: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, systemd,
//! Kubernetes), SIGHUP (the terminal closed) and SIGQUIT. Each one is handled like Ctrl-C:
//! the running command stops what it does, stops the app it started (never an attached
//! one), removes a half-written snapshot and reports what it kept. SIGKILL cannot be
//! handled: the app's side of that is in `leakhound-inspector` (the app dies with
//! leakhound).

use std::fmt;

/// A termination signal leakhound received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// SIGINT: Ctrl-C in the terminal.
    Interrupt,
    /// SIGTERM: `kill`, `timeout`, systemd or Kubernetes stopping leakhound.
    Terminate,
    /// SIGHUP: the controlling terminal went away.
    Hangup,
    /// SIGQUIT: Ctrl-\ in the terminal.
    Quit,
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Termination::Interrupt => "Ctrl-C",
            Termination::Terminate => "SIGTERM",
            Termination::Hangup => "SIGHUP",
            Termination::Quit => "SIGQUIT",
        })
    }
}

/// Resolves when the first termination signal arrives. Must be called inside a Tokio
/// runtime; the handlers are installed when it is first polled, and once installed Tokio
/// keeps them for the life of the process (the default action, dying at once, no longer
/// applies).
///
/// Where a handler cannot be installed (not on Unix, or the OS refuses), that signal is
/// not waited for; Ctrl-C still is.
pub async fn termination() -> Termination {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let wait = |kind: SignalKind| {
            let s = signal(kind).ok();
            async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = wait(SignalKind::interrupt()) => Termination::Interrupt,
            () = wait(SignalKind::terminate()) => Termination::Terminate,
            () = wait(SignalKind::hangup()) => Termination::Hangup,
            () = wait(SignalKind::quit()) => Termination::Quit,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Termination::Interrupt
    }
}
