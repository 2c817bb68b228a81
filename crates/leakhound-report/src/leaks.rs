//! The `leaks` report: the three-snapshot leak finder's clusters for a person (top
//! cluster first, its trace drawn as a path) and as stable JSON.

use std::io::{self, Write};

use leakhound_leaks::{AllocationStack, Cluster, LeakReport, SourceKind, SourceRef};
use serde::{Deserialize, Serialize};

use crate::format;

/// The stable JSON of `leakhound leaks --json` (`schema_version` 1; fields are only ever
/// added). Sizes in bytes; `source` lines and columns are 1-based.
#[derive(Debug, Serialize)]
pub struct LeaksJson<'a> {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// Which report this is: always `"leaks"`.
    pub kind: &'static str,
    /// The snapshot files, oldest first (baseline, target, final, more).
    pub snapshots: &'a [String],
    /// `"leak"` when `clusters` is not empty; else `"inconclusive"` when the ArrayBuffer
    /// backing stores grew at every step (`backing_store_bytes_per_snapshot`), else
    /// `"no_leak"`.
    pub verdict: &'static str,
    /// With an `"inconclusive"` verdict, what would decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_would_decide: Option<String>,
    /// Units of load between snapshots, when given.
    pub requests_per_step: Option<f64>,
    /// Objects allocated after the baseline and alive in every later snapshot, after the
    /// Node-aware filter.
    pub leaked_object_count: u64,
    /// Leaking clusters, most important (largest retained size) first; empty when
    /// nothing leaks.
    pub clusters: Vec<ClusterJson>,
    /// Surviving new objects that did not keep growing (bounded caches, warm-up).
    pub not_growing: Vec<NotGrowingJson>,
    /// Warnings about the inputs.
    pub warnings: &'a [String],
    /// When no cluster grew but the ArrayBuffer backing stores (Buffers, typed arrays, a
    /// WebAssembly.Memory: `system / JSArrayBufferData`) grew at every step, by at least
    /// [`OFF_HEAP_GROWTH_BYTES`] in all: their bytes in each snapshot. Memory that grows
    /// inside objects the snapshots already had (one buffer or WebAssembly memory made
    /// bigger) forms no cluster of new objects; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_store_bytes_per_snapshot: Option<Vec<u64>>,
}

/// The least growth of the backing stores, first snapshot to last, that a report without
/// clusters mentions (1 MB).
pub const OFF_HEAP_GROWTH_BYTES: u64 = 1_000_000;

/// `bytes` (the backing stores' bytes per snapshot, oldest first) when they rise at every
/// step by at least [`OFF_HEAP_GROWTH_BYTES`] in all, else `None`.
pub fn off_heap_growth(bytes: &[u64]) -> Option<Vec<u64>> {
    let grows = bytes.len() >= 2
        && bytes.windows(2).all(|w| w[1] > w[0])
        && bytes[bytes.len() - 1] - bytes[0] >= OFF_HEAP_GROWTH_BYTES;
    grows.then(|| bytes.to_vec())
}

/// What decides a report whose only growth is in ArrayBuffer backing stores.
pub const OFF_HEAP_WHAT_WOULD_DECIDE: &str = "measure the floor of external memory under load: `leakhound hunt -- node app.js` (a rising external floor is a leak), or `leakhound diff` of the first and last snapshot to see which class retains the backing stores";

impl LeaksJson<'_> {
    /// Records that no cluster grew but the backing stores did (`bytes` from
    /// [`off_heap_growth`]): the verdict becomes `"inconclusive"`, never `"no_leak"`, with
    /// what would decide it.
    pub fn set_off_heap_growth(&mut self, bytes: Vec<u64>) {
        if self.clusters.is_empty() {
            self.verdict = "inconclusive";
            self.what_would_decide = Some(OFF_HEAP_WHAT_WOULD_DECIDE.to_owned());
        }
        self.backing_store_bytes_per_snapshot = Some(bytes);
    }
}

/// The line a report without clusters adds when the backing stores grew
/// ([`off_heap_growth`]): what grew, per snapshot.
///
/// # Errors
/// Any error writing to `w`.
fn write_off_heap_text(bytes: &[u64], w: &mut dyn Write) -> io::Result<()> {
    let sizes: Vec<String> = bytes.iter().map(|b| format::bytes(*b)).collect();
    writeln!(
        w,
        "but off the JS heap: ArrayBuffer backing stores grew {} across the snapshots, held by no growing group of new objects (a Buffer, typed array or WebAssembly.Memory made bigger, or native memory)",
        sizes.join(" → ")
    )
}

/// One cluster in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterJson {
    /// Holder label, e.g. `quoteCache` or `lifecycle._events.shutdown`.
    pub holder: String,
    /// Holder class, e.g. `Map`.
    pub holder_class: String,
    /// V8 id of the holder (of the first, if several share the label).
    pub holder_id: u32,
    /// Number of holder objects sharing the label.
    pub holder_nodes: usize,
    /// One of `listener_accumulation`, `unbounded_collection`, `uncleared_timer`,
    /// `closure_retention`, `external_memory`, `agent_sockets`, `unconsumed_stream`,
    /// `global_variable`, `promise_chain`, `growing_string`, `open_handles`, `other`.
    pub pattern: String,
    /// Class of the objects that accumulate: what the holder keeps directly (`Quote`,
    /// `abortInFlight()`, `bound handleException()` for what `f.bind(x)` made); for an
    /// emitter's listeners of several functions, the two most common (`a(), b() and 2
    /// more`).
    pub root_class: String,
    /// What `count`, `counts_per_snapshot` and `per_request.count` count, singular:
    /// `listener` for an emitter's listeners, else `root_class`.
    #[serde(default)]
    pub unit: String,
    /// Accumulating objects (leak roots) among the leaked objects: the holder's direct
    /// elements of `root_class`.
    pub count: u64,
    /// All leaked objects in the cluster.
    pub object_count: u64,
    /// Leaked objects other than the roots, per root: what each one brings along
    /// (`(object_count - count) / count`; 0 without roots).
    #[serde(default)]
    pub other_objects_per_root: f64,
    /// Retained size of the leak roots in the last snapshot, no double counting.
    pub retained_size_bytes: u64,
    /// Share of that retained size held off the JS heap (ArrayBuffer backing stores).
    pub external_share: f64,
    /// Objects of the root class under the holder in each snapshot.
    pub counts_per_snapshot: Vec<u64>,
    /// Holder's retained size in each snapshot; null where the snapshot was read without
    /// dominators (earlier snapshots of a series: only the last is fully analysed).
    pub holder_retained_per_snapshot_bytes: Vec<Option<u64>>,
    /// Rates per unit of load (when `--requests-per-step` was given), else null.
    pub per_request: Option<PerRequestJson>,
    /// Leaked objects by class.
    pub objects: Vec<ClassCountJson>,
    /// `path:line:column` of the best guess at where the leak is made (`sources[0]`), or
    /// null.
    pub source: Option<String>,
    /// How `source` was guessed: a snapshot records where functions and constructors are
    /// defined, not who called them. `"holder_owner"`: the function whose closure context
    /// keeps the holder (the code adding to it is in there); `"closure"`: a function among
    /// what accumulates (the listener or callback itself, what a bound function calls, or
    /// the most common closure); `"constructor"`: the accumulating objects' constructor;
    /// `"none"`: no location; `"allocation_stack"`: not a guess, the first frame of the
    /// app's own code in the most common of `allocation_stacks` (the start of that
    /// function: V8 records where a frame's function starts); `"lint_rule"`: the heap
    /// names no code of the app's (see `source_unknown_why`), and the `leakhound lint`
    /// rule of the cluster's pattern found this place in the app's scripts (an
    /// `agent-per-call` finding for `agent_sockets`), also in `lint_findings`.
    #[serde(default = "source_confidence_none")]
    pub source_confidence: String,
    /// Every source location found, best first: the app's own code, then its
    /// dependencies (`in_dependency`), then Node's internals.
    pub sources: Vec<SourceJson>,
    /// When no source is in the app's own code: why it cannot be known from these
    /// snapshots, and what would find it (`hunt --track-allocations`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_unknown_why: Option<String>,
    /// With `source_unknown_why`, the app's own scripts the snapshot has code of, for a
    /// source-level search (not part of the JSON).
    #[serde(skip)]
    pub app_scripts: Vec<String>,
    /// For a string grown with `+=` (`growing_string`): the size of its string in bytes
    /// in each snapshot (every piece of the concatenation tree once; null where a snapshot
    /// has no such string), while `counts_per_snapshot` counts the tree's pieces; absent
    /// for other patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub string_bytes_per_snapshot: Vec<Option<u64>>,
    /// Listener count for `listener_accumulation` (Node warns above 10 by default:
    /// `maxListeners`).
    pub listener_count: Option<u64>,
    /// For a list of Node's timers (`timerListMap[8000]`): their duration and whether
    /// they may simply not be due yet; absent for other holders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_list: Option<TimerListJson>,
    /// One-line fix hint.
    pub fix_hint: String,
    /// Retainer trace from the GC root to a representative leaked object.
    pub trace: Vec<TraceStepJson>,
    /// Findings of `leakhound lint` inside the functions this cluster's sources name (or
    /// adding them as callbacks): the source pattern the heap confirmed at runtime. Only
    /// when those files exist; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lint_findings: Vec<crate::lint::LintFindingJson>,
    /// Where a hunt found it (`pid`, `thread_id`, `isolate`); absent outside `hunt`.
    #[serde(flatten)]
    pub origin: ClusterOriginJson,
    /// The most common stacks that allocated the accumulating objects, most objects first
    /// (at most 3), when the snapshots were taken with allocation tracking on
    /// (`hunt --track-allocations`); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocation_stacks: Vec<AllocationStackJson>,
}

/// One allocation stack of a cluster's objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllocationStackJson {
    /// Objects this stack allocated, among the accumulating objects' siblings added since
    /// the snapshot before the last (same class, same holder). Only those count: V8 loses
    /// (or mixes up) the stack of an object a snapshot has given an id once the GC moves
    /// it, so the older objects' stacks are not trusted.
    pub count: u64,
    /// The frames: the app's own code first (innermost first), then its dependencies'
    /// (`node_modules`), then Node's internals; `depth` gives the call order (0: the
    /// function that allocated).
    pub frames: Vec<StackFrameJson>,
}

/// One frame of an allocation stack. V8 records where the frame's function starts (its
/// definition), not the line of the call or the allocation inside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackFrameJson {
    /// The function's name (`(anonymous)` when it has none).
    pub function: String,
    /// The script's path or URL as V8 names it (`/srv/app/server.js`, `node:events`).
    pub url: String,
    /// Line where the function starts, from 1 (0 unknown).
    pub line: u32,
    /// Column where the function starts, from 1 (0 unknown).
    pub column: u32,
    /// `"user"` (the app's code), `"dependency"` (under `node_modules`) or
    /// `"node_internal"` (Node's own `node:` scripts and V8 frames).
    pub origin: String,
    /// The dependency's package for a `"dependency"` frame, else null.
    pub dependency: Option<String>,
    /// Position in the recorded stack: 0 allocated, 1 its caller, …
    pub depth: u32,
}

/// Converts allocation stacks to their JSON form.
pub fn allocation_stacks_json(stacks: &[AllocationStack]) -> Vec<AllocationStackJson> {
    stacks
        .iter()
        .map(|st| AllocationStackJson {
            count: st.count,
            frames: st
                .frames
                .iter()
                .map(|f| StackFrameJson {
                    function: f.function.clone(),
                    url: f.url.clone(),
                    line: f.line,
                    column: f.column,
                    origin: f.origin.as_str().to_owned(),
                    dependency: f.dependency.clone(),
                    depth: f.depth,
                })
                .collect(),
        })
        .collect()
}

/// A cluster that is one of Node's timer lists (one per duration, in `timerListMap`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimerListJson {
    /// The timers' duration, ms.
    pub duration_ms: u64,
    /// Its one-shot timers (`setTimeout`) in the last snapshot: their `_repeat` is null.
    pub one_shot: u64,
    /// Its repeating timers (`setInterval`) in the last snapshot.
    pub repeating: u64,
    /// What that means: for `leaks`, that one-shot timers (a TTL cache's expiry) may simply
    /// not be due yet, and that a snapshot taken their duration after the load stopped
    /// decides it, or that repeating ones never are; for `hunt`, what its settled snapshot
    /// showed.
    pub note: String,
}

impl TimerListJson {
    /// The wire form of a timer list seen in snapshots alone (`leaks`).
    pub fn of(t: &leakhound_leaks::TimerList) -> TimerListJson {
        TimerListJson {
            duration_ms: t.duration_ms,
            one_shot: t.one_shot,
            repeating: t.repeating,
            note: timers_note(t),
        }
    }
}

/// The note of a timer list seen in snapshots alone (`leaks`): one-shot timers may not be
/// due yet, repeating ones never are.
pub fn timers_note(t: &leakhound_leaks::TimerList) -> String {
    if t.one_shot == 0 && t.repeating > 0 {
        return "repeating timers (setInterval): they never come due, so the list grows until they are cleared"
            .to_owned();
    }
    let after = leakhound_hunt::wait_after_load_ms(t.duration_ms);
    format!(
        "{} one-shot timers (setTimeout: a TTL cache's or a session's expiry){}: they may simply not be due yet when the last snapshot was taken, and what they free goes when they fire; a snapshot taken {} after the load stopped decides it (`leakhound hunt` takes that snapshot itself)",
        format::count(t.one_shot),
        match t.repeating {
            0 => String::new(),
            n => format!(" and {} repeating", format::count(n)),
        },
        format::duration_ms(after as f64)
    )
}

/// Rates per unit of load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerRequestJson {
    /// Accumulating objects added per request.
    pub count: f64,
    /// Retained bytes added per request (holder's growth).
    pub retained_size_bytes: f64,
    /// Leaked objects per request by class.
    pub objects: Vec<(String, f64)>,
    /// For a string grown with `+=` (`growing_string`): bytes its string grows by per
    /// request; absent for other patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_bytes: Option<f64>,
}

/// Leaked objects of one class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassCountJson {
    /// Class name as DevTools shows it.
    pub class_name: String,
    /// Leaked objects of this class in the cluster.
    pub count: u64,
    /// Sum of self sizes.
    pub self_size_bytes: u64,
}

fn source_confidence_none() -> String {
    "none".to_owned()
}

/// A source location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceJson {
    /// `path:line:column` of a function or constructor (script path or URL); line and
    /// column are 1-based.
    pub location: String,
    /// What is there.
    pub what: String,
    /// How it was found: `"holder_owner"`, `"closure"` or `"constructor"`, as
    /// [`ClusterJson::source_confidence`].
    #[serde(default)]
    pub kind: String,
    /// The script is in a `node_modules` folder: a dependency's code, not the app's.
    #[serde(default)]
    pub in_dependency: bool,
    /// That dependency's package (`winston`, `@scope/name`), else null.
    #[serde(default)]
    pub dependency: Option<String>,
}

impl ClusterJson {
    /// The unit of `count` as a person reads it, plural unless `n` is 1: `listeners`,
    /// or the root class (`Quote`) as it is.
    pub fn unit_text(&self, n: f64) -> String {
        unit_text(
            if self.unit.is_empty() {
                &self.root_class
            } else {
                &self.unit
            },
            n,
        )
    }

    /// ` (in node_modules/winston)` after the best source when it is a dependency's.
    pub fn source_note(&self) -> String {
        self.sources
            .iter()
            .find(|s| Some(&s.location) == self.source.as_ref())
            .and_then(|s| s.dependency.as_deref())
            .map(dependency_note)
            .unwrap_or_default()
    }
}

/// `unit` plural unless `n` is 1: `listener` becomes `listeners`; class names stay as they
/// are (`Quote`, `(string)`).
fn unit_text(unit: &str, n: f64) -> String {
    if unit == "listener" && n != 1.0 {
        "listeners".to_owned()
    } else if unit == "byte" && n != 1.0 {
        "bytes".to_owned()
    } else {
        unit.to_owned()
    }
}

/// ` (in node_modules/PACKAGE)`.
pub fn dependency_note(package: &str) -> String {
    format!(" (in node_modules/{package})")
}

fn source_json(s: &SourceRef) -> SourceJson {
    SourceJson {
        location: s.location(),
        what: s.what.clone(),
        kind: s.kind.as_str().to_owned(),
        in_dependency: s.in_dependency(),
        dependency: s.dependency().map(str::to_owned),
    }
}

/// One trace step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceStepJson {
    /// Edge into the node in DevTools notation (empty for the root).
    pub edge: String,
    /// V8's type of that edge (`property`, `element`, `context`, `internal`, …; empty
    /// for the root).
    pub edge_type: String,
    /// Node display name.
    pub node_name: String,
    /// Class name of the node as DevTools shows it.
    pub class_name: String,
    /// V8 node type.
    pub node_type: String,
    /// V8 node id.
    pub id: u32,
    /// The node's own size in the last snapshot, bytes.
    pub self_size_bytes: u64,
    /// What the node keeps alive in the last snapshot (DevTools' retained size), bytes.
    pub retained_size_bytes: u64,
    /// Whether this node is the cluster's holder (the collection that keeps the objects).
    pub is_holder: bool,
    /// Whether this node is one of the cluster's leaked objects that accumulate (a leak root).
    pub is_leaked: bool,
}

/// A non-growing cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotGrowingJson {
    /// Holder label, as in [`ClusterJson::holder`].
    pub holder: String,
    /// Class of the surviving objects under the holder.
    pub root_class: String,
    /// Counts per snapshot.
    pub counts_per_snapshot: Vec<u64>,
}

/// Where a hunt found a cluster: the isolate of the app (absent outside `hunt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterOriginJson {
    /// The process it was found in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The worker thread (its `threadId`) it was found in; absent for a process's main
    /// thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u32>,
    /// The isolate in words: `main process, pid 4711`, `cluster worker 2, pid 4712`,
    /// `worker thread 1 of pid 4711`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolate: Option<String>,
}

/// Converts a cluster to its JSON form.
pub fn cluster_json(c: &Cluster) -> ClusterJson {
    ClusterJson {
        holder: c.holder.clone(),
        holder_class: c.holder_class.clone(),
        holder_id: c.holder_id,
        holder_nodes: c.holder_nodes,
        pattern: c.pattern.as_str().to_owned(),
        root_class: c.root_class.clone(),
        unit: c.unit.clone(),
        count: c.count,
        object_count: c.object_count,
        other_objects_per_root: if c.count == 0 {
            0.0
        } else {
            format::round3(c.object_count.saturating_sub(c.count) as f64 / c.count as f64)
        },
        retained_size_bytes: c.retained_size_bytes,
        external_share: format::round3(c.external_share),
        counts_per_snapshot: c.counts_per_snapshot.clone(),
        holder_retained_per_snapshot_bytes: c.holder_retained_per_snapshot.clone(),
        per_request: c.per_request.as_ref().map(|p| PerRequestJson {
            count: format::round3(p.count),
            retained_size_bytes: p.retained_size_bytes.round(),
            objects: p.objects.iter().map(|(k, v)| (k.clone(), format::round3(*v))).collect(),
            string_bytes: p.string_bytes.map(f64::round),
        }),
        objects: c
            .objects
            .iter()
            .map(|o| ClassCountJson {
                class_name: o.class_name.clone(),
                count: o.count,
                self_size_bytes: o.self_size_bytes,
            })
            .collect(),
        source: c.source.as_ref().map(|s| s.location()),
        source_confidence: c.source.as_ref().map_or("none", |s| s.kind.as_str()).to_owned(),
        sources: c.sources.iter().map(source_json).collect(),
        source_unknown_why: c.source_unknown_why.clone(),
        app_scripts: c.app_scripts.clone(),
        string_bytes_per_snapshot: c.string_bytes_per_snapshot.clone(),
        lint_findings: Vec::new(),
        listener_count: c.listener_count,
        timer_list: c.timer_list.as_ref().map(TimerListJson::of),
        fix_hint: c.fix_hint.to_owned(),
        trace: c
            .trace
            .iter()
            .map(|t| TraceStepJson {
                edge: t.edge.clone(),
                edge_type: t.edge_type.clone(),
                node_name: t.node_name.clone(),
                class_name: t.class_name.clone(),
                node_type: t.node_type.clone(),
                id: t.id,
                self_size_bytes: t.self_size_bytes,
                retained_size_bytes: t.retained_size_bytes,
                is_holder: t.is_holder,
                is_leaked: t.is_leaked,
            })
            .collect(),
        origin: ClusterOriginJson::default(),
        allocation_stacks: allocation_stacks_json(&c.allocation_stacks),
    }
}

/// The JSON document of a leak report.
pub fn leaks_json<'a>(files: &'a [String], report: &'a LeakReport, requests_per_step: Option<f64>) -> LeaksJson<'a> {
    LeaksJson {
        schema_version: 1,
        kind: "leaks",
        snapshots: files,
        verdict: if report.clusters.is_empty() { "no_leak" } else { "leak" },
        what_would_decide: None,
        requests_per_step,
        leaked_object_count: report.leaked_object_count,
        clusters: report.clusters.iter().map(cluster_json).collect(),
        not_growing: report
            .not_growing
            .iter()
            .map(|n| NotGrowingJson {
                holder: n.holder.clone(),
                root_class: n.root_class.clone(),
                counts_per_snapshot: n.counts_per_snapshot.clone(),
            })
            .collect(),
        warnings: &report.warnings,
        backing_store_bytes_per_snapshot: None,
    }
}

/// Writes the JSON of a leak report.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_leaks_json(
    files: &[String],
    report: &LeakReport,
    requests_per_step: Option<f64>,
    w: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &leaks_json(files, report, requests_per_step))?;
    writeln!(w)
}

/// Writes one cluster for a person: headline, numbers, source, hint, and the trace. The
/// headline, the growth line and the JSON count one unit (the holder's direct elements:
/// `300 listeners`, `1.00 listener per request`); what each one brings along follows.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_cluster_text(i: usize, c: &Cluster, requests_per_step: Option<f64>, w: &mut dyn Write) -> io::Result<()> {
    let held = if c.unit == "byte" {
        // A growing Buffer's bytes (`buffers.rs`): no objects to count.
        format!("{} {}", format::count(c.count), unit_text(&c.unit, c.count as f64))
    } else if c.unit == c.root_class {
        format!("{} × {}", format::count(c.count), c.root_class)
    } else {
        format!(
            "{} {} ({})",
            format::count(c.count),
            unit_text(&c.unit, c.count as f64),
            c.root_class
        )
    };
    writeln!(
        w,
        "#{} {} — {} holds {} ({} retained{})",
        i + 1,
        c.pattern,
        c.holder,
        held,
        format::bytes(c.retained_size_bytes),
        if c.external_share > 0.05 {
            format!(", {:.0} % off-heap", c.external_share * 100.0)
        } else {
            String::new()
        }
    )?;
    if let Some(text) = string_growth_text(
        &c.string_bytes_per_snapshot,
        c.per_request.as_ref().and_then(|p| p.string_bytes),
    ) {
        writeln!(w, "   string: {text}")?;
    }
    write!(
        w,
        "   grows: {} {} across the snapshots",
        format::counts_across(&c.counts_per_snapshot),
        unit_text(&c.unit, c.counts_per_snapshot.last().copied().unwrap_or(0) as f64)
    )?;
    match (&c.per_request, requests_per_step) {
        (Some(p), Some(_)) => writeln!(
            w,
            "; {:.2} {} per request ({} retained per request)",
            p.count,
            unit_text(&c.unit, (p.count * 100.0).round() / 100.0),
            format::bytes(p.retained_size_bytes as u64)
        )?,
        _ => writeln!(w)?,
    }
    if c.count > 0 && !c.brought_along.is_empty() {
        let each = |n: u64| {
            let v = n as f64 / c.count as f64;
            if (v - v.round()).abs() < 0.05 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        };
        let total: u64 = c.brought_along.iter().map(|o| o.count).sum();
        let mut parts: Vec<String> = c
            .brought_along
            .iter()
            .take(5)
            .map(|o| format!("{} {}", each(o.count), o.class_name))
            .collect();
        if c.brought_along.len() > 5 {
            parts.push("…".into());
        }
        writeln!(
            w,
            "   each {} brings along {} other object{}: {}",
            unit_text(&c.unit, 1.0),
            each(total),
            if each(total) == "1" { "" } else { "s" },
            parts.join(", ")
        )?;
    }
    if let Some(n) = c.listener_count {
        writeln!(
            w,
            "   listeners: {} on one event (Node warns above the default maxListeners of 10)",
            format::count(n)
        )?;
    }
    if let Some(t) = &c.timer_list {
        writeln!(w, "   timers of {} ms: {}", t.duration_ms, timers_note(t))?;
    }
    match c.sources.split_first() {
        Some((s, rest)) => {
            if s.kind == SourceKind::AllocationStack {
                writeln!(w, "   source (from the allocation stacks): {}", source_text(s))?;
            } else {
                writeln!(w, "   source (guessed from the snapshot): {}", source_text(s))?;
            }
            for s in rest.iter().take(3) {
                writeln!(w, "      also: {}", source_text(s))?;
            }
        }
        None => writeln!(w, "   source: unknown (no location in the snapshot)")?,
    }
    if let Some(why) = &c.source_unknown_why {
        writeln!(w, "   source in the app: unknown from the heap: {why}")?;
    }
    write_allocation_stacks_text(&c.allocation_stacks, c.count, w)?;
    writeln!(w, "   fix: {}", c.fix_hint)?;
    writeln!(w, "   retainer trace:")?;
    for (k, t) in c.trace.iter().enumerate() {
        let marker = if t.is_holder {
            "  ◀ holder"
        } else if t.is_leaked {
            "  ◀ leaked"
        } else {
            ""
        };
        if k == 0 {
            writeln!(w, "     (root)")?;
            continue;
        }
        if t.id == 0 && t.edge == "…" {
            // A folded stretch of a chain (`1,998 more `previous` links`) or a cut.
            let name = t.node_name.trim_start_matches('(').trim_end_matches(')');
            writeln!(w, "     {}… {} …", "  ".repeat(k.min(12)), name)?;
            continue;
        }
        writeln!(
            w,
            "     {}{} {} @{} [{}]{}",
            "  ".repeat(k.min(12)),
            t.edge,
            format::truncate(&t.node_name, 50),
            t.id,
            format::bytes(t.retained_size_bytes),
            marker
        )?;
    }
    Ok(())
}

/// Frames shown per stack in text (the JSON has them all).
const TEXT_FRAMES: usize = 6;

/// The allocation stacks of a cluster of `count` roots: each with its share, the app's
/// frames first, a dependency's or Node's marked. Nothing without stacks.
fn write_allocation_stacks_text(stacks: &[AllocationStack], count: u64, w: &mut dyn Write) -> io::Result<()> {
    if stacks.is_empty() {
        return Ok(());
    }
    writeln!(
        w,
        "   allocated by (V8 records where each function starts, not the line inside it):"
    )?;
    for st in stacks {
        let _ = count;
        writeln!(
            w,
            "     {} object{}:",
            format::count(st.count),
            if st.count == 1 { "" } else { "s" }
        )?;
        for f in st.frames.iter().take(TEXT_FRAMES) {
            let mark = match (f.origin, &f.dependency) {
                (leakhound_leaks::FrameOrigin::User, _) => String::new(),
                (leakhound_leaks::FrameOrigin::Dependency, Some(d)) => dependency_note(d),
                (leakhound_leaks::FrameOrigin::Dependency, None) => " (in node_modules)".to_owned(),
                (leakhound_leaks::FrameOrigin::NodeInternal, _) => " (node internals)".to_owned(),
            };
            writeln!(w, "       at {} {}{}", f.function, f.location(), mark)?;
        }
        if st.frames.len() > TEXT_FRAMES {
            writeln!(w, "       … {} more frames", st.frames.len() - TEXT_FRAMES)?;
        }
    }
    Ok(())
}

/// `path:line:column (what)`, and ` (in node_modules/PACKAGE)` for a dependency's.
/// A growing string's size in bytes across the snapshots and per request
/// (`12 kB → 31 kB → 50 kB, +64 B per request`); `None` without sizes.
pub fn string_growth_text(bytes: &[Option<u64>], per_request: Option<f64>) -> Option<String> {
    if bytes.iter().all(Option::is_none) {
        return None;
    }
    let sizes: Vec<String> = bytes
        .iter()
        .map(|b| b.map_or_else(|| "–".to_owned(), format::bytes))
        .collect();
    let mut text = format!("{} across the snapshots", sizes.join(" → "));
    if let Some(rate) = per_request {
        text.push_str(&format!(", {} per request", format::byte_rate(rate)));
    }
    Some(text)
}

fn source_text(s: &SourceRef) -> String {
    format!(
        "{} ({}){}",
        s.location(),
        s.what,
        s.dependency().map(dependency_note).unwrap_or_default()
    )
}

/// Writes the whole leak report for a person: verdict first, then each cluster.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_leaks_text(
    files: &[String],
    report: &LeakReport,
    requests_per_step: Option<f64>,
    w: &mut dyn Write,
) -> io::Result<()> {
    write_leaks_text_linked(files, report, requests_per_step, &[], None, w)
}

/// [`write_leaks_text`] with each cluster followed by the lint findings the heap
/// confirmed (`lint[i]` for cluster `i`; missing entries mean none), and with the backing
/// stores' growth when no cluster grew (`off_heap` from [`off_heap_growth`]): then the
/// report is inconclusive, not "no leak", and says what grew and what would decide it.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_leaks_text_linked(
    files: &[String],
    report: &LeakReport,
    requests_per_step: Option<f64>,
    lint: &[Vec<crate::lint::LintFindingJson>],
    off_heap: Option<&[u64]>,
    w: &mut dyn Write,
) -> io::Result<()> {
    if report.clusters.is_empty()
        && let Some(bytes) = off_heap
    {
        writeln!(
            w,
            "inconclusive: nothing allocated after {} keeps growing through {} ({} surviving new objects checked),",
            files.first().map(String::as_str).unwrap_or("the baseline"),
            files.last().map(String::as_str).unwrap_or("the final snapshot"),
            format::count(report.leaked_object_count)
        )?;
        write_off_heap_text(bytes, w)?;
        writeln!(w, "what would decide it: {OFF_HEAP_WHAT_WOULD_DECIDE}")?;
    } else if report.clusters.is_empty() {
        writeln!(
            w,
            "no leak: nothing allocated after {} keeps growing through {} ({} surviving new objects checked)",
            files.first().map(String::as_str).unwrap_or("the baseline"),
            files.last().map(String::as_str).unwrap_or("the final snapshot"),
            format::count(report.leaked_object_count)
        )?;
    } else {
        writeln!(
            w,
            "LEAK: {} growing cluster{} across {} snapshots",
            report.clusters.len(),
            if report.clusters.len() == 1 { "" } else { "s" },
            files.len()
        )?;
        for (i, c) in report.clusters.iter().enumerate() {
            writeln!(w)?;
            write_cluster_text(i, c, requests_per_step, w)?;
            if let Some(found) = lint.get(i) {
                crate::lint::write_confirmed_findings(found, w)?;
            }
        }
    }
    if !report.not_growing.is_empty() {
        writeln!(w)?;
        writeln!(w, "not growing (bounded or settled, not reported as leaks):")?;
        for n in report.not_growing.iter().take(5) {
            let counts: Vec<String> = n.counts_per_snapshot.iter().map(|x| x.to_string()).collect();
            writeln!(w, "   {} × {}: {}", n.holder, n.root_class, counts.join(" → "))?;
        }
    }
    for warning in &report.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(())
}
