//! Chrome DevTools Protocol client for Node.js targets (work in progress).

mod endpoint;
mod error;
mod memory;
mod session;

pub use error::InspectorError;
pub use memory::{GC_RING_CAPACITY, GcEvent, MemoryUsage};
pub use session::{CloseReason, Session};
