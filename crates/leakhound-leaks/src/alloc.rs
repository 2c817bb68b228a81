//! Allocation stacks of a cluster: when the snapshots were taken with allocation tracking
//! on (`hunt --track-allocations`, DevTools' "Allocation instrumentation on timeline"),
//! every object carries the stack that allocated it (`leakhound_heap::HeapSnapshot::
//! allocation_stack`). A cluster's stacks are those of its leak roots (of all its leaked
//! objects when no root has one), grouped, the most common first; the first frame of the
//! app's own code in the most common stack becomes the cluster's source, a fact rather
//! than a guess ([`SourceKind::AllocationStack`]).
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
    /// Objects allocated by this stack: among the roots and their siblings under the same
    /// holders that have a recorded stack (see [`with_siblings`]).
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

/// The objects of `s` of the roots' classes kept by one of `holders` (within
/// [`HOLDER_STEPS`] steps up their retainer traces): the roots and their siblings added
/// since the target snapshot. V8 keeps an object's stack only until the object, once
/// given an id by a snapshot, is moved by the GC (`HeapProfiler::ObjectMoveEvent` moves
/// the stacks of objects without an id only), so in the last snapshot the stacks are
/// mostly those of the objects allocated after the one before: the roots' younger
/// siblings, made by the same code.
pub(crate) fn with_siblings(s: &HeapSnapshot, traces: &Traces, holders: &[NodeId], roots: &[NodeId]) -> Vec<NodeId> {
    if !s.has_allocation_traces() || roots.is_empty() {
        return roots.to_vec();
    }
    let classes: HashSet<u32> = roots.iter().map(|&r| s.class_index(r)).collect();
    let holders: HashSet<NodeId> = holders.iter().copied().collect();
    let mut out = roots.to_vec();
    let is_root: HashSet<NodeId> = roots.iter().copied().collect();
    for n in 0..s.node_count() as NodeId {
        if s.trace_node_id(n) == 0 || !classes.contains(&s.class_index(n)) || is_root.contains(&n) {
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

/// The most common allocation stacks of `roots` (of `objects` when no root has one), at
/// most [`MAX_ALLOCATION_STACKS`], most objects first (ties: the earlier trace node).
/// Empty when the snapshot has no allocation stacks.
pub(crate) fn allocation_stacks(s: &HeapSnapshot, roots: &[NodeId], objects: &[NodeId]) -> Vec<AllocationStack> {
    if !s.has_allocation_traces() {
        return Vec::new();
    }
    let count = |nodes: &[NodeId]| {
        let mut by_trace: HashMap<u32, u64> = HashMap::new();
        for &n in nodes {
            let t = s.trace_node_id(n);
            if t != 0 {
                *by_trace.entry(t).or_default() += 1;
            }
        }
        by_trace
    };
    let mut by_trace = count(roots);
    if by_trace.is_empty() {
        by_trace = count(objects);
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
    stacks.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
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
        what: format!("function {} (allocation stack; where the function starts)", f.function),
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
