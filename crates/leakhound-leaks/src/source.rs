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
    /// Why this place was picked (without allocation stacks a snapshot has no call
    /// stacks, and the source is a guess).
    pub kind: SourceKind,
}

/// How a source location was guessed from a snapshot, which records where functions and
/// constructors are defined but not who called them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// The function whose closure context keeps the holder (the closure or module that
    /// owns the Map, array or emitter): the code that adds to it is in there.
    HolderOwner,
    /// A function among what accumulates: the accumulating closure itself (a listener
    /// defined where it is added), the function a bound function calls, or the most
    /// common closure among the leaked objects.
    Closure,
    /// The constructor of the objects that accumulate (their class, not where they are
    /// made).
    Constructor,
    /// Not a guess: the first frame of the app's own code in the most common stack that
    /// allocated the objects (recorded with allocation tracking on). V8 records where the
    /// frame's function starts, so the place is the start of that function.
    AllocationStack,
}

impl SourceKind {
    /// The wire name: `holder_owner`, `closure`, `constructor` or `allocation_stack`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::HolderOwner => "holder_owner",
            SourceKind::Closure => "closure",
            SourceKind::Constructor => "constructor",
            SourceKind::AllocationStack => "allocation_stack",
        }
    }
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

    /// Whether the script is in a `node_modules` folder: a dependency of the app.
    pub fn in_dependency(&self) -> bool {
        self.dependency().is_some()
    }

    /// The package a dependency's script belongs to, as the folder after the last
    /// `node_modules/` names it (`winston`, `@scope/name`); `None` for the app's own code.
    pub fn dependency(&self) -> Option<&str> {
        let path = self.path.replace('\\', "/");
        let i = path.rfind("node_modules/")?;
        if i > 0 && !path[..i].ends_with('/') {
            return None;
        }
        let rest = &self.path[i + "node_modules/".len()..];
        let mut parts = rest.splitn(3, ['/', '\\']);
        let first = parts.next().filter(|p| !p.is_empty())?;
        let len = if first.starts_with('@') {
            first.len() + 1 + parts.next()?.len()
        } else {
            first.len()
        };
        Some(&rest[..len])
    }

    /// Where the script is, best first: the app's own code (0), a dependency (1), Node's
    /// internals (2).
    pub(crate) fn origin_rank(&self) -> u8 {
        if !self.is_user_code() {
            2
        } else if self.in_dependency() {
            1
        } else {
            0
        }
    }
}

/// At most this many of the app's scripts are listed for a source-level search
/// ([`crate::Cluster::app_scripts`]).
pub const MAX_APP_SCRIPTS: usize = 256;

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

    /// The app's own scripts (not Node's, not under `node_modules`), sorted, at most
    /// [`MAX_APP_SCRIPTS`].
    pub fn app_scripts(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .paths
            .values()
            .filter(|p| {
                let r = SourceRef {
                    path: (*p).clone(),
                    line: 0,
                    column: 0,
                    what: String::new(),
                    kind: SourceKind::HolderOwner,
                };
                r.origin_rank() == 0
            })
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out.truncate(MAX_APP_SCRIPTS);
        out
    }

    /// The path of a script id.
    pub fn path(&self, script_id: u32) -> Option<&str> {
        self.paths.get(&script_id).map(|s| s.as_str())
    }

    /// A source reference for a location, guessed as `kind` says.
    pub fn resolve(&self, loc: Location, what: String, kind: SourceKind) -> Option<SourceRef> {
        let path = self.path(loc.script_id)?;
        Some(SourceRef {
            path: path.to_owned(),
            line: loc.line + 1,
            column: loc.column + 1,
            what,
            kind,
        })
    }
}

fn internal_target(s: &HeapSnapshot, o: NodeId, names: &[u32]) -> Option<NodeId> {
    s.edges(o)
        .find(|&e| s.edge_type(e) == EdgeType::Internal && names.contains(&s.edge_name_or_index(e)))
        .map(|e| s.edge_target(e))
}

#[cfg(test)]
mod tests {
    use super::{SourceKind, SourceRef};

    fn at(path: &str) -> SourceRef {
        SourceRef {
            path: path.to_owned(),
            line: 1,
            column: 1,
            what: String::new(),
            kind: SourceKind::Closure,
        }
    }

    #[test]
    fn a_dependency_is_named_by_the_folder_after_its_last_node_modules() {
        let dep = |p: &str| at(p).dependency().map(str::to_owned);
        assert_eq!(
            dep("/srv/app/node_modules/winston/lib/winston/logger.js").as_deref(),
            Some("winston")
        );
        assert_eq!(
            dep("/srv/app/node_modules/@scope/pkg/index.js").as_deref(),
            Some("@scope/pkg")
        );
        assert_eq!(
            dep("/srv/app/node_modules/a/node_modules/b/index.js").as_deref(),
            Some("b")
        );
        assert_eq!(dep("node_modules/express/index.js").as_deref(), Some("express"));
        assert_eq!(dep("/srv/app/server.js"), None);
        assert_eq!(dep("/srv/my_node_modules/x.js"), None);
        assert_eq!(dep("node:events"), None);
        let ranks: Vec<u8> = ["/srv/app/server.js", "/srv/app/node_modules/x/i.js", "node:events"]
            .iter()
            .map(|p| at(p).origin_rank())
            .collect();
        assert_eq!(ranks, [0, 1, 2]);
        assert!(at("/srv/app/node_modules/x/i.js").in_dependency());
        assert!(!at("/srv/app/server.js").in_dependency());
    }
}
