//! Why a hunt or a watch stopped: the stage it was in ([`Stage`]) and what went wrong
//! ([`Failure`]), typed, with the snapshots already written (kept on disk).
//!
//! The text of a [`HuntError`] is `"{stage}: {failure}"`, the kept snapshots named at the
//! end of its first line; details such as the app's last output follow on the next lines.

use std::fmt;
use std::path::PathBuf;

use crate::phase::{PhaseKind, SnapshotLabel};

/// What a hunt or watch was doing when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Checking the settings and creating the output folder.
    Configuration,
    /// Spawning the app under the inspector.
    StartingApp,
    /// Opening the inspector of a running process (SIGUSR1).
    Attaching {
        /// Process id given with `--attach`.
        pid: u32,
    },
    /// Watching the app's output for the `--ready` text.
    WaitingForReadyPattern,
    /// The `--ready` text did not appear in time.
    WaitingForApp,
    /// Polling the app's URL until it answers.
    WaitingForReady,
    /// Installing the script that reports the app's own full GCs.
    InstallingGcObserver,
    /// The forced GC and memory reading before the baseline snapshot.
    BaselineFloor,
    /// Driving load in a phase.
    Load(PhaseKind),
    /// The forced GC and memory reading after a load phase.
    FloorAfter(PhaseKind),
    /// Writing a snapshot.
    Snapshot(SnapshotLabel),
    /// The calm-down wait, GC and reading.
    CalmDown,
    /// Loading the snapshots and running the leak finder.
    Analysing,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Configuration => f.write_str("configuration"),
            Stage::StartingApp => f.write_str("starting the app"),
            Stage::Attaching { pid } => write!(f, "attaching to pid {pid}"),
            Stage::WaitingForReadyPattern => f.write_str("waiting for the ready pattern"),
            Stage::WaitingForApp => f.write_str("waiting for the app"),
            Stage::WaitingForReady => f.write_str("waiting for the app to become ready"),
            Stage::InstallingGcObserver => f.write_str("installing the GC observer"),
            Stage::BaselineFloor => f.write_str("measuring the baseline floor"),
            Stage::Load(p) => write!(f, "load phase {p}"),
            Stage::FloorAfter(p) => write!(f, "after {p}"),
            Stage::Snapshot(l) => write!(f, "taking the {l} snapshot"),
            Stage::CalmDown => f.write_str("calm-down"),
            Stage::Analysing => f.write_str("analysing the snapshots"),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The output folder cannot be created, or is not safe to write into.
    #[error("{0}")]
    OutDir(#[from] crate::out_dir::OutDirError),
    /// Another leakhound is attached to the target, or the lock cannot be taken.
    #[error("{0}")]
    Lock(#[from] crate::lock::LockError),
    /// The inspector failed (spawn, attach, protocol, snapshot I/O).
    #[error("{}", causes(.0))]
    Inspector(#[from] leakhound_inspector::InspectorError),
    /// The load driver or the load command failed.
    #[error("{}", causes(.0))]
    Load(#[from] leakhound_load::LoadError),
    /// Every request of a load phase failed: the app is not serving.
    #[error("every request failed ({summary})")]
    EveryRequestFailed {
        /// The load's one-line summary.
        summary: String,
    },
    /// Responses of a load phase had statuses `--expect-status` does not accept (or no
    /// response at all).
    #[error("{unexpected} of {sent} requests did not get the expected status ({expected}): {details}")]
    UnexpectedStatus {
        /// The accepted statuses, as given (`2xx`, `200,204`).
        expected: String,
        /// Requests with another status or no response.
        unexpected: u64,
        /// Requests sent in the phase.
        sent: u64,
        /// What they got instead, most first: `300 × 404, 2 without a response`.
        details: String,
    },
    /// The app's process ended.
    #[error("the app exited ({status}){}", last_output_note(.last_output))]
    AppExited {
        /// Its exit status, as the OS words it (`exit status: 3`, `signal: 9 (SIGKILL)`).
        status: String,
        /// Its last lines on stderr (node's debugger farewell left out).
        last_output: Vec<String>,
    },
    /// The inspector's WebSocket closed while the app may still run.
    #[error(
        "the app's inspector connection closed ({reason}){}",
        if *.app_still_running {
            " though the app is still running (does it call require('inspector').close()?); leakhound needs it for snapshots"
        } else {
            "; leakhound needs it for snapshots"
        }
    )]
    InspectorClosed {
        /// The close reason the session recorded.
        reason: String,
        /// Whether leakhound started the app and it has not exited.
        app_still_running: bool,
    },
    /// The inspector closed during a step that was racing the app.
    #[error("the app's inspector connection closed ({reason})")]
    InspectorClosedDuring {
        /// The close reason.
        reason: String,
    },
    /// V8's object ids kept being reset during the series (another inspector client
    /// connecting and leaving), so no series of comparable snapshots could be taken.
    #[error(
        "V8's object ids were reset during the series {} (another inspector client, such as DevTools, keeps ending its sessions); snapshots on both sides of a reset cannot be compared. Close other debuggers and run again",
        if *.restarts == 0 { "once".to_owned() } else { format!("{} times", .restarts + 1) }
    )]
    ObjectIdsReset {
        /// How many times the series had been started again already.
        restarts: u32,
    },
    /// The app never answered at its URL but listens elsewhere, or says it does: it
    /// ignores `PORT`.
    #[error(
        "the app did not answer at {url} within {} ms; {evidence}: does it ignore PORT? Run again with --url {suggested}",
        timeout.as_millis()
    )]
    ListensElsewhere {
        /// The URL polled.
        url: String,
        /// How long it was polled.
        timeout: std::time::Duration,
        /// What shows where it listens: `it listens on 127.0.0.1:3000 (its output: "…")`.
        evidence: String,
        /// The URL to give with `--url`.
        suggested: String,
    },
    /// Something accepted connections at the app's URL but never answered HTTP: an
    /// HTTPS (TLS) server, or another protocol.
    #[error(
        "the app did not answer HTTP at {url} within {} ms: connections were accepted and closed without an HTTP response ({last_error}). Does it serve HTTPS? The built-in load speaks plain HTTP only: give --load a command that speaks TLS (it gets LEAKHOUND_URL; rewrite it to https://) and --ready with a text the app prints when it listens",
        timeout.as_millis()
    )]
    NoHttpAnswer {
        /// The URL polled.
        url: String,
        /// How long it was polled.
        timeout: std::time::Duration,
        /// The last attempt's error.
        last_error: String,
    },
    /// The `--ready` text never appeared.
    #[error("the ready pattern {pattern:?} did not appear within {timeout:?}")]
    ReadyPatternTimeout {
        /// The text waited for.
        pattern: String,
        /// How long it waited.
        timeout: std::time::Duration,
    },
    /// A snapshot file cannot be opened or read back for the analysis.
    #[error("{0}")]
    SnapshotFile(#[from] leakhound_leaks::SnapshotFileError),
    /// The leak finder refused the series (different processes, wrong order, other V8).
    #[error("{0}")]
    LeakFinder(#[from] leakhound_leaks::LeakError),
    /// The analysis thread stopped without a result (a bug: it panicked).
    #[error("the analysis stopped without a result: {0}")]
    AnalysisStopped(String),
    /// The snapshot would need more memory than is free for the app (the estimate, the
    /// free figures and the margin are in the check): it was not taken, so that the
    /// kernel does not kill the app while it writes.
    #[error(
        "{0}: not taken, so that the kernel does not kill the app mid-snapshot (--ignore-headroom takes it anyway)"
    )]
    NoHeadroom(Box<leakhound_inspector::headroom::Check>),
    /// `leakhound snapshot`: the snapshot would need more memory than is free for the
    /// process, so it was not taken.
    #[error(
        "{0}: no snapshot taken, so that the kernel does not kill the process mid-snapshot (--ignore-headroom takes it anyway)"
    )]
    SnapshotRefused(Box<leakhound_inspector::headroom::Check>),
}

/// `e` and its sources, `: `-separated (a source already spelled out by the one above it
/// is not repeated).
pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

fn last_output_note(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nits last output:\n  {}", lines.join("\n  "))
    }
}

/// Why a hunt or watch stopped. Snapshots already written are listed and kept on disk.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {}", with_snapshots_note(&.failure.to_string(), .snapshots))]
pub struct HuntError {
    /// What was going on.
    pub stage: Stage,
    /// What went wrong (boxed: errors travel through every step's `Result`).
    pub failure: Box<Failure>,
    /// Snapshots written before the failure (kept).
    pub snapshots: Vec<PathBuf>,
}

impl HuntError {
    /// An error before any snapshot was written.
    pub(crate) fn early(stage: Stage, failure: impl Into<Failure>) -> HuntError {
        HuntError {
            stage,
            failure: Box::new(failure.into()),
            snapshots: Vec::new(),
        }
    }
}

/// The message with the kept snapshots named at the end of its first line (details such
/// as the app's last output follow on the next lines).
fn with_snapshots_note(message: &str, s: &[PathBuf]) -> String {
    if s.is_empty() {
        return message.to_owned();
    }
    let list: Vec<String> = s.iter().map(|p| p.display().to_string()).collect();
    let note = format!(" (snapshots kept: {})", list.join(", "));
    match message.split_once('\n') {
        Some((first, rest)) => format!("{first}{note}\n{rest}"),
        None => format!("{message}{note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_snapshots_end_the_first_line() {
        let e = HuntError {
            stage: Stage::Load(PhaseKind::Load(2)),
            failure: Box::new(Failure::AppExited {
                status: "exit status: 3".into(),
                last_output: vec!["boom".into()],
            }),
            snapshots: vec![PathBuf::from("out/01-baseline.heapsnapshot")],
        };
        assert_eq!(
            e.to_string(),
            "load phase load-2: the app exited (exit status: 3) (snapshots kept: out/01-baseline.heapsnapshot)\n\
             its last output:\n  boom"
        );
    }

    #[test]
    fn a_refused_snapshot_says_what_it_needs_and_what_is_kept() {
        use leakhound_inspector::headroom::{Available, CostBasis, SnapshotCost, judge};
        let check = judge(
            SnapshotCost {
                rss_bytes: 4_100_000_000,
                file_bytes: 500_000_000,
                basis: CostBasis::HeapUsed,
            },
            Available {
                machine_available_bytes: 1_200_000_000,
                cgroup: None,
                cgroup_note: None,
                override_bytes: None,
            },
        );
        let e = HuntError {
            stage: Stage::Snapshot(SnapshotLabel::Final),
            failure: Box::new(Failure::NoHeadroom(Box::new(check))),
            snapshots: vec![PathBuf::from("out/01-baseline.heapsnapshot")],
        };
        assert_eq!(
            e.to_string(),
            "taking the final snapshot: writing the snapshot would need about 4.1 GB more for the app; \
             1.2 GB are free (the machine's MemAvailable), with a margin of 1.0 GB: not taken, so that \
             the kernel does not kill the app mid-snapshot (--ignore-headroom takes it anyway) \
             (snapshots kept: out/01-baseline.heapsnapshot)"
        );
    }
}
