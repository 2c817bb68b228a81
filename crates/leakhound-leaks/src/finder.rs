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

use leakhound_heap::{HeapSnapshot, NodeId, NodeType};

use crate::arrays::growing_primitive_arrays;
use crate::cluster::build_cluster;
use crate::consistency::{IdIndex, check_consistency};
use crate::holder::{holder_label, is_own_instrumentation};
use crate::model::{LeakError, LeakOptions, LeakReport, NotGrowing};
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
    // Per-snapshot indexes and traces, on both cores.
    let prepared: Vec<Prepared> = std::thread::scope(|scope| {
        let half = snaps.len() / 2;
        let h = scope.spawn(move || snaps[..half].iter().map(|s| Prepared::new(s)).collect::<Vec<_>>());
        let rest: Vec<Prepared> = snaps[half..].iter().map(|s| Prepared::new(s)).collect();
        let mut first = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        first.extend(rest);
        first
    });
    find_leaks_prepared(snaps, prepared, opts)
}

/// What the leak finder needs of each snapshot besides the snapshot: its id index and
/// its retainer traces ([`Traces`]). Both need only the graph (no classes, no
/// dominators), so a loader can build them for each snapshot right after reading it,
/// while the next one loads.
pub struct Prepared {
    ids: IdIndex,
    traces: Traces,
}

impl Prepared {
    /// Builds the id index and runs the trace BFS over `s`.
    pub fn new(s: &HeapSnapshot) -> Prepared {
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
    let (ids, mut all_traces): (Vec<IdIndex>, Vec<Traces>) = prepared.into_iter().map(|p| (p.ids, p.traces)).unzip();
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
        if !reportable[o as usize] || !traces.is_reached(o) {
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
    // One column per snapshot, the snapshots shared out over both cores.
    let column = |k: usize| {
        let tr = if k == last_i { &traces } else { &all_traces[k] };
        count_under_holders(snaps[k], tr, &ids[k], &holder_ids, &root_keys)
    };
    let columns: Vec<(Vec<u64>, Vec<Option<u64>>)> = std::thread::scope(|scope| {
        let odd = scope.spawn(|| (1..snaps.len()).step_by(2).map(column).collect::<Vec<_>>());
        let even: Vec<_> = (0..snaps.len()).step_by(2).map(column).collect();
        let odd = odd.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let (mut even, mut odd) = (even.into_iter(), odd.into_iter());
        (0..snaps.len())
            .map_while(|k| if k % 2 == 0 { even.next() } else { odd.next() })
            .collect()
    });
    let counts: Vec<Vec<u64>> = (0..merged.len())
        .map(|m| columns.iter().map(|(c, _)| c[m]).collect())
        .collect();
    let holder_retained: Vec<Vec<Option<u64>>> = (0..merged.len())
        .map(|m| columns.iter().map(|(_, r)| r[m]).collect())
        .collect();

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
            PATTERNS,
        ));
    }
    let known: std::collections::HashSet<String> = clusters.iter().map(|c| c.holder.clone()).collect();
    clusters.extend(growing_primitive_arrays(
        snaps, &ids, &traces, &is_new, &known, &scripts, opts,
    ));
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
