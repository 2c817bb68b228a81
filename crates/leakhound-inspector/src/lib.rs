//! Chrome DevTools Protocol client for Node.js targets (work in progress).

mod endpoint;
mod error;
mod memory;
mod process;
mod session;
mod snapshot;

pub use error::InspectorError;
pub use memory::{GC_RING_CAPACITY, GcEvent, MemoryUsage};
pub use nix::sys::signal::Signal;
pub use process::{DEFAULT_KILL_GRACE, DEFAULT_READY_TIMEOUT, NodeProcess, OutputLine, SpawnOptions, Stream};
pub use session::{CloseReason, Session};
pub use snapshot::SnapshotFile;
