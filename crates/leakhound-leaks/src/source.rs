//! Source locations without an inspector: the snapshot's `locations` section gives
//! (script id, line, column) for closures and for objects built by script constructors;
//! the script's path comes from the closure → `shared` (SharedFunctionInfo) → `script`
//! (or `script_or_debug_info`) → Script node, whose name is the path or URL.

use std::collections::HashMap;

use leakhound_heap::{EdgeType, HeapSnapshot, Location, NodeId, NodeType};

/// A place in the app's source, 1-based line and column (editor convention; the
/// snapshot's are 0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// Script path or URL (`file://` stripped).
    pub path: String,
    /// Line, counted from 1 as editors do.
    pub line: u32,
    /// Column, counted from 1 as editors do.
    pub column: u32,
    /// What is there: `constructor of Quote`, `function abortInFlight`, ...
    pub what: String,
}

impl SourceRef {
    /// The place as `path:line:column`, the form editors and terminals link.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.path, self.line, self.column)
    }

    /// Whether the script is the app's (not Node's own `node:` internals).
    pub fn is_user_code(&self) -> bool {
        !(self.path.starts_with("node:") || self.path.is_empty() || self.path.starts_with("internal/"))
    }
}

/// script id → script path, learned from the closures of a snapshot.
pub struct ScriptMap {
    paths: HashMap<u32, String>,
}

impl ScriptMap {
    /// Scans the closures of `s`.
    pub fn build(s: &HeapSnapshot) -> ScriptMap {
        let strings = s.strings();
        let shared_names = strings.find_all("shared");
        let script_names: Vec<u32> = ["script", "script_or_debug_info"]
            .iter()
            .flat_map(|t| strings.find_all(t))
            .collect();
        let mut paths = HashMap::new();
        for o in 0..s.node_count() as NodeId {
            if s.node_type(o) != NodeType::Closure {
                continue;
            }
            let Some(loc) = s.location(o) else { continue };
            if paths.contains_key(&loc.script_id) {
                continue;
            }
            let Some(sfi) = internal_target(s, o, &shared_names) else {
                continue;
            };
            let Some(script) = internal_target(s, sfi, &script_names) else {
                continue;
            };
            let name = s.raw_name(script);
            if !name.is_empty() {
                paths.insert(loc.script_id, name.strip_prefix("file://").unwrap_or(name).to_owned());
            }
        }
        ScriptMap { paths }
    }

    /// The path of a script id.
    pub fn path(&self, script_id: u32) -> Option<&str> {
        self.paths.get(&script_id).map(|s| s.as_str())
    }

    /// A source reference for a location.
    pub fn resolve(&self, loc: Location, what: String) -> Option<SourceRef> {
        let path = self.path(loc.script_id)?;
        Some(SourceRef {
            path: path.to_owned(),
            line: loc.line + 1,
            column: loc.column + 1,
            what,
        })
    }
}

fn internal_target(s: &HeapSnapshot, o: NodeId, names: &[u32]) -> Option<NodeId> {
    s.edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && names.contains(&s.edge_name_or_index(e)))
        .map(|e| s.edge_target(e))
}
