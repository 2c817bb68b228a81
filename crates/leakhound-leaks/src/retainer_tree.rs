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

/// Which class `retainers --class NAME` means.
#[derive(Debug, PartialEq, Eq)]
pub enum ClassPick {
    /// NAME is a class.
    Exact,
    /// Only this class has NAME's letters in another case.
    OtherCase(String),
    /// Several classes do (`Quote`, `QUOTE`).
    Ambiguous(Vec<String>),
    /// No class is NAME in any case: the closest names (at most 5, nearest first;
    /// possibly none).
    None(Vec<String>),
}

/// Finds `wanted` among the class `names`: exactly, else in another case, else the
/// closest names (few edits apart, or containing it, in any case).
pub fn pick_class<'a>(names: impl Iterator<Item = &'a str>, wanted: &str) -> ClassPick {
    let mut all: Vec<&str> = names.collect();
    all.sort_unstable();
    all.dedup();
    if all.binary_search(&wanted).is_ok() {
        return ClassPick::Exact;
    }
    let lower = wanted.to_lowercase();
    let other_case: Vec<String> = all
        .iter()
        .filter(|n| n.to_lowercase() == lower)
        .map(|n| (*n).to_owned())
        .collect();
    match other_case.len() {
        0 => {}
        1 => return ClassPick::OtherCase(other_case.into_iter().next().unwrap_or_default()),
        _ => return ClassPick::Ambiguous(other_case),
    }
    let limit = (lower.chars().count() / 3).max(2);
    let mut near: Vec<(usize, &str)> = all
        .iter()
        .filter_map(|n| {
            let l = n.to_lowercase();
            let d = edit_distance(&l, &lower);
            let contains = lower.chars().count() >= 3 && l.contains(&lower);
            (d <= limit || contains).then_some((if contains { d.min(limit) } else { d }, *n))
        })
        .collect();
    near.sort();
    ClassPick::None(near.into_iter().take(5).map(|(_, n)| n.to_owned()).collect())
}

/// Levenshtein distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_is_found_exactly_then_in_another_case_else_the_nearest_are_named() {
        let names = ["Quote", "QuoteCache", "Order", "Map", "(string)", "quoted", "QUOTED"];
        let pick = |w: &str| pick_class(names.iter().copied(), w);
        assert_eq!(pick("Quote"), ClassPick::Exact);
        assert_eq!(pick("order"), ClassPick::OtherCase("Order".into()));
        assert_eq!(
            pick("Quoted"),
            ClassPick::Ambiguous(vec!["QUOTED".into(), "quoted".into()])
        );
        assert_eq!(pick("Qoute"), ClassPick::None(vec!["Quote".into()]));
        assert_eq!(
            pick("Quotes"),
            ClassPick::None(vec!["QUOTED".into(), "Quote".into(), "quoted".into()])
        );
        assert_eq!(pick("cache"), ClassPick::None(vec!["QuoteCache".into()]));
        assert_eq!(pick("Zebra"), ClassPick::None(Vec::new()));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("quote", "qoute"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("map", "map"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
