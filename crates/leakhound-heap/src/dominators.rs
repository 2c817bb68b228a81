//! Immediate dominators by Semi-NCA (Georgiadis, "Linear-Time Algorithms for Dominators
//! and Related Problems", 2005): Lengauer–Tarjan's semidominators by "simple" eval/link
//! with path compression, then each idom by walking the parent's dominator chain down to
//! the semidominator. The dominator tree is a property of the graph, so this gives what
//! DevTools' Lengauer–Tarjan (`HeapSnapshot.calculateDominatorsAndRetainedSizes`,
//! `heapsnapshot-format.md` §3.5) gives, including its numbering of nodes the root does not
//! reach: orphans (no essential in-edge) get the root as DFS parent and are searched in
//! ordinal order (a valid DFS of the graph plus root → orphan edges), then the leftover
//! nodes (unreachable cycles) are numbered one by one under the root. DevTools' buckets
//! never assign those a dominator, so they end up dominated by the root; their edges
//! cannot lower the semidominator of any searched node (their numbers are all larger),
//! so they are set to the root directly.
//!
//! Memory, the analysis' peak: everything works on DFS numbers, and at any time only two
//! `u32` arrays of `n + 1` live beside the essential in-edge list (one `u32` per edge):
//! the numbering and the list's offsets while it is built; then the link forest
//! (`ancestor`) and `label` while semidominators are computed. The list needs no offsets
//! then (each target's group starts with a marked entry), the DFS parent needs no array
//! (in a DFS, a node's in-edges from lower numbers come from its ancestors, so its parent
//! is the largest of them, found while its in-edges are read), and once a vertex is
//! processed its first in-edge slots keep its semidominator and parent for the NCA pass,
//! whose idom array reuses `label`. The numbering is then recomputed (the DFS is
//! deterministic) to map the result back to ordinals.

use crate::bits::BitVec;
use crate::ids::NodeId;

/// Forward graph: node `v`'s out-edges are `first_edge[v]..first_edge[v+1]`, targets in
/// `edge_to`, filtered by `essential`; `has_in` marks the targets of essential edges (the
/// caller builds it with `essential`, saving a pass over the edges here).
pub(crate) struct Graph<'a> {
    pub(crate) first_edge: &'a [u32],
    pub(crate) edge_to: &'a [u32],
    pub(crate) essential: &'a BitVec,
    pub(crate) has_in: &'a BitVec,
}

/// Result: immediate dominator per ordinal, and the DFS order (vertex numbers 1..=n map to
/// ordinals) used to propagate retained sizes bottom-up.
pub(crate) struct Dominators {
    /// `idom[ord]` = ordinal of the immediate dominator; the root's is itself.
    pub(crate) idom: Vec<NodeId>,
    /// `order[i]` = ordinal of the node with DFS number `i + 1`.
    pub(crate) order: Vec<NodeId>,
    /// Nodes not reached by the DFS from the root.
    pub(crate) unreachable: u32,
}

pub(crate) fn compute(g: &Graph<'_>, root: NodeId) -> Dominators {
    let n = g.first_edge.len() - 1;
    let essential_edges =
        |v: usize| (g.first_edge[v] as usize..g.first_edge[v + 1] as usize).filter(|&e| g.essential.get(e));

    let has_in = g.has_in;
    // DFS numbers run from 1 (the root) to n.
    let (ord2pre, reached, searched) = number(g, root, has_in);

    // Essential in-edges by DFS number, grouped by target in increasing order; the first
    // entry of each group carries GROUP_START. Counted into `first[w]` as ends, filled
    // backwards so `first` ends as starts, then turned into the marks and dropped.
    let mut first = vec![0u32; n + 2];
    let mut has_preds = BitVec::new(n + 1);
    for v in 0..n {
        for e in essential_edges(v) {
            let t = ord2pre[g.edge_to[e] as usize] as usize;
            first[t] += 1;
            has_preds.set(t);
        }
    }
    for w in 1..=n {
        first[w] += first[w - 1];
    }
    let mut list = vec![0u32; first[n] as usize];
    for v in 0..n {
        let pv = ord2pre[v];
        for e in essential_edges(v) {
            let t = ord2pre[g.edge_to[e] as usize] as usize;
            first[t] -= 1;
            list[first[t] as usize] = pv;
        }
    }
    drop(ord2pre);
    for w in 1..=n {
        if has_preds.get(w) {
            list[first[w] as usize] |= GROUP_START;
        }
    }
    drop(first);

    // Semidominators, w from n down. `label[v]` (v linked) holds the least semidominator
    // on v's compressed forest path; `ancestor` is the forest: v is linked iff v > w, and
    // linking sets ancestor[w] to w's DFS parent, which is its largest in-edge source
    // below w (in a DFS, in-edges from lower numbers come from ancestors).
    let mut ancestor = vec![0u32; n + 1];
    let mut label = vec![0u32; n + 1];
    let mut path: Vec<u32> = Vec::new();
    let mut cursor = list.len();
    for w in (2..=n as u32).rev() {
        if !has_preds.get(w as usize) {
            // An orphan: semidominator and parent are the root.
            label[w as usize] = 1;
            ancestor[w as usize] = 1;
            continue;
        }
        let to = cursor;
        let mut from = to - 1;
        while list[from] & GROUP_START == 0 {
            from -= 1;
        }
        cursor = from;
        let mut semi = w;
        // Leftovers (numbered under the root, not by a DFS) have no parent among their
        // sources; their result is the root whatever their forest link.
        let mut p = 1;
        for &entry in &list[from..to] {
            let v = entry & !GROUP_START;
            let candidate = if v <= w {
                if v < w && v > p && w <= searched {
                    p = v;
                }
                v
            } else {
                // eval(v) with path compression, iteratively.
                let mut x = v;
                path.clear();
                while ancestor[x as usize] > w {
                    path.push(x);
                    x = ancestor[x as usize];
                }
                // Every vertex on the path but the last two takes the least label above
                // it and skips to the tree's root (DevTools' `compress`).
                while let Some(y) = path.pop() {
                    let a = ancestor[y as usize] as usize;
                    if label[a] < label[y as usize] {
                        label[y as usize] = label[a];
                    }
                    ancestor[y as usize] = ancestor[a];
                }
                label[v as usize]
            };
            if candidate < semi {
                semi = candidate;
            }
        }
        label[w as usize] = semi;
        ancestor[w as usize] = p;
        // Keep semi and parent for the NCA pass in w's (now consumed) in-edge slots;
        // with one in-edge, the parent is its source and is the semidominator too.
        list[from] = semi | GROUP_START;
        if to - from >= 2 {
            list[from + 1] = p;
        }
    }
    drop(path);
    drop(ancestor);

    // idom[w]: walk from the parent up the dominator chain until at or above semi(w).
    let mut idom = label;
    idom[1] = 1;
    let group_end = |start: usize| {
        let mut end = start + 1;
        while end < list.len() && list[end] & GROUP_START == 0 {
            end += 1;
        }
        end
    };
    let mut cursor = if has_preds.get(1) { group_end(0) } else { 0 };
    for w in 2..=n {
        let (semi, p) = if has_preds.get(w) {
            let (from, to) = (cursor, group_end(cursor));
            cursor = to;
            let semi = list[from] & !GROUP_START;
            (semi, if to - from >= 2 { list[from + 1] } else { semi })
        } else {
            (1, 1)
        };
        if w as u32 > searched {
            idom[w] = 1;
            continue;
        }
        let mut d = p;
        while d > semi {
            d = idom[d as usize];
        }
        idom[w] = d;
    }
    drop(list);
    drop(has_preds);

    // Back to ordinals. The numbering was not kept through the passes above (it would be
    // one more array at the peak): the DFS runs again, deterministically.
    let (ord2pre, _, _) = number(g, root, has_in);
    let mut pre2ord = vec![0u32; n];
    for (v, &p) in ord2pre.iter().enumerate() {
        pre2ord[p as usize - 1] = v as u32;
    }
    let mut by_ordinal = ord2pre;
    for p in by_ordinal.iter_mut() {
        *p = pre2ord[idom[*p as usize] as usize - 1];
    }
    drop(idom);
    Dominators {
        idom: by_ordinal,
        order: pre2ord,
        unreachable: n as u32 - reached,
    }
}

/// Marks the first in-edge of each target's group in the in-edge list (DFS numbers are
/// below 2^31: node counts are bounded by 32-bit node indices).
const GROUP_START: u32 = 1 << 31;

/// Numbers every node as DevTools' Lengauer–Tarjan does: an iterative DFS from the root
/// over essential edges in file order, numbering on first visit; then a DFS from each
/// orphan (no essential in-edge) in ordinal order, under the root; then the leftovers one
/// by one, under the root. Returns (`ord2pre[ordinal]` = number, from 1; how many the
/// root's DFS reached; how many any DFS reached). Deterministic: a second run gives the
/// same numbers.
fn number(g: &Graph<'_>, root: NodeId, has_in: &BitVec) -> (Vec<u32>, u32, u32) {
    let n = g.first_edge.len() - 1;
    let mut ord2pre = vec![0u32; n];
    let mut next: u32 = 0;
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut dfs = |start: u32, ord2pre: &mut [u32], next: &mut u32| {
        *next += 1;
        ord2pre[start as usize] = *next;
        stack.clear();
        stack.push((start, g.first_edge[start as usize]));
        while let Some(top) = stack.last_mut() {
            let v = top.0;
            let end = g.first_edge[v as usize + 1];
            let mut found = None;
            while top.1 < end {
                let e = top.1 as usize;
                top.1 += 1;
                if g.essential.get(e) && ord2pre[g.edge_to[e] as usize] == 0 {
                    found = Some(g.edge_to[e]);
                    break;
                }
            }
            match found {
                Some(w) => {
                    *next += 1;
                    ord2pre[w as usize] = *next;
                    stack.push((w, g.first_edge[w as usize]));
                }
                None => {
                    stack.pop();
                }
            }
        }
    };
    dfs(root, &mut ord2pre, &mut next);
    let reached = next;
    if (next as usize) < n {
        for v in 0..n as u32 {
            if ord2pre[v as usize] == 0 && !has_in.get(v as usize) {
                dfs(v, &mut ord2pre, &mut next);
            }
        }
    }
    let searched = next;
    for v in 0..n as u32 {
        if ord2pre[v as usize] == 0 {
            next += 1;
            ord2pre[v as usize] = next;
        }
    }
    (ord2pre, reached, searched)
}

#[cfg(test)]
mod tests {
    use super::{BitVec, Graph, compute};

    /// Dominators by the textbook data-flow equations on the graph DevTools analyses:
    /// the root's graph plus root → orphan edges (nodes without an in-edge, searched in
    /// ordinal order); the leftovers (unreachable cycles) are dominated by the root.
    fn reference(n: usize, edges: &[(usize, usize)], root: usize) -> Vec<u32> {
        let mut succ = vec![Vec::new(); n];
        let mut has_in = vec![false; n];
        for &(a, b) in edges {
            succ[a].push(b);
            has_in[b] = true;
        }
        for (o, &h) in has_in.iter().enumerate() {
            if !h && o != root {
                succ[root].push(o);
            }
        }
        let mut reach = vec![false; n];
        let mut stack = vec![root];
        reach[root] = true;
        while let Some(v) = stack.pop() {
            for &w in &succ[v] {
                if !reach[w] {
                    reach[w] = true;
                    stack.push(w);
                }
            }
        }
        let mut pred = vec![Vec::new(); n];
        for (v, ws) in succ.iter().enumerate() {
            for &w in ws {
                if reach[v] {
                    pred[w].push(v);
                }
            }
        }
        // dom[v] as a bit set over nodes.
        let all: Vec<bool> = reach.clone();
        let mut dom: Vec<Vec<bool>> = (0..n).map(|_| all.clone()).collect();
        dom[root] = vec![false; n];
        dom[root][root] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for v in 0..n {
                if v == root || !reach[v] {
                    continue;
                }
                let mut d = all.clone();
                for &p in &pred[v] {
                    for k in 0..n {
                        d[k] = d[k] && dom[p][k];
                    }
                }
                d[v] = true;
                if d != dom[v] {
                    dom[v] = d;
                    changed = true;
                }
            }
        }
        (0..n)
            .map(|v| {
                if v == root || !reach[v] {
                    return root as u32;
                }
                // The immediate dominator: the strict dominator dominated by all others.
                let strict: Vec<usize> = (0..n).filter(|&k| k != v && dom[v][k]).collect();
                *strict
                    .iter()
                    .find(|&&c| strict.iter().all(|&o| dom[c][o]))
                    .expect("an immediate dominator") as u32
            })
            .collect()
    }

    #[test]
    fn semi_nca_matches_the_data_flow_dominators_on_random_graphs() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for round in 0..3000 {
            let n = 1 + rand(24);
            let m = rand(3 * n + 1);
            let mut edges: Vec<(usize, usize)> = (0..m).map(|_| (rand(n), rand(n))).collect();
            edges.sort_by_key(|&(a, _)| a);
            let root = if round % 3 == 0 { 0 } else { rand(n) };
            let mut first_edge = vec![0u32; n + 1];
            for &(a, _) in &edges {
                first_edge[a + 1] += 1;
            }
            for i in 1..=n {
                first_edge[i] += first_edge[i - 1];
            }
            let edge_to: Vec<u32> = edges.iter().map(|&(_, b)| b as u32).collect();
            let mut essential = BitVec::new(m);
            let mut has_in = BitVec::new(n);
            for (e, &to) in edge_to.iter().enumerate() {
                essential.set(e);
                has_in.set(to as usize);
            }
            let doms = compute(
                &Graph {
                    first_edge: &first_edge,
                    edge_to: &edge_to,
                    essential: &essential,
                    has_in: &has_in,
                },
                root as u32,
            );
            let expected = reference(n, &edges, root);
            assert_eq!(
                doms.idom, expected,
                "round {round}: n {n}, root {root}, edges {edges:?}"
            );
            let mut order = doms.order.clone();
            order.sort_unstable();
            assert_eq!(
                order,
                (0..n as u32).collect::<Vec<_>>(),
                "round {round}: order is a permutation"
            );
        }
    }
}
