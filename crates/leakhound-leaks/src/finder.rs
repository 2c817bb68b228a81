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
//!
//! [`find_leaks_prepared`] runs these steps in this order, one function each
//! (`new_and_leaked`, `leak_roots`, `group_by_holder`, `merge_by_label`, `count_growth`
//! then `growth_check`), adds old arrays of primitives that grow (`arrays.rs`) and ranks
//! the clusters (`rank`).

use std::collections::{HashMap, HashSet};

use leakhound_heap::{HeapSnapshot, NodeId, NodeType};
use rayon::prelude::*;

use crate::arrays::growing_primitive_arrays;
use crate::cluster::build_cluster;
use crate::consistency::{IdIndex, check_consistency};
use crate::holder::{holder_label, is_own_instrumentation};
use crate::model::{Cluster, LeakError, LeakOptions, LeakReport, NotGrowing};
use crate::nodes::{STRING_KEY, is_internal, is_reportable, leak_key};
use crate::pattern::PATTERNS;
use crate::source::ScriptMap;
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
    let candidates = merge_by_label(last, &found.groups);
    let growth = count_growth(snaps, &ids, &traces, &found, &candidates);
    let scripts = ScriptMap::build(last.s);
    let (mut clusters, not_growing) = growth_check(last, &scripts, &found, &candidates, growth, opts);
    let known: HashSet<String> = clusters.iter().map(|c| c.holder.clone()).collect();
    clusters.extend(growing_primitive_arrays(
        snaps,
        &ids,
        last.traces,
        &new.is_new,
        &known,
        &scripts,
        opts,
    ));
    Ok(rank(clusters, not_growing, found.leaked_object_count, warnings, opts))
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
    let n = s.node_count();
    let last_i = ids.len() - 1;
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
    let leaked = (0..n as NodeId)
        .map(|o| is_leaked[o as usize] && is_reportable(s, o))
        .collect();
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

/// Leaked objects under one holder node whose leak roots are of one kind.
struct Group {
    /// The holder node.
    holder: NodeId,
    /// The roots' leak key, an index into [`Found::keys`].
    root_key: u32,
    /// The leaked objects of the root's kind (the roots, every link of a chain of them).
    roots: Vec<NodeId>,
    /// Every leaked object under the holder's roots of that kind, roots included.
    objects: Vec<NodeId>,
}

/// What [`group_by_holder`] found in the last snapshot.
struct Found {
    /// Groups in order of their first leaked object (by ordinal).
    groups: Vec<Group>,
    /// Leak keys (see [`leak_key`]) interned to small ids: `keys[id]` = (key, display).
    keys: Vec<(String, String)>,
    /// Leaked objects a trace reaches.
    leaked_object_count: u64,
}

/// Step 3, holders: groups every leaked object a trace reaches by its holder (the first
/// object a user can name above its attach point) and its root's leak key, leaving out
/// what hangs off leakhound's own instrumentation.
fn group_by_holder(last: Last<'_>, new: &NewNodes, attach: &[NodeId], top: &[NodeId]) -> Found {
    let Last { s, traces } = last;
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(NodeId, u32), usize> = HashMap::new();
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut key_ids: HashMap<String, u32> = HashMap::new();
    let mut key_of_top: HashMap<NodeId, u32> = HashMap::new();
    let mut own_state: HashMap<NodeId, bool> = HashMap::new();
    let mut holder_cache: HashMap<(NodeId, String), Option<NodeId>> = HashMap::new();
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
        let t_key = leak_key(s, t).0;
        let holder = *holder_cache
            .entry((a, t_key.clone()))
            .or_insert_with(|| find_holder(last, a, &t_key));
        let Some(holder) = holder else { continue };
        if *own_state
            .entry(holder)
            .or_insert_with(|| is_own_instrumentation(s, traces, holder))
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
        let gi = *group_of.entry((holder, root_key)).or_insert_with(|| {
            groups.push(Group {
                holder,
                root_key,
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
    Found {
        groups,
        keys,
        leaked_object_count,
    }
}

/// The holder above the attach point `a` of leak roots keyed `root_key`: the first node on
/// the trace up from `a` that is not a V8 internal. Old links of a chain of the root's own
/// kind (old Timeouts of a timer list) are passed over, so a linked list is held by its
/// list, not by whichever old element a new one follows. `None` past the root or 100,000
/// steps.
fn find_holder(last: Last<'_>, a: NodeId, root_key: &str) -> Option<NodeId> {
    let Last { s, traces } = last;
    let mut h = a;
    for _ in 0..100_000 {
        if !is_internal(s, h) && (s.node_type(h) == NodeType::Synthetic || leak_key(s, h).0 != root_key) {
            return Some(h);
        }
        h = traces.parent(h)?;
    }
    None
}

/// Groups whose holders share a label and whose roots share a kind: one cluster candidate.
struct Candidate {
    /// The holders' label.
    label: String,
    /// The roots' leak key, an index into [`Found::keys`].
    root_key: u32,
    /// Indexes into [`Found::groups`], in group order.
    groups: Vec<usize>,
}

/// Step 4, clusters: merges the groups (with roots) whose holders have one label and whose
/// roots one kind, in order of their first group.
fn merge_by_label(last: Last<'_>, groups: &[Group]) -> Vec<Candidate> {
    let mut merged: Vec<Candidate> = Vec::new();
    let mut merged_of: HashMap<(String, u32), usize> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        if g.roots.is_empty() {
            continue;
        }
        let label = holder_label(last.s, last.traces, g.holder);
        match merged_of.get(&(label.clone(), g.root_key)) {
            Some(&m) => merged[m].groups.push(gi),
            None => {
                merged_of.insert((label.clone(), g.root_key), merged.len());
                merged.push(Candidate {
                    label,
                    root_key: g.root_key,
                    groups: vec![gi],
                });
            }
        }
    }
    merged
}

/// Per candidate (outer) and snapshot (inner, baseline first): objects of the root kind
/// under its holders, and the holders' retained size where the snapshot has them.
struct Growth {
    counts: Vec<Vec<u64>>,
    holder_retained: Vec<Vec<Option<u64>>>,
}

/// Step 5, growth: in every snapshot, the objects of each candidate's root kind under any
/// of its holders (found by id), the snapshots in parallel.
fn count_growth(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &[Traces],
    found: &Found,
    candidates: &[Candidate],
) -> Growth {
    let s = snaps[snaps.len() - 1];
    let holder_ids: Vec<Vec<u32>> = candidates
        .iter()
        .map(|c| c.groups.iter().map(|&g| s.id(found.groups[g].holder)).collect())
        .collect();
    // The DevTools class key of each candidate's roots (a prefilter) and its leak key.
    let root_keys: Vec<(String, String)> = candidates
        .iter()
        .map(|c| {
            let sample = found.groups[c.groups[0]].roots[0];
            (s.class(sample).key(), found.keys[c.root_key as usize].0.clone())
        })
        .collect();
    // One column per snapshot, the snapshots in parallel.
    let columns: Vec<(Vec<u64>, Vec<Option<u64>>)> = (0..snaps.len())
        .into_par_iter()
        .map(|k| count_under_holders(snaps[k], &traces[k], &ids[k], &holder_ids, &root_keys))
        .collect();
    Growth {
        counts: (0..candidates.len())
            .map(|m| columns.iter().map(|(c, _)| c[m]).collect())
            .collect(),
        holder_retained: (0..candidates.len())
            .map(|m| columns.iter().map(|(_, r)| r[m]).collect())
            .collect(),
    }
}

/// Step 5, the check: a candidate is a leak when its count rises at every step from
/// the target on, by at least `min_growth` in all; it is then described as a [`Cluster`],
/// else listed as not growing. Strings under a holder that also keeps objects are left
/// out: they are part of those objects' cluster.
fn growth_check(
    last: Last<'_>,
    scripts: &ScriptMap,
    found: &Found,
    candidates: &[Candidate],
    growth: Growth,
    opts: &LeakOptions,
) -> (Vec<Cluster>, Vec<NotGrowing>) {
    let keys = &found.keys;
    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    // Holders that keep objects: their strings are already in those clusters.
    let object_holders: HashSet<&str> = candidates
        .iter()
        .filter(|c| keys[c.root_key as usize].0 != STRING_KEY)
        .map(|c| c.label.as_str())
        .collect();
    let Growth {
        counts,
        holder_retained,
    } = growth;
    for ((candidate, c), holder_retained) in candidates.iter().zip(counts).zip(holder_retained) {
        let Candidate {
            label,
            root_key,
            groups,
        } = candidate;
        if keys[*root_key as usize].0 == STRING_KEY && object_holders.contains(label.as_str()) {
            continue;
        }
        let last_i = c.len() - 1;
        let growing = (2..c.len()).all(|k| c[k] > c[k - 1]) && c[last_i].saturating_sub(c[1]) >= opts.min_growth;
        let root_class_name = keys[*root_key as usize].1.clone();
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
            .map(|&g| {
                let g = &found.groups[g];
                (g.holder, &g.roots[..], &g.objects[..])
            })
            .collect();
        clusters.push(build_cluster(
            last.s,
            last.traces,
            scripts,
            label,
            &root_class_name,
            &members,
            c,
            holder_retained,
            opts,
            PATTERNS,
        ));
    }
    (clusters, not_growing)
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

/// Counts, in one snapshot, the objects of each cluster's root kind under any of its
/// holders (by id, at any depth of their traces), and sums the holders' retained sizes
/// when the snapshot has them: (`counts[m]`, `holder_retained[m]`) for cluster `m`.
pub(crate) fn count_under_holders(
    s: &HeapSnapshot,
    traces: &Traces,
    ids: &IdIndex,
    holder_ids: &[Vec<u32>],
    root_keys: &[(String, String)],
) -> (Vec<u64>, Vec<Option<u64>>) {
    let mut counts = vec![0u64; holder_ids.len()];
    let mut holder_retained: Vec<Option<u64>> = vec![None; holder_ids.len()];
    // holder ordinal -> clusters it belongs to
    let mut by_holder: HashMap<NodeId, Vec<usize>> = HashMap::new();
    for (m, hs) in holder_ids.iter().enumerate() {
        for &id in hs {
            if let Some(o) = ids.get(id) {
                by_holder.entry(o).or_default().push(m);
                if s.is_fully_analyzed() {
                    *holder_retained[m].get_or_insert(0) += s.retained_size(o);
                }
            }
        }
    }
    if by_holder.is_empty() {
        return (counts, holder_retained);
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
                    counts[*m] += 1;
                }
            }
        }
    }
    (counts, holder_retained)
}
