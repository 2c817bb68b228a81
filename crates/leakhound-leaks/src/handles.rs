//! Objects kept only by native handles: a socket, a server, a file watcher or a zlib
//! stream is kept alive by its libuv handle, which Node reports in a heap snapshot as a
//! GC root of its own (a `Node / TCPSocketWrap` node under the snapshot's root, its
//! `native_to_javascript` edge to the JS wrapper, whose `owner_symbol` property is the
//! `Socket`). Every such handle is its own root, so no dominator and no holder names a
//! container: the finder's walk up from what accumulates reaches the root and stops.
//! Here the handles are grouped by their kind and the JS type they keep (the wrapper's
//! owner, else the wrapper), counted in every snapshot, and reported when that number
//! grows at every step from the target on. A TCP socket's two ends are told apart: a
//! socket a server accepted has its `_server` (the `net.Server` or `http.Server`), an
//! outgoing connection (one an `http.Agent` opened) has none, so a leak of one is never
//! counted with, or blamed on, the other (`TCPSocketWrap handles (client sockets)`,
//! `TCPSocketWrap handles (server sockets accepted on 127.0.0.1:8080)`).
//!
//! Where they are made: a handle keeps Node's own objects (the socket, its state, an
//! Agent's listeners), rarely a function of the app's code, so without allocation stacks
//! the cluster's source is Node's internals and [`crate::Cluster::source_unknown_why`] says so.
//! With them (`hunt --track-allocations`), the stacks of the group's youngest kept objects
//! (made after the snapshot before the last, see `alloc.rs`) give the app's frame that
//! created them.

use std::collections::HashMap;

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::{build_cluster, cluster_facts};
use crate::model::{Cluster, LeakOptions, NotGrowing};
use crate::nodes::fn_name;
use crate::pattern::{PATTERNS, Shape, classify};
use crate::source::{ScriptMap, SourceKind, SourceRef};
use crate::trace::Traces;

/// The prefix Node gives its embedder nodes' names.
const NODE_PREFIX: &str = "Node / ";

/// The handles under the snapshot's root: for each, the handle node and what it keeps
/// (the JS wrapper's owner, else the wrapper).
fn handles(s: &HeapSnapshot) -> Vec<(NodeId, NodeId)> {
    let mut out = Vec::new();
    for e in s.edges(s.root()) {
        let h = s.edge_target(e);
        if !matches!(s.node_type(h), NodeType::Synthetic | NodeType::Native) || !s.raw_name(h).starts_with(NODE_PREFIX)
        {
            continue;
        }
        let Some(wrapper) = s
            .edges(h)
            .find(|&x| s.edge_type(x) == EdgeType::Internal && s.edge_name(x) == "native_to_javascript")
            .map(|x| s.edge_target(x))
            .filter(|&w| s.node_type(w) == NodeType::Object)
        else {
            continue;
        };
        let owner = s
            .edges(wrapper)
            .find(|&x| s.edge_type(x) == EdgeType::Property && s.edge_name(x) == "<symbol owner_symbol>")
            .map(|x| s.edge_target(x))
            .filter(|&o| s.node_type(o) == NodeType::Object);
        out.push((h, owner.unwrap_or(wrapper)));
    }
    out
}

/// The handle kind as a user reads it: the embedder node's name without `Node / `.
fn kind_of(s: &HeapSnapshot, h: NodeId) -> &str {
    s.raw_name(h).strip_prefix(NODE_PREFIX).unwrap_or(s.raw_name(h))
}

/// Which end of a connection a kept socket is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Side {
    /// Not a socket (a watcher, a server, a zlib stream).
    NotASocket,
    /// An outgoing connection: a socket with no `_server` (`net.connect`, an `http.Agent`).
    Client,
    /// A socket a server accepted: its `_server` is that server, by V8 id (the same in
    /// every snapshot of a series), with the address it listens on when the snapshot has
    /// it (`_connectionKey`, `4:127.0.0.1:8080`, without the family; the host alone when the
    /// server asked for any free port).
    Server { server_id: u32, address: Option<String> },
}

impl Side {
    /// The group's label: `{kind} handles`, the side in parentheses for sockets.
    fn label(&self, kind: &str) -> String {
        match self {
            Side::NotASocket => format!("{kind} handles"),
            Side::Client => format!("{kind} handles (client sockets)"),
            Side::Server { address: Some(a), .. } => format!("{kind} handles (server sockets accepted on {a})"),
            Side::Server { address: None, .. } => format!("{kind} handles (server sockets)"),
        }
    }
}

/// The side of `kept` (a handle's JS object, kept by a handle of `kind`): a
/// `net.Socket`'s `_server` (or `server`) is the server that accepted it; a TCP socket
/// without one is a client socket (a pipe without one, such as the process's stdio, is
/// neither).
fn side_of(s: &HeapSnapshot, kind: &str, kept: NodeId) -> Side {
    if !s.class(kept).name.contains("Socket") {
        return Side::NotASocket;
    }
    let tcp = matches!(kind, "TCPSocketWrap" | "TLSWrap");
    let server = s
        .edges(kept)
        .find(|&e| {
            s.edge_type(e) == EdgeType::Property
                && matches!(&*s.edge_name(e), "_server" | "server")
                && s.node_type(s.edge_target(e)) == NodeType::Object
        })
        .map(|e| s.edge_target(e));
    let Some(server) = server else {
        return if tcp { Side::Client } else { Side::NotASocket };
    };
    let address = s
        .edges(server)
        .find(|&e| s.edge_type(e) == EdgeType::Property && s.edge_name(e) == "_connectionKey")
        .map(|e| s.edge_target(e))
        .filter(|&k| s.is_string(k))
        .map(|k| {
            let key = string_text(s, k);
            // `4:127.0.0.1:8080` / `6:::1:8080`: the family, then host and the port asked
            // for (0 for any free port: then the host alone).
            let address = key.split_once(':').map_or(key.as_str(), |(_, rest)| rest);
            address.strip_suffix(":0").unwrap_or(address).to_owned()
        })
        .filter(|a| !a.is_empty());
    Side::Server {
        server_id: s.id(server),
        address,
    }
}

/// The app's function a server runs for what it accepts: its `request` listener (an
/// `http.Server`), else its `connection` listener (a `net.Server`), the first in the app's
/// own code; `None` when neither is.
fn server_listener(s: &HeapSnapshot, scripts: &ScriptMap, server: NodeId) -> Option<SourceRef> {
    let prop = |o: NodeId, name: &str| {
        s.edges(o)
            .find(|&e| s.edge_type(e) == EdgeType::Property && s.edge_name(e) == name)
            .map(|e| s.edge_target(e))
    };
    let events = prop(server, "_events")?;
    for event in ["request", "connection"] {
        let Some(v) = prop(events, event) else { continue };
        // One listener, or an array of them.
        let fns: Vec<NodeId> = if s.node_type(v) == NodeType::Closure {
            vec![v]
        } else {
            s.edges(v)
                .filter(|&e| s.edge_type(e) == EdgeType::Element)
                .map(|e| s.edge_target(e))
                .filter(|&f| s.node_type(f) == NodeType::Closure)
                .collect()
        };
        for f in fns {
            let Some(loc) = s.location(f) else { continue };
            let Some(r) = scripts.resolve(
                loc,
                format!(
                    "function {} (the {event} listener of the server that accepted them)",
                    fn_name(s, f)
                ),
                SourceKind::HolderOwner,
            ) else {
                continue;
            };
            if r.origin_rank() == 0 {
                return Some(r);
            }
        }
    }
    None
}

/// The text of a short string: a sequential string's name, or a concatenated one's
/// pieces in order (`first`, then `second`), at most 256 characters.
fn string_text(s: &HeapSnapshot, o: NodeId) -> String {
    let mut out = String::new();
    let mut stack = vec![o];
    let mut steps = 0;
    while let Some(x) = stack.pop() {
        steps += 1;
        if steps > 64 || out.len() > 256 {
            break;
        }
        match s.node_type(x) {
            NodeType::ConsString => {
                let part = |name: &str| s.edges(x).find(|&e| s.edge_name(e) == name).map(|e| s.edge_target(e));
                // `second` below `first`: popped after it.
                stack.extend(part("second"));
                stack.extend(part("first"));
            }
            NodeType::SlicedString => return String::new(),
            _ => out.push_str(s.raw_name(x)),
        }
    }
    out
}

/// Whether two sides are the same group in two snapshots of a series (the address may be
/// missing from one of them).
fn same_side(a: &Side, b: &Side) -> bool {
    match (a, b) {
        (Side::Server { server_id: x, .. }, Side::Server { server_id: y, .. }) => x == y,
        _ => a == b,
    }
}

/// Groups of leaked objects kept by native handles, by handle kind and kept class, as
/// clusters when their number grows at every step from the target on (by at least
/// `opts.min_growth`), else as not growing. `leaked` marks the last snapshot's leaked
/// objects.
pub(crate) fn handle_clusters(
    snaps: &[&HeapSnapshot],
    traces: &Traces,
    leaked: &[bool],
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> (Vec<Cluster>, Vec<NotGrowing>) {
    let s = snaps[snaps.len() - 1];
    // (kind, kept class, side) -> (first handle, kept objects that are leaked)
    type Key = (String, String, Side);
    let mut groups: Vec<(Key, NodeId, Vec<NodeId>)> = Vec::new();
    let mut group_of_key: HashMap<Key, usize> = HashMap::new();
    let mut group_of_handle: HashMap<NodeId, usize> = HashMap::new();
    // Every handle's kept object with its key (leaked or not): the youngest ones are the
    // group's allocation-stack witnesses.
    let all: Vec<(NodeId, NodeId, Key)> = handles(s)
        .into_iter()
        .map(|(h, kept)| {
            (
                h,
                kept,
                (
                    kind_of(s, h).to_owned(),
                    s.class(kept).name.clone(),
                    side_of(s, kind_of(s, h), kept),
                ),
            )
        })
        .collect();
    for (h, kept, key) in &all {
        if !leaked[*kept as usize] {
            continue;
        }
        let g = *group_of_key.entry(key.clone()).or_insert_with(|| {
            groups.push((key.clone(), *h, Vec::new()));
            groups.len() - 1
        });
        groups[g].2.push(*kept);
        group_of_handle.insert(*h, g);
    }
    if groups.iter().all(|g| (g.2.len() as u64) < opts.min_growth.max(2)) {
        return (Vec::new(), Vec::new());
    }
    // The leaked objects whose trace starts at a handle of each group.
    let mut objects: Vec<Vec<NodeId>> = vec![Vec::new(); groups.len()];
    let mut under: Vec<u32> = vec![u32::MAX; s.node_count()];
    for &o in traces.order() {
        let Some(p) = traces.parent(o) else { continue };
        let g = if p == s.root() {
            group_of_handle.get(&o).map_or(u32::MAX, |&g| g as u32)
        } else {
            under[p as usize]
        };
        under[o as usize] = g;
        if g != u32::MAX && leaked[o as usize] {
            objects[g as usize].push(o);
        }
    }
    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    for (g, ((kind, class, side), first, mut kept)) in groups.into_iter().enumerate() {
        kept.sort_unstable();
        let counts: Vec<u64> = snaps
            .iter()
            .map(|snap| {
                handles(snap)
                    .into_iter()
                    .filter(|&(h, k)| {
                        kind_of(snap, h) == kind
                            && snap.class(k).name == class
                            && same_side(&side_of(snap, &kind, k), &side)
                    })
                    .count() as u64
            })
            .collect();
        let last_i = counts.len() - 1;
        let growing = (2..counts.len()).all(|k| counts[k] > counts[k - 1])
            && counts[last_i].saturating_sub(counts[1]) >= opts.min_growth;
        let label = side.label(&kind);
        if !growing {
            not_growing.push(NotGrowing {
                holder: label,
                root_class: class,
                counts_per_snapshot: counts,
            });
            continue;
        }
        let objs = &objects[g];
        let mut cluster = build_cluster(
            s,
            traces,
            scripts,
            &label,
            &class,
            false,
            &[(first, &kept[..], &objs[..])],
            counts,
            vec![None; snaps.len()],
            opts,
            PATTERNS,
        );
        let sample = kept
            .iter()
            .copied()
            .max_by_key(|&r| (s.retained_size(r), std::cmp::Reverse(r)))
            .unwrap_or(first);
        let mut facts = cluster_facts(
            s,
            traces,
            first,
            &label,
            sample,
            cluster.count,
            cluster.retained_size_bytes,
            cluster.external_share,
        );
        facts.shape = Shape::NativeHandle;
        cluster.holder_class = s.raw_name(first).to_owned();
        // The trace's handle (the root's child) is the holder of its sample.
        for (k, t) in cluster.trace.iter_mut().enumerate() {
            t.is_holder = k == 1;
        }
        facts.kept_classes = cluster.objects.iter().map(|c| c.class_name.as_str()).collect();
        let pattern = classify(PATTERNS, &facts);
        cluster.pattern = pattern;
        cluster.fix_hint = pattern.fix_hint();
        // Who made them: the allocation stacks of the group's kept objects younger than
        // every leaked one (see `alloc.rs` for why only those).
        let youngest = kept.iter().map(|&k| s.id(k)).max().unwrap_or(u32::MAX);
        let witnesses: Vec<NodeId> = all
            .iter()
            .filter(|(_, k, key)| s.id(*k) > youngest && key.0 == kind && key.1 == class && same_side(&key.2, &side))
            .map(|(_, k, _)| *k)
            .collect();
        // A server's sockets are made by Node as it accepts: the app's code that handles
        // them is the server's listener.
        if let Side::Server { server_id, .. } = &side
            && let Some(listener) = s
                .node_by_id(*server_id)
                .and_then(|srv| server_listener(s, scripts, srv))
        {
            cluster.sources.retain(|x| x.location() != listener.location());
            cluster.sources.insert(0, listener);
            cluster.sources.sort_by_key(SourceRef::origin_rank);
            cluster.source = cluster.sources.first().cloned();
        }
        let stacks = crate::alloc::allocation_stacks(s, &witnesses);
        if !stacks.is_empty() {
            crate::alloc::prefer_allocation_source(&mut cluster.sources, &stacks);
            cluster.source = cluster.sources.first().cloned();
            cluster.allocation_stacks = stacks;
        }
        clusters.push(cluster);
    }
    (clusters, not_growing)
}
