//! The Prometheus `/metrics` page: OpenMetrics text written by the `prometheus-client` crate
//! from the [`Board`] at each scrape (a [`Collector`], so a process that ends keeps its
//! series with `leakhound_up` 0 and nothing is left stale).
//!
//! One set of series per isolate watched: each app's own process, its cluster workers and
//! other node children, and the worker threads of any of them. Every series has the
//! labels `app` (`--app-name`), `pid` and `thread_id` (empty for a main thread). An isolate
//! that ended keeps its series with `leakhound_up` 0 (those found below an app: the newest
//! `ENDED_ISOLATES_KEPT`). Names:
//!
//! | name | type | labels | value |
//! |---|---|---|---|
//! | `leakhound_up` | gauge | | 1 while the isolate is watched, 0 once it ended |
//! | `leakhound_isolate_info` | gauge | `kind`, `worker_id` | 1: which isolate it is (`main`, `cluster_worker`, `child`, `worker_thread`; a cluster worker's id) |
//! | `leakhound_memory_bytes` | gauge | `kind` | the latest `process.memoryUsage()`: `heap_used`, `heap_total`, `external`, `array_buffers`, `rss` |
//! | `leakhound_memory_floor_bytes` | gauge | `kind` | the same fields right after the last full GC |
//! | `leakhound_memory_floor_slope_bytes_per_second` | gauge | `kind`, `bound` | the floor's slope (`heap_used`, `external`, `rss`): `estimate`, and the 95 % interval's `lower` and `upper` bounds; absent until 3 floor points |
//! | `leakhound_leak_verdict` | gauge | `kind` | 1 while the watch names that floor as rising (`rss`: RSS rising while the heap and external memory do not, i.e. native memory); the watch's verdict is `leak` exactly when one is 1 |
//! | `leakhound_verdict_inconclusive` | gauge | `kind` | 1 while that floor is neither rising nor shown flat |
//! | `leakhound_floor_points` | gauge | `kind` | floor points the fit rests on |
//! | `leakhound_heap_limit_bytes` | gauge | | V8's `heap_size_limit` |
//! | `leakhound_gc_full_total` | counter | | full (mark-compact) GCs seen since leakhound attached |
//! | `v8js_memory_heap_used_bytes` | gauge | `v8js_heap_space_name` | OpenTelemetry's `v8js.memory.heap.used` per heap space |
//! | `v8js_gc_duration_seconds` | histogram | `v8js_gc_type` | OpenTelemetry's `v8js.gc.duration` (`major`, `minor`, `incremental`, `weakcb`; buckets 0.01, 0.1, 1, 10 s) |

use std::sync::PoisonError;

use leakhound_hunt::{IsolateKind, TargetStatus};
use leakhound_inspector::GC_DURATION_BUCKETS_SECONDS;
use leakhound_leaks::{Evidence, FloorFit, MemoryKind, MemorySample};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::board::{Board, SharedBoard, TargetEntry};

/// The text formats of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text: what Prometheus asks for first (`Accept:
    /// application/openmetrics-text`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4: for any other client (curl, `promtool check
    /// metrics`).
    PrometheusText,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text`, else the Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::PrometheusText,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Reads one field of a sample.
type Field = fn(&MemorySample) -> u64;

/// The five fields of `process.memoryUsage()` as `kind` label values, with their readers.
const MEMORY_KINDS: [(&str, Field); 5] = [
    ("heap_used", |s| s.heap_used_bytes),
    ("heap_total", |s| s.heap_total_bytes),
    ("external", |s| s.external_bytes),
    ("array_buffers", |s| s.array_buffers_bytes),
    ("rss", |s| s.rss_bytes),
];

/// Writes the page for `board` in `format`.
pub fn render(board: &SharedBoard, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BoardCollector(board.clone())));
    let mut out = String::new();
    // Writing to a String cannot fail; a collector error leaves what was written.
    let _ = match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        Format::PrometheusText => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
    };
    out
}

/// Encodes a [`Board`] at each scrape.
#[derive(Debug)]
struct BoardCollector(SharedBoard);

/// Labels of one series: `app`, `pid`, `thread_id`, then the metric's own.
type Labels = Vec<(&'static str, String)>;

fn base(board: &Board, e: &TargetEntry) -> Labels {
    vec![
        ("app", board.app.clone()),
        ("pid", e.key.pid.to_string()),
        ("thread_id", e.key.thread_id.map(|t| t.to_string()).unwrap_or_default()),
    ]
}

fn with(mut labels: Labels, more: &[(&'static str, &str)]) -> Labels {
    labels.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
    labels
}

/// One gauge family: every `(labels, value)` under `name`.
fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

/// The fits whose floors the watch judges, as `kind` label values.
fn fits(st: &TargetStatus) -> [(&'static str, &FloorFit); 3] {
    [
        ("heap_used", &st.floor.heap_used),
        ("external", &st.floor.external),
        ("rss", &st.floor.rss),
    ]
}

impl Collector for BoardCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let board = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let entries: Vec<(&TargetEntry, Labels)> = board.entries().map(|e| (e, base(&board, e))).collect();
        let with_status = || entries.iter().filter_map(|(e, l)| e.status.as_ref().map(|s| (s, l)));
        let up: Vec<(Labels, f64)> = entries
            .iter()
            .map(|(e, l)| (l.clone(), if e.up { 1.0 } else { 0.0 }))
            .collect();
        gauges(
            &mut enc,
            "leakhound_up",
            "1 while leakhound watches the isolate (a process's main thread, or a worker thread), 0 once it ended.",
            None,
            &up,
        )?;
        let info: Vec<(Labels, f64)> = entries
            .iter()
            .map(|(e, l)| {
                let worker = e.isolate.worker_id.map(|w| w.to_string()).unwrap_or_default();
                let labels = with(
                    l.clone(),
                    &[("kind", e.isolate.kind.as_str()), ("worker_id", worker.as_str())],
                );
                (labels, 1.0)
            })
            .collect();
        gauges(
            &mut enc,
            "leakhound_isolate_info",
            "Which isolate a pid and thread_id are (1): kind main (the app's own process), cluster_worker, child or worker_thread, and a cluster worker's cluster.worker.id.",
            None,
            &info,
        )?;

        let mut memory = Vec::new();
        let mut floor = Vec::new();
        for (st, l) in with_status() {
            for (kind, read) in MEMORY_KINDS {
                if let Some(s) = &st.last {
                    memory.push((with(l.clone(), &[("kind", kind)]), read(s) as f64));
                }
                if let Some(s) = &st.last_floor {
                    floor.push((with(l.clone(), &[("kind", kind)]), read(s) as f64));
                }
            }
        }
        gauges(
            &mut enc,
            "leakhound_memory",
            "The latest process.memoryUsage() of the app, by field (heap_used, heap_total, external, array_buffers, rss).",
            Some(Unit::Bytes),
            &memory,
        )?;
        gauges(
            &mut enc,
            "leakhound_memory_floor",
            "process.memoryUsage() right after the last full (mark-compact) GC: the floor a leak raises.",
            Some(Unit::Bytes),
            &floor,
        )?;

        let mut slope = Vec::new();
        let mut leak = Vec::new();
        let mut inconclusive = Vec::new();
        let mut points = Vec::new();
        for (st, l) in with_status() {
            for (kind, fit) in fits(st) {
                let kl = with(l.clone(), &[("kind", kind)]);
                if let (Some(est), Some((lo, hi))) = (fit.bytes_per_hour, fit.bytes_per_hour_ci95) {
                    for (bound, v) in [("estimate", est), ("lower", lo), ("upper", hi)] {
                        slope.push((with(kl.clone(), &[("bound", bound)]), v / 3600.0));
                    }
                }
                let evidence = fit.evidence_per_hour();
                leak.push((kl.clone(), if rises(st, kind) { 1.0 } else { 0.0 }));
                let undecided = matches!(evidence, Evidence::Undecided { .. });
                inconclusive.push((kl.clone(), if undecided { 1.0 } else { 0.0 }));
                points.push((kl, fit.points as f64));
            }
        }
        gauges(
            &mut enc,
            "leakhound_memory_floor_slope",
            "Slope of the post-GC floor (least squares over the floor points): estimate, and the lower and upper bounds of its 95 % confidence interval.",
            Some(Unit::Other("bytes_per_second".to_owned())),
            &slope,
        )?;
        gauges(
            &mut enc,
            "leakhound_leak_verdict",
            "1 while this floor rises (lower 95 % bound of its slope above zero, beyond the noise; rss: native memory, RSS rising while the heap and external memory do not): the watch's verdict is leak.",
            None,
            &leak,
        )?;
        gauges(
            &mut enc,
            "leakhound_verdict_inconclusive",
            "1 while this floor is neither shown rising nor shown flat: more floor points (full GCs) would decide.",
            None,
            &inconclusive,
        )?;
        gauges(
            &mut enc,
            "leakhound_floor_points",
            "Floor points (readings right after a full GC, after the warm-up) the verdict rests on.",
            None,
            &points,
        )?;
        let limits: Vec<(Labels, f64)> = with_status()
            .filter_map(|(st, l)| st.heap_limit_bytes.map(|b| (l.clone(), b as f64)))
            .collect();
        gauges(
            &mut enc,
            "leakhound_heap_limit",
            "V8's heap limit (v8.getHeapStatistics().heap_size_limit).",
            Some(Unit::Bytes),
            &limits,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "leakhound_gc_full",
                "Full (mark-compact) GCs seen since leakhound attached, forced ones included.",
                None,
                MetricType::Counter,
            )?;
            for (st, l) in with_status() {
                m.encode_family(l)?
                    .encode_counter::<NoLabelSet, _, u64>(&st.gc_full_total(), None)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "leakhound_restarts",
                "Times leakhound restarted the app (--restart-above), evidence captured first.",
                None,
                MetricType::Counter,
            )?;
            // Labelled by the target's place, not its pid: a restart changes the pid, and
            // the counter must stay one series for `increase()` to see it.
            for e in board.entries().filter(|e| e.isolate.kind == IsolateKind::Main) {
                let labels: Labels = vec![("app", board.app.clone()), ("target", e.target.to_string())];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&e.restarts, None)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "leakhound_captures_skipped",
                "Evidence snapshots not taken, by reason: headroom (writing it would not fit in the memory free for the app; a sampling heap profile was written instead), disk, busy (another capture on the machine).",
                None,
                MetricType::Counter,
            )?;
            for (e, l) in &entries {
                for reason in ["headroom", "disk", "busy"] {
                    let n = e.captures_skipped.get(reason).copied().unwrap_or(0);
                    m.encode_family(&with(l.clone(), &[("reason", reason)]))?
                        .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "leakhound_capture_episodes",
                "Evidence-capture episodes finished (snapshots when the floor rose, near the heap limit, before a restart).",
                None,
                MetricType::Counter,
            )?;
            for (e, l) in &entries {
                m.encode_family(l)?
                    .encode_counter::<NoLabelSet, _, u64>(&e.episodes, None)?;
            }
        }
        let evidence: Vec<(Labels, f64)> = entries
            .iter()
            .filter_map(|(e, l)| {
                e.evidence.as_ref().map(|ev| {
                    (
                        with(
                            l.clone(),
                            &[
                                ("verdict", ev.verdict),
                                ("holder", ev.top_holder.as_deref().unwrap_or("")),
                            ],
                        ),
                        1.0,
                    )
                })
            })
            .collect();
        gauges(
            &mut enc,
            "leakhound_evidence",
            "The last capture episode's answer (1): its verdict and the leak finder's top holder (empty when it named none).",
            None,
            &evidence,
        )?;
        let spaces: Vec<(Labels, f64)> = with_status()
            .flat_map(|(st, l)| {
                st.heap_spaces.iter().map(|s| {
                    (
                        with(l.clone(), &[("v8js_heap_space_name", s.name.as_str())]),
                        s.used_bytes as f64,
                    )
                })
            })
            .collect();
        gauges(
            &mut enc,
            "v8js_memory_heap_used",
            "Heap space used (OpenTelemetry v8js.memory.heap.used).",
            Some(Unit::Bytes),
            &spaces,
        )?;
        {
            let unit = Unit::Seconds;
            let mut m = enc.encode_descriptor(
                "v8js_gc_duration",
                "Garbage collection duration (OpenTelemetry v8js.gc.duration), since leakhound attached.",
                Some(&unit),
                MetricType::Histogram,
            )?;
            for (st, l) in with_status() {
                for k in &st.gc {
                    let labels = with(l.clone(), &[("v8js_gc_type", k.kind.as_str())]);
                    m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                        k.sum_seconds,
                        k.count,
                        &per_bucket(k.count, &k.buckets),
                        None,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Whether the watch names this floor as rising (its `growing` list): the JS heap for
/// `heap_used`, external memory for `external`, native memory for `rss` (RSS rising while
/// the heap and external memory do not). The watch's verdict is `leak` exactly when one
/// of the three does.
fn rises(st: &TargetStatus, kind: &str) -> bool {
    let wanted = match kind {
        "heap_used" => MemoryKind::JsHeap,
        "external" => MemoryKind::External,
        _ => MemoryKind::Native,
    };
    st.floor.growing.contains(&wanted)
}

/// Cumulative counts at [`GC_DURATION_BUCKETS_SECONDS`] as the per-bucket counts the
/// encoder adds up, with the `+Inf` bucket holding the rest of `count`.
fn per_bucket(count: u64, cumulative: &[u64; 4]) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(5);
    let mut below = 0;
    for (bound, c) in GC_DURATION_BUCKETS_SECONDS.iter().zip(cumulative) {
        let c = (*c).clamp(below, count);
        out.push((*bound, c - below));
        below = c;
    }
    out.push((f64::INFINITY, count - below));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        assert_eq!(
            per_bucket(10, &[2, 5, 9, 9]),
            vec![(0.01, 2), (0.1, 3), (1.0, 4), (10.0, 0), (f64::INFINITY, 1)]
        );
        // Inconsistent input (a count read between two updates) never underflows.
        assert_eq!(per_bucket(1, &[3, 2, 2, 2]).iter().map(|b| b.1).sum::<u64>(), 1);
    }
}
