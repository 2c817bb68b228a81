//! `watch`: the memory watch alone. Samples `process.memoryUsage()`, forces a full GC now
//! and then for clean floor points, records the app's own major GCs, and keeps a running
//! floor analysis, until the time is up, the app exits, or the caller says stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakhound_inspector::OutputLine;
use leakhound_leaks::{FloorAnalysis, MemorySample};
use tokio::sync::mpsc;

use crate::run::{AppTarget, HuntError};

/// Settings of a watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The app.
    pub target: AppTarget,
    /// Sample interval.
    pub sample_interval: Duration,
    /// Force a full GC this often (floor points); None: only the app's own GCs.
    pub gc_interval: Option<Duration>,
    /// Stop after this long (None: until the app exits or `stop` is set).
    pub duration: Option<Duration>,
    /// Floor points before this are warm-up and left out of the statistics.
    pub warmup: Duration,
    /// Set to stop the watch (e.g. on Ctrl-C); the outcome is still returned.
    pub stop: Arc<AtomicBool>,
    /// How long to wait for the app's inspector.
    pub ready_timeout: Duration,
}

/// Progress of a watch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The app runs with this pid.
    Started {
        /// Pid.
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
    /// Every sample.
    pub samples: Vec<MemorySample>,
    /// The floor analysis after the warm-up.
    pub floor: FloorAnalysis,
    /// Why it ended: `time up`, `stopped`, `the app exited (…)`.
    pub ended: String,
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
    let (mut process, session) = crate::run::start_app(&cfg.target, cfg.ready_timeout, move |l| {
        let _ = fwd.send(WatchEvent::AppOutput(l));
    })
    .await?;
    let pid = process.as_ref().map(|p| p.pid()).unwrap_or_else(|| session.pid());
    let _ = events.send(WatchEvent::Started { pid });
    let _ = session.install_gc_observer().await;
    let started = Instant::now();
    let unix_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut samples: Vec<MemorySample> = Vec::new();
    let mut last_gc = Instant::now();
    let warmup_ms = cfg.warmup.as_secs_f64() * 1000.0;
    let ended = loop {
        if cfg.stop.load(Ordering::SeqCst) {
            break "stopped".to_owned();
        }
        if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
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
        let forced = cfg.gc_interval.is_some_and(|g| last_gc.elapsed() >= g);
        if forced {
            last_gc = Instant::now();
            if session.collect_garbage().await.is_err() {
                continue;
            }
        }
        let Ok(m) = session.memory_usage().await else { continue };
        let t_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mk = |m: leakhound_inspector::MemoryUsage, t_ms: f64, floor: bool, forced: bool| MemorySample {
            t_ms,
            requests: 0,
            rss_bytes: m.rss_bytes,
            heap_total_bytes: m.heap_total_bytes,
            heap_used_bytes: m.heap_used_bytes,
            external_bytes: m.external_bytes,
            array_buffers_bytes: m.array_buffers_bytes,
            after_full_gc: floor,
            forced_gc: forced,
        };
        let s = mk(m, t_ms, forced, forced);
        samples.push(s);
        for g in session
            .drain_gc_events()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|g| !g.forced)
        {
            samples.push(mk(g.memory, g.unix_ms.saturating_sub(unix_start) as f64, true, false));
        }
        let floor = leakhound_leaks::analyze_floor(&samples, warmup_ms);
        let _ = events.send(WatchEvent::Sample(s, Box::new(floor)));
    };
    session.close().await;
    if let Some(mut p) = process.take() {
        let _ = p.kill_with_grace(Duration::from_secs(2)).await;
    }
    samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let floor = leakhound_leaks::analyze_floor(&samples, warmup_ms);
    Ok(WatchOutcome {
        pid,
        samples,
        floor,
        ended,
    })
}
