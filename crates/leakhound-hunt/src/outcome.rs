//! What a hunt reports: its progress as [`HuntEvent`]s while it runs, and its
//! [`HuntOutcome`] with the [`Verdict`] at the end (and [`decide`], the rule that gives it).

use std::path::PathBuf;

use leakhound_inspector::{Isolate, OutputLine};
use leakhound_leaks::{Evidence, FloorAnalysis, LeakReport, MemoryKind, MemorySample};
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
    /// Another isolate of the app is followed from now on (a cluster worker, a child
    /// process, a worker thread).
    Followed(Isolate),
    /// A followed isolate (not the main one) exited.
    Exited(Isolate),
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
    /// The isolate it is a snapshot of.
    pub isolate: Isolate,
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

/// The verdict of a hunt or a watch: three answers, each backed by evidence (see
/// [`decide`] for the hunt's rules and `watch` for the watch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Something keeps growing: a cluster of objects grew through every snapshot, or a
    /// post-GC floor rose with 95 % confidence by more than the noise.
    Leak,
    /// Nothing keeps growing, with evidence: no growing cluster and a floor that is flat
    /// (enough points, the upper 95 % bound below the margin) or back at the baseline.
    NoLeak,
    /// The run cannot tell either way; the outcome says what would decide it.
    Inconclusive,
}

/// Everything a hunt found.
#[derive(Debug, Clone)]
pub struct HuntOutcome {
    /// `Leak` when a cluster grows, or the floor rose in the last load phase and did not come
    /// back in the calm-down; [`HuntOutcome::reason`] says which.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// With [`Verdict::Inconclusive`], what would decide it (more load, a longer run);
    /// with a [`Verdict::Leak`] whose one-shot timers could not be settled, what would tell
    /// whether they free what grew ([`crate::SettleStatus::NotSettled`]).
    pub what_would_decide: Option<String>,
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
    /// The sampling heap profile taken over the load phases (`--sample-allocations`).
    pub heap_profile: Option<crate::heap_profile::HeapProfileRecord>,
    /// For each of `leaks.clusters`, the isolate it was found in.
    pub cluster_isolates: Vec<Isolate>,
    /// Every isolate of the app that was followed, the main process first: its own memory
    /// series, floor, snapshots, leak finder and verdict. One entry for a single process.
    pub processes: Vec<IsolateOutcome>,
    /// The settle record of the main process, or else of the first isolate that has one
    /// (a cluster's primary serves nothing; each isolate's is its
    /// [`IsolateOutcome::settle`]): present when clusters included a list of Node's timers.
    pub settle: Option<crate::settle::Settle>,
    /// Node's `MaxListenersExceededWarning`s read from the app's output, grouped by
    /// emitter class and event, in the order node first printed each; empty when node
    /// printed none (or the app's output was not read: an attached app).
    pub node_warnings: Vec<crate::node_warnings::ListenerWarning>,
    /// The built-in load's connections kept open across the phases; None when they were
    /// not (`--fresh-connections`, a load command).
    pub connections: Option<KeptConnections>,
}

/// The keep-alive connections a hunt kept open from before the baseline to the end of the
/// calm-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeptConnections {
    /// Connections the load keeps (`--connections`).
    pub connections: usize,
    /// Connections opened in all; more than `connections` when the app closed some and
    /// the load opened new ones.
    pub opened: u64,
    /// Connections still open at the end of the calm-down.
    pub open_at_end: usize,
    /// Keep-warm requests sent between phases (one per connection idle for a second,
    /// marked `x-leakhound-keep-warm: 1`); not in `requests_sent` nor in any count of
    /// requests served.
    pub keep_warm_requests: u64,
}

impl KeptConnections {
    /// Connections the app closed during the hunt (each replaced by a new one).
    pub fn closed_by_app(&self) -> u64 {
        self.opened.saturating_sub(self.connections as u64)
    }
}

/// How an isolate's per-request rates are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestsMethod {
    /// By the requests the isolate's own HTTP servers started to handle, counted in it
    /// through `diagnostics_channel`'s `http.server.request.start`.
    Counted,
    /// By the units of load leakhound sent to the app (a single process, which serves
    /// every request sent; or an isolate whose requests could not be counted).
    Sent,
}

impl RequestsMethod {
    /// The wire name: `http_server_requests_counted` or `requests_sent`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestsMethod::Counted => "http_server_requests_counted",
            RequestsMethod::Sent => "requests_sent",
        }
    }
}

/// One isolate's part of a hunt.
#[derive(Debug, Clone)]
pub struct IsolateOutcome {
    /// Which isolate.
    pub isolate: Isolate,
    /// Its verdict, by the same rules as the whole hunt's ([`decide`]), on its own data.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// With [`Verdict::Inconclusive`], what would decide it.
    pub what_would_decide: Option<String>,
    /// Requests it served during the hunt (counted in it), when known.
    pub requests_served: Option<u64>,
    /// What its per-request rates are divided by.
    pub requests_method: RequestsMethod,
    /// Requests per load phase, in the unit of `requests_method`.
    pub requests_per_phase: Vec<u64>,
    /// When it was first followed, ms since the hunt started (0 for one present from the
    /// start).
    pub joined_ms: f64,
    /// When it exited, if it did during the hunt.
    pub exited_ms: Option<f64>,
    /// Whether it was snapshotted (it serves load, or the serving isolates are not known).
    pub snapshotted: bool,
    /// Followed from before the baseline to the calm-down (it neither joined late nor
    /// exited): only such isolates can make the app's verdict `NoLeak`.
    pub followed_throughout: bool,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<SnapshotRecord>,
    /// Its memory samples, sorted by time (`requests` in the unit of `requests_method`).
    pub samples: Vec<MemorySample>,
    /// Its floor statistics over all load phases.
    pub floor: FloorAnalysis,
    /// Its floor statistics over the last load phase.
    pub floor_last_phase: FloorAnalysis,
    /// Its calm-down check (None when it exited before).
    pub calm_down: Option<CalmDown>,
    /// Its leak finder report (no clusters without a whole series of snapshots).
    pub leaks: LeakReport,
    /// What happened to it that the reader should know ("exited at 4.2 s; …"), if anything.
    pub note: Option<String>,
    /// When its clusters included a list of Node's timers: the settle step's record (the
    /// `settled` snapshot taken once one-shot timers were due, and the clusters it
    /// dropped), see [`crate::Settle`].
    pub settle: Option<crate::settle::Settle>,
}

/// The hunt's verdict, its one-sentence reason and, when inconclusive, what would decide
/// it. The rules, in order:
///
/// 1. `Leak` when the leak finder found a cluster that grew through every snapshot;
/// 2. `Leak` when the post-GC floor of some memory kind rose through the last load phase
///    by more than the flat margin (lower 95 % bound of its slope above
///    [`leakhound_leaks::FLAT_BYTES_PER_REQUEST`] per request, 4× for RSS:
///    [`leakhound_leaks::FloorFit::rises_beyond_margin_per_request`]) and did not come
///    back in the calm-down; a smaller rise is warm-up as much as leak, and goes to the
///    rules below;
/// 3. `Inconclusive` when no load reached the app (no request completed in a load phase);
/// 4. `NoLeak` when memory came back to the baseline in the calm-down, or when the floors
///    of the JS heap and of external memory over the load phases are flat per request
///    (at least [`leakhound_leaks::MIN_FLAT_POINTS`] points, upper 95 % bound below
///    [`leakhound_leaks::FLAT_BYTES_PER_REQUEST`]);
/// 5. else `Inconclusive`: more load would give the floor the points it lacks.
pub(crate) fn decide(
    leaks: &LeakReport,
    floor: &FloorAnalysis,
    last: &FloorAnalysis,
    calm: &CalmDown,
    phases: &[PhaseRecord],
) -> (Verdict, String, Option<String>) {
    if let Some(c) = leaks.clusters.first() {
        let rate = c
            .per_request
            .as_ref()
            .map(|p| match c.unit.as_str() {
                // A growing Buffer's bytes (leaks' buffers.rs).
                "byte" => format!("{:.2} bytes per request", p.count),
                _ => format!("{:.2} {} per request", p.count, c.root_class),
            })
            .unwrap_or_else(|| format!("{} {}", c.count, c.root_class));
        let more = match leaks.clusters.len() {
            1 => String::new(),
            2 => " (+1 more cluster)".to_owned(),
            n => format!(" (+{} more clusters)", n - 1),
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
            None,
        );
    }
    let beyond: Vec<&str> = last
        .growing
        .iter()
        .filter(|k| {
            match k {
                MemoryKind::JsHeap => &last.heap_used,
                MemoryKind::External => &last.external,
                MemoryKind::Native => &last.rss,
            }
            .rises_beyond_margin_per_request()
        })
        .map(|k| k.as_str())
        .collect();
    if !beyond.is_empty() && !calm.returned_to_baseline {
        let what = beyond.join(" and ");
        return (
            Verdict::Leak,
            format!(
                "the post-GC floor of {what} kept rising through the last load phase and did not return to the baseline, though no growing object cluster was found in the snapshots"
            ),
            None,
        );
    }
    let loads: Vec<&PhaseRecord> = phases.iter().filter(|p| p.kind.is_load()).collect();
    if loads.iter().any(|p| p.requests == 0) {
        return (
            Verdict::Inconclusive,
            "a load phase completed no request, so the snapshots compare an idle app with itself".into(),
            Some(
                "make the load reach the app: check --url (or that the app listens on $PORT) and the load command"
                    .into(),
            ),
        );
    }
    if calm.returned_to_baseline {
        return (
            Verdict::NoLeak,
            "nothing allocated after the baseline keeps growing; memory returned to the baseline after the load".into(),
            None,
        );
    }
    let evidence = [
        floor.heap_used.evidence_per_request(),
        floor.external.evidence_per_request(),
    ];
    if evidence.iter().all(|e| *e == Evidence::Flat) {
        return (
            Verdict::NoLeak,
            format!(
                "nothing allocated after the baseline keeps growing; memory stayed above the baseline after the load, but the floor is flat under load (below {} B per request at 95 %)",
                leakhound_leaks::FLAT_BYTES_PER_REQUEST
            ),
            None,
        );
    }
    let more = Evidence::more_points_needed(&evidence).unwrap_or(1);
    let per_phase = loads.first().map(|p| p.requests).unwrap_or(0).max(1);
    let points_per_phase = (floor.heap_used.points as f64 / loads.len().max(1) as f64).max(1.0);
    let phases_needed = (more as f64 / points_per_phase).ceil() as u64;
    (
        Verdict::Inconclusive,
        "no object cluster keeps growing, but memory did not return to the baseline and the floor under load is not yet shown flat".into(),
        Some(format!(
            "more load: about {more} more floor point{} (e.g. --phases {} or --requests {}), or a longer --calm-down-ms",
            if more == 1 { "" } else { "s" },
            loads.len() as u64 + phases_needed.max(1),
            per_phase * (1 + phases_needed.max(1)),
        )),
    )
}

#[cfg(test)]
mod tests {
    use leakhound_leaks::analyze_floor;

    use super::*;

    fn no_clusters() -> LeakReport {
        LeakReport {
            clusters: Vec::new(),
            not_growing: Vec::new(),
            leaked_object_count: 0,
            warnings: Vec::new(),
        }
    }

    fn calm(returned: bool) -> CalmDown {
        CalmDown {
            baseline_heap_used_bytes: 10 << 20,
            after_heap_used_bytes: if returned { 10 << 20 } else { 13 << 20 },
            baseline_external_bytes: 1 << 20,
            after_external_bytes: 1 << 20,
            returned_to_baseline: returned,
            waited_ms: 1500,
        }
    }

    fn phases(requests: u64) -> Vec<PhaseRecord> {
        (1..=2)
            .map(|i| PhaseRecord {
                kind: PhaseKind::Load(i),
                start_ms: 0.0,
                end_ms: 0.0,
                requests,
                load: None,
            })
            .collect()
    }

    /// Floor points after full GCs, `n` of them over 4,000 requests, heap `level(i)`.
    fn floor(n: u64, level: impl Fn(u64) -> u64) -> FloorAnalysis {
        let samples: Vec<MemorySample> = (0..n)
            .map(|i| MemorySample {
                t_ms: i as f64 * 250.0,
                requests: i * 4000 / n.max(1),
                heap_used_bytes: level(i),
                external_bytes: 1 << 20,
                rss_bytes: 60 << 20,
                after_full_gc: true,
                ..Default::default()
            })
            .collect();
        analyze_floor(&samples, 0.0)
    }

    #[test]
    fn memory_back_at_the_baseline_is_no_leak() {
        let f = floor(3, |_| 10 << 20);
        let (v, _, next) = decide(&no_clusters(), &f, &f, &calm(true), &phases(2000));
        assert_eq!(v, Verdict::NoLeak);
        assert!(next.is_none());
    }

    #[test]
    fn a_flat_floor_under_load_is_no_leak_even_above_the_baseline() {
        let f = floor(12, |i| (12 << 20) + (i % 3) * 20_000);
        let (v, reason, _) = decide(&no_clusters(), &f, &f, &calm(false), &phases(2000));
        assert_eq!(v, Verdict::NoLeak, "{reason}: {:?}", f.heap_used);
    }

    #[test]
    fn too_few_floor_points_and_no_return_are_inconclusive_with_a_next_step() {
        let f = floor(3, |i| (12 << 20) + (i % 2) * 300_000);
        let (v, _, next) = decide(&no_clusters(), &f, &f, &calm(false), &phases(2000));
        assert_eq!(v, Verdict::Inconclusive);
        let next = next.expect("what would decide it");
        assert!(next.starts_with("more load: about "), "{next}");
        assert!(next.contains("--phases") && next.contains("--requests"), "{next}");
    }

    #[test]
    fn a_load_that_reached_nothing_is_inconclusive() {
        let f = floor(12, |_| 10 << 20);
        let (v, reason, next) = decide(&no_clusters(), &f, &f, &calm(true), &phases(0));
        assert_eq!(v, Verdict::Inconclusive, "{reason}");
        assert!(next.unwrap_or_default().contains("--url"));
    }

    #[test]
    fn a_rise_within_the_flat_margin_is_not_a_leak_on_the_floor_alone() {
        // A healthy fastify app on a busy machine: its floor rose 60-120 B per request in
        // the last load phase (code and caches warming up), with a lower bound above zero.
        let f = floor(12, |i| (8 << 20) + i * 30_000 + (i % 2) * 3_000);
        assert!(f.heap_used.growing, "{:?}", f.heap_used);
        let (lo, hi) = f.heap_used.bytes_per_request_ci95.unwrap();
        assert!(lo > 0.0 && hi < leakhound_leaks::FLAT_BYTES_PER_REQUEST, "{lo}…{hi}");
        let (v, reason, _) = decide(&no_clusters(), &f, &f, &calm(false), &phases(2000));
        assert_eq!(v, Verdict::NoLeak, "{reason}");
        // Above the margin it is a leak, clusters or not.
        let f = floor(12, |i| (8 << 20) + i * 150_000 + (i % 2) * 3_000);
        assert!(f.heap_used.bytes_per_request_ci95.unwrap().0 > leakhound_leaks::FLAT_BYTES_PER_REQUEST);
        let (v, reason, _) = decide(&no_clusters(), &f, &f, &calm(false), &phases(2000));
        assert_eq!(v, Verdict::Leak, "{reason}");
    }

    #[test]
    fn a_rising_floor_that_stays_up_is_a_leak_without_clusters() {
        let f = floor(12, |i| (10 << 20) + i * 400_000);
        let (v, reason, _) = decide(&no_clusters(), &f, &f, &calm(false), &phases(2000));
        assert_eq!(v, Verdict::Leak, "{reason}");
        assert!(reason.contains("js_heap"), "{reason}");
    }
}
