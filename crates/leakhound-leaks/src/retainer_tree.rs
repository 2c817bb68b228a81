//! Retainer trees: the Retainers view expanded level by level (DevTools order and edge
//! notation), and the shortest retainer path to a GC root (what DevTools' panel
//! auto-expands: the first retainer, while its distance is above 1).

use leakhound_heap::{HeapSnapshot, NodeId, RetainerIndex, display_name, retainer_view_distance, retainers};

/// A node of a retainer tree.
#[derive(Debug, Clone)]
pub struct RetainerTree {
    /// The node's ordinal in the snapshot (not its V8 id).
    pub node: NodeId,
    /// Edge from this node to the node below it in the tree (DevTools notation); empty
    /// for the top of the tree.
    pub edge: String,
    /// Edge type name.
    pub edge_type: String,
    /// The node's name as DevTools shows it (a string's value, a function's name…).
    pub name: String,
    /// Its class, as in the Summary's Constructor column.
    pub class_name: String,
    /// V8 node type name.
    pub node_type: String,
    /// Its V8 heap object id (`@id` in DevTools).
    pub id: u32,
    /// Self size, bytes.
    pub self_size_bytes: u64,
    /// Retained size, bytes.
    pub retained_size_bytes: u64,
    /// Its distance from the GC roots as the Retainers view counts it (unreachable
    /// nodes are outside `0..BASE_SYSTEM_DISTANCE`).
    pub distance: i32,
    /// Already on the path above: not expanded.
    pub cycle: bool,
    /// Reached through a weak edge: the node below is only weakly held (DevTools lists
    /// no retainers for such a node; leakhound shows the weak ones, marked).
    pub weak: bool,
    /// Retainers not listed because of `max_per_level`.
    pub more: usize,
    /// The nodes that retain this one, one level up, at most `max_per_level` of them.
    pub retainers: Vec<RetainerTree>,
}

fn leaf(s: &HeapSnapshot, node: NodeId, edge: Option<u32>) -> RetainerTree {
    RetainerTree {
        node,
        edge: edge.map(|e| s.edge_label(e)).unwrap_or_default(),
        edge_type: edge.map(|e| s.edge_type_name(e).to_owned()).unwrap_or_default(),
        name: display_name(s, node),
        class_name: s.class(node).name.clone(),
        node_type: s.node_type_name(node).to_owned(),
        id: s.id(node),
        self_size_bytes: s.self_size(node),
        retained_size_bytes: s.retained_size(node),
        distance: retainer_view_distance(s, node),
        cycle: false,
        weak: false,
        more: 0,
        retainers: Vec::new(),
    }
}

/// The retainer tree of `node`, `depth` levels deep, at most `max_per_level` retainers
/// per node (the rest counted in `more`). Weak edges and edges from the root are not
/// retainers (as in DevTools); a node already on the path is marked `cycle`.
pub fn retainer_tree(
    s: &HeapSnapshot,
    index: &RetainerIndex,
    node: NodeId,
    depth: usize,
    max_per_level: usize,
) -> RetainerTree {
    let mut path = vec![node];
    build(s, index, leaf(s, node, None), depth, max_per_level, &mut path)
}

fn build(
    s: &HeapSnapshot,
    index: &RetainerIndex,
    mut t: RetainerTree,
    depth: usize,
    max: usize,
    path: &mut Vec<NodeId>,
) -> RetainerTree {
    if depth == 0 {
        return t;
    }
    let mut rs: Vec<(u32, NodeId, bool)> = retainers(s, t.node, Some(index))
        .into_iter()
        .map(|r| (r.edge, r.from, false))
        .collect();
    if rs.is_empty() {
        // Only weak retainers (or none): show the weak ones so the path is not lost.
        rs = index
            .of(t.node)
            .filter(|&(e, from)| from != s.root() && s.edge_type(e) == leakhound_heap::EdgeType::Weak)
            .map(|(e, from)| (e, from, true))
            .collect();
    }
    t.more = rs.len().saturating_sub(max);
    for (edge, from, weak) in rs.into_iter().take(max) {
        let r = leakhound_heap::Retainer {
            edge,
            from,
            distance: 0,
        };
        let mut child = leaf(s, r.from, Some(r.edge));
        child.weak = weak;
        if path.contains(&r.from) {
            child.cycle = true;
            t.retainers.push(child);
            continue;
        }
        path.push(r.from);
        child = build(s, index, child, depth - 1, max, path);
        path.pop();
        t.retainers.push(child);
    }
    t
}

/// The shortest retainer path from `node` to a GC root: `node` first, then its first
/// retainer in DevTools' order (the nearest to a root), and so on while the distance is
/// above 1. Stops at cycles and after 100 steps.
pub fn path_to_root(s: &HeapSnapshot, index: &RetainerIndex, node: NodeId) -> Vec<RetainerTree> {
    let mut out = vec![leaf(s, node, None)];
    // An object no root reaches has no such path: following its retainers would only walk
    // the cycle (or the dead objects) that keeps it.
    if !(0..leakhound_heap::BASE_SYSTEM_DISTANCE).contains(&out[0].distance) {
        return out;
    }
    let mut cur = node;
    let mut seen = vec![node];
    for _ in 0..100 {
        if retainer_view_distance(s, cur) <= 1 {
            break;
        }
        let Some(r) = retainers(s, cur, Some(index)).into_iter().next() else {
            break;
        };
        if seen.contains(&r.from) {
            break;
        }
        seen.push(r.from);
        out.push(leaf(s, r.from, Some(r.edge)));
        cur = r.from;
    }
    out
}

/// The `n` largest instances of the class named `class_name` (Summary's Constructor
/// column, exact match), by retained size, largest first (ties by node ordinal); objects
/// of self size 0 (V8's placeholders) are left out. Empty when the class has none.
pub fn largest_instances(s: &HeapSnapshot, class_name: &str, n: usize) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = (0..s.node_count() as NodeId)
        .filter(|&o| s.class(o).name == class_name && s.self_size(o) > 0)
        .collect();
    v.sort_by_key(|&o| (std::cmp::Reverse(s.retained_size(o)), o));
    v.truncate(n);
    v
}
