//! Leak analyses over heap graphs and memory series: the three-snapshot leak finder with
//! Node-aware filtering, holders, patterns and source locations ([`find_leaks`]),
//! retainer traces (memlab's shortest paths from a GC root) and trees ([`retainer_tree`]), and the post-GC floor's
//! statistics ([`analyze_floor`]). Pure functions over [`leakhound_heap::HeapSnapshot`]s,
//! but for one piece of I/O: opening snapshot files and loading a series of them
//! ([`open_snapshot`], [`load_series`]), which report progress to a callback and print
//! nothing.

mod alloc;
mod arrays;
mod buffers;
mod chains;
mod cluster;
mod consistency;
mod direct;
mod finder;
mod floor;
mod fold;
mod globals;
mod handles;
mod holder;
mod model;
mod nodes;
mod pattern;
mod retainer_tree;
mod series;
mod source;
mod strings;
mod timers;
mod trace;

pub use alloc::{AllocationStack, FrameOrigin, MAX_ALLOCATION_STACKS, MAX_FRAMES, StackFrame};
pub use cluster::backing_store_bytes;
pub use consistency::check_pair;
pub use finder::{Prepared, find_leaks, find_leaks_prepared};
pub use floor::{
    Evidence, FLAT_BYTES_PER_REQUEST, FloorAnalysis, FloorFit, FloorMetric, MIN_FLAT_POINTS, MemoryKind, MemorySample,
    analyze_floor, flat_bytes_per_hour,
};
pub use model::{ClassCount, Cluster, LeakError, LeakOptions, LeakReport, NotGrowing, PerRequest, TraceStep};
pub use pattern::Pattern;
pub use retainer_tree::{ClassPick, RetainerTree, largest_instances, path_to_root, pick_class, retainer_tree};
pub use series::{FileProgress, SnapshotFileError, load_series, open_snapshot};
pub use source::{MAX_APP_SCRIPTS, SourceKind, SourceRef};
pub use timers::{TimerList, timer_list_duration_ms};
