//! What the finder's steps ask of single nodes: whether a node is a V8 internal, whether it
//! can be a reported leaked object (the Node-aware filter), the key objects accumulate
//! under, and the names shown for functions and globals. Depends only on the engine.

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

/// Whether `o` is one of V8's own objects a user cannot name (`hidden`, `array`, `code`,
/// `synthetic`, `object shape`, and `system / …` objects and natives): a holder is never
/// one of these.
pub(crate) fn is_internal(s: &HeapSnapshot, o: NodeId) -> bool {
    match s.node_type(o) {
        NodeType::Hidden | NodeType::Array | NodeType::Code | NodeType::Synthetic | NodeType::ObjectShape => true,
        NodeType::Object | NodeType::Native => s.raw_name(o).starts_with("system / "),
        _ => false,
    }
}

/// What accumulates, finer than the DevTools class for functions: every closure is of
/// class `Function`, so closures are told apart by name and source location, and a bound
/// function (V8's `native_bind`) by the function it calls (`bound handleException()`).
/// Returns (key, display name).
pub(crate) fn leak_key(s: &HeapSnapshot, o: NodeId) -> (String, String) {
    if s.is_string(o) {
        // V8 flattens concatenated strings: one key for every string type.
        return (STRING_KEY.to_owned(), "(string)".to_owned());
    }
    if s.node_type(o) == NodeType::Closure {
        closure_key(s, o, 0)
    } else {
        let c = s.class(o);
        (c.key(), c.name.clone())
    }
}

/// [`leak_key`] of a closure; `depth` bound functions deep (a bound function of a bound
/// function), at most 4.
fn closure_key(s: &HeapSnapshot, o: NodeId, depth: u32) -> (String, String) {
    if depth < 4
        && let Some(target) = bound_target(s, o)
        && s.node_type(target) == NodeType::Closure
    {
        let (key, shown) = closure_key(s, target, depth + 1);
        return (format!("bound {key}"), format!("bound {shown}"));
    }
    let name = s.raw_name(o);
    let shown = if name.is_empty() {
        "(anonymous function)".to_owned()
    } else {
        format!("{name}()")
    };
    let loc = s
        .location(o)
        .map(|l| format!("{},{},{}", l.script_id, l.line, l.column))
        .unwrap_or_default();
    (format!("closure {name} {loc}"), shown)
}

/// The function a bound function calls (its `bound_function` edge), for V8's `native_bind`
/// closures (what `f.bind(x)` returns).
pub(crate) fn bound_target(s: &HeapSnapshot, o: NodeId) -> Option<NodeId> {
    if s.node_type(o) != NodeType::Closure || s.raw_name(o) != "native_bind" {
        return None;
    }
    s.edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "bound_function")
        .map(|e| s.edge_target(e))
}

/// The app's function behind a `once` listener: Node wraps it as `onceWrapper` bound to
/// a state object whose `listener` property is the function (a bound function whose
/// bound `this` has a `listener` closure).
pub(crate) fn once_listener(s: &HeapSnapshot, o: NodeId) -> Option<NodeId> {
    bound_target(s, o)?;
    let this = s
        .edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && s.edge_name(e) == "bound_this")
        .map(|e| s.edge_target(e))?;
    s.edges(this)
        .find(|&e| s.edge_type(e) == EdgeType::Property && s.edge_name(e) == "listener")
        .map(|e| s.edge_target(e))
        .filter(|&l| s.node_type(l) == NodeType::Closure)
}

/// Whether `a` and `b` have one [`leak_key`], compared without building the keys: strings
/// with strings, closures by name and location (bound functions by what they call), other
/// objects by DevTools class.
pub(crate) fn same_kind(s: &HeapSnapshot, a: NodeId, b: NodeId) -> bool {
    same_kind_at(s, a, b, 0)
}

fn same_kind_at(s: &HeapSnapshot, a: NodeId, b: NodeId, depth: u32) -> bool {
    let (sa, sb) = (s.is_string(a), s.is_string(b));
    if sa || sb {
        return sa && sb;
    }
    let (ca, cb) = (s.node_type(a) == NodeType::Closure, s.node_type(b) == NodeType::Closure);
    if !ca || !cb {
        return !ca && !cb && s.class_index(a) == s.class_index(b);
    }
    let bound = |o| {
        (depth < 4)
            .then(|| bound_target(s, o))
            .flatten()
            .filter(|&t| s.node_type(t) == NodeType::Closure)
    };
    match (bound(a), bound(b)) {
        (Some(x), Some(y)) => same_kind_at(s, x, y, depth + 1),
        (None, None) => s.raw_name_index(a) == s.raw_name_index(b) && s.location(a) == s.location(b),
        _ => false,
    }
}

/// The leak key (and display name) of every string type: V8 flattens concatenated and
/// sliced strings, so they all count as one kind.
pub(crate) const STRING_KEY: &str = "(string)";

/// The Node-aware filter: what can be a leaked object worth reporting.
pub(crate) fn is_reportable(s: &HeapSnapshot, o: NodeId) -> bool {
    match s.node_type(o) {
        NodeType::Object | NodeType::Closure | NodeType::RegExp => !s.raw_name(o).starts_with("system / "),
        // Strings count only where nothing reportable holds them (a cache of rendered
        // HTML); strings inside kept objects are part of those objects' clusters.
        NodeType::String | NodeType::ConsString | NodeType::SlicedString => s.self_size(o) > 0,
        NodeType::Native => s.id(o) % 2 == 1 && !s.raw_name(o).starts_with("system / "),
        _ => false,
    }
}

/// A function's name as sources show it (`handler`), `(anonymous)` when it has none.
pub(crate) fn fn_name(s: &HeapSnapshot, o: NodeId) -> String {
    let n = s.raw_name(o);
    if n.is_empty() {
        "(anonymous)".into()
    } else {
        n.to_owned()
    }
}

/// Whether `o` is the global object (`global` in Node, `Window` in a browser, with or
/// without the ` / url` suffix V8 adds).
pub(crate) fn is_global_object(s: &HeapSnapshot, o: NodeId) -> bool {
    let name = s.raw_name(o);
    name == "global" || name.starts_with("global /") || name == "Window" || name.starts_with("Window /")
}
