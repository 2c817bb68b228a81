//! Naming the holder of a cluster from its retainer trace: the closure variable or global it
//! hangs off, then the property chain (`lifecycle._events.shutdown`).

use leakhound_heap::{EdgeType, HeapSnapshot, NodeId, NodeType};

use crate::nodes::{fn_name, is_global_object, is_internal};
use crate::source::{ScriptMap, SourceKind, SourceRef};
use crate::trace::Traces;

/// The class leakhound gives its GC observer's state in the target (the inspector
/// crate's `OWN_STATE_CLASS`; this crate does not depend on it).
const OWN_STATE_CLASS: &str = "LeakhoundGcState";

/// Whether `o` hangs off leakhound's own instrumentation in the target (the GC observer's
/// state under `Symbol.for('leakhound.…')`, an object of class `LeakhoundGcState`,
/// whichever path reaches it): not the app's memory.
pub(crate) fn is_own_instrumentation(s: &HeapSnapshot, traces: &Traces, o: NodeId) -> bool {
    let mut cur = o;
    for _ in 0..32 {
        if s.node_type(cur) == NodeType::Object && s.raw_name(cur) == OWN_STATE_CLASS {
            return true;
        }
        let Some(e) = traces.parent_edge(cur) else { return false };
        if !s.edge_type(e).has_index_name()
            && s.strings()
                .get(s.edge_name_or_index(e))
                .starts_with("<symbol leakhound.")
        {
            return true;
        }
        match traces.parent(cur) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

/// Whether `holder` is the `list` of one of node's `FreeList`s (`lib/internal/freelist.js`,
/// e.g. `_http_common`'s pool of HTTP parsers): a pool that keeps at most its `max` freed
/// objects for reuse. It fills up when more requests are parsed at once than before, so
/// its new objects grow across snapshots under a load that grows, but it is bounded by
/// construction: never a leak.
pub(crate) fn is_bounded_pool(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> bool {
    traces.parent_edge(holder).is_some_and(|e| s.edge_name(e) == "list")
        && traces.parent(holder).is_some_and(|p| s.class(p).name == "FreeList")
}

/// Whether `holder` is an EventEmitter's `_events` object or a listener array in it: what
/// it keeps directly are listeners.
pub(crate) fn holds_listeners(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> bool {
    let edge_is = |o: NodeId| traces.parent_edge(o).is_some_and(|e| s.edge_name(e) == "_events");
    edge_is(holder) || traces.parent(holder).is_some_and(edge_is)
}

/// The name of the variable whose value `o` is, when its parent on the trace is a closure
/// context: the context edge's name, or, for a block scope's context (`const` / `let` in
/// an `if`/`else` or `{ }` block, a `for` body), whose slots V8 writes as unnamed hidden
/// edges (`{1}`), the local name at that index of the context's `scope_info`, whose
/// hidden edges list the scope's local names in slot order (V8's
/// `V8HeapExplorer::ExtractContextReferences` names only declaration contexts). `None`
/// when `o` is not a variable's value or the name cannot be read (a scope whose names
/// are in a hash table, an internal name such as `.home_object`).
pub(crate) fn variable_name(s: &HeapSnapshot, traces: &Traces, o: NodeId) -> Option<String> {
    let e = traces.parent_edge(o)?;
    if s.edge_type(e) == EdgeType::Context {
        return Some(s.edge_name(e).into_owned());
    }
    block_slot_name(s, traces.parent(o)?, e)
}

/// The name of the local a block context `ctx` keeps through its hidden edge `e` (see
/// [`variable_name`]).
pub(crate) fn block_slot_name(s: &HeapSnapshot, ctx: NodeId, e: u32) -> Option<String> {
    // Only a context V8 named nothing of (not a function's, whose locals all have named
    // context edges and whose unnamed slots are not variables).
    if s.edge_type(e) != EdgeType::Hidden
        || s.raw_name(ctx) != "system / Context"
        || s.edges(ctx).any(|x| s.edge_type(x) == EdgeType::Context)
    {
        return None;
    }
    let slot = s.edge_name_or_index(e);
    let scope_info = s
        .edges(ctx)
        .find(|&x| s.edge_type(x) == EdgeType::Internal && s.edge_name(x) == "scope_info")
        .map(|x| s.edge_target(x))?;
    let name_edge = s
        .edges(scope_info)
        .find(|&x| s.edge_type(x) == EdgeType::Hidden && s.edge_name_or_index(x) == slot)?;
    let name = s.edge_target(name_edge);
    if !s.is_string(name) {
        return None;
    }
    let name = s.raw_name(name);
    is_identifier(name).then(|| name.to_owned())
}

/// The closure whose context variable the holder hangs off, with the variable's name.
/// Where the holder's owning function is: the source of a closure variable holder
/// (`function handler (holds \`quoteCache\`)`).
pub(crate) fn holder_owner_source(
    s: &HeapSnapshot,
    traces: &Traces,
    scripts: &ScriptMap,
    holder: NodeId,
) -> Option<SourceRef> {
    let (owner, var) = holder_owner(s, traces, holder)?;
    let loc = s.location(owner)?;
    scripts.resolve(
        loc,
        format!("function {} (holds `{var}`)", fn_name(s, owner)),
        SourceKind::HolderOwner,
    )
}

pub(crate) fn holder_owner(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> Option<(NodeId, String)> {
    let mut cur = holder;
    for _ in 0..8 {
        // A WeakMap's value: owned as the WeakMap is.
        if let Some((_, map)) = traces.parent_edge(cur).and_then(|e| weakmap_entry(s, traces, e)) {
            cur = map;
            continue;
        }
        let p = traces.parent(cur)?;
        if let Some(var) = variable_name(s, traces, cur) {
            // p is the Context; its retainer on the trace is usually the closure.
            let mut q = p;
            for _ in 0..4 {
                let pp = traces.parent(q)?;
                if s.node_type(pp) == NodeType::Closure {
                    return Some((pp, var));
                }
                q = pp;
            }
            return None;
        }
        cur = p;
    }
    None
}

/// The holder's label: the closure variable or global it hangs off, then the property
/// chain (`lifecycle._events.shutdown`); or, when no variable is near, the class of the
/// object the chain starts from (`MemoryStore.sessions`).
pub(crate) fn holder_label(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> String {
    anchored_label(s, traces, holder).0
}

/// [`holder_label`] and the node the label starts from: the closure context of its
/// variable, the global object, `process`, or the object whose class starts it. Holders
/// with one label and one anchor are one variable's (the per-key arrays of one Map); two
/// Maps both named `cache` in two modules have two anchors.
pub(crate) fn anchored_label(s: &HeapSnapshot, traces: &Traces, holder: NodeId) -> (String, NodeId) {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = holder;
    let mut anchored = false;
    let mut anchor = holder;
    for _ in 0..6 {
        // Node's `process` object (reached through the realm's internals, not the global's
        // property): what the app writes is `process`.
        if cur != holder && is_process_object(s, cur) {
            parts.push("process".into());
            anchored = true;
            anchor = cur;
            break;
        }
        let (Some(e), Some(p)) = (traces.parent_edge(cur), traces.parent(cur)) else {
            break;
        };
        // A closure variable, of a function's context or of a block's.
        if let Some(var) = variable_name(s, traces, cur) {
            parts.push(var);
            anchored = true;
            anchor = p;
            break;
        }
        // A WeakMap's value, reached from its key: the WeakMap's `get(key)`, labelled from
        // the WeakMap on (V8 names the key-to-value edge after the WeakMap's table).
        if let Some((key, map)) = weakmap_entry(s, traces, e) {
            parts.push(format!("get({key})"));
            cur = map;
            continue;
        }
        match s.edge_type(e) {
            EdgeType::Property | EdgeType::Shortcut => {
                let name = s.edge_name(e).into_owned();
                if name == OWNER_SYMBOL && cur != holder {
                    // The JS owner of a native handle (a `net.Socket` its `TCP` handle
                    // keeps): named by its class, as the app knows it
                    // (`Socket._events.close`), and anchored at the server that accepted
                    // it, so that one holder on each connection of a server is one
                    // cluster, not one per connection.
                    parts.push(s.class(cur).name.clone());
                    anchored = true;
                    anchor = accepting_server(s, cur).unwrap_or(cur);
                    break;
                }
                if is_global_object(s, p) {
                    parts.push(name);
                    anchored = true;
                    anchor = p;
                    break;
                }
                let formatted = if is_identifier(&name) {
                    name
                } else if let Some(desc) = name.strip_prefix("<symbol ").and_then(|d| d.strip_suffix('>')) {
                    // A Symbol key, as the app writes it.
                    format!("[Symbol({desc})]")
                } else {
                    format!("[{name:?}]")
                };
                parts.push(formatted);
                if s.raw_name(p) != "Object"
                    && !is_internal(s, p)
                    && s.node_type(p) != NodeType::Closure
                    && parts.len() >= 2
                {
                    // A named class: good enough as an anchor if no variable follows soon.
                    let next_is_var = variable_name(s, traces, p).is_some();
                    if !next_is_var && parts.len() >= 3 {
                        parts.push(s.class(p).name.clone());
                        anchored = true;
                        anchor = p;
                        break;
                    }
                }
            }
            // Indexes of arrays vary per element; keys of other objects (a timer list per
            // duration) say which one.
            EdgeType::Element if s.raw_name(p) == "Array" || is_internal(s, p) => parts.push("[]".into()),
            EdgeType::Element => parts.push(format!("[{}]", s.edge_name(e))),
            // Skip V8 internals such as a Map's {table}.
            EdgeType::Internal | EdgeType::Hidden if !is_internal(s, cur) && !parts.is_empty() => {
                parts.push(format!("{{{}}}", s.edge_name(e)));
            }
            _ => {}
        }
        cur = p;
    }
    if !anchored {
        parts.push(s.class(cur).name.clone());
        anchor = cur;
    }
    parts.reverse();
    let mut out = String::new();
    for p in parts {
        if p.starts_with('[') || out.is_empty() {
            out.push_str(&p);
        } else {
            out.push('.');
            out.push_str(&p);
        }
    }
    (out, anchor)
}

/// For an edge V8 names after a WeakMap entry (from the key to the value): the key's
/// class and the WeakMap, when the trace reaches the WeakMap's table from it.
fn weakmap_entry(s: &HeapSnapshot, traces: &Traces, e: leakhound_heap::EdgeId) -> Option<(String, NodeId)> {
    if s.edge_type(e) != EdgeType::Internal {
        return None;
    }
    let name = s.edge_name(e);
    let (key, table_id) = ephemeron_key(&name)?;
    let map = s
        .node_by_id(table_id)
        .and_then(|t| traces.parent(t))
        .filter(|&m| s.raw_name(m) == "WeakMap")?;
    Some((key.to_owned(), map))
}

/// The key's class and the table's V8 id of an edge V8 names after a WeakMap entry
/// (`1 / part of key (Server @89681) -> value (Array @90177) pair in WeakMap (table
/// @90175)`); `None` for any other name.
fn ephemeron_key(name: &str) -> Option<(&str, u32)> {
    let (_, rest) = name.split_once("part of key (")?;
    let (key, rest) = rest.split_once(" @")?;
    let (pair, table) = rest.rsplit_once("(table @")?;
    if !pair.ends_with("pair in WeakMap ") {
        return None;
    }
    Some((key, table.strip_suffix(')')?.parse().ok()?))
}

/// The edge from a native handle's JS wrapper (`TCP`, `Pipe`) to the object that owns
/// it (the `net.Socket`), as V8 names node's `owner_symbol` property.
const OWNER_SYMBOL: &str = "<symbol owner_symbol>";

/// The server that accepted `socket` (its `server` property, which node's `net` sets on
/// every socket a server accepts), if it is one.
fn accepting_server(s: &HeapSnapshot, socket: NodeId) -> Option<NodeId> {
    s.edges(socket)
        .find(|&e| s.edge_type(e) == EdgeType::Property && s.edge_name(e) == "server")
        .map(|e| s.edge_target(e))
        .filter(|&o| s.node_type(o) == NodeType::Object)
}

/// Whether `s` can follow a `.` in JavaScript: an identifier, or a class's private name
/// (`#all`).
pub(crate) fn is_identifier(s: &str) -> bool {
    let s = s.strip_prefix('#').unwrap_or(s);
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

pub(crate) fn is_process_object(s: &HeapSnapshot, o: NodeId) -> bool {
    s.node_type(o) == NodeType::Object && s.raw_name(o) == "process"
}

#[cfg(test)]
mod tests {
    use super::{ephemeron_key, is_own_instrumentation};
    use crate::trace::Traces;

    /// A snapshot of the root, a holder object named `holder_name` under the root's
    /// element edge, its `events` array and one event object in it.
    fn own_state_snapshot(holder_name: &str) -> leakhound_heap::HeapSnapshot {
        let text = format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":4,"edge_count":3}},"nodes":[9,0,1,0,1,0, 3,1,3,32,1,0, 3,2,5,16,1,0, 3,3,7,48,0,0],"edges":[1,1,6, 2,4,12, 1,0,18],"locations":[],"strings":["","{holder_name}","Array","Object","events"]}}"#
        );
        leakhound_heap::load_with(text.as_bytes(), leakhound_heap::Analysis::Graph, &mut |_| {})
            .expect("a valid snapshot")
            .snapshot
    }

    #[test]
    fn what_hangs_off_the_gc_observers_state_is_leakhounds_own_whatever_the_path() {
        let s = own_state_snapshot("LeakhoundGcState");
        let traces = Traces::compute(&s);
        assert!(is_own_instrumentation(&s, &traces, 3), "the event under the state");
        assert!(is_own_instrumentation(&s, &traces, 1), "the state itself");
        let s = own_state_snapshot("Registry");
        let traces = Traces::compute(&s);
        assert!(!is_own_instrumentation(&s, &traces, 3), "an app's object");
    }

    #[test]
    fn weakmap_entry_edges_give_the_key_class_and_the_table_id() {
        assert_eq!(
            ephemeron_key("1 / part of key (Server @89681) -> value (Array @90177) pair in WeakMap (table @90175)"),
            Some(("Server", 90175))
        );
        assert_eq!(
            ephemeron_key("part of key (Object @3) -> value (Map @5) pair in WeakMap (table @7)"),
            Some(("Object", 7))
        );
        // The other ephemeron tables, and plain names, are not WeakMap entries.
        assert_eq!(
            ephemeron_key("part of key (Object @3) -> value (Map @5) pair in ephemeron table (table @7)"),
            None
        );
        assert_eq!(ephemeron_key("table"), None);
        assert_eq!(
            ephemeron_key("part of key (Server @1) -> value (Array @2) pair in WeakMap (table @x)"),
            None
        );
    }
}
