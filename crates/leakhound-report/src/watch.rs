//! The `watch` report: the live line per sample, the closing verdict as text, and the
//! stable JSON ([`WatchJson`]).

use std::io::{self, Write};

use leakhound_hunt::{IsolateKind, TargetStatus, Verdict, WatchOutcome};
use leakhound_leaks::{Evidence, FloorAnalysis, FloorFit, MemorySample};
use serde::{Deserialize, Serialize};

use crate::format::{bytes, signed_bytes_f64};
use crate::hunt::{FloorFitJson, VerdictJson};

/// The stable JSON of `leakhound watch --json` (`schema_version` 1; fields are only ever
/// added). Sizes in bytes, times in milliseconds since the watch started. Written with
/// its keys in alphabetical order at every level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchJson {
    /// Version of this document's layout: always 1 (fields are only ever added).
    pub schema_version: u32,
    /// Which report this is: always `"watch"`.
    pub kind: String,
    /// The process watched.
    pub pid: u32,
    /// Which isolate of the app this document is about: the process started or attached
    /// to (`main`), a cluster worker or other node child of it, or a worker thread.
    #[serde(default)]
    pub isolate: WatchIsolateJson,
    /// Why the watch ended: `time up`, `stopped`, `the app exited (…)`.
    pub ended: String,
    /// `leak` when the post-GC floor of some memory kind rises, `no_leak` when every floor
    /// is shown flat per hour, else `inconclusive` (see `leakhound_hunt::judge_watch`).
    pub verdict: VerdictJson,
    /// Why, in one sentence.
    pub reason: String,
    /// With `verdict: "inconclusive"`, what would decide it ("run longer: …"); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_would_decide: Option<String>,
    /// Which memory rises: `js_heap`, `external`, `native`.
    pub growing: Vec<String>,
    /// The floor fits after the warm-up.
    pub floor: WatchFloorJson,
    /// Every `process.memoryUsage()` reading, oldest first: leakhound's own and those taken
    /// right after the app's own full GCs.
    pub memory: Vec<WatchPointJson>,
    /// A watch of several isolates (`--attach` repeated, or an app with cluster workers,
    /// other node children or worker threads): one document per isolate, per app in the
    /// order given, its main process first, then the isolates found below it in the order
    /// found; the top-level fields are the first one's, the verdict the worst (`leak`, then
    /// `inconclusive`, then `no_leak`). Absent for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<WatchJson>,
}

/// Which isolate a watch document is about (the names of `hunt --json`'s `processes`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WatchIsolateJson {
    /// `main`, `cluster_worker`, `child` or `worker_thread`.
    pub kind: String,
    /// A worker thread's `threadId`; absent for a process's main thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u32>,
    /// A cluster worker's `cluster.worker.id`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<u32>,
    /// The isolate in words: `main process, pid 4700`, `cluster worker 2, pid 4711`,
    /// `worker thread 1 of pid 4711`.
    pub name: String,
    /// When the watch began following it, ms since the watch started (0 for an app's main
    /// process).
    pub joined_ms: f64,
}

/// The floor fits of a watch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchFloorJson {
    /// `heapUsed` after full GCs.
    pub heap_used: FloorFitJson,
    /// `external` after full GCs.
    pub external: FloorFitJson,
    /// `rss` after full GCs.
    pub rss: FloorFitJson,
}

/// One sample of a watch (a hunt's also counts requests; a watch sends none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchPointJson {
    /// ms since the watch started.
    pub t_ms: f64,
    /// `rss` of `process.memoryUsage()`: resident set size of the whole process, bytes.
    pub rss_bytes: u64,
    /// `heapTotal` of `process.memoryUsage()`: memory committed for the V8 heap, bytes.
    pub heap_total_bytes: u64,
    /// `heapUsed` of `process.memoryUsage()`: live and not yet collected V8 objects, bytes.
    pub heap_used_bytes: u64,
    /// `external` of `process.memoryUsage()`: C++ memory of JS objects, array buffers
    /// included, bytes.
    pub external_bytes: u64,
    /// `arrayBuffers` of `process.memoryUsage()`: backing stores of `ArrayBuffer`s and
    /// `Buffer`s, bytes (0 on node versions without it).
    pub array_buffers_bytes: u64,
    /// Taken right after a full GC (a floor point).
    pub after_full_gc: bool,
}

impl WatchJson {
    /// The wire form of a watch's outcome.
    pub fn from_outcome(o: &WatchOutcome) -> WatchJson {
        let f = &o.floor;
        WatchJson {
            schema_version: 1,
            kind: "watch".into(),
            pid: o.pid,
            isolate: WatchIsolateJson {
                kind: o.isolate.kind.as_str().to_owned(),
                thread_id: o.isolate.thread_id,
                worker_id: o.isolate.worker_id,
                name: o.isolate.to_string(),
                joined_ms: (o.joined_ms * 10.0).round() / 10.0,
            },
            ended: o.ended.clone(),
            verdict: o.verdict.into(),
            reason: o.reason.clone(),
            what_would_decide: o.what_would_decide.clone(),
            growing: f.growing.iter().map(|g| g.to_string()).collect(),
            floor: WatchFloorJson {
                heap_used: FloorFitJson::from_fit(&f.heap_used),
                external: FloorFitJson::from_fit(&f.external),
                rss: FloorFitJson::from_fit(&f.rss),
            },
            memory: o
                .samples
                .iter()
                .map(|m| WatchPointJson {
                    t_ms: m.t_ms,
                    rss_bytes: m.rss_bytes,
                    heap_total_bytes: m.heap_total_bytes,
                    heap_used_bytes: m.heap_used_bytes,
                    external_bytes: m.external_bytes,
                    array_buffers_bytes: m.array_buffers_bytes,
                    after_full_gc: m.after_full_gc,
                })
                .collect(),
            targets: Vec::new(),
        }
    }

    /// The wire form of a watch of one or more processes: for one, as
    /// [`WatchJson::from_outcome`]; for several, the first one's document with the worst
    /// verdict (and its reason) on top and every process's document in `targets`. `None`
    /// for none.
    pub fn from_outcomes(outcomes: &[WatchOutcome]) -> Option<WatchJson> {
        let (first, rest) = outcomes.split_first()?;
        let mut doc = WatchJson::from_outcome(first);
        if rest.is_empty() {
            return Some(doc);
        }
        let worst = worst_outcome(outcomes)?;
        doc.verdict = worst.verdict.into();
        doc.reason = format!("{}: {}", outcome_label(worst), worst.reason);
        doc.what_would_decide = worst.what_would_decide.clone();
        doc.targets = outcomes.iter().map(WatchJson::from_outcome).collect();
        Some(doc)
    }
}

/// How a watch of several isolates names one: `pid 4700` for an app's own process (as
/// before isolates were followed), else the isolate in words (`cluster worker 2, pid 4711`,
/// `worker thread 1 of pid 4711`).
pub fn outcome_label(o: &WatchOutcome) -> String {
    if o.isolate.kind == IsolateKind::Main {
        format!("pid {}", o.pid)
    } else {
        o.isolate.to_string()
    }
}

/// The outcome whose verdict is the worst: a leak, else an inconclusive one, else the
/// first. Among leaks, the one whose growing floors rise fastest (bytes per hour summed
/// over the kinds that grow), so that a worker thread leaking 700 MB/h is named before
/// its process's main thread drifting up 130 MB/h under the same load; ties go to the
/// first.
pub fn worst_outcome(outcomes: &[WatchOutcome]) -> Option<&WatchOutcome> {
    let rank = |v: Verdict| match v {
        Verdict::Leak => 2,
        Verdict::Inconclusive => 1,
        Verdict::NoLeak => 0,
    };
    let rising = |o: &WatchOutcome| -> f64 {
        let f = &o.floor;
        [&f.heap_used, &f.external, &f.rss]
            .into_iter()
            .filter(|fit| fit.growing)
            .filter_map(|fit| fit.bytes_per_hour)
            .sum()
    };
    outcomes.iter().rev().max_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| match (a.verdict, b.verdict) {
                (Verdict::Leak, Verdict::Leak) => rising(a).total_cmp(&rising(b)),
                _ => std::cmp::Ordering::Equal,
            })
    })
}

/// Writes each isolate's verdict as [`write_watch_text`] does, under a line naming it
/// ([`outcome_label`]) when there are several.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_watch_texts(outcomes: &[WatchOutcome], w: &mut dyn Write) -> io::Result<()> {
    if let [one] = outcomes {
        return write_watch_text(one, w);
    }
    for o in outcomes {
        writeln!(w, "{}:", outcome_label(o))?;
        write_watch_text(o, w)?;
    }
    Ok(())
}

/// Writes `doc` as pretty JSON with a final newline, keys sorted at every level (the
/// order `watch --json` has always had).
///
/// # Errors
/// Any error writing to `w`.
pub fn write_watch_json(doc: &WatchJson, w: &mut dyn Write) -> io::Result<()> {
    let value = serde_json::to_value(doc).map_err(io::Error::other)?;
    serde_json::to_writer_pretty(&mut *w, &value).map_err(io::Error::other)?;
    writeln!(w)
}

/// Writes the watch's verdict for a person: one line with the verdict, how it ended and
/// the floor points it rests on, then one line per memory kind with its floor and slope.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_watch_text(o: &WatchOutcome, w: &mut dyn Write) -> io::Result<()> {
    let f = &o.floor;
    let headline = match o.verdict {
        Verdict::Leak => "LEAK",
        Verdict::NoLeak => "NO LEAK",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    writeln!(
        w,
        "{headline}: {} ({}; {} floor point{} after the warm-up)",
        o.reason,
        o.ended,
        f.heap_used.points,
        if f.heap_used.points == 1 { "" } else { "s" }
    )?;
    if let Some(next) = &o.what_would_decide {
        writeln!(w, "   to decide: {next}")?;
    }
    for fit in [&f.heap_used, &f.external, &f.rss] {
        writeln!(w, "   {:<9} {}", fit.metric.to_string(), per_hour(fit))?;
    }
    Ok(())
}

/// A floor fit per hour: `first → last, +slope/h (95 % CI lo…hi)`, `  growing` when it
/// is; or the two floors and `not enough floor points yet`.
pub fn per_hour(f: &FloorFit) -> String {
    match (f.bytes_per_hour, f.bytes_per_hour_ci95) {
        (Some(s), Some((lo, hi))) => format!(
            "{} → {}, {}{}/h (95 % CI {}…{}){}",
            bytes(f.first_bytes),
            bytes(f.last_bytes),
            if s < 0.0 { "−" } else { "+" },
            bytes(s.abs() as u64),
            signed_bytes_f64(lo),
            signed_bytes_f64(hi),
            if f.growing { "  growing" } else { "" }
        ),
        _ => format!(
            "{} → {} (not enough floor points yet)",
            bytes(f.first_bytes),
            bytes(f.last_bytes)
        ),
    }
}

/// The live line for one sample: time, heapUsed, external, rss, the heap floor's slope
/// and whether anything grows so far.
pub fn watch_line(s: &MemorySample, f: &FloorAnalysis) -> String {
    format!(
        "t={:>5.0}s heapUsed {:>9} external {:>9} rss {:>9} | floor heap {} | {}",
        s.t_ms / 1000.0,
        bytes(s.heap_used_bytes),
        bytes(s.external_bytes),
        bytes(s.rss_bytes),
        per_hour(&f.heap_used),
        if !f.growing.is_empty() {
            let growing: Vec<String> = f.growing.iter().map(|g| g.to_string()).collect();
            format!("GROWING: {}", growing.join(", "))
        } else {
            // Never "flat" before the floor has shown it.
            let evidence = [&f.heap_used, &f.external, &f.rss].map(|x| x.evidence_per_hour());
            let more = Evidence::more_points_needed(&evidence);
            match more {
                None => "flat".to_owned(),
                Some(n) => format!("undecided: ~{n} more floor points"),
            }
        }
    )
}

/// One row of the live view of a watch (one per isolate, redrawn after each sample): the
/// isolate (`pid 4242` for an app's own process, else in words: `cluster worker 2, pid
/// 4711`, `worker thread 1 of pid 4711`), `heapUsed` now, the heap floor (after the last full GC), its slope per hour
/// with the 95 % interval, the floor points and the verdict so far.
///
/// `pid 4242  heap 45.2 MB  floor 40.1 MB  +1.2 MB/h (95 % CI −310 KB…+2.7 MB)  12 floor points  INCONCLUSIVE: ~5 more floor points`
pub fn target_row(st: &TargetStatus) -> String {
    let who = if st.isolate.kind == IsolateKind::Main {
        format!("pid {}", st.key.pid)
    } else {
        st.isolate.to_string()
    };
    let heap = st.last.map_or_else(|| "-".to_owned(), |s| bytes(s.heap_used_bytes));
    let floor = st
        .last_floor
        .map_or_else(|| "-".to_owned(), |s| bytes(s.heap_used_bytes));
    let f = &st.floor.heap_used;
    let slope = match (f.bytes_per_hour, f.bytes_per_hour_ci95) {
        (Some(s), Some((lo, hi))) => format!(
            "{}/h (95 % CI {}…{})",
            signed_bytes_f64(s),
            signed_bytes_f64(lo),
            signed_bytes_f64(hi)
        ),
        _ => "slope not known yet".to_owned(),
    };
    let verdict = match st.verdict {
        Verdict::Leak => "LEAK".to_owned(),
        Verdict::NoLeak => "no leak".to_owned(),
        Verdict::Inconclusive => {
            let evidence = [&st.floor.heap_used, &st.floor.external, &st.floor.rss].map(|x| x.evidence_per_hour());
            match Evidence::more_points_needed(&evidence) {
                Some(n) => format!("INCONCLUSIVE: ~{n} more floor point{}", if n == 1 { "" } else { "s" }),
                None => "INCONCLUSIVE".to_owned(),
            }
        }
    };
    let ended = match (&st.ended, st.up) {
        (Some(why), false) => format!("  [ended: {why}]"),
        _ => String::new(),
    };
    format!(
        "{who}  heap {heap:>9}  floor {floor:>9}  {slope}  {} floor point{}  {verdict}{ended}",
        f.points,
        if f.points == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use leakhound_hunt::{Isolate, TargetKey};
    use leakhound_leaks::analyze_floor;

    use super::*;

    fn status(points: u64, rise: u64) -> TargetStatus {
        let samples: Vec<MemorySample> = (0..points)
            .map(|i| MemorySample {
                t_ms: i as f64 * 60_000.0,
                heap_used_bytes: (40 << 20) + i * rise,
                external_bytes: 1 << 20,
                rss_bytes: 90 << 20,
                after_full_gc: true,
                ..Default::default()
            })
            .collect();
        let floor = analyze_floor(&samples, 0.0);
        let (verdict, reason, what_would_decide) =
            leakhound_hunt::judge_watch(&floor, std::time::Duration::from_secs(points * 60));
        TargetStatus {
            index: 0,
            target: 0,
            isolate: Isolate::process(4242, IsolateKind::Main),
            key: TargetKey {
                pid: 4242,
                thread_id: None,
            },
            attached: true,
            up: true,
            since: Instant::now(),
            last: samples.last().copied(),
            last_floor: samples.last().copied(),
            heap_limit_bytes: Some(4 << 30),
            heap_spaces: Vec::new(),
            gc: Vec::new(),
            app_uptime_seconds: Some(12.0),
            floor,
            verdict,
            reason,
            what_would_decide,
            ended: None,
        }
    }

    #[test]
    fn a_live_row_shows_the_floor_its_slope_and_the_verdict() {
        let row = target_row(&status(2, 0));
        assert!(row.starts_with("pid 4242  heap "), "{row}");
        assert!(row.contains("slope not known yet"), "{row}");
        assert!(row.contains("2 floor points  INCONCLUSIVE: ~"), "{row}");
        let rising = status(30, 4 << 20);
        let row = target_row(&rising);
        let floor = bytes(rising.last_floor.unwrap().heap_used_bytes);
        assert!(row.contains(&format!("floor {floor:>9}")), "{row}");
        assert!(row.contains("/h (95 % CI +"), "a rising slope: {row}");
        assert!(row.ends_with("LEAK"), "{row}");
        let mut ended = status(30, 0);
        ended.up = false;
        ended.ended = Some("the app exited (exit status: 1)".into());
        assert!(target_row(&ended).ends_with("[ended: the app exited (exit status: 1)]"));
        let mut worker = status(2, 0);
        worker.isolate = Isolate {
            pid: 4711,
            kind: IsolateKind::ClusterWorker,
            thread_id: None,
            worker_id: Some(2),
        };
        worker.key.pid = 4711;
        assert!(
            target_row(&worker).starts_with("cluster worker 2, pid 4711  heap "),
            "{}",
            target_row(&worker)
        );
    }
}
