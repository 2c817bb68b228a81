//! Errors and warnings of the engine.

use std::fmt;

/// The part of a `.heapsnapshot` file an error or warning refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Section {
    /// Before or between the top-level keys.
    TopLevel,
    /// The `snapshot` header (`meta`, `node_count`, `edge_count`, ...).
    Header,
    /// The `nodes` array.
    Nodes,
    /// The `edges` array.
    Edges,
    /// The `locations` array.
    Locations,
    /// The `strings` array.
    Strings,
    /// The `trace_function_infos` array (functions of allocation stacks).
    TraceFunctionInfos,
    /// The `trace_tree` (allocation stacks as a tree of calls).
    TraceTree,
    /// A section this engine does not read (skipped), e.g. `samples`.
    Other,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::TopLevel => "top level",
            Section::Header => "snapshot header",
            Section::Nodes => "nodes",
            Section::Edges => "edges",
            Section::Locations => "locations",
            Section::Strings => "strings",
            Section::TraceFunctionInfos => "trace_function_infos",
            Section::TraceTree => "trace_tree",
            Section::Other => "skipped section",
        })
    }
}

/// Why a snapshot could not be read. Every variant names the section and the byte offset
/// (from the start of the input) where the problem was seen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading the input failed.
    #[error("read error in {section} at byte {offset}: {source}")]
    Io {
        /// Section being read.
        section: Section,
        /// Byte offset reached.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input ended before the snapshot was complete.
    #[error("unexpected end of file in {section} at byte {offset} (truncated snapshot?)")]
    Truncated {
        /// Section being read.
        section: Section,
        /// Byte offset where the input ended.
        offset: u64,
    },
    /// The bytes are not the JSON a heap snapshot is made of.
    #[error("malformed snapshot in {section} at byte {offset}: {message}")]
    Syntax {
        /// Section being read.
        section: Section,
        /// Byte offset of the offending byte.
        offset: u64,
        /// What was expected or found.
        message: String,
    },
    /// Well-formed JSON whose content contradicts itself (counts that disagree, an edge
    /// pointing past the node array, an unknown field layout...).
    #[error("invalid snapshot in {section} at byte {offset}: {message}")]
    Invalid {
        /// Section the inconsistency belongs to.
        section: Section,
        /// Byte offset where it was detected (the section start when found after reading).
        offset: u64,
        /// What disagrees with what, in one sentence (e.g. the edge counts and the header).
        message: String,
    },
}

impl SnapshotError {
    /// The section the error refers to.
    pub fn section(&self) -> Section {
        match self {
            SnapshotError::Io { section, .. }
            | SnapshotError::Truncated { section, .. }
            | SnapshotError::Syntax { section, .. }
            | SnapshotError::Invalid { section, .. } => *section,
        }
    }

    /// The byte offset the error refers to.
    pub fn offset(&self) -> u64 {
        match self {
            SnapshotError::Io { offset, .. }
            | SnapshotError::Truncated { offset, .. }
            | SnapshotError::Syntax { offset, .. }
            | SnapshotError::Invalid { offset, .. } => *offset,
        }
    }
}

/// Something odd in an input that was read anyway (the numbers are still computed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Section the warning refers to.
    pub section: Section,
    /// What was odd, in one line.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.section, self.message)
    }
}
