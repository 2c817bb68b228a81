//! Retainer traces: the shortest path from a GC root to every node, found by BFS the way
//! memlab's `TraceFinder` does (`heapsnapshot-format.md` §4): weak edges, code, feedback
//! cells, `sloppy_function_map`, the native context and map descriptors are not followed,
//! and V8's own `(GC roots)` are searched only after the embedder and global roots, so
//! traces read as the app's own references (`Server → _events.request → handler → …`).

use leakhound_heap::{EdgeId, EdgeType, HeapSnapshot, NodeId, NodeType};
use rayon::prelude::*;

/// `parent_edge[n]` = the edge by which BFS first reached `n` (`u32::MAX` for the root
/// and for nodes no trace reaches). Three `u32` per node.
pub struct Traces {
    /// Nodes in BFS order (parents before children).
    order: Vec<NodeId>,
    parent_edge: Vec<EdgeId>,
    parent_node: Vec<NodeId>,
    root: NodeId,
}

/// The parent of a node the BFS did not reach, or of the root: none.
pub const NONE: u32 = u32::MAX;

impl Traces {
    /// Runs the BFS over `s`.
    pub fn compute(s: &HeapSnapshot) -> Traces {
        let n = s.node_count();
        let mut parent_edge = vec![NONE; n];
        let mut parent_node = vec![NONE; n];
        let strings = s.strings();
        let find = |t: &str| strings.find_all(t);
        let blocked_edge_names: Vec<u32> = [
            "feedback_cell",
            "code",
            "sloppy_function_map",
            "part of key -> value pair in ephemeron table",
        ]
        .iter()
        .flat_map(|t| find(t))
        .collect();
        let blocked_target_names: Vec<u32> = [
            "system / NativeContext",
            "system / SourcePositionTableWithFrameCache",
            "(map descriptors)",
            "system / PropertyCell",
        ]
        .iter()
        .flat_map(|t| find(t))
        .collect();
        let gc_roots: Vec<u32> = find("(GC roots)");
        let root = s.root();
        // One bit per node: the nodes the BFS never enters (code, and the internals
        // above by name), found on every core; and the nodes reached so far. Bits keep
        // the BFS's random reads in cache where the per-node arrays would not be.
        let words = n.div_ceil(64);
        let blocked: Vec<u64> = (0..words)
            .into_par_iter()
            .map(|w| {
                let mut bits = 0u64;
                for b in 0..64 {
                    let o = w * 64 + b;
                    if o >= n {
                        break;
                    }
                    let o = o as NodeId;
                    if s.node_type(o) == NodeType::Code || blocked_target_names.contains(&s.raw_name_index(o)) {
                        bits |= 1 << b;
                    }
                }
                bits
            })
            .collect();
        let is_set = |bits: &[u64], v: NodeId| bits[v as usize / 64] & (1 << (v % 64)) != 0;
        let mut reached = vec![0u64; words];
        reached[root as usize / 64] |= 1 << (root % 64);
        let mut queue: Vec<NodeId> = vec![root];
        let mut deferred: Vec<(NodeId, EdgeId)> = Vec::new();
        let follow = |e: EdgeId, to: NodeId, from: NodeId| -> bool {
            let t = s.edge_type(e);
            if t == EdgeType::Weak || to == from {
                return false;
            }
            if !t.has_index_name() && blocked_edge_names.contains(&s.edge_name_or_index(e)) {
                return false;
            }
            !is_set(&blocked, to)
        };
        let mut head = 0;
        loop {
            while head < queue.len() {
                let u = queue[head];
                head += 1;
                for e in s.edges(u) {
                    let v = s.edge_target(e);
                    if is_set(&reached, v) || !follow(e, v, u) {
                        continue;
                    }
                    if u == root && s.node_type(v) == NodeType::Synthetic && gc_roots.contains(&s.raw_name_index(v)) {
                        deferred.push((v, e));
                        continue;
                    }
                    parent_edge[v as usize] = e;
                    parent_node[v as usize] = u;
                    reached[v as usize / 64] |= 1 << (v % 64);
                    queue.push(v);
                }
            }
            let mut progressed = false;
            while let Some((v, e)) = deferred.pop() {
                if !is_set(&reached, v) {
                    parent_edge[v as usize] = e;
                    parent_node[v as usize] = root;
                    reached[v as usize / 64] |= 1 << (v % 64);
                    queue.push(v);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        Traces {
            order: queue,
            parent_edge,
            parent_node,
            root,
        }
    }

    /// Reached nodes in BFS order: every node comes after its trace parent.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// The edge by which the trace reaches `n`, if any.
    pub fn parent_edge(&self, n: NodeId) -> Option<EdgeId> {
        let e = self.parent_edge[n as usize];
        (e != NONE).then_some(e)
    }

    /// The node before `n` on its trace, if any.
    pub fn parent(&self, n: NodeId) -> Option<NodeId> {
        let p = self.parent_node[n as usize];
        (p != NONE).then_some(p)
    }

    /// Whether a trace reaches `n` (the root included).
    pub fn is_reached(&self, n: NodeId) -> bool {
        n == self.root || self.parent_node[n as usize] != NONE
    }

    /// The trace to `n`, root first: the list of (edge, node) steps after the root.
    pub fn path(&self, n: NodeId) -> Vec<(EdgeId, NodeId)> {
        let mut steps = Vec::new();
        let mut cur = n;
        while let Some(e) = self.parent_edge(cur) {
            steps.push((e, cur));
            cur = self.parent_node[cur as usize];
            if steps.len() > 10_000 {
                break;
            }
        }
        steps.reverse();
        steps
    }
}
