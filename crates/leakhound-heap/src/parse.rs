//! Streaming `.heapsnapshot` parser: reads the layout from `snapshot.meta`, then streams
//! `nodes`, `edges`, `locations` and `strings` straight into columnar arrays. Never holds
//! the file as one string and never builds a JSON tree of the big sections.

use std::io::Read;

use crate::error::{Section, SnapshotError, Warning};
use crate::reader::{Cap, Reader};
use crate::snapshot::{HeapSnapshot, Location, Statistics};
use crate::strings::Strings;

mod layout;
mod rows;
mod traces;

use layout::{Layout, MaxName};
use rows::{read_edges, read_locations, read_nodes};
use traces::{TraceChecks, read_trace_function_infos, read_trace_tree};

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

/// The `snapshot` header is read whole, as one JSON value: real ones are about 1 KB
/// (the corpus' largest 1,056 bytes), so 1 MiB leaves a thousandfold margin while
/// bounding what a hostile header can make the reader hold (tens of MB at most).
#[cfg(not(fuzzing))]
const HEADER_CAP: Cap = Cap {
    what: "the snapshot header",
    bytes: 1 << 20,
};
/// Under the fuzzer the cap is reachable within its input size (the seeds' headers are
/// below 1 KB).
#[cfg(fuzzing)]
const HEADER_CAP: Cap = Cap {
    what: "the snapshot header",
    bytes: 4 << 10,
};

/// Top-level keys are short names (`trace_function_infos` is the longest V8 writes).
const KEY_CAP: Cap = Cap {
    what: "a top-level key",
    bytes: 1 << 10,
};

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
    let mut trace_checks = TraceChecks::default();

    if r.peek_nonws()? == Some(b'}') {
        return Err(r.invalid_at(r.offset(), "the JSON object is empty: not a heap snapshot"));
    }
    loop {
        r.section = Section::TopLevel;
        r.peek_nonws()?;
        let key_at = r.offset();
        let key = r.read_key(&mut scratch, KEY_CAP)?;
        r.expect(b':', "':' after a key")?;
        if let Some(&name) = [
            "snapshot",
            "nodes",
            "edges",
            "locations",
            "strings",
            "trace_function_infos",
            "trace_tree",
        ]
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
                let header = r.read_bounded_value(HEADER_CAP)?;
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
                        read_locations(&mut r, expected_stride, l.node_count, &mut raw_locations, &mut report)?;
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
            "trace_function_infos" | "trace_tree" => {
                let Some(l) = layout.as_ref() else {
                    return Err(r.invalid_at(
                        key_at,
                        format!("the '{key}' section comes before the 'snapshot' header"),
                    ));
                };
                if key == "trace_tree" {
                    r.section = Section::TraceTree;
                    read_trace_tree(&mut r, l, &mut snap.traces, &mut trace_checks, &mut warnings)?;
                } else {
                    r.section = Section::TraceFunctionInfos;
                    read_trace_function_infos(&mut r, l, &mut snap.traces, &mut trace_checks, &mut report)?;
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
    if r.lone_surrogate_strings > 0 {
        warnings.push(Warning {
            section: Section::Strings,
            message: format!(
                "{} string(s) had lone UTF-16 surrogate escapes, replaced with U+FFFD (first at byte {})",
                r.lone_surrogate_strings,
                r.first_lone_surrogate_offset.unwrap_or(0)
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
    if let MaxName {
        index: Some(name),
        ordinal: k,
        offset,
    } = trace_checks.names
        && name as u64 >= string_count
    {
        return Err(SnapshotError::Invalid {
            section: Section::TraceFunctionInfos,
            offset,
            message: format!("function {k} names string {name}, but there are only {string_count} strings"),
        });
    }
    let function_count = snap.traces.functions.len();
    if let MaxName {
        index: Some(f),
        ordinal: k,
        offset,
    } = trace_checks.function_index
        && f as usize >= function_count
    {
        return Err(SnapshotError::Invalid {
            section: Section::TraceTree,
            offset,
            message: format!(
                "trace node {k} names function {f}, but there are only {function_count} trace_function_infos"
            ),
        });
    }
    // Allocation stacks are kept only when there are some: otherwise neither the
    // per-node column nor the tree costs memory.
    if snap.traces.has_stacks() && !snap.trace_node.is_empty() {
        snap.traces.index();
    } else {
        snap.trace_node = Vec::new();
        snap.traces = Default::default();
    }

    // Locations: keyed by node index; the last row for a node wins (DevTools Map.set).
    if let (Some(o), Some(s), Some(li), Some(c)) = (layout.l_object, layout.l_script, layout.l_line, layout.l_column) {
        let stride = layout.loc_stride;
        let mut locs: Vec<(u32, Location)> = Vec::with_capacity(raw_locations.len() / stride.max(1));
        // One warning for all of them: their number is bounded by node_count only.
        let (mut strays, mut first_stray) = (0u64, 0usize);
        for row in raw_locations.chunks_exact(stride) {
            let index = row[o] as usize;
            if !index.is_multiple_of(layout.node_stride) || index / layout.node_stride >= snap.node_type.len() {
                if strays == 0 {
                    first_stray = index;
                }
                strays += 1;
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
        if strays > 0 {
            warnings.push(Warning {
                section: Section::Locations,
                message: format!(
                    "{strays} location(s) point at node indexes that are not nodes (the first at {first_stray}); ignored"
                ),
            });
        }
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
        trace_node: Vec::new(),
        traces: Default::default(),
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
