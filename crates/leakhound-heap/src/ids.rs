//! Node and edge ordinals, the indexes every per-node and per-edge column of the graph
//! is read with. A leaf: the graph (`snapshot.rs`) and the algorithms over plain arrays
//! (`dominators.rs`, `dominator_tree.rs`, `class_of.rs`) share them without depending on
//! one another.

/// A node ordinal: the k-th node of the file's `nodes` array (its node index is k × the
/// node field count). `u32`: a snapshot holds fewer than 2^32 nodes (V8 writes node
/// indices as 32-bit numbers, so the real limit is lower; checked at parse time).
pub type NodeId = u32;

/// An edge ordinal: the k-th edge of the file's `edges` array.
pub type EdgeId = u32;
