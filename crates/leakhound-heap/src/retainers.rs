//! The Retainers view (`heapsnapshot-format.md` §3.9; DevTools
//! `createRetainingEdgesProvider` sorted by `!edgeDistance`, then `name`) and display
//! names (`JSHeapSnapshotNode.name()`).

use crate::classes::{format_property_name, js_cmp};
use crate::ids::{EdgeId, NodeId};
use crate::snapshot::{BASE_UNREACHABLE_DISTANCE, EdgeType, HeapSnapshot, NO_DISTANCE, NodeType};

/// One row of the Retainers view: an edge from `from` to the node asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retainer {
    /// The retaining edge.
    pub edge: EdgeId,
    /// The retaining node (the edge's source).
    pub from: NodeId,
    /// The retainer's distance as the panel sorts and shows it (unreachable retainers
    /// get [`BASE_UNREACHABLE_DISTANCE`]).
    pub distance: i32,
}

/// An index of every node's retainers (reverse CSR of all edges), for callers that ask
/// about many nodes. Memory: 4 bytes per edge and per node, plus the source per edge.
pub struct RetainerIndex {
    first: Vec<u32>,
    edges: Vec<EdgeId>,
    sources: Vec<NodeId>,
}

impl RetainerIndex {
    /// Builds the index. Within a node, retainers are in DevTools' order: descending
    /// (source ordinal, edge ordinal).
    pub fn build(s: &HeapSnapshot) -> RetainerIndex {
        let n = s.node_count();
        let mut first = vec![0u32; n + 1];
        for &t in &s.edge_to {
            first[t as usize + 1] += 1;
        }
        for i in 1..=n {
            first[i] += first[i - 1];
        }
        let mut fill: Vec<u32> = first[1..].to_vec();
        let mut edges = vec![0u32; s.edge_count()];
        let mut sources = vec![0u32; s.edge_count()];
        for src in 0..n as NodeId {
            for e in s.edges(src) {
                let t = s.edge_to[e as usize] as usize;
                fill[t] -= 1;
                edges[fill[t] as usize] = e;
                sources[fill[t] as usize] = src;
            }
        }
        RetainerIndex { first, edges, sources }
    }

    /// (edge, source) pairs retaining `node`, in DevTools' retainer-list order.
    pub fn of(&self, node: NodeId) -> impl Iterator<Item = (EdgeId, NodeId)> + '_ {
        let r = self.first[node as usize] as usize..self.first[node as usize + 1] as usize;
        self.edges[r.clone()]
            .iter()
            .copied()
            .zip(self.sources[r].iter().copied())
    }
}

/// The distance DevTools uses for a retainer row.
pub fn retainer_view_distance(s: &HeapSnapshot, node: NodeId) -> i32 {
    let d = s.distance(node);
    if d == NO_DISTANCE { BASE_UNREACHABLE_DISTANCE } else { d }
}

/// The Retainers view of `node`: every edge into it except from the root and weak edges,
/// sorted by retainer distance, then retainer display name, then DevTools' retainer-list
/// order. Scans all edges once when `index` is `None`.
pub fn retainers(s: &HeapSnapshot, node: NodeId, index: Option<&RetainerIndex>) -> Vec<Retainer> {
    let mut list: Vec<(EdgeId, NodeId)> = match index {
        Some(ix) => ix.of(node).collect(),
        None => {
            let mut v = Vec::new();
            for src in 0..s.node_count() as NodeId {
                for e in s.edges(src) {
                    if s.edge_to[e as usize] == node {
                        v.push((e, src));
                    }
                }
            }
            v.reverse();
            v
        }
    };
    list.retain(|&(e, src)| src != s.root() && s.edge_type(e) != EdgeType::Weak);
    let mut rows: Vec<(Retainer, String)> = list
        .into_iter()
        .map(|(e, src)| {
            (
                Retainer {
                    edge: e,
                    from: src,
                    distance: retainer_view_distance(s, src),
                },
                display_name(s, src),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.distance.cmp(&b.0.distance).then_with(|| js_cmp(&a.1, &b.1)));
    rows.into_iter().map(|(r, _)| r).collect()
}

/// The name DevTools shows for a node (`name()`): concatenated strings flattened (up to
/// 1024 characters), plain objects as `{a, b, …, z}`, else the raw name.
pub fn display_name(s: &HeapSnapshot, node: NodeId) -> String {
    match s.node_type(node) {
        NodeType::ConsString => cons_string_name(s, node),
        NodeType::Object if s.raw_name(node) == "Object" => plain_object_name(s, node),
        _ => s.raw_name(node).to_owned(),
    }
}

fn cons_string_name(s: &HeapSnapshot, node: NodeId) -> String {
    // DevTools' loop ends only when the name reaches 1024 characters, so a cons string
    // that contains itself (a cycle, or a missing part when node 0 is a cons string) or a
    // DAG of empty parts never ends there. On V8 output the walk is a tree walk with
    // non-empty leaves: fewer than 2 × 1024 pops plus one path down, which is at most
    // the node count. Past that bound the input is broken: stop with what we have.
    let mut budget = s.node_count() + 4096;
    let mut stack = vec![node];
    let mut name = String::new();
    let mut len16 = 0usize;
    while let Some(o) = stack.pop() {
        if len16 >= 1024 || budget == 0 {
            break;
        }
        budget -= 1;
        if s.node_type(o) != NodeType::ConsString {
            let part = s.raw_name(o);
            len16 += part.encode_utf16().count();
            name.push_str(part);
            continue;
        }
        let (mut first, mut second) = (None, None);
        for e in s.edges(o) {
            if s.edge_type(e) == EdgeType::Internal {
                match s.strings.get(s.edge_name_index(e)) {
                    "first" if first.is_none() => first = Some(s.edge_target(e)),
                    "second" if second.is_none() => second = Some(s.edge_target(e)),
                    _ => {}
                }
                if first.is_some() && second.is_some() {
                    break;
                }
            }
        }
        // DevTools pushes node index 0 (the root) when a part is missing.
        stack.push(second.unwrap_or(0));
        stack.push(first.unwrap_or(0));
    }
    name
}

fn plain_object_name(s: &HeapSnapshot, node: NodeId) -> String {
    let edges: Vec<EdgeId> = s.edges(node).collect();
    let (mut start, mut end) = (0isize, edges.len() as isize - 1);
    let mut head = String::from("{");
    let mut tail = String::from("}");
    let mut from_end = false;
    let len16 = |x: &str| x.encode_utf16().count();
    while start <= end {
        let e = edges[if from_end { end } else { start } as usize];
        let is_prop = s.edge_type(e) == EdgeType::Property;
        let name = s.edge_name(e);
        if !is_prop || name == "__proto__" {
            if from_end {
                end -= 1;
            } else {
                start += 1;
            }
            continue;
        }
        let formatted = format_property_name(&name);
        if len16(&head) > 1 && len16(&head) + len16(&tail) + len16(&formatted) > 100 {
            break;
        }
        if from_end {
            end -= 1;
            if len16(&tail) > 1 {
                tail = format!(", {tail}");
            }
            tail = format!("{formatted}{tail}");
        } else {
            start += 1;
            if len16(&head) > 1 {
                head.push_str(", ");
            }
            head.push_str(&formatted);
        }
        from_end = !from_end;
    }
    if start <= end {
        head.push_str(", …");
    }
    if len16(&tail) > 1 {
        head.push_str(", ");
    }
    head + &tail
}
