//! Chrome DevTools Protocol client for Node.js targets (work in progress).

mod endpoint;
mod error;
mod memory;
mod session;
mod snapshot;

pub use error::InspectorError;
pub use memory::{GC_RING_CAPACITY, GcEvent, MemoryUsage};
pub use session::{CloseReason, Session};
pub use snapshot::SnapshotFile;
