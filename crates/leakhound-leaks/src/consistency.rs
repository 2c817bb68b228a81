//! Same-process, in-order, same-V8 checks, and id lookups across snapshots.

use leakhound_heap::{HeapSnapshot, NodeId, NodeType};

use crate::model::LeakError;

/// id → ordinal for one snapshot, and the snapshot's newest odd id.
pub(crate) struct IdIndex {
    map: IdMap,
    /// [`HeapSnapshot::max_js_object_id`], kept from the build.
    max_js_object_id: u32,
}

/// A dense table over odd (V8 heap object) ids when they are compact (the usual case: ids
/// grow with allocations), else sorted pairs.
enum IdMap {
    /// `slots[(id - 1) / 2]` = ordinal + 1 (0: absent); `even` holds the even (embedder) ids.
    Dense { slots: Vec<u32>, even: Vec<(u32, NodeId)> },
    /// Sorted (id, ordinal) pairs.
    Sorted(Vec<(u32, NodeId)>),
}

impl IdIndex {
    pub(crate) fn build(s: &HeapSnapshot) -> IdIndex {
        let max_js_object_id = s.max_js_object_id();
        IdIndex {
            map: IdMap::build(s, max_js_object_id),
            max_js_object_id,
        }
    }

    /// The snapshot's newest odd id ([`HeapSnapshot::max_js_object_id`]).
    pub(crate) fn max_js_object_id(&self) -> u32 {
        self.max_js_object_id
    }

    pub(crate) fn get(&self, id: u32) -> Option<NodeId> {
        self.map.get(id)
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }
}

impl IdMap {
    fn build(s: &HeapSnapshot, max_odd: u32) -> IdMap {
        let n = s.node_count();
        let max_odd = max_odd as usize;
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
            IdMap::Dense { slots, even }
        } else {
            let mut pairs: Vec<(u32, NodeId)> = (0..n as NodeId).map(|o| (s.id(o), o)).collect();
            pairs.sort_unstable();
            IdMap::Sorted(pairs)
        }
    }
    fn get(&self, id: u32) -> Option<NodeId> {
        let find = |v: &[(u32, NodeId)]| v.binary_search_by_key(&id, |p| p.0).ok().map(|i| v[i].1);
        match self {
            IdMap::Dense { slots, even } => {
                if id % 2 == 1 {
                    slots.get((id / 2) as usize).copied().filter(|&x| x != 0).map(|x| x - 1)
                } else {
                    find(even)
                }
            }
            IdMap::Sorted(pairs) => find(pairs),
        }
    }
}

/// Checks that the snapshots come from one process, in order, from one V8, in that order
/// of questions: a pair from two processes is reported as such whichever comes first
/// (only then does the order of ids mean anything).
///
/// Same process: the odd (V8 heap) ids the two share must name the same kind of object
/// (type and name) for at least 80 % of them. One node in eight is sampled, or every node
/// when that would leave fewer than 160 to look at (small snapshots); at least 20 shared
/// ids are needed, or as many as the sample holds when it holds fewer, and at least one.
pub(crate) fn check_consistency(snaps: &[&HeapSnapshot], ids: &[IdIndex]) -> Result<Vec<String>, LeakError> {
    let mut warnings = Vec::new();
    // Each snapshot's newest object id, found once when its index was built.
    let max_ids: Vec<u32> = ids.iter().map(IdIndex::max_js_object_id).collect();
    for i in 1..snaps.len() {
        let (a, b) = (snaps[i - 1], snaps[i]);
        if a.node_type_names() != b.node_type_names() || a.edge_type_names() != b.edge_type_names() {
            return Err(LeakError::DifferentV8 {
                first: i - 1,
                second: i,
            });
        }
        let step = if a.node_count() / 8 < 160 { 1 } else { 8 };
        let (mut eligible, mut common, mut matching) = (0u64, 0u64, 0u64);
        for o in (0..a.node_count() as NodeId).step_by(step) {
            let id = a.id(o);
            if id % 2 == 0 || a.node_type(o) == NodeType::Number {
                continue;
            }
            eligible += 1;
            if let Some(ob) = ids[i].get(id) {
                common += 1;
                if a.node_type(o) == b.node_type(ob) && a.raw_name(o) == b.raw_name(ob) {
                    matching += 1;
                }
            }
        }
        let needed = eligible.clamp(1, 20);
        if common < needed || (matching as f64) < 0.8 * common as f64 {
            return Err(LeakError::DifferentProcesses {
                first: i - 1,
                second: i,
                matching,
                common,
            });
        }
        let (ma, mb) = (max_ids[i - 1], max_ids[i]);
        if mb < ma {
            return Err(LeakError::OutOfOrder {
                earlier: i - 1,
                later: i,
                earlier_max_id: ma,
                later_max_id: mb,
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
/// [`LeakError`] as for [`find_leaks`](crate::find_leaks).
pub fn check_pair(base: &HeapSnapshot, current: &HeapSnapshot) -> Result<Vec<String>, LeakError> {
    let snaps = [base, current];
    let ids = [IdIndex::build(base), IdIndex::build(current)];
    check_consistency(&snaps, &ids)
}
