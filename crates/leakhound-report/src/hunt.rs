//! The `hunt` report: verdict, memory series and floor statistics, snapshots, load, and
//! the leak finder's clusters, as stable JSON ([`HuntJson`]), terminal text, and a
//! self-contained HTML page (the `html` module renders it).

use leakhound_hunt::{HuntOutcome, IsolateKind, IsolateOutcome, PhaseKind, SnapshotLabel, Verdict};
use serde::{Deserialize, Serialize};

use crate::format;
use crate::leaks::{ClusterJson, ClusterOriginJson, NotGrowingJson};

/// A verdict on the wire: `"leak"` or `"no_leak"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictJson {
    /// Something keeps growing.
    Leak,
    /// Nothing keeps growing.
    NoLeak,
    /// The run cannot tell; `what_would_decide` says what would.
    Inconclusive,
}

impl VerdictJson {
    /// The wire text: `leak` or `no_leak`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictJson::Leak => "leak",
            VerdictJson::NoLeak => "no_leak",
            VerdictJson::Inconclusive => "inconclusive",
        }
    }
}

impl From<Verdict> for VerdictJson {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Leak => VerdictJson::Leak,
            Verdict::NoLeak => VerdictJson::NoLeak,
            Verdict::Inconclusive => VerdictJson::Inconclusive,
        }
    }
}

/// Serde through a type's text form ([`std::fmt::Display`] and [`std::str::FromStr`]):
/// phase names (`load-1`, `calm-down`) and snapshot labels (`final-2`) are strings on
/// the wire and types in Rust.
mod text_form {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// The stable JSON of `leakhound hunt --json` (`schema_version` 1; fields are only ever
/// added). Sizes in bytes, times in milliseconds since the hunt started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HuntJson {
    /// Version of this document's layout: always 1 (fields are only ever added).
    pub schema_version: u32,
    /// Which report this is: always `"hunt"`.
    pub kind: String,
    /// `"leak"` or `"no_leak"`.
    pub verdict: VerdictJson,
    /// One sentence: why the verdict.
    pub reason: String,
    /// With `verdict: "inconclusive"`, what would decide it ("more load: …"); with a
    /// `leak` whose clusters include one-shot timers that could not be waited for
    /// (`settle.status: "not_settled"`), what would tell whether they free what grew;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_would_decide: Option<String>,
    /// The app: command line or attached pid.
    pub app: AppJson,
    /// Units of load sent in all (warm-up included).
    pub requests_sent: u64,
    /// Units of load the first load phase completed; each phase's own count is in
    /// `phases` (per-request rates divide by each step's own count).
    pub requests_per_phase: u64,
    /// Phases in order (warm-up, load phases, calm-down), with their time spans.
    pub phases: Vec<PhaseJson>,
    /// Snapshots taken, oldest first.
    pub snapshots: Vec<SnapshotJson>,
    /// Every `process.memoryUsage()` sample.
    pub memory: Vec<MemoryPointJson>,
    /// Floor statistics (post-GC samples after the warm-up).
    pub floor: FloorJson,
    /// Whether memory came back to the baseline once load stopped.
    pub calm_down: CalmDownJson,
    /// Load generator figures per phase.
    pub load: Vec<LoadJson>,
    /// The leak finder's clusters (empty when nothing leaks), each with `per_request`.
    pub clusters: Vec<ClusterJson>,
    /// Surviving new objects that did not grow.
    pub not_growing: Vec<NotGrowingJson>,
    /// Problems that did not stop the hunt, one line each (failed requests in a phase,
    /// the leak finder's warnings about the snapshots); empty when there were none.
    pub warnings: Vec<String>,
    /// Every isolate of the app that was followed, the main process first (one entry for a
    /// single process): its own memory series, floor, snapshots, clusters and verdict.
    /// The top-level `memory`, `floor` and `calm_down` are the main process's; `verdict`,
    /// `requests_sent` and `clusters` are the whole app's.
    #[serde(default)]
    pub processes: Vec<ProcessJson>,
    /// The sampling heap profile's file (`--sample-allocations`): `allocations.heapprofile`
    /// in the output folder, which DevTools' Memory panel loads; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_profile: Option<String>,
    /// The top allocation sites of what survived the load phases, by the sampling heap
    /// profile (`--sample-allocations`), most bytes first; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surviving_allocations: Option<Vec<SurvivingAllocationJson>>,
    /// The sampling profile's call tree as folded stacks, for the HTML flame graph; not
    /// part of the JSON.
    #[serde(skip)]
    pub allocation_flame: Vec<(String, u64)>,
    /// Active resources (handles, requests, timers) over the hunt, from the samples
    /// that counted them; absent when none did (node before 17.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_resources: Option<ActiveResourcesJson>,
    /// When memory grew but the leak finder found no cluster: what did grow (handles,
    /// external memory, RSS only, the JS heap) and what to try, one paragraph; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_cluster: Option<String>,
    /// Node's own `MaxListenersExceededWarning`s, read from the app's output, one per
    /// emitter class and event, in the order node first printed each; empty when it
    /// printed none. A hunt with one is never `no_leak`.
    #[serde(default)]
    pub node_warnings: Vec<NodeWarningJson>,
    /// The built-in load's keep-alive connections, kept open from before the baseline to
    /// the end of the calm-down; absent when they were not (`--fresh-connections`, a load
    /// command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionsJson>,
    /// When the main process's clusters (else the first isolate's that did; each isolate
    /// has its own in `processes[].settle`) included a list of Node's timers (a TTL cache's
    /// `setTimeout(() => cache.delete(key), d)` per request): whether the hunt waited for
    /// them to come due and took a `settled` snapshot, and which clusters it dropped or
    /// kept; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<SettleJson>,
}

/// The settle step: a hunt whose clusters include a list of timers of duration `d` waits
/// until `d` plus a margin after the load stopped (no load running), takes a `settled`
/// snapshot and keeps only the clusters the leak finder still finds with it in the
/// final's place (memlab's "final": after the action is undone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleJson {
    /// `settled` (a settled snapshot was taken and compared), `repeating` (every timer
    /// of those durations repeats, `setInterval`: never due, nothing waited for) or
    /// `not_settled` (no settled snapshot: `why_not`, `what_would_decide`).
    pub status: String,
    /// The growing timer lists that called for it.
    pub timers: Vec<SettleTimersJson>,
    /// Path of the `settled` snapshot; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Time from the end of the last load phase to the settled snapshot, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_load_ms: Option<u64>,
    /// Clusters of the baseline/target/final snapshots that the settled snapshot no
    /// longer shows growing: not leaks, what the timers were about to free.
    pub dropped_clusters: Vec<DroppedClusterJson>,
    /// Holders of the clusters the settled snapshot still shows growing (in `clusters`).
    pub kept_clusters: Vec<String>,
    /// The calm-down's check again, read after a GC right after the settled snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calm_down: Option<CalmDownJson>,
    /// With `not_settled`: why no settled snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    /// With `not_settled`: what would decide whether the clusters are leaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_would_decide: Option<String>,
    /// The whole step in one sentence, as the text and HTML reports say it.
    pub summary: String,
}

/// One growing timer list the settle step was about.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleTimersJson {
    /// The cluster's holder: `timerListMap[8000]`.
    pub holder: String,
    /// The timers' duration, ms.
    pub duration_ms: u64,
    /// Pending one-shot timers (`setTimeout`) of that duration in the app after the
    /// calm-down; absent when they could not be counted (Deno).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_shot: Option<u64>,
    /// Pending repeating timers (`setInterval`) of that duration then; absent when they
    /// could not be counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeating: Option<u64>,
}

/// A cluster the settled snapshot dropped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DroppedClusterJson {
    /// Its holder.
    pub holder: String,
    /// Its holder's class.
    pub holder_class: String,
    /// Its pattern.
    pub pattern: String,
    /// Class of what accumulated.
    pub root_class: String,
    /// Its counts in the snapshots before the settled one, baseline first.
    pub counts_per_snapshot: Vec<u64>,
    /// Its count in the settled snapshot, when the leak finder still saw its holder;
    /// absent: gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_count: Option<u64>,
    /// Why it was dropped: `pending one-shot timers of 8000 ms: gone in a snapshot taken
    /// 9 s after the load stopped`.
    pub why: String,
}

impl SettleJson {
    /// The wire form of a settle record.
    pub fn from_settle(s: &leakhound_hunt::Settle) -> SettleJson {
        use leakhound_hunt::SettleStatus;
        let why = s.dropped_why();
        let after = format::duration_ms(s.after_load_ms.unwrap_or(0) as f64);
        let summary = match &s.status {
            SettleStatus::Settled => {
                let dropped: Vec<&str> = s.dropped.iter().map(|d| d.holder.as_str()).collect();
                let back = match &s.calm_down {
                    Some(c) if c.returned_to_baseline => "; memory back at the baseline",
                    Some(_) => "; memory still above the baseline",
                    None => "",
                };
                format!(
                    "{}: a snapshot taken {after} after the load stopped, once they were due, {}{}{back}",
                    s.timers_text(),
                    match dropped.len() {
                        0 => "still shows every cluster growing".to_owned(),
                        n => format!(
                            "no longer shows {} growing ({})",
                            format::plural(n as u64, "cluster", "clusters"),
                            dropped.join(", ")
                        ),
                    },
                    match (s.dropped.is_empty(), s.kept.len()) {
                        (true, _) | (false, 0) => String::new(),
                        (false, _) => format!("; still growing: {}", s.kept.join(", ")),
                    },
                )
            }
            SettleStatus::Repeating => format!("{}: never due, so no settled snapshot was needed", s.timers_text()),
            SettleStatus::NotSettled {
                why: why_not,
                what_would_decide,
            } => format!(
                "{} may not have been due at the final snapshot, and no settled snapshot was taken ({why_not}); to decide: {what_would_decide}",
                s.timers_text()
            ),
        };
        let (why_not, what_would_decide) = match &s.status {
            SettleStatus::NotSettled { why, what_would_decide } => (Some(why.clone()), Some(what_would_decide.clone())),
            _ => (None, None),
        };
        SettleJson {
            status: s.status.as_str().to_owned(),
            timers: s
                .pending
                .iter()
                .map(|p| SettleTimersJson {
                    holder: p.holder.clone(),
                    duration_ms: p.duration_ms,
                    one_shot: p.counted.map(|c| c.one_shot),
                    repeating: p.counted.map(|c| c.repeating),
                })
                .collect(),
            snapshot: s.snapshot.as_ref().map(|r| r.path.display().to_string()),
            after_load_ms: s.after_load_ms,
            dropped_clusters: s
                .dropped
                .iter()
                .map(|d| DroppedClusterJson {
                    holder: d.holder.clone(),
                    holder_class: d.holder_class.clone(),
                    pattern: d.pattern.clone(),
                    root_class: d.root_class.clone(),
                    counts_per_snapshot: d.counts_per_snapshot.clone(),
                    settled_count: d.settled_count,
                    why: why.clone(),
                })
                .collect(),
            kept_clusters: s.kept.clone(),
            calm_down: s.calm_down.as_ref().map(calm_down_json),
            why_not,
            what_would_decide,
            summary,
        }
    }

    /// The note a kept timer-list cluster carries in a hunt (`timer_list.note`): what
    /// the settle step showed about it.
    fn cluster_note(&self) -> String {
        match self.status.as_str() {
            "settled" => format!(
                "still growing in the settled snapshot taken {} after the load stopped, once one-shot timers of this duration were due: not merely pending",
                format::duration_ms(self.after_load_ms.unwrap_or(0) as f64)
            ),
            "repeating" => "every pending timer of this duration repeats (setInterval): they never come due".to_owned(),
            _ => format!(
                "they may simply not be due yet; no settled snapshot was taken ({}); to decide: {}",
                self.why_not.as_deref().unwrap_or(""),
                self.what_would_decide.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Node's warning that listeners pile up on one event of an emitter
/// (`(node:PID) MaxListenersExceededWarning: Possible EventEmitter memory leak detected.
/// 11 close listeners added to [Socket]. …`), grouped over the emitters of one class that
/// warned for that event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeWarningJson {
    /// The warning's name: `MaxListenersExceededWarning`.
    pub name: String,
    /// `EventEmitter` or `EventTarget`.
    pub emitter_kind: String,
    /// The emitter's class as node inspects it (`Socket`, `AbortSignal`); absent when the
    /// line does not name it (node ≤ 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitter_class: Option<String>,
    /// The event (`close`, `Symbol(kFoo)`).
    pub event: String,
    /// The listener count node reported (the highest over the emitters).
    pub listener_count: u64,
    /// The limit node reported (node ≥ 20); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_listeners: Option<u64>,
    /// How many emitters of this class warned for this event (node warns once each).
    pub emitters_warned: u64,
    /// The pid in the first warning's `(node:PID)`; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Where the listener was added, from a `--trace-warnings` stack: its first frame
    /// outside node's own code; absent without the stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<String>,
    /// The first warning's line as node printed it.
    pub message: String,
    /// One line for people: `node warned: 11 close listeners added to [Socket]`.
    pub text: String,
}

impl NodeWarningJson {
    /// The wire form of one grouped warning.
    pub fn from_warning(w: &leakhound_hunt::ListenerWarning) -> NodeWarningJson {
        NodeWarningJson {
            name: leakhound_hunt::node_warnings::MAX_LISTENERS_WARNING.to_owned(),
            emitter_kind: w.emitter_kind.clone(),
            emitter_class: w.emitter_class.clone(),
            event: w.event.clone(),
            listener_count: w.listener_count,
            max_listeners: w.max_listeners,
            emitters_warned: w.emitters_warned,
            pid: w.pid,
            added_at: w.added_at().map(str::to_owned),
            message: w.message.clone(),
            text: w.to_string(),
        }
    }
}

/// The load's connections kept open across the hunt's phases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsJson {
    /// Always true (the object is absent when connections were not kept).
    pub kept: bool,
    /// Connections the load keeps (`--connections`).
    pub connections: usize,
    /// Connections opened in all (more than `connections` when the app closed some).
    pub opened: u64,
    /// Connections the app closed during the hunt, each replaced by a new one.
    pub closed_by_app: u64,
    /// Connections still open at the end of the calm-down.
    pub open_at_end: usize,
    /// Requests sent between phases to keep idle connections open (marked
    /// `x-leakhound-keep-warm: 1`); not in `requests_sent` or any request count.
    pub keep_warm_requests: u64,
}

impl ConnectionsJson {
    /// The wire form of the kept connections.
    pub fn from_kept(k: &leakhound_hunt::KeptConnections) -> ConnectionsJson {
        ConnectionsJson {
            kept: true,
            connections: k.connections,
            opened: k.opened,
            closed_by_app: k.closed_by_app(),
            open_at_end: k.open_at_end,
            keep_warm_requests: k.keep_warm_requests,
        }
    }

    /// `10 connections kept open from the warm-up to the calm-down (0 closed by the app;
    /// 23 keep-warm requests between phases)`.
    pub fn text(&self) -> String {
        format!(
            "{} connection{} kept open from before the baseline to the calm-down ({} closed by the app; {} keep-warm request{} between phases)",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.closed_by_app,
            self.keep_warm_requests,
            if self.keep_warm_requests == 1 { "" } else { "s" },
        )
    }
}

/// Gives the timer-list clusters of `clusters` the note of what `settle` showed.
fn note_timer_lists(clusters: &mut [ClusterJson], settle: Option<&SettleJson>) {
    let Some(settle) = settle else { return };
    for c in clusters {
        if let Some(t) = &mut c.timer_list
            && settle.timers.iter().any(|p| p.holder == c.holder)
        {
            t.note = settle.cluster_note();
        }
    }
}

/// One isolate of the app in a hunt: a process's main thread or a worker thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessJson {
    /// Its process id.
    pub pid: u32,
    /// `main`, `cluster_worker`, `child` or `worker_thread`.
    pub kind: String,
    /// A worker thread's `threadId`; absent for a process's main thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u32>,
    /// A cluster worker's `cluster.worker.id`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<u32>,
    /// The isolate in words: `cluster worker 2, pid 4711`, `worker thread 1 of pid 4711`.
    pub name: String,
    /// Its own verdict: `leak`, `no_leak` or `inconclusive`.
    pub verdict: VerdictJson,
    /// Why, in one sentence.
    pub reason: String,
    /// With `verdict: "inconclusive"`, what would decide it; with a `leak` whose timers
    /// could not be settled, what would tell (as the top-level field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_would_decide: Option<String>,
    /// Requests its HTTP servers handled during the hunt, counted in it; absent when they
    /// could not be counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_served: Option<u64>,
    /// What its per-request rates divide by: `http_server_requests_counted` (the requests
    /// it served, counted through `diagnostics_channel`) or `requests_sent` (the units of
    /// load sent to the whole app).
    pub requests_method: String,
    /// Requests per load phase, in the unit of `requests_method`.
    pub requests_per_phase: Vec<u64>,
    /// When it was first followed, ms since the hunt started (0: from the start).
    pub joined_ms: f64,
    /// When it exited, if it did during the hunt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_ms: Option<f64>,
    /// Whether it was snapshotted (it serves load; a cluster's primary does not).
    pub snapshotted: bool,
    /// Followed from before the baseline to the calm-down (neither a late replacement nor
    /// exited): only such isolates can make the app's verdict `no_leak`.
    #[serde(default)]
    pub followed_throughout: bool,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<SnapshotJson>,
    /// Its floor statistics; `floor.growing` says which memory grows in it (`js_heap`,
    /// `external`, `native`; never `native` for a worker thread, whose rss is its
    /// process's).
    pub floor: FloorJson,
    /// Its calm-down check; absent when it exited before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calm_down: Option<CalmDownJson>,
    /// Its leak finder's clusters, each `per_request` in the unit of `requests_method`.
    pub clusters: Vec<ClusterJson>,
    /// Its memory samples (`requests` in the unit of `requests_method`).
    pub memory: Vec<MemoryPointJson>,
    /// What happened to it that matters (`exited at 4.2 s; …`), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Its settle step, as the top-level `settle`; absent when its clusters had no list
    /// of timers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<SettleJson>,
}

/// An allocation site of the sampling heap profile: one function, all its stacks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SurvivingAllocationJson {
    /// The function's name (`(anonymous)` when it has none).
    pub function: String,
    /// Its script's URL (`file:///srv/app/server.js`, `node:events`).
    pub url: String,
    /// Line of the function's start, from 1 (0 unknown).
    pub line: u32,
    /// Sampled bytes allocated there and still alive at the end (an estimate: each
    /// sample stands for about the sampling interval).
    pub bytes: u64,
    /// Share of all surviving sampled bytes, 0 to 1.
    pub share: f64,
}

/// Active resources (`process.getActiveResourcesInfo()`: handles such as sockets,
/// servers and file watchers, requests, timers) at the start and the end of a hunt: a
/// growth signal of its own, for what lives outside the JS heap's objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveResourcesJson {
    /// Count in the first sample that had one (after the warm-up's start).
    pub first: u64,
    /// Count in the last sample that had one (after the calm-down).
    pub last: u64,
    /// Most counted in any sample.
    pub max: u64,
    /// Added per unit of load between the first and the last sample (0 when no load
    /// was sent between them).
    pub per_request: f64,
    /// They grew and stayed: at least [`HANDLES_GROWTH_MIN`] more at the end, and at
    /// least 20 % more, after the load stopped.
    pub growing: bool,
}

/// The fewest more active resources at the end of a hunt than at its start that count
/// as growth.
pub const HANDLES_GROWTH_MIN: u64 = 5;

impl ActiveResourcesJson {
    /// The trend of the samples that counted active resources; `None` when none did.
    pub fn from_samples(samples: &[leakhound_leaks::MemorySample]) -> Option<ActiveResourcesJson> {
        let counted: Vec<(u64, u64)> = samples
            .iter()
            .filter_map(|s| s.active_resources.map(|n| (s.requests, n)))
            .collect();
        let &(r0, first) = counted.first()?;
        let &(r1, last) = counted.last()?;
        let max = counted.iter().map(|c| c.1).max().unwrap_or(last);
        let per_request = if r1 > r0 {
            (last as f64 - first as f64) / (r1 - r0) as f64
        } else {
            0.0
        };
        let growing = last >= first + HANDLES_GROWTH_MIN && last as f64 >= first as f64 * 1.2;
        Some(ActiveResourcesJson {
            first,
            last,
            max,
            per_request,
            growing,
        })
    }
}

/// The app under test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppJson {
    /// Command line when leakhound started it.
    pub command: Option<String>,
    /// Process id of the app: the node process leakhound spawned, or the one it attached to.
    pub pid: u32,
    /// The URL load went to.
    pub url: Option<String>,
}

/// One phase of the hunt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseJson {
    /// `warmup`, `load-1`, `load-2`, ..., `calm-down`.
    #[serde(with = "text_form")]
    pub name: PhaseKind,
    /// Start, ms since the hunt started.
    pub start_ms: f64,
    /// End, ms since the hunt started.
    pub end_ms: f64,
    /// Units of load sent in the phase.
    pub requests: u64,
}

/// One heap snapshot the hunt took (after a forced GC) and wrote to its output folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotJson {
    /// `baseline`, `target`, `final-1`, …, `final`.
    #[serde(with = "text_form")]
    pub label: SnapshotLabel,
    /// Path of the `.heapsnapshot` file in the hunt's output folder.
    pub path: String,
    /// Size of that file, bytes.
    pub bytes: u64,
    /// When it was taken, ms since the hunt started.
    pub t_ms: f64,
    /// How long it took, ms.
    pub duration_ms: u64,
    /// Units of load sent before it.
    pub requests: u64,
    /// The process it is a snapshot of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The worker thread it is a snapshot of; absent for a process's main thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u32>,
}

/// One memory sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryPointJson {
    /// ms since the hunt started.
    pub t_ms: f64,
    /// Units of load sent so far.
    pub requests: u64,
    /// `rss` of `process.memoryUsage()`: resident set size of the whole process, bytes.
    pub rss_bytes: u64,
    /// `heapTotal` of `process.memoryUsage()`: memory committed for the V8 heap, bytes.
    pub heap_total_bytes: u64,
    /// `heapUsed` of `process.memoryUsage()`: live and not yet collected V8 objects, bytes.
    pub heap_used_bytes: u64,
    /// `external` of `process.memoryUsage()`: C++ memory of JS objects, array buffers
    /// included, bytes.
    pub external_bytes: u64,
    /// `arrayBuffers` of `process.memoryUsage()`: backing stores of `ArrayBuffer`s and
    /// `Buffer`s, bytes (0 on node versions without it).
    pub array_buffers_bytes: u64,
    /// Taken right after a full GC (a floor point).
    pub after_full_gc: bool,
    /// Active resources (`process.getActiveResourcesInfo().length`: handles, requests,
    /// timers) when the sample was read; absent where not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_resources: Option<u64>,
}

/// A floor fit of one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorFitJson {
    /// `heap_used`, `external` or `rss`.
    pub metric: String,
    /// Floor points used.
    pub points: usize,
    /// First floor, bytes.
    pub first_bytes: u64,
    /// Last floor, bytes.
    pub last_bytes: u64,
    /// Slope, bytes per request.
    pub bytes_per_request: Option<f64>,
    /// 95 % confidence interval of the slope per request.
    pub bytes_per_request_ci95: Option<(f64, f64)>,
    /// Slope, bytes per hour.
    pub bytes_per_hour: Option<f64>,
    /// 95 % confidence interval of the slope per hour.
    pub bytes_per_hour_ci95: Option<(f64, f64)>,
    /// Growing with 95 % confidence by a meaningful amount.
    pub growing: bool,
}

/// Floor statistics: lines fitted through the post-GC samples from the first load phase
/// to the calm-down.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorJson {
    /// The `heapUsed` floor over all load phases.
    pub heap_used: FloorFitJson,
    /// External memory over all load phases.
    pub external: FloorFitJson,
    /// RSS over all load phases.
    pub rss: FloorFitJson,
    /// Which memory grows over all load phases: `js_heap`, `external`, `native`.
    pub growing: Vec<String>,
    /// Which memory still grows in the last load phase (what the verdict uses when no
    /// cluster was found).
    pub growing_last_phase: Vec<String>,
}

/// The calm-down check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalmDownJson {
    /// heapUsed after forced GC right before the baseline snapshot.
    pub baseline_heap_used_bytes: u64,
    /// heapUsed after the calm-down and forced GC.
    pub after_heap_used_bytes: u64,
    /// external before the baseline snapshot.
    pub baseline_external_bytes: u64,
    /// external after the calm-down.
    pub after_external_bytes: u64,
    /// Both came back to within 2 % of the baseline (at least 512 KiB of heap, 1 MiB of
    /// external memory).
    pub returned_to_baseline: bool,
    /// How long the calm-down waited, ms.
    pub waited_ms: u64,
}

/// Load figures of one phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadJson {
    /// The phase (`warmup`, `load-N`).
    #[serde(with = "text_form")]
    pub phase: PhaseKind,
    /// Units of load sent.
    pub requests_sent: u64,
    /// Responses below 400.
    pub responses_2xx_3xx: u64,
    /// Responses with a 4xx status (client errors).
    pub responses_4xx: u64,
    /// Responses with a 5xx status (server errors).
    pub responses_5xx: u64,
    /// Connection and timeout errors.
    pub errors: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Median latency (request sent to end of response body; failed requests left out), ms.
    pub latency_p50_ms: f64,
    /// 90th percentile of latency, ms.
    pub latency_p90_ms: f64,
    /// 99th percentile of latency, ms.
    pub latency_p99_ms: f64,
    /// Slowest response's latency, ms.
    pub latency_max_ms: f64,
    /// Wall time, ms.
    pub elapsed_ms: f64,
}

impl FloorFitJson {
    /// The wire form of one floor fit.
    pub fn from_fit(f: &leakhound_leaks::FloorFit) -> FloorFitJson {
        FloorFitJson {
            metric: f.metric.to_string(),
            points: f.points,
            first_bytes: f.first_bytes,
            last_bytes: f.last_bytes,
            bytes_per_request: f.bytes_per_request,
            bytes_per_request_ci95: f.bytes_per_request_ci95,
            bytes_per_hour: f.bytes_per_hour,
            bytes_per_hour_ci95: f.bytes_per_hour_ci95,
            growing: f.growing,
        }
    }
}

impl MemoryPointJson {
    /// The wire form of one memory sample.
    pub fn from_sample(m: &leakhound_leaks::MemorySample) -> MemoryPointJson {
        MemoryPointJson {
            t_ms: m.t_ms,
            requests: m.requests,
            rss_bytes: m.rss_bytes,
            heap_total_bytes: m.heap_total_bytes,
            heap_used_bytes: m.heap_used_bytes,
            external_bytes: m.external_bytes,
            array_buffers_bytes: m.array_buffers_bytes,
            after_full_gc: m.after_full_gc,
            active_resources: m.active_resources,
        }
    }
}

fn snapshot_json(s: &leakhound_hunt::SnapshotRecord) -> SnapshotJson {
    SnapshotJson {
        label: s.label,
        path: s.path.display().to_string(),
        bytes: s.bytes,
        t_ms: s.t_ms,
        duration_ms: s.duration_ms,
        requests: s.requests,
        pid: Some(s.isolate.pid),
        thread_id: s.isolate.thread_id,
    }
}

fn floor_json(f: &leakhound_leaks::FloorAnalysis, last: &leakhound_leaks::FloorAnalysis) -> FloorJson {
    let fit = FloorFitJson::from_fit;
    FloorJson {
        heap_used: fit(&f.heap_used),
        external: fit(&f.external),
        rss: fit(&f.rss),
        growing: f.growing.iter().map(|s| s.to_string()).collect(),
        growing_last_phase: last.growing.iter().map(|s| s.to_string()).collect(),
    }
}

fn calm_down_json(c: &leakhound_hunt::CalmDown) -> CalmDownJson {
    CalmDownJson {
        baseline_heap_used_bytes: c.baseline_heap_used_bytes,
        after_heap_used_bytes: c.after_heap_used_bytes,
        baseline_external_bytes: c.baseline_external_bytes,
        after_external_bytes: c.after_external_bytes,
        returned_to_baseline: c.returned_to_baseline,
        waited_ms: c.waited_ms,
    }
}

fn origin(i: &leakhound_hunt::Isolate) -> ClusterOriginJson {
    ClusterOriginJson {
        pid: Some(i.pid),
        thread_id: i.thread_id,
        isolate: Some(i.to_string()),
    }
}

impl ProcessJson {
    /// The wire form of one isolate's outcome.
    pub fn from_outcome(p: &IsolateOutcome) -> ProcessJson {
        let per_phase = p.requests_per_phase.first().map(|n| *n as f64);
        let leaks = crate::leaks::leaks_json(&[], &p.leaks, per_phase);
        let settle = p.settle.as_ref().map(SettleJson::from_settle);
        let mut clusters: Vec<ClusterJson> = leaks
            .clusters
            .into_iter()
            .map(|mut c| {
                c.origin = origin(&p.isolate);
                c
            })
            .collect();
        note_timer_lists(&mut clusters, settle.as_ref());
        ProcessJson {
            pid: p.isolate.pid,
            kind: p.isolate.kind.as_str().to_owned(),
            thread_id: p.isolate.thread_id,
            worker_id: p.isolate.worker_id,
            name: p.isolate.to_string(),
            verdict: p.verdict.into(),
            reason: p.reason.clone(),
            what_would_decide: p.what_would_decide.clone(),
            requests_served: p.requests_served,
            requests_method: p.requests_method.as_str().to_owned(),
            requests_per_phase: p.requests_per_phase.clone(),
            joined_ms: p.joined_ms,
            exited_ms: p.exited_ms,
            snapshotted: p.snapshotted,
            followed_throughout: p.followed_throughout,
            snapshots: p.snapshots.iter().map(snapshot_json).collect(),
            floor: floor_json(&p.floor, &p.floor_last_phase),
            calm_down: p.calm_down.as_ref().map(calm_down_json),
            clusters,
            memory: p.samples.iter().map(MemoryPointJson::from_sample).collect(),
            note: p.note.clone(),
            settle,
        }
    }

    /// Whether this is a worker thread.
    pub fn is_worker_thread(&self) -> bool {
        self.kind == IsolateKind::WorkerThread.as_str()
    }
}

/// Load phases that last less than this in all (10 minutes) get per-request slopes only
/// in the text and HTML reports: a slope measured over seconds and multiplied up to an
/// hour says little about the hour (the JSON keeps both figures).
pub const PER_HOUR_MIN_LOAD_MS: f64 = 10.0 * 60_000.0;

impl HuntJson {
    /// What the floor's rise means for this verdict, in one line, or `None` when nothing
    /// rose: `growing memory: …` for a leak; for any other verdict, a rise is either
    /// settling after the warm-up (not in the last phase) or smaller than the flat margin
    /// (the verdict's rules do not count it as a leak: one message per result).
    pub fn floor_note(&self) -> Option<String> {
        if self.floor.growing.is_empty() && self.floor.growing_last_phase.is_empty() {
            return None;
        }
        let kinds = |k: &[String]| k.join(", ");
        // The JS heap's rise under load was the pending timers' entries: said so, rather than
        // measured against the flat margin.
        let js_heap_rose = self
            .floor
            .growing
            .iter()
            .chain(&self.floor.growing_last_phase)
            .any(|k| k == "js_heap");
        if self.verdict != VerdictJson::Leak && js_heap_rose && self.settled_back_at_baseline() {
            return Some(
                "the floor of js_heap rose under load while one-shot timers were pending, and memory was back at the baseline once they were due (settle)"
                    .to_owned(),
            );
        }
        if self.verdict == VerdictJson::Leak {
            let what = if self.floor.growing.is_empty() {
                &self.floor.growing_last_phase
            } else {
                &self.floor.growing
            };
            return Some(format!("growing memory: {}", kinds(what)));
        }
        if self.floor.growing_last_phase.is_empty() {
            return Some(format!(
                "settling after the warm-up: the floor of {} rose over the load phases but not in the last one",
                kinds(&self.floor.growing)
            ));
        }
        let rate = match self.floor.heap_used.bytes_per_request_ci95 {
            Some((lo, hi)) if self.floor.growing_last_phase.iter().any(|k| k == "js_heap") => {
                format!(" (heapUsed {lo:+.0}…{hi:+.0} B/request at 95 %)")
            }
            _ => String::new(),
        };
        Some(format!(
            "the floor of {} rose slightly{rate}, less than the {} B/request that separates a leak from warm-up (code compiled on first use, caches filling); a leak of whole objects per request would show as a cluster",
            kinds(&self.floor.growing_last_phase),
            leakhound_leaks::FLAT_BYTES_PER_REQUEST
        ))
    }

    /// Whether a settled snapshot was taken and memory read after it was back at the
    /// baseline.
    pub fn settled_back_at_baseline(&self) -> bool {
        self.settle
            .as_ref()
            .is_some_and(|s| s.status == "settled" && s.calm_down.as_ref().is_some_and(|c| c.returned_to_baseline))
    }

    /// Time spent in the load phases, ms (warm-up and calm-down excluded).
    pub fn load_ms(&self) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.name.is_load())
            .map(|p| (p.end_ms - p.start_ms).max(0.0))
            .sum()
    }

    /// Whether the load lasted long enough ([`PER_HOUR_MIN_LOAD_MS`]) for per-hour slopes.
    pub fn shows_per_hour(&self) -> bool {
        self.load_ms() >= PER_HOUR_MIN_LOAD_MS
    }

    /// The requests each load phase completed, as a person reads them: `"2 000 per phase"`
    /// (a narrow space between thousands) when every phase completed the same count, else `"835, 880 per phase"` (falling
    /// back to [`HuntJson::requests_per_phase`] when no phase was recorded).
    pub fn per_phase_text(&self) -> String {
        use crate::format::count;
        let counts: Vec<u64> = self
            .phases
            .iter()
            .filter(|p| p.name.is_load())
            .map(|p| p.requests)
            .collect();
        match counts.split_first() {
            Some((first, rest)) if rest.iter().any(|n| n != first) => {
                let list: Vec<String> = counts.iter().map(|n| count(*n)).collect();
                format!("{} per phase", list.join(", "))
            }
            Some((first, _)) => format!("{} per phase", count(*first)),
            None => format!("{} per phase", count(self.requests_per_phase)),
        }
    }

    /// The wire form of a hunt's outcome; clusters' rates are per request of one load
    /// phase.
    pub fn from_outcome(o: &HuntOutcome) -> HuntJson {
        let leaks = crate::leaks::leaks_json(&[], &o.leaks, Some(o.requests_per_phase as f64));
        let mut report = HuntJson {
            schema_version: 1,
            kind: "hunt".into(),
            verdict: o.verdict.into(),
            reason: o.reason.clone(),
            what_would_decide: o.what_would_decide.clone(),
            app: AppJson {
                command: o.command_line.clone(),
                pid: o.pid,
                url: o.url.clone(),
            },
            requests_sent: o.requests_sent,
            requests_per_phase: o.requests_per_phase,
            phases: o
                .phases
                .iter()
                .map(|p| PhaseJson {
                    name: p.kind,
                    start_ms: p.start_ms,
                    end_ms: p.end_ms,
                    requests: p.requests,
                })
                .collect(),
            snapshots: o.snapshots.iter().map(snapshot_json).collect(),
            memory: o.samples.iter().map(MemoryPointJson::from_sample).collect(),
            floor: floor_json(&o.floor, &o.floor_last_phase),
            calm_down: calm_down_json(&o.calm_down),
            load: o
                .phases
                .iter()
                .filter_map(|p| p.load.as_ref().map(|l| (p, l)))
                .map(|(p, l)| LoadJson {
                    phase: p.kind,
                    requests_sent: l.requests_sent,
                    responses_2xx_3xx: l.responses_2xx_3xx,
                    responses_4xx: l.responses_4xx,
                    responses_5xx: l.responses_5xx,
                    errors: l.errors,
                    requests_per_s: l.requests_per_s,
                    latency_p50_ms: l.latency_ms.p50,
                    latency_p90_ms: l.latency_ms.p90,
                    latency_p99_ms: l.latency_ms.p99,
                    latency_max_ms: l.latency_ms.max,
                    elapsed_ms: l.elapsed_ms,
                })
                .collect(),
            without_cluster: None,
            node_warnings: o.node_warnings.iter().map(NodeWarningJson::from_warning).collect(),
            connections: o.connections.as_ref().map(ConnectionsJson::from_kept),
            active_resources: ActiveResourcesJson::from_samples(&o.samples),
            clusters: leaks
                .clusters
                .into_iter()
                .zip(o.cluster_isolates.iter())
                .map(|(mut c, i)| {
                    c.origin = origin(i);
                    c
                })
                .collect(),
            not_growing: leaks.not_growing,
            warnings: o.warnings.clone(),
            processes: o.processes.iter().map(ProcessJson::from_outcome).collect(),
            heap_profile: o.heap_profile.as_ref().map(|p| p.path.display().to_string()),
            surviving_allocations: o.heap_profile.as_ref().map(|p| {
                p.sites
                    .iter()
                    .map(|s| SurvivingAllocationJson {
                        function: s.function.clone(),
                        url: s.url.clone(),
                        line: s.line,
                        bytes: s.bytes,
                        share: if p.total_bytes == 0 {
                            0.0
                        } else {
                            crate::format::round3(s.bytes as f64 / p.total_bytes as f64)
                        },
                    })
                    .collect()
            }),
            allocation_flame: o.heap_profile.as_ref().map(|p| p.folded.clone()).unwrap_or_default(),
            settle: o.settle.as_ref().map(SettleJson::from_settle),
        };
        note_timer_lists(&mut report.clusters, report.settle.as_ref());
        // One explanation of memory that grew without a cluster, shared with the text and
        // HTML reports.
        report.without_cluster = crate::no_cluster::no_cluster_note(&report).map(|n| n.paragraph());
        report
    }
}

/// Writes the hunt report for a person: the verdict in the first lines, then the rate,
/// the top clusters (holder, pattern, file:line, fix hint, trace), memory and load.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_hunt_text(r: &HuntJson, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use crate::format;
    let headline = match r.verdict {
        VerdictJson::Leak => "LEAK",
        VerdictJson::NoLeak => "NO LEAK",
        VerdictJson::Inconclusive => "INCONCLUSIVE",
    };
    writeln!(w, "{headline}: {}", r.reason)?;
    if let Some(next) = &r.what_would_decide {
        writeln!(w, "   to decide: {next}")?;
    }
    for nw in &r.node_warnings {
        writeln!(w, "   {}", nw.text)?;
    }
    writeln!(
        w,
        "   {} requests ({}) against {}; {} snapshots",
        format::count(r.requests_sent),
        r.per_phase_text(),
        r.app.url.as_deref().unwrap_or("the app"),
        r.snapshots.len()
    )?;
    // Rates per request are per request sent; with one isolate whose own count is unknown
    // (Deno has no `diagnostics_channel` of node's), say so, as the JSON's
    // `requests_method` does.
    if let [only] = r.processes.as_slice()
        && only.requests_served.is_none()
    {
        writeln!(
            w,
            "   rates are per request sent: the requests the app served could not be counted in it (no diagnostics_channel http.server.request.start, e.g. Deno)"
        )?;
    }
    let hu = &r.floor.heap_used;
    let rate = |f: &FloorFitJson| match (f.bytes_per_request, f.bytes_per_request_ci95) {
        (Some(s), Some((lo, hi))) => format!("{s:+.0} B/request (95 % CI {lo:+.0}…{hi:+.0})"),
        (Some(s), None) => format!("{s:+.0} B/request"),
        _ => "not enough floor points".to_owned(),
    };
    writeln!(
        w,
        "   {}floor after GC: heapUsed {} → {}, {}; external {} → {}; rss {} → {}",
        if r.processes.len() > 1 { "main process " } else { "" },
        format::bytes(hu.first_bytes),
        format::bytes(hu.last_bytes),
        rate(hu),
        format::bytes(r.floor.external.first_bytes),
        format::bytes(r.floor.external.last_bytes),
        format::bytes(r.floor.rss.first_bytes),
        format::bytes(r.floor.rss.last_bytes),
    )?;
    // One message per result: what the floor and the calm-down show is said in the
    // verdict's terms, so a no-leak run does not also read as a leak.
    if let Some(note) = r.floor_note() {
        writeln!(w, "   {note}")?;
    }
    let c = &r.calm_down;
    let after = if c.returned_to_baseline {
        "returned to baseline".to_owned()
    } else if r.settled_back_at_baseline() {
        "still above the baseline while one-shot timers were pending; back at it once they were due".to_owned()
    } else if r.verdict == VerdictJson::NoLeak {
        format!(
            "stayed {} above the baseline, bounded (not growing under load)",
            format::bytes(c.after_heap_used_bytes.saturating_sub(c.baseline_heap_used_bytes))
        )
    } else {
        "did NOT return to baseline".to_owned()
    };
    writeln!(
        w,
        "   calm-down: heapUsed {} at baseline, {} after the load stopped → {after}",
        format::bytes(c.baseline_heap_used_bytes),
        format::bytes(c.after_heap_used_bytes),
    )?;
    if let Some(s) = &r.settle {
        writeln!(w, "   settle: {}", s.summary)?;
    }
    if let Some(h) = &r.active_resources {
        writeln!(
            w,
            "   active handles: {} → {} ({:+.2} per request){}",
            format::count(h.first),
            format::count(h.last),
            h.per_request,
            if h.growing { ": handles grow" } else { "" }
        )?;
    }
    if r.processes.len() > 1 {
        write_processes_text(r, w)?;
    }
    if let Some(c) = &r.connections {
        writeln!(w, "   connections: {}", c.text())?;
    }
    for l in &r.load {
        writeln!(
            w,
            "   {}: {} req in {:.1} s, {:.0} req/s, latency p50 {:.1} ms p99 {:.1} ms, {} errors",
            l.phase,
            l.requests_sent,
            l.elapsed_ms / 1000.0,
            l.requests_per_s,
            l.latency_p50_ms,
            l.latency_p99_ms,
            l.errors
        )?;
    }
    for (i, cl) in r.clusters.iter().enumerate().take(3) {
        writeln!(w)?;
        write_cluster_json_text(i, cl, w)?;
        if r.processes.len() > 1
            && let Some(isolate) = &cl.origin.isolate
        {
            writeln!(w, "   in: {isolate}")?;
        }
    }
    if let Some(note) = crate::no_cluster::no_cluster_note(r) {
        writeln!(w)?;
        writeln!(w, "no cluster: {}", note.headline)?;
        for m in &note.measured {
            writeln!(w, "   measured: {m}")?;
        }
        for n in &note.next {
            writeln!(w, "   try: {n}")?;
        }
    }
    if r.clusters.len() > 3 {
        writeln!(w, "\n… {} more clusters in --json / --html", r.clusters.len() - 3)?;
    }
    if let Some(sites) = &r.surviving_allocations {
        writeln!(w)?;
        writeln!(
            w,
            "surviving allocations (sampling heap profile{}):",
            r.heap_profile.as_deref().map(|p| format!(", {p}")).unwrap_or_default()
        )?;
        if sites.is_empty() {
            writeln!(w, "   none sampled")?;
        }
        for s in sites.iter().take(8) {
            writeln!(
                w,
                "   {:>5.1} %  {:>9}  {} {}:{}",
                s.share * 100.0,
                format::bytes(s.bytes),
                s.function,
                s.url.strip_prefix("file://").unwrap_or(&s.url),
                s.line
            )?;
        }
    }
    writeln!(w)?;
    writeln!(w, "snapshots:")?;
    for s in &r.snapshots {
        writeln!(
            w,
            "   {:<9} {} ({})",
            s.label.to_string(),
            s.path,
            format::bytes(s.bytes)
        )?;
    }
    for warning in &r.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(())
}

/// One line per isolate of a hunt of several: verdict, requests served (and how they
/// were counted), the heap floor's rate, which memory grows, and what happened to it.
fn write_processes_text(r: &HuntJson, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use crate::format;
    writeln!(w, "   isolates ({}):", r.processes.len())?;
    let mut order: Vec<&ProcessJson> = r.processes.iter().collect();
    // The leaking ones first, then in the order they were found.
    order.sort_by_key(|p| match p.verdict {
        VerdictJson::Leak => 0,
        VerdictJson::Inconclusive => 1,
        VerdictJson::NoLeak => 2,
    });
    for p in order {
        let verdict = match p.verdict {
            VerdictJson::Leak => "LEAK",
            VerdictJson::NoLeak => "no leak",
            VerdictJson::Inconclusive => "inconclusive",
        };
        let served = match (p.requests_served, p.requests_method.as_str()) {
            (Some(n), "http_server_requests_counted") => {
                format!(
                    "{} requests served (counted in it; rates per request it served)",
                    format::count(n)
                )
            }
            (Some(n), _) => format!("{} requests served (counted; rates per request sent)", format::count(n)),
            (None, _) => "requests served unknown (rates per request sent)".to_owned(),
        };
        let hu = &p.floor.heap_used;
        let rate = match hu.bytes_per_request {
            Some(b) => format!("heapUsed floor {b:+.0} B/request"),
            None => "heapUsed floor: too few points".to_owned(),
        };
        let growing = if p.floor.growing.is_empty() {
            "nothing grows".to_owned()
        } else {
            format!("growing: {}", p.floor.growing.join(", "))
        };
        writeln!(w, "     {}: {verdict}; {served}; {rate}; {growing}", p.name)?;
        if p.verdict != VerdictJson::NoLeak {
            writeln!(w, "       {}", p.reason)?;
        }
        if let Some(note) = &p.note {
            writeln!(w, "       note: {note}")?;
        }
    }
    Ok(())
}

fn write_cluster_json_text(i: usize, c: &crate::leaks::ClusterJson, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use crate::format;
    let rate = c
        .per_request
        .as_ref()
        .map(|p| {
            format!(
                "{:.2} {} per request, {} retained per request",
                p.count,
                c.unit_text((p.count * 100.0).round() / 100.0),
                format::bytes(p.retained_size_bytes as u64)
            )
        })
        .unwrap_or_else(|| format!("{} {}", c.count, c.unit_text(c.count as f64)));
    writeln!(
        w,
        "#{} {} — {} ({}) keeps {}",
        i + 1,
        c.pattern,
        c.holder,
        c.holder_class,
        rate
    )?;
    let counts: Vec<String> = c.counts_per_snapshot.iter().map(|n| format::count(*n)).collect();
    writeln!(
        w,
        "   {} across the snapshots; {} retained now",
        counts.join(" → "),
        format::bytes(c.retained_size_bytes)
    )?;
    if let Some(text) = crate::leaks::string_growth_text(
        &c.string_bytes_per_snapshot,
        c.per_request.as_ref().and_then(|p| p.string_bytes),
    ) {
        writeln!(w, "   string: {text}")?;
    }
    if let Some(p) = &c.per_request {
        let objs: Vec<String> = p.objects.iter().take(5).map(|(k, v)| format!("{v:.2} {k}")).collect();
        if !objs.is_empty() {
            writeln!(w, "   per request: {}", objs.join(", "))?;
        }
    }
    if let Some(n) = c.listener_count {
        writeln!(w, "   listeners: {n} on one event (Node's default maxListeners is 10)")?;
    }
    if let Some(t) = &c.timer_list {
        writeln!(w, "   timers of {} ms: {}", t.duration_ms, t.note)?;
    }
    match &c.source {
        Some(source) if c.source_confidence == "allocation_stack" => {
            writeln!(w, "   source (from the allocation stacks): {source}{}", c.source_note())?
        }
        Some(source) if c.source_confidence == "lint_rule" => {
            let what = c.sources.first().map(|s| s.what.as_str()).unwrap_or("");
            writeln!(
                w,
                "   source (found in the app's code by leakhound lint): {source} ({what})"
            )?
        }
        Some(source) => writeln!(w, "   source (guessed from the snapshot): {source}{}", c.source_note())?,
        None => writeln!(w, "   source: unknown")?,
    }
    if let Some(why) = &c.source_unknown_why {
        writeln!(w, "   not in the heap: {why}")?;
    }
    crate::lint::write_confirmed_findings(&c.lint_findings, w)?;
    if let Some(st) = c.allocation_stacks.first() {
        let frames: Vec<String> = st
            .frames
            .iter()
            .take(3)
            .map(|f| {
                format!(
                    "{} {}:{}",
                    f.function,
                    f.url.strip_prefix("file://").unwrap_or(&f.url),
                    f.line
                )
            })
            .collect();
        writeln!(
            w,
            "   allocated by ({} object{}): {}",
            format::count(st.count),
            if st.count == 1 { "" } else { "s" },
            frames.join(" ← ")
        )?;
    }
    writeln!(w, "   fix: {}", c.fix_hint)?;
    let path: Vec<String> = c
        .trace
        .iter()
        .skip(1)
        .map(|t| {
            let name = if t.class_name.starts_with('(') {
                &t.node_name
            } else {
                &t.class_name
            };
            format!(
                "{} {}{}",
                t.edge,
                format::truncate(name, 30),
                if t.is_holder { " ◀holder" } else { "" }
            )
        })
        .collect();
    writeln!(w, "   trace: (root) {}", path.join(" "))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use leakhound_leaks::MemorySample;

    use super::*;

    fn at(requests: u64, handles: Option<u64>) -> MemorySample {
        MemorySample {
            requests,
            active_resources: handles,
            ..MemorySample::default()
        }
    }

    #[test]
    fn a_single_isolate_whose_requests_could_not_be_counted_says_rates_are_per_request_sent() {
        let recorded = include_str!("../../../tests/golden/hunt-demo.json");
        let mut doc: HuntJson = serde_json::from_str(recorded).expect("the recorded hunt");
        let text = |doc: &HuntJson| {
            let mut out = Vec::new();
            write_hunt_text(doc, &mut out).expect("text");
            String::from_utf8(out).expect("utf-8")
        };
        assert!(doc.processes[0].requests_served.is_some());
        assert!(!text(&doc).contains("per request sent"), "counted: nothing to say");
        // Deno: no count, so the rates are per request sent, and the text says so.
        doc.processes[0].requests_served = None;
        assert_eq!(doc.processes[0].requests_method, "requests_sent");
        assert!(
            text(&doc).contains("rates are per request sent: the requests the app served could not be counted"),
            "{}",
            text(&doc)
        );
    }

    #[test]
    fn nodes_listener_warning_and_the_kept_connections_are_in_text_and_html() {
        let recorded = include_str!("../../../tests/golden/hunt-demo.json");
        let mut doc: HuntJson = serde_json::from_str(recorded).expect("the recorded hunt");
        let mut warnings = leakhound_hunt::NodeWarnings::new();
        warnings.feed("(node:4711) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit");
        warnings.feed("(node:4711) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit");
        doc.node_warnings = warnings.warnings().iter().map(NodeWarningJson::from_warning).collect();
        doc.connections = Some(ConnectionsJson::from_kept(&leakhound_hunt::KeptConnections {
            connections: 10,
            opened: 12,
            open_at_end: 10,
            keep_warm_requests: 7,
        }));
        let mut out = Vec::new();
        write_hunt_text(&doc, &mut out).expect("text");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("\n   node warned: 11 close listeners added to [Socket] (on 2 emitters)\n"),
            "{text}"
        );
        assert!(
            text.contains("connections: 10 connections kept open from before the baseline to the calm-down (2 closed by the app; 7 keep-warm requests between phases)"),
            "{text}"
        );
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["node_warnings"][0]["emitter_class"], "Socket");
        assert_eq!(json["node_warnings"][0]["emitters_warned"], 2);
        assert_eq!(json["connections"]["closed_by_app"], 2);
        let mut page = Vec::new();
        crate::html::write_html(&doc, &mut page).expect("html");
        let page = String::from_utf8(page).expect("utf-8");
        assert!(
            page.contains("Node warned: </b>11 close listeners added to [Socket]"),
            "the page"
        );
    }

    #[test]
    fn a_settled_hunt_says_what_the_settled_snapshot_dropped_in_text_and_html() {
        let recorded = include_str!("../../../tests/golden/hunt-demo.json");
        let mut doc: HuntJson = serde_json::from_str(recorded).expect("the recorded hunt");
        let settle: SettleJson = serde_json::from_value(serde_json::json!({
            "status": "settled",
            "timers": [{ "holder": "timerListMap[8000]", "duration_ms": 8000, "one_shot": 600, "repeating": 0 }],
            "snapshot": "out/04-settled.heapsnapshot",
            "after_load_ms": 9400,
            "dropped_clusters": [{
                "holder": "sessionCache",
                "holder_class": "Map",
                "pattern": "unbounded_collection",
                "root_class": "Session",
                "counts_per_snapshot": [0, 300, 600],
                "why": "pending one-shot timers of 8000 ms: gone in a snapshot taken 9.4 s after the load stopped"
            }],
            "kept_clusters": [],
            "summary": "one-shot timers of 8000 ms: a snapshot taken 9.4 s after the load stopped, once they were due, no longer shows 1 cluster growing (sessionCache)"
        }))
        .expect("a settle record");
        doc.settle = Some(settle);
        let mut text = Vec::new();
        write_hunt_text(&doc, &mut text).expect("text");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(
            text.contains("   settle: one-shot timers of 8000 ms: a snapshot taken 9.4 s after the load stopped"),
            "{text}"
        );
        let mut html = Vec::new();
        crate::html::write_html(&doc, &mut html).expect("html");
        let html = String::from_utf8(html).expect("utf-8");
        assert!(html.contains("<section id=\"settle\">"), "the settle section");
        assert!(html.contains("sessionCache") && html.contains("gone in a snapshot taken 9.4 s"));
        // And it reads back the same: additive JSON.
        let again: HuntJson = serde_json::from_str(&serde_json::to_string(&doc).expect("json")).expect("parses");
        assert_eq!(again.settle.map(|s| s.dropped_clusters.len()), Some(1));
    }

    #[test]
    fn handles_that_grow_and_stay_are_a_signal_of_their_own() {
        let grew = ActiveResourcesJson::from_samples(&[
            at(0, None),
            at(100, Some(12)),
            at(400, Some(312)),
            at(700, Some(612)),
        ])
        .expect("counted");
        assert_eq!((grew.first, grew.last, grew.max), (12, 612, 612));
        assert!(grew.growing);
        assert!((grew.per_request - 1.0).abs() < 1e-9);
        // Up under load, back down after it: not growth.
        let settled = ActiveResourcesJson::from_samples(&[at(100, Some(12)), at(400, Some(300)), at(700, Some(13))])
            .expect("counted");
        assert!(!settled.growing);
        assert!(ActiveResourcesJson::from_samples(&[at(100, None)]).is_none());
    }
}
