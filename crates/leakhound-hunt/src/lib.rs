//! The closed leak-hunting loop: start (or attach to) a Node app under the inspector,
//! watch its memory, drive load, take baseline/target/final snapshots after forced GCs,
//! run the leak finder on them, check that memory returns to the baseline once the load
//! stops, and decide.
//!
//! [`hunt`] reports progress through a channel of [`HuntEvent`]s and prints nothing; the
//! CLI draws it. Parsing and analysis run on blocking threads.
//!
//! Sequence: spawn → ready → warm-up → GC, floor, **baseline** → (load phase → GC, floor,
//! snapshot) × phases (the first is the **target**, the last the **final**) → calm-down
//! (wait, GC, floor) → stop the app → analyse.

mod run;
mod watch;

pub use run::{
    AppTarget, CalmDown, HuntConfig, HuntError, HuntEvent, HuntOutcome, LoadKind, PhaseRecord, SnapshotRecord, Verdict,
    hunt,
};
pub use watch::{WatchConfig, WatchEvent, WatchOutcome, watch};
