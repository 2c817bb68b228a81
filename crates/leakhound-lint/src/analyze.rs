//! One file's analysis: parse with oxc, build its semantic model (scopes, symbols,
//! references, the node tree), then run every rule over the nodes. Cross-file facts (which
//! listeners some file removes) are returned beside the candidate findings; `lib.rs`
//! settles them once every file is done.

use std::collections::HashSet;
use std::path::Path;

use oxc_allocator::Allocator;
use oxc_ast::AstKind;
use oxc_ast::ast::{
    Argument, AssignmentTarget, BinaryOperator, BindingPattern, CallExpression, Expression, NewExpression,
    ObjectPropertyKind, PropertyKey, SimpleAssignmentTarget, UnaryOperator,
};
use oxc_parser::{ParseOptions, Parser};
use oxc_semantic::{AstNodes, Scoping, Semantic, SemanticBuilder};
use oxc_span::{GetSpan, SourceType, Span};
use oxc_syntax::node::NodeId;
use oxc_syntax::scope::ScopeId;
use oxc_syntax::symbol::SymbolId;

use crate::model::{FileError, FunctionSpan, Position};
use crate::rules::RuleId;

/// A listener finding's removal key: the names the listener goes by (its own, and the
/// name it was imported under) and the emitter's path.
pub(crate) type ListenerKey = (Vec<String>, String);

/// A finding before suppression comments, the config and the cross-file listener check.
#[derive(Debug, Clone)]
pub(crate) struct RawFinding {
    pub rule: RuleId,
    pub span: Span,
    pub message: String,
    pub subject: String,
    /// The innermost function around the finding.
    pub function: Option<Span>,
    /// `listener-per-call` only: the names the listener can be removed by, and the
    /// emitter's path (for `removeAllListeners`).
    pub listener: Option<ListenerKey>,
    /// A severity other than the rule's default (a softer variant of the finding).
    pub severity: Option<crate::rules::Severity>,
}

/// What one file yields.
#[derive(Debug, Default)]
pub(crate) struct FileAnalysis {
    pub findings: Vec<RawFinding>,
    /// Names of functions passed to `off`/`removeListener` in this file.
    pub removed_listeners: HashSet<String>,
    /// Emitter paths (`bus`, `process`) on which `removeAllListeners` is called.
    pub removed_all: HashSet<String>,
    /// Every function of the file, in source order.
    pub functions: Vec<FunctionSpan>,
    /// The line index, for positions.
    pub lines: LineIndex,
}

/// Byte offset to line/column, columns in characters.
#[derive(Debug, Default, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        LineIndex { starts }
    }

    pub fn count(&self) -> usize {
        self.starts.len()
    }

    pub fn position(&self, text: &str, offset: u32) -> Position {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1] as usize;
        let end = (offset as usize).min(text.len());
        let column = text.get(start..end).map_or(end - start, |s| s.chars().count()) + 1;
        Position {
            line: line as u32,
            column: column as u32,
        }
    }

    /// The text of 1-based `line`, without its line break.
    pub fn line_text<'t>(&self, text: &'t str, line: u32) -> &'t str {
        let i = line as usize - 1;
        let start = self.starts.get(i).copied().unwrap_or(0) as usize;
        let end = self.starts.get(i + 1).map_or(text.len(), |&e| e as usize);
        text.get(start..end).unwrap_or("").trim_end_matches(['\n', '\r'])
    }
}

/// The source type oxc parses a file with: by extension, `.js` with JSX allowed.
pub(crate) fn source_type(path: &Path) -> Option<SourceType> {
    let st = SourceType::from_path(path).ok()?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Some(if matches!(ext, "js" | "cjs" | "mjs") {
        st.with_jsx(true)
    } else {
        st
    })
}

/// Parses and analyses one file. A syntax error is a [`FileError`] with its position.
pub(crate) fn analyze(path: &Path, text: &str) -> Result<FileAnalysis, FileError> {
    let lines = LineIndex::new(text);
    let Some(st) = source_type(path) else {
        return Err(FileError {
            path: path.to_owned(),
            position: None,
            message: "not a JavaScript or TypeScript file".into(),
        });
    };
    let allocator = Allocator::default();
    let options = ParseOptions {
        allow_return_outside_function: true,
        ..ParseOptions::default()
    };
    let ret = Parser::new(&allocator, text, st).with_options(options).parse();
    if ret.panicked || !ret.diagnostics.is_empty() {
        let first = ret.diagnostics.first();
        let position = first
            .and_then(|d| d.labels.first())
            .map(|l| lines.position(text, l.offset()));
        let message = first.map_or_else(|| "syntax error".to_owned(), |d| format!("syntax error: {}", d.message));
        return Err(FileError {
            path: path.to_owned(),
            position,
            message,
        });
    }
    let sem = SemanticBuilder::new()
        .with_build_nodes(true)
        .build(&ret.program)
        .semantic;
    let mut cx = Cx::new(&sem, text);
    cx.run();
    let Cx {
        out,
        removed_listeners,
        removed_all,
        functions,
        ..
    } = cx;
    let functions = functions
        .into_iter()
        .map(|(span, name)| FunctionSpan {
            name,
            start: lines.position(text, span.start),
            end: lines.position(text, span.end),
            byte_range: (span.start, span.end),
        })
        .collect();
    Ok(FileAnalysis {
        findings: out,
        removed_listeners,
        removed_all,
        functions,
        lines,
    })
}

/// Methods that add a listener.
const ADD_LISTENER: &[&str] = &[
    "on",
    "once",
    "addListener",
    "prependListener",
    "prependOnceListener",
    "addEventListener",
];
/// Methods that remove one.
const REMOVE_LISTENER: &[&str] = &["off", "removeListener", "removeEventListener"];
/// Calls whose callback runs once when the call itself runs once.
/// Test frameworks' callbacks (`test`, `it`, `t.test`, hooks) are among them: each runs
/// once per test, not per request.
const DEFERRED_ONCE: &[&str] = &[
    "listen",
    "once",
    "then",
    "catch",
    "finally",
    "setTimeout",
    "setImmediate",
    "nextTick",
    "queueMicrotask",
    "test",
    "it",
    "describe",
    "suite",
    "before",
    "after",
    "beforeAll",
    "afterAll",
    "beforeEach",
    "afterEach",
];
/// Events a `once` listener may wait for a long time (the process' or a server's end):
/// a `once` for any other event (`drain`, `message`, `end`) is gone when it fires.
const RARE_EVENTS: &[&str] = &[
    "exit",
    "beforeExit",
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR2",
    "shutdown",
    "close",
    "stop",
    "uncaughtException",
    "unhandledRejection",
];

struct Cx<'s, 'a> {
    nodes: &'s AstNodes<'a>,
    scoping: &'s Scoping,
    text: &'a str,
    out: Vec<RawFinding>,
    removed_listeners: HashSet<String>,
    removed_all: HashSet<String>,
    /// Every name inside the arguments of clearInterval/clearTimeout calls.
    cleared_names: HashSet<String>,
    /// `clearInterval`/`clearTimeout` passed as a value (`timers.forEach(clearInterval)`).
    clear_as_value: bool,
    functions: Vec<(Span, String)>,
    /// Every `if`'s test and the function around it (for once-guards).
    if_tests: std::collections::HashMap<NodeId, Vec<Span>>,
    /// Spans of each symbol's write references, filled on first use.
    writes: std::cell::RefCell<std::collections::HashMap<SymbolId, Vec<Span>>>,
    /// Every identifier reference that resolves, by start offset.
    resolved_idents: Vec<(Span, SymbolId)>,
    /// `runs_once` answers, per function.
    once_memo: std::cell::RefCell<std::collections::HashMap<NodeId, bool>>,
}

/// What a collection reference does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Grow(&'static str),
    Shrink,
    Escape,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollKind {
    Map,
    Set,
    Array,
    Object,
}

impl CollKind {
    fn name(self) -> &'static str {
        match self {
            CollKind::Map => "Map",
            CollKind::Set => "Set",
            CollKind::Array => "array",
            CollKind::Object => "object used as a map",
        }
    }
}

impl<'s, 'a> Cx<'s, 'a> {
    fn new(sem: &'s Semantic<'a>, text: &'a str) -> Self {
        Cx {
            nodes: sem.nodes(),
            scoping: sem.scoping(),
            text,
            out: Vec::new(),
            removed_listeners: HashSet::new(),
            removed_all: HashSet::new(),
            cleared_names: HashSet::new(),
            clear_as_value: false,
            functions: Vec::new(),
            if_tests: std::collections::HashMap::new(),
            writes: std::cell::RefCell::default(),
            resolved_idents: Vec::new(),
            once_memo: std::cell::RefCell::default(),
        }
    }

    fn run(&mut self) {
        // First pass: facts the rules read (clears, removals, functions).
        for node in self.nodes.iter() {
            match node.kind() {
                AstKind::CallExpression(call) => self.collect_call_facts(call),
                AstKind::IdentifierReference(id)
                    if matches!(id.name.as_str(), "clearInterval" | "clearTimeout")
                        && !matches!(self.nodes.parent_kind(node.id()), AstKind::CallExpression(c) if c.callee.span() == id.span) =>
                {
                    self.clear_as_value = true;
                }
                AstKind::Function(_) | AstKind::ArrowFunctionExpression(_) => {
                    let span = node.kind().span();
                    let name = self.function_name(node.id());
                    self.functions.push((span, name));
                }
                AstKind::IfStatement(ifs) => {
                    if let Some(f) = self.enclosing_fn(node.id()) {
                        self.if_tests.entry(f).or_default().push(ifs.test.span());
                    }
                }
                _ => {}
            }
            if let AstKind::IdentifierReference(r) = node.kind()
                && let Some(sym) = self.ref_symbol(r.reference_id.get())
            {
                self.resolved_idents.push((r.span, sym));
            }
        }
        self.resolved_idents.sort_by_key(|(s, _)| (s.start, s.end));
        for node in self.nodes.iter() {
            let id = node.id();
            match node.kind() {
                AstKind::CallExpression(call) => {
                    self.listener_per_call(id, call);
                    self.interval_not_cleared(id, call);
                    self.max_listeners(call);
                }
                AstKind::NewExpression(new) => self.agent_per_call(id, new),
                AstKind::AssignmentExpression(a) => {
                    if let AssignmentTarget::StaticMemberExpression(m) = &a.left
                        && m.property.name == "defaultMaxListeners"
                        && is_unbounded_number(&a.right)
                    {
                        self.push(
                            RuleId::MaxListenersUnbounded,
                            a.span,
                            None,
                            self.snippet(m.span),
                            format!(
                                "`{}` = {} turns off the MaxListenersExceededWarning for every emitter",
                                self.snippet(m.span),
                                self.snippet(a.right.span())
                            ),
                        );
                    }
                }
                AstKind::VariableDeclarator(d) => {
                    if let (BindingPattern::BindingIdentifier(b), Some(init)) = (&d.id, &d.init) {
                        let sym = b.symbol_id();
                        self.unbounded_collection_decl(sym, init);
                        self.closure_keeps_large(sym, init);
                        self.stream_not_consumed(id, sym, b.name.as_str(), init);
                    }
                }
                AstKind::PropertyDefinition(p) if p.r#static => {
                    // `static cache = new Map()`: reached as `ClassName.cache`.
                    if let (Some(value), Some(key)) = (&p.value, p.key.static_name())
                        && let Some(kind) = collection_kind(value)
                        && let Some(class_sym) = self.enclosing_class_symbol(id)
                    {
                        self.unbounded_collection(class_sym, Some(key.as_ref()), kind);
                    }
                }
                _ => {}
            }
        }
        self.accidental_globals();
    }

    // ---- helpers ---------------------------------------------------------------------

    fn snippet(&self, span: Span) -> String {
        let s = self.text.get(span.start as usize..span.end as usize).unwrap_or("");
        let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 60 {
            let cut: String = one_line.chars().take(57).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    }

    fn push(&mut self, rule: RuleId, span: Span, at: Option<NodeId>, subject: String, message: String) {
        let function = at.and_then(|n| self.enclosing_fn(n)).map(|f| self.nodes.kind(f).span());
        self.out.push(RawFinding {
            rule,
            span,
            message,
            subject,
            function,
            listener: None,
            severity: None,
        });
    }

    fn function_name(&self, fn_id: NodeId) -> String {
        if let AstKind::Function(f) = self.nodes.kind(fn_id)
            && let Some(id) = &f.id
        {
            return id.name.to_string();
        }
        let parent = self.up(fn_id);
        match self.nodes.kind(parent) {
            AstKind::VariableDeclarator(d) => match &d.id {
                BindingPattern::BindingIdentifier(b) => b.name.to_string(),
                _ => "<anonymous>".into(),
            },
            AstKind::ObjectProperty(p) => p.key.static_name().map_or("<anonymous>".into(), |n| n.to_string()),
            AstKind::MethodDefinition(m) => m.key.static_name().map_or("<anonymous>".into(), |n| n.to_string()),
            AstKind::PropertyDefinition(p) => p.key.static_name().map_or("<anonymous>".into(), |n| n.to_string()),
            AstKind::AssignmentExpression(a) => self
                .last_name_of_target(&a.left)
                .unwrap_or_else(|| "<anonymous>".into()),
            _ => "<anonymous>".into(),
        }
    }

    /// How a message names a function: `` `handler` ``, or `the `app.use` callback` for an
    /// anonymous one passed to a call.
    fn describe_fn(&self, fn_id: NodeId) -> String {
        let name = self.function_name(fn_id);
        if name != "<anonymous>" {
            return format!("`{name}`");
        }
        if let AstKind::CallExpression(c) = self.nodes.kind(self.up(fn_id)) {
            return format!("the `{}` callback", self.snippet(c.callee.span()));
        }
        "an anonymous function".to_owned()
    }

    fn last_name_of_target(&self, t: &AssignmentTarget<'a>) -> Option<String> {
        match t {
            AssignmentTarget::AssignmentTargetIdentifier(i) => Some(i.name.to_string()),
            AssignmentTarget::StaticMemberExpression(m) => Some(m.property.name.to_string()),
            _ => None,
        }
    }

    /// The parent, skipping parentheses and TypeScript-only wrappers.
    fn up(&self, id: NodeId) -> NodeId {
        let mut p = self.nodes.parent_id(id);
        while matches!(
            self.nodes.kind(p),
            AstKind::ParenthesizedExpression(_)
                | AstKind::TSAsExpression(_)
                | AstKind::TSNonNullExpression(_)
                | AstKind::TSSatisfiesExpression(_)
                | AstKind::TSTypeAssertion(_)
                | AstKind::ChainExpression(_)
        ) {
            let next = self.nodes.parent_id(p);
            if next == p {
                break;
            }
            p = next;
        }
        p
    }

    fn enclosing_fn(&self, id: NodeId) -> Option<NodeId> {
        self.nodes.ancestor_ids(id).find(|&a| {
            matches!(
                self.nodes.kind(a),
                AstKind::Function(_) | AstKind::ArrowFunctionExpression(_)
            )
        })
    }

    fn enclosing_class_symbol(&self, id: NodeId) -> Option<SymbolId> {
        self.nodes.ancestor_ids(id).find_map(|a| match self.nodes.kind(a) {
            AstKind::Class(c) => c.id.as_ref().map(|b| b.symbol_id()),
            _ => None,
        })
    }

    fn is_iife(&self, fn_id: NodeId) -> bool {
        let span = self.nodes.kind(fn_id).span();
        let p = self.up(fn_id);
        match self.nodes.kind(p) {
            AstKind::CallExpression(c) => c.callee.get_inner_expression().span() == span,
            // `(function () {}).call(this)`
            AstKind::StaticMemberExpression(m) if matches!(m.property.name.as_str(), "call" | "apply") => {
                matches!(self.nodes.kind(self.up(p)), AstKind::CallExpression(_))
            }
            _ => false,
        }
    }

    /// Whether the function runs once per program rather than per call: an IIFE, the
    /// callback of `listen`/`once`/`then`/a timer in code that runs once, a function only
    /// called from such code, or a function guarded by a module-level flag it sets.
    fn runs_once(&self, fn_id: NodeId, depth: u32) -> bool {
        if depth > 6 {
            return false;
        }
        if let Some(&known) = self.once_memo.borrow().get(&fn_id) {
            return known;
        }
        let answer = self.runs_once_uncached(fn_id, depth);
        // Answers cut short by the depth limit are not kept.
        if depth == 0 {
            self.once_memo.borrow_mut().insert(fn_id, answer);
        }
        answer
    }

    fn runs_once_uncached(&self, fn_id: NodeId, depth: u32) -> bool {
        let outer_once = |s: &Self| s.enclosing_fn(fn_id).is_none_or(|o| s.runs_once(o, depth + 1));
        if self.is_iife(fn_id) {
            return outer_once(self);
        }
        let span = self.nodes.kind(fn_id).span();
        let p = self.up(fn_id);
        if let AstKind::CallExpression(c) = self.nodes.kind(p)
            && c.callee.get_inner_expression().span() != span
        {
            let name = callee_last_name(&c.callee);
            // `server.listen(port, host, cb)` runs its callback once; a function given to a
            // `listen` before other arguments (`listen(handler, name)`, an app's own
            // helper) is a handler, run per call.
            let last_argument = c.arguments.last().is_some_and(|a| a.span() == span);
            if name.is_some_and(|n| DEFERRED_ONCE.contains(&n) && (n != "listen" || last_argument)) {
                return outer_once(self);
            }
            return false;
        }
        // A named function only ever called from code that runs once.
        if let Some(sym) = self.fn_symbol(fn_id) {
            let refs = self.scoping.get_resolved_reference_ids(sym);
            if !refs.is_empty()
                && refs.iter().all(|&r| {
                    let rn = self.scoping.get_reference(r).node_id();
                    let rp = self.up(rn);
                    let is_callee = matches!(self.nodes.kind(rp), AstKind::CallExpression(c)
                        if c.callee.get_inner_expression().span() == self.nodes.kind(rn).span());
                    is_callee
                        && self
                            .enclosing_fn(rn)
                            .is_none_or(|o| o != fn_id && self.runs_once(o, depth + 1))
                })
            {
                return true;
            }
        }
        self.has_once_guard(fn_id)
    }

    /// The symbol naming a function: its own id, or the variable it initialises.
    fn fn_symbol(&self, fn_id: NodeId) -> Option<SymbolId> {
        if let AstKind::Function(f) = self.nodes.kind(fn_id)
            && let Some(id) = &f.id
            && f.is_declaration()
        {
            return Some(id.symbol_id());
        }
        match self.nodes.kind(self.up(fn_id)) {
            AstKind::VariableDeclarator(d) => match &d.id {
                BindingPattern::BindingIdentifier(b) => Some(b.symbol_id()),
                _ => None,
            },
            _ => None,
        }
    }

    /// `if (started) return; started = true;`: a long-lived variable written inside the
    /// function and read in one of its `if` tests.
    fn has_once_guard(&self, fn_id: NodeId) -> bool {
        let span = self.nodes.kind(fn_id).span();
        for &test in self.if_tests.get(&fn_id).map_or(&[][..], Vec::as_slice) {
            let from = self.resolved_idents.partition_point(|(s, _)| s.start < test.start);
            let flags = self.resolved_idents[from..]
                .iter()
                .take_while(|(s, _)| s.end <= test.end)
                .map(|&(_, sym)| sym)
                .filter(|&sym| self.symbol_long_lived(sym));
            for sym in flags {
                if self.written_within(sym, span) {
                    return true;
                }
            }
        }
        false
    }

    /// The name a binding was imported under, when it is an import or a destructured
    /// `require` (`import { onTick as tick }`, `const { onTick: tick } = require(…)`), so
    /// a removal in the exporting file matches.
    fn imported_name(&self, r: Option<oxc_syntax::reference::ReferenceId>) -> Option<String> {
        let sym = self.ref_symbol(r)?;
        let decl = self.scoping.symbol_declaration(sym);
        std::iter::once(decl)
            .chain(self.nodes.ancestor_ids(decl).take(2))
            .find_map(|a| match self.nodes.kind(a) {
                AstKind::ImportSpecifier(s) => Some(s.imported.name().to_string()),
                AstKind::BindingProperty(p) => p.key.static_name().map(|n| n.to_string()),
                _ => None,
            })
    }

    /// Whether `sym` is assigned somewhere inside `span`.
    fn written_within(&self, sym: SymbolId, span: Span) -> bool {
        let mut writes = self.writes.borrow_mut();
        let list = writes.entry(sym).or_insert_with(|| {
            self.scoping
                .get_resolved_reference_ids(sym)
                .iter()
                .map(|&r| self.scoping.get_reference(r))
                .filter(|rf| rf.is_write())
                .map(|rf| self.nodes.kind(rf.node_id()).span())
                .collect()
        });
        list.iter().any(|w| span.contains_inclusive(*w))
    }

    fn ref_symbol(&self, r: Option<oxc_syntax::reference::ReferenceId>) -> Option<SymbolId> {
        r.and_then(|r| self.scoping.get_reference(r).symbol_id())
    }

    /// The function around `id` when that function runs per call.
    fn per_call_fn(&self, id: NodeId) -> Option<NodeId> {
        let f = self.enclosing_fn(id)?;
        (!self.runs_once(f, 0)).then_some(f)
    }

    fn scope_long_lived(&self, scope: ScopeId) -> bool {
        self.scoping.scope_ancestors(scope).all(|s| {
            let flags = self.scoping.scope_flags(s);
            if flags.is_top() || !(flags.is_function() || flags.is_arrow()) {
                return true;
            }
            // A function scope is long-lived when the function is a module-level IIFE
            // (UMD wrappers, bundles).
            let node = self.scoping.get_node_id(s);
            matches!(
                self.nodes.kind(node),
                AstKind::Function(_) | AstKind::ArrowFunctionExpression(_)
            ) && self.is_iife(node)
                && self.enclosing_fn(node).is_none_or(|o| self.is_iife(o))
        })
    }

    fn symbol_long_lived(&self, sym: SymbolId) -> bool {
        self.scope_long_lived(self.scoping.symbol_scope_id(sym))
    }

    /// Whether an expression names an object that outlives any call: `process`, a global,
    /// or a path from a long-lived variable (an import, a module-level constant).
    fn long_lived_root(&self, e: &Expression<'a>) -> Option<(String, Option<SymbolId>)> {
        let root = root_object(e)?;
        match root {
            Expression::Identifier(id) => match self.ref_symbol(id.reference_id.get()) {
                Some(sym) => self.symbol_long_lived(sym).then(|| (id.name.to_string(), Some(sym))),
                None => {
                    matches!(id.name.as_str(), "process" | "globalThis" | "global").then(|| (id.name.to_string(), None))
                }
            },
            Expression::ThisExpression(t) => self
                .this_is_singleton(t.node_id.get())
                .then(|| ("this".to_owned(), None)),
            _ => None,
        }
    }

    /// Whether `this` (the node `this_node`) is a long-lived object: inside a method (not the
    /// constructor) of a class whose instances are only made by code that runs once
    /// (`const tracker = new Tracker()` at module level).
    fn this_is_singleton(&self, this_node: NodeId) -> bool {
        // `this` is lexical in arrows: the nearest non-arrow function.
        let Some(method_fn) = self
            .nodes
            .ancestor_ids(this_node)
            .find(|&a| matches!(self.nodes.kind(a), AstKind::Function(_)))
        else {
            return false;
        };
        let AstKind::MethodDefinition(m) = self.nodes.parent_kind(method_fn) else {
            return false;
        };
        if m.kind.is_constructor() || m.r#static {
            return false;
        }
        let Some(class_sym) = self.enclosing_class_symbol(method_fn) else {
            return false;
        };
        let mut news = 0;
        for &r in self.scoping.get_resolved_reference_ids(class_sym) {
            let rn = self.scoping.get_reference(r).node_id();
            let AstKind::NewExpression(n) = self.nodes.kind(self.up(rn)) else {
                continue;
            };
            if n.callee.get_inner_expression().span() != self.nodes.kind(rn).span() {
                continue;
            }
            if self.enclosing_fn(rn).is_some_and(|f| !self.runs_once(f, 0)) {
                return false;
            }
            news += 1;
        }
        news > 0
    }

    fn collect_call_facts(&mut self, call: &CallExpression<'a>) {
        let name = callee_last_name(&call.callee);
        match name {
            Some(m) if REMOVE_LISTENER.contains(&m) => {
                if let Some(Argument::SpreadElement(_)) | None = call.arguments.get(1) {
                    return;
                }
                if let Some(arg) = call.arguments.get(1).and_then(|a| a.as_expression()) {
                    for n in listener_names(arg) {
                        self.removed_listeners.insert(n);
                    }
                    if let Expression::Identifier(i) = arg.get_inner_expression()
                        && let Some(original) = self.imported_name(i.reference_id.get())
                    {
                        self.removed_listeners.insert(original);
                    }
                }
            }
            Some("removeAllListeners") => {
                if let Some((obj, _)) = member_parts(&call.callee) {
                    self.removed_all.insert(self.snippet(obj.span()));
                    if let Some(root) = root_object(obj) {
                        self.removed_all.insert(self.snippet(root.span()));
                    }
                }
            }
            Some("clearInterval" | "clearTimeout") => {
                for a in &call.arguments {
                    if let Some(e) = a.as_expression() {
                        let s = self.snippet(e.span());
                        for tok in s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')) {
                            if !tok.is_empty() {
                                self.cleared_names.insert(tok.to_owned());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    // ---- listener-per-call -------------------------------------------------------------

    fn listener_per_call(&mut self, id: NodeId, call: &CallExpression<'a>) {
        let Some((obj, Some(method))) = member_parts(&call.callee) else {
            return;
        };
        if !ADD_LISTENER.contains(&method) || call.arguments.len() < 2 {
            return;
        }
        let Some(listener) = call.arguments[1].as_expression() else {
            return;
        };
        if !listener_like(listener) {
            return;
        }
        // An EventTarget's listener with options (`{ once: true }`, `{ signal }`) may be
        // removed by them; only `useCapture` (a boolean) or nothing says it stays.
        if method == "addEventListener"
            && call.arguments.get(2).is_some_and(|a| {
                !matches!(
                    a.as_expression().map(|e| e.get_inner_expression()),
                    Some(Expression::BooleanLiteral(_))
                )
            })
        {
            return;
        }
        let Some((root_name, root_sym)) = self.long_lived_root(obj) else {
            return;
        };
        if method.contains("nce") {
            let rare = match call
                .arguments
                .first()
                .and_then(|a| a.as_expression())
                .map(|e| e.get_inner_expression())
            {
                Some(Expression::StringLiteral(s)) => RARE_EVENTS.contains(&s.value.as_str()),
                _ => false,
            };
            if !rare && root_name != "process" {
                return;
            }
        }
        let Some(f) = self.per_call_fn(id) else { return };
        // An emitter the same function (re)creates is a new object each call.
        if let Some(sym) = root_sym {
            let fspan = self.nodes.kind(f).span();
            if self.written_within(sym, fspan) {
                return;
            }
        }
        let emitter = self.snippet(obj.span());
        let event = call
            .arguments
            .first()
            .map_or_else(String::new, |a| self.snippet(a.span()));
        let fname = self.describe_fn(f);
        let mut names = listener_names(listener);
        if let Expression::Identifier(i) = listener.get_inner_expression()
            && let Some(original) = self.imported_name(i.reference_id.get())
        {
            names.push(original);
        }
        let message = format!(
            "`{emitter}.{method}({event}, …)` adds a listener on every call of {fname} to an emitter that outlives it, and nothing removes it"
        );
        let fspan = self.nodes.kind(f).span();
        self.out.push(RawFinding {
            rule: RuleId::ListenerPerCall,
            span: call.span,
            message,
            subject: emitter.clone(),
            function: Some(fspan),
            listener: Some((names, emitter)),
            severity: None,
        });
    }

    // ---- max-listeners-unbounded --------------------------------------------------------

    fn max_listeners(&mut self, call: &CallExpression<'a>) {
        if callee_last_name(&call.callee) != Some("setMaxListeners") {
            return;
        }
        let Some(first) = call.arguments.first().and_then(|a| a.as_expression()) else {
            return;
        };
        if !is_unbounded_number(first) {
            return;
        }
        let target = match member_parts(&call.callee) {
            Some((obj, _)) => self.snippet(obj.span()),
            None => "this".into(),
        };
        let value = self.snippet(first.span());
        self.push(
            RuleId::MaxListenersUnbounded,
            call.span,
            None,
            target.clone(),
            format!("`{target}.setMaxListeners({value})` turns off the MaxListenersExceededWarning, the only sign of a listener leak"),
        );
    }

    // ---- interval-not-cleared -----------------------------------------------------------

    fn interval_not_cleared(&mut self, id: NodeId, call: &CallExpression<'a>) {
        let Some(name) = timer_callee(&call.callee) else { return };
        if name == "setTimeout" {
            self.long_timeout_kept(id, call);
            return;
        }
        let Some(f) = self.per_call_fn(id) else { return };
        let fname = self.describe_fn(f);
        // Climb over `.unref()` / `.ref()`.
        let mut cur = id;
        loop {
            let p = self.up(cur);
            if let AstKind::StaticMemberExpression(m) = self.nodes.kind(p)
                && matches!(m.property.name.as_str(), "unref" | "ref")
                && let pp = self.up(p)
                && matches!(self.nodes.kind(pp), AstKind::CallExpression(_))
            {
                cur = pp;
                continue;
            }
            break;
        }
        let parent = self.up(cur);
        let cur_span = self.nodes.kind(cur).span();
        let kept: Option<String> = match self.nodes.kind(parent) {
            AstKind::ExpressionStatement(_) => None,
            AstKind::VariableDeclarator(d) => match &d.id {
                BindingPattern::BindingIdentifier(b) => {
                    let sym = b.symbol_id();
                    if self.escapes(sym) {
                        return;
                    }
                    Some(b.name.to_string())
                }
                _ => return,
            },
            AstKind::AssignmentExpression(a) if a.right.get_inner_expression().span() == cur_span => {
                match self.last_name_of_target(&a.left) {
                    Some(n) => Some(n),
                    None => return,
                }
            }
            _ => return,
        };
        let msg = match &kept {
            None => format!(
                "`setInterval` in {fname} starts a new interval on every call and drops its handle: nothing can stop them"
            ),
            Some(n) => {
                if self.clear_as_value || self.cleared_names.contains(n) {
                    return;
                }
                format!(
                    "`{n} = setInterval(…)` in {fname} starts an interval on every call and nothing passes `{n}` to clearInterval"
                )
            }
        };
        let subject = kept.unwrap_or_else(|| "setInterval".into());
        self.push(RuleId::IntervalNotCleared, call.span, Some(id), subject, msg);
    }

    /// A `setTimeout` of a minute or more created per call and kept in a collection.
    fn long_timeout_kept(&mut self, id: NodeId, call: &CallExpression<'a>) {
        let Some(delay) = call
            .arguments
            .get(1)
            .and_then(|a| a.as_expression())
            .and_then(const_number)
        else {
            return;
        };
        if delay < 60_000.0 {
            return;
        }
        let Some(f) = self.per_call_fn(id) else { return };
        let p = self.up(id);
        let coll = match self.nodes.kind(p) {
            AstKind::CallExpression(c) => match member_parts(&c.callee) {
                Some((obj, Some("push" | "set" | "add" | "unshift"))) => self.snippet(obj.span()),
                _ => return,
            },
            AstKind::AssignmentExpression(a) => match &a.left {
                AssignmentTarget::ComputedMemberExpression(m) => self.snippet(m.object.span()),
                _ => return,
            },
            _ => return,
        };
        let last = coll.rsplit('.').next().unwrap_or(&coll).to_owned();
        if self.clear_as_value || self.cleared_names.contains(&last) {
            return;
        }
        let fname = self.describe_fn(f);
        self.push(
            RuleId::IntervalNotCleared,
            call.span,
            Some(id),
            coll.clone(),
            format!(
                "a {}-second setTimeout made on every call of {fname} is kept in `{coll}` and never cleared",
                delay / 1000.0
            ),
        );
    }

    /// Whether a variable's value goes somewhere the analysis cannot follow (an argument,
    /// a return value, another variable, an object or array).
    fn escapes(&self, sym: SymbolId) -> bool {
        self.scoping.get_resolved_reference_ids(sym).iter().any(|&r| {
            let n = self.scoping.get_reference(r).node_id();
            let span = self.nodes.kind(n).span();
            match self.nodes.kind(self.up(n)) {
                AstKind::CallExpression(c) => {
                    c.callee.get_inner_expression().span() != span
                        && !matches!(callee_last_name(&c.callee), Some("clearInterval" | "clearTimeout"))
                }
                AstKind::NewExpression(_)
                | AstKind::ReturnStatement(_)
                | AstKind::ArrayExpression(_)
                | AstKind::ObjectProperty(_)
                | AstKind::VariableDeclarator(_)
                | AstKind::SpreadElement(_)
                | AstKind::YieldExpression(_)
                | AstKind::ArrowFunctionExpression(_)
                | AstKind::ExportSpecifier(_)
                | AstKind::ExportDefaultDeclaration(_) => true,
                AstKind::AssignmentExpression(a) => a.right.get_inner_expression().span() == span,
                _ => false,
            }
        })
    }

    // ---- unbounded-collection ------------------------------------------------------------

    fn unbounded_collection_decl(&mut self, sym: SymbolId, init: &Expression<'a>) {
        if !self.symbol_long_lived(sym) {
            return;
        }
        if let Some(kind) = collection_kind(init) {
            self.unbounded_collection(sym, None, kind);
        } else if let Expression::ObjectExpression(o) = init.get_inner_expression() {
            for p in &o.properties {
                if let ObjectPropertyKind::ObjectProperty(p) = p
                    && !p.computed
                    && let PropertyKey::StaticIdentifier(key) = &p.key
                    && let Some(kind) = collection_kind(&p.value)
                {
                    self.unbounded_collection(sym, Some(key.name.as_str()), kind);
                }
            }
        }
    }

    fn unbounded_collection(&mut self, sym: SymbolId, prop: Option<&str>, kind: CollKind) {
        let base = self.scoping.symbol_name(sym).to_string();
        let name = match prop {
            Some(p) => format!("{base}.{p}"),
            None => base,
        };
        let mut grows: Vec<(NodeId, Span, &'static str)> = Vec::new();
        for &r in self.scoping.get_resolved_reference_ids(sym) {
            let reference = self.scoping.get_reference(r);
            let rn = reference.node_id();
            if reference.is_write() {
                if prop.is_none() {
                    return; // re-assigned: reset somewhere
                }
                continue;
            }
            let mut cur = rn;
            if let Some(p) = prop {
                let parent = self.up(cur);
                match self.nodes.kind(parent) {
                    AstKind::StaticMemberExpression(m) if m.property.name == p => cur = parent,
                    _ => {
                        // The whole object handed elsewhere: its collection may be bounded there.
                        if self.use_of(rn, kind) == Use::Escape {
                            return;
                        }
                        continue;
                    }
                }
            }
            match self.use_of(cur, kind) {
                Use::Grow(op) => grows.push((cur, self.nodes.kind(self.up(cur)).span(), op)),
                Use::Shrink | Use::Escape => return,
                Use::Other => {}
            }
        }
        for (node, _, op) in grows {
            let Some(f) = self.per_call_fn(node) else { continue };
            let fname = self.describe_fn(f);
            let site = self.grow_site(node);
            let what = kind.name();
            let message = match self.key_parameter(node, f) {
                Some(param) => format!(
                    "`{name}` (a long-lived {what}) gains an entry per distinct `{param}` passed to {fname} (`{op}`) and never loses one: bounded only by the values callers pass"
                ),
                None => format!(
                    "`{name}` (a long-lived {what}) gains an entry on every call of {fname} (`{op}`) and nothing ever removes one"
                ),
            };
            let info = message.contains("per distinct");
            self.push(RuleId::UnboundedCollection, site, Some(node), name.clone(), message);
            if info && let Some(last) = self.out.last_mut() {
                last.severity = Some(crate::rules::Severity::Info);
            }
        }
    }

    /// The parameter of `f` a growth is keyed by (`cache[name] = …`, `m.set(key, …)`,
    /// `s.add(key)`), when the key is a parameter as it is (a memo of the function's
    /// arguments or a registry), not one of a request handler's (`req`, `ctx`, `socket`).
    fn key_parameter(&self, coll: NodeId, f: NodeId) -> Option<String> {
        let p = self.up(coll);
        let key = match self.nodes.kind(p) {
            AstKind::ComputedMemberExpression(m) => m.expression.get_inner_expression(),
            // A push adds whatever it is given: only keyed growth can be a memo.
            AstKind::StaticMemberExpression(m) if matches!(m.property.name.as_str(), "push" | "unshift") => {
                return None;
            }
            AstKind::StaticMemberExpression(_) => match self.nodes.kind(self.up(p)) {
                AstKind::CallExpression(c) => c.arguments.first()?.as_expression()?.get_inner_expression(),
                _ => return None,
            },
            _ => return None,
        };
        let Some(Expression::Identifier(id)) = root_object(key) else {
            return None;
        };
        if matches!(
            id.name.as_str(),
            "req"
                | "request"
                | "res"
                | "response"
                | "ctx"
                | "context"
                | "socket"
                | "conn"
                | "connection"
                | "client"
                | "msg"
                | "message"
        ) {
            return None;
        }
        let sym = self.ref_symbol(id.reference_id.get())?;
        let decl = self.scoping.symbol_declaration(sym);
        let is_param = std::iter::once(decl)
            .chain(self.nodes.ancestor_ids(decl).take(3))
            .any(|a| matches!(self.nodes.kind(a), AstKind::FormalParameter(_)));
        (is_param && self.enclosing_fn(decl) == Some(f)).then(|| id.name.to_string())
    }

    /// The span of the growing expression around a collection reference: the call or the
    /// assignment.
    fn grow_site(&self, coll: NodeId) -> Span {
        let mut cur = self.up(coll);
        for _ in 0..2 {
            match self.nodes.kind(cur) {
                AstKind::CallExpression(_) | AstKind::AssignmentExpression(_) => return self.nodes.kind(cur).span(),
                _ => cur = self.up(cur),
            }
        }
        self.nodes.kind(self.up(coll)).span()
    }

    /// What the expression at `coll` (a reference to a collection) does with it.
    fn use_of(&self, coll: NodeId, kind: CollKind) -> Use {
        let span = self.nodes.kind(coll).span();
        let p = self.up(coll);
        match self.nodes.kind(p) {
            AstKind::StaticMemberExpression(m) if m.object.get_inner_expression().span() == span => {
                let prop = m.property.name.as_str();
                let gp = self.up(p);
                let called = matches!(self.nodes.kind(gp), AstKind::CallExpression(c) if c.callee.get_inner_expression().span() == m.span);
                if called {
                    return match (kind, prop) {
                        (CollKind::Map, "set") | (CollKind::Set, "add") | (CollKind::Array, "push" | "unshift") => {
                            Use::Grow(match prop {
                                "set" => "set",
                                "add" => "add",
                                "push" => "push",
                                _ => "unshift",
                            })
                        }
                        (_, "delete" | "clear" | "shift" | "pop" | "splice" | "length") => Use::Shrink,
                        _ => Use::Other,
                    };
                }
                if matches!(prop, "length" | "size") {
                    match self.nodes.kind(gp) {
                        AstKind::BinaryExpression(b)
                            if b.operator.is_compare()
                                || b.operator.is_equality()
                                || b.operator == BinaryOperator::Remainder =>
                        {
                            return Use::Shrink;
                        }
                        AstKind::AssignmentExpression(_) => return Use::Shrink,
                        _ => {}
                    }
                }
                if let AstKind::AssignmentExpression(a) = self.nodes.kind(gp)
                    && a.left.span() == m.span
                {
                    // `metrics.flushHooks = []`: reset.
                    return Use::Other;
                }
                Use::Other
            }
            AstKind::ComputedMemberExpression(m) if m.object.get_inner_expression().span() == span => {
                let gp = self.up(p);
                match self.nodes.kind(gp) {
                    AstKind::AssignmentExpression(a) if a.left.span() == m.span => {
                        let key = m.expression.get_inner_expression();
                        match kind {
                            CollKind::Object if !is_literal_key(key) && !contains_remainder(key) => {
                                Use::Grow("[key] =")
                            }
                            CollKind::Array if matches!(key, Expression::StaticMemberExpression(k) if k.property.name == "length") => {
                                Use::Grow("[length] =")
                            }
                            _ => Use::Other,
                        }
                    }
                    AstKind::UnaryExpression(u) if u.operator == UnaryOperator::Delete => Use::Shrink,
                    _ => Use::Other,
                }
            }
            AstKind::UnaryExpression(u) if u.operator == UnaryOperator::Delete => Use::Shrink,
            AstKind::AssignmentExpression(a) if a.left.span() == span => Use::Shrink,
            AstKind::CallExpression(c) => {
                if c.callee.get_inner_expression().span() == span {
                    Use::Other
                } else {
                    Use::Escape
                }
            }
            AstKind::NewExpression(_)
            | AstKind::ReturnStatement(_)
            | AstKind::ArrayExpression(_)
            | AstKind::ObjectProperty(_)
            | AstKind::VariableDeclarator(_)
            | AstKind::SpreadElement(_)
            | AstKind::ExportSpecifier(_)
            | AstKind::ExportDefaultDeclaration(_)
            | AstKind::AssignmentExpression(_)
            | AstKind::ArrowFunctionExpression(_) => Use::Escape,
            _ => Use::Other,
        }
    }

    // ---- closure-keeps-large -------------------------------------------------------------

    fn closure_keeps_large(&mut self, sym: SymbolId, init: &Expression<'a>) {
        if !is_large_value(init) {
            return;
        }
        let scope = self.scoping.symbol_scope_id(sym);
        let owner_node = self.scoping.get_node_id(scope);
        // The function whose context would hold the value.
        let owner = match self.nodes.kind(owner_node) {
            AstKind::Function(_) | AstKind::ArrowFunctionExpression(_) => owner_node,
            _ => match self.enclosing_fn(owner_node) {
                Some(f) => f,
                None => return,
            },
        };
        let owner_span = self.nodes.kind(owner).span();
        // Closures inside `owner` that capture the value.
        let mut capturing: Vec<Span> = Vec::new();
        for &r in self.scoping.get_resolved_reference_ids(sym) {
            let rn = self.scoping.get_reference(r).node_id();
            if let Some(f) = self.enclosing_fn(rn)
                && f != owner
            {
                capturing.push(self.nodes.kind(f).span());
            }
        }
        if capturing.is_empty() {
            return;
        }
        let var = self.scoping.symbol_name(sym).to_string();
        // Long-lived callbacks of the same context that do not mention the value.
        let mut found = Vec::new();
        for node in self.nodes.iter() {
            let (AstKind::Function(_) | AstKind::ArrowFunctionExpression(_)) = node.kind() else {
                continue;
            };
            let span = node.kind().span();
            if !owner_span.contains_inclusive(span) || span == owner_span || self.enclosing_fn(node.id()) != Some(owner)
            {
                continue;
            }
            if capturing.iter().any(|c| span.contains_inclusive(*c)) {
                continue; // it captures the value itself
            }
            if let Some(how) = self.long_lived_callback(node.id()) {
                found.push((node.id(), span, how));
            }
        }
        for (node, span, how) in found {
            self.push(
                RuleId::ClosureKeepsLarge,
                span,
                Some(node),
                var.clone(),
                format!(
                    "this callback is kept alive ({how}) and shares its closure context with `{var}`, a large value another closure captures: it keeps `{var}` alive too"
                ),
            );
        }
    }

    /// How a function is kept alive beyond its call: passed to setInterval, added as a
    /// listener to a long-lived emitter, or stored in a long-lived collection.
    fn long_lived_callback(&self, fn_id: NodeId) -> Option<String> {
        let p = self.up(fn_id);
        let AstKind::CallExpression(c) = self.nodes.kind(p) else {
            return None;
        };
        if let Some(t) = timer_callee(&c.callee) {
            return (t == "setInterval").then(|| "an interval".to_owned());
        }
        let (obj, Some(method)) = member_parts(&c.callee)? else {
            return None;
        };
        if ADD_LISTENER.contains(&method) || matches!(method, "push" | "set" | "add" | "unshift") {
            let (root, _) = self.long_lived_root(obj)?;
            let what = if ADD_LISTENER.contains(&method) {
                "a listener of"
            } else {
                "stored in"
            };
            let _ = root;
            return Some(format!("{what} `{}`", self.snippet(obj.span())));
        }
        None
    }

    // ---- stream-not-consumed -------------------------------------------------------------

    fn stream_not_consumed(&mut self, id: NodeId, sym: SymbolId, name: &str, init: &Expression<'a>) {
        if !is_stream_creation(init) {
            return;
        }
        let refs = self.scoping.get_resolved_reference_ids(sym);
        for &r in refs {
            let rn = self.scoping.get_reference(r).node_id();
            let span = self.nodes.kind(rn).span();
            let p = self.up(rn);
            match self.nodes.kind(p) {
                AstKind::StaticMemberExpression(m) if m.object.get_inner_expression().span() == span => {
                    let called = matches!(self.nodes.kind(self.up(p)), AstKind::CallExpression(c) if c.callee.get_inner_expression().span() == m.span);
                    let passive = matches!(
                        m.property.name.as_str(),
                        "write" | "push" | "end" | "pause" | "setEncoding" | "cork" | "uncork" | "setDefaultEncoding"
                    );
                    if !called || !passive {
                        return; // read, piped, listened to, destroyed, or a property read
                    }
                }
                _ => return, // handed elsewhere
            }
        }
        let Some(decl_span) = Some(self.nodes.kind(id).span()) else {
            return;
        };
        self.push(
            RuleId::StreamNotConsumed,
            decl_span,
            Some(id),
            name.to_owned(),
            format!("stream `{name}` is created and kept, but never read, piped, resumed or destroyed"),
        );
    }

    // ---- agent-per-call -----------------------------------------------------------------

    fn agent_per_call(&mut self, id: NodeId, new: &NewExpression<'a>) {
        let callee = self.snippet(new.callee.span());
        let last = callee.rsplit('.').next().unwrap_or(&callee);
        let undici_like =
            matches!(last, "Pool" | "Client" | "BalancedPool") && self.imported_from(&new.callee, "undici");
        let keep_alive_agent = matches!(last, "Agent" | "HttpsAgent" | "HttpAgent" | "KeepAliveAgent");
        if !undici_like && !keep_alive_agent {
            return;
        }
        if keep_alive_agent {
            let from_http = self.imported_from(&new.callee, "http") || self.imported_from(&new.callee, "https");
            let from_ka =
                self.imported_from(&new.callee, "agentkeepalive") || self.imported_from(&new.callee, "undici");
            if from_ka {
                // always keep-alive
            } else if from_http {
                if !has_true_option(new.arguments.first().and_then(|a| a.as_expression()), "keepAlive") {
                    return;
                }
            } else {
                return;
            }
        }
        let Some(f) = self.per_call_fn(id) else { return };
        if let AstKind::MethodDefinition(m) = self.nodes.kind(self.nodes.parent_id(f))
            && m.kind.is_constructor()
        {
            return;
        }
        // Stored where it outlives the call (memoised: `agent ??= new Agent()`, `this.agent =`).
        let p = self.up(id);
        match self.nodes.kind(p) {
            AstKind::AssignmentExpression(a) => match &a.left {
                AssignmentTarget::AssignmentTargetIdentifier(i) => {
                    if self
                        .ref_symbol(i.reference_id.get())
                        .is_some_and(|s| self.symbol_long_lived(s))
                    {
                        return;
                    }
                }
                _ => return,
            },
            AstKind::LogicalExpression(_) | AstKind::ConditionalExpression(_) => return,
            AstKind::VariableDeclarator(d) => {
                if let BindingPattern::BindingIdentifier(b) = &d.id {
                    let destroyed = self.scoping.get_resolved_reference_ids(b.symbol_id()).iter().any(|&r| {
                        let rn = self.scoping.get_reference(r).node_id();
                        matches!(self.nodes.kind(self.up(rn)), AstKind::StaticMemberExpression(m) if matches!(m.property.name.as_str(), "destroy" | "close"))
                    });
                    if destroyed {
                        return;
                    }
                }
            }
            _ => {}
        }
        let fname = self.describe_fn(f);
        self.push(
            RuleId::AgentPerCall,
            new.span,
            Some(id),
            callee.clone(),
            format!(
                "`new {callee}(…)` makes a keep-alive agent on every call of {fname}: each keeps its own idle sockets"
            ),
        );
    }

    /// Whether the root identifier of `callee` comes from `require(module)` or an import of
    /// `module` (`node:` prefix allowed).
    fn imported_from(&self, callee: &Expression<'a>, module: &str) -> bool {
        let Some(Expression::Identifier(id)) = root_object(callee).or(Some(callee.get_inner_expression())) else {
            return false;
        };
        let Some(sym) = self.ref_symbol(id.reference_id.get()) else {
            return false;
        };
        let decl = self.scoping.symbol_declaration(sym);
        let matches_module = |s: &str| s == module || s.strip_prefix("node:") == Some(module);
        for a in std::iter::once(decl).chain(self.nodes.ancestor_ids(decl).take(4)) {
            match self.nodes.kind(a) {
                AstKind::VariableDeclarator(d) => {
                    if let Some(init) = &d.init {
                        let mut e = init.get_inner_expression();
                        while let Expression::StaticMemberExpression(m) = e {
                            e = m.object.get_inner_expression();
                        }
                        if let Expression::CallExpression(c) = e
                            && let Some(s) = c.common_js_require()
                        {
                            return matches_module(s.value.as_str());
                        }
                    }
                    return false;
                }
                AstKind::ImportDeclaration(i) => return matches_module(i.source.value.as_str()),
                _ => {}
            }
        }
        false
    }

    // ---- accidental-global ----------------------------------------------------------------

    fn accidental_globals(&mut self) {
        let mut found = Vec::new();
        for (name, ids) in self.scoping.root_unresolved_references() {
            if matches!(
                name.as_str(),
                "module" | "exports" | "window" | "global" | "globalThis" | "self" | "undefined"
            ) {
                continue;
            }
            for &r in ids.iter() {
                let reference = self.scoping.get_reference(r);
                if !reference.is_write() || self.scoping.scope_flags(reference.scope_id()).is_strict_mode() {
                    continue;
                }
                let n = reference.node_id();
                if self.nodes.kind(n).span().is_empty() {
                    continue;
                }
                found.push((n, name.to_string()));
            }
        }
        for (n, name) in found {
            let p = self.up(n);
            let span = match self.nodes.kind(p) {
                AstKind::AssignmentExpression(a) => a.span,
                AstKind::UpdateExpression(u) => u.span,
                _ => self.nodes.kind(n).span(),
            };
            self.push(
                RuleId::AccidentalGlobal,
                span,
                Some(n),
                name.clone(),
                format!("`{name}` is assigned without being declared: in sloppy-mode code this makes a global that is never freed"),
            );
        }
    }
}

// ---- expression helpers (no semantic model needed) -----------------------------------------

/// `(object, property)` of a member expression (computed with a string literal too).
fn member_parts<'b, 'a>(e: &'b Expression<'a>) -> Option<(&'b Expression<'a>, Option<&'b str>)> {
    match e.get_inner_expression() {
        Expression::StaticMemberExpression(m) => Some((&m.object, Some(m.property.name.as_str()))),
        Expression::ComputedMemberExpression(m) => {
            let key = match m.expression.get_inner_expression() {
                Expression::StringLiteral(s) => Some(s.value.as_str()),
                _ => None,
            };
            Some((&m.object, key))
        }
        Expression::PrivateFieldExpression(m) => Some((&m.object, None)),
        _ => None,
    }
}

/// The innermost object of a member chain (`a` of `a.b.c`, `this` of `this.x`).
fn root_object<'b, 'a>(e: &'b Expression<'a>) -> Option<&'b Expression<'a>> {
    let mut e = e.get_inner_expression();
    loop {
        match e {
            Expression::StaticMemberExpression(m) => e = m.object.get_inner_expression(),
            Expression::ComputedMemberExpression(m) => e = m.object.get_inner_expression(),
            Expression::PrivateFieldExpression(m) => e = m.object.get_inner_expression(),
            Expression::Identifier(_) | Expression::ThisExpression(_) => return Some(e),
            _ => return None,
        }
    }
}

/// The last name of a callee: `on` for `a.b.on`, `setInterval` for `setInterval`.
fn callee_last_name<'b>(e: &'b Expression<'_>) -> Option<&'b str> {
    match e.get_inner_expression() {
        Expression::Identifier(i) => Some(i.name.as_str()),
        other => member_parts(other).and_then(|(_, p)| p),
    }
}

/// `setInterval` / `setTimeout` when the callee is the global timer (or `timers.`,
/// `global.`, `globalThis.`, `window.` of it).
fn timer_callee(e: &Expression<'_>) -> Option<&'static str> {
    let name = match e.get_inner_expression() {
        Expression::Identifier(i) => i.name.as_str(),
        Expression::StaticMemberExpression(m) => match m.object.get_inner_expression() {
            Expression::Identifier(o) if matches!(o.name.as_str(), "timers" | "global" | "globalThis" | "window") => {
                m.property.name.as_str()
            }
            _ => return None,
        },
        _ => return None,
    };
    match name {
        "setInterval" => Some("setInterval"),
        "setTimeout" => Some("setTimeout"),
        _ => None,
    }
}

/// Whether an expression can be a listener (a function or a name of one).
fn listener_like(e: &Expression<'_>) -> bool {
    matches!(
        e.get_inner_expression(),
        Expression::FunctionExpression(_)
            | Expression::ArrowFunctionExpression(_)
            | Expression::Identifier(_)
            | Expression::StaticMemberExpression(_)
            | Expression::CallExpression(_)
    )
}

/// Names a listener can be removed by: an identifier, a member's property, the function
/// `.bind` is called on, or a function expression's own name.
fn listener_names(e: &Expression<'_>) -> Vec<String> {
    match e.get_inner_expression() {
        Expression::Identifier(i) => vec![i.name.to_string()],
        Expression::StaticMemberExpression(m) => vec![m.property.name.to_string()],
        Expression::FunctionExpression(f) => f.id.as_ref().map(|i| vec![i.name.to_string()]).unwrap_or_default(),
        Expression::CallExpression(c) => match member_parts(&c.callee) {
            Some((obj, Some("bind"))) => listener_names(obj),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `0` or `Infinity` (or `Number.POSITIVE_INFINITY`).
fn is_unbounded_number(e: &Expression<'_>) -> bool {
    match e.get_inner_expression() {
        Expression::NumericLiteral(n) => n.value == 0.0,
        Expression::Identifier(i) => i.name == "Infinity",
        Expression::StaticMemberExpression(m) => m.property.name == "POSITIVE_INFINITY",
        _ => false,
    }
}

/// The value of a constant numeric expression (`60000`, `5 * 60 * 1000`).
fn const_number(e: &Expression<'_>) -> Option<f64> {
    match e.get_inner_expression() {
        Expression::NumericLiteral(n) => Some(n.value),
        Expression::BinaryExpression(b) => {
            let (l, r) = (const_number(&b.left)?, const_number(&b.right)?);
            match b.operator {
                BinaryOperator::Multiplication => Some(l * r),
                BinaryOperator::Addition => Some(l + r),
                BinaryOperator::Subtraction => Some(l - r),
                BinaryOperator::Division if r != 0.0 => Some(l / r),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The collection an initialiser makes, if any.
fn collection_kind(e: &Expression<'_>) -> Option<CollKind> {
    match e.get_inner_expression() {
        Expression::NewExpression(n) => match n.callee.get_inner_expression() {
            Expression::Identifier(i) => match i.name.as_str() {
                "Map" => Some(CollKind::Map),
                "Set" => Some(CollKind::Set),
                "Array" if n.arguments.is_empty() => Some(CollKind::Array),
                _ => None,
            },
            _ => None,
        },
        Expression::ArrayExpression(a) if a.elements.is_empty() => Some(CollKind::Array),
        Expression::ObjectExpression(o) if o.properties.is_empty() => Some(CollKind::Object),
        Expression::CallExpression(c)
            if matches!(&c.callee, Expression::StaticMemberExpression(m)
                if m.property.name == "create" && matches!(&m.object, Expression::Identifier(o) if o.name == "Object"))
                && matches!(
                    c.arguments.first().and_then(|a| a.as_expression()),
                    Some(Expression::NullLiteral(_))
                ) =>
        {
            Some(CollKind::Object)
        }
        _ => None,
    }
}

fn is_literal_key(e: &Expression<'_>) -> bool {
    match e {
        Expression::StringLiteral(_) | Expression::NumericLiteral(_) | Expression::BooleanLiteral(_) => true,
        Expression::TemplateLiteral(t) => t.expressions.is_empty(),
        _ => false,
    }
}

/// `i % n` somewhere in a key: a ring buffer's index.
fn contains_remainder(e: &Expression<'_>) -> bool {
    match e.get_inner_expression() {
        Expression::BinaryExpression(b) => {
            b.operator == BinaryOperator::Remainder || contains_remainder(&b.left) || contains_remainder(&b.right)
        }
        _ => false,
    }
}

/// Whether a value is large enough that keeping it by accident matters: Buffers, array
/// buffers, typed arrays, whole files, big arrays and strings.
fn is_large_value(e: &Expression<'_>) -> bool {
    let e = match e.get_inner_expression() {
        Expression::AwaitExpression(a) => a.argument.get_inner_expression(),
        e => e,
    };
    match e {
        Expression::CallExpression(c) => {
            let Some((obj, Some(m))) = member_parts(&c.callee) else {
                return matches!(callee_last_name(&c.callee), Some("readFileSync" | "readFile"));
            };
            let obj_name = match obj.get_inner_expression() {
                Expression::Identifier(i) => i.name.as_str(),
                _ => "",
            };
            (obj_name == "Buffer" && matches!(m, "alloc" | "allocUnsafe" | "allocUnsafeSlow" | "concat"))
                || matches!(m, "readFileSync" | "readFile")
                || (m == "repeat"
                    && c.arguments
                        .first()
                        .and_then(|a| a.as_expression())
                        .and_then(const_number)
                        .is_some_and(|n| n >= 4096.0))
        }
        Expression::NewExpression(n) => match n.callee.get_inner_expression() {
            Expression::Identifier(i) => match i.name.as_str() {
                "ArrayBuffer" | "SharedArrayBuffer" | "Uint8Array" | "Int8Array" | "Uint16Array" | "Int16Array"
                | "Uint32Array" | "Int32Array" | "Float32Array" | "Float64Array" | "BigInt64Array"
                | "BigUint64Array" => !n.arguments.is_empty(),
                "Array" => n
                    .arguments
                    .first()
                    .and_then(|a| a.as_expression())
                    .and_then(const_number)
                    .is_some_and(|v| v >= 4096.0),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// A call or `new` that makes a readable stream.
fn is_stream_creation(e: &Expression<'_>) -> bool {
    match e.get_inner_expression() {
        Expression::CallExpression(c) => matches!(
            callee_last_name(&c.callee),
            Some(
                "createReadStream"
                    | "createGzip"
                    | "createGunzip"
                    | "createDeflate"
                    | "createInflate"
                    | "createBrotliCompress"
                    | "createBrotliDecompress"
                    | "createUnzip"
            )
        ),
        Expression::NewExpression(n) => {
            matches!(
                callee_last_name(&n.callee),
                Some("PassThrough" | "Readable" | "Transform" | "Duplex")
            )
        }
        _ => false,
    }
}

/// `{ key: true }` as the options object.
fn has_true_option(e: Option<&Expression<'_>>, key: &str) -> bool {
    let Some(Expression::ObjectExpression(o)) = e.map(|e| e.get_inner_expression()) else {
        return false;
    };
    o.properties.iter().any(|p| match p {
        ObjectPropertyKind::ObjectProperty(p) => {
            p.key.static_name().is_some_and(|k| k == key)
                && matches!(p.value.get_inner_expression(), Expression::BooleanLiteral(b) if b.value)
        }
        ObjectPropertyKind::SpreadProperty(_) => false,
    })
}

#[allow(dead_code)]
fn simple_target_name(t: &SimpleAssignmentTarget<'_>) -> Option<String> {
    match t {
        SimpleAssignmentTarget::AssignmentTargetIdentifier(i) => Some(i.name.to_string()),
        _ => None,
    }
}
