//! Building a reported cluster: retained size without double counting, objects by class,
//! the pattern, sources, the trace, rates per request.

use std::collections::HashMap;

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType, display_name};

use crate::holder::{block_slot_name, holder_owner_source, variable_name};
use crate::model::{ClassCount, Cluster, LeakOptions, PerRequest, TraceStep};
use crate::nodes::{bound_target, fn_name, is_global_object, leak_key};
use crate::pattern::{ClusterFacts, Pattern, PatternRule, classify};
use crate::source::{ScriptMap, SourceKind, SourceRef};
use crate::trace::Traces;

/// Describes a growing cluster of the last snapshot `s`: holders `members[i].0` with
/// their leak roots `.1` (their direct elements, named `root_class`; `listeners` when they
/// are an emitter's listeners) and leaked objects `.2` (all under one label), its pattern
/// by `patterns` (ranked as [`crate::pattern::PATTERNS`]), sources, a trace and rates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_cluster(
    s: &HeapSnapshot,
    traces: &Traces,
    scripts: &ScriptMap,
    label: &str,
    root_class: &str,
    listeners: bool,
    members: &[(NodeId, &[NodeId], &[NodeId])],
    counts_per_snapshot: Vec<u64>,
    holder_retained_per_snapshot: Vec<Option<u64>>,
    opts: &LeakOptions,
    patterns: &'static [PatternRule],
) -> Cluster {
    let holder = members[0].0;
    let roots: Vec<NodeId> = members.iter().flat_map(|m| m.1.iter().copied()).collect();
    let objects: Vec<NodeId> = members.iter().flat_map(|m| m.2.iter().copied()).collect();
    let mut is_root = vec![false; s.node_count()];
    for &r in &roots {
        is_root[r as usize] = true;
    }
    let (retained, external) = retained_once(s, &roots, &is_root);
    let object_classes = objects_by_class(s, &objects);
    let others: Vec<NodeId> = objects.iter().copied().filter(|&o| !is_root[o as usize]).collect();
    let brought_along = objects_by_class(s, &others);
    // A representative root: the largest.
    let sample = roots
        .iter()
        .copied()
        .max_by_key(|&r| (s.retained_size(r), std::cmp::Reverse(r)))
        .unwrap_or(holder);
    let trace = shorten_trace(crate::fold::fold_repeats(trace_steps(
        s, traces, holder, sample, &is_root,
    )));
    let external_share = if retained == 0 {
        0.0
    } else {
        external as f64 / retained as f64
    };
    let facts = cluster_facts(
        s,
        traces,
        holder,
        label,
        sample,
        roots.len() as u64,
        retained,
        external_share,
    );
    let pattern = classify(patterns, &facts);
    let listener_count = (pattern == Pattern::LISTENER_ACCUMULATION)
        .then(|| s.edges(holder).filter(|&e| s.edge_type(e) == EdgeType::Element).count() as u64);
    let mut sources = cluster_sources(s, traces, scripts, holder, sample, &objects);
    let holders: Vec<NodeId> = members.iter().map(|m| m.0).collect();
    let witnesses = crate::alloc::stack_witnesses(s, traces, &holders, &roots);
    let allocation_stacks = crate::alloc::allocation_stacks(s, &witnesses);
    crate::alloc::prefer_allocation_source(&mut sources, &allocation_stacks);
    let source = sources.first().cloned();
    let last = counts_per_snapshot.len() - 1;
    let per_request = opts
        .requests_between(1, last)
        .zip(opts.requests_between(0, 1))
        .map(|(after_target, first)| {
            per_request(
                after_target,
                first,
                &counts_per_snapshot,
                roots.len(),
                retained,
                &object_classes,
            )
        });
    Cluster {
        holder: label.to_owned(),
        holder_class: s.class(holder).name.clone(),
        holder_id: s.id(holder),
        holder_nodes: members.len(),
        root_class: root_class.to_owned(),
        unit: if listeners { "listener" } else { root_class }.to_owned(),
        pattern,
        count: roots.len() as u64,
        object_count: objects.len() as u64,
        retained_size_bytes: retained,
        counts_per_snapshot,
        holder_retained_per_snapshot,
        objects: object_classes,
        brought_along,
        source,
        sources,
        fix_hint: pattern.fix_hint(),
        trace,
        listener_count,
        per_request,
        external_share,
        allocation_stacks,
        string_bytes_per_snapshot: Vec::new(),
        source_unknown_why: None,
        app_scripts: Vec::new(),
        timer_list: crate::timers::timer_list_of(s, label, holder),
    }
}

/// The retained size of `roots` without double counting (a root dominated by another
/// root, `is_root`, is skipped; dominator chains are followed up to 10,000 steps), and
/// the ArrayBuffer backing stores' bytes in it: (retained, external) in bytes.
fn retained_once(s: &HeapSnapshot, roots: &[NodeId], is_root: &[bool]) -> (u64, u64) {
    let mut retained = 0u64;
    let mut external = 0u64;
    for &r in roots {
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
    (retained, external)
}

/// Counts and self sizes of `objects` by class (closures by function, as [`leak_key`]
/// shows them), most first, then largest, then by name.
fn objects_by_class(s: &HeapSnapshot, objects: &[NodeId]) -> Vec<ClassCount> {
    let mut by_class: HashMap<String, (u64, u64)> = HashMap::new();
    for &o in objects {
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
    object_classes
}

/// A trace of more than 40 steps (a linked list) cut to its first 15 and last 20 steps,
/// with a `… (N more steps)` step between them and the holder kept if it was cut.
fn shorten_trace(mut trace: Vec<TraceStep>) -> Vec<TraceStep> {
    if trace.len() <= 40 {
        return trace;
    }
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
    trace
}

/// Where the app makes what accumulates, best guess first (a snapshot has no call stacks):
/// the representative root itself when it is a closure (a listener or callback defined
/// where it is added), the function owning the holder, the function a bound root calls or
/// the root's constructor (where its code is, not who made it), then the three closures
/// most common among `objects` (an interval's callback). The app's own code comes before
/// its dependencies (`node_modules`), which come before Node's internals; one entry per
/// location.
fn cluster_sources(
    s: &HeapSnapshot,
    traces: &Traces,
    scripts: &ScriptMap,
    holder: NodeId,
    sample: NodeId,
    objects: &[NodeId],
) -> Vec<SourceRef> {
    let mut found: Vec<Option<SourceRef>> = Vec::new();
    let bound = bound_target(s, sample).filter(|&t| s.node_type(t) == NodeType::Closure);
    let root_is_closure = s.node_type(sample) == NodeType::Closure;
    if root_is_closure
        && bound.is_none()
        && let Some(loc) = s.location(sample)
    {
        found.push(scripts.resolve(loc, format!("function {}", fn_name(s, sample)), SourceKind::Closure));
    }
    if let Some(listener) = crate::nodes::once_listener(s, sample)
        && let Some(loc) = s.location(listener)
    {
        found.push(scripts.resolve(
            loc,
            format!("function {} (added with once)", fn_name(s, listener)),
            SourceKind::Closure,
        ));
    }
    found.push(holder_owner_source(s, traces, scripts, holder));
    if let Some(target) = bound {
        if let Some(loc) = s.location(target) {
            found.push(scripts.resolve(
                loc,
                format!("function {} (bound)", fn_name(s, target)),
                SourceKind::Closure,
            ));
        }
    } else if !root_is_closure && let Some(loc) = s.location(sample) {
        found.push(scripts.resolve(
            loc,
            format!("constructor of {}", s.class(sample).name),
            SourceKind::Constructor,
        ));
    }
    let mut closures: HashMap<String, (u64, NodeId)> = HashMap::new();
    for &o in objects {
        if s.node_type(o) == NodeType::Closure && s.location(o).is_some() {
            closures.entry(leak_key(s, o).0).or_insert((0, o)).0 += 1;
        }
    }
    let mut closures: Vec<(u64, NodeId)> = closures.into_values().collect();
    closures.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, c) in closures.into_iter().take(3) {
        if let Some(loc) = s.location(c) {
            found.push(scripts.resolve(loc, format!("function {}", fn_name(s, c)), SourceKind::Closure));
        }
    }
    let mut sources: Vec<SourceRef> = Vec::new();
    for r in found.into_iter().flatten() {
        if !sources.iter().any(|x| x.location() == r.location()) {
            sources.push(r);
        }
    }
    // Stable: the order above within each origin.
    sources.sort_by_key(SourceRef::origin_rank);
    sources
}

/// Rates per unit of load: roots added per unit (growth from the target to the last
/// snapshot over the `after_target` units between them), retained bytes per unit (the
/// roots' average retained size times that growth), and the first 8 object classes'
/// counts per unit (allocated over the first step, `first` units).
fn per_request(
    after_target: f64,
    first: f64,
    counts_per_snapshot: &[u64],
    roots: usize,
    retained: u64,
    object_classes: &[ClassCount],
) -> PerRequest {
    let last = counts_per_snapshot.len() - 1;
    let growth = counts_per_snapshot[last].saturating_sub(counts_per_snapshot[1]) as f64;
    let count = growth / after_target;
    let ret_growth = if roots == 0 {
        0.0
    } else {
        retained as f64 / roots as f64 * growth
    };
    PerRequest {
        count,
        retained_size_bytes: (ret_growth / after_target).max(0.0),
        objects: object_classes
            .iter()
            .take(8)
            .map(|c| (c.class_name.clone(), c.count as f64 / first))
            .collect(),
        string_bytes: None,
    }
}

/// Bytes of every ArrayBuffer backing store (`system / JSArrayBufferData`: Buffers, typed
/// arrays, a WebAssembly.Memory) in a snapshot: one pass over its nodes.
pub fn backing_store_bytes(s: &HeapSnapshot) -> u64 {
    (0..s.node_count() as NodeId)
        .filter(|&o| s.node_type(o) == NodeType::Native && s.raw_name(o) == "system / JSArrayBufferData")
        .map(|o| s.self_size(o))
        .sum()
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

/// What the pattern detectors read of a cluster ([`ClusterFacts`]): its holder's class,
/// label and place on its retainer trace, its representative root `sample`, and its sizes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cluster_facts<'s>(
    s: &'s HeapSnapshot,
    traces: &Traces,
    holder: NodeId,
    label: &'s str,
    sample: NodeId,
    roots: u64,
    retained: u64,
    external_share: f64,
) -> ClusterFacts<'s> {
    let edge_name = |e: Option<u32>| e.map(|e| s.edge_name(e).into_owned()).unwrap_or_default();
    let mut holder_chain = vec![s.class(holder).name.as_str()];
    let mut cur = holder;
    while holder_chain.len() < 8 {
        // Above a closure variable is how the trace reached the closure (a server's
        // listener, the timer that keeps the server), not what holds the collection.
        if variable_name(s, traces, cur).is_some() {
            break;
        }
        let Some(p) = traces.parent(cur) else { break };
        holder_chain.push(s.class(p).name.as_str());
        cur = p;
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
            if variable_name(s, traces, cur).is_some() {
                break;
            }
            cur = p;
        }
        found
    };
    ClusterFacts {
        label,
        holder_class: &s.class(holder).name,
        root_class: &s.class(sample).name,
        root_is_closure: s.node_type(sample) == NodeType::Closure,
        holder_edge: edge_name(traces.parent_edge(holder)),
        holder_parent_edge: edge_name(traces.parent(holder).and_then(|p| traces.parent_edge(p))),
        holder_chain,
        anchored_global,
        retained_per_root: retained.checked_div(roots).unwrap_or(0),
        external_share,
        shape: crate::pattern::Shape::Plain,
        kept_classes: Vec::new(),
    }
}

/// What a cluster measured on one holder's bytes says (a growing backing store, a
/// growing Buffer): no leaked object of its own, so its count is an estimate in `unit`.
pub(crate) struct HolderGrowth {
    /// The holder's label (`holder_label`).
    pub(crate) label: String,
    /// Its DevTools class.
    pub(crate) class: String,
    /// What the count counts (`byte`, `(element slot)`).
    pub(crate) unit: &'static str,
    pub(crate) pattern: Pattern,
    /// Growth from the target to the last snapshot, in `unit`.
    pub(crate) count: u64,
    /// Per snapshot, in `unit`.
    pub(crate) counts_per_snapshot: Vec<u64>,
    pub(crate) retained_size_bytes: u64,
    /// The holder's retained size per snapshot, where the snapshot has it.
    pub(crate) holder_retained_per_snapshot: Vec<Option<u64>>,
    pub(crate) per_request: Option<PerRequest>,
    /// The share off the JS heap: 1 for a Buffer's bytes.
    pub(crate) external_share: f64,
}

/// The cluster of a holder `holder` of the last snapshot whose bytes grow (`g`): its
/// trace, and the function holding it as its source.
pub(crate) fn holder_growth_cluster(
    s: &HeapSnapshot,
    traces: &Traces,
    scripts: &ScriptMap,
    holder: NodeId,
    g: HolderGrowth,
) -> Cluster {
    let sources: Vec<SourceRef> = holder_owner_source(s, traces, scripts, holder).into_iter().collect();
    Cluster {
        holder: g.label,
        holder_class: g.class,
        holder_id: s.id(holder),
        holder_nodes: 1,
        root_class: g.unit.into(),
        unit: g.unit.into(),
        pattern: g.pattern,
        count: g.count,
        object_count: 0,
        retained_size_bytes: g.retained_size_bytes,
        counts_per_snapshot: g.counts_per_snapshot,
        holder_retained_per_snapshot: g.holder_retained_per_snapshot,
        objects: Vec::new(),
        brought_along: Vec::new(),
        source: sources.first().cloned(),
        sources,
        fix_hint: g.pattern.fix_hint(),
        trace: trace_steps(s, traces, holder, holder, &vec![false; s.node_count()]),
        listener_count: None,
        per_request: g.per_request,
        external_share: g.external_share,
        allocation_stacks: Vec::new(),
        string_bytes_per_snapshot: Vec::new(),
        source_unknown_why: None,
        app_scripts: Vec::new(),
        timer_list: None,
    }
}

/// The retainer trace of `sample` in `s`, root first, as report steps, with `holder` and
/// the nodes `is_root` marks flagged.
pub(crate) fn trace_steps(
    s: &HeapSnapshot,
    traces: &Traces,
    holder: NodeId,
    sample: NodeId,
    is_root: &[bool],
) -> Vec<TraceStep> {
    let path = traces.path(sample);
    // A block context's slot (`{1}` in DevTools) is shown as the variable it is
    // (`->sessions`), named from the context's scope_info as the holder label is.
    let label = |e: u32, o: NodeId| {
        traces
            .parent(o)
            .and_then(|p| block_slot_name(s, p, e))
            .map_or_else(|| s.edge_label(e), |var| format!("->{var}"))
    };
    let step = |e: Option<u32>, o: NodeId| TraceStep {
        edge: e.map(|e| label(e, o)).unwrap_or_default(),
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

/// DevTools' display name of `o`, cut to 80 characters (the last one `…`).
fn leakhound_name(s: &HeapSnapshot, o: NodeId) -> String {
    let name = display_name(s, o);
    if name.chars().count() > 80 {
        format!("{}…", name.chars().take(79).collect::<String>())
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use leakhound_heap::{Analysis, HeapSnapshot, NodeId};

    use super::build_cluster;
    use crate::model::LeakOptions;
    use crate::pattern::{ClusterFacts, Fit, PATTERNS, PatternRule, extended_table};
    use crate::source::ScriptMap;
    use crate::trace::Traces;

    /// The root holds `store`, a `MemoryStore` object, which holds `n` `Session` objects
    /// of 1,000 bytes each by element edges. Ordinals: root 0, store 1, sessions 2….
    fn session_store(n: usize) -> HeapSnapshot {
        let mut nodes = vec!["9,0,1,0,1,0".to_owned(), format!("3,1,3,100,{n},0")];
        nodes.extend((0..n).map(|i| format!("3,2,{},1000,0,0", 5 + 2 * i)));
        let mut edges = vec!["2,3,6".to_owned()];
        edges.extend((0..n).map(|i| format!("1,{i},{}", (2 + i) * 6)));
        let text = format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":{},"edge_count":{}}},"nodes":[{}],"edges":[{}],"locations":[],"strings":["","MemoryStore","Session","store"]}}"#,
            n + 2,
            n + 1,
            nodes.join(","),
            edges.join(",")
        );
        leakhound_heap::load_with(text.as_bytes(), Analysis::Retained, &mut |_| {})
            .expect("a valid snapshot")
            .snapshot
    }

    #[test]
    fn a_pattern_added_to_the_table_alone_names_the_cluster_and_gives_its_hint() {
        fn memory_store(f: &ClusterFacts<'_>) -> Fit {
            if f.holder_class == "MemoryStore" {
                Fit::Strong
            } else {
                Fit::No
            }
        }
        let s = session_store(6);
        let traces = Traces::compute(&s);
        let scripts = ScriptMap::build(&s);
        let sessions: Vec<NodeId> = (2..8).collect();
        let cluster = |patterns: &'static [PatternRule]| {
            build_cluster(
                &s,
                &traces,
                &scripts,
                "store",
                "Session",
                false,
                &[(1, &sessions[..], &sessions[..])],
                vec![0, 3, 6],
                vec![None; 3],
                &LeakOptions::default(),
                patterns,
            )
        };
        let plain = cluster(PATTERNS);
        assert_eq!(plain.pattern.as_str(), "other");
        assert_eq!(plain.retained_size_bytes, 6000);

        let session_store = PatternRule {
            name: "session_store",
            fix_hint: "give the session store a TTL or a maximum size",
            detect: memory_store,
        };
        let added = cluster(extended_table(PATTERNS.len() - 1, session_store));
        assert_eq!(added.pattern.as_str(), "session_store");
        assert_eq!(added.pattern.to_string(), "session_store");
        assert_eq!(added.fix_hint, "give the session store a TTL or a maximum size");
    }
}
