//! Load for leakhound: drive HTTP/1.1 traffic at a live server, or run a user's load command.
//!
//! A leak hunt alternates load phases with heap snapshots. This crate makes the load:
//!
//! - [`run`] drives a [`LoadSpec`]: `connections` keep-alive HTTP/1.1 connections (hyper,
//!   one connection per worker task, no pool), an exact number of `requests` and/or a
//!   `duration`, an optional total `rate_per_s` on a shared schedule. It returns a
//!   [`LoadReport`] with counts per status class, errors, throughput and latency percentiles
//!   (hdrhistogram, µs resolution); [`LoadReport::summary_line`] formats it for humans.
//! - [`run_kept`] is [`run`] on a [`ConnectionPool`] handed from one phase to the next:
//!   the same keep-alive sockets serve every phase, so what a server piles on a
//!   connection per request (a `close` listener on `req.socket`) lives through them all;
//!   [`ConnectionPool::keep_warm`] keeps the connections from idling out between phases
//!   (one marked request, [`KEEP_WARM_HEADER`], per connection idle for a second).
//! - [`wait_ready`] polls a URL until the server answers, for a server that was just started.
//! - [`run_external`] runs an [`ExternalLoad`] command (`sh -c`), forwarding its output lines.
//!
//! Only `http://` URLs are supported. The driver is light: on a small machine shared with the
//! server under test, run it on a current-thread tokio runtime so that the server keeps the
//! CPU (the multi-thread runtime works too).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use leakhound_load::{LoadSpec, run, wait_ready};
//!
//! # async fn demo() -> Result<(), leakhound_load::LoadError> {
//! let url = "http://127.0.0.1:3000/api/items";
//! wait_ready(url, Duration::from_secs(10)).await?;
//!
//! let mut spec = LoadSpec::new(url);
//! spec.connections = 4;
//! spec.requests = Some(2_000);
//! spec.rate_per_s = Some(500.0);
//! let report = run(&spec, |done| eprint!("\r{done} requests")).await?;
//! eprintln!("\n{}", report.summary_line());
//! assert_eq!(report.requests_sent, 2_000);
//! # Ok(())
//! # }
//! ```

mod driver;
mod error;
mod external;
mod pool;
mod ready;
mod report;
mod spec;
mod target;

pub use driver::{run, run_kept};
pub use error::LoadError;
pub use external::{EXTERNAL_TAIL_LINES, ExternalLoad, ExternalReport, run_external};
pub use pool::{ConnectionPool, DEFAULT_KEEP_WARM_IDLE, KEEP_WARM_HEADER, KeepWarm, KeepWarmOptions};
pub use ready::{READY_POLL_INTERVAL, wait_ready};
pub use report::{Latency, LoadReport};
pub use spec::{DEFAULT_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, LoadSpec, MAX_CONNECTIONS};
