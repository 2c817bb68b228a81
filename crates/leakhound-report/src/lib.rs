//! Renderers for leakhound's results: text for a terminal, stable JSON for tools, and a
//! self-contained HTML page. Inputs are plain structs; output goes to any `io::Write`.
//! This crate holds the only JSON wire types of the project (`schema_version` fields,
//! units in names, additive changes only).

pub mod diff;
pub mod episode;
pub mod error;
pub mod format;
pub mod html;
pub mod hunt;
pub mod leaks;
pub mod lint;
pub mod no_cluster;
pub mod retainers;
pub mod summary;
pub mod terminal;
pub mod watch;
