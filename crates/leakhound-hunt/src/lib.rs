//! The closed leak-hunting loop: start (or attach to) a Node app under the inspector,
//! watch its memory, drive load, take baseline/target/final snapshots after forced GCs,
//! run the leak finder on them, check that memory returns to the baseline once the load
//! stops, and decide.
//!
//! [`hunt`] reports progress through a channel of [`HuntEvent`]s and prints nothing; the
//! CLI draws it. Parsing and analysis run on blocking threads. [`watch`] is the memory
//! watch alone. Both take their settings from [`HuntConfig::from_options`] /
//! [`WatchConfig::from_options`], which check what the command line gave.
//!
//! Sequence: spawn → ready → warm-up → GC, floor, **baseline** → (load phase → GC, floor,
//! snapshot) × phases (the first is the **target**, the last the **final**) → calm-down
//! (wait, GC, floor) → the leak finder on each isolate's series, the app still running →
//! when its clusters include timers that may be one-shot, wait until they are due and take
//! a **settled** snapshot (`settle`) → stop the app → verdicts.
//!
//! Modules, lowest first: `phase` (names of phases and snapshots), `out_dir` (the
//! snapshots' private folder), `lock` (one leakhound per attached process), `error`,
//! `config`, `sampling` (one memory-sampling step, shared), `discovery` (the isolates of
//! an app: node children in `/proc`, worker threads through `NodeWorker`; shared), `outcome` (events, records,
//! verdict), `node_warnings` (node's `MaxListenersExceededWarning` read from the app's
//! output), `kept` (the load's connections kept open across the phases), `settle`
//! (pending one-shot timers: when a hunt takes a `settled` snapshot, and what it makes of
//! it), then `run` (the hunt; `run/settling.rs` drives the settle step) and `watch`.

pub mod capture;
pub mod capture_hook;
mod config;
mod discovery;
mod error;
pub mod evidence;
pub mod heap_profile;
mod isolates;
mod kept;
mod listening;
mod lock;
pub mod node_warnings;
mod out_dir;
mod outcome;
mod phase;
mod run;
mod sampling;
mod settle;
mod watch;

pub use config::{
    AppTarget, ConfigError, ExpectStatus, HuntConfig, HuntOptions, LoadKind, WATCH_GC_INTERVAL_MS_STARTED,
    WATCH_SAMPLE_MS_ATTACHED, WATCH_SAMPLE_MS_STARTED, WatchConfig, WatchOptions,
};
pub use error::{Failure, HuntError, Stage};
pub use leakhound_inspector::{Isolate, IsolateKind};
pub use lock::{LockError, TargetLock, lock_target, try_lock_capture};
pub use node_warnings::{ListenerWarning, NodeWarnings};
pub use out_dir::{OutDir, OutDirError};
pub use outcome::{
    CalmDown, HuntEvent, HuntOutcome, IsolateOutcome, KeptConnections, PhaseRecord, RequestsMethod, SnapshotRecord,
    Verdict,
};
pub use phase::{PhaseKind, SnapshotLabel, UnknownPhase, UnknownSnapshotLabel};
pub use run::hunt;
pub use settle::{DroppedCluster, PendingTimers, Settle, SettleStatus, TimerCount, wait_after_load_ms};
pub use watch::{
    HookAction, HookFuture, MAX_FLOOR_POINTS, MAX_KEPT_SAMPLES, TargetHook, TargetKey, TargetStatus, WatchEvent,
    WatchOutcome, judge as judge_watch, watch,
};
