//! What the leak finder takes and returns: its options, its errors and its report
//! (clusters, their objects by class, their retainer traces, rates per request). Plain
//! data with public fields, built by [`crate::find_leaks`] and read by the renderers; this
//! module depends on no other module of the crate but the two leaf types a cluster carries
//! ([`Pattern`], [`SourceRef`]).

use crate::pattern::Pattern;
use crate::source::SourceRef;

/// Options of [`find_leaks`](crate::find_leaks).
#[derive(Debug, Clone)]
pub struct LeakOptions {
    /// Units of load (requests) between consecutive snapshots, to report rates per unit.
    pub requests_per_step: Option<f64>,
    /// The units of load measured between each pair of consecutive snapshots (step `i`
    /// is from snapshot `i` to `i + 1`), when the steps differ (load by time); empty: every
    /// step is `requests_per_step`.
    pub requests_per_step_each: Vec<f64>,
    /// Minimum growth of a cluster from the target to the last snapshot, in objects.
    pub min_growth: u64,
    /// At most this many clusters are reported.
    pub max_clusters: usize,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions {
            requests_per_step: None,
            requests_per_step_each: Vec::new(),
            min_growth: 2,
            max_clusters: 20,
        }
    }
}

impl LeakOptions {
    /// Units of load from snapshot `from` to snapshot `to`: the sum of
    /// `requests_per_step_each` over those steps when it covers them, else
    /// `requests_per_step` times their number; None when unknown or not positive.
    pub fn requests_between(&self, from: usize, to: usize) -> Option<f64> {
        let steps = to.checked_sub(from).filter(|s| *s > 0)?;
        let total = match self.requests_per_step_each.get(from..to) {
            Some(each) => each.iter().sum(),
            None => self.requests_per_step? * steps as f64,
        };
        Some(total).filter(|t| *t > 0.0)
    }
}

/// Why snapshots cannot be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeakError {
    /// Fewer than three snapshots.
    #[error("the three-snapshot technique needs at least 3 snapshots (baseline, target, final); got {0}")]
    TooFewSnapshots(usize),
    /// Node ids do not line up: the snapshots come from different processes, or V8's
    /// object ids were reset between them (an inspector session that used the heap
    /// profiler ended).
    #[error(
        "snapshots {first} and {second} come from different processes (only {matching} of {common} shared ids name the same object), or V8's object ids were reset between the snapshots (each `leakhound snapshot` run, or a DevTools session, that ends clears them: take a series in one session with `leakhound snapshot --count N`); ids only match within one process and one session"
    )]
    DifferentProcesses {
        /// Position of the first snapshot (0-based).
        first: usize,
        /// Position of the second snapshot (0-based).
        second: usize,
        /// Shared ids that name the same kind of object.
        matching: u64,
        /// Shared V8 object ids, in a sample of one node in eight of the first snapshot.
        common: u64,
    },
    /// A later snapshot holds only older objects than an earlier one.
    #[error(
        "snapshots are out of order: snapshot {later} (newest object id {later_max_id}) is older than snapshot {earlier} (newest id {earlier_max_id}); give them oldest first"
    )]
    OutOfOrder {
        /// Position of the earlier snapshot (0-based).
        earlier: usize,
        /// Position of the later snapshot (0-based).
        later: usize,
        /// Newest JS object id of the earlier.
        earlier_max_id: u32,
        /// Newest JS object id of the later.
        later_max_id: u32,
    },
    /// The node or edge type lists differ: snapshots from different V8 versions.
    #[error("snapshots {first} and {second} were written by different V8 versions (their node/edge type lists differ)")]
    DifferentV8 {
        /// Position of the first snapshot (0-based).
        first: usize,
        /// Position of the second snapshot (0-based).
        second: usize,
    },
}

/// Objects of one class inside a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCount {
    /// DevTools class name (`Quote`, `Array`, `(string)`), or for closures the function
    /// as shown (`handler()`, `(anonymous function)`).
    pub class_name: String,
    /// Leaked objects of the class in the cluster.
    pub count: u64,
    /// Their self sizes, bytes.
    pub self_size_bytes: u64,
}

/// One step of a retainer trace, from a GC root towards the leaked objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// The edge into this node in DevTools notation (`.prop`, `[i]`, `->ctx`, `{internal}`).
    pub edge: String,
    /// V8's edge type name (`property`, `element`, `context`, …); empty for the root.
    pub edge_type: String,
    /// Display name of the node (DevTools' name, cut to 80 characters).
    pub node_name: String,
    /// DevTools class name of the node.
    pub class_name: String,
    /// V8's node type name (`object`, `closure`, `hidden`, …).
    pub node_type: String,
    /// V8 node id (0 for the `…` step that stands for a cut part of a long trace).
    pub id: u32,
    /// Self size in bytes (last snapshot).
    pub self_size_bytes: u64,
    /// Retained size in bytes (last snapshot).
    pub retained_size_bytes: u64,
    /// Whether this node is the holder.
    pub is_holder: bool,
    /// Whether this node is a leaked object.
    pub is_leaked: bool,
}

/// Rates per unit of load (per request when the load unit is a request), from the
/// growth between snapshots divided by `requests_per_step`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerRequest {
    /// Leak roots added per request (from the growth after the target).
    pub count: f64,
    /// Retained bytes added per request.
    pub retained_size_bytes: f64,
    /// Leaked objects per request, by class (from the objects allocated between baseline
    /// and target, over one step of load).
    pub objects: Vec<(String, f64)>,
    /// For a string grown with `+=` (`growing_string`), the bytes its string grows by per
    /// request (from the target to the last snapshot); `None` for other clusters.
    pub string_bytes: Option<f64>,
}

/// A group of leaked objects kept by one holder, growing across the snapshots.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The holder's label, e.g. `quoteCache` or `lifecycle._events.shutdown`.
    pub holder: String,
    /// The holder's class, e.g. `Map`, `Array`.
    pub holder_class: String,
    /// V8 id of the (first) holder node in the last snapshot.
    pub holder_id: u32,
    /// How many holder nodes share the label.
    pub holder_nodes: usize,
    /// Class of the objects that accumulate (the leak roots): what the holder keeps
    /// directly (`Quote`, `abortInFlight()`, `bound handleException()`); for listeners of
    /// several functions, the two most common (`a(), b() and 2 more`).
    pub root_class: String,
    /// What a user counts the roots in, singular: `listener` for an emitter's listeners,
    /// else `root_class`. Headlines count this unit (`1.00 listener per request`).
    pub unit: String,
    /// The leak pattern (its wire name and fix hint come with it).
    pub pattern: Pattern,
    /// Leak roots (objects that accumulate) among the leaked objects.
    pub count: u64,
    /// All leaked objects in the cluster (roots and what they keep).
    pub object_count: u64,
    /// Retained size of the roots, no double counting, bytes (last snapshot).
    pub retained_size_bytes: u64,
    /// Objects of the root class under the holder, per snapshot (baseline first).
    pub counts_per_snapshot: Vec<u64>,
    /// Retained size of the holder per snapshot, bytes (0 where it is absent).
    pub holder_retained_per_snapshot: Vec<Option<u64>>,
    /// Leaked objects by class, most first.
    pub objects: Vec<ClassCount>,
    /// The leaked objects other than the roots (what the roots bring along: a logger's
    /// bound functions, a request's headers), by class, most first; with `count`, how
    /// many each root brings.
    pub brought_along: Vec<ClassCount>,
    /// The best guess at where the leak is made: `sources[0]`. A snapshot has no call
    /// stacks, so it is a guess, of the kind [`SourceRef::kind`] says.
    pub source: Option<SourceRef>,
    /// Every source location found, best first: the app's own code before its
    /// dependencies (`node_modules`) before Node's internals, and within each, the
    /// accumulating closure itself, the function owning the holder, the roots'
    /// constructor, then the most common closures among the leaked objects.
    pub sources: Vec<SourceRef>,
    /// One-line fix hint: `pattern`'s.
    pub fix_hint: &'static str,
    /// The retainer trace from a GC root to the holder and on to the largest root.
    pub trace: Vec<TraceStep>,
    /// The most common stacks that allocated the roots' kind (at most
    /// [`crate::MAX_ALLOCATION_STACKS`], read from the roots' siblings added since the
    /// snapshot before the last), when the snapshots carry allocation stacks (taken with
    /// allocation tracking on); else empty. With them, `source` is the first
    /// frame of the app's own code ([`crate::SourceKind::AllocationStack`]).
    pub allocation_stacks: Vec<crate::AllocationStack>,
    /// Listener count for `listener_accumulation` (elements of the listener array).
    pub listener_count: Option<u64>,
    /// Rates per request when `requests_per_step` was given.
    pub per_request: Option<PerRequest>,
    /// Share of the retained size that is ArrayBuffer backing stores (off the JS heap).
    pub external_share: f64,
    /// For a string grown with `+=` (`growing_string`): the size of the holder's string
    /// in bytes per snapshot (baseline first; every piece of its concatenation tree once,
    /// so its length-based size), `None` where a snapshot has no such holder; empty for
    /// other clusters. `counts_per_snapshot` counts the tree's pieces.
    pub string_bytes_per_snapshot: Vec<Option<u64>>,
    /// Why `source` is not in the app's own code, and what would find it (`hunt
    /// --track-allocations`); `None` when a source is the app's.
    pub source_unknown_why: Option<String>,
    /// For a list of Node's timers (`timerListMap[8000]`): its duration and how many of
    /// its timers are one-shot or repeating in the last snapshot; `None` for other holders.
    pub timer_list: Option<crate::timers::TimerList>,
    /// With `source_unknown_why`: the app's own scripts the last snapshot has code of (not
    /// Node's, not under `node_modules`), at most [`crate::MAX_APP_SCRIPTS`], sorted, where
    /// a source-level search (the lint rule of the cluster's pattern) may find the code
    /// the heap cannot name; empty otherwise.
    pub app_scripts: Vec<String>,
}

/// A cluster of new objects that stayed alive but did not keep growing (bounded cache,
/// warm-up, metadata): reported for information, not as a leak.
#[derive(Debug, Clone)]
pub struct NotGrowing {
    /// Holder label, as [`Cluster::holder`].
    pub holder: String,
    /// Class of the surviving objects, as [`Cluster::root_class`].
    pub root_class: String,
    /// Objects of that class under the holder, per snapshot (baseline first).
    pub counts_per_snapshot: Vec<u64>,
}

/// What [`find_leaks`](crate::find_leaks) found.
#[derive(Debug, Clone)]
pub struct LeakReport {
    /// Leaking clusters, largest retained size first; empty when nothing leaks.
    pub clusters: Vec<Cluster>,
    /// Clusters of surviving new objects that do not grow.
    pub not_growing: Vec<NotGrowing>,
    /// Leaked objects after the filter (allocated after baseline, alive in every later
    /// snapshot).
    pub leaked_object_count: u64,
    /// Warnings about the inputs (e.g. two snapshots with the same newest object id:
    /// nothing was allocated between them), one sentence each.
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_between_snapshots_are_the_measured_steps_when_given() {
        let same = LeakOptions {
            requests_per_step: Some(300.0),
            ..LeakOptions::default()
        };
        assert_eq!(same.requests_between(0, 1), Some(300.0));
        assert_eq!(same.requests_between(1, 3), Some(600.0));
        let measured = LeakOptions {
            requests_per_step: Some(857.5),
            requests_per_step_each: vec![835.0, 880.0],
            ..LeakOptions::default()
        };
        assert_eq!(measured.requests_between(0, 1), Some(835.0));
        assert_eq!(measured.requests_between(1, 2), Some(880.0));
        // Past the measured steps, the one number.
        assert_eq!(measured.requests_between(1, 3), Some(1715.0));
        assert_eq!(LeakOptions::default().requests_between(0, 1), None);
        assert_eq!(same.requests_between(2, 2), None);
    }
}
