//! `watch`: the memory watch alone. Samples `process.memoryUsage()`, forces a full GC now
//! and then for clean floor points, records the app's own major GCs, and keeps a running
//! floor analysis, until the time is up, the app exits, or the caller says stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leakhound_inspector::OutputLine;
use leakhound_leaks::{FloorAnalysis, MemorySample};
use tokio::sync::mpsc;

use crate::config::WatchConfig;
use crate::error::HuntError;
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
    Ok(WatchOutcome {
        pid,
        samples,
        floor,
        ended,
    })
}
