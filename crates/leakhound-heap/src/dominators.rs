//! Dominators by Lengauer–Tarjan ("simple" eval/link with iterative path compression),
//! exactly as DevTools `HeapSnapshot.calculateDominatorsAndRetainedSizes` does it
//! (`heapsnapshot-format.md` §3.5), including its numbering of nodes the root does not
//! reach: orphans (no essential in-edge) get the root as DFS parent and are searched in
//! ordinal order, then leftover cliques are numbered one by one.
//!
//! Memory: seven `u32` arrays of `n + 1` while running, plus the essential in-edge CSR
//! (sources only). Bucket lists are threaded through `dom` (a vertex's `dom` is free
//! until it leaves its bucket), and the DFS keeps an explicit stack.

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
    let node_count = g.first_edge.len() - 1;
    let len = node_count + 1;

    // Essential in-edges, as source vertices (ordinal + 1). Order is irrelevant: the main
    // loop takes a minimum over them.
    let mut first_ret = vec![0u32; len + 1];
    for v in 0..node_count {
        for e in g.first_edge[v] as usize..g.first_edge[v + 1] as usize {
            if g.essential.get(e) {
                first_ret[g.edge_to[e] as usize + 1] += 1;
            }
        }
    }
    for i in 1..first_ret.len() {
        first_ret[i] += first_ret[i - 1];
    }
    let mut ret_src = vec![0u32; first_ret[len - 1] as usize];
    {
        let mut fill = first_ret.clone();
        for v in 0..node_count {
            for e in g.first_edge[v] as usize..g.first_edge[v + 1] as usize {
                if g.essential.get(e) {
                    let t = g.edge_to[e] as usize;
                    ret_src[fill[t] as usize] = v as u32 + 1;
                    fill[t] += 1;
                }
            }
        }
    }
    // first_ret is indexed by ordinal: in-edges of ordinal t are ret_src[first_ret[t]..first_ret[t+1]].

    let mut parent = vec![0u32; len];
    let mut ancestor = vec![0u32; len];
    let mut vertex = vec![0u32; len];
    let mut label = vec![0u32; len];
    let mut semi = vec![0u32; len];
    let mut n: u32 = 0;

    // Iterative DFS over essential edges in file order, numbering on first visit.
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut dfs =
        |start: u32, semi: &mut [u32], vertex: &mut [u32], label: &mut [u32], parent: &mut [u32], n: &mut u32| {
            stack.clear();
            *n += 1;
            semi[start as usize] = *n;
            vertex[*n as usize] = start;
            label[start as usize] = start;
            stack.push((start, g.first_edge[start as usize - 1]));
            while let Some(top) = stack.last_mut() {
                let v = top.0;
                let end = g.first_edge[v as usize];
                let mut next = None;
                while top.1 < end {
                    let e = top.1 as usize;
                    top.1 += 1;
                    if !g.essential.get(e) {
                        continue;
                    }
                    let w = g.edge_to[e] + 1;
                    if semi[w as usize] == 0 {
                        next = Some(w);
                        break;
                    }
                }
                match next {
                    Some(w) => {
                        parent[w as usize] = v;
                        *n += 1;
                        semi[w as usize] = *n;
                        vertex[*n as usize] = w;
                        label[w as usize] = w;
                        stack.push((w, g.first_edge[w as usize - 1]));
                    }
                    None => {
                        stack.pop();
                    }
                }
            }
        };
    // `g.first_edge[v as usize]` with v a vertex (ordinal + 1) is the END of ordinal v-1's
    // edges; `g.first_edge[v - 1]` is its start.

    let r = root + 1;
    dfs(r, &mut semi, &mut vertex, &mut label, &mut parent, &mut n);
    let reached = n;
    if (n as usize) < node_count {
        for v in 1..=node_count as u32 {
            let o = (v - 1) as usize;
            if semi[v as usize] == 0 && first_ret[o] == first_ret[o + 1] {
                parent[v as usize] = r;
                dfs(v, &mut semi, &mut vertex, &mut label, &mut parent, &mut n);
            }
        }
    }
    if (n as usize) < node_count {
        for v in 1..=node_count as u32 {
            if semi[v as usize] == 0 {
                parent[v as usize] = r;
                n += 1;
                semi[v as usize] = n;
                vertex[n as usize] = v;
                label[v as usize] = v;
            }
        }
    }

    let mut dom = vec![0u32; len];
    let mut bucket = vec![0u32; len];
    let mut comp_stack: Vec<u32> = Vec::new();

    #[inline]
    fn eval(v: u32, ancestor: &mut [u32], label: &mut [u32], semi: &[u32], stack: &mut Vec<u32>) -> u32 {
        if ancestor[v as usize] == 0 {
            return v;
        }
        // compress
        let mut x = v;
        stack.clear();
        while ancestor[ancestor[x as usize] as usize] != 0 {
            stack.push(x);
            x = ancestor[x as usize];
        }
        while let Some(w) = stack.pop() {
            let a = ancestor[w as usize] as usize;
            if semi[label[a] as usize] < semi[label[w as usize] as usize] {
                label[w as usize] = label[a];
            }
            ancestor[w as usize] = ancestor[a];
        }
        label[v as usize]
    }

    for i in (2..=n).rev() {
        let w = vertex[i as usize];
        let wo = (w - 1) as usize;
        let (from, to) = (first_ret[wo] as usize, first_ret[wo + 1] as usize);
        if from == to {
            semi[w as usize] = semi[r as usize];
        } else {
            for &v in &ret_src[from..to] {
                let u = eval(v, &mut ancestor, &mut label, &semi, &mut comp_stack);
                if semi[u as usize] < semi[w as usize] {
                    semi[w as usize] = semi[u as usize];
                }
            }
        }
        let b = vertex[semi[w as usize] as usize] as usize;
        dom[w as usize] = bucket[b];
        bucket[b] = w;
        let p = parent[w as usize];
        ancestor[w as usize] = p;
        let mut v = bucket[p as usize];
        bucket[p as usize] = 0;
        while v != 0 {
            let next = dom[v as usize];
            let u = eval(v, &mut ancestor, &mut label, &semi, &mut comp_stack);
            dom[v as usize] = if semi[u as usize] < semi[v as usize] { u } else { p };
            v = next;
        }
    }
    // Vertices still waiting in a bucket were never assigned: DevTools leaves their `dom`
    // at 0 (which the final step maps to the root); here `dom` holds list links, so clear.
    for &head in &bucket {
        let mut v = head;
        while v != 0 {
            let next = dom[v as usize];
            dom[v as usize] = 0;
            v = next;
        }
    }
    drop(ret_src);
    drop(first_ret);
    drop(bucket);
    drop(ancestor);
    drop(label);
    drop(parent);

    dom[0] = r;
    dom[r as usize] = r;
    for i in 2..=n {
        let w = vertex[i as usize] as usize;
        if dom[w] != vertex[semi[w] as usize] {
            dom[w] = dom[dom[w] as usize];
        }
    }
    drop(semi);

    let idom: Vec<NodeId> = (0..node_count).map(|o| dom[o + 1] - 1).collect();
    drop(dom);
    let order: Vec<NodeId> = vertex[1..=n as usize].iter().map(|&v| v - 1).collect();
    Dominators {
        idom,
        order,
        unreachable: node_count as u32 - reached,
    }
}
