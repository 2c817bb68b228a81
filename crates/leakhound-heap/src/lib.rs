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
//! The algorithms follow Chrome DevTools' `HeapSnapshot.ts`
//! (`front_end/entrypoints/heap_snapshot_worker/` in the `devtools-frontend` repository);
//! each module names the DevTools methods it follows (the `§` numbers beside them are
//! sections of the project's notes on the snapshot format, `heapsnapshot-format.md`).

mod analyze;
mod bits;
mod class_of;
mod classes;
mod comparison;
mod dominator_tree;
mod dominators;
mod error;
mod ids;
mod parse;
mod reader;
mod retainers;
mod snapshot;
mod strings;
mod summary;
mod traces;

pub use comparison::{ComparisonRow, compare};
pub use error::{Section, SnapshotError, Warning};
pub use ids::{EdgeId, NodeId};
pub use parse::Progress;

pub use retainers::{Retainer, RetainerIndex, display_name, retainer_view_distance, retainers};
pub use snapshot::{
    BASE_SYSTEM_DISTANCE, BASE_UNREACHABLE_DISTANCE, Class, EdgeType, HeapSnapshot, InterfaceDefinition, Location,
    NO_DISTANCE, NodeType, Statistics,
};
pub use strings::Strings;
pub use summary::{SummaryRow, summary, summary_filtered};
pub use traces::AllocationFrame;

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
/// each analysis step. Threads as in [`load_with`].
///
/// # Errors
/// [`SnapshotError`] naming the section and byte offset for any input that is not a
/// complete, self-consistent heap snapshot: empty, truncated, not JSON, JSON without the
/// snapshot sections, counts that disagree with the arrays, an edge pointing past the
/// node array, negative or overflowing numbers, or a read error.
pub fn load<R: std::io::Read>(input: R, progress: &mut dyn FnMut(Progress)) -> Result<Loaded, SnapshotError> {
    load_with(input, Analysis::Full, progress)
}

/// How much of DevTools' analysis [`load_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Analysis {
    /// Everything: flags, shallow sizes, dominators, retained sizes, distances, classes
    /// with inferred interface names, statistics.
    Full,
    /// [`Analysis::Full`] without distances and the Statistics breakdown (distances read
    /// as [`NO_DISTANCE`], the breakdown's per-type parts as 0): dominators, retained
    /// sizes, classes. What the leak finder needs of a series' last snapshot.
    Retained,
    /// The graph and DOM state only. Classes are left to [`HeapSnapshot::reclassify`],
    /// which must run before any class is read (it names plain objects with another
    /// snapshot's interface definitions, or none). No dominators, retained sizes,
    /// distances or statistics: those read as 0 (distance [`NO_DISTANCE`]). For earlier
    /// snapshots of a series, where only ids, edges and class keys matter; well under
    /// half the time of `Full`.
    Graph,
}

/// Reads a snapshot and runs the chosen amount of analysis.
///
/// Threads: the halves of each buffer of the node, edge and location arrays, and
/// independent analysis steps, are the two sides of `rayon::join`s on the current rayon
/// pool (the global one, or the pool whose `install` runs this; called from a thread
/// outside any pool, each join runs in the global pool while this thread waits). A pool
/// without an idle thread runs both sides on one. The snapshot, the warnings, and every
/// error with its offset are the same whatever the pool's size.
///
/// # Errors
/// As [`load`].
pub fn load_with<R: std::io::Read>(
    input: R,
    analysis: Analysis,
    progress: &mut dyn FnMut(Progress),
) -> Result<Loaded, SnapshotError> {
    let parse::Parsed {
        mut snapshot,
        mut warnings,
    } = parse::parse(input, progress)?;
    match analysis {
        Analysis::Full => analyze::analyze(&mut snapshot, &mut warnings, true, progress),
        Analysis::Retained => analyze::analyze(&mut snapshot, &mut warnings, false, progress),
        Analysis::Graph => analyze::analyze_graph(&mut snapshot, progress),
    }
    Ok(Loaded { snapshot, warnings })
}
