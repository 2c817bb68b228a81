//! Chrome DevTools Protocol client for Node.js targets: start an app with its inspector or
//! attach to a running one, sample its memory, watch its major GCs and stream heap snapshots
//! to disk.
//!
//! - [`NodeProcess::spawn`] starts `node app.js` (or `npm start`, via `NODE_OPTIONS`) with
//!   `--inspect=127.0.0.1:0`, forwards its output line by line, and returns the process and a
//!   connected [`Session`].
//! - [`attach()`] opens the inspector of a running node process with SIGUSR1 and finds the port
//!   it really listens on through `/proc`.
//! - [`Session::connect`] / [`Session::connect_http`] / [`Session::connect_url`] take a
//!   user-given `ws://127.0.0.1:…` or `http://127.0.0.1:9229` address.
//! - A [`Session`] offers raw [`Session::call`]s and the helpers leakhound needs:
//!   [`Session::memory_usage`], [`Session::collect_garbage`],
//!   [`Session::install_gc_observer`] / [`Session::drain_gc_events`],
//!   [`Session::take_heap_snapshot`] and [`Session::script_urls`].
//!
//! **Architecture invariant: loopback only.** An inspector executes arbitrary code for whoever
//! connects, so this crate opens inspectors on 127.0.0.1 and never connects to anything but
//! 127.0.0.0/8, `::1` or `localhost` (mapped to 127.0.0.1 without name resolution).
//!
//! - [`proc::self_rss_peak`] reads this process's own resident memory, for diagnostics.
//! - [`headroom`] decides whether a snapshot fits the memory free for the target: what
//!   writing one costs it ([`headroom::estimate_snapshot_cost`], measured), what is free
//!   (the machine's `MemAvailable` and its cgroup's limit: [`headroom::available_for`]),
//!   and [`headroom::check`]; [`Session::heap_figures`] reads the target's side.
//!
//! The inspector quirks this crate works around: node announces its URL only on stderr
//! (`process.rs`); it keeps `/json/list` connections open, so the body is read by its
//! `Content-Length` (`endpoint.rs`); after SIGUSR1 the port it really opened is found through
//! `/proc` (`attach.rs`, `proc.rs`); it exits only once the debugger sends an explicit
//! WebSocket close, and its big replies need raised WebSocket size limits (`transport.rs`);
//! the snapshot reply comes after the last chunk (`snapshot.rs`). Linux only (`/proc`,
//! process groups).
//!
//! Modules, each importing only those before it: `error` (a leaf), `endpoint` (URLs, HTTP),
//! `proc`, `transport` (the WebSocket), `session`, then `memory`, `snapshot`, `headroom`,
//! `process` and `attach`, which add to or create a [`Session`].
//!
//! # Example
//!
//! ```no_run
//! use std::ffi::{OsStr, OsString};
//! use std::path::Path;
//! use leakhound_inspector::{InspectorError, NodeProcess, OutputLine, SpawnOptions};
//!
//! # async fn run() -> Result<(), InspectorError> {
//! let (output, mut lines) = tokio::sync::mpsc::unbounded_channel::<OutputLine>();
//! tokio::spawn(async move {
//!     while let Some(line) = lines.recv().await {
//!         eprintln!("app: {}", line.line);
//!     }
//! });
//! let (mut app, session) = NodeProcess::spawn(
//!     OsStr::new("node"),
//!     &[OsString::from("server.js")],
//!     SpawnOptions::new(output),
//! )
//! .await?;
//! session.install_gc_observer().await?;
//! session.collect_garbage().await?;
//! let usage = session.memory_usage().await?;
//! println!("heap used after gc: {} bytes", usage.heap_used_bytes);
//! let file = session
//!     .take_heap_snapshot(Path::new("app.heapsnapshot"), |done, total| {
//!         eprintln!("snapshot {done}/{total}");
//!     })
//!     .await?;
//! println!("{} bytes in {} ms", file.bytes, file.duration_ms);
//! for gc in session.drain_gc_events().await? {
//!     println!("major gc at {}: {} bytes used", gc.unix_ms, gc.memory.heap_used_bytes);
//! }
//! session.close().await;
//! app.kill().await?;
//! # Ok(())
//! # }
//! ```

mod attach;
pub mod children;
mod endpoint;
mod error;
pub mod headroom;
mod isolate;
mod memory;
mod preload;
pub mod proc;
mod process;
mod profile;
mod session;
mod snapshot;
mod transport;
mod workers;

pub use attach::attach;
pub use error::{CloseReason, HeadroomError, InspectorError};
pub use isolate::{Isolate, IsolateKind};
pub use memory::{
    GC_DURATION_BUCKETS_SECONDS, GC_RING_CAPACITY, GcEvent, GcKind, GcKindStats, HeapSpace, MemoryUsage, RuntimeSample,
};
pub use nix::sys::signal::Signal;
pub use process::{DEFAULT_KILL_GRACE, DEFAULT_READY_TIMEOUT, NodeProcess, OutputLine, SpawnOptions, Stream};
pub use profile::{AllocationSite, CallFrame, HeapProfile, ProfileNode, ProfileSample, SamplingOptions};
pub use session::Session;
pub use snapshot::SnapshotFile;
pub use workers::WorkerThreadInfo;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn is_send<T: Send>(_: &T) {}
    fn is_send_sync<T: Send + Sync + 'static>() {}

    /// Compiled, never run: the futures callers put in `tokio::spawn` must be `Send`.
    async fn futures(session: &Session, process: &mut NodeProcess) {
        is_send(&session.call("A.b", serde_json::Value::Null));
        is_send(&session.take_heap_snapshot(Path::new("x"), |_, _| {}));
        is_send(&session.script_urls());
        is_send(&session.collect_garbage());
        is_send(&session.drain_gc_events());
        is_send(&session.closed());
        is_send(&session.close());
        is_send(&process.kill());
        is_send(&attach(1, Duration::ZERO));
        is_send(&Session::connect_url("ws://127.0.0.1:1/x"));
    }

    #[test]
    fn public_types_are_send_and_sync() {
        is_send_sync::<Session>();
        is_send_sync::<NodeProcess>();
        is_send_sync::<InspectorError>();
        is_send_sync::<SpawnOptions>();
        let _ = futures;
    }
}
