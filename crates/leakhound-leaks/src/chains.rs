//! Chains of repeated links: a leak with no growing collection, where each new object
//! keeps the one before it through a few steps that repeat (a closure's context keeping
//! the previous value, the "replaceThing" shape; a promise whose reactions keep the next
//! link of a chain that never settles). No holder's element count grows, so the finder's
//! holders miss them; here the repetition itself is found on the retainer traces.
//!
//! A leaked object is a *link* when the steps (edge type and name, node class) from it
//! `p` steps up its trace (2 ≤ `p` ≤ 6) are the same as the `p` steps above those, and
//! the node `p` steps up is of its own kind: two whole periods repeat. Links are grouped
//! by the top of their chain (walking up whole periods while they repeat); the chain hangs
//! off the node above its top, the *anchor*. In every snapshot the chain is counted by
//! walking down from its entry (the first node above it that every snapshot has, found
//! by id) along the same steps, so its length is
//! known whichever end of it the traces reach; it is a leak when that length grows at
//! every step from the target on. Period 1 (a linked list of one class, a timer list) is
//! the finder's own `same_kind` rule.

use std::collections::{HashMap, HashSet};

use leakhound_heap::{EdgeId, EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::cluster::{build_cluster, cluster_facts};
use crate::consistency::IdIndex;
use crate::holder::holder_label;
use crate::model::{Cluster, LeakOptions, NotGrowing};
use crate::nodes::{is_internal, same_kind};
use crate::pattern::{PATTERNS, Shape, classify};
use crate::source::{ScriptMap, SourceKind, SourceRef};
use crate::trace::Traces;

/// The longest period searched.
const MAX_PERIOD: usize = 6;

/// One step of a chain's period, from a node down to the next: the edge's type and name
/// and the class of the node it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Step {
    pub(crate) edge_type: EdgeType,
    /// The edge's name (an index in decimal for element and hidden edges).
    pub(crate) name: String,
    /// DevTools class name of the node the edge reaches.
    pub(crate) class: String,
}

/// What links a chain: the kinds the pattern table and the label tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainKind {
    /// The period passes a closure context's variable (the "replaceThing" shape).
    ClosureContext,
    /// The links are promises, kept through their reactions.
    Promise,
    /// Any other repeated structure.
    Other,
}

/// A chain found in the last snapshot.
pub(crate) struct Chain {
    /// The top link (nearest the anchor on the traces).
    pub(crate) top: NodeId,
    /// The node the chain hangs off (the top link's trace parent).
    pub(crate) anchor: NodeId,
    /// The period, from a link down to the next link.
    pub(crate) period: Vec<Step>,
    /// The leaked links, in ordinal order.
    pub(crate) links: Vec<NodeId>,
    /// Every leaked object under the chain's links, in ordinal order.
    pub(crate) objects: Vec<NodeId>,
    /// What links it.
    pub(crate) kind: ChainKind,
    /// Nodes on the chain (links and the nodes between them), for the finder to drop
    /// other clusters whose holder is one of them.
    pub(crate) nodes: Vec<NodeId>,
}

/// The trace parent and the edge into `o`.
fn up(traces: &Traces, o: NodeId) -> Option<(EdgeId, NodeId)> {
    Some((traces.parent_edge(o)?, traces.parent(o)?))
}

/// Whether the edges `a` and `b` have one type and one name.
fn same_edge(s: &HeapSnapshot, a: EdgeId, b: EdgeId) -> bool {
    s.edge_type(a) == s.edge_type(b) && s.edge_name_or_index(a) == s.edge_name_or_index(b)
}

/// The period of the chain `o` is a link of: the smallest `p` in 2..=[`MAX_PERIOD`] for
/// which two whole periods above `o` repeat (see the module doc), or `None`.
fn period_of(s: &HeapSnapshot, traces: &Traces, o: NodeId) -> Option<usize> {
    // o = a[0], its ancestors a[1..], e[i] the edge into a[i].
    let mut a = vec![o];
    let mut e = Vec::with_capacity(2 * MAX_PERIOD);
    let mut cur = o;
    for _ in 0..2 * MAX_PERIOD {
        let Some((edge, p)) = up(traces, cur) else { break };
        e.push(edge);
        a.push(p);
        cur = p;
    }
    // Period 1 (a list of one kind through one edge) is the finder's own rule.
    if a.len() > 2 && same_kind(s, a[1], o) && same_edge(s, e[0], e[1]) {
        return None;
    }
    (2..=MAX_PERIOD).find(|&p| {
        a.len() > 2 * p
            && same_kind(s, a[p], o)
            && same_kind(s, a[2 * p], o)
            && (0..p).all(|i| same_edge(s, e[i], e[p + i]) && s.class_index(a[i]) == s.class_index(a[p + i]))
    })
}

/// The period's steps above a link, as raw edges' type and name index and the classes
/// of the nodes they reach (the link first): what every link of one chain repeats.
type Signature = Vec<(EdgeType, u32, u32)>;

/// The `p` steps above `o` as a [`Signature`].
fn signature(s: &HeapSnapshot, traces: &Traces, o: NodeId, p: usize) -> Option<Signature> {
    let mut out = Vec::with_capacity(p);
    let mut cur = o;
    for _ in 0..p {
        let (edge, parent) = up(traces, cur)?;
        out.push((s.edge_type(edge), s.edge_name_or_index(edge), s.class_index(cur)));
        cur = parent;
    }
    Some(out)
}

/// The link one period above `o` when the steps above `o` are `sig` and that node is of
/// `o`'s kind.
fn link_above(s: &HeapSnapshot, traces: &Traces, o: NodeId, sig: &Signature) -> Option<NodeId> {
    let mut cur = o;
    for &(t, name, class) in sig {
        let (edge, parent) = up(traces, cur)?;
        if s.edge_type(edge) != t || s.edge_name_or_index(edge) != name || s.class_index(cur) != class {
            return None;
        }
        cur = parent;
    }
    same_kind(s, cur, o).then_some(cur)
}

/// Finds the chains of the last snapshot `s`: links among the `leaked` objects (see the
/// module doc), grouped by the top of their chain. Chains with fewer than `min_links`
/// leaked links are left out.
pub(crate) fn find_chains(s: &HeapSnapshot, traces: &Traces, leaked: &[bool], min_links: usize) -> Vec<Chain> {
    // Links: leaked, reached, not strings or V8 internals, and periodic.
    let mut period: HashMap<NodeId, usize> = HashMap::new();
    for &o in traces.order() {
        if !leaked[o as usize] || s.is_string(o) || is_internal(s, o) {
            continue;
        }
        if let Some(p) = period_of(s, traces, o) {
            period.insert(o, p);
        }
    }
    if period.is_empty() {
        return Vec::new();
    }
    // The top of each link's chain, walking up whole periods (memoized: traces list
    // parents first, so an ancestor link is settled before its descendants).
    let mut top_of: HashMap<NodeId, NodeId> = HashMap::new();
    let mut by_top: HashMap<(NodeId, usize), Vec<NodeId>> = HashMap::new();
    let mut order: Vec<(NodeId, usize)> = Vec::new();
    for &o in traces.order() {
        let Some(&p) = period.get(&o) else { continue };
        let Some(sig) = signature(s, traces, o, p) else {
            continue;
        };
        let mut path = vec![o];
        let mut cur = o;
        let top = loop {
            if let Some(&t) = top_of.get(&cur).filter(|_| cur != o) {
                break t;
            }
            match link_above(s, traces, cur, &sig) {
                Some(a) if path.len() < 10_000_000 => {
                    path.push(a);
                    cur = a;
                }
                _ => break cur,
            }
        };
        for x in path {
            top_of.insert(x, top);
        }
        let key = (top, p);
        by_top.entry(key).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        by_top.get_mut(&key).expect("inserted").push(o);
    }
    let mut chains = Vec::new();
    for key in order {
        let (top, p) = key;
        let links = &by_top[&key];
        if links.len() < min_links {
            continue;
        }
        let Some((_, anchor)) = up(traces, top) else {
            continue;
        };
        // The period, read down from the top link's first descendant link: the steps
        // above any link below the top.
        let sample = links[0];
        let mut steps = Vec::with_capacity(p);
        let mut cur = sample;
        for _ in 0..p {
            let Some((edge, parent)) = up(traces, cur) else { break };
            steps.push(Step {
                edge_type: s.edge_type(edge),
                name: s.edge_name(edge).into_owned(),
                class: s.class(cur).name.clone(),
            });
            cur = parent;
        }
        if steps.len() != p {
            continue;
        }
        steps.reverse();
        let kind = if steps.iter().any(|st| st.edge_type == EdgeType::Context) {
            ChainKind::ClosureContext
        } else if s.class(sample).name == "Promise" {
            ChainKind::Promise
        } else {
            ChainKind::Other
        };
        chains.push(Chain {
            top,
            anchor,
            period: steps,
            links: Vec::new(),
            objects: Vec::new(),
            kind,
            nodes: Vec::new(),
        });
    }
    if chains.is_empty() {
        return chains;
    }
    // Links, nodes and objects of each chain: every node whose trace passes a link of
    // the chain (parents first). A chain whose top is under another chain is that chain
    // seen from one of its phases (the closures of a chain of objects): left out.
    let chain_of_top: HashMap<NodeId, usize> = chains.iter().enumerate().map(|(i, c)| (c.top, i)).collect();
    let mut nested = vec![false; chains.len()];
    let mut under: Vec<u32> = vec![u32::MAX; s.node_count()];
    for &o in traces.order() {
        let from_parent = traces.parent(o).map_or(u32::MAX, |p| under[p as usize]);
        let own = top_of
            .get(&o)
            .and_then(|t| chain_of_top.get(t))
            .map_or(u32::MAX, |&i| i as u32);
        let c = if from_parent != u32::MAX {
            if own != u32::MAX && own != from_parent {
                nested[own as usize] = true;
            }
            from_parent
        } else {
            own
        };
        under[o as usize] = c;
        if c == u32::MAX {
            continue;
        }
        let chain = &mut chains[c as usize];
        chain.nodes.push(o);
        if own == c && leaked[o as usize] && period.contains_key(&o) {
            chain.links.push(o);
        }
        if leaked[o as usize] {
            chain.objects.push(o);
        }
    }
    let mut i = 0;
    chains.retain(|_| {
        i += 1;
        !nested[i - 1]
    });
    for c in &mut chains {
        c.links.sort_unstable();
        c.objects.sort_unstable();
        c.nodes.sort_unstable();
    }
    chains.retain(|c| c.links.len() >= min_links);
    chains
}

/// The longest way from the chain's entry (a node of every snapshot) down to its top.
const MAX_ENTRY_STEPS: usize = 24;

/// Where the chain is entered in every snapshot: the first node above its top on the
/// trace that every snapshot has (by id: what holds the newest link may itself be new, a
/// resolve function replaced at every request), within [`MAX_ENTRY_STEPS`], with the
/// steps from it down to the top; else the anchor and the one edge into the top.
fn entry_of(s: &HeapSnapshot, traces: &Traces, ids: &[IdIndex], chain: &Chain) -> (u32, Vec<Step>) {
    let step = |e: EdgeId, to: NodeId| Step {
        edge_type: s.edge_type(e),
        name: s.edge_name(e).into_owned(),
        class: s.class(to).name.clone(),
    };
    let mut steps = Vec::new();
    let mut cur = chain.top;
    while steps.len() < MAX_ENTRY_STEPS {
        let Some((e, p)) = up(traces, cur) else { break };
        steps.push(step(e, cur));
        let id = s.id(p);
        if ids.iter().all(|ix| ix.contains(id)) {
            steps.reverse();
            return (id, steps);
        }
        cur = p;
    }
    let e = traces.parent_edge(chain.top);
    (s.id(chain.anchor), e.map(|e| step(e, chain.top)).into_iter().collect())
}

/// The chain's length in snapshot `s`: from its entry node (by id, through `ids`), down
/// the entry steps to the top, then whole periods while each step's edge and class
/// match; 0 when the entry is not in `s`.
fn chain_length(s: &HeapSnapshot, ids: &IdIndex, entry: &(u32, Vec<Step>), chain: &Chain) -> u64 {
    let Some(mut cur) = ids.get(entry.0) else { return 0 };
    let follow = |from: NodeId, t: EdgeType, name: &str, class: &str| -> Option<NodeId> {
        s.edges(from)
            .find(|&e| s.edge_type(e) == t && s.edge_name(e) == name && s.class(s.edge_target(e)).name == class)
            .map(|e| s.edge_target(e))
    };
    for st in &entry.1 {
        match follow(cur, st.edge_type, &st.name, &st.class) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    let mut count = 1u64;
    let limit = s.node_count() as u64;
    'links: while count < limit {
        let mut x = cur;
        for st in &chain.period {
            match follow(x, st.edge_type, &st.name, &st.class) {
                Some(next) => x = next,
                None => break 'links,
            }
        }
        count += 1;
        cur = x;
    }
    count
}

/// The name of the chain's holder: for a chain of closure contexts, the context
/// variable that links it (`previous`); else what holds its top (`queueTail`).
pub(crate) fn chain_label(s: &HeapSnapshot, traces: &Traces, chain: &Chain) -> String {
    if chain.kind == ChainKind::ClosureContext
        && let Some(st) = chain.period.iter().find(|st| st.edge_type == EdgeType::Context)
    {
        return st.name.clone();
    }
    // The variable (or global) nearest above the top: what holds the chain's end.
    let mut cur = chain.top;
    for _ in 0..MAX_ENTRY_STEPS {
        let Some((e, p)) = up(traces, cur) else { break };
        if s.edge_type(e) == EdgeType::Context
            || (s.edge_type(e) == EdgeType::Property && crate::nodes::is_global_object(s, p))
        {
            return holder_label(s, traces, cur);
        }
        cur = p;
    }
    holder_label(s, traces, chain.top)
}

/// For a chain of closure contexts, the function whose scope is the linking context
/// (from the context's `scope_info` to the SharedFunctionInfo of that scope, to a
/// closure of it with a location): the function that creates each link.
pub(crate) fn context_owner_source(s: &HeapSnapshot, scripts: &ScriptMap, chain: &Chain) -> Option<SourceRef> {
    if chain.kind != ChainKind::ClosureContext {
        return None;
    }
    // The linking context: walking the period down from the top link, the node the
    // variable's edge leaves from.
    let mut x = chain.top;
    let mut ctx = None;
    let mut var = String::new();
    for st in &chain.period {
        if st.edge_type == EdgeType::Context {
            ctx = Some(x);
            var = st.name.clone();
            break;
        }
        x = s
            .edges(x)
            .find(|&e| s.edge_type(e) == st.edge_type && s.edge_name(e) == st.name.as_str())
            .map(|e| s.edge_target(e))?;
    }
    let ctx = ctx?;
    let scope_info = s
        .edges(ctx)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "scope_info")
        .map(|e| s.edge_target(e))?;
    // A closure whose SharedFunctionInfo's scope info is this one: its `shared` edge,
    // then the SFI's `name_or_scope_info` (V8 ≥ 9) or `scope_info` edge.
    for o in 0..s.node_count() as NodeId {
        if s.node_type(o) != NodeType::Closure {
            continue;
        }
        let Some(sfi) = s
            .edges(o)
            .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "shared")
            .map(|e| s.edge_target(e))
        else {
            continue;
        };
        let owns = s.edges(sfi).any(|e| {
            s.edge_target(e) == scope_info
                && s.edge_type(e) == EdgeType::Internal
                && matches!(s.edge_name(e).as_ref(), "name_or_scope_info" | "scope_info")
        });
        if owns && let Some(loc) = s.location(o) {
            let name = s.raw_name(o);
            let name = if name.is_empty() { "(anonymous)" } else { name };
            return scripts.resolve(
                loc,
                format!("function {name} (its `{var}` links each closure context to the one before)"),
                SourceKind::HolderOwner,
            );
        }
    }
    None
}

/// The chains of the last snapshot described as clusters when their length grows at
/// every step from the target on (by at least `opts.min_growth`), else as not growing;
/// with the V8 ids of every node on a reported chain (a cluster the finder found with
/// its holder among them is this chain seen from inside).
pub(crate) fn chain_clusters(
    snaps: &[&HeapSnapshot],
    ids: &[IdIndex],
    traces: &Traces,
    leaked: &[bool],
    scripts: &ScriptMap,
    opts: &LeakOptions,
) -> (Vec<Cluster>, Vec<NotGrowing>, HashSet<u32>) {
    let s = snaps[snaps.len() - 1];
    let min_links = (opts.min_growth as usize).max(2);
    let chains = find_chains(s, traces, leaked, min_links);
    let mut clusters = Vec::new();
    let mut not_growing = Vec::new();
    let mut on_chains = HashSet::new();
    for chain in &chains {
        let entry = entry_of(s, traces, ids, chain);
        let counts: Vec<u64> = snaps
            .iter()
            .zip(ids)
            .map(|(snap, ix)| chain_length(snap, ix, &entry, chain))
            .collect();
        let last_i = counts.len() - 1;
        let growing = (2..counts.len()).all(|k| counts[k] > counts[k - 1])
            && counts[last_i].saturating_sub(counts[1]) >= opts.min_growth;
        let label = chain_label(s, traces, chain);
        let root_class = kind_name(s, chain.links[0]);
        if !growing {
            not_growing.push(NotGrowing {
                holder: label,
                root_class,
                counts_per_snapshot: counts,
            });
            continue;
        }
        on_chains.extend(chain.nodes.iter().map(|&n| s.id(n)));
        let mut cluster = build_cluster(
            s,
            traces,
            scripts,
            &label,
            &root_class,
            false,
            &[(chain.top, &chain.links[..], &chain.objects[..])],
            counts,
            vec![None; snaps.len()],
            opts,
            PATTERNS,
        );
        let shape = match chain.kind {
            ChainKind::ClosureContext => Shape::ContextChain,
            ChainKind::Promise => Shape::PromiseChain,
            ChainKind::Other => Shape::LinkChain,
        };
        let sample = chain
            .links
            .iter()
            .copied()
            .max_by_key(|&r| (s.retained_size(r), std::cmp::Reverse(r)))
            .unwrap_or(chain.top);
        let mut facts = cluster_facts(
            s,
            traces,
            chain.top,
            &label,
            sample,
            cluster.count,
            cluster.retained_size_bytes,
            cluster.external_share,
        );
        facts.shape = shape;
        let pattern = classify(PATTERNS, &facts);
        cluster.pattern = pattern;
        cluster.fix_hint = pattern.fix_hint();
        let linker = match chain.kind {
            ChainKind::ClosureContext => {
                cluster.holder_class = "(closure context chain)".into();
                context_owner_source(s, scripts, chain)
            }
            ChainKind::Promise => async_function_source(s, traces, scripts, chain),
            ChainKind::Other => None,
        };
        if let Some(src) = linker {
            cluster.sources.retain(|x| x.location() != src.location());
            cluster.sources.insert(0, src);
            cluster.sources.sort_by_key(SourceRef::origin_rank);
            cluster.source = cluster.sources.first().cloned();
        }
        clusters.push(cluster);
    }
    (clusters, not_growing, on_chains)
}

/// For a promise chain, the async function whose suspended calls are on it (a
/// suspended call's generator object has an internal `function` edge to the function):
/// the function whose calls make each link. Searched above the chain's top and among
/// its objects.
fn async_function_source(s: &HeapSnapshot, traces: &Traces, scripts: &ScriptMap, chain: &Chain) -> Option<SourceRef> {
    let mut near: Vec<NodeId> = Vec::new();
    let mut cur = chain.top;
    for _ in 0..MAX_ENTRY_STEPS {
        let Some((_, p)) = up(traces, cur) else { break };
        near.push(p);
        cur = p;
    }
    near.extend(chain.objects.iter().copied());
    let mut best: Option<SourceRef> = None;
    for o in near {
        let Some(f) = s
            .edges(o)
            .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "function")
            .map(|e| s.edge_target(e))
            .filter(|&f| s.node_type(f) == NodeType::Closure)
        else {
            continue;
        };
        let Some(loc) = s.location(f) else { continue };
        let Some(r) = scripts.resolve(
            loc,
            format!(
                "async function {} (each call's promise waits on the next)",
                crate::nodes::fn_name(s, f)
            ),
            SourceKind::Closure,
        ) else {
            continue;
        };
        if best.as_ref().is_none_or(|b| r.origin_rank() < b.origin_rank()) {
            best = Some(r);
        }
        if best.as_ref().is_some_and(|b| b.origin_rank() == 0) {
            break;
        }
    }
    best
}

/// How a link is named: its class, or for a closure the function as shown.
fn kind_name(s: &HeapSnapshot, o: NodeId) -> String {
    if s.node_type(o) == NodeType::Closure {
        crate::nodes::leak_key(s, o).1
    } else {
        s.class(o).name.clone()
    }
}
