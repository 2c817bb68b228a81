//! Streaming `.heapsnapshot` parser: reads the layout from `snapshot.meta`, then streams
//! `nodes`, `edges`, `locations` and `strings` straight into columnar arrays. Never holds
//! the file as one string and never builds a JSON tree of the big sections.

use std::io::Read;

use crate::error::{Section, SnapshotError, Warning};
use crate::reader::{Json, Reader};

mod rows;

use crate::snapshot::{HeapSnapshot, Location, Statistics};
use crate::strings::Strings;
use rows::{read_edges, read_nodes};

/// Progress of a load, reported through the callback given to [`crate::load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// `bytes` of the input have been read.
    Read {
        /// Bytes read so far.
        bytes: u64,
    },
    /// Reading is done; the named analysis step has started.
    Step(&'static str),
}

/// Where each field sits in a node, edge or location row (found by name in the meta).
#[derive(Debug, Clone)]
struct Layout {
    node_stride: usize,
    n_type: usize,
    n_name: usize,
    n_id: usize,
    n_self: usize,
    n_edges: usize,
    n_detach: Option<usize>,
    n_trace: Option<usize>,
    edge_stride: usize,
    e_type: usize,
    e_name: usize,
    e_to: usize,
    loc_stride: usize,
    l_object: Option<usize>,
    l_script: Option<usize>,
    l_line: Option<usize>,
    l_column: Option<usize>,
    node_types: Vec<String>,
    edge_types: Vec<String>,
    node_count: u64,
    edge_count: u64,
    root_index: Option<u64>,
    extra_native_bytes: u64,
    /// Offset of the `snapshot` header, for errors found in it after reading.
    header_at: u64,
}

/// Vectors sized from header counts are reserved up to this many elements, then grow
/// with the data: a tiny file claiming 2^32 edges must get an error, not a 16 GiB
/// allocation that aborts the process.
const PREALLOC_LIMIT: usize = 1 << 20;

/// A vector with room for `count` elements when the system grants it (address space
/// only: pages are touched as data arrives, so a header that lies costs nothing), else
/// for [`PREALLOC_LIMIT`] and growing as data arrives. Exact reservation avoids the
/// doubling that would otherwise leave the large arrays up to twice their size.
fn reserved<T>(count: usize) -> Vec<T> {
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
    fn from_header(header: &Json, at: u64) -> Result<Layout, SnapshotError> {
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
struct Divider {
    m: u128,
}

impl Divider {
    fn new(d: u32) -> Divider {
        // m = ceil(2^64 / d)
        let m = (1u128 << 64).div_ceil(d as u128);
        Divider { m }
    }
    #[inline]
    fn div(self, x: u32) -> u32 {
        ((x as u128 * self.m) >> 64) as u32
    }
}

/// The largest string index a section names, and where: checked against the strings
/// once they are read (they come last), so the error can point at the offending value.
#[derive(Clone, Copy, Default)]
struct MaxName {
    index: Option<u32>,
    ordinal: usize,
    offset: u64,
}

impl MaxName {
    #[inline]
    fn note(&mut self, index: u32, ordinal: usize, offset: u64) {
        if self.index.is_none_or(|m| index > m) {
            *self = MaxName {
                index: Some(index),
                ordinal,
                offset,
            };
        }
    }
}

/// The raw graph as read, before analysis.
pub(crate) struct Parsed {
    pub(crate) snapshot: HeapSnapshot,
    pub(crate) warnings: Vec<Warning>,
}

pub(crate) fn parse<R: Read>(input: R, progress: &mut dyn FnMut(Progress)) -> Result<Parsed, SnapshotError> {
    let mut r = Reader::new(input);
    let mut warnings = Vec::new();
    let mut report = |bytes: u64| progress(Progress::Read { bytes });

    match r.peek_nonws()? {
        Some(b'{') => {}
        Some(_) => {
            return Err(r.syntax("not a heap snapshot: expected '{' at the start of the file"));
        }
        None => {
            return Err(SnapshotError::Truncated {
                section: Section::TopLevel,
                offset: r.offset(),
            });
        }
    }
    r.expect(b'{', "'{'")?;

    let mut layout: Option<Layout> = None;
    let mut snap = empty_snapshot();
    let mut seen_nodes = false;
    let mut seen_edges = false;
    let mut seen_strings = false;
    let mut nodes_offset = 0u64;
    let mut raw_locations: Vec<u32> = Vec::new();
    let mut self_size_overflows = 0u64;
    let mut scratch = Vec::new();
    // Each section the engine reads may appear once: a second `snapshot` header or
    // `nodes` array would be read against a layout or node count the other sections
    // were not checked against.
    let mut seen_keys: Vec<&'static str> = Vec::new();
    let mut node_names = MaxName::default();
    let mut edge_names = MaxName::default();

    if r.peek_nonws()? == Some(b'}') {
        return Err(r.invalid_at(r.offset(), "the JSON object is empty: not a heap snapshot"));
    }
    loop {
        r.section = Section::TopLevel;
        r.peek_nonws()?;
        let key_at = r.offset();
        let key = r.read_string(&mut scratch)?;
        r.expect(b':', "':' after a key")?;
        if let Some(&name) = ["snapshot", "nodes", "edges", "locations", "strings"]
            .iter()
            .find(|&&k| k == key)
        {
            if seen_keys.contains(&name) {
                return Err(r.invalid_at(key_at, format!("duplicate '{name}' section")));
            }
            seen_keys.push(name);
        }
        match key.as_str() {
            "snapshot" => {
                r.section = Section::Header;
                let at = r.offset();
                let header = r.read_value(0)?;
                layout = Some(Layout::from_header(&header, at)?);
            }
            "nodes" | "edges" | "locations" => {
                let Some(l) = layout.as_ref() else {
                    return Err(r.invalid_at(
                        key_at,
                        format!("the '{key}' section comes before the 'snapshot' header"),
                    ));
                };
                match key.as_str() {
                    "nodes" => {
                        r.section = Section::Nodes;
                        nodes_offset = r.offset();
                        read_nodes(
                            &mut r,
                            l,
                            &mut snap,
                            &mut self_size_overflows,
                            &mut node_names,
                            &mut report,
                        )?;
                        seen_nodes = true;
                    }
                    "edges" => {
                        r.section = Section::Edges;
                        if !seen_nodes {
                            return Err(r.invalid_at(key_at, "the 'edges' section comes before 'nodes'"));
                        }
                        read_edges(&mut r, l, &mut snap, &mut edge_names, &mut report)?;
                        seen_edges = true;
                    }
                    _ => {
                        r.section = Section::Locations;
                        let expected_stride = l.loc_stride.max(1);
                        let before = raw_locations.len();
                        rows::read_locations(&mut r, expected_stride, &mut raw_locations, &mut report)?;
                        let count = (raw_locations.len() - before) as u64;
                        if !count.is_multiple_of(expected_stride as u64) {
                            return Err(r.invalid_at(
                                r.offset(),
                                format!(
                                    "{count} location values is not a multiple of {expected_stride} location_fields"
                                ),
                            ));
                        }
                    }
                }
            }
            "strings" => {
                r.section = Section::Strings;
                let strings = &mut snap.strings;
                r.read_string_array(
                    |bytes, at, rd| {
                        match std::str::from_utf8(bytes) {
                            Ok(s) => {
                                strings.push(s);
                            }
                            Err(_) => {
                                rd.note_invalid_utf8(at);
                                strings.push(&String::from_utf8_lossy(bytes));
                            }
                        }
                        Ok(())
                    },
                    &mut report,
                )?;
                seen_strings = true;
            }
            _ => {
                r.section = Section::Other;
                r.skip_value()?;
            }
        }
        r.section = Section::TopLevel;
        if !r.comma_or(b'}')? {
            break;
        }
    }
    r.expect_end()?;
    report(r.offset());

    let end = r.offset();
    let Some(layout) = layout else {
        return Err(SnapshotError::Invalid {
            section: Section::Header,
            offset: end,
            message: "no 'snapshot' header: not a heap snapshot".into(),
        });
    };
    for (seen, section, name) in [
        (seen_nodes, Section::Nodes, "nodes"),
        (seen_edges, Section::Edges, "edges"),
        (seen_strings, Section::Strings, "strings"),
    ] {
        if !seen {
            return Err(SnapshotError::Invalid {
                section,
                offset: end,
                message: format!("the '{name}' section is missing"),
            });
        }
    }
    if r.invalid_utf8_strings > 0 {
        warnings.push(Warning {
            section: Section::Strings,
            message: format!(
                "{} string(s) had invalid UTF-8, replaced with U+FFFD (first at byte {})",
                r.invalid_utf8_strings,
                r.first_invalid_utf8_offset.unwrap_or(0)
            ),
        });
    }
    if self_size_overflows > 0 {
        warnings.push(Warning {
            section: Section::Nodes,
            message: format!(
                "{self_size_overflows} node(s) have a self size of 4 GiB or more; counted modulo 2^32 as DevTools does"
            ),
        });
    }

    // Cross-section checks that need the strings.
    let string_count = snap.strings.len() as u64;
    if string_count > u32::MAX as u64 {
        return Err(SnapshotError::Invalid {
            section: Section::Strings,
            offset: end,
            message: "more than 2^32 strings".into(),
        });
    }
    if let MaxName {
        index: Some(name),
        ordinal: k,
        offset,
    } = node_names
        && name as u64 >= string_count
    {
        return Err(SnapshotError::Invalid {
            section: Section::Nodes,
            offset,
            message: format!("node {k} names string {name}, but there are only {string_count} strings"),
        });
    }
    if let MaxName {
        index: Some(name),
        ordinal: e,
        offset,
    } = edge_names
        && name as u64 >= string_count
    {
        return Err(SnapshotError::Invalid {
            section: Section::Edges,
            offset,
            message: format!("edge {e} names string {name}, but there are only {string_count} strings"),
        });
    }
    snap.file_string_count = string_count as u32;

    // Locations: keyed by node index; the last row for a node wins (DevTools Map.set).
    if let (Some(o), Some(s), Some(li), Some(c)) = (layout.l_object, layout.l_script, layout.l_line, layout.l_column) {
        let stride = layout.loc_stride;
        let mut locs: Vec<(u32, Location)> = Vec::with_capacity(raw_locations.len() / stride.max(1));
        for row in raw_locations.chunks_exact(stride) {
            let index = row[o] as usize;
            if !index.is_multiple_of(layout.node_stride) || index / layout.node_stride >= snap.node_type.len() {
                warnings.push(Warning {
                    section: Section::Locations,
                    message: format!("a location points at node index {index}, which is not a node; ignored"),
                });
                continue;
            }
            locs.push((
                (index / layout.node_stride) as u32,
                Location {
                    script_id: row[s],
                    line: row[li],
                    column: row[c],
                },
            ));
        }
        // Stable sort keeps file order among equal nodes; keep the last.
        locs.sort_by_key(|&(n, _)| n);
        let mut dedup: Vec<(u32, Location)> = Vec::with_capacity(locs.len());
        for item in locs {
            match dedup.last_mut() {
                Some(last) if last.0 == item.0 => *last = item,
                _ => dedup.push(item),
            }
        }
        snap.locations = dedup;
    }

    if let Some(ri) = layout.root_index {
        if !ri.is_multiple_of(layout.node_stride as u64)
            || ri / layout.node_stride as u64 >= snap.node_type.len() as u64
        {
            return Err(SnapshotError::Invalid {
                section: Section::Header,
                offset: layout.header_at,
                message: format!(
                    "root_index {ri} is not a node index (a multiple of {} below {} nodes × {0})",
                    layout.node_stride,
                    snap.node_type.len()
                ),
            });
        }
        snap.root = (ri / layout.node_stride as u64) as u32;
    }
    if snap.node_type.is_empty() {
        return Err(SnapshotError::Invalid {
            section: Section::Nodes,
            offset: nodes_offset,
            message: "the snapshot has no nodes".into(),
        });
    }
    snap.extra_native_bytes = layout.extra_native_bytes;
    snap.node_type_names = layout.node_types.clone();
    snap.edge_type_names = layout.edge_types.clone();
    Ok(Parsed {
        snapshot: snap,
        warnings,
    })
}

fn empty_snapshot() -> HeapSnapshot {
    HeapSnapshot {
        node_type_names: Vec::new(),
        edge_type_names: Vec::new(),
        node_type_kinds: Vec::new(),
        edge_type_kinds: Vec::new(),
        node_type: Vec::new(),
        node_name: Vec::new(),
        node_id: Vec::new(),
        self_size: Vec::new(),
        first_edge: Vec::new(),
        detachedness: Vec::new(),
        detachedness_known: Vec::new(),
        page_objects: Default::default(),
        has_detachedness: false,
        has_trace_node_id: false,
        edge_kind: Vec::new(),
        edge_spilled: Default::default(),
        edge_to: Vec::new(),
        strings: Strings::new(),
        locations: Vec::new(),
        root: 0,
        extra_native_bytes: 0,
        file_string_count: 0,
        distance: Vec::new(),
        dominator: Vec::new(),
        retained: Vec::new(),
        retained_spilled: Default::default(),
        dominator_tree: Default::default(),
        class_of: Default::default(),
        classes: Vec::new(),
        interface_definitions: Vec::new(),
        statistics: Statistics::default(),
        unreachable_count: 0,
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
