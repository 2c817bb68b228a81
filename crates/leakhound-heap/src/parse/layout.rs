//! The layout of the snapshot's rows, found by name in `snapshot.meta` with the header's
//! counts, and what the section readers share: vectors reserved from those counts, the
//! exact division that turns a `to_node` into an ordinal, and the largest string index a
//! section names. A leaf under `parse`: both `parse.rs` and `parse/rows.rs` use it.

use crate::error::{Section, SnapshotError};
use crate::reader::Json;

/// Where each field sits in a node, edge or location row (found by name in the meta).
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) node_stride: usize,
    pub(super) n_type: usize,
    pub(super) n_name: usize,
    pub(super) n_id: usize,
    pub(super) n_self: usize,
    pub(super) n_edges: usize,
    pub(super) n_detach: Option<usize>,
    pub(super) n_trace: Option<usize>,
    pub(super) edge_stride: usize,
    pub(super) e_type: usize,
    pub(super) e_name: usize,
    pub(super) e_to: usize,
    pub(super) loc_stride: usize,
    pub(super) l_object: Option<usize>,
    pub(super) l_script: Option<usize>,
    pub(super) l_line: Option<usize>,
    pub(super) l_column: Option<usize>,
    /// `trace_function_count` from the header (0 when absent): the functions of the
    /// allocation stacks, when allocation tracking was on.
    pub(super) trace_function_count: u64,
    /// Fields of a `trace_function_infos` row (`function_id, name, script_name,
    /// script_id, line, column`).
    pub(super) trace_function_fields: Vec<String>,
    /// Fields of a `trace_tree` node (`id, function_info_index, count, size, children`).
    pub(super) trace_node_fields: Vec<String>,
    pub(super) node_types: Vec<String>,
    pub(super) edge_types: Vec<String>,
    pub(super) node_count: u64,
    pub(super) edge_count: u64,
    pub(super) root_index: Option<u64>,
    pub(super) extra_native_bytes: u64,
    /// Offset of the `snapshot` header, for errors found in it after reading.
    pub(super) header_at: u64,
}

/// Vectors sized from header counts are reserved up to this many elements, then grow
/// with the data: a tiny file claiming 2^32 edges must get an error, not a 16 GiB
/// allocation that aborts the process.
const PREALLOC_LIMIT: usize = 1 << 20;

/// A vector with room for `count` elements when the system grants it (address space
/// only: pages are touched as data arrives, so a header that lies costs nothing), else
/// for [`PREALLOC_LIMIT`] and growing as data arrives. Exact reservation avoids the
/// doubling that would otherwise leave the large arrays up to twice their size.
pub(super) fn reserved<T>(count: usize) -> Vec<T> {
    let mut v = Vec::new();
    if v.try_reserve_exact(count).is_err() {
        let _ = v.try_reserve(count.min(PREALLOC_LIMIT));
    }
    v
}

/// Header numbers DevTools reads as JS numbers: integers from 0 to 2^53.
const MAX_HEADER_NUMBER: f64 = 9_007_199_254_740_992.0;

/// A short rendering of a header value for error messages.
fn describe_json(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("the string {:?}", s.chars().take(40).collect::<String>()),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

fn names(meta: &Json, key: &str) -> Option<Vec<String>> {
    meta.get(key)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn type_list(meta: &Json, key: &str, offset: usize) -> Option<Vec<String>> {
    let list = meta.get(key)?.as_array()?.get(offset)?.as_array()?;
    list.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

impl Layout {
    pub(super) fn from_header(header: &Json, at: u64) -> Result<Layout, SnapshotError> {
        let bad = |message: String| SnapshotError::Invalid {
            section: Section::Header,
            offset: at,
            message,
        };
        let meta = header
            .get("meta")
            .ok_or_else(|| bad("the header has no 'meta'".into()))?;
        let node_fields = names(meta, "node_fields").ok_or_else(|| bad("meta.node_fields is missing".into()))?;
        let edge_fields = names(meta, "edge_fields").ok_or_else(|| bad("meta.edge_fields is missing".into()))?;
        let find = |fields: &[String], name: &str, list: &str| -> Result<usize, SnapshotError> {
            fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| bad(format!("meta.{list} has no '{name}' field")))
        };
        let n_type = find(&node_fields, "type", "node_fields")?;
        let e_type = find(&edge_fields, "type", "edge_fields")?;
        let node_types = type_list(meta, "node_types", n_type)
            .ok_or_else(|| bad("meta.node_types has no list of type names".into()))?;
        let edge_types = type_list(meta, "edge_types", e_type)
            .ok_or_else(|| bad("meta.edge_types has no list of type names".into()))?;
        if node_types.len() > 255 || edge_types.len() > 255 {
            return Err(bad("more than 255 node or edge types".into()));
        }
        let location_fields = names(meta, "location_fields").unwrap_or_default();
        // A header number: absent is `None`; present but not an integer from 0 to 2^53
        // (negative, fractional, overflowing, not a number) is an error.
        let number = |key: &str| -> Result<Option<u64>, SnapshotError> {
            let Some(v) = header.get(key) else {
                return Ok(None);
            };
            match v {
                Json::Number(n) if *n <= MAX_HEADER_NUMBER => v.as_u64().map(Some),
                _ => None,
            }
            .ok_or_else(|| {
                bad(format!(
                    "the header's '{key}' must be an integer from 0 to 2^53, found {}",
                    describe_json(v)
                ))
            })
        };
        let count = |key: &str| -> Result<u64, SnapshotError> {
            number(key)?.ok_or_else(|| bad(format!("the header has no '{key}'")))
        };
        Ok(Layout {
            node_stride: node_fields.len(),
            n_type,
            n_name: find(&node_fields, "name", "node_fields")?,
            n_id: find(&node_fields, "id", "node_fields")?,
            n_self: find(&node_fields, "self_size", "node_fields")?,
            n_edges: find(&node_fields, "edge_count", "node_fields")?,
            n_detach: node_fields.iter().position(|f| f == "detachedness"),
            n_trace: node_fields.iter().position(|f| f == "trace_node_id"),
            edge_stride: edge_fields.len(),
            e_type,
            e_name: find(&edge_fields, "name_or_index", "edge_fields")?,
            e_to: find(&edge_fields, "to_node", "edge_fields")?,
            loc_stride: location_fields.len(),
            l_object: location_fields.iter().position(|f| f == "object_index"),
            l_script: location_fields.iter().position(|f| f == "script_id"),
            l_line: location_fields.iter().position(|f| f == "line"),
            l_column: location_fields.iter().position(|f| f == "column"),
            trace_function_count: number("trace_function_count")?.unwrap_or(0),
            trace_function_fields: names(meta, "trace_function_info_fields").unwrap_or_default(),
            trace_node_fields: names(meta, "trace_node_fields").unwrap_or_default(),
            node_types,
            edge_types,
            node_count: count("node_count")?,
            edge_count: count("edge_count")?,
            root_index: number("root_index")?,
            extra_native_bytes: number("extra_native_bytes")?.unwrap_or(0),
            header_at: at,
        })
    }
}

/// Exact division by a runtime constant through a 64-bit reciprocal (exact for `u32`
/// dividends), so the edge loop does not pay for a hardware divide per edge.
#[derive(Clone, Copy)]
pub(super) struct Divider {
    m: u128,
}

impl Divider {
    pub(super) fn new(d: u32) -> Divider {
        // m = ceil(2^64 / d)
        let m = (1u128 << 64).div_ceil(d as u128);
        Divider { m }
    }
    #[inline]
    pub(super) fn div(self, x: u32) -> u32 {
        ((x as u128 * self.m) >> 64) as u32
    }
}

/// The largest string index a section names, and where: checked against the strings
/// once they are read (they come last), so the error can point at the offending value.
#[derive(Clone, Copy, Default)]
pub(super) struct MaxName {
    /// The largest string index seen, if any.
    pub(super) index: Option<u32>,
    /// The ordinal of the (first) row naming it.
    pub(super) ordinal: usize,
    /// The byte offset of that value in the file.
    pub(super) offset: u64,
}

impl MaxName {
    #[inline]
    pub(super) fn note(&mut self, index: u32, ordinal: usize, offset: u64) {
        if self.index.is_none_or(|m| index > m) {
            *self = MaxName {
                index: Some(index),
                ordinal,
                offset,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Divider;

    #[test]
    fn divider_is_exact_for_all_strides_seen() {
        for d in 1..=16u32 {
            let div = Divider::new(d);
            for x in (0..200_000u32).chain([u32::MAX, u32::MAX - 1, u32::MAX - d, 1 << 31]) {
                assert_eq!(div.div(x), x / d, "{x} / {d}");
            }
        }
    }
}
