//! The heap graph: columnar node and edge arrays, CSR edge offsets, interned strings,
//! and the per-node numbers DevTools computes.

use crate::bits::BitVec;
use crate::class_of::ClassOf;
use crate::dominator_tree::DominatorTree;
use crate::ids::{EdgeId, NodeId};
use crate::strings::Strings;

/// `distance` value of a node that no BFS reached (DevTools `noDistance`).
pub const NO_DISTANCE: i32 = -5;
/// Distances at or above this are "reachable only through system roots" (DevTools
/// `baseSystemDistance`); the UI shows `−` for them.
pub const BASE_SYSTEM_DISTANCE: i32 = 100_000_000;
/// Retainer distance of unreachable retainers in the Retainers view (DevTools
/// `baseUnreachableDistance`).
pub const BASE_UNREACHABLE_DISTANCE: i32 = 200_000_000;

/// The V8 node types this engine knows by name; others keep their name from the meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeType {
    /// `hidden`: V8 internals (shown as `(system)`).
    Hidden,
    /// `array`: internal arrays such as `(object elements)`.
    Array,
    /// `string`: a flat (sequential) string, its value in the node name.
    String,
    /// `object`: JS objects, named by constructor.
    Object,
    /// `code`: compiled code and related metadata.
    Code,
    /// `closure`: JS functions.
    Closure,
    /// `regexp`: a RegExp object, named by its source.
    RegExp,
    /// `number`: heap numbers.
    Number,
    /// `native`: embedder objects and backing stores.
    Native,
    /// `synthetic`: the root, `(GC roots)` and its sub-roots.
    Synthetic,
    /// `concatenated string`: a string V8 keeps as two parts (a rope) until flattened.
    ConsString,
    /// `sliced string`: a substring that points into its parent string.
    SlicedString,
    /// `symbol`: a JS Symbol, named by its description.
    Symbol,
    /// `bigint`: a heap-allocated BigInt.
    BigInt,
    /// `object shape`: a V8 map (hidden class) or descriptor array (newer V8s).
    ObjectShape,
    /// `wasm object`: a WebAssembly GC object (newer V8s).
    WasmObject,
    /// A type name this engine does not know.
    Other,
}

impl NodeType {
    pub(crate) fn from_name(name: &str) -> NodeType {
        match name {
            "hidden" => NodeType::Hidden,
            "array" => NodeType::Array,
            "string" => NodeType::String,
            "object" => NodeType::Object,
            "code" => NodeType::Code,
            "closure" => NodeType::Closure,
            "regexp" => NodeType::RegExp,
            "number" => NodeType::Number,
            "native" => NodeType::Native,
            "synthetic" => NodeType::Synthetic,
            "concatenated string" => NodeType::ConsString,
            "sliced string" => NodeType::SlicedString,
            "symbol" => NodeType::Symbol,
            "bigint" => NodeType::BigInt,
            "object shape" => NodeType::ObjectShape,
            "wasm object" => NodeType::WasmObject,
            _ => NodeType::Other,
        }
    }
}

/// The V8 edge types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdgeType {
    /// `context`: a variable of a closure's context (`->name`).
    Context,
    /// `element`: an array index (`[i]`).
    Element,
    /// `property`: a named JS property (`.name`).
    Property,
    /// `internal`: not visible to JS (`{map}`, `{elements}`, `{context}` ...).
    Internal,
    /// `hidden`: an unnamed pointer needed for sizes (`{i}`).
    Hidden,
    /// `shortcut`: a shortcut that must not be followed for sizes.
    Shortcut,
    /// `weak`: does not retain (`[[i]]`).
    Weak,
    /// A type name this engine does not know.
    Other,
}

impl EdgeType {
    pub(crate) fn from_name(name: &str) -> EdgeType {
        match name {
            "context" => EdgeType::Context,
            "element" => EdgeType::Element,
            "property" => EdgeType::Property,
            "internal" => EdgeType::Internal,
            "hidden" => EdgeType::Hidden,
            "shortcut" => EdgeType::Shortcut,
            "weak" => EdgeType::Weak,
            _ => EdgeType::Other,
        }
    }

    /// Whether `name_or_index` is an index (element, hidden) rather than a string index.
    #[inline]
    pub fn has_index_name(self) -> bool {
        matches!(self, EdgeType::Element | EdgeType::Hidden)
    }
}

/// A source location of an object's constructor or a closure, from the `locations`
/// section. `line` and `column` are 0-based as in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// V8 script id (CDP `Debugger.scriptParsed.scriptId`).
    pub script_id: u32,
    /// Line in the script, counted from 0 as the file has it.
    pub line: u32,
    /// Column in the line, counted from 0 as the file has it.
    pub column: u32,
}

/// The Statistics breakdown (DevTools' pie chart), all in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Total size: the root's retained size plus `extra_native_bytes`.
    pub total_bytes: u64,
    /// `total_bytes` minus `native_bytes`.
    pub v8heap_bytes: u64,
    /// Self sizes of `code` nodes.
    pub code_bytes: u64,
    /// Self sizes of string nodes (plain, concatenated, sliced).
    pub strings_bytes: u64,
    /// Objects named `Array`, plus their `elements` store when it has a single retainer.
    pub js_arrays_bytes: u64,
    /// Self sizes of `hidden` nodes.
    pub system_bytes: u64,
    /// Self sizes of `native` nodes plus `extra_native_bytes`.
    pub native_bytes: u64,
    /// Self sizes of native `system / JSArrayBufferData` nodes (ArrayBuffer backing stores).
    pub typed_arrays_bytes: u64,
}

/// An inferred plain-object "interface" (DevTools `InterfaceDefinition`): plain objects
/// whose properties include all of `properties` are shown as `name`, e.g. `{a, b}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDefinition {
    /// The class name shown, e.g. `{user, id}`.
    pub name: String,
    /// Property names, in the order of the first object seen with them.
    pub properties: Vec<String>,
    /// How many plain objects start with exactly these properties (0 when the definition
    /// was borrowed from another snapshot).
    pub count: u32,
}

/// A class: the Summary's grouping of nodes (DevTools class key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Class name as the Summary shows it (`Quote`, `(string)`, `{a, b}`, `Function`).
    pub name: String,
    /// Constructor location for `object` nodes that have one (splits same-named classes).
    pub location: Option<Location>,
}

impl Class {
    /// DevTools' public class key: `"<script_id>,<line>,<column>,<name>"` for located
    /// object classes, else `",<name>"`. It is the Comparison join key.
    pub fn key(&self) -> String {
        match self.location {
            Some(l) => format!("{},{},{},{}", l.script_id, l.line, l.column, self.name),
            None => format!(",{}", self.name),
        }
    }
}

/// A parsed, analysed heap snapshot.
///
/// Layout: struct of arrays indexed by [`NodeId`] (node ordinal) and [`EdgeId`]; the edges
/// of node `n` are `first_edge[n]..first_edge[n + 1]` in file order. Per-node numbers are
/// the ones DevTools shows (`self_size` is the *adjusted* shallow size, see
/// `heapsnapshot-format.md` §3.3).
#[derive(Debug)]
pub struct HeapSnapshot {
    pub(crate) node_type_names: Vec<String>,
    pub(crate) edge_type_names: Vec<String>,
    pub(crate) node_type_kinds: Vec<NodeType>,
    pub(crate) edge_type_kinds: Vec<EdgeType>,

    pub(crate) node_type: Vec<u8>,
    pub(crate) node_name: Vec<u32>,
    pub(crate) node_id: Vec<u32>,
    pub(crate) self_size: Vec<u32>,
    pub(crate) first_edge: Vec<u32>,
    /// Detachedness (0 unknown, 1 attached, 2 detached) after DevTools' propagation;
    /// empty when few nodes have a known state (Node.js heaps have no DOM): they are then
    /// in `detachedness_known`.
    pub(crate) detachedness: Vec<u8>,
    /// The nodes of known detachedness, by ordinal, when `detachedness` is empty.
    pub(crate) detachedness_known: Vec<(NodeId, u8)>,
    /// The page-object flag per node (empty before the full analysis).
    pub(crate) page_objects: BitVec,
    pub(crate) has_detachedness: bool,
    pub(crate) has_trace_node_id: bool,
    /// Per node, its `trace_node_id` (the allocation stack's tree node, 0 none); empty
    /// unless the snapshot carries allocation stacks (see `traces.rs`).
    pub(crate) trace_node: Vec<u32>,
    /// The allocation trace tree and its functions; empty without allocation stacks.
    pub(crate) traces: crate::traces::AllocationTraces,

    /// Per edge, its type index and `name_or_index` in one word ([`pack_edge`]);
    /// [`EDGE_SPILLED`] where they do not fit, the pair then in `edge_spilled`.
    pub(crate) edge_kind: Vec<u32>,
    /// (type index, `name_or_index`) of the edges whose pair does not fit a word: element
    /// indexes and string indexes of 2^28 − 1 and more, type indexes of 16 and more.
    pub(crate) edge_spilled: std::collections::HashMap<EdgeId, (u32, u32)>,
    pub(crate) edge_to: Vec<u32>,

    pub(crate) strings: Strings,
    /// Sorted by node; at most one per node (the last one in the file wins, as in DevTools).
    pub(crate) locations: Vec<(NodeId, Location)>,
    pub(crate) root: NodeId,
    pub(crate) extra_native_bytes: u64,
    pub(crate) file_string_count: u32,

    // Computed.
    pub(crate) distance: Vec<i32>,
    pub(crate) dominator: Vec<NodeId>,
    /// Retained sizes below [`RETAINED_SPILLED`]; larger ones (4 GiB and up: a few
    /// dominators of huge heaps) are in `retained_spilled`.
    pub(crate) retained: Vec<u32>,
    pub(crate) retained_spilled: std::collections::HashMap<NodeId, u64>,
    pub(crate) dominator_tree: DominatorTree,
    pub(crate) class_of: ClassOf,
    pub(crate) classes: Vec<Class>,
    pub(crate) interface_definitions: Vec<InterfaceDefinition>,
    pub(crate) statistics: Statistics,
    pub(crate) unreachable_count: u32,
}

/// Bits of an edge word ([`HeapSnapshot::edge_kind`]) that hold the edge type index.
pub(crate) const EDGE_TYPE_BITS: u32 = 4;
/// The edge word of an edge whose pair is in `edge_spilled`.
pub(crate) const EDGE_SPILLED: u32 = u32::MAX;

/// One word for an edge's type index and `name_or_index`: the type in the low
/// [`EDGE_TYPE_BITS`] bits, the name above. `None` when they do not fit (the word would
/// reach [`EDGE_SPILLED`]): V8 has seven edge types and a string table far below 2^28
/// entries, so only element indexes of huge sparse arrays normally spill.
#[inline(always)]
pub(crate) fn pack_edge(type_index: u32, name: u32) -> Option<u32> {
    if type_index < 1 << EDGE_TYPE_BITS && name < (1 << (32 - EDGE_TYPE_BITS)) - 1 {
        Some(name << EDGE_TYPE_BITS | type_index)
    } else {
        None
    }
}

/// Marks a retained size kept in `retained_spilled` (it does not fit below this).
pub(crate) const RETAINED_SPILLED: u32 = u32::MAX;

impl HeapSnapshot {
    /// Number of nodes.
    #[inline]
    pub fn node_count(&self) -> usize {
        self.node_type.len()
    }

    /// Number of edges.
    #[inline]
    pub fn edge_count(&self) -> usize {
        self.edge_to.len()
    }

    /// The edge type index (into the meta's `edge_types`) of edge `e`.
    #[inline]
    pub(crate) fn edge_type_index(&self, e: EdgeId) -> usize {
        match self.edge_kind[e as usize] {
            EDGE_SPILLED => self.edge_spilled.get(&e).map_or(usize::MAX, |&(t, _)| t as usize),
            k => (k & ((1 << EDGE_TYPE_BITS) - 1)) as usize,
        }
    }

    /// The raw `name_or_index` of edge `e`: a string index or an element/hidden index.
    #[inline]
    pub(crate) fn edge_name_index(&self, e: EdgeId) -> u32 {
        match self.edge_kind[e as usize] {
            EDGE_SPILLED => self.edge_spilled.get(&e).map_or(0, |&(_, name)| name),
            k => k >> EDGE_TYPE_BITS,
        }
    }

    /// The root node (ordinal 0 unless the header gives `root_index`).
    #[inline]
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The string table (the file's strings, then those the engine added).
    pub fn strings(&self) -> &Strings {
        &self.strings
    }

    /// `extra_native_bytes` from the header (0 when absent).
    pub fn extra_native_bytes(&self) -> u64 {
        self.extra_native_bytes
    }

    /// Total size as DevTools shows it: the root's retained size plus `extra_native_bytes`.
    pub fn total_size_bytes(&self) -> u64 {
        self.retained_size(self.root) + self.extra_native_bytes
    }

    /// The node type of `node`.
    #[inline]
    pub fn node_type(&self, node: NodeId) -> NodeType {
        self.node_type_kinds
            .get(self.node_type[node as usize] as usize)
            .copied()
            .unwrap_or(NodeType::Other)
    }

    /// The node type names of the file's meta, in order.
    pub fn node_type_names(&self) -> &[String] {
        &self.node_type_names
    }

    /// The edge type names of the file's meta, in order.
    pub fn edge_type_names(&self) -> &[String] {
        &self.edge_type_names
    }

    /// The node type's name as the file spells it (`object`, `closure`, ...).
    pub fn node_type_name(&self, node: NodeId) -> &str {
        self.node_type_names
            .get(self.node_type[node as usize] as usize)
            .map(|s| s.as_str())
            .unwrap_or("?")
    }

    /// The raw name (`rawName()` in DevTools): constructor name, string content, function
    /// name ..., with `Detached ` prepended to detached native nodes.
    #[inline]
    pub fn raw_name(&self, node: NodeId) -> &str {
        self.strings.get(self.node_name[node as usize])
    }

    /// String index of the raw name.
    #[inline]
    pub fn raw_name_index(&self, node: NodeId) -> u32 {
        self.node_name[node as usize]
    }

    /// The V8 node id (stable across snapshots of one isolate for JS objects).
    #[inline]
    pub fn id(&self, node: NodeId) -> u32 {
        self.node_id[node as usize]
    }

    /// Adjusted self (shallow) size in bytes, as DevTools shows it.
    #[inline]
    pub fn self_size(&self, node: NodeId) -> u64 {
        self.self_size[node as usize] as u64
    }

    /// Retained size in bytes.
    #[inline]
    pub fn retained_size(&self, node: NodeId) -> u64 {
        match self.retained.get(node as usize).copied() {
            Some(RETAINED_SPILLED) => self.retained_spilled.get(&node).copied().unwrap_or(0),
            Some(r) => r as u64,
            None => 0,
        }
    }

    /// Distance from the GC roots (see [`NO_DISTANCE`], [`BASE_SYSTEM_DISTANCE`]).
    #[inline]
    pub fn distance(&self, node: NodeId) -> i32 {
        self.distance.get(node as usize).copied().unwrap_or(NO_DISTANCE)
    }

    /// Immediate dominator (the root's is itself).
    #[inline]
    pub fn dominator(&self, node: NodeId) -> NodeId {
        self.dominator.get(node as usize).copied().unwrap_or(self.root)
    }

    /// Nodes immediately dominated by `node` (empty without [`crate::Analysis::Full`]).
    /// In descending ordinal order, as DevTools lists them.
    pub fn dominated(&self, node: NodeId) -> &[NodeId] {
        self.dominator_tree.children(node)
    }

    /// Detachedness after propagation: 0 unknown, 1 attached, 2 detached.
    pub fn detachedness(&self, node: NodeId) -> u8 {
        match self.detachedness.get(node as usize) {
            Some(&d) => d,
            None => (self.detachedness_known.binary_search_by_key(&node, |&(o, _)| o))
                .map_or(0, |k| self.detachedness_known[k].1),
        }
    }

    /// Index into [`HeapSnapshot::classes`] of `node`'s class.
    #[inline]
    pub fn class_index(&self, node: NodeId) -> u32 {
        self.class_of.get(node)
    }

    /// The class of `node`.
    #[inline]
    pub fn class(&self, node: NodeId) -> &Class {
        &self.classes[self.class_of.get(node) as usize]
    }

    /// All classes, in order of first appearance among nodes.
    pub fn classes(&self) -> &[Class] {
        &self.classes
    }

    /// The constructor/function location of `node`, if the `locations` section has one.
    pub fn location(&self, node: NodeId) -> Option<Location> {
        self.locations
            .binary_search_by_key(&node, |&(n, _)| n)
            .ok()
            .map(|i| self.locations[i].1)
    }

    /// The edges of `node` as a range of edge ordinals, in file order.
    #[inline]
    pub fn edges(&self, node: NodeId) -> std::ops::Range<EdgeId> {
        self.first_edge[node as usize]..self.first_edge[node as usize + 1]
    }

    /// The type of edge `e`.
    #[inline]
    pub fn edge_type(&self, e: EdgeId) -> EdgeType {
        self.edge_type_kinds
            .get(self.edge_type_index(e))
            .copied()
            .unwrap_or(EdgeType::Other)
    }

    /// The edge type's name as the file spells it.
    pub fn edge_type_name(&self, e: EdgeId) -> &str {
        self.edge_type_names
            .get(self.edge_type_index(e))
            .map(|s| s.as_str())
            .unwrap_or("?")
    }

    /// Raw `name_or_index` of edge `e`.
    #[inline]
    pub fn edge_name_or_index(&self, e: EdgeId) -> u32 {
        self.edge_name_index(e)
    }

    /// The target node of edge `e`.
    #[inline]
    pub fn edge_target(&self, e: EdgeId) -> NodeId {
        self.edge_to[e as usize]
    }

    /// The edge's name as DevTools gives it (`edge.name()`): element and hidden indexes
    /// in decimal, numeric shortcut names normalised, else the string.
    pub fn edge_name(&self, e: EdgeId) -> std::borrow::Cow<'_, str> {
        let t = self.edge_type(e);
        let raw = self.edge_name_index(e);
        if t.has_index_name() {
            return raw.to_string().into();
        }
        let s = self.strings.get(raw);
        if t == EdgeType::Shortcut
            && let Some(n) = js_parse_int(s)
        {
            return n.into();
        }
        s.into()
    }

    /// The edge in DevTools' notation: `.prop`, `["a b"]`, `[i]`, `->ctx`, `{internal}`,
    /// `[[weak]]`.
    pub fn edge_label(&self, e: EdgeId) -> String {
        let name = self.edge_name(e);
        match self.edge_type(e) {
            EdgeType::Context => format!("->{name}"),
            EdgeType::Element => format!("[{name}]"),
            EdgeType::Weak => format!("[[{name}]]"),
            EdgeType::Property => {
                if name.contains(' ') {
                    format!("[\"{name}\"]")
                } else {
                    format!(".{name}")
                }
            }
            EdgeType::Shortcut => {
                let raw = self.strings.get(self.edge_name_index(e));
                if js_parse_int(raw).is_some() {
                    format!("[{name}]")
                } else if name.contains(' ') {
                    format!("[\"{name}\"]")
                } else {
                    format!(".{name}")
                }
            }
            EdgeType::Internal | EdgeType::Hidden => format!("{{{name}}}"),
            EdgeType::Other => format!("?{name}?"),
        }
    }

    /// The largest odd node id (DevTools `maxJSObjectId`): ids above it in a later
    /// snapshot of the same process were allocated after this one.
    pub fn max_js_object_id(&self) -> u32 {
        self.node_id.iter().copied().filter(|id| id % 2 == 1).max().unwrap_or(0)
    }

    /// The Statistics breakdown.
    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The inferred plain-object interfaces, in DevTools' order.
    pub fn interface_definitions(&self) -> &[InterfaceDefinition] {
        &self.interface_definitions
    }

    /// How many nodes the dominator DFS did not reach from the root.
    pub fn unreachable_count(&self) -> u32 {
        self.unreachable_count
    }

    /// Whether the page-object flag is set (reachable from a root shortcut such as the
    /// global object, without weak edges).
    pub fn is_page_object(&self, node: NodeId) -> bool {
        (node as usize) < self.page_objects.len() && self.page_objects.get(node as usize)
    }

    /// Whether dominators and retained sizes were computed ([`crate::Analysis::Full`] or
    /// [`crate::Analysis::Retained`]; distances and statistics only with `Full`).
    pub fn is_fully_analyzed(&self) -> bool {
        !self.retained.is_empty()
    }

    /// Finds the node with V8 id `id` (linear scan).
    pub fn node_by_id(&self, id: u32) -> Option<NodeId> {
        self.node_id.iter().position(|&x| x == id).map(|p| p as NodeId)
    }

    /// Whether a node type is a string type (plain, concatenated, sliced).
    pub fn is_string(&self, node: NodeId) -> bool {
        matches!(
            self.node_type(node),
            NodeType::String | NodeType::ConsString | NodeType::SlicedString
        )
    }
}

/// JS `parseInt(s, 10)` for the cases that matter: optional whitespace and sign, then
/// leading digits; returns the normalised decimal text or None (NaN).
pub(crate) fn js_parse_int(s: &str) -> Option<String> {
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: &str = &rest[..rest.bytes().take_while(|b| b.is_ascii_digit()).count()];
    if digits.is_empty() {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    let body = if trimmed.is_empty() { "0" } else { trimmed };
    if body.len() > 15 {
        // Large values print in exponent form in JS; keep the text (never seen in practice).
        return Some(format!("{}{}", if neg { "-" } else { "" }, body));
    }
    if neg && body != "0" {
        Some(format!("-{body}"))
    } else {
        Some(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{EDGE_SPILLED, EDGE_TYPE_BITS, pack_edge};

    #[test]
    fn packed_edge_words_never_collide_with_the_spill_mark() {
        for t in 0..16 {
            for name in [0u32, 1, 12345, (1 << 28) - 2] {
                let k = pack_edge(t, name).expect("fits");
                assert_ne!(k, EDGE_SPILLED);
                assert_eq!((k & 15, k >> EDGE_TYPE_BITS), (t, name));
            }
            assert_eq!(pack_edge(t, (1 << 28) - 1), None);
            assert_eq!(pack_edge(t, u32::MAX), None);
        }
        assert_eq!(pack_edge(16, 0), None);
    }
}
