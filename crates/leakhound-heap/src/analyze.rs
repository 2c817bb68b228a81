//! The analysis DevTools runs when it loads a snapshot (`HeapSnapshot.initialize`), step
//! by step and in the same order, because later steps see the effects of earlier ones
//! (renamed detached nodes, adjusted self sizes). Each step cites the section of
//! `heapsnapshot-format.md` and the DevTools method it follows.

use std::collections::HashMap;

use crate::bits::BitVec;
use crate::classes;
use crate::dominator_tree::DominatorTree;
use crate::dominators::{self, Graph};
use crate::error::{Section, Warning};
use crate::ids::NodeId;
use crate::parse::Progress;
use crate::snapshot::{
    BASE_SYSTEM_DISTANCE, EdgeType, HeapSnapshot, NO_DISTANCE, NodeType, RETAINED_SPILLED, Statistics,
};
use crate::strings::StrSet;

const ATTACHED: u8 = 1;
const DETACHED: u8 = 2;

/// Parsed WeakMap ephemeron edge names: string index → (suffix id, table id).
pub(crate) struct WeakMapNames {
    by_string: HashMap<u32, (u32, u64)>,
}

impl WeakMapNames {
    pub(crate) fn new(s: &HeapSnapshot) -> Self {
        let mut by_string = HashMap::new();
        let mut suffix_ids: HashMap<String, u32> = HashMap::new();
        s.strings.for_each(|i, text| {
            if let Some((suffix, table)) = parse_weakmap_edge_name(text) {
                let next = suffix_ids.len() as u32;
                let id = *suffix_ids.entry(suffix.to_owned()).or_insert(next);
                by_string.insert(i, (id, table));
            }
        });
        WeakMapNames { by_string }
    }
    #[inline]
    pub(crate) fn get(&self, string_index: u32) -> Option<(u32, u64)> {
        if self.by_string.is_empty() {
            return None;
        }
        self.by_string.get(&string_index).copied()
    }
}

/// Matches `^\d+( / part of key \(.*? @\d+\) -> value \(.*? @\d+\) pair in WeakMap \(table
/// @(\d+)\))$` (JS semantics: `.` excludes line terminators); returns (group 1, table id).
pub(crate) fn parse_weakmap_edge_name(s: &str) -> Option<(&str, u64)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let suffix = &s[digits..];
    let rest = suffix.strip_prefix(" / part of key (")?;
    let rest = rest.strip_suffix(')')?;
    let table_digits = rest.bytes().rev().take_while(u8::is_ascii_digit).count();
    if table_digits == 0 {
        return None;
    }
    let table: u64 = rest[rest.len() - table_digits..].parse().ok()?;
    let middle = rest[..rest.len() - table_digits].strip_suffix(" pair in WeakMap (table @")?;
    // middle = A " @" D1 ") -> value (" B " @" D2 ")"
    let middle = middle.strip_suffix(')')?;
    let d2 = middle.bytes().rev().take_while(u8::is_ascii_digit).count();
    if d2 == 0 {
        return None;
    }
    let left = middle[..middle.len() - d2].strip_suffix(" @")?;
    let is_line_term = |c: char| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
    if left.contains(is_line_term) {
        return None;
    }
    let sep = ") -> value (";
    let ok = left.match_indices(sep).any(|(p, _)| {
        let a = &left[..p];
        let d1 = a.bytes().rev().take_while(u8::is_ascii_digit).count();
        d1 > 0 && a[..a.len() - d1].ends_with(" @")
    });
    if ok { Some((suffix, table)) } else { None }
}

/// Well-known string indices used by name tests.
pub(crate) struct Names {
    pub(crate) document_dom_trees: StrSet,
    pub(crate) external_string_data: StrSet,
    pub(crate) sloppy_function_map: StrSet,
    pub(crate) native_context: StrSet,
    pub(crate) map_descriptors: StrSet,
    pub(crate) array_buffer_data: StrSet,
    pub(crate) array: StrSet,
    pub(crate) elements: StrSet,
}

impl Names {
    pub(crate) fn new(s: &HeapSnapshot) -> Self {
        let st = &s.strings;
        Names {
            document_dom_trees: StrSet::of(st, "(Document DOM trees)"),
            external_string_data: StrSet::of(st, "system / ExternalStringData"),
            sloppy_function_map: StrSet::of(st, "sloppy_function_map"),
            native_context: StrSet::of(st, "system / NativeContext"),
            map_descriptors: StrSet::of(st, "(map descriptors)"),
            array_buffer_data: StrSet::of(st, "system / JSArrayBufferData"),
            array: StrSet::of(st, "Array"),
            elements: StrSet::of(st, "elements"),
        }
    }
}

/// DevTools' load-time analysis; `distances` false skips the distances and the
/// Statistics breakdown ([`crate::Analysis::Retained`]).
pub(crate) fn analyze(
    s: &mut HeapSnapshot,
    warnings: &mut Vec<Warning>,
    distances: bool,
    progress: &mut dyn FnMut(Progress),
) {
    let names = Names::new(s);
    progress(Progress::Step("propagating DOM state"));
    init_detachedness(s);
    propagate_dom_state(s);
    compact_detachedness(s);
    let weakmaps = WeakMapNames::new(s);
    // DevTools runs these steps one after another; each reads only what earlier ones
    // wrote, so independent ones are the two sides of a `rayon::join` (run side by side
    // when the pool has an idle thread, else one after the other on this one). Flags,
    // then the essential edges (which need the page-object flag), on one side; shallow
    // sizes (which only move self sizes, kept aside meanwhile), then the statistics
    // breakdown (which reads the moved sizes and leaves only totals behind), on the
    // other. The dominators then run alone, outside any join: their working memory is
    // the analysis' peak, so nothing else is allocated beside them. Class names beside
    // distances come last.
    progress(Progress::Step("calculating node flags, shallow sizes and statistics"));
    let mut self_size = std::mem::take(&mut s.self_size);
    let ((page_objects, (essential, has_in)), statistics) = {
        let snap: &HeapSnapshot = s;
        rayon::join(
            || {
                let page_objects = calculate_flags(snap, &names);
                let essential = essential_edges(snap, &page_objects, &weakmaps);
                (page_objects, essential)
            },
            || {
                calculate_shallow_sizes(snap, &names, &mut self_size);
                distances.then(|| calculate_statistics(snap, &self_size, &names))
            },
        )
    };
    s.self_size = self_size;
    s.statistics = statistics.unwrap_or_default();
    s.page_objects = page_objects;
    progress(Progress::Step("building dominators"));
    let doms = dominators::compute(
        &Graph {
            first_edge: &s.first_edge,
            edge_to: &s.edge_to,
            essential: &essential,
            has_in: &has_in,
        },
        s.root,
    );
    drop((essential, has_in));
    if doms.unreachable > 0 {
        warnings.push(Warning {
            section: Section::Edges,
            message: if doms.unreachable == 1 {
                "1 node is unreachable from the root".to_owned()
            } else {
                format!("{} nodes are unreachable from the root", doms.unreachable)
            },
        });
    }
    s.unreachable_count = doms.unreachable;
    if distances {
        progress(Progress::Step("calculating class names and distances"));
        let (classes, dist) = {
            let snap: &HeapSnapshot = s;
            rayon::join(
                || classes::compute_classes(snap),
                || calculate_distances(snap, &names, &weakmaps),
            )
        };
        s.distance = dist;
        (s.classes, s.class_of, s.interface_definitions) = classes;
    } else {
        progress(Progress::Step("calculating class names"));
        (s.classes, s.class_of, s.interface_definitions) = classes::compute_classes(s);
    }
    progress(Progress::Step("calculating retained sizes"));
    // 32 bits per node; sums of 4 GiB and more spill into a map (a handful of nodes).
    let mut spilled: HashMap<NodeId, u64> = HashMap::new();
    let mut retained: Vec<u32> = (s.self_size.iter().enumerate())
        .map(|(o, &x)| {
            if x < RETAINED_SPILLED - 1 {
                return x;
            }
            spilled.insert(o as NodeId, x as u64);
            RETAINED_SPILLED
        })
        .collect();
    for &o in doms.order[1..].iter().rev() {
        let d = doms.idom[o as usize];
        let value = match retained[o as usize] {
            RETAINED_SPILLED => spilled.get(&o).copied().unwrap_or(0),
            r => r as u64,
        };
        match retained[d as usize] {
            RETAINED_SPILLED => *spilled.entry(d).or_insert(0) += value,
            r => {
                let sum = r as u64 + value;
                if sum < (RETAINED_SPILLED - 1) as u64 {
                    retained[d as usize] = sum as u32;
                } else {
                    retained[d as usize] = RETAINED_SPILLED;
                    spilled.insert(d, sum);
                }
            }
        }
    }
    drop(doms.order);
    s.retained = retained;
    s.retained_spilled = spilled;
    s.dominator = doms.idom;
    add_statistics_totals(s);
    progress(Progress::Step("building the dominator tree"));
    s.dominator_tree = DominatorTree::build(&s.dominator, s.root);
}

/// The light analysis of [`crate::Analysis::Graph`]: DOM state (it renames detached
/// native nodes, which changes their class). Classes come later, from
/// [`HeapSnapshot::reclassify`] with the interface definitions to match.
pub(crate) fn analyze_graph(s: &mut HeapSnapshot, progress: &mut dyn FnMut(Progress)) {
    progress(Progress::Step("propagating DOM state"));
    init_detachedness(s);
    propagate_dom_state(s);
    compact_detachedness(s);
}

/// `initDetachednessAndClassIndex` (§3.1): seed from the `detachedness` field, or for old
/// snapshots mark native nodes named `Detached …`.
fn init_detachedness(s: &mut HeapSnapshot) {
    if s.has_detachedness {
        return;
    }
    let n = s.node_count();
    let mut d = vec![0u8; n];
    for (i, slot) in d.iter_mut().enumerate() {
        if s.node_type(i as NodeId) == NodeType::Native && s.raw_name(i as NodeId).starts_with("Detached ") {
            *slot = DETACHED;
        }
    }
    s.detachedness = d;
}

/// Keeps the detachedness column as a list of the nodes whose state is known when they
/// are few (a Node.js heap has a handful: it has no DOM), which saves a byte a node.
fn compact_detachedness(s: &mut HeapSnapshot) {
    let known = s.detachedness.iter().filter(|&&d| d != 0).count();
    if known <= s.detachedness.len() / 32 {
        s.detachedness_known = (s.detachedness.iter().enumerate())
            .filter(|&(_, &d)| d != 0)
            .map(|(o, &d)| (o as NodeId, d))
            .collect();
        s.detachedness = Vec::new();
    }
}

/// `propagateDOMState` (§3.1): attached state flows to native children first, then
/// detached state to the rest; detached nodes are renamed `Detached <name>`.
fn propagate_dom_state(s: &mut HeapSnapshot) {
    if !s.has_detachedness {
        return;
    }
    let n = s.node_count();
    let mut visited = vec![false; n];
    let mut attached: Vec<NodeId> = Vec::new();
    let mut detached: Vec<NodeId> = Vec::new();
    let mut renamed: HashMap<u32, u32> = HashMap::new();

    fn process(
        s: &mut HeapSnapshot,
        o: NodeId,
        state: u8,
        visited: &mut [bool],
        attached: &mut Vec<NodeId>,
        detached: &mut Vec<NodeId>,
        renamed: &mut HashMap<u32, u32>,
    ) {
        if visited[o as usize] {
            return;
        }
        if s.node_type(o) != NodeType::Native {
            visited[o as usize] = true;
            return;
        }
        s.detachedness[o as usize] = state;
        if state == ATTACHED {
            attached.push(o);
        } else if state == DETACHED {
            let old = s.node_name[o as usize];
            let new = match renamed.get(&old) {
                Some(&x) => x,
                None => {
                    let text = format!("Detached {}", s.strings.get(old));
                    let x = s.strings.push(&text);
                    renamed.insert(old, x);
                    x
                }
            };
            s.node_name[o as usize] = new;
            detached.push(o);
        }
        visited[o as usize] = true;
    }

    for o in 0..n as NodeId {
        let state = s.detachedness[o as usize];
        if state == 0 {
            continue;
        }
        process(s, o, state, &mut visited, &mut attached, &mut detached, &mut renamed);
    }
    let children = |s: &HeapSnapshot, o: NodeId| -> Vec<NodeId> {
        s.edges(o)
            .filter(|&e| !matches!(s.edge_type(e), EdgeType::Hidden | EdgeType::Weak))
            .map(|e| s.edge_target(e))
            .collect()
    };
    while let Some(o) = attached.pop() {
        for c in children(s, o) {
            process(s, c, ATTACHED, &mut visited, &mut attached, &mut detached, &mut renamed);
        }
    }
    while let Some(o) = detached.pop() {
        if s.detachedness[o as usize] == ATTACHED {
            continue;
        }
        for c in children(s, o) {
            process(s, c, DETACHED, &mut visited, &mut attached, &mut detached, &mut renamed);
        }
    }
}

/// DevTools `isUserRoot` of the JS snapshot: not synthetic, or the `(Document DOM trees)` root.
fn is_user_root(s: &HeapSnapshot, names: &Names, o: NodeId) -> bool {
    s.node_type(o) != NodeType::Synthetic || names.document_dom_trees.contains(s.node_name[o as usize])
}

pub(crate) fn has_user_roots(s: &HeapSnapshot, names: &Names) -> bool {
    s.edges(s.root).any(|e| is_user_root(s, names, s.edge_target(e)))
}

/// `calculateFlags` (§3.2), the flag the numbers depend on: page-object (essential edges
/// test it). DevTools' can-be-queried and detached-DOM flags only drive its console and
/// filters, which leakhound does not have, so their passes over the graph are skipped.
/// Returns the page-object flag, a bit per node.
fn calculate_flags(s: &HeapSnapshot, names: &Names) -> BitVec {
    let n = s.node_count();
    let mut page_objects = BitVec::new(n);
    // Page objects: from root shortcuts and `(Document DOM trees)`, via non-weak edges.
    let mut stack: Vec<NodeId> = Vec::new();
    for e in s.edges(s.root) {
        let t = s.edge_target(e);
        match s.edge_type(e) {
            EdgeType::Element => {
                if !(s.node_type(t) == NodeType::Synthetic
                    && names.document_dom_trees.contains(s.node_name[t as usize]))
                {
                    continue;
                }
            }
            EdgeType::Shortcut => {}
            _ => continue,
        }
        stack.push(t);
        page_objects.set(t as usize);
    }
    while let Some(o) = stack.pop() {
        for e in s.edges(o) {
            let c = s.edge_target(e);
            if page_objects.get(c as usize) || s.edge_type(e) == EdgeType::Weak {
                continue;
            }
            stack.push(c);
            page_objects.set(c as usize);
        }
    }
    page_objects
}

/// `calculateShallowSizes` (§3.3): the sizes of `hidden`/`array` nodes (and native
/// `system / ExternalStringData`) owned by exactly one other node move into their owner.
/// Skipped when the root has no user roots (an `exposeInternals` snapshot). Works on
/// `self_size` (the snapshot's, taken out while this runs beside other steps).
fn calculate_shallow_sizes(s: &HeapSnapshot, names: &Names, self_size: &mut [u32]) {
    if !has_user_roots(s, names) {
        return;
    }
    const UNVISITED: u32 = u32::MAX;
    const MULTIPLE: u32 = u32::MAX - 1;
    let n = s.node_count();
    let mut owners = vec![0u32; n];
    let mut work: Vec<u32> = Vec::new();
    for (i, owner) in owners.iter_mut().enumerate() {
        let t = s.node_type(i as NodeId);
        if t == NodeType::Hidden
            || t == NodeType::Array
            || (t == NodeType::Native && names.external_string_data.contains(s.node_name[i]))
        {
            *owner = UNVISITED;
        } else {
            *owner = i as u32;
            work.push(i as u32);
        }
    }
    while let Some(id) = work.pop() {
        let owner = owners[id as usize];
        for e in s.edges(id) {
            if s.edge_type(e) == EdgeType::Weak {
                continue;
            }
            let t = s.edge_target(e);
            let cur = owners[t as usize];
            if cur == UNVISITED {
                owners[t as usize] = owner;
                work.push(t);
            } else if cur == t || cur == owner || cur == MULTIPLE {
            } else {
                owners[t as usize] = MULTIPLE;
                work.push(t);
            }
        }
    }
    for (i, &owner) in owners.iter().enumerate() {
        if owner == UNVISITED || owner == MULTIPLE || owner == i as u32 {
            continue;
        }
        if s.node_type(owner) == NodeType::Synthetic || owner == s.root {
            continue;
        }
        let size = self_size[i];
        self_size[i] = 0;
        self_size[owner as usize] = self_size[owner as usize].wrapping_add(size);
    }
}

/// `initEssentialEdges` (§3.5): the edges that count for dominators.
/// Returns the essential edges, and the nodes some essential edge points to (the
/// dominators' orphans are the others).
fn essential_edges(s: &HeapSnapshot, page_objects: &BitVec, weakmaps: &WeakMapNames) -> (BitVec, BitVec) {
    let mut bits = BitVec::new(s.edge_count());
    let mut has_in = BitVec::new(s.node_count());
    let root = s.root;
    for u in 0..s.node_count() as NodeId {
        let u_page = page_objects.get(u as usize);
        for e in s.edges(u) {
            let t = s.edge_type(e);
            if t == EdgeType::Internal
                && let Some((_, table)) = weakmaps.get(s.edge_name_index(e))
                && s.node_id[u as usize] as u64 == table
            {
                continue;
            }
            if t == EdgeType::Weak {
                continue;
            }
            let v = s.edge_target(e);
            if u == v {
                continue;
            }
            if u != root {
                if t == EdgeType::Shortcut {
                    continue;
                }
                let v_page = page_objects.get(v as usize);
                if v_page && !u_page {
                    continue;
                }
            }
            bits.set(e as usize);
            has_in.set(v as usize);
        }
    }
    (bits, has_in)
}

/// `calculateDistances` (§3.4): BFS from the user roots, then from the root for what is
/// left, with DevTools' edge filter (NativeContext `sloppy_function_map`, map descriptor
/// slots, and the first of the two WeakMap edges to a value).
fn calculate_distances(s: &HeapSnapshot, names: &Names, weakmaps: &WeakMapNames) -> Vec<i32> {
    let n = s.node_count();
    let mut dist = vec![NO_DISTANCE; n];
    let mut queue: Vec<NodeId> = Vec::with_capacity(n.min(1 << 20));
    let mut pending: std::collections::HashSet<u32> = std::collections::HashSet::new();
    for e in s.edges(s.root) {
        let t = s.edge_target(e);
        if is_user_root(s, names, t) {
            dist[t as usize] = 1;
            queue.push(t);
        }
    }
    let had_user_roots = !queue.is_empty();
    bfs(s, names, weakmaps, &mut dist, &mut queue, &mut pending);
    dist[s.root as usize] = if had_user_roots { BASE_SYSTEM_DISTANCE } else { 0 };
    queue.clear();
    queue.push(s.root);
    bfs(s, names, weakmaps, &mut dist, &mut queue, &mut pending);
    dist
}

fn bfs(
    s: &HeapSnapshot,
    names: &Names,
    weakmaps: &WeakMapNames,
    dist: &mut [i32],
    queue: &mut Vec<NodeId>,
    pending: &mut std::collections::HashSet<u32>,
) {
    let mut head = 0;
    while head < queue.len() {
        let o = queue[head];
        head += 1;
        let d = dist[o as usize] + 1;
        let t_node = s.node_type(o);
        let name = s.node_name[o as usize];
        let is_native_context = t_node == NodeType::Hidden && names.native_context.contains(name);
        let is_map_descriptors = t_node == NodeType::Array && names.map_descriptors.contains(name);
        for e in s.edges(o) {
            let et = s.edge_type(e);
            if et == EdgeType::Weak {
                continue;
            }
            let c = s.edge_target(e);
            if dist[c as usize] != NO_DISTANCE {
                continue;
            }
            // DevTools' filter, called only for unvisited targets.
            if is_native_context && !et.has_index_name() && names.sloppy_function_map.contains(s.edge_name_index(e)) {
                continue;
            }
            if is_map_descriptors {
                let keep = match parse_int_of_edge_name(s, e) {
                    Some(index) => index < 2 || index % 3 != 1,
                    None => true,
                };
                if !keep {
                    continue;
                }
            } else if et == EdgeType::Internal
                && let Some((suffix, _)) = weakmaps.get(s.edge_name_index(e))
                && !pending.remove(&suffix)
            {
                pending.insert(suffix);
                continue;
            }
            dist[c as usize] = d;
            queue.push(c);
        }
    }
}

/// `parseInt(edge.name(), 10)` for the map-descriptor filter.
fn parse_int_of_edge_name(s: &HeapSnapshot, e: u32) -> Option<i64> {
    let et = s.edge_type(e);
    if et.has_index_name() {
        return Some(s.edge_name_index(e) as i64);
    }
    crate::snapshot::js_parse_int(s.strings.get(s.edge_name_index(e))).and_then(|t| t.parse().ok())
}

/// `calculateStatistics` (§3.10), but for the totals ([`add_statistics_totals`]).
fn calculate_statistics(s: &HeapSnapshot, self_size: &[u32], names: &Names) -> Statistics {
    let n = s.node_count();
    // In-degree == 1 test for `elements` stores of Arrays (DevTools `retainersCount()`).
    let mut candidates = BitVec::new(n);
    let mut any = false;
    for o in 0..n as NodeId {
        if !matches!(
            s.node_type(o),
            NodeType::Hidden
                | NodeType::Native
                | NodeType::Code
                | NodeType::String
                | NodeType::ConsString
                | NodeType::SlicedString
        ) && names.array.contains(s.node_name[o as usize])
            && let Some(e) = elements_edge(s, names, o)
        {
            candidates.set(s.edge_target(e) as usize);
            any = true;
        }
    }
    let mut once = BitVec::new(if any { n } else { 0 });
    let mut many = BitVec::new(if any { n } else { 0 });
    if any {
        for &t in &s.edge_to {
            let t = t as usize;
            if candidates.get(t) {
                if once.get(t) {
                    many.set(t);
                } else {
                    once.set(t);
                }
            }
        }
    }
    let mut st = Statistics {
        native_bytes: s.extra_native_bytes,
        ..Statistics::default()
    };
    for o in 0..n as NodeId {
        let size = self_size[o as usize] as u64;
        match s.node_type(o) {
            NodeType::Hidden => st.system_bytes += size,
            NodeType::Native => {
                st.native_bytes += size;
                if names.array_buffer_data.contains(s.node_name[o as usize]) {
                    st.typed_arrays_bytes += size;
                }
            }
            NodeType::Code => st.code_bytes += size,
            NodeType::String | NodeType::ConsString | NodeType::SlicedString => st.strings_bytes += size,
            _ => {
                if names.array.contains(s.node_name[o as usize]) {
                    let mut total = size;
                    if let Some(e) = elements_edge(s, names, o) {
                        let t = s.edge_target(e) as usize;
                        if once.get(t) && !many.get(t) {
                            total += self_size[t] as u64;
                        }
                    }
                    st.js_arrays_bytes += total;
                }
            }
        }
    }
    st
}

/// The totals of `calculateStatistics`, which need the root's retained size: set once
/// retained sizes exist (the breakdown itself is computed beside the dominators).
fn add_statistics_totals(s: &mut HeapSnapshot) {
    let total = s.total_size_bytes();
    s.statistics.total_bytes = total;
    s.statistics.v8heap_bytes = total.wrapping_sub(s.statistics.native_bytes);
}

fn elements_edge(s: &HeapSnapshot, names: &Names, o: NodeId) -> Option<u32> {
    s.edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && names.elements.contains(s.edge_name_index(e)))
}

#[cfg(test)]
mod tests {
    use super::parse_weakmap_edge_name;

    #[test]
    fn weakmap_edge_names_parse_like_the_devtools_regex() {
        let name = "3 / part of key (Object @123) -> value (Foo @456) pair in WeakMap (table @789)";
        let (suffix, table) = parse_weakmap_edge_name(name).expect("matches");
        assert_eq!(table, 789);
        assert_eq!(
            suffix,
            " / part of key (Object @123) -> value (Foo @456) pair in WeakMap (table @789)"
        );
        assert!(parse_weakmap_edge_name("x / part of key (a @1) -> value (b @2) pair in WeakMap (table @3)").is_none());
        assert!(parse_weakmap_edge_name("1 / part of key (a @1) -> value (b @2) pair in WeakMap (table @)").is_none());
        assert!(
            parse_weakmap_edge_name("1 / part of key (a\n @1) -> value (b @2) pair in WeakMap (table @3)").is_none()
        );
        assert!(parse_weakmap_edge_name("map").is_none());
    }
}
