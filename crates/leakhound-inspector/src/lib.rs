//! Chrome DevTools Protocol client for Node.js targets (work in progress).

mod endpoint;
mod error;
mod session;

pub use error::InspectorError;
pub use session::{CloseReason, Session};
