//! Allocation stacks: what V8 writes when allocation tracking was on while the snapshot
//! was taken (`HeapProfiler.startTrackingHeapObjects` with `trackAllocations: true`,
//! DevTools' "Allocation instrumentation on timeline"): the `trace_function_infos` (one
//! row per function of a recorded stack), the `trace_tree` (the stacks as a tree of
//! calls, V8's `AllocationTracker` trace tree) and each node's `trace_node_id` (the tree
//! node of the stack that allocated it, 0 when none was recorded).
//!
//! A stack is read as DevTools' `AllocationProfile.serializeAllocationStack` does: from
//! the node's trace node up through its parents, the allocating function first. The
//! tree's root (V8's `(root)` entry, not a function) is left out.

use crate::ids::NodeId;
use crate::snapshot::HeapSnapshot;

/// A `trace_tree` node's parent when it has none (the tree's root).
pub(crate) const NO_PARENT: u32 = u32::MAX;

/// One row of `trace_function_infos`, as indexes and numbers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TraceFunction {
    /// String index of the function's name.
    pub(crate) name: u32,
    /// String index of its script's name (path or URL).
    pub(crate) script_name: u32,
    pub(crate) script_id: u32,
    /// 1-based; 0 unknown.
    pub(crate) line: u32,
    /// 1-based; 0 unknown.
    pub(crate) column: u32,
}

/// The allocation trace tree of a snapshot: 12 bytes per trace node plus 20 per function.
#[derive(Debug, Default)]
pub(crate) struct AllocationTraces {
    pub(crate) functions: Vec<TraceFunction>,
    /// Per trace node, in file order: its `id`.
    pub(crate) ids: Vec<u32>,
    /// Per trace node: its parent's position, [`NO_PARENT`] for a root.
    pub(crate) parent: Vec<u32>,
    /// Per trace node: its `function_info_index`.
    pub(crate) function: Vec<u32>,
    /// Trace node positions sorted by id (for [`AllocationTraces::find`]).
    pub(crate) by_id: Vec<u32>,
}

impl AllocationTraces {
    /// Sorts the id index; the last node of a repeated id wins.
    pub(crate) fn index(&mut self) {
        let mut by_id: Vec<u32> = (0..self.ids.len() as u32).collect();
        by_id.sort_by_key(|&k| self.ids[k as usize]);
        self.by_id = by_id;
    }

    /// The position of the trace node with `id`.
    pub(crate) fn find(&self, id: u32) -> Option<u32> {
        let i = self.by_id.partition_point(|&k| self.ids[k as usize] < id);
        // The last of equal ids (stable sort: file order).
        let end = self.by_id[i..].partition_point(|&k| self.ids[k as usize] == id);
        (end > 0).then(|| self.by_id[i + end - 1])
    }

    /// Whether the tree has a stack: a node besides a root.
    pub(crate) fn has_stacks(&self) -> bool {
        self.parent.iter().any(|&p| p != NO_PARENT)
    }
}

/// One frame of an allocation stack.
///
/// V8 records where the frame's *function starts* (its `SharedFunctionInfo` start
/// position), not the line of the call or of the allocation inside it: `line` and
/// `column` point at the function, named by `function_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocationFrame<'a> {
    /// The function's name (`(anonymous)` style names as V8 gives them; may be empty).
    pub function_name: &'a str,
    /// The script's name: a path, a `file://` or `node:` URL; empty when unknown.
    pub script_name: &'a str,
    /// V8's script id (0 when unknown).
    pub script_id: u32,
    /// Line where the function starts, counted from 1; 0 when unknown.
    pub line: u32,
    /// Column where the function starts, counted from 1; 0 when unknown.
    pub column: u32,
}

impl HeapSnapshot {
    /// Whether the snapshot carries allocation stacks (allocation tracking was on, and
    /// recorded at least one stack).
    pub fn has_allocation_traces(&self) -> bool {
        !self.trace_node.is_empty()
    }

    /// The node's `trace_node_id`: the `trace_tree` node of the stack that allocated it,
    /// or 0 when none was recorded (or the snapshot has no allocation stacks).
    pub fn trace_node_id(&self, node: NodeId) -> u32 {
        self.trace_node.get(node as usize).copied().unwrap_or(0)
    }

    /// The stack that allocated `node`, the allocating function first, up to the
    /// outermost recorded call; empty when none was recorded. As DevTools'
    /// `allocationStack(nodeIndex)`, without the tree's `(root)`.
    pub fn allocation_stack(&self, node: NodeId) -> Vec<AllocationFrame<'_>> {
        self.trace_stack(self.trace_node_id(node))
    }

    /// The stack of the `trace_tree` node with `trace_node_id`, the innermost frame
    /// first; empty for 0, an id not in the tree, or the tree's root.
    pub fn trace_stack(&self, trace_node_id: u32) -> Vec<AllocationFrame<'_>> {
        let mut out = Vec::new();
        if trace_node_id == 0 {
            return out;
        }
        let t = &self.traces;
        let Some(mut k) = t.find(trace_node_id) else {
            return out;
        };
        // A well-formed tree has no cycle (it is read as nested arrays); the bound only
        // keeps a loop impossible.
        for _ in 0..t.ids.len() {
            let parent = t.parent[k as usize];
            if parent == NO_PARENT {
                break;
            }
            if let Some(f) = t.functions.get(t.function[k as usize] as usize) {
                out.push(AllocationFrame {
                    function_name: self.strings.get(f.name),
                    script_name: self.strings.get(f.script_name),
                    script_id: f.script_id,
                    line: f.line,
                    column: f.column,
                });
            }
            k = parent;
        }
        out
    }
}
