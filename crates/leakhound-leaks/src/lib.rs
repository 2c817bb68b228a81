//! Leak analyses over heap graphs: the three-snapshot leak finder with Node-aware
//! filtering, holders, patterns and source locations ([`find_leaks`]), and retainer
//! traces ([`Traces`]). Pure functions over [`leakhound_heap::HeapSnapshot`]s; no I/O.

mod arrays;
mod cluster;
mod consistency;
mod finder;
mod floor;
mod holder;
mod model;
mod nodes;
mod pattern;
mod retainer_tree;
mod source;
mod trace;

pub use consistency::check_pair;
pub use finder::{Prepared, find_leaks, find_leaks_prepared};
pub use floor::{FloorAnalysis, FloorFit, FloorMetric, MemoryKind, MemorySample, analyze_floor};
pub use model::{ClassCount, Cluster, LeakError, LeakOptions, LeakReport, NotGrowing, PerRequest, TraceStep};
pub use pattern::Pattern;
pub use retainer_tree::{RetainerTree, path_to_root, retainer_tree};
pub use source::{ScriptMap, SourceRef};
pub use trace::Traces;
