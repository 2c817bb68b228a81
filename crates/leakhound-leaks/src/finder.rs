//! The three-snapshot leak finder (baseline, target, final; memlab's `(T \\ B) ∩ F`,
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
//! 3. *Holder*: from the leak root up, the first object a user can name (not a V8
//!    internal, not an older link of a chain of the root's kind); its label comes from the
//!    trace: the closure variable or global it hangs off, then the property chain
//!    (`lifecycle._events.shutdown`). Every leaked object under one holder node is one
//!    group, whatever its class.
//! 4. *Roots*: a group's roots are the holder's direct elements (`direct.rs`: what the
//!    holder itself keeps, through V8 internals only) of one kind: the most numerous
//!    kind, objects before strings; every function for an emitter's listener array. The
//!    rest of the group is what each root brings along. Groups whose holders have one
//!    label from one anchor (the per-key arrays of one Map) are one cluster; two Maps
//!    named `cache` in two modules are two. Its size is the sum of the roots' retained
//!    sizes, roots dominated by another root not counted twice.
//! 5. *Growth*: in every snapshot, the holders' direct elements of the roots' kind (the
//!    holder found by id, or by its label where the snapshot has no node of that id: the
//!    same variable holding a new array); a cluster is a leak only if that number rises
//!    at every step from the target on, by at least `min_growth` in all.
//!
//! [`find_leaks_prepared`] runs these steps in this order, one function each
//! (`new_and_leaked`, `leak_roots`, `group_by_holder`, `pick_roots`, `merge_holders`,
//! `count_growth` then `growth_check`), adds old Arrays, Maps and Sets of primitives
//! whose stores grow (`arrays.rs`) and ranks the clusters (`rank`). Beside them, for the
//! leaks with no
//! growing collection: chains of repeated links, closure contexts and promises
//! (`chains.rs`, found before the growth count so a candidate on a chain is left out),
//! Buffers and typed arrays a variable holds that are larger at every snapshot
//! (`buffers.rs`),
//! objects kept only by native handles (`handles.rs`), and, for a global's cluster with
//! no source in the app, the functions that use the global (`globals.rs`).

use std::collections::{HashMap, HashSet};

use leakhound_heap::{HeapSnapshot, NodeId, NodeType};
use rayon::prelude::*;

use crate::arrays::growing_primitive_collections;
use crate::buffers::growing_buffers;
use crate::chains::chain_clusters;
use crate::cluster::build_cluster;
use crate::consistency::{IdIndex, check_consistency};
use crate::direct::{Kinds, direct_holders};
use crate::globals::global_users;
use crate::handles::handle_clusters;
use crate::holder::{
    anchored_label, holder_label, holds_listeners, is_bounded_pool, is_own_instrumentation, variable_name,
};
use crate::model::{Cluster, LeakError, LeakOptions, LeakReport, NotGrowing};
use crate::nodes::{STRING_KEY, is_global_object, is_internal, is_reportable, leak_key, same_kind};
use crate::pattern::PATTERNS;
use crate::source::{ScriptMap, SourceRef};
use crate::timers::{TIMERS_LIST, TimerLists, is_timer_link};
use crate::trace::Traces;

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
    // Per-snapshot indexes and traces, in parallel.
    let prepared: Vec<Prepared> = snaps.par_iter().map(|s| Prepared::new(s)).collect();
    find_leaks_prepared(snaps, prepared, opts)
}

/// What the leak finder needs of each snapshot besides the snapshot: its id index and
/// its retainer traces (memlab's BFS from the root). Both need only the graph (no
/// classes, no dominators), so [`load_series`](crate::load_series) builds them for each
/// snapshot right after reading it, while others still load.
pub struct Prepared {
    ids: IdIndex,
    traces: Traces,
}

impl Prepared {
    /// Builds the id index and runs the trace BFS over `s`.
    pub(crate) fn new(s: &HeapSnapshot) -> Prepared {
        Prepared {
            ids: IdIndex::build(s),
            traces: Traces::compute(s),
        }
    }
}

/// [`find_leaks`] with each snapshot's [`Prepared`] already built (`prepared[k]` for
/// `snaps[k]`; rebuilt here if the counts differ).
///
/// # Errors
/// As [`find_leaks`].
pub fn find_leaks_prepared(
    snaps: &[&HeapSnapshot],
    prepared: Vec<Prepared>,
    opts: &LeakOptions,
) -> Result<LeakReport, LeakError> {
    if snaps.len() < 3 {
        return Err(LeakError::TooFewSnapshots(snaps.len()));
    }
    if prepared.len() != snaps.len() {
        return find_leaks(snaps, opts);
    }
    let (ids, traces): (Vec<IdIndex>, Vec<Traces>) = prepared.into_iter().map(|p| (p.ids, p.traces)).unzip();
    let warnings = check_consistency(snaps, &ids)?;
    let last = Last {
        s: snaps[snaps.len() - 1],
        traces: &traces[snaps.len() - 1],
    };
    let new = new_and_leaked(last.s, &ids);
    let (attach, top) = leak_roots(last, &new);
    let found = group_by_holder(last, &new, &attach, &top);
    let rooted = pick_roots(last, &new, &found.groups);
    let mut candidates = merge_holders(last, &found.groups, rooted);
    let scripts = ScriptMap::build(last.s);
    // Chains of repeated links (closure contexts, promises): a candidate whose holder is
    // on a growing chain is that chain seen from inside.
    let (chains, chains_not_growing, on_chains) = chain_clusters(snaps, &ids, last.traces, &new.leaked, &scripts, opts);
    candidates.retain(|c| {
        let (g, roots) = &c.groups[0];
        !on_chains.contains(&last.s.id(found.groups[*g].holder))
            && !roots.first().is_some_and(|&r| on_chains.contains(&last.s.id(r)))
    });
    let growth = count_growth(snaps, &ids, &traces, &found, &candidates);
    let (mut clusters, mut not_growing) = growth_check(last, &scripts, &found, &candidates, growth, opts);
    clusters.extend(chains);
    not_growing.extend(chains_not_growing);
    // Objects kept only by native handles (sockets, watchers): each handle is a root.
    let (held, held_not_growing) = handle_clusters(snaps, last.traces, &new.leaked, &scripts, opts);
    clusters.extend(held);
    not_growing.extend(held_not_growing);
    // A global's cluster without a source: the functions that use the global.
    for c in clusters
        .iter_mut()
        .filter(|c| c.sources.iter().all(|x| x.origin_rank() > 0))
    {
        let Some(holder) = ids[ids.len() - 1].get(c.holder_id) else {
            continue;
        };
        let users = global_users(last.s, last.traces, &scripts, holder);
        if !users.is_empty() {
            c.sources.splice(0..0, users);
            c.sources.sort_by_key(SourceRef::origin_rank);
            c.source = c.sources.first().cloned();
        }
    }
    let known: HashSet<String> = clusters.iter().map(|c| c.holder.clone()).collect();
    clusters.extend(growing_primitive_collections(
        snaps,
        &ids,
        last.traces,
        &new.is_new,
        &known,
        &scripts,
        opts,
    ));
    // A Buffer re-allocated longer at every request: nothing stays alive, the bytes grow.
    let known: HashSet<String> = clusters.iter().map(|c| c.holder.clone()).collect();
    clusters.extend(growing_buffers(snaps, &ids, last.traces, &known, &scripts, opts));
    for c in &mut clusters {
        c.source_unknown_why = source_unknown_why(c, last.s.has_allocation_traces());
        if c.source_unknown_why.is_some() {
            c.app_scripts = scripts.app_scripts();
        }
    }
    Ok(rank(clusters, not_growing, found.leaked_object_count, warnings, opts))
}

/// Why a cluster has no source in the app's own code, and what would give one; `None`
/// when it has one. `tracked`: the snapshots carry allocation stacks.
fn source_unknown_why(c: &Cluster, tracked: bool) -> Option<String> {
    if c.sources.iter().any(|x| x.origin_rank() == 0) {
        return None;
    }
    Some(if !c.allocation_stacks.is_empty() {
        "the stacks that allocated these objects hold no frame of the app's own code (only Node's or a dependency's): the app's call into them was not recorded (V8 keeps at most 64 frames)".to_owned()
    } else if tracked {
        "allocation tracking was on, but none of these objects made after the snapshot before the last has a recorded stack: take more snapshots under load (--phases) so new ones are caught".to_owned()
    } else if c.holder.ends_with(" handles") || c.holder.contains(" handles (") {
        "each native handle keeps only Node's own objects (the socket or stream, its state, an Agent's listeners), none of the app's functions, and a heap snapshot records where functions are defined, not who called them: `leakhound hunt --track-allocations` records the stack that created them, whose first frame in the app's code becomes the source (`leakhound lint` flags per-call Agents and unconsumed streams in the source)".to_owned()
    } else {
        let why = if c.pattern.as_str() == "global_variable" {
            "no function of the app's code refers to this global in its feedback (a global read through `globalThis` or another object, or code that has not run often)"
        } else {
            "the leaked objects keep no function of the app's code"
        };
        format!(
            "{why}, and a heap snapshot records where functions are defined, not who called them: `leakhound hunt --track-allocations` records the stack that made them, whose first frame in the app's code becomes the source"
        )
    })
}

/// The last snapshot and its retainer traces: where clusters are found and described.
#[derive(Clone, Copy)]
struct Last<'a> {
    s: &'a HeapSnapshot,
    traces: &'a Traces,
}

/// No node (in [`leak_roots`]' per-node arrays).
const NONE: u32 = u32::MAX;

/// Per node of the last snapshot (by ordinal): allocated after the baseline, and among
/// those, also alive in every snapshot from the target on and reportable (the Node-aware
/// filter, [`is_reportable`]).
struct NewNodes {
    is_new: Vec<bool>,
    leaked: Vec<bool>,
}

/// Step 1, leaked objects: nodes of `s` whose id is absent from the baseline (new), and
/// of those, the ones present in every snapshot but the baseline and reportable (leaked).
fn new_and_leaked(s: &HeapSnapshot, ids: &[IdIndex]) -> NewNodes {
    let last_i = ids.len() - 1;
    // Node by node, on every core.
    let (is_new, leaked) = (0..s.node_count() as NodeId)
        .into_par_iter()
        .map(|o| {
            let id = s.id(o);
            if ids[0].contains(id) {
                return (false, false);
            }
            (true, (1..last_i).all(|k| ids[k].contains(id)) && is_reportable(s, o))
        })
        .unzip();
    NewNodes { is_new, leaked }
}

/// Step 2, leak roots: for every new node, in trace order (parents first), `attach` = the
/// first old node above it on its trace, where the new structure hangs off the old heap,
/// and `top` = the top-most leaked node between it and there, its leak root ([`NONE`]
/// where there is none).
fn leak_roots(last: Last<'_>, new: &NewNodes) -> (Vec<NodeId>, Vec<NodeId>) {
    let n = last.s.node_count();
    let mut attach = vec![NONE; n];
    let mut top = vec![NONE; n];
    for &o in last.traces.order() {
        if !new.is_new[o as usize] {
            continue;
        }
        let Some(p) = last.traces.parent(o) else { continue };
        let (a, t) = if new.is_new[p as usize] {
            (attach[p as usize], top[p as usize])
        } else {
            (p, NONE)
        };
        attach[o as usize] = a;
        top[o as usize] = if t != NONE {
            t
        } else if new.leaked[o as usize] {
            o
        } else {
            NONE
        };
    }
    (attach, top)
}

/// Leaked objects under one holder node.
struct Group {
    /// The holder node.
    holder: NodeId,
    /// Every leaked object under the holder, in ordinal order.
    objects: Vec<NodeId>,
}

/// What [`group_by_holder`] found in the last snapshot.
struct Found {
    /// Groups in order of their first leaked object (by ordinal).
    groups: Vec<Group>,
    /// Leaked objects a trace reaches.
    leaked_object_count: u64,
}

/// Step 3, holders: groups every leaked object a trace reaches by its holder (the first
/// object a user can name above its leak root), leaving out what hangs off leakhound's
/// own instrumentation.
fn group_by_holder(last: Last<'_>, new: &NewNodes, attach: &[NodeId], top: &[NodeId]) -> Found {
    let Last { s, traces } = last;
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    let mut own_state: HashMap<NodeId, bool> = HashMap::new();
    let mut key_of_top: HashMap<NodeId, String> = HashMap::new();
    let mut holder_cache: HashMap<(NodeId, String), Option<NodeId>> = HashMap::new();
    let mut timer_lists = TimerLists::default();
    let mut leaked_object_count = 0u64;
    for o in 0..s.node_count() as NodeId {
        if !new.leaked[o as usize] || !traces.is_reached(o) {
            continue;
        }
        leaked_object_count += 1;
        let (a, t) = (attach[o as usize], top[o as usize]);
        if a == NONE || t == NONE {
            continue;
        }
        let Some(above) = traces.parent(t) else { continue };
        let t_key = key_of_top.entry(t).or_insert_with(|| leak_key(s, t).0).clone();
        let holder = *holder_cache
            .entry((above, t_key))
            .or_insert_with(|| find_holder(last, new, &mut timer_lists, t));
        let Some(holder) = holder else { continue };
        if *own_state
            .entry(holder)
            .or_insert_with(|| is_own_instrumentation(s, traces, holder) || is_bounded_pool(s, traces, holder))
        {
            continue;
        }
        let gi = *group_of.entry(holder).or_insert_with(|| {
            groups.push(Group {
                holder,
                objects: Vec::new(),
            });
            groups.len() - 1
        });
        groups[gi].objects.push(o);
    }
    Found {
        groups,
        leaked_object_count,
    }
}

/// The holder of the leak root `t`: the first node on the trace up from `t` that is not a
/// V8 internal, not a new object that cannot be reported, and not a link of a chain of
/// `t`'s own kind (old Timeouts of a timer list), so a linked list is held by its list,
/// not by whichever element a new one follows. A new object that is not itself leaked
/// (an array the app replaces by a longer copy at every request) is the holder: the
/// variable that names it holds the same role in every snapshot. `None` past the root or
/// 100,000 steps.
fn find_holder(last: Last<'_>, new: &NewNodes, timer_lists: &mut TimerLists, t: NodeId) -> Option<NodeId> {
    let Last { s, traces } = last;
    let mut h = traces.parent(t)?;
    for _ in 0..100_000 {
        // The value of a variable or of a global is the holder, whatever its kind: a
        // string grown with `+=` is held by its variable, not by the function whose
        // context holds the variable (a server's request listener).
        if is_named_value(s, traces, h) {
            return Some(h);
        }
        // The top of a string's concatenation tree is what its owner holds (`stats.log`
        // grown with `+=`): the holder, not the owner.
        if s.is_string(h) && s.is_string(t) && traces.parent(h).is_some_and(|p| !s.is_string(p)) {
            return Some(h);
        }
        let passed = is_internal(s, h) || (new.is_new[h as usize] && !is_reportable(s, h)) || same_kind(s, h, t);
        if !passed {
            // A timer in one of Node's timer lists is held by its list, whichever object
            // the shortest path reached the list through: another timer of that duration
            // (the http server's own 30 s `connectionsCheckingInterval`) is an owner of
            // that timer, not of the list.
            if traces.parent_edge(t).is_some_and(|e| is_timer_link(s, e)) && s.class(h).name != TIMERS_LIST {
                return timer_lists.list_of(s, t).or(Some(h));
            }
            return Some(h);
        }
        h = traces.parent(h)?;
    }
    None
}

/// Whether `h` is what a variable (a closure context's slot, of a function's or a block's
/// scope) or a property of the global
/// object holds, and a value a user can name: not a V8 internal, not a function (a
/// module's functions are its code, not what accumulates).
fn is_named_value(s: &HeapSnapshot, traces: &Traces, h: NodeId) -> bool {
    if is_internal(s, h) || s.node_type(h) == NodeType::Closure {
        return false;
    }
    if variable_name(s, traces, h).is_some() {
        return true;
    }
    let Some(e) = traces.parent_edge(h) else { return false };
    s.edge_type(e) == leakhound_heap::EdgeType::Property && traces.parent(h).is_some_and(|p| is_global_object(s, p))
}

/// What a cluster's roots are: objects of one kind ([`leak_key`]), or any function (the
/// listeners of an emitter's listener array, whatever each one is).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RootKind {
    /// Objects of this leak key.
    Key(String),
    /// Every closure and bound function.
    AnyFunction,
}

impl RootKind {
    /// Whether `o` is of this kind.
    fn matches(&self, s: &HeapSnapshot, o: NodeId) -> bool {
        match self {
            RootKind::Key(k) => leak_key(s, o).0 == *k,
            RootKind::AnyFunction => s.node_type(o) == NodeType::Closure,
        }
    }
}

/// A group's roots: its holder's direct elements of one kind.
struct Rooted {
    /// Index into [`Found::groups`].
    group: usize,
    kind: RootKind,
    /// The roots, in ordinal order.
    roots: Vec<NodeId>,
}

/// Step 4, roots: the direct elements of each group's holder ([`direct_holders`]) of the
/// kind the holder keeps most (objects before strings; for an emitter's listener array,
/// every function, the user's unit being a listener). Groups without a direct element are
/// dropped.
fn pick_roots(last: Last<'_>, new: &NewNodes, groups: &[Group]) -> Vec<Rooted> {
    let Last { s, traces } = last;
    let mut is_holder = vec![false; s.node_count()];
    for g in groups {
        is_holder[g.holder as usize] = true;
    }
    // Only the groups' objects are asked about, and what a chain of their kinds links.
    let kinds = Kinds::of(s, groups.iter().flat_map(|g| g.objects.iter().copied()));
    let direct = direct_holders(s, traces, &is_holder, &|o| new.is_new[o as usize], &|o| {
        kinds.contains(s, o)
    });
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let elements: Vec<NodeId> = g
            .objects
            .iter()
            .copied()
            .filter(|&o| direct[o as usize] == g.holder)
            .collect();
        if elements.is_empty() {
            continue;
        }
        let listeners = holds_listeners(s, traces, g.holder);
        let kind = if listeners && elements.iter().any(|&o| s.node_type(o) == NodeType::Closure) {
            RootKind::AnyFunction
        } else {
            let mut by_key: HashMap<String, u64> = HashMap::new();
            for &o in &elements {
                *by_key.entry(leak_key(s, o).0).or_default() += 1;
            }
            let (key, _) = by_key
                .into_iter()
                .max_by(|a, b| {
                    (a.0 != STRING_KEY, a.1)
                        .cmp(&(b.0 != STRING_KEY, b.1))
                        .then_with(|| b.0.cmp(&a.0))
                })
                .expect("elements is not empty");
            RootKind::Key(key)
        };
        let roots = elements.into_iter().filter(|&o| kind.matches(s, o)).collect();
        out.push(Rooted { group: gi, kind, roots });
    }
    out
}

/// Groups whose holders are one holder: one cluster candidate.
struct Candidate {
    /// The holders' label.
    label: String,
    /// The roots' kind.
    kind: RootKind,
    /// Indexes into [`Found::groups`], in group order, each with its roots.
    groups: Vec<(usize, Vec<NodeId>)>,
}

/// Step 4, clusters: one candidate per holder node, and one for holders that share a label
/// from one anchor (`anchored_label`: the per-key arrays of one Map, the listener arrays
/// of one variable) and a kind of roots; holders that only share a label (two Maps named
/// `cache` in two modules) stay apart. In order of their first group.
fn merge_holders(last: Last<'_>, groups: &[Group], rooted: Vec<Rooted>) -> Vec<Candidate> {
    let mut merged: Vec<Candidate> = Vec::new();
    let mut merged_of: HashMap<(String, NodeId, RootKind), usize> = HashMap::new();
    for r in rooted {
        let (label, anchor) = anchored_label(last.s, last.traces, groups[r.group].holder);
        match merged_of.get(&(label.clone(), anchor, r.kind.clone())) {
            Some(&m) => merged[m].groups.push((r.group, r.roots)),
            None => {
                merged_of.insert((label.clone(), anchor, r.kind.clone()), merged.len());
                merged.push(Candidate {
                    label,
                    kind: r.kind,
                    groups: vec![(r.group, r.roots)],
                });
            }
        }
    }
    merged
}

/// Per candidate (outer) and snapshot (inner, baseline first): its holders' direct
/// elements of its roots' kind, and the holders' retained size where the snapshot has them.
struct Growth {
    counts: Vec<Vec<u64>>,
    holder_retained: Vec<Vec<Option<u64>>>,
    /// For a candidate whose roots are strings, the bytes of its holders' strings (every
    /// piece of their concatenation trees once), per snapshot; `None` for other kinds or
    /// where the snapshot has no holder.
    string_bytes: Vec<Vec<Option<u64>>>,
}

/// What [`count_under_holders`] counts for one candidate in each snapshot.
pub(crate) struct Counted {
    /// V8 ids of its holders (in the last snapshot).
    holder_ids: Vec<u32>,
    /// Their label and DevTools class: where no node has one of those ids (a variable
    /// given a new array at each request), the nodes of that class with that label.
    label: String,
    holder_class: String,
    /// The DevTools class key of its roots (every root kind is within one class).
    class_key: String,
    kind: RootKind,
}

/// Step 5, growth: in every snapshot, each candidate's holders' direct elements of its
/// roots' kind, the snapshots in parallel.
fn count_growth(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &[Traces],
    found: &Found,
    candidates: &[Candidate],
) -> Growth {
    let s = snaps[snaps.len() - 1];
    let counted: Vec<Counted> = candidates
        .iter()
        .map(|c| {
            let (first, roots) = &c.groups[0];
            Counted {
                holder_ids: c.groups.iter().map(|(g, _)| s.id(found.groups[*g].holder)).collect(),
                label: c.label.clone(),
                holder_class: s.class(found.groups[*first].holder).name.clone(),
                class_key: s.class(roots[0]).key(),
                kind: c.kind.clone(),
            }
        })
        .collect();
    // One column per snapshot, the snapshots in parallel.
    let columns: Vec<Column> = (0..snaps.len())
        .into_par_iter()
        .map(|k| count_under_holders(snaps[k], &traces[k], &ids[k], &ids[0], &counted))
        .collect();
    Growth {
        counts: (0..candidates.len())
            .map(|m| columns.iter().map(|c| c.counts[m]).collect())
            .collect(),
        holder_retained: (0..candidates.len())
            .map(|m| columns.iter().map(|c| c.holder_retained[m]).collect())
            .collect(),
        string_bytes: (0..candidates.len())
            .map(|m| columns.iter().map(|c| c.string_bytes[m]).collect())
            .collect(),
    }
}

/// Step 5, the check: a candidate is a leak when its count rises at every step from
/// the target on, by at least `min_growth` in all; it is then described as a [`Cluster`],
/// else listed as not growing.
fn growth_check(
    last: Last<'_>,
    scripts: &ScriptMap,
    found: &Found,
    candidates: &[Candidate],
    growth: Growth,
    opts: &LeakOptions,
) -> (Vec<Cluster>, Vec<NotGrowing>) {
    let s = last.s;
    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    let Growth {
        counts,
        holder_retained,
        string_bytes,
    } = growth;
    for (((candidate, c), holder_retained), string_bytes) in
        candidates.iter().zip(counts).zip(holder_retained).zip(string_bytes)
    {
        let Candidate { label, kind, groups } = candidate;
        let last_i = c.len() - 1;
        let growing = (2..c.len()).all(|k| c[k] > c[k - 1]) && c[last_i].saturating_sub(c[1]) >= opts.min_growth;
        let root_class_name = kind_name(s, groups.iter().flat_map(|(_, r)| r.iter().copied()));
        if !growing {
            not_growing.push(NotGrowing {
                holder: label.clone(),
                root_class: root_class_name,
                counts_per_snapshot: c,
            });
            continue;
        }
        let members: Vec<(NodeId, &[NodeId], &[NodeId])> = groups
            .iter()
            .map(|(g, roots)| {
                let g = &found.groups[*g];
                (g.holder, &roots[..], &g.objects[..])
            })
            .collect();
        let mut cluster = build_cluster(
            s,
            last.traces,
            scripts,
            label,
            &root_class_name,
            *kind == RootKind::AnyFunction,
            &members,
            c,
            holder_retained,
            opts,
            PATTERNS,
        );
        if cluster.pattern == crate::pattern::Pattern::GROWING_STRING {
            crate::strings::set_string_bytes(&mut cluster, string_bytes, opts);
        }
        clusters.push(cluster);
    }
    (clusters, not_growing)
}

/// How a cluster's roots are named: their kind's display name ([`leak_key`]); for roots of
/// several kinds (the listeners of one array), the two most common and how many more.
fn kind_name(s: &HeapSnapshot, roots: impl Iterator<Item = NodeId>) -> String {
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for r in roots {
        *by_name.entry(leak_key(s, r).1).or_default() += 1;
    }
    let mut names: Vec<(String, u64)> = by_name.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    match names.len() {
        0 => String::new(),
        1 => names.swap_remove(0).0,
        2 => format!("{}, {}", names[0].0, names[1].0),
        n => format!("{}, {} and {} more", names[0].0, names[1].0, n - 2),
    }
}

/// Last, the report: clusters by retained size then count, not-growing candidates by
/// their last count, each list cut to `max_clusters`.
fn rank(
    mut clusters: Vec<Cluster>,
    mut not_growing: Vec<NotGrowing>,
    leaked_object_count: u64,
    warnings: Vec<String>,
    opts: &LeakOptions,
) -> LeakReport {
    clusters.sort_by(|a, b| {
        b.retained_size_bytes
            .cmp(&a.retained_size_bytes)
            .then(b.count.cmp(&a.count))
    });
    clusters.truncate(opts.max_clusters);
    not_growing.sort_by(|a, b| b.counts_per_snapshot.last().cmp(&a.counts_per_snapshot.last()));
    not_growing.truncate(opts.max_clusters);
    LeakReport {
        clusters,
        not_growing,
        leaked_object_count,
        warnings,
    }
}

/// What [`count_under_holders`] measures in one snapshot, per candidate.
pub(crate) struct Column {
    counts: Vec<u64>,
    holder_retained: Vec<Option<u64>>,
    string_bytes: Vec<Option<u64>>,
}

/// Counts, in one snapshot, the direct elements ([`direct_holders`]) of each candidate's
/// holders (found by id, else by label and class) that are of its roots' kind, and sums
/// the holders' retained sizes when the snapshot has them (`counts[m]`,
/// `holder_retained[m]` for candidate `m`), and for a candidate of strings, the bytes of
/// its holders' strings (`strings::string_bytes`). `base` is the baseline's id index:
/// what it lacks is new.
pub(crate) fn count_under_holders(
    s: &HeapSnapshot,
    traces: &Traces,
    ids: &IdIndex,
    base: &IdIndex,
    counted: &[Counted],
) -> Column {
    let mut counts = vec![0u64; counted.len()];
    let mut holder_retained: Vec<Option<u64>> = vec![None; counted.len()];
    let mut string_bytes: Vec<Option<u64>> = vec![None; counted.len()];
    let string_kind = RootKind::Key(STRING_KEY.to_owned());
    // holder ordinal -> candidates it belongs to
    let mut by_holder: HashMap<NodeId, Vec<usize>> = HashMap::new();
    for (m, c) in counted.iter().enumerate() {
        let mut holders: Vec<NodeId> = c.holder_ids.iter().filter_map(|&id| ids.get(id)).collect();
        if holders.is_empty() {
            holders = holders_by_label(s, traces, &c.label, &c.holder_class);
        }
        if c.kind == string_kind && !holders.is_empty() {
            string_bytes[m] = Some(crate::strings::string_bytes(s, &holders));
        }
        for o in holders {
            by_holder.entry(o).or_default().push(m);
            if s.is_fully_analyzed() {
                *holder_retained[m].get_or_insert(0) += s.retained_size(o);
            }
        }
    }
    if by_holder.is_empty() {
        return Column {
            counts,
            holder_retained,
            string_bytes,
        };
    }
    // class index (in this snapshot) -> whether some candidate's roots have that class
    let wanted: Vec<bool> = s
        .classes()
        .iter()
        .map(|class| {
            let key = class.key();
            counted.iter().any(|c| {
                c.class_key == key
                    || (c.kind == string_kind
                        && matches!(
                            class.name.as_str(),
                            "(string)" | "(concatenated string)" | "(sliced string)"
                        ))
            })
        })
        .collect();
    let n = s.node_count();
    let mut is_holder = vec![false; n];
    for &h in by_holder.keys() {
        is_holder[h as usize] = true;
    }
    let direct = direct_holders(s, traces, &is_holder, &|o| !base.contains(s.id(o)), &|o| {
        wanted[s.class_index(o) as usize]
    });
    for o in 0..n as NodeId {
        let h = direct[o as usize];
        if h == NONE {
            continue;
        }
        if let Some(ms) = by_holder.get(&h) {
            for &m in ms {
                if counted[m].kind.matches(s, o) {
                    counts[m] += 1;
                }
            }
        }
    }
    Column {
        counts,
        holder_retained,
        string_bytes,
    }
}

/// The reached nodes of class `class` whose [`holder_label`] is `label`.
fn holders_by_label(s: &HeapSnapshot, traces: &Traces, label: &str, class: &str) -> Vec<NodeId> {
    let of_class: Vec<bool> = s.classes().iter().map(|c| c.name == class).collect();
    (0..s.node_count() as NodeId)
        .filter(|&o| of_class[s.class_index(o) as usize] && traces.is_reached(o) && holder_label(s, traces, o) == label)
        .collect()
}
