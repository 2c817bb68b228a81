//! Allocation stacks of a cluster: when the snapshots were taken with allocation tracking
//! on (`hunt --track-allocations`, DevTools' "Allocation instrumentation on timeline"),
//! objects carry the stack that allocated them (`leakhound_heap::HeapSnapshot::
//! allocation_stack`). A cluster's stacks are those of its roots' younger siblings (same
//! class, same holder, added after the roots: V8 keeps the stacks of those right, see
//! `stack_witnesses`), grouped, the most common first; the first frame of the app's own
//! code in the most common stack becomes the cluster's source, a fact rather than a guess
//! ([`SourceKind::AllocationStack`]).
//!
//! V8 records a frame's position as the start of its function (its
//! `SharedFunctionInfo` start), not the line of the call or allocation inside it: a
//! frame names the function and where that function begins.

use std::collections::{HashMap, HashSet};

use leakhound_heap::{AllocationFrame, HeapSnapshot, NodeId};

use crate::source::{SourceKind, SourceRef};
use crate::trace::Traces;

/// Stacks kept per cluster.
pub const MAX_ALLOCATION_STACKS: usize = 3;
/// Frames kept per stack (V8 records at most 64).
pub const MAX_FRAMES: usize = 32;

/// Where a frame's code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameOrigin {
    /// The app's own code.
    User,
    /// A dependency: a script under a `node_modules` folder.
    Dependency,
    /// Node's internals (`node:` scripts, V8 API frames, frames without a script).
    NodeInternal,
}

impl FrameOrigin {
    /// The wire name: `user`, `dependency` or `node_internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameOrigin::User => "user",
            FrameOrigin::Dependency => "dependency",
            FrameOrigin::NodeInternal => "node_internal",
        }
    }
}

/// One frame of an allocation stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StackFrame {
    /// The function's name; `(anonymous)` when V8 recorded none.
    pub function: String,
    /// The script's path or URL as V8 names it (`/srv/app/server.js`, `node:events`);
    /// empty when unknown.
    pub url: String,
    /// Line where the function starts, from 1 (0 unknown).
    pub line: u32,
    /// Column where the function starts, from 1 (0 unknown).
    pub column: u32,
    /// Whose code it is.
    pub origin: FrameOrigin,
    /// For a dependency's frame, the package (`winston`, `@scope/name`).
    pub dependency: Option<String>,
    /// Position in the recorded stack: 0 is the function that allocated, 1 its caller…
    pub depth: u32,
}

impl StackFrame {
    /// `url:line:column`, or the url alone without a line.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.url.clone()
        } else {
            format!("{}:{}:{}", self.url, self.line, self.column)
        }
    }
}

/// One allocation stack shared by some of a cluster's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationStack {
    /// Objects allocated by this stack, among the roots' siblings added since the snapshot
    /// before the last (the objects whose recorded stacks V8 keeps right; see the module
    /// notes).
    pub count: u64,
    /// The frames, the app's own code first (innermost first), then dependencies, then
    /// Node's internals; [`StackFrame::depth`] gives the call order.
    pub frames: Vec<StackFrame>,
}

fn frame_of(f: &AllocationFrame<'_>, depth: usize) -> StackFrame {
    let url = f.script_name.to_owned();
    let probe = SourceRef {
        path: url.clone(),
        line: f.line,
        column: f.column,
        what: String::new(),
        kind: SourceKind::AllocationStack,
    };
    let internal = url.is_empty() || url.starts_with("node:") || !probe.is_user_code();
    let dependency = if internal {
        None
    } else {
        probe.dependency().map(str::to_owned)
    };
    StackFrame {
        function: if f.function_name.is_empty() {
            "(anonymous)".to_owned()
        } else {
            f.function_name.to_owned()
        },
        url,
        line: f.line,
        column: f.column,
        origin: if internal {
            FrameOrigin::NodeInternal
        } else if dependency.is_some() {
            FrameOrigin::Dependency
        } else {
            FrameOrigin::User
        },
        dependency,
        depth: depth as u32,
    }
}

/// Parents walked up from an object to find its holder (a Map's table, an array's
/// element store, an emitter's listener array lie in between).
const HOLDER_STEPS: usize = 4;

/// The objects whose stacks describe the cluster: those of the roots' classes kept by one
/// of `holders` (within [`HOLDER_STEPS`] steps up their retainer traces) that are younger
/// than every root (a higher V8 id: first seen after the last root was), that is, the
/// roots' siblings added since the snapshot before the last, made by the same code.
///
/// Not the roots themselves: V8 moves an object's recorded stack along when the GC
/// moves the object only while the object has no id (`HeapProfiler::ObjectMoveEvent`);
/// the roots were given ids by an earlier snapshot, so once moved their stack is lost,
/// or worse, another allocation's that was recorded at their new address. Objects first
/// seen by the last snapshot keep theirs.
pub(crate) fn stack_witnesses(s: &HeapSnapshot, traces: &Traces, holders: &[NodeId], roots: &[NodeId]) -> Vec<NodeId> {
    if !s.has_allocation_traces() || roots.is_empty() {
        return Vec::new();
    }
    let classes: HashSet<u32> = roots.iter().map(|&r| s.class_index(r)).collect();
    let holders: HashSet<NodeId> = holders.iter().copied().collect();
    let youngest_root = roots.iter().map(|&r| s.id(r)).max().unwrap_or(u32::MAX);
    let mut out = Vec::new();
    for n in 0..s.node_count() as NodeId {
        if s.trace_node_id(n) == 0 || s.id(n) <= youngest_root || !classes.contains(&s.class_index(n)) {
            continue;
        }
        let mut p = n;
        for _ in 0..HOLDER_STEPS {
            let Some(up) = traces.parent(p) else { break };
            if holders.contains(&up) {
                out.push(n);
                break;
            }
            p = up;
        }
    }
    out
}

/// The most common allocation stacks of `nodes` (see [`stack_witnesses`]), at most
/// [`MAX_ALLOCATION_STACKS`]: those with a frame of the app's own code first (a few
/// objects made by Node's internals, a GC observer's entries, must not hide the app's
/// stack), then most objects first (ties: the earlier trace node). Empty when none has
/// a recorded stack.
pub(crate) fn allocation_stacks(s: &HeapSnapshot, nodes: &[NodeId]) -> Vec<AllocationStack> {
    if !s.has_allocation_traces() {
        return Vec::new();
    }
    let mut by_trace: HashMap<u32, u64> = HashMap::new();
    for &n in nodes {
        let t = s.trace_node_id(n);
        if t != 0 {
            *by_trace.entry(t).or_default() += 1;
        }
    }
    // Distinct trace nodes may be the same frames (a function recorded twice); merge them.
    let mut by_frames: HashMap<Vec<StackFrame>, (u64, u32)> = HashMap::new();
    for (t, n) in by_trace {
        let frames: Vec<StackFrame> = s
            .trace_stack(t)
            .iter()
            .take(MAX_FRAMES)
            .enumerate()
            .map(|(d, f)| frame_of(f, d))
            .collect();
        if frames.is_empty() {
            continue;
        }
        let e = by_frames.entry(frames).or_insert((0, t));
        e.0 += n;
        e.1 = e.1.min(t);
    }
    let mut stacks: Vec<(u64, u32, Vec<StackFrame>)> = by_frames.into_iter().map(|(f, (n, t))| (n, t, f)).collect();
    let has_user = |frames: &[StackFrame]| frames.iter().any(|f| f.origin == FrameOrigin::User);
    stacks.sort_by(|a, b| {
        has_user(&b.2)
            .cmp(&has_user(&a.2))
            .then(b.0.cmp(&a.0))
            .then(a.1.cmp(&b.1))
    });
    stacks
        .into_iter()
        .take(MAX_ALLOCATION_STACKS)
        .map(|(count, _, mut frames)| {
            // Stable: call order within each origin.
            frames.sort_by_key(|f| f.origin);
            AllocationStack { count, frames }
        })
        .collect()
}

/// The first frame of the app's own code in the most common stack, as a source: for a
/// leak made inside a dependency, the app's function that called into it.
pub(crate) fn allocation_source(stacks: &[AllocationStack]) -> Option<SourceRef> {
    let f = stacks.first()?.frames.iter().find(|f| f.origin == FrameOrigin::User)?;
    Some(SourceRef {
        path: f.url.strip_prefix("file://").unwrap_or(&f.url).to_owned(),
        line: f.line,
        column: f.column,
        what: format!("function {} (where it starts)", f.function),
        kind: SourceKind::AllocationStack,
    })
}

/// Puts the allocation stack's source first in `sources` (dropping a guess at the same
/// place).
pub(crate) fn prefer_allocation_source(sources: &mut Vec<SourceRef>, stacks: &[AllocationStack]) {
    if let Some(src) = allocation_source(stacks) {
        sources.retain(|s| s.location() != src.location());
        sources.insert(0, src);
    }
}
