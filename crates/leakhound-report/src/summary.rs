//! The `summary` and `stats` reports: DevTools' Summary view (objects per class) and
//! Statistics breakdown of one snapshot, as a terminal table and as stable JSON.

use std::io::{self, Write};

use serde::Serialize;

use crate::format::{self, Table};

/// What the `summary` report shows about one snapshot.
#[derive(Debug, Clone)]
pub struct SummaryView<'a> {
    /// File name as given by the user.
    pub file: &'a str,
    /// The analysed snapshot.
    pub snapshot: &'a leakhound_heap::HeapSnapshot,
    /// Rows, already sorted and cut to what should be shown.
    pub rows: &'a [leakhound_heap::SummaryRow],
    /// Rows before cutting (for "N more classes").
    pub total_rows: usize,
    /// What the engine noticed while reading the snapshot (e.g. unreachable nodes); empty
    /// when all was well.
    pub warnings: &'a [leakhound_heap::Warning],
}

/// The stable JSON of `leakhound summary --json` (`schema_version` 1; fields are only
/// ever added). Sizes in bytes.
#[derive(Debug, Serialize)]
pub struct SummaryJson<'a> {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// Which report this is: always `"summary"`.
    pub kind: &'static str,
    /// The file analysed.
    pub file: &'a str,
    /// Totals of the snapshot.
    pub snapshot: SnapshotTotalsJson,
    /// Summary rows, DevTools' order (retained size descending), cut to `--top`.
    pub summary: Vec<SummaryRowJson<'a>>,
    /// Number of rows before `--top` cut them.
    pub total_rows: usize,
    /// Engine warnings, one line each.
    pub warnings: Vec<String>,
}

/// Totals of one snapshot, as in the oracle's `snapshot` object.
#[derive(Debug, Serialize)]
pub struct SnapshotTotalsJson {
    /// Nodes in the snapshot (objects, strings, code, …: every node in the file).
    pub node_count: u64,
    /// Edges (references) in the snapshot.
    pub edge_count: u64,
    /// Root's retained size plus `extra_native_bytes` (DevTools' Total).
    pub total_size_bytes: u64,
    /// `extra_native_bytes` from the header (0 when absent).
    pub extra_native_bytes: u64,
    /// Largest odd node id.
    pub max_js_object_id: u32,
    /// Nodes not reachable from the root.
    pub unreachable_node_count: u32,
    /// The Statistics breakdown.
    pub statistics: StatisticsJson,
}

/// The Statistics breakdown in bytes, the oracle's field names.
#[derive(Debug, Serialize)]
pub struct StatisticsJson {
    /// DevTools' Total: the root's retained size plus `extra_native_bytes`.
    pub total_bytes: u64,
    /// Total minus native.
    pub v8heap_bytes: u64,
    /// Self sizes of compiled code (`code` nodes).
    pub code_bytes: u64,
    /// Self sizes of strings (plain, concatenated and sliced).
    pub strings_bytes: u64,
    /// JS arrays (with their element stores).
    pub js_arrays_bytes: u64,
    /// Hidden (system) nodes.
    pub system_bytes: u64,
    /// Native nodes plus `extra_native_bytes`.
    pub native_bytes: u64,
    /// ArrayBuffer backing stores.
    pub typed_arrays_bytes: u64,
}

/// One Summary row, with the oracle's field names.
#[derive(Debug, Serialize)]
pub struct SummaryRowJson<'a> {
    /// Constructor / class name.
    pub class_name: &'a str,
    /// DevTools class key.
    pub class_key: &'a str,
    /// Number of objects.
    pub count: u64,
    /// Minimum distance (`-5` unreachable, ≥ 100000000 system-only).
    pub distance: i32,
    /// Sum of adjusted self sizes.
    pub self_size_bytes: u64,
    /// Retained size without double counting.
    pub retained_size_bytes: u64,
    /// `self_size_bytes` as a share of the total, in percent.
    pub self_size_percent: f64,
    /// `retained_size_bytes` as a share of the total, in percent.
    pub retained_size_percent: f64,
}

/// The totals object of a snapshot.
pub fn totals_json(s: &leakhound_heap::HeapSnapshot) -> SnapshotTotalsJson {
    let st = s.statistics();
    SnapshotTotalsJson {
        node_count: s.node_count() as u64,
        edge_count: s.edge_count() as u64,
        total_size_bytes: s.total_size_bytes(),
        extra_native_bytes: s.extra_native_bytes(),
        max_js_object_id: s.max_js_object_id(),
        unreachable_node_count: s.unreachable_count(),
        statistics: StatisticsJson {
            total_bytes: st.total_bytes,
            v8heap_bytes: st.v8heap_bytes,
            code_bytes: st.code_bytes,
            strings_bytes: st.strings_bytes,
            js_arrays_bytes: st.js_arrays_bytes,
            system_bytes: st.system_bytes,
            native_bytes: st.native_bytes,
            typed_arrays_bytes: st.typed_arrays_bytes,
        },
    }
}

/// Writes the JSON of the `summary` report.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_summary_json(v: &SummaryView<'_>, w: &mut dyn Write) -> io::Result<()> {
    let total = v.snapshot.total_size_bytes();
    let doc = SummaryJson {
        schema_version: 1,
        kind: "summary",
        file: v.file,
        snapshot: totals_json(v.snapshot),
        summary: v
            .rows
            .iter()
            .map(|r| SummaryRowJson {
                class_name: &r.class_name,
                class_key: &r.class_key,
                count: r.count,
                distance: r.distance,
                self_size_bytes: r.self_size_bytes,
                retained_size_bytes: r.retained_size_bytes,
                self_size_percent: format::percent_json(r.self_size_bytes, total),
                retained_size_percent: format::percent_json(r.retained_size_bytes, total),
            })
            .collect(),
        total_rows: v.total_rows,
        warnings: v.warnings.iter().map(|w| w.to_string()).collect(),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// Writes the Summary view as a table for a terminal.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_summary_text(v: &SummaryView<'_>, w: &mut dyn Write) -> io::Result<()> {
    let s = v.snapshot;
    let total = s.total_size_bytes();
    writeln!(
        w,
        "{}: {} nodes, {} edges, total {}",
        v.file,
        format::count(s.node_count() as u64),
        format::count(s.edge_count() as u64),
        format::bytes(total)
    )?;
    let mut t = Table::new(&[
        "Constructor",
        "Distance",
        "Count",
        "Shallow Size",
        "",
        "Retained Size",
        "",
    ]);
    for r in v.rows {
        t.row(vec![
            format::truncate(&r.class_name, 60),
            format::distance(r.distance),
            format::count(r.count),
            format::bytes(r.self_size_bytes),
            format::percent(r.self_size_bytes, total),
            format::bytes(r.retained_size_bytes),
            format::percent(r.retained_size_bytes, total),
        ]);
    }
    write!(w, "{}", t.render())?;
    if v.total_rows > v.rows.len() {
        writeln!(
            w,
            "… {} (--top 0 shows all)",
            format::plural((v.total_rows - v.rows.len()) as u64, "more class", "more classes")
        )?;
    }
    Ok(())
}

/// Writes the Statistics breakdown for a terminal (or JSON when `json`).
///
/// # Errors
/// Any error writing to `w`.
pub fn write_stats(file: &str, s: &leakhound_heap::HeapSnapshot, json: bool, w: &mut dyn Write) -> io::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Doc<'a> {
            schema_version: u32,
            kind: &'static str,
            file: &'a str,
            snapshot: SnapshotTotalsJson,
        }
        serde_json::to_writer_pretty(
            &mut *w,
            &Doc {
                schema_version: 1,
                kind: "stats",
                file,
                snapshot: totals_json(s),
            },
        )?;
        return writeln!(w);
    }
    let st = s.statistics();
    let total = st.total_bytes;
    writeln!(w, "{file}: total {}", format::bytes(total))?;
    let mut t = Table::new(&["Category", "Size", "Share"]);
    let other = st
        .v8heap_bytes
        .saturating_sub(st.code_bytes + st.strings_bytes + st.js_arrays_bytes + st.system_bytes);
    for (name, value) in [
        ("Code", st.code_bytes),
        ("Strings", st.strings_bytes),
        ("JS arrays", st.js_arrays_bytes),
        ("Typed arrays (backing stores)", st.typed_arrays_bytes),
        ("System objects", st.system_bytes),
        ("Other JS objects", other),
        ("Native (incl. typed arrays)", st.native_bytes),
        ("V8 heap", st.v8heap_bytes),
        ("Total", total),
    ] {
        t.row(vec![
            name.to_owned(),
            format::bytes(value),
            format::percent(value, total),
        ]);
    }
    write!(w, "{}", t.render())
}
