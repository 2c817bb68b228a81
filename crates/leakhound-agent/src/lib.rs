//! leakhound's production agent: what `leakhound watch --metrics-addr` serves while it
//! watches, its own seam between the watch (in `leakhound-hunt`, which emits typed
//! [`WatchEvent`](leakhound_hunt::WatchEvent)s and prints nothing) and the tools a fleet
//! runs on.
//!
//! - [`Board`]: the latest state of every watched process, updated from the watch's events
//!   ([`Board::apply`]) and read by everything else; shared behind a lock that no inspector
//!   call ever holds, so a scrape never waits for the app.
//! - [`metrics`]: the Prometheus `/metrics` page in OpenMetrics text, written by the
//!   `prometheus-client` crate from the board at each scrape: `leakhound_*` figures (the
//!   floor, its slope with the 95 % interval, the verdict) and the OpenTelemetry `v8js_*`
//!   runtime names translated the standard way, with labels `app`, `pid`, `thread_id`.
//! - [`health`]: the `/health` status (`ok`, `warning`, `critical`) from heap thresholds
//!   (`--warn-heap`, `--critical-heap`: bytes or a % of the heap limit) and the floor verdict.
//! - [`server`]: the HTTP server (hyper) for both, bound before the watch starts so that a
//!   taken port is a clear error at once.
//!
//! Modules, lowest first: `board`, `health`, `metrics`, `server`.

mod board;
pub mod health;
pub mod metrics;
pub mod server;

pub use board::{Board, ENDED_ISOLATES_KEPT, SharedBoard, TargetEntry};
pub use health::{HealthConfig, HealthStatus, HeapThreshold, ThresholdError};
pub use metrics::Format;
pub use server::{AgentServer, ServeError};
