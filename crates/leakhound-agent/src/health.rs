//! The `/health` status: `ok`, `warning` or `critical` per watched process and overall, from
//! the heap thresholds (`--warn-heap`, `--critical-heap`) and the floor verdict.
//!
//! Rules, per isolate: `critical` when an app's own process is gone (it exited) or its
//! `heapUsed` is at or above the critical threshold (an isolate found below an app that
//! ended, such as a replaced cluster worker, is `ok` with a note why); `warning` when `heapUsed` is at or above the warning
//! threshold or the post-GC floor rises (verdict `leak`); else `ok`. Overall: the worst.

use std::fmt;
use std::str::FromStr;

use leakhound_hunt::{IsolateKind, Verdict};
use leakhound_report::format::bytes;
use leakhound_report::health::{HealthJson, HealthTargetJson, MemoryMbJson, mb};

use crate::board::{Board, TargetEntry};

/// A heap threshold: a size, or a share of V8's heap limit (`heap_size_limit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeapThreshold {
    /// This many bytes of `heapUsed`.
    Bytes(u64),
    /// This percentage (0–100] of the heap limit.
    PercentOfLimit(f64),
}

/// A threshold that is neither a size nor a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a heap threshold: give a size (450M, 1G, 1073741824) or a percentage of the heap limit (85%)")]
pub struct ThresholdError(pub String);

impl FromStr for HeapThreshold {
    type Err = ThresholdError;

    /// `85%` (of the heap limit, above 0 and at most 100), or a size: bytes, or with `K`,
    /// `M`, `G`, `T` (powers of 1024): `450M`, `1G`, `1.5G`.
    fn from_str(text: &str) -> Result<HeapThreshold, ThresholdError> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(HeapThreshold::PercentOfLimit(p)),
                _ => Err(ThresholdError(text.to_owned())),
            };
        }
        match leakhound_inspector::headroom::parse_size(t) {
            Some(b) if b > 0 => Ok(HeapThreshold::Bytes(b)),
            _ => Err(ThresholdError(text.to_owned())),
        }
    }
}

impl fmt::Display for HeapThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapThreshold::Bytes(b) => f.write_str(&bytes(*b)),
            HeapThreshold::PercentOfLimit(p) => write!(f, "{p} % of the heap limit"),
        }
    }
}

impl HeapThreshold {
    /// The threshold in bytes, given the heap limit (None for a percentage while the
    /// limit is unknown).
    pub fn bytes(&self, heap_limit_bytes: Option<u64>) -> Option<u64> {
        match self {
            HeapThreshold::Bytes(b) => Some(*b),
            // Deliberate rounding of a share of a u64 limit.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            HeapThreshold::PercentOfLimit(p) => heap_limit_bytes.map(|l| (l as f64 * p / 100.0) as u64),
        }
    }
}

/// The thresholds of `/health`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthConfig {
    /// `warning` at or above this `heapUsed` (default 80 % of the heap limit).
    pub warn: HeapThreshold,
    /// `critical` at or above this `heapUsed` (default 90 % of the heap limit).
    pub critical: HeapThreshold,
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            warn: HeapThreshold::PercentOfLimit(80.0),
            critical: HeapThreshold::PercentOfLimit(90.0),
        }
    }
}

/// A health status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Nothing to report.
    Ok,
    /// Heap above the warning threshold, or a rising floor.
    Warning,
    /// Heap above the critical threshold, or the app is gone.
    Critical,
}

impl HealthStatus {
    /// `ok`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
        }
    }

    /// The HTTP status `/health` answers with: 200 for `ok` and `warning`, 503 for `critical`.
    pub fn http_status(self) -> u16 {
        match self {
            HealthStatus::Critical => 503,
            _ => 200,
        }
    }
}

/// One process's status and why.
pub fn target_health(entry: &TargetEntry, cfg: &HealthConfig) -> (HealthStatus, Vec<String>) {
    let mut status = HealthStatus::Ok;
    let mut reasons = Vec::new();
    if !entry.up {
        let why = entry.ended.as_deref().unwrap_or("it ended");
        if entry.isolate.kind == IsolateKind::Main {
            status = HealthStatus::Critical;
            reasons.push(format!("pid {} is no longer watched: {why}", entry.key.pid));
        } else {
            // A cluster worker or thread that exits is the app's own business (a cluster
            // forks a replacement, which is watched in its place): said, not critical.
            reasons.push(format!("{} ended: {why}", entry.isolate));
            return (status, reasons);
        }
    }
    let Some(st) = &entry.status else {
        return (status, reasons);
    };
    if let Some(last) = st.last {
        let used = last.heap_used_bytes;
        let limit = st.heap_limit_bytes;
        for (level, threshold, flag) in [
            (HealthStatus::Critical, cfg.critical, "--critical-heap"),
            (HealthStatus::Warning, cfg.warn, "--warn-heap"),
        ] {
            if let Some(t) = threshold.bytes(limit)
                && used >= t
            {
                status = status.max(level);
                reasons.push(format!("heapUsed {} is at or above {flag} {threshold}", bytes(used)));
                break;
            }
        }
    }
    if st.verdict == Verdict::Leak {
        status = status.max(HealthStatus::Warning);
        reasons.push(st.reason.clone());
    }
    if let Some(ev) = entry.evidence.as_ref().filter(|ev| ev.verdict == "leak") {
        reasons.push(match &ev.top_holder {
            Some(h) => format!("evidence captured: the leak finder names {h} (report in {})", ev.dir),
            None => format!("evidence captured in {}", ev.dir),
        });
    }
    (status, reasons)
}

/// The overall status and the `/health` document of `board`.
pub fn health(board: &Board, cfg: &HealthConfig) -> (HealthStatus, HealthJson) {
    let mut overall = HealthStatus::Ok;
    let targets = board
        .entries()
        .map(|e| {
            let (status, reasons) = target_health(e, cfg);
            overall = overall.max(status);
            let st = e.status.as_ref();
            HealthTargetJson {
                pid: e.key.pid,
                thread_id: e.key.thread_id,
                kind: Some(e.isolate.kind.as_str().to_owned()),
                name: Some(e.isolate.to_string()),
                up: e.up,
                status: status.as_str().to_owned(),
                reasons,
                verdict: st.map_or(Verdict::Inconclusive, |s| s.verdict).into(),
                floor_points: st.map_or(0, |s| s.floor.heap_used.points),
                uptime_s: st.and_then(|s| s.app_uptime_seconds).map(|u| (u * 10.0).round() / 10.0),
                memory_mb: st.and_then(|s| s.last).map(|m| MemoryMbJson::from_sample(&m)),
                floor_mb: st.and_then(|s| s.last_floor).map(|m| MemoryMbJson::from_sample(&m)),
                heap_limit_mb: st.and_then(|s| s.heap_limit_bytes).map(mb),
                restarts: (e.restarts > 0).then_some(e.restarts),
                evidence: e.evidence.as_ref().map(|ev| leakhound_report::health::EvidenceJson {
                    verdict: ev.verdict.to_owned(),
                    top_holder: ev.top_holder.clone(),
                    dir: ev.dir.clone(),
                }),
            }
        })
        .collect();
    let doc = HealthJson {
        schema_version: 1,
        kind: "health".to_owned(),
        status: overall.as_str().to_owned(),
        app: board.app.clone(),
        uptime_s: (board.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        targets,
    };
    (overall, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_sizes_or_percentages() {
        assert_eq!("450M".parse(), Ok(HeapThreshold::Bytes(450 << 20)));
        assert_eq!("1G".parse(), Ok(HeapThreshold::Bytes(1 << 30)));
        assert_eq!("1048576".parse(), Ok(HeapThreshold::Bytes(1 << 20)));
        assert_eq!(" 85% ".parse(), Ok(HeapThreshold::PercentOfLimit(85.0)));
        for bad in ["", "0", "0%", "101%", "-5%", "lots", "12X", "%"] {
            assert!(bad.parse::<HeapThreshold>().is_err(), "{bad:?}");
        }
        let pct = HeapThreshold::PercentOfLimit(50.0);
        assert_eq!(pct.bytes(Some(1000)), Some(500));
        assert_eq!(pct.bytes(None), None);
        assert_eq!(pct.to_string(), "50 % of the heap limit");
    }

    #[test]
    fn statuses_order_and_map_to_http() {
        assert!(HealthStatus::Critical > HealthStatus::Warning && HealthStatus::Warning > HealthStatus::Ok);
        assert_eq!(HealthStatus::Warning.http_status(), 200);
        assert_eq!(HealthStatus::Critical.http_status(), 503);
    }
}
