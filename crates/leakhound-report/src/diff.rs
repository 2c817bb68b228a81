//! The `diff` report: DevTools' Comparison view plus the retained-size delta per class.

use std::io::{self, Write};

use leakhound_heap::ComparisonRow;
use serde::Serialize;

use crate::format::{self, Table};

/// The stable JSON of `leakhound diff --json` (`schema_version` 1).
#[derive(Debug, Serialize)]
pub struct DiffJson<'a> {
    /// Version of this document's layout: always 1 (fields are only ever added).
    pub schema_version: u32,
    /// Which report this is: always `"diff"`.
    pub kind: &'static str,
    /// The base snapshot file.
    pub base: &'a str,
    /// The current snapshot file.
    pub current: &'a str,
    /// Rows, in the order shown (`--sort`), cut to `--top`.
    pub comparison: Vec<DiffRowJson<'a>>,
    /// Rows before the cut.
    pub total_rows: usize,
}

/// One Comparison row with the oracle's field names plus `retained_size_delta_bytes`.
#[derive(Debug, Serialize)]
pub struct DiffRowJson<'a> {
    /// Class name as DevTools shows it (the current snapshot's; the base's for a class gone
    /// from current).
    pub class_name: &'a str,
    /// DevTools class key.
    pub class_key: &'a str,
    /// DevTools' `# New`: objects of the class whose id is not in the base.
    pub new_count: u64,
    /// DevTools' `# Deleted`: objects of the base whose id is not in current.
    pub deleted_count: u64,
    /// DevTools' `# Delta`: `new_count − deleted_count`.
    pub delta_count: i64,
    /// `Alloc. Size` (self sizes of new objects).
    pub alloc_size_bytes: u64,
    /// DevTools' `Freed Size`: self sizes of the deleted objects, bytes.
    pub freed_size_bytes: u64,
    /// DevTools' `Size Delta`: `alloc_size_bytes − freed_size_bytes`, bytes.
    pub size_delta_bytes: i64,
    /// Retained size of the class in current minus base (no double counting).
    pub retained_size_delta_bytes: i64,
}

/// Writes the diff as JSON.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_diff_json(
    base: &str,
    current: &str,
    rows: &[ComparisonRow],
    total_rows: usize,
    w: &mut dyn Write,
) -> io::Result<()> {
    let doc = DiffJson {
        schema_version: 1,
        kind: "diff",
        base,
        current,
        comparison: rows
            .iter()
            .map(|r| DiffRowJson {
                class_name: &r.class_name,
                class_key: &r.class_key,
                new_count: r.new_count,
                deleted_count: r.deleted_count,
                delta_count: r.delta_count,
                alloc_size_bytes: r.alloc_size_bytes,
                freed_size_bytes: r.freed_size_bytes,
                size_delta_bytes: r.size_delta_bytes,
                retained_size_delta_bytes: r.retained_size_delta_bytes,
            })
            .collect(),
        total_rows,
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

/// Writes the diff as a table.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_diff_text(
    base: &str,
    current: &str,
    rows: &[ComparisonRow],
    total_rows: usize,
    w: &mut dyn Write,
) -> io::Result<()> {
    writeln!(w, "{current} compared with {base}")?;
    let mut t = Table::new(&[
        "Constructor",
        "# New",
        "# Deleted",
        "# Delta",
        "Alloc. Size",
        "Freed Size",
        "Size Delta",
        "Retained Δ",
    ]);
    for r in rows {
        t.row(vec![
            format::truncate(&r.class_name, 50),
            format::count(r.new_count),
            format::count(r.deleted_count),
            format::signed_count(r.delta_count),
            format::bytes(r.alloc_size_bytes),
            format::bytes(r.freed_size_bytes),
            format::signed_bytes(r.size_delta_bytes),
            format::signed_bytes(r.retained_size_delta_bytes),
        ]);
    }
    write!(w, "{}", t.render())?;
    if total_rows > rows.len() {
        writeln!(
            w,
            "… {} (--top 0 shows all)",
            format::plural((total_rows - rows.len()) as u64, "more class", "more classes")
        )?;
    }
    Ok(())
}
