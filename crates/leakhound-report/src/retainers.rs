//! The `retainers` report: the retainer tree of a node up to GC roots, in DevTools' order
//! and edge notation.

use std::io::{self, Write};

use serde::Serialize;

use crate::format;

impl From<&leakhound_leaks::RetainerTree> for RetainerNode {
    fn from(t: &leakhound_leaks::RetainerTree) -> Self {
        RetainerNode {
            edge: t.edge.clone(),
            edge_type: t.edge_type.clone(),
            name: t.name.clone(),
            class_name: t.class_name.clone(),
            node_type: t.node_type.clone(),
            id: t.id,
            self_size_bytes: t.self_size_bytes,
            retained_size_bytes: t.retained_size_bytes,
            distance: t.distance,
            cycle: t.cycle,
            weak: t.weak,
            more: t.more,
            retainers: t.retainers.iter().map(RetainerNode::from).collect(),
        }
    }
}

/// One node of a retainer tree.
#[derive(Debug, Clone, Serialize)]
pub struct RetainerNode {
    /// Edge from this node to its child in the tree (the retained node), DevTools
    /// notation; empty for the tree's root (the node asked about).
    pub edge: String,
    /// Edge type (`property`, `element`, `context`, `internal`, ...).
    pub edge_type: String,
    /// The node's name as DevTools' Retainers view shows it.
    pub name: String,
    /// Class name of the node as DevTools shows it.
    pub class_name: String,
    /// V8 node type.
    pub node_type: String,
    /// V8 node id.
    pub id: u32,
    /// The node's own size (DevTools' Shallow Size), bytes.
    pub self_size_bytes: u64,
    /// What the node keeps alive (DevTools' Retained Size), bytes.
    pub retained_size_bytes: u64,
    /// Distance as the Retainers view shows it (≥ 100000000: system-only / unreachable).
    pub distance: i32,
    /// This node already appears higher on the same path (not expanded again).
    pub cycle: bool,
    /// Reached through a weak edge (the node below has only weak retainers).
    pub weak: bool,
    /// Retainers not shown (beyond `--max-retainers` per level).
    pub more: usize,
    /// The nodes that hold this one, each with its own retainers; empty at the depth limit,
    /// on a `cycle`, or when only the root holds it.
    pub retainers: Vec<RetainerNode>,
}

/// The JSON document of `leakhound retainers --json` (`schema_version` 1).
#[derive(Debug, Serialize)]
pub struct RetainersJson<'a> {
    /// Version of this document's layout: always 1.
    pub schema_version: u32,
    /// Which report this is: always `"retainers"`.
    pub kind: &'static str,
    /// The snapshot file.
    pub file: &'a str,
    /// One tree per node asked about.
    pub trees: &'a [RetainerNode],
    /// For each tree, the shortest retainer path to a GC root (the node first).
    pub paths_to_root: &'a [Vec<RetainerNode>],
}

/// Writes the trees as JSON.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_retainers_json(
    file: &str,
    trees: &[RetainerNode],
    paths: &[Vec<RetainerNode>],
    w: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *w,
        &RetainersJson {
            schema_version: 1,
            kind: "retainers",
            file,
            trees,
            paths_to_root: paths,
        },
    )?;
    writeln!(w)
}

fn line(n: &RetainerNode, depth: usize, w: &mut dyn Write) -> io::Result<()> {
    let indent = "  ".repeat(depth);
    let edge = if n.edge.is_empty() {
        String::new()
    } else {
        format!("{} in ", n.edge)
    };
    writeln!(
        w,
        "{indent}{edge}{} {} @{}  self {}  retained {}  distance {}{}",
        format::truncate(&n.class_name, 40),
        if n.name != n.class_name {
            format!("{:?}", format::truncate(&n.name, 40))
        } else {
            String::new()
        },
        n.id,
        format::bytes(n.self_size_bytes),
        format::bytes(n.retained_size_bytes),
        format::distance(n.distance),
        if n.cycle {
            "  (cycle)"
        } else if n.weak {
            "  (weak: does not keep it alive)"
        } else {
            ""
        }
    )
}

fn tree(n: &RetainerNode, depth: usize, w: &mut dyn Write) -> io::Result<()> {
    line(n, depth, w)?;
    for r in &n.retainers {
        tree(r, depth + 1, w)?;
    }
    if n.more > 0 {
        writeln!(
            w,
            "{}… {}",
            "  ".repeat(depth + 1),
            crate::format::plural(n.more as u64, "more retainer", "more retainers")
        )?;
    }
    Ok(())
}

/// Writes the trees for a person.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_retainers_text(trees: &[RetainerNode], paths: &[Vec<RetainerNode>], w: &mut dyn Write) -> io::Result<()> {
    for (i, t) in trees.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        tree(t, 0, w)?;
        if !(0..leakhound_heap::BASE_SYSTEM_DISTANCE).contains(&t.distance) {
            writeln!(
                w,
                "no path to a GC root: no object reachable from the roots retains it (its retainers are unreachable too, e.g. a cycle of its own); DevTools shows it with no distance"
            )?;
        } else if let Some(path) = paths.get(i)
            && path.len() > 1
        {
            writeln!(w, "shortest path to a GC root:")?;
            // Root side first: each retainer, then the edge to the node below it.
            let mut text = String::new();
            for p in path.iter().rev() {
                text.push_str(&format!("{} @{}", p.class_name, p.id));
                if !p.edge.is_empty() {
                    text.push_str(&format!(" {} → ", p.edge));
                }
            }
            writeln!(w, "  {text}")?;
        }
    }
    Ok(())
}
