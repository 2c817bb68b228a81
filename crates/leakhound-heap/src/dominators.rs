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
//! Memory, the analysis' peak: everything works on DFS numbers. Four `u32` arrays of
//! `n + 1` plus the essential in-edge CSR (sources only) while running. The DFS parent
//! array doubles as the link forest's `ancestor` (a vertex is linked exactly when its
//! number is above the one being processed, and linking sets its ancestor to its parent),
//! and once a vertex is processed its first in-edge slots keep its semidominator and
//! parent for the NCA pass, whose idom array reuses `label`.

use crate::snapshot::NodeId;

/// Forward graph: node `v`'s out-edges are `first_edge[v]..first_edge[v+1]`, targets in
/// `edge_to`, filtered by `essential`.
pub(crate) struct Graph<'a> {
    pub(crate) first_edge: &'a [u32],
    pub(crate) edge_to: &'a [u32],
    pub(crate) essential: &'a BitVec,
}

/// A plain bit vector.
pub(crate) struct BitVec {
    words: Vec<u64>,
}

impl BitVec {
    pub(crate) fn new(len: usize) -> Self {
        BitVec {
            words: vec![0; len.div_ceil(64)],
        }
    }
    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i >> 6] |= 1 << (i & 63);
    }
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i >> 6] & (1 << (i & 63)) != 0
    }
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

    let mut has_in = BitVec::new(n);
    for v in 0..n {
        for e in essential_edges(v) {
            has_in.set(g.edge_to[e] as usize);
        }
    }

    // DFS numbers run from 1 (the root) to n; index 0 is unused.
    let mut ord2pre = vec![0u32; n];
    let mut pre2ord = vec![0u32; n + 1];
    // parent[w]: DFS parent's number; during the semidominator pass, the link forest.
    let mut parent = vec![0u32; n + 1];
    let mut next: u32 = 0;
    let mut stack: Vec<(u32, u32)> = Vec::new();
    // Iterative DFS over essential edges in file order, numbering on first visit.
    let mut dfs = |start: u32, ord2pre: &mut [u32], pre2ord: &mut [u32], parent: &mut [u32], next: &mut u32| {
        *next += 1;
        ord2pre[start as usize] = *next;
        pre2ord[*next as usize] = start;
        parent[*next as usize] = 1;
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
                    pre2ord[*next as usize] = w;
                    parent[*next as usize] = ord2pre[v as usize];
                    stack.push((w, g.first_edge[w as usize]));
                }
                None => {
                    stack.pop();
                }
            }
        }
    };
    dfs(root, &mut ord2pre, &mut pre2ord, &mut parent, &mut next);
    let reached = next;
    if (next as usize) < n {
        for v in 0..n as u32 {
            if ord2pre[v as usize] == 0 && !has_in.get(v as usize) {
                dfs(v, &mut ord2pre, &mut pre2ord, &mut parent, &mut next);
            }
        }
    }
    drop(has_in);
    // Numbers above `searched` are the leftovers, numbered one by one under the root.
    let searched = next;
    for v in 0..n as u32 {
        if ord2pre[v as usize] == 0 {
            next += 1;
            ord2pre[v as usize] = next;
            pre2ord[next as usize] = v;
            parent[next as usize] = 1;
        }
    }
    drop(stack);

    // Essential in-edges by DFS number: sources of w are list[first[w]..first[w + 1]].
    // Counted into first[w] as ends, then filled backwards so `first` ends as starts.
    let mut first = vec![0u32; n + 2];
    for v in 0..n {
        for e in essential_edges(v) {
            first[ord2pre[g.edge_to[e] as usize] as usize] += 1;
        }
    }
    for w in 1..=n {
        first[w] += first[w - 1];
    }
    first[n + 1] = first[n];
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

    // Semidominators. `label[v]` (v linked) holds the least semidominator on v's
    // compressed forest path; `parent` is the forest (`ancestor`): v is linked iff v > w.
    let mut label = vec![0u32; n + 1];
    let mut path: Vec<u32> = Vec::new();
    for w in (2..=n as u32).rev() {
        let (from, to) = (first[w as usize] as usize, first[w as usize + 1] as usize);
        if from == to {
            // An orphan: semidominator and parent are the root.
            label[w as usize] = 1;
            continue;
        }
        let p = parent[w as usize];
        let mut semi = w;
        for &v in &list[from..to] {
            let candidate = if v <= w {
                v
            } else {
                // eval(v) with path compression, iteratively.
                let mut x = v;
                path.clear();
                while parent[x as usize] > w {
                    path.push(x);
                    x = parent[x as usize];
                }
                // Every vertex on the path but the last two takes the least label above
                // it and skips to the tree's root (DevTools' `compress`).
                while let Some(y) = path.pop() {
                    let a = parent[y as usize] as usize;
                    if label[a] < label[y as usize] {
                        label[y as usize] = label[a];
                    }
                    parent[y as usize] = parent[a];
                }
                label[v as usize]
            };
            if candidate < semi {
                semi = candidate;
            }
        }
        label[w as usize] = semi;
        // Link: parent[w] already is w's ancestor. Keep semi and parent for the NCA pass
        // in w's (now consumed) in-edge slots; with one in-edge, the parent is that edge's
        // source and is the semidominator too.
        list[from] = semi;
        if to - from >= 2 {
            list[from + 1] = p;
        }
    }
    drop(path);

    // idom[w]: walk from the parent up the dominator chain until at or above semi(w).
    let mut idom = label;
    idom[1] = 1;
    for w in 2..=n {
        if w as u32 > searched {
            idom[w] = 1;
            continue;
        }
        let (from, to) = (first[w] as usize, first[w + 1] as usize);
        let (semi, p) = match to - from {
            0 => (1, 1),
            1 => (list[from], list[from]),
            _ => (list[from], list[from + 1]),
        };
        let mut d = p;
        while d > semi {
            d = idom[d as usize];
        }
        idom[w] = d;
    }
    drop(list);
    drop(first);

    // Back to ordinals, in the forest's storage.
    let mut by_ordinal = parent;
    for w in 1..=n {
        by_ordinal[pre2ord[w] as usize] = pre2ord[idom[w] as usize];
    }
    by_ordinal.truncate(n);
    drop(idom);
    pre2ord.remove(0);
    Dominators {
        idom: by_ordinal,
        order: pre2ord,
        unreachable: n as u32 - reached,
    }
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
            for e in 0..m {
                essential.set(e);
            }
            let doms = compute(
                &Graph {
                    first_edge: &first_edge,
                    edge_to: &edge_to,
                    essential: &essential,
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
