//! The allocation-trace sections: `trace_function_infos` (a flat array of rows, bounded
//! by the header's `trace_function_count`) and `trace_tree` (nested arrays
//! `[id, function_info_index, count, size, [children…]]`, read with an explicit stack,
//! bounded in depth and in nodes). Fields are found by name in the meta's
//! `trace_function_info_fields` and `trace_node_fields`.

use std::io::Read;

use super::layout::{Layout, MaxName};
use crate::error::{SnapshotError, Warning};
use crate::reader::Reader;
use crate::traces::{AllocationTraces, NO_PARENT, TraceFunction};

/// Levels the `trace_tree` may nest: one per frame of a stack, and V8's allocation
/// tracker records at most 64 frames (`kMaxAllocationTraceLength`), so sixteen times
/// that is not a real tree.
#[cfg(not(fuzzing))]
const MAX_TRACE_DEPTH: usize = 1 << 10;
/// Under the fuzzer the cap is reachable within its input size.
#[cfg(fuzzing)]
const MAX_TRACE_DEPTH: usize = 64;

/// Trace nodes kept beyond the heap's node count: a trace node is a distinct stack, and
/// a tree with many more stacks than the heap has objects plus this is dropped (with a
/// warning, the rest of the snapshot still read), so memory stays bounded by the graph.
#[cfg(not(fuzzing))]
const TRACE_NODE_SLACK: u64 = 1 << 20;
#[cfg(fuzzing)]
const TRACE_NODE_SLACK: u64 = 64;

/// What the trace sections leave for the checks after `strings` is read.
#[derive(Default)]
pub(super) struct TraceChecks {
    /// The largest string index a function row names.
    pub(super) names: MaxName,
    /// The largest `function_info_index` a trace node names, with its node and offset.
    pub(super) function_index: MaxName,
}

fn position(fields: &[String], name: &str) -> Option<usize> {
    fields.iter().position(|f| f == name)
}

/// Reads `trace_function_infos` into `traces.functions`: exactly
/// `trace_function_count × fields` values.
pub(super) fn read_trace_function_infos<R: Read>(
    r: &mut Reader<R>,
    l: &Layout,
    traces: &mut AllocationTraces,
    checks: &mut TraceChecks,
    report: &mut impl FnMut(u64),
) -> Result<(), SnapshotError> {
    let start = r.offset();
    let fields = &l.trace_function_fields;
    let stride = fields.len();
    let pos = |name: &str| position(fields, name);
    let (name, script_name, script_id, line, column) = (
        pos("name"),
        pos("script_name"),
        pos("script_id"),
        pos("line"),
        pos("column"),
    );
    let expected = l.trace_function_count.saturating_mul(stride as u64);
    let mut values = 0u64;
    let mut row = [0u64; 16];
    let mut name_at = [0u64; 2];
    let mut missing: Option<&str> = None;
    let functions = &mut traces.functions;
    r.read_uint_array(
        |v, at| {
            if values == expected {
                return Err(SnapshotError::Invalid {
                    section: crate::error::Section::TraceFunctionInfos,
                    offset: at,
                    message: format!(
                        "more values than trace_function_count {} × {stride} trace_function_info_fields",
                        l.trace_function_count
                    ),
                });
            }
            let field = (values % stride as u64) as usize;
            values += 1;
            if field < row.len() {
                row[field] = v;
            }
            if Some(field) == name {
                name_at[0] = at;
            }
            if Some(field) == script_name {
                name_at[1] = at;
            }
            if field + 1 < stride {
                return Ok(());
            }
            let get = |i: Option<usize>| i.and_then(|i| row.get(i)).copied().unwrap_or(0);
            let fits = |v: u64, what: &str| {
                u32::try_from(v).map_err(|_| SnapshotError::Invalid {
                    section: crate::error::Section::TraceFunctionInfos,
                    offset: at,
                    message: format!("a function's {what} {v} does not fit 32 bits"),
                })
            };
            let k = functions.len();
            let f = TraceFunction {
                name: fits(get(name), "name")?,
                script_name: fits(get(script_name), "script_name")?,
                script_id: fits(get(script_id), "script_id")?,
                line: fits(get(line), "line")?,
                column: fits(get(column), "column")?,
            };
            checks.names.note(f.name, k, name_at[0]);
            checks.names.note(f.script_name, k, name_at[1]);
            functions.push(f);
            Ok(())
        },
        report,
    )?;
    if values > 0 {
        for (field, name) in [
            (name, "name"),
            (script_name, "script_name"),
            (script_id, "script_id"),
            (line, "line"),
            (column, "column"),
        ] {
            if field.is_none() {
                missing = Some(name);
                break;
            }
        }
        if let Some(name) = missing {
            return Err(r.invalid_at(start, format!("meta.trace_function_info_fields has no '{name}' field")));
        }
    }
    if values != expected {
        return Err(r.invalid_at(
            r.offset(),
            format!(
                "the trace_function_infos array has {values} values but trace_function_count {} × {stride} fields = {expected}",
                l.trace_function_count
            ),
        ));
    }
    Ok(())
}

/// Reads `trace_tree` into `traces` (ids, parents, function indexes). A tree of more than
/// `node_count` + [`TRACE_NODE_SLACK`] nodes is read to its end keeping nothing more,
/// and dropped with a warning.
pub(super) fn read_trace_tree<R: Read>(
    r: &mut Reader<R>,
    l: &Layout,
    traces: &mut AllocationTraces,
    checks: &mut TraceChecks,
    warnings: &mut Vec<Warning>,
) -> Result<(), SnapshotError> {
    let start = r.offset();
    let fields = &l.trace_node_fields;
    let stride = fields.len();
    if r.open_array()? {
        return Ok(());
    }
    let (Some(id), Some(function), Some(children)) = (
        position(fields, "id"),
        position(fields, "function_info_index"),
        position(fields, "children"),
    ) else {
        return Err(r.invalid_at(
            start,
            "meta.trace_node_fields must name 'id', 'function_info_index' and 'children'",
        ));
    };
    if children + 1 != stride || stride > 16 {
        return Err(r.invalid_at(
            start,
            "meta.trace_node_fields must end with 'children' and have at most 16 fields",
        ));
    }
    let cap = l.node_count.saturating_add(TRACE_NODE_SLACK);
    let mut kept = true;
    let mut count = 0u64;
    // The parent of the nodes of each open list; the outer list's is NO_PARENT.
    let mut open: Vec<u32> = vec![NO_PARENT];
    let mut row = [0u64; 16];
    let mut row_at = [0u64; 16];
    'node: loop {
        // A node: its numbers, then its children list.
        for f in 0..children {
            if f > 0 {
                r.expect(b',', "',' between a trace node's fields")?;
            }
            let (v, at) = r.read_uint()?;
            row[f] = v;
            row_at[f] = at;
        }
        r.expect(b',', "',' before a trace node's children")?;
        let fits = |f: usize, what: &str| {
            u32::try_from(row[f]).map_err(|_| SnapshotError::Invalid {
                section: crate::error::Section::TraceTree,
                offset: row_at[f],
                message: format!("a trace node's {what} {} does not fit 32 bits", row[f]),
            })
        };
        let (node_id, function_index) = (fits(id, "id")?, fits(function, "function_info_index")?);
        count += 1;
        let me = if kept && count <= cap {
            let k = traces.ids.len() as u32;
            checks.function_index.note(function_index, k as usize, row_at[function]);
            traces.ids.push(node_id);
            traces.parent.push(*open.last().unwrap_or(&NO_PARENT));
            traces.function.push(function_index);
            k
        } else {
            if kept {
                kept = false;
                *traces = AllocationTraces {
                    functions: std::mem::take(&mut traces.functions),
                    ..AllocationTraces::default()
                };
                checks.function_index = MaxName::default();
            }
            NO_PARENT
        };
        if open.len() > MAX_TRACE_DEPTH {
            return Err(r.invalid_at(r.offset(), format!("nesting deeper than {MAX_TRACE_DEPTH} levels")));
        }
        if !r.open_array()? {
            open.push(me);
            continue;
        }
        // After a node: more nodes in this list, or its end (closing lists as they end).
        loop {
            if r.comma_or(b']')? {
                continue 'node;
            }
            open.pop();
            if open.is_empty() {
                break 'node;
            }
        }
    }
    if !kept {
        warnings.push(Warning {
            section: crate::error::Section::TraceTree,
            message: format!(
                "the trace_tree has {count} nodes, more than the {} heap nodes + {TRACE_NODE_SLACK}: allocation stacks ignored",
                l.node_count
            ),
        });
    }
    Ok(())
}
