//! What a hunt reports: its progress as [`HuntEvent`]s while it runs, and its
//! [`HuntOutcome`] with the [`Verdict`] at the end (and [`decide`], the rule that gives it).

use std::path::PathBuf;

use leakhound_inspector::OutputLine;
use leakhound_leaks::{FloorAnalysis, LeakReport, MemorySample};
use leakhound_load::LoadReport;

use crate::phase::{PhaseKind, SnapshotLabel};

/// Progress of a hunt, for the caller to show.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HuntEvent {
    /// A line the app wrote.
    AppOutput(OutputLine),
    /// The app runs with this pid.
    Started {
        /// Pid of the app.
        pid: u32,
    },
    /// A new step began (human-readable).
    Step(String),
    /// Load progress in the current phase.
    LoadProgress {
        /// The load phase under way (`warmup` or `load-N`).
        phase: PhaseKind,
        /// Units sent in this phase.
        done: u64,
        /// Units planned (0 when bounded by time).
        total: u64,
    },
    /// A phase's load finished.
    LoadDone {
        /// The load phase that finished (`warmup` or `load-N`).
        phase: PhaseKind,
        /// The load driver's figures.
        report: LoadReport,
    },
    /// Bytes of a heap snapshot received from V8 so far, while it is written to disk.
    SnapshotProgress {
        /// The snapshot being taken (`baseline`, `target`, …, `final`).
        label: SnapshotLabel,
        /// Bytes of the snapshot received so far.
        done: u64,
        /// Always 0: the size is not known in advance (V8 is not asked for progress, which
        /// would cost it an extra pass over the heap while the app is paused).
        total: u64,
    },
    /// A snapshot is on disk.
    SnapshotTaken(SnapshotRecord),
    /// A memory sample.
    Sample(MemorySample),
}

/// A phase of the hunt.
#[derive(Debug, Clone)]
pub struct PhaseRecord {
    /// Which phase: `warmup`, `load-N` or `calm-down`.
    pub kind: PhaseKind,
    /// ms since the hunt started.
    pub start_ms: f64,
    /// ms since the hunt started.
    pub end_ms: f64,
    /// Units of load sent.
    pub requests: u64,
    /// Built-in load figures, if any.
    pub load: Option<LoadReport>,
}

/// A snapshot taken.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    /// Which snapshot of the series.
    pub label: SnapshotLabel,
    /// The file (in the hunt's output folder).
    pub path: PathBuf,
    /// The file's size.
    pub bytes: u64,
    /// ms since the hunt started.
    pub t_ms: f64,
    /// How long writing it took, ms (the app is paused for most of it).
    pub duration_ms: u64,
    /// Units of load sent before it.
    pub requests: u64,
}

/// The calm-down check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalmDown {
    /// heapUsed after the GC before the baseline.
    pub baseline_heap_used_bytes: u64,
    /// heapUsed after the calm-down GC.
    pub after_heap_used_bytes: u64,
    /// external before the baseline.
    pub baseline_external_bytes: u64,
    /// external after the calm-down.
    pub after_external_bytes: u64,
    /// Both within 2 % of the baseline, at least 512 KiB (heap) or 1 MiB (external).
    pub returned_to_baseline: bool,
    /// How long it waited, ms.
    pub waited_ms: u64,
}

/// The verdict of a hunt or a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Something keeps growing.
    Leak,
    /// Nothing keeps growing.
    NoLeak,
}

/// Everything a hunt found.
#[derive(Debug, Clone)]
pub struct HuntOutcome {
    /// `Leak` when a cluster grows, or the floor rose in the last load phase and did not come
    /// back in the calm-down; [`HuntOutcome::reason`] says which.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Pid of the app.
    pub pid: u32,
    /// The app's command line when leakhound started it.
    pub command_line: Option<String>,
    /// The URL load went to.
    pub url: Option<String>,
    /// Units of load sent in all.
    pub requests_sent: u64,
    /// Units per load phase.
    pub requests_per_phase: u64,
    /// Every phase in order (warm-up if any, load phases, calm-down), with its times and load.
    pub phases: Vec<PhaseRecord>,
    /// Snapshots taken, oldest first (`baseline`, `target`, …, `final`), kept on disk.
    pub snapshots: Vec<SnapshotRecord>,
    /// Every `process.memoryUsage()` reading, sorted by time: leakhound's own and those
    /// taken right after the app's own full GCs.
    pub samples: Vec<MemorySample>,
    /// Floor statistics over all load phases.
    pub floor: FloorAnalysis,
    /// Floor statistics over the last load phase.
    pub floor_last_phase: FloorAnalysis,
    /// The calm-down check.
    pub calm_down: CalmDown,
    /// The leak finder's report.
    pub leaks: LeakReport,
    /// Warnings for the user (failed requests, the leak finder's notes).
    pub warnings: Vec<String>,
}

/// The verdict and its one-sentence reason: `Leak` when the leak finder found a growing
/// cluster, or when the post-GC floor of some memory kind rose through the last load
/// phase and did not come back in the calm-down; else `NoLeak`.
pub(crate) fn decide(leaks: &LeakReport, last: &FloorAnalysis, calm: &CalmDown) -> (Verdict, String) {
    if let Some(c) = leaks.clusters.first() {
        let rate = c
            .per_request
            .as_ref()
            .map(|p| format!("{:.2} {} per request", p.count, c.root_class))
            .unwrap_or_else(|| format!("{} {}", c.count, c.root_class));
        let more = if leaks.clusters.len() > 1 {
            format!(" (+{} more clusters)", leaks.clusters.len() - 1)
        } else {
            String::new()
        };
        let calm_note = if calm.returned_to_baseline {
            ""
        } else {
            "; memory did not return to the baseline after the load stopped"
        };
        return (
            Verdict::Leak,
            format!(
                "{} ({}) keeps {rate}: {}{more}{calm_note}",
                c.holder, c.holder_class, c.pattern,
            ),
        );
    }
    if !last.growing.is_empty() && !calm.returned_to_baseline {
        let what = last
            .growing
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        return (
            Verdict::Leak,
            format!(
                "the post-GC floor of {what} kept rising through the last load phase and did not return to the baseline, though no growing object cluster was found in the snapshots"
            ),
        );
    }
    let calm_note = if calm.returned_to_baseline {
        "memory returned to the baseline after the load"
    } else {
        "memory stayed above the baseline after the load, but stopped growing (bounded)"
    };
    (
        Verdict::NoLeak,
        format!("nothing allocated after the baseline keeps growing; {calm_note}"),
    )
}
