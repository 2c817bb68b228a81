//! The `/health` document of the watch agent (`leakhound watch --metrics-addr`): the
//! overall status, and per watched process its status with the reasons, the floor verdict,
//! the memory figures in MB and the uptime, as the health endpoints of the Node.js
//! production guides give them.

use serde::{Deserialize, Serialize};

use crate::hunt::VerdictJson;

/// The `/health` document (`schema_version` 1; fields are only ever added).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthJson {
    /// Version of this document's layout: always 1.
    pub schema_version: u32,
    /// Which document this is: always `"health"`.
    pub kind: String,
    /// The worst status of the processes: `ok`, `warning` or `critical` (HTTP 503).
    pub status: String,
    /// The `app` label (`--app-name`).
    pub app: String,
    /// Seconds since the agent started.
    pub uptime_s: f64,
    /// One entry per watched isolate: each app's own process in the order given, then the
    /// cluster workers, other node children and worker threads found below them.
    pub targets: Vec<HealthTargetJson>,
}

/// The health of one watched process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthTargetJson {
    /// Its process id.
    pub pid: u32,
    /// A worker thread's `threadId`; null for a main thread.
    pub thread_id: Option<u64>,
    /// Which isolate: `main` (an app's own process), `cluster_worker`, `child` or
    /// `worker_thread`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The isolate in words: `main process, pid 4700`, `cluster worker 2, pid 4711`,
    /// `worker thread 1 of pid 4711`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Still watched (false once the app exited).
    pub up: bool,
    /// `ok`, `warning` (heap above `--warn-heap`, or a rising floor) or `critical` (heap
    /// above `--critical-heap`, or the app is gone).
    pub status: String,
    /// Why the status is not `ok`, one sentence each.
    pub reasons: Vec<String>,
    /// The floor verdict so far: `leak`, `no_leak` or `inconclusive`.
    pub verdict: VerdictJson,
    /// Floor points (readings right after a full GC) the verdict rests on.
    pub floor_points: usize,
    /// The app's `process.uptime()`, seconds (null before the first sample).
    pub uptime_s: Option<f64>,
    /// The latest `process.memoryUsage()`, in MB (2^20 bytes, as `heapUsed / 1024 / 1024`).
    pub memory_mb: Option<MemoryMbJson>,
    /// The latest reading right after a full GC, in MB: the floor.
    pub floor_mb: Option<MemoryMbJson>,
    /// V8's heap limit (`heap_size_limit`), MB.
    pub heap_limit_mb: Option<f64>,
    /// Times leakhound restarted the app (`--restart-above`); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// The last evidence-capture episode's answer (`--capture-dir`); absent before one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceJson>,
}

/// What the last capture episode of a process concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceJson {
    /// `leak`, `no_leak` or `inconclusive`.
    pub verdict: String,
    /// The leak finder's top holder, when it named one.
    pub top_holder: Option<String>,
    /// The episode's folder: snapshots, profile and `report.html`.
    pub dir: String,
}

/// `process.memoryUsage()` in MB (2^20 bytes), one decimal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryMbJson {
    /// `heapUsed`.
    pub heap_used: f64,
    /// `heapTotal`.
    pub heap_total: f64,
    /// `external`.
    pub external: f64,
    /// `arrayBuffers`.
    pub array_buffers: f64,
    /// `rss`.
    pub rss: f64,
}

impl MemoryMbJson {
    /// The five fields of a sample, in MB with one decimal.
    pub fn from_sample(s: &leakhound_leaks::MemorySample) -> MemoryMbJson {
        MemoryMbJson {
            heap_used: mb(s.heap_used_bytes),
            heap_total: mb(s.heap_total_bytes),
            external: mb(s.external_bytes),
            array_buffers: mb(s.array_buffers_bytes),
            rss: mb(s.rss_bytes),
        }
    }
}

/// Bytes in MB (2^20) with one decimal.
pub fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

/// The document as compact JSON.
pub fn health_json_text(doc: &HealthJson) -> String {
    serde_json::to_string(doc).unwrap_or_else(|e| format!("{{\"status\":\"critical\",\"error\":{:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes_have_one_decimal() {
        assert_eq!(mb(0), 0.0);
        assert_eq!(mb(1 << 20), 1.0);
        assert_eq!(mb(1_572_864), 1.5);
        assert_eq!(mb(123_456_789), 117.7);
    }
}
