//! The three-snapshot leak finder (baseline, target, final; memlab's `(T \ B) ∩ F`,
//! `heapsnapshot-format.md` §4) with a Node-aware filter, clusters keyed by the holder
//! that keeps the leaked objects, and a growth check across every snapshot so bounded
//! caches, WeakMap metadata, ring buffers and churn are not reported.
//!
//! How a cluster is found, in the last snapshot:
//! 1. *Leaked objects*: ids absent from the baseline, present in the target and in every
//!    later snapshot; numbers, strings, V8 internals (`hidden`, `code`, `array`,
//!    `system / …`) and the embedder's unstable-id nodes are dropped.
//! 2. *Leak root*: walking up an object's retainer trace ([`crate::Traces`]) through
//!    objects allocated after the baseline, the top-most leaked object; the first older
//!    node above it is where the new structure hangs off the old heap.
//! 3. *Holder*: from there up, the first object a user can name (not a V8 internal); its
//!    label comes from the trace: the closure variable or global it hangs off, then the
//!    property chain (`lifecycle._events.shutdown`).
//! 4. *Cluster*: leak roots of one class under holders of one label. Its size is the sum
//!    of the roots' retained sizes, roots dominated by another root not counted twice.
//! 5. *Growth*: in every snapshot, the number of objects of the root class whose trace
//!    passes through the holder; a cluster is a leak only if that number rises at every
//!    step from the target on, by at least `min_growth` in all.

use std::collections::HashMap;

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType, display_name};

use crate::pattern::Pattern;
use crate::source::{ScriptMap, SourceRef};
use crate::trace::Traces;

/// Options of [`find_leaks`].
#[derive(Debug, Clone)]
pub struct LeakOptions {
    /// Units of load (requests) between consecutive snapshots, to report rates per unit.
    pub requests_per_step: Option<f64>,
    /// Minimum growth of a cluster from the target to the last snapshot, in objects.
    pub min_growth: u64,
    /// At most this many clusters are reported.
    pub max_clusters: usize,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions {
            requests_per_step: None,
            min_growth: 2,
            max_clusters: 20,
        }
    }
}

/// Why snapshots cannot be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeakError {
    /// Fewer than three snapshots.
    #[error("the three-snapshot technique needs at least 3 snapshots (baseline, target, final); got {0}")]
    TooFewSnapshots(usize),
    /// Node ids do not line up: the snapshots come from different processes.
    #[error(
        "snapshots {first} and {second} come from different processes (only {matching} of {common} shared ids name the same object); ids only match within one process"
    )]
    DifferentProcesses {
        /// Position of the first snapshot (0-based).
        first: usize,
        /// Position of the second snapshot.
        second: usize,
        /// Shared ids that name the same kind of object.
        matching: u64,
        /// Shared ids.
        common: u64,
    },
    /// A later snapshot holds only older objects than an earlier one.
    #[error(
        "snapshots are out of order: snapshot {later} (newest object id {later_max_id}) is older than snapshot {earlier} (newest id {earlier_max_id}); give them oldest first"
    )]
    OutOfOrder {
        /// Position of the earlier snapshot.
        earlier: usize,
        /// Position of the later one.
        later: usize,
        /// Newest JS object id of the earlier.
        earlier_max_id: u32,
        /// Newest JS object id of the later.
        later_max_id: u32,
    },
    /// The node or edge type lists differ: snapshots from different V8 versions.
    #[error("snapshots {first} and {second} were written by different V8 versions (their node/edge type lists differ)")]
    DifferentV8 {
        /// Position of the first snapshot.
        first: usize,
        /// Position of the second.
        second: usize,
    },
}

/// Objects of one class inside a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCount {
    /// Class name.
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
    /// The edge type.
    pub edge_type: String,
    /// Display name of the node.
    pub node_name: String,
    /// Class name of the node.
    pub class_name: String,
    /// V8 node type.
    pub node_type: String,
    /// V8 node id.
    pub id: u32,
    /// Self size, bytes.
    pub self_size_bytes: u64,
    /// Retained size, bytes.
    pub retained_size_bytes: u64,
    /// Whether this node is the holder.
    pub is_holder: bool,
    /// Whether this node is a leaked object.
    pub is_leaked: bool,
}

/// Rates per unit of load.
#[derive(Debug, Clone, PartialEq)]
pub struct PerRequest {
    /// Leak roots added per request (from the growth after the target).
    pub count: f64,
    /// Retained bytes added per request.
    pub retained_size_bytes: f64,
    /// Leaked objects per request, by class (from the objects allocated between baseline
    /// and target, over one step of load).
    pub objects: Vec<(String, f64)>,
}

/// A group of leaked objects kept by one holder, growing across the snapshots.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The holder's label, e.g. `quoteCache` or `lifecycle._events.shutdown`.
    pub holder: String,
    /// The holder's class, e.g. `Map`, `Array`.
    pub holder_class: String,
    /// V8 id of the (first) holder node.
    pub holder_id: u32,
    /// How many holder nodes share the label.
    pub holder_nodes: usize,
    /// Class of the objects that accumulate (the leak roots).
    pub root_class: String,
    /// The leak pattern.
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
    /// The best source location (user code first), if any.
    pub source: Option<SourceRef>,
    /// Every source location found (roots' constructors and functions, the holder's
    /// owning function).
    pub sources: Vec<SourceRef>,
    /// One-line fix hint.
    pub fix_hint: &'static str,
    /// The retainer trace from a GC root to the holder and on to the largest root.
    pub trace: Vec<TraceStep>,
    /// Listener count for `listener_accumulation` (elements of the listener array).
    pub listener_count: Option<u64>,
    /// Rates per request when `requests_per_step` was given.
    pub per_request: Option<PerRequest>,
    /// Share of the retained size that is ArrayBuffer backing stores (off the JS heap).
    pub external_share: f64,
}

/// A cluster of new objects that stayed alive but did not keep growing (bounded cache,
/// warm-up, metadata): reported for information, not as a leak.
#[derive(Debug, Clone)]
pub struct NotGrowing {
    /// Holder label.
    pub holder: String,
    /// Root class.
    pub root_class: String,
    /// Counts per snapshot.
    pub counts_per_snapshot: Vec<u64>,
}

/// What [`find_leaks`] found.
#[derive(Debug, Clone)]
pub struct LeakReport {
    /// Leaking clusters, largest retained size first; empty when nothing leaks.
    pub clusters: Vec<Cluster>,
    /// Clusters of surviving new objects that do not grow.
    pub not_growing: Vec<NotGrowing>,
    /// Leaked objects after the filter (allocated after baseline, alive in every later
    /// snapshot).
    pub leaked_object_count: u64,
    /// Warnings about the inputs.
    pub warnings: Vec<String>,
}

/// id → ordinal for one snapshot: a dense table over odd (V8 heap object) ids when they
/// are compact (the usual case: ids grow with allocations), else sorted pairs.
pub(crate) enum IdIndex {
    /// `slots[(id - 1) / 2]` = ordinal + 1 (0: absent); `even` holds the even (embedder) ids.
    Dense { slots: Vec<u32>, even: Vec<(u32, NodeId)> },
    /// Sorted (id, ordinal) pairs.
    Sorted(Vec<(u32, NodeId)>),
}

impl IdIndex {
    pub(crate) fn build(s: &HeapSnapshot) -> IdIndex {
        let n = s.node_count();
        let max_odd = s.max_js_object_id() as usize;
        if max_odd / 2 <= 8 * n + 1024 {
            let mut slots = vec![0u32; max_odd / 2 + 1];
            let mut even = Vec::new();
            for o in 0..n as NodeId {
                let id = s.id(o);
                if id % 2 == 1 {
                    slots[(id / 2) as usize] = o + 1;
                } else {
                    even.push((id, o));
                }
            }
            even.sort_unstable();
            IdIndex::Dense { slots, even }
        } else {
            let mut pairs: Vec<(u32, NodeId)> = (0..n as NodeId).map(|o| (s.id(o), o)).collect();
            pairs.sort_unstable();
            IdIndex::Sorted(pairs)
        }
    }
    pub(crate) fn get(&self, id: u32) -> Option<NodeId> {
        let find = |v: &[(u32, NodeId)]| v.binary_search_by_key(&id, |p| p.0).ok().map(|i| v[i].1);
        match self {
            IdIndex::Dense { slots, even } => {
                if id % 2 == 1 {
                    slots.get((id / 2) as usize).copied().filter(|&x| x != 0).map(|x| x - 1)
                } else {
                    find(even)
                }
            }
            IdIndex::Sorted(pairs) => find(pairs),
        }
    }
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }
}

/// Checks that the snapshots come from one process, in order, from one V8.
pub(crate) fn check_consistency(snaps: &[&HeapSnapshot], ids: &[IdIndex]) -> Result<Vec<String>, LeakError> {
    let mut warnings = Vec::new();
    for i in 1..snaps.len() {
        let (a, b) = (snaps[i - 1], snaps[i]);
        if a.node_type_names() != b.node_type_names() || a.edge_type_names() != b.edge_type_names() {
            return Err(LeakError::DifferentV8 {
                first: i - 1,
                second: i,
            });
        }
        let (ma, mb) = (a.max_js_object_id(), b.max_js_object_id());
        if mb < ma {
            return Err(LeakError::OutOfOrder {
                earlier: i - 1,
                later: i,
                earlier_max_id: ma,
                later_max_id: mb,
            });
        }
        // Same process: shared odd (V8) ids must name the same kind of object.
        let (mut common, mut matching) = (0u64, 0u64);
        // A sample of one node in eight is plenty to tell processes apart.
        for o in (0..a.node_count() as NodeId).step_by(8) {
            let id = a.id(o);
            if id % 2 == 0 || a.node_type(o) == NodeType::Number {
                continue;
            }
            if let Some(ob) = ids[i].get(id) {
                common += 1;
                if a.node_type(o) == b.node_type(ob) && a.raw_name(o) == b.raw_name(ob) {
                    matching += 1;
                }
            }
        }
        if common < 20 || (matching as f64) < 0.8 * common as f64 {
            return Err(LeakError::DifferentProcesses {
                first: i - 1,
                second: i,
                matching,
                common,
            });
        }
        if ma == mb {
            warnings.push(format!(
                "snapshots {} and {} have the same newest object id: nothing was allocated between them",
                i - 1,
                i
            ));
        }
    }
    Ok(warnings)
}

/// Checks that two snapshots come from one process, oldest first, from one V8.
///
/// # Errors
/// [`LeakError`] as for [`find_leaks`].
pub fn check_pair(base: &HeapSnapshot, current: &HeapSnapshot) -> Result<Vec<String>, LeakError> {
    let snaps = [base, current];
    let ids = [IdIndex::build(base), IdIndex::build(current)];
    check_consistency(&snaps, &ids)
}

fn is_internal(s: &HeapSnapshot, o: NodeId) -> bool {
    match s.node_type(o) {
        NodeType::Hidden | NodeType::Array | NodeType::Code | NodeType::Synthetic | NodeType::ObjectShape => true,
        NodeType::Object | NodeType::Native => s.raw_name(o).starts_with("system / "),
        _ => false,
    }
}

/// What accumulates, finer than the DevTools class for functions: every closure is of
/// class `Function`, so closures are told apart by name and source location. Returns
/// (key, display name).
pub(crate) fn leak_key(s: &HeapSnapshot, o: NodeId) -> (String, String) {
    if s.is_string(o) {
        // V8 flattens concatenated strings: one key for every string type.
        return (STRING_KEY.to_owned(), "(string)".to_owned());
    }
    if s.node_type(o) == NodeType::Closure {
        let name = s.raw_name(o);
        let shown = if name.is_empty() {
            "(anonymous function)".to_owned()
        } else {
            format!("{name}()")
        };
        let loc = s
            .location(o)
            .map(|l| format!("{},{},{}", l.script_id, l.line, l.column))
            .unwrap_or_default();
        (format!("closure {name} {loc}"), shown)
    } else {
        let c = s.class(o);
        (c.key(), c.name.clone())
    }
}

/// Whether `o` hangs off leakhound's own instrumentation in the target (the GC observer's
/// state under `Symbol.for('leakhound.…')`): not the app's memory.
fn is_own_instrumentation(s: &HeapSnapshot, traces: &Traces, o: NodeId) -> bool {
    let mut cur = o;
    for _ in 0..32 {
        let Some(e) = traces.parent_edge(cur) else { return false };
        if !s.edge_type(e).has_index_name()
            && s.strings()
                .get(s.edge_name_or_index(e))
                .starts_with("<symbol leakhound.")
        {
            return true;
        }
        match traces.parent(cur) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

/// The leak key of every string type.
const STRING_KEY: &str = "(string)";

/// The Node-aware filter: what can be a leaked object worth reporting.
fn is_reportable(s: &HeapSnapshot, o: NodeId) -> bool {
    match s.node_type(o) {
        NodeType::Object | NodeType::Closure | NodeType::RegExp => !s.raw_name(o).starts_with("system / "),
        // Strings count only where nothing reportable holds them (a cache of rendered
        // HTML); strings inside kept objects are part of those objects' clusters.
        NodeType::String | NodeType::ConsString | NodeType::SlicedString => s.self_size(o) > 0,
        NodeType::Native => s.id(o) % 2 == 1 && !s.raw_name(o).starts_with("system / "),
        _ => false,
    }
}

/// Runs the three-snapshot technique over `snaps` (baseline, target, final, more…, in
/// the order they were taken, all from one process).
///
/// # Errors
/// [`LeakError`] if there are fewer than three snapshots, or they come from different
/// processes, are out of order, or from different V8 versions.
pub fn find_leaks(snaps: &[&HeapSnapshot], opts: &LeakOptions) -> Result<LeakReport, LeakError> {
    if snaps.len() < 3 {
        return Err(LeakError::TooFewSnapshots(snaps.len()));
    }
    // Per-snapshot indexes and traces, on both cores.
    let (ids, mut all_traces): (Vec<IdIndex>, Vec<Traces>) = std::thread::scope(|scope| {
        let half = snaps.len() / 2;
        let h = scope.spawn(move || {
            snaps[..half]
                .iter()
                .map(|s| (IdIndex::build(s), Traces::compute(s)))
                .collect::<Vec<_>>()
        });
        let rest: Vec<(IdIndex, Traces)> = snaps[half..]
            .iter()
            .map(|s| (IdIndex::build(s), Traces::compute(s)))
            .collect();
        let mut first = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        first.extend(rest);
        first.into_iter().unzip()
    });
    let warnings = check_consistency(snaps, &ids)?;
    let last_i = snaps.len() - 1;
    let s = snaps[last_i];
    let n = s.node_count();

    // 1. New (allocated after the baseline) and leaked (also alive from the target on).
    let mut is_new = vec![false; n];
    let mut is_leaked = vec![false; n];
    for o in 0..n as NodeId {
        let id = s.id(o);
        if ids[0].contains(id) {
            continue;
        }
        is_new[o as usize] = true;
        if (1..last_i).all(|k| ids[k].contains(id)) {
            is_leaked[o as usize] = true;
        }
    }
    let traces = all_traces.pop().unwrap_or_else(|| Traces::compute(s));

    // 2–3. Leak roots and holders.
    struct Group {
        holder: NodeId,
        root_class: u32,
        roots: Vec<NodeId>,
        objects: Vec<NodeId>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(NodeId, u32), usize> = HashMap::new();
    // Leak keys (see `leak_key`) interned to small ids; `keys[id]` = (key, display).
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut key_ids: HashMap<String, u32> = HashMap::new();
    let mut key_of_top: HashMap<NodeId, u32> = HashMap::new();
    let mut own_state: HashMap<NodeId, bool> = HashMap::new();
    let mut holder_cache: HashMap<(NodeId, String), Option<NodeId>> = HashMap::new();
    let mut leaked_object_count = 0u64;
    // For every new node, in BFS order (parents first): `attach` = the first old node above
    // it on its trace, `top` = the top-most reportable leaked node between it and there.
    const NONE: u32 = u32::MAX;
    let mut attach = vec![NONE; n];
    let mut top = vec![NONE; n];
    let reportable: Vec<bool> = (0..n as NodeId)
        .map(|o| is_leaked[o as usize] && is_reportable(s, o))
        .collect();
    for &o in traces.order() {
        if !is_new[o as usize] {
            continue;
        }
        let Some(p) = traces.parent(o) else { continue };
        let (a, t) = if is_new[p as usize] {
            (attach[p as usize], top[p as usize])
        } else {
            (p, NONE)
        };
        attach[o as usize] = a;
        top[o as usize] = if t != NONE {
            t
        } else if reportable[o as usize] {
            o
        } else {
            NONE
        };
    }
    for o in 0..n as NodeId {
        if !reportable[o as usize] || traces.depth(o).is_none() {
            continue;
        }
        leaked_object_count += 1;
        let (a, t) = (attach[o as usize], top[o as usize]);
        if a == NONE || t == NONE {
            continue;
        }
        // The holder: the first nameable node above the attach point. Old links of a
        // chain of the top's own kind (old Timeouts of a timer list) are passed over, so a
        // linked list is held by its list, not by whichever old element a new one follows.
        let t_key = leak_key(s, t).0;
        let holder = *holder_cache.entry((a, t_key.clone())).or_insert_with(|| {
            let mut h = a;
            for _ in 0..100_000 {
                if !is_internal(s, h) && (s.node_type(h) == NodeType::Synthetic || leak_key(s, h).0 != t_key) {
                    return Some(h);
                }
                h = traces.parent(h)?;
            }
            None
        });
        let Some(holder) = holder else { continue };
        if *own_state
            .entry(holder)
            .or_insert_with(|| is_own_instrumentation(s, &traces, holder))
        {
            continue;
        }
        let root_key = *key_of_top.entry(t).or_insert_with(|| {
            let (k, shown) = leak_key(s, t);
            *key_ids.entry(k.clone()).or_insert_with(|| {
                keys.push((k, shown));
                (keys.len() - 1) as u32
            })
        });
        let key = (holder, root_key);
        let gi = *group_of.entry(key).or_insert_with(|| {
            groups.push(Group {
                holder,
                root_class: root_key,
                roots: Vec::new(),
                objects: Vec::new(),
            });
            groups.len() - 1
        });
        // Every object of the top's kind accumulates (a linked list of Timeouts hangs each
        // one off the previous): all of them are roots, not only the head.
        if t == o || leak_key(s, o).0 == keys[root_key as usize].0 {
            groups[gi].roots.push(o);
        }
        groups[gi].objects.push(o);
    }

    // 4. Merge groups whose holders share a label.
    let scripts = ScriptMap::build(s);
    let mut merged: Vec<(String, u32, Vec<usize>)> = Vec::new();
    let mut merged_of: HashMap<(String, u32), usize> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        if g.roots.is_empty() {
            continue;
        }
        let label = holder_label(s, &traces, g.holder);
        let key = (label.clone(), g.root_class);
        match merged_of.get(&key) {
            Some(&m) => merged[m].2.push(gi),
            None => {
                merged_of.insert(key, merged.len());
                merged.push((label, g.root_class, vec![gi]));
            }
        }
    }

    // 5. Growth: objects of the root class under the holder, in every snapshot.
    let holder_ids: Vec<Vec<u32>> = merged
        .iter()
        .map(|(_, _, gs)| gs.iter().map(|&g| s.id(groups[g].holder)).collect())
        .collect();
    // The DevTools class key of each cluster's roots (a prefilter) and its leak key.
    let root_keys: Vec<(String, String)> = merged
        .iter()
        .map(|(_, c, gs)| {
            let sample = groups[gs[0]].roots[0];
            (s.class(sample).key(), keys[*c as usize].0.clone())
        })
        .collect();
    let mut counts: Vec<Vec<u64>> = vec![vec![0; snaps.len()]; merged.len()];
    let mut holder_retained: Vec<Vec<Option<u64>>> = vec![vec![None; snaps.len()]; merged.len()];
    for (k, snap) in snaps.iter().enumerate() {
        let tr = if k == last_i { &traces } else { &all_traces[k] };
        count_under_holders(
            snap,
            tr,
            &ids[k],
            &holder_ids,
            &root_keys,
            &mut counts,
            &mut holder_retained,
            k,
        );
    }

    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    // Holders that keep objects: their strings are already in those clusters.
    let object_holders: std::collections::HashSet<&str> = merged
        .iter()
        .filter(|(_, rc, _)| keys[*rc as usize].0 != STRING_KEY)
        .map(|(label, _, _)| label.as_str())
        .collect();
    for (m, (label, root_class, gs)) in merged.iter().enumerate() {
        if keys[*root_class as usize].0 == STRING_KEY && object_holders.contains(label.as_str()) {
            continue;
        }
        let c = &counts[m];
        let growing = (2..snaps.len()).all(|k| c[k] > c[k - 1]) && c[last_i].saturating_sub(c[1]) >= opts.min_growth;
        let root_class_name = keys[*root_class as usize].1.clone();
        if !growing {
            not_growing.push(NotGrowing {
                holder: label.clone(),
                root_class: root_class_name,
                counts_per_snapshot: c.clone(),
            });
            continue;
        }
        let members: Vec<&Group> = gs.iter().map(|&g| &groups[g]).collect();
        clusters.push(build_cluster(
            s,
            &traces,
            &scripts,
            label,
            &root_class_name,
            &members
                .iter()
                .map(|g| (g.holder, &g.roots[..], &g.objects[..]))
                .collect::<Vec<_>>(),
            c.clone(),
            holder_retained[m].clone(),
            opts,
        ));
    }
    let known: std::collections::HashSet<String> = clusters.iter().map(|c| c.holder.clone()).collect();
    clusters.extend(growing_primitive_arrays(snaps, &ids, &traces, &is_new, &known, opts));
    clusters.sort_by(|a, b| {
        b.retained_size_bytes
            .cmp(&a.retained_size_bytes)
            .then(b.count.cmp(&a.count))
    });
    clusters.truncate(opts.max_clusters);
    not_growing.sort_by(|a, b| b.counts_per_snapshot.last().cmp(&a.counts_per_snapshot.last()));
    not_growing.truncate(opts.max_clusters);
    Ok(LeakReport {
        clusters,
        not_growing,
        leaked_object_count,
        warnings,
    })
}

/// Bytes of an Array's element store (header included), whatever the analysis level:
/// with the full analysis the store's size was moved into the Array's self size.
fn array_store_bytes(s: &HeapSnapshot, o: NodeId) -> u64 {
    let store = s
        .edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "elements")
        .map(|e| s.edge_target(e));
    s.self_size(o) + store.map_or(0, |t| s.self_size(t))
}

/// Old Arrays of primitives (numbers, booleans: values with no node of their own) whose
/// element store grows at every step: no new object appears, so no cluster finds them.
/// Element counts are estimated at 8 bytes per element.
fn growing_primitive_arrays(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &Traces,
    is_new: &[bool],
    known: &std::collections::HashSet<String>,
    opts: &LeakOptions,
) -> Vec<Cluster> {
    let last_i = snaps.len() - 1;
    let s = snaps[last_i];
    let array_names = s.strings().find_all("Array");
    let mut out = Vec::new();
    for o in 0..s.node_count() as NodeId {
        if is_new[o as usize]
            || s.node_type(o) != NodeType::Object
            || !array_names.contains(&s.raw_name_index(o))
            || traces.depth(o).is_none()
            || s.edges(o).any(|e| s.edge_type(e) == EdgeType::Element)
        {
            continue;
        }
        let id = s.id(o);
        let sizes: Option<Vec<u64>> = snaps
            .iter()
            .zip(ids)
            .map(|(snap, ix)| ix.get(id).map(|x| array_store_bytes(snap, x)))
            .collect();
        let Some(sizes) = sizes else { continue };
        let grows = (1..snaps.len()).all(|k| sizes[k] > sizes[k - 1]);
        let growth = sizes[last_i].saturating_sub(sizes[1]);
        if !grows || growth < 1024 || growth / 8 < opts.min_growth {
            continue;
        }
        let label = holder_label(s, traces, o);
        if known.contains(&label) || is_own_instrumentation(s, traces, o) {
            continue;
        }
        let counts: Vec<u64> = sizes.iter().map(|b| b / 8).collect();
        let per_request = opts.requests_per_step.filter(|&r| r > 0.0).map(|req| {
            let steps = (last_i - 1) as f64;
            PerRequest {
                count: growth as f64 / 8.0 / (steps * req),
                retained_size_bytes: growth as f64 / (steps * req),
                objects: Vec::new(),
            }
        });
        let is_root = vec![false; s.node_count()];
        let pattern = Pattern::UnboundedCollection;
        let scripts = ScriptMap::build(s);
        let sources: Vec<SourceRef> = holder_owner(s, traces, o)
            .and_then(|(owner, var)| {
                let loc = s.location(owner)?;
                scripts.resolve(loc, format!("function {} (holds `{var}`)", fn_name(s, owner)))
            })
            .into_iter()
            .collect();
        out.push(Cluster {
            holder: label,
            holder_class: "Array".into(),
            holder_id: id,
            holder_nodes: 1,
            // Estimated from the store's bytes (8 per slot, capacity included).
            root_class: "(element slot)".into(),
            pattern,
            count: growth / 8,
            object_count: 0,
            retained_size_bytes: s.retained_size(o),
            counts_per_snapshot: counts,
            holder_retained_per_snapshot: snaps
                .iter()
                .zip(ids)
                .map(|(snap, ix)| {
                    ix.get(id)
                        .filter(|_| snap.is_fully_analyzed())
                        .map(|x| snap.retained_size(x))
                })
                .collect(),
            objects: Vec::new(),
            source: sources.first().cloned(),
            sources,
            fix_hint: pattern.fix_hint(),
            trace: trace_steps(s, traces, o, o, &is_root),
            listener_count: None,
            per_request,
            external_share: 0.0,
        });
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn count_under_holders(
    s: &HeapSnapshot,
    traces: &Traces,
    ids: &IdIndex,
    holder_ids: &[Vec<u32>],
    root_keys: &[(String, String)],
    counts: &mut [Vec<u64>],
    holder_retained: &mut [Vec<Option<u64>>],
    k: usize,
) {
    // holder ordinal -> clusters it belongs to
    let mut by_holder: HashMap<NodeId, Vec<usize>> = HashMap::new();
    for (m, hs) in holder_ids.iter().enumerate() {
        for &id in hs {
            if let Some(o) = ids.get(id) {
                by_holder.entry(o).or_default().push(m);
                if s.is_fully_analyzed() {
                    *holder_retained[m][k].get_or_insert(0) += s.retained_size(o);
                }
            }
        }
    }
    if by_holder.is_empty() {
        return;
    }
    // class index (in this snapshot) -> clusters whose root class has that key
    let mut wanted: Vec<Option<Vec<usize>>> = vec![None; s.classes().len()];
    let key_to_clusters: HashMap<&str, Vec<usize>> =
        root_keys.iter().enumerate().fold(HashMap::new(), |mut acc, (m, k)| {
            acc.entry(k.0.as_str()).or_default().push(m);
            acc
        });
    let string_clusters: Vec<usize> = root_keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.1 == STRING_KEY)
        .map(|(m, _)| m)
        .collect();
    for (ci, class) in s.classes().iter().enumerate() {
        let mut ms = key_to_clusters.get(class.key().as_str()).cloned().unwrap_or_default();
        if matches!(
            class.name.as_str(),
            "(string)" | "(concatenated string)" | "(sliced string)"
        ) {
            ms.extend(string_clusters.iter().copied());
        }
        if !ms.is_empty() {
            wanted[ci] = Some(ms);
        }
    }
    // Nearest holder above each node on its trace (BFS order: parents first), at any depth.
    let n = s.node_count();
    let mut is_holder = vec![false; n];
    for &h in by_holder.keys() {
        is_holder[h as usize] = true;
    }
    let mut nearest = vec![u32::MAX; n];
    for &o in traces.order() {
        if let Some(p) = traces.parent(o) {
            nearest[o as usize] = if is_holder[p as usize] { p } else { nearest[p as usize] };
        }
    }
    for o in 0..n as NodeId {
        let h = nearest[o as usize];
        if h == u32::MAX {
            continue;
        }
        let Some(Some(ms)) = wanted.get(s.class_index(o) as usize) else {
            continue;
        };
        let key = leak_key(s, o).0;
        if let Some(hs) = by_holder.get(&h) {
            for m in hs {
                if ms.contains(m) && root_keys[*m].1 == key {
                    counts[*m][k] += 1;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build_cluster(
    s: &HeapSnapshot,
    traces: &Traces,
    scripts: &ScriptMap,
    label: &str,
    root_class: &str,
    members: &[(NodeId, &[NodeId], &[NodeId])],
    counts_per_snapshot: Vec<u64>,
    holder_retained_per_snapshot: Vec<Option<u64>>,
    opts: &LeakOptions,
) -> Cluster {
    let holder = members[0].0;
    let roots: Vec<NodeId> = members.iter().flat_map(|m| m.1.iter().copied()).collect();
    let objects: Vec<NodeId> = members.iter().flat_map(|m| m.2.iter().copied()).collect();
    // Retained size without double counting: roots dominated by another root are skipped.
    let mut is_root = vec![false; s.node_count()];
    for &r in &roots {
        is_root[r as usize] = true;
    }
    let mut retained = 0u64;
    let mut external = 0u64;
    for &r in &roots {
        let mut d = s.dominator(r);
        let mut nested = false;
        for _ in 0..10_000 {
            if d == s.root() {
                break;
            }
            if is_root[d as usize] {
                nested = true;
                break;
            }
            d = s.dominator(d);
        }
        if !nested {
            retained += s.retained_size(r);
            external += external_bytes(s, r);
        }
    }
    // Objects by class.
    let mut by_class: HashMap<String, (u64, u64)> = HashMap::new();
    for &o in &objects {
        let name = if s.node_type(o) == NodeType::Closure {
            leak_key(s, o).1
        } else {
            s.class(o).name.clone()
        };
        let e = by_class.entry(name).or_default();
        e.0 += 1;
        e.1 += s.self_size(o);
    }
    let mut object_classes: Vec<ClassCount> = by_class
        .into_iter()
        .map(|(class_name, (count, size))| ClassCount {
            class_name,
            count,
            self_size_bytes: size,
        })
        .collect();
    object_classes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.self_size_bytes.cmp(&a.self_size_bytes))
            .then(a.class_name.cmp(&b.class_name))
    });

    // A representative root: the largest.
    let sample = roots
        .iter()
        .copied()
        .max_by_key(|&r| (s.retained_size(r), std::cmp::Reverse(r)))
        .unwrap_or(holder);
    let mut trace = trace_steps(s, traces, holder, sample, &is_root);
    if trace.len() > 40 {
        // Long chains (linked lists) keep their two ends and the holder.
        let hidden = trace.len() - 35;
        let tail = trace.split_off(15);
        let mut keep_tail: Vec<TraceStep> = tail[hidden..].to_vec();
        let holder_step = tail[..hidden].iter().find(|t| t.is_holder).cloned();
        trace.push(TraceStep {
            edge: "…".into(),
            edge_type: String::new(),
            node_name: format!("({hidden} more steps)"),
            class_name: String::new(),
            node_type: String::new(),
            id: 0,
            self_size_bytes: 0,
            retained_size_bytes: 0,
            is_holder: false,
            is_leaked: false,
        });
        if let Some(h) = holder_step {
            trace.push(h);
            trace.push(TraceStep {
                edge: "…".into(),
                node_name: String::new(),
                ..trace[15].clone()
            });
        }
        trace.append(&mut keep_tail);
    }
    let external_share = if retained == 0 {
        0.0
    } else {
        external as f64 / retained as f64
    };

    let holder_class = s.class(holder).name.clone();
    let pattern = classify(
        s,
        traces,
        holder,
        label,
        sample,
        roots.len() as u64,
        retained,
        external_share,
    );
    let listener_count = (pattern == Pattern::ListenerAccumulation)
        .then(|| s.edges(holder).filter(|&e| s.edge_type(e) == EdgeType::Element).count() as u64);

    // Sources: the roots' constructor / function, then the holder's owning function.
    let mut sources: Vec<SourceRef> = Vec::new();
    if let Some(loc) = s.location(sample) {
        let what = match s.node_type(sample) {
            NodeType::Closure => format!("function {}", fn_name(s, sample)),
            _ => format!("constructor of {}", s.class(sample).name),
        };
        if let Some(r) = scripts.resolve(loc, what) {
            sources.push(r);
        }
    }
    if let Some((owner, var)) = holder_owner(s, traces, holder)
        && let Some(loc) = s.location(owner)
        && let Some(r) = scripts.resolve(loc, format!("function {} (holds `{var}`)", fn_name(s, owner)))
        && !sources.contains(&r)
    {
        sources.push(r);
    }
    // The most common closure among the leaked objects (an interval's callback, a
    // listener): where the app creates what accumulates.
    let mut closures: HashMap<String, (u64, NodeId)> = HashMap::new();
    for &o in &objects {
        if s.node_type(o) == NodeType::Closure && s.location(o).is_some() {
            closures.entry(leak_key(s, o).0).or_insert((0, o)).0 += 1;
        }
    }
    let mut closures: Vec<(u64, NodeId)> = closures.into_values().collect();
    closures.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, c) in closures.into_iter().take(3) {
        if let Some(loc) = s.location(c)
            && let Some(r) = scripts.resolve(loc, format!("function {}", fn_name(s, c)))
            && !sources.contains(&r)
        {
            sources.push(r);
        }
    }
    let source = sources
        .iter()
        .find(|r| r.is_user_code())
        .cloned()
        .or_else(|| sources.first().cloned());

    let per_request = opts.requests_per_step.filter(|&r| r > 0.0).map(|req| {
        let last = counts_per_snapshot.len() - 1;
        let steps = (last - 1) as f64;
        let growth = counts_per_snapshot[last].saturating_sub(counts_per_snapshot[1]) as f64;
        let count = growth / (steps * req);
        // Retained bytes per request: the roots' average retained size times the rate.
        let ret_growth = if roots.is_empty() {
            0.0
        } else {
            retained as f64 / roots.len() as f64 * growth
        };
        PerRequest {
            count,
            retained_size_bytes: (ret_growth / (steps * req)).max(0.0),
            objects: object_classes
                .iter()
                .take(8)
                .map(|c| (c.class_name.clone(), c.count as f64 / req))
                .collect(),
        }
    });

    Cluster {
        holder: label.to_owned(),
        holder_class,
        holder_id: s.id(holder),
        holder_nodes: members.len(),
        root_class: root_class.to_owned(),
        pattern,
        count: roots.len() as u64,
        object_count: objects.len() as u64,
        retained_size_bytes: retained,
        counts_per_snapshot,
        holder_retained_per_snapshot,
        objects: object_classes,
        source,
        sources,
        fix_hint: pattern.fix_hint(),
        trace,
        listener_count,
        per_request,
        external_share,
    }
}

fn fn_name(s: &HeapSnapshot, o: NodeId) -> String {
    let n = s.raw_name(o);
    if n.is_empty() {
        "(anonymous)".into()
    } else {
        n.to_owned()
    }
}

/// Bytes of ArrayBuffer backing stores (`system / JSArrayBufferData`) in `o`'s dominator
/// subtree.
fn external_bytes(s: &HeapSnapshot, o: NodeId) -> u64 {
    let mut total = 0;
    let mut stack = vec![o];
    let mut visited = 0usize;
    while let Some(x) = stack.pop() {
        visited += 1;
        if visited > 100_000 {
            break;
        }
        if s.node_type(x) == NodeType::Native && s.raw_name(x) == "system / JSArrayBufferData" {
            total += s.self_size(x);
        }
        stack.extend_from_slice(s.dominated(x));
    }
    total
}

/// The closure whose context variable the holder hangs off, with the variable's name.
fn holder_owner(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> Option<(NodeId, String)> {
    let mut cur = holder;
    for _ in 0..8 {
        let e = traces.parent_edge(cur)?;
        let p = traces.parent(cur)?;
        if s.edge_type(e) == EdgeType::Context {
            // p is the Context; its retainer on the trace is usually the closure.
            let mut q = p;
            for _ in 0..4 {
                let pp = traces.parent(q)?;
                if s.node_type(pp) == NodeType::Closure {
                    return Some((pp, s.edge_name(e).into_owned()));
                }
                q = pp;
            }
            return None;
        }
        cur = p;
    }
    None
}

/// The holder's label: the closure variable or global it hangs off, then the property
/// chain (`lifecycle._events.shutdown`); or, when no variable is near, the class of the
/// object the chain starts from (`MemoryStore.sessions`).
pub(crate) fn holder_label(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = holder;
    let mut anchored = false;
    for _ in 0..6 {
        // Node's `process` object (reached through the realm's internals, not the global's
        // property): what the app writes is `process`.
        if cur != holder && is_process_object(s, cur) {
            parts.push("process".into());
            anchored = true;
            break;
        }
        let (Some(e), Some(p)) = (traces.parent_edge(cur), traces.parent(cur)) else {
            break;
        };
        match s.edge_type(e) {
            EdgeType::Context => {
                parts.push(s.edge_name(e).into_owned());
                anchored = true;
                break;
            }
            EdgeType::Property | EdgeType::Shortcut => {
                let name = s.edge_name(e).into_owned();
                if is_global_object(s, p) {
                    parts.push(name);
                    anchored = true;
                    break;
                }
                let formatted = if is_identifier(&name) {
                    name
                } else {
                    format!("[{name:?}]")
                };
                parts.push(formatted);
                if s.raw_name(p) != "Object"
                    && !is_internal(s, p)
                    && s.node_type(p) != NodeType::Closure
                    && parts.len() >= 2
                {
                    // A named class: good enough as an anchor if no variable follows soon.
                    let next_is_var = traces
                        .parent_edge(p)
                        .is_some_and(|pe| s.edge_type(pe) == EdgeType::Context);
                    if !next_is_var && parts.len() >= 3 {
                        parts.push(s.class(p).name.clone());
                        anchored = true;
                        break;
                    }
                }
            }
            // Indexes of arrays vary per element; keys of other objects (a timer list per
            // duration) say which one.
            EdgeType::Element if s.raw_name(p) == "Array" || is_internal(s, p) => parts.push("[]".into()),
            EdgeType::Element => parts.push(format!("[{}]", s.edge_name(e))),
            // Skip V8 internals such as a Map's {table}.
            EdgeType::Internal | EdgeType::Hidden if !is_internal(s, cur) && !parts.is_empty() => {
                parts.push(format!("{{{}}}", s.edge_name(e)));
            }
            _ => {}
        }
        cur = p;
    }
    if !anchored {
        parts.push(s.class(cur).name.clone());
    }
    parts.reverse();
    let mut out = String::new();
    for p in parts {
        if p.starts_with('[') || out.is_empty() {
            out.push_str(&p);
        } else {
            out.push('.');
            out.push_str(&p);
        }
    }
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn is_process_object(s: &HeapSnapshot, o: NodeId) -> bool {
    s.node_type(o) == NodeType::Object && s.raw_name(o) == "process"
}

fn is_global_object(s: &HeapSnapshot, o: NodeId) -> bool {
    let name = s.raw_name(o);
    name == "global" || name.starts_with("global /") || name == "Window" || name.starts_with("Window /")
}

#[allow(clippy::too_many_arguments)]
fn classify(
    s: &HeapSnapshot,
    traces: &Traces,
    holder: NodeId,
    label: &str,
    sample: NodeId,
    roots: u64,
    retained: u64,
    external_share: f64,
) -> Pattern {
    let root_class = &s.class(sample).name;
    let holder_class = &s.class(holder).name;
    let holder_edge = traces
        .parent_edge(holder)
        .map(|e| s.edge_name(e).into_owned())
        .unwrap_or_default();
    let holder_parent_edge = traces
        .parent(holder)
        .and_then(|p| traces.parent_edge(p))
        .map(|e| s.edge_name(e).into_owned())
        .unwrap_or_default();
    let chain_has = |needle: &str| {
        let mut cur = holder;
        for _ in 0..8 {
            if s.class(cur).name == needle {
                return true;
            }
            match traces.parent(cur) {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    };
    let listener_holder = holder_parent_edge == "_events" || label.contains("._events.") || holder_edge == "_events";
    if listener_holder && matches!(s.node_type(sample), NodeType::Closure) {
        return Pattern::ListenerAccumulation;
    }
    if root_class == "Timeout" || root_class == "Immediate" || holder_class == "TimersList" || chain_has("TimersList") {
        return Pattern::UnclearedTimer;
    }
    if label.contains("sockets")
        || label.contains("freeSockets")
        || (chain_has("Agent") && root_class.contains("Socket"))
    {
        return Pattern::AgentSockets;
    }
    if holder_class == "BufferList" || label.contains("_readableState.buffer") || label.contains("_writableState") {
        return Pattern::UnconsumedStream;
    }
    let per_root = retained.checked_div(roots).unwrap_or(0);
    if s.node_type(sample) == NodeType::Closure && (external_share > 0.5 || per_root >= 4096) {
        return Pattern::ClosureRetention;
    }
    if external_share > 0.5 {
        return Pattern::ExternalMemory;
    }
    if listener_holder {
        return Pattern::ListenerAccumulation;
    }
    let anchored_global = {
        let mut cur = holder;
        let mut found = false;
        for _ in 0..6 {
            let Some(p) = traces.parent(cur) else { break };
            if is_global_object(s, p) {
                found = true;
                break;
            }
            if traces
                .parent_edge(cur)
                .is_some_and(|e| s.edge_type(e) == EdgeType::Context)
            {
                break;
            }
            cur = p;
        }
        found
    };
    if matches!(holder_class.as_str(), "Map" | "Set" | "Array" | "Object" | "WeakMap") || holder_class.starts_with('{')
    {
        if anchored_global {
            return Pattern::GlobalVariable;
        }
        return Pattern::UnboundedCollection;
    }
    if anchored_global {
        return Pattern::GlobalVariable;
    }
    if s.node_type(sample) == NodeType::Closure && per_root >= 1024 {
        return Pattern::ClosureRetention;
    }
    Pattern::Other
}

fn trace_steps(s: &HeapSnapshot, traces: &Traces, holder: NodeId, sample: NodeId, is_root: &[bool]) -> Vec<TraceStep> {
    let path = traces.path(sample);
    let step = |e: Option<u32>, o: NodeId| TraceStep {
        edge: e.map(|e| s.edge_label(e)).unwrap_or_default(),
        edge_type: e.map(|e| s.edge_type_name(e).to_owned()).unwrap_or_default(),
        node_name: leakhound_name(s, o),
        class_name: s.class(o).name.clone(),
        node_type: s.node_type_name(o).to_owned(),
        id: s.id(o),
        self_size_bytes: s.self_size(o),
        retained_size_bytes: s.retained_size(o),
        is_holder: o == holder,
        is_leaked: is_root[o as usize],
    };
    let mut out = vec![step(None, s.root())];
    out.extend(path.iter().map(|&(e, o)| step(Some(e), o)));
    out
}

fn leakhound_name(s: &HeapSnapshot, o: NodeId) -> String {
    let name = display_name(s, o);
    if name.chars().count() > 80 {
        format!("{}…", name.chars().take(79).collect::<String>())
    } else {
        name
    }
}
