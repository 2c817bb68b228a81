//! The leakhound snapshot engine: V8 `.heapsnapshot` bytes in, a compact heap graph and
//! the numbers Chrome DevTools shows out. Pure: no processes, no terminal, no network.
//!
//! - [`load`] streams a snapshot from any [`std::io::Read`] (never holding the file as
//!   one string), finds every field by name in `snapshot.meta`, and runs DevTools'
//!   analysis: DOM state, shallow-size redistribution, Lengauer–Tarjan dominators,
//!   retained sizes, distances, class names and interface names, statistics.
//! - [`summary`], [`compare`], [`retainers`] give the Summary, Comparison and Retainers
//!   views with DevTools' exact numbers and order.
//!
//! ```no_run
//! let file = std::fs::File::open("app.heapsnapshot")?;
//! let loaded = leakhound_heap::load(std::io::BufReader::new(file), &mut |_| {})?;
//! for row in leakhound_heap::summary(&loaded.snapshot).iter().take(10) {
//!     println!("{} ×{} {} bytes retained", row.class_name, row.count, row.retained_size_bytes);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Limits: fewer than 2^32 / node-field-count nodes and 2^32 edges (V8 writes 32-bit
//! node indices); self sizes ≥ 4 GiB count modulo 2^32, as in DevTools (with a warning).
//! The algorithms follow `../shared/reference/heapsnapshot-format.md` §3 and DevTools'
//! `front_end/entrypoints/heap_snapshot_worker/HeapSnapshot.ts`.

mod analyze;
mod classes;
mod comparison;
mod dominators;
mod error;
mod parse;
mod reader;
mod retainers;
mod snapshot;
mod strings;
mod summary;

pub use comparison::{ComparisonRow, compare};
pub use error::{Section, SnapshotError, Warning};
pub use parse::Progress;
pub use retainers::{Retainer, RetainerIndex, display_name, retainer_view_distance, retainers};
pub use snapshot::{
    BASE_SYSTEM_DISTANCE, BASE_UNREACHABLE_DISTANCE, Class, EdgeId, EdgeType, HeapSnapshot, InterfaceDefinition,
    Location, NO_DISTANCE, NodeId, NodeType, Statistics,
};
pub use strings::Strings;
pub use summary::{SummaryRow, summary, summary_filtered};

/// A loaded snapshot and what was odd about it.
#[derive(Debug)]
pub struct Loaded {
    /// The analysed snapshot.
    pub snapshot: HeapSnapshot,
    /// Non-fatal problems (invalid UTF-8 replaced, unreachable nodes, 4 GiB self sizes).
    pub warnings: Vec<Warning>,
}

/// Reads and analyses a snapshot.
///
/// `progress` receives [`Progress::Read`] about every 16 MiB and [`Progress::Step`] at
/// each analysis step.
///
/// # Errors
/// [`SnapshotError`] naming the section and byte offset for any input that is not a
/// complete, self-consistent heap snapshot: empty, truncated, not JSON, JSON without the
/// snapshot sections, counts that disagree with the arrays, an edge pointing past the
/// node array, negative or overflowing numbers, or a read error.
pub fn load<R: std::io::Read>(input: R, progress: &mut dyn FnMut(Progress)) -> Result<Loaded, SnapshotError> {
    let parse::Parsed {
        mut snapshot,
        mut warnings,
    } = parse::parse(input, progress)?;
    analyze::analyze(&mut snapshot, &mut warnings, progress);
    Ok(Loaded { snapshot, warnings })
}
