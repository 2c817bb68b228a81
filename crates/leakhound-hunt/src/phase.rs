//! The names of a hunt's phases and snapshots, as types.
//!
//! A hunt runs `warmup`, `load-1` … `load-N` and `calm-down`, and takes a snapshot
//! `baseline` before the first load phase and one after each: `target` after `load-1`,
//! `final` after the last, `final-1` … in between (memlab's baseline/target/final, with
//! more snapshots when `--phases` asks), and `settled` after the calm-down when pending
//! one-shot timers call for it. Their text forms are what the JSON report and the
//! snapshot files have always used; [`std::fmt::Display`] gives them and
//! [`std::str::FromStr`] reads them back.

use std::fmt;
use std::str::FromStr;

/// One phase of a hunt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhaseKind {
    /// Load before the baseline, so that lazy initialisation and JIT caches do not count
    /// as growth. Text form `warmup`.
    Warmup,
    /// The n-th load phase (from 1), each followed by a forced GC and a snapshot. Text
    /// form `load-N`.
    Load(u32),
    /// No load: wait, collect garbage and compare with the baseline. Text form
    /// `calm-down`.
    CalmDown,
}

impl PhaseKind {
    /// Whether the phase drives load at the app and is followed by a snapshot.
    pub fn is_load(self) -> bool {
        matches!(self, PhaseKind::Load(_))
    }
}

impl fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhaseKind::Warmup => f.write_str("warmup"),
            PhaseKind::Load(n) => write!(f, "load-{n}"),
            PhaseKind::CalmDown => f.write_str("calm-down"),
        }
    }
}

/// A text that is not a phase name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a phase name (warmup, load-N, calm-down)")]
pub struct UnknownPhase(pub String);

impl FromStr for PhaseKind {
    type Err = UnknownPhase;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warmup" => Ok(PhaseKind::Warmup),
            "calm-down" => Ok(PhaseKind::CalmDown),
            _ => s
                .strip_prefix("load-")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .map(PhaseKind::Load)
                .ok_or_else(|| UnknownPhase(s.to_owned())),
        }
    }
}

/// Which snapshot of a hunt's series a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnapshotLabel {
    /// After the warm-up and a forced GC, before any measured load: `baseline`.
    Baseline,
    /// After the first load phase: `target`.
    Target,
    /// After load phase n + 1 of a hunt with more than two phases, between the target
    /// and the final one: `final-N` (n from 1).
    Intermediate(u32),
    /// After the last load phase: `final`.
    Final,
    /// Taken after the calm-down, once one-shot timers pending at the final snapshot are
    /// due (their duration after the load stopped): `settled`. Taken only when the leak
    /// finder's clusters include such timers (`settle`); memlab's "final", taken after the
    /// action is undone.
    Settled,
}

impl SnapshotLabel {
    /// The label of the snapshot taken after load phase `phase` (from 1) of `phases`:
    /// the first is the target, the last the final, those between `final-1`, `final-2` ….
    pub fn after_phase(phase: u32, phases: u32) -> SnapshotLabel {
        match phase {
            1 => SnapshotLabel::Target,
            n if n == phases => SnapshotLabel::Final,
            n => SnapshotLabel::Intermediate(n - 1),
        }
    }
}

impl fmt::Display for SnapshotLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotLabel::Baseline => f.write_str("baseline"),
            SnapshotLabel::Target => f.write_str("target"),
            SnapshotLabel::Intermediate(n) => write!(f, "final-{n}"),
            SnapshotLabel::Final => f.write_str("final"),
            SnapshotLabel::Settled => f.write_str("settled"),
        }
    }
}

/// A text that is not a snapshot label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a snapshot label (baseline, target, final-N, final, settled)")]
pub struct UnknownSnapshotLabel(pub String);

impl FromStr for SnapshotLabel {
    type Err = UnknownSnapshotLabel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "baseline" => Ok(SnapshotLabel::Baseline),
            "target" => Ok(SnapshotLabel::Target),
            "final" => Ok(SnapshotLabel::Final),
            "settled" => Ok(SnapshotLabel::Settled),
            _ => s
                .strip_prefix("final-")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .map(SnapshotLabel::Intermediate)
                .ok_or_else(|| UnknownSnapshotLabel(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_read_back() {
        for p in [
            PhaseKind::Warmup,
            PhaseKind::Load(1),
            PhaseKind::Load(12),
            PhaseKind::CalmDown,
        ] {
            assert_eq!(p.to_string().parse::<PhaseKind>(), Ok(p));
        }
        assert_eq!(PhaseKind::Load(3).to_string(), "load-3");
        assert_eq!(PhaseKind::CalmDown.to_string(), "calm-down");
        for bad in ["load-0", "load-", "load-x", "calm", ""] {
            assert!(bad.parse::<PhaseKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_labels_follow_the_phases() {
        let labels: Vec<String> = (1..=4).map(|i| SnapshotLabel::after_phase(i, 4).to_string()).collect();
        assert_eq!(labels, ["target", "final-1", "final-2", "final"]);
        assert_eq!(SnapshotLabel::after_phase(2, 2), SnapshotLabel::Final);
        for l in ["baseline", "target", "final-2", "final", "settled"] {
            assert_eq!(l.parse::<SnapshotLabel>().map(|x| x.to_string()).as_deref(), Ok(l));
        }
        assert!("final-0".parse::<SnapshotLabel>().is_err());
    }
}
