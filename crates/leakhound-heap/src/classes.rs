//! Class names and class keys (`heapsnapshot-format.md` §3.6; DevTools
//! `calculateObjectNames`, `inferInterfaceDefinitions`, `applyInterfaceDefinitions`).

use rustc_hash::FxHashMap as HashMap;

use crate::class_of::ClassOf;
use crate::ids::NodeId;
use crate::snapshot::{Class, EdgeType, HeapSnapshot, InterfaceDefinition, Location, NodeType};

const MAX_INTERFACE_NAME_LENGTH: usize = 120;
const MIN_OBJECT_COUNT_PER_INTERFACE: f64 = 2.0;
const MIN_OBJECT_PROPORTION_PER_INTERFACE: f64 = 1000.0;

/// The class table, each node's class and the interface definitions: what DevTools
/// computes at load time.
pub(crate) fn compute_classes(s: &HeapSnapshot) -> (Vec<Class>, ClassOf, Vec<InterfaceDefinition>) {
    let defs = infer_interface_definitions(s);
    let (classes, class_of) = classify(s, &defs);
    (classes, class_of, defs)
}

impl HeapSnapshot {
    /// Re-names plain objects with `defs` (another snapshot's interface definitions, as
    /// DevTools' Comparison does), so class keys line up across snapshots.
    pub fn reclassify(&mut self, defs: &[InterfaceDefinition]) {
        let (classes, class_of) = classify(self, defs);
        self.classes = classes;
        self.class_of = class_of;
        self.interface_definitions = defs.to_vec();
    }
}

/// Classes of every node when plain objects are named with `defs` (the snapshot's own
/// definitions, or another snapshot's for the Comparison view).
pub(crate) fn classify(s: &HeapSnapshot, defs: &[InterfaceDefinition]) -> (Vec<Class>, ClassOf) {
    let n = s.node_count();
    let mut table = ClassTable::default();
    let mut class_of = ClassOf::new(n);
    let mut by_name: Vec<u32> = vec![u32::MAX; s.strings.len()];
    // Classes named after the node type, by type index (`(system)`, `Function`, `(string)`...).
    let mut by_type: Vec<u32> = vec![u32::MAX; s.node_type_names.len()];
    let mut derived: HashMap<u32, u32> = HashMap::default();
    let mut located: HashMap<(Location, u32), u32> = HashMap::default();
    let object_names = crate::strings::StrSet::of(&s.strings, "Object");
    let matcher = InterfaceMatcher::new(s, defs);
    let mut match_cache: HashMap<Box<[u32]>, u32> = HashMap::default();
    let mut props: Vec<u32> = Vec::new();

    for o in 0..n as NodeId {
        let t = s.node_type(o);
        let name_idx = s.node_name[o as usize];
        // Class name, as a string index or a fixed text.
        let class_id = match t {
            NodeType::Object | NodeType::Native => {
                let plain = t == NodeType::Object && object_names.contains(name_idx);
                let text_class = if plain && !defs.is_empty() {
                    props.clear();
                    props.extend(
                        s.edges(o)
                            .filter(|&e| s.edge_type(e) == EdgeType::Property)
                            .map(|e| s.edge_name_index(e)),
                    );
                    let iface = match match_cache.get(props.as_slice()) {
                        Some(&m) => m,
                        None => {
                            let m = matcher.best_match(s, &props);
                            match_cache.insert(props.clone().into_boxed_slice(), m);
                            m
                        }
                    };
                    if iface == u32::MAX {
                        None
                    } else {
                        Some(table.intern(&defs[iface as usize].name))
                    }
                } else {
                    None
                };
                match text_class {
                    Some(c) => c,
                    None => {
                        let raw = s.strings.get(name_idx);
                        if raw.starts_with('<') || raw.starts_with("Detached <") {
                            *derived
                                .entry(name_idx)
                                .or_insert_with(|| table.intern(&angle_class_name(raw)))
                        } else {
                            let slot = &mut by_name[name_idx as usize];
                            if *slot == u32::MAX {
                                *slot = table.intern(raw);
                            }
                            *slot
                        }
                    }
                }
            }
            _ => {
                let slot = &mut by_type[s.node_type[o as usize] as usize];
                if *slot == u32::MAX {
                    *slot = match t {
                        NodeType::Hidden => table.intern("(system)"),
                        NodeType::Code => table.intern("(compiled code)"),
                        NodeType::Closure => table.intern("Function"),
                        NodeType::RegExp => table.intern("RegExp"),
                        _ => table.intern(&format!("({})", s.node_type_name(o))),
                    };
                }
                *slot
            }
        };
        // Located object classes split by constructor location.
        let class = if t == NodeType::Object {
            match s.location(o) {
                Some(loc) => *located.entry((loc, class_id)).or_insert_with(|| {
                    let name = table.classes[class_id as usize].name.clone();
                    table.push(Class {
                        name,
                        location: Some(loc),
                    })
                }),
                None => class_id,
            }
        } else {
            class_id
        };
        class_of.set(o, class);
    }
    (table.classes, class_of)
}

fn angle_class_name(raw: &str) -> String {
    let from = if raw.starts_with("Detached <") { 10 } else { 0 };
    match raw[from..].find(' ') {
        Some(p) => format!("{}>", &raw[..from + p]),
        None => raw.to_owned(),
    }
}

#[derive(Default)]
struct ClassTable {
    classes: Vec<Class>,
    by_text: HashMap<String, u32>,
}

impl ClassTable {
    /// The unlocated class named `text` (classes are merged by their public key).
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&c) = self.by_text.get(text) {
            return c;
        }
        let c = self.push(Class {
            name: text.to_owned(),
            location: None,
        });
        self.by_text.insert(text.to_owned(), c);
        c
    }
    fn push(&mut self, class: Class) -> u32 {
        self.classes.push(class);
        (self.classes.len() - 1) as u32
    }
}

/// JS string length in UTF-16 code units.
fn js_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// JS `<` on strings: UTF-16 code unit order.
pub(crate) fn js_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// DevTools `formatPropertyName`: names with `, ' " { }` are JSON-quoted.
pub(crate) fn format_property_name(name: &str) -> String {
    if name.contains([',', '\'', '"', '{', '}']) {
        let mut out = String::with_capacity(name.len() + 2);
        out.push('"');
        for c in name.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    } else {
        name.to_owned()
    }
}

/// `inferInterfaceDefinitions`: candidate `{p1, p2, …}` names from plain objects' property
/// edges (skipping `__proto__`, at most 120 characters), kept if frequent enough.
fn infer_interface_definitions(s: &HeapSnapshot) -> Vec<InterfaceDefinition> {
    let object_names = crate::strings::StrSet::of(&s.strings, "Object");
    let proto = crate::strings::StrSet::of(&s.strings, "__proto__");
    // Candidates keyed by the sequence of property string indices taken (names are
    // deduplicated, so the sequence determines the interface name).
    let mut index_of: HashMap<Box<[u32]>, usize> = HashMap::default();
    // JS length of each property name once formatted, computed once per string.
    let mut formatted_len: Vec<u32> = vec![u32::MAX; s.strings.len()];
    let mut candidates: Vec<InterfaceDefinition> = Vec::new();
    let mut total: u64 = 0;
    let mut seq: Vec<u32> = Vec::new();
    for o in 0..s.node_count() as NodeId {
        if s.node_type(o) != NodeType::Object || !object_names.contains(s.node_name[o as usize]) {
            continue;
        }
        total += 1;
        seq.clear();
        let mut len = 1usize; // "{"
        for e in s.edges(o) {
            if s.edge_type(e) != EdgeType::Property {
                continue;
            }
            let name_idx = s.edge_name_index(e);
            if proto.contains(name_idx) {
                continue;
            }
            let slot = &mut formatted_len[name_idx as usize];
            if *slot == u32::MAX {
                *slot = js_len(&format_property_name(s.strings.get(name_idx))) as u32;
            }
            let formatted_len = *slot as usize;
            if len > 1 && len + formatted_len > MAX_INTERFACE_NAME_LENGTH {
                break;
            }
            if len != 1 {
                len += 2;
            }
            len += formatted_len;
            seq.push(name_idx);
        }
        if seq.is_empty() {
            continue;
        }
        match index_of.get(seq.as_slice()) {
            Some(&i) => candidates[i].count += 1,
            None => {
                let properties: Vec<String> = seq.iter().map(|&i| s.strings.get(i).to_owned()).collect();
                let name = format!(
                    "{{{}}}",
                    properties
                        .iter()
                        .map(|p| format_property_name(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                index_of.insert(seq.clone().into_boxed_slice(), candidates.len());
                candidates.push(InterfaceDefinition {
                    name,
                    properties,
                    count: 1,
                });
            }
        }
    }
    // Distinct sequences can only collide on the name if the strings table is not
    // deduplicated; merge such duplicates keeping the first (as a Map keyed by name would).
    let mut by_name: HashMap<String, usize> = HashMap::default();
    let mut merged: Vec<InterfaceDefinition> = Vec::with_capacity(candidates.len());
    for c in candidates {
        match by_name.get(&c.name) {
            Some(&i) => merged[i].count += c.count,
            None => {
                by_name.insert(c.name.clone(), merged.len());
                merged.push(c);
            }
        }
    }
    merged.sort_by_key(|c| std::cmp::Reverse(c.count)); // stable, like V8's sort
    let min_count = MIN_OBJECT_COUNT_PER_INTERFACE.max(total as f64 / MIN_OBJECT_PROPORTION_PER_INTERFACE);
    merged.into_iter().take_while(|c| c.count as f64 >= min_count).collect()
}

/// The property tree of `applyInterfaceDefinitions`: each definition's sorted properties
/// form a path; the best match is the matched definition with most properties, ties to
/// the earlier one.
struct InterfaceMatcher {
    /// Node 0 is the root. `next[node]` maps a property text to a child.
    next: Vec<HashMap<String, u32>>,
    greatest_next: Vec<Option<String>>,
    /// (property count, definition index) of the definition ending at each node.
    info: Vec<Option<(usize, usize)>>,
}

impl InterfaceMatcher {
    fn new(_s: &HeapSnapshot, defs: &[InterfaceDefinition]) -> Self {
        let mut m = InterfaceMatcher {
            next: vec![HashMap::default()],
            greatest_next: vec![None],
            info: vec![None],
        };
        for (index, def) in defs.iter().enumerate() {
            let mut props: Vec<&str> = def.properties.iter().map(|p| p.as_str()).collect();
            props.sort_by(|a, b| js_cmp(a, b));
            let mut cur = 0usize;
            for p in &props {
                let child = match m.next[cur].get(*p) {
                    Some(&c) => c as usize,
                    None => {
                        let c = m.next.len();
                        m.next.push(HashMap::default());
                        m.greatest_next.push(None);
                        m.info.push(None);
                        m.next[cur].insert((*p).to_owned(), c as u32);
                        let greater = match &m.greatest_next[cur] {
                            None => true,
                            Some(g) => js_cmp(g, p) == std::cmp::Ordering::Less,
                        };
                        if greater {
                            m.greatest_next[cur] = Some((*p).to_owned());
                        }
                        c
                    }
                };
                cur = child;
            }
            if m.info[cur].is_none() {
                m.info[cur] = Some((props.len(), index));
            }
        }
        m
    }

    /// Index of the definition matching an object with these property-edge names (all
    /// property edges, `__proto__` included), or `u32::MAX` for none.
    fn best_match(&self, s: &HeapSnapshot, prop_indices: &[u32]) -> u32 {
        let mut props: Vec<&str> = prop_indices.iter().map(|&i| s.strings.get(i)).collect();
        props.sort_by(|a, b| js_cmp(a, b));
        // (property count, index); the initial match has count 0 and index "infinity".
        let better = |a: (usize, usize), b: Option<(usize, usize)>| -> (usize, usize) {
            match b {
                None => a,
                Some(b) => {
                    if a.0 > b.0 {
                        a
                    } else if b.0 > a.0 {
                        b
                    } else if a.1 <= b.1 {
                        a
                    } else {
                        b
                    }
                }
            }
        };
        let mut best = better((0, usize::MAX), self.info[0]);
        let mut states: Vec<usize> = vec![0];
        let mut snapshot: Vec<usize> = Vec::new();
        for p in props {
            snapshot.clear();
            snapshot.extend_from_slice(&states);
            for &cur in &snapshot {
                let exhausted = match &self.greatest_next[cur] {
                    None => true,
                    Some(g) => js_cmp(p, g) != std::cmp::Ordering::Less,
                };
                if exhausted {
                    states.retain(|&x| x != cur);
                }
                if let Some(&next) = self.next[cur].get(p) {
                    let next = next as usize;
                    if !states.contains(&next) {
                        states.push(next);
                    }
                    best = better(best, self.info[next]);
                }
            }
        }
        if best.1 == usize::MAX { u32::MAX } else { best.1 as u32 }
    }
}
