//! `watch`: the memory watch alone. Samples `process.memoryUsage()`, forces a full GC now
//! and then for clean floor points, records the app's own major GCs, and keeps a running
//! floor analysis, until the time is up, the app exits, or the caller says stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leakhound_inspector::OutputLine;
use leakhound_leaks::{Evidence, FloorAnalysis, MemorySample};
use tokio::sync::mpsc;

use crate::config::WatchConfig;
use crate::error::HuntError;
use crate::outcome::Verdict;
use crate::sampling::{Clock, Sampler};

/// Progress of a watch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The app runs with this pid.
    Started {
        /// Process id of the app (spawned or attached to).
        pid: u32,
    },
    /// A line the app wrote.
    AppOutput(OutputLine),
    /// A sample, with the floor analysis so far.
    Sample(MemorySample, Box<FloorAnalysis>),
}

/// What a watch saw.
#[derive(Debug, Clone)]
pub struct WatchOutcome {
    /// Pid of the app.
    pub pid: u32,
    /// Every `process.memoryUsage()` reading, oldest first: leakhound's own and those taken
    /// right after the app's own full GCs.
    pub samples: Vec<MemorySample>,
    /// The floor analysis after the warm-up.
    pub floor: FloorAnalysis,
    /// Why it ended: `time up`, `stopped`, `the app exited (…)`.
    pub ended: String,
    /// The verdict (see [`judge`]).
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// With [`Verdict::Inconclusive`], what would decide it.
    pub what_would_decide: Option<String>,
}

/// The watch's verdict from its floors, per hour, and the time it watched:
///
/// 1. `Leak` when the floor of some memory kind rises (lower 95 % bound of its slope above
///    zero, by more than the noise: [`FloorFit::growing`](leakhound_leaks::FloorFit));
/// 2. `NoLeak` when the floors of the JS heap, external memory and RSS are all flat per
///    hour: at least [`leakhound_leaks::MIN_FLAT_POINTS`] points each and the upper 95 %
///    bound below [`leakhound_leaks::flat_bytes_per_hour`] (1 MiB/h or 1 %/h; RSS
///    4 MiB/h or 2 %/h);
/// 3. else `Inconclusive`, saying how many more floor points would decide it and, at the
///    pace points came so far, about how long that is.
pub fn judge(floor: &FloorAnalysis, watched: Duration) -> (Verdict, String, Option<String>) {
    if !floor.growing.is_empty() {
        let what: Vec<&str> = floor.growing.iter().map(|k| k.as_str()).collect();
        return (
            Verdict::Leak,
            format!("the post-GC floor of {} rises", what.join(" and ")),
            None,
        );
    }
    let fits = [&floor.heap_used, &floor.external, &floor.rss];
    let evidence: Vec<Evidence> = fits.iter().map(|f| f.evidence_per_hour()).collect();
    if evidence.iter().all(|e| *e == Evidence::Flat) {
        return (
            Verdict::NoLeak,
            format!(
                "the post-GC floor is flat ({} floor points; every slope's 95 % upper bound below the margin)",
                floor.heap_used.points
            ),
            None,
        );
    }
    let points = floor.heap_used.points;
    let more = Evidence::more_points_needed(&evidence).unwrap_or(1);
    let reason = if points == 0 {
        "no full GC has happened since the warm-up, so there is no floor to judge".to_owned()
    } else {
        format!(
            "{points} floor point{} cannot tell a flat floor from a slow rise yet",
            if points == 1 { "" } else { "s" }
        )
    };
    let pace = if points >= 2 {
        let secs = watched.as_secs_f64() * more as f64 / points as f64;
        format!(" (about {} more at the pace so far)", human_duration(secs))
    } else {
        " (the app runs few full GCs of its own: --gc-interval-ms makes leakhound force them)".to_owned()
    };
    (
        Verdict::Inconclusive,
        reason,
        Some(format!(
            "run longer: about {more} more floor point{}{pace}",
            if more == 1 { "" } else { "s" }
        )),
    )
}

/// `90 s`, `12 min`, `3.5 h`.
fn human_duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{:.0} s", secs.max(1.0))
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// Runs a watch.
///
/// # Errors
/// [`HuntError`] when the app cannot be started or attached to.
///
/// # Cancel safety
/// Dropping the future stops a spawned app; prefer setting `stop`.
pub async fn watch(cfg: WatchConfig, events: mpsc::UnboundedSender<WatchEvent>) -> Result<WatchOutcome, HuntError> {
    let fwd = events.clone();
    let crate::run::StartedApp {
        mut process,
        session,
        lock: _lock,
    } = crate::run::start_app(&cfg.target, cfg.ready_timeout, move |l| {
        let _ = fwd.send(WatchEvent::AppOutput(l));
    })
    .await?;
    let pid = process.as_ref().map(|p| p.pid()).unwrap_or_else(|| session.pid());
    let _ = events.send(WatchEvent::Started { pid });
    let _ = session.install_gc_observer().await;
    let session = Arc::new(session);
    let clock = Clock::start();
    let mut sampler = Sampler::new(session.clone(), clock, cfg.gc_interval);
    let mut samples: Vec<MemorySample> = Vec::new();
    let warmup_ms = cfg.warmup.as_secs_f64() * 1000.0;
    let ended = loop {
        if cfg.stop.load(Ordering::SeqCst) {
            break "stopped".to_owned();
        }
        if cfg.duration.is_some_and(|d| clock.elapsed() >= d) {
            break "time up".to_owned();
        }
        if let Some(p) = process.as_mut()
            && let Ok(Some(status)) = p.try_wait()
        {
            break format!("the app exited ({status})");
        }
        if session.is_closed() {
            break "the inspector connection closed".to_owned();
        }
        tokio::time::sleep(cfg.sample_interval).await;
        // A failed step (the app busy or exiting) is retried; the checks above end the loop.
        let Ok(batch) = sampler.step(0).await else { continue };
        let s = batch[0];
        samples.extend(batch);
        let floor = leakhound_leaks::analyze_floor(&samples, warmup_ms);
        let _ = events.send(WatchEvent::Sample(s, Box::new(floor)));
    };
    session.close().await;
    if let Some(mut p) = process.take() {
        let _ = p.kill_with_grace(Duration::from_secs(2)).await;
    }
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let floor = leakhound_leaks::analyze_floor(&samples, warmup_ms);
    let watched = Duration::from_secs_f64((clock.now_ms() - warmup_ms).max(0.0) / 1000.0);
    let (verdict, reason, what_would_decide) = judge(&floor, watched);
    Ok(WatchOutcome {
        pid,
        samples,
        floor,
        ended,
        verdict,
        reason,
        what_would_decide,
    })
}

#[cfg(test)]
mod tests {
    use leakhound_leaks::analyze_floor;

    use super::*;

    fn floors(n: u64, every_s: f64, heap: impl Fn(u64) -> u64) -> FloorAnalysis {
        let samples: Vec<MemorySample> = (0..n)
            .map(|i| MemorySample {
                t_ms: i as f64 * every_s * 1000.0,
                heap_used_bytes: heap(i),
                external_bytes: 2 << 20,
                rss_bytes: 80 << 20,
                after_full_gc: true,
                ..Default::default()
            })
            .collect();
        analyze_floor(&samples, 0.0)
    }

    #[test]
    fn an_hour_of_flat_floors_is_no_leak() {
        let f = floors(60, 60.0, |i| (40 << 20) + (i % 3) * 30_000);
        let (v, reason, next) = judge(&f, Duration::from_secs(3600));
        assert_eq!(v, Verdict::NoLeak, "{reason} {next:?}");
    }

    #[test]
    fn seconds_of_flat_floors_are_inconclusive_with_a_time_estimate() {
        let f = floors(6, 1.0, |i| (40 << 20) + (i % 3) * 300_000);
        let (v, _, next) = judge(&f, Duration::from_secs(6));
        assert_eq!(v, Verdict::Inconclusive);
        let next = next.expect("what would decide it");
        assert!(next.starts_with("run longer: about "), "{next}");
        assert!(next.contains("at the pace so far"), "{next}");
    }

    #[test]
    fn a_rising_floor_is_a_leak() {
        let f = floors(20, 30.0, |i| (40 << 20) + i * (2 << 20));
        assert_eq!(judge(&f, Duration::from_secs(600)).0, Verdict::Leak);
    }
}
