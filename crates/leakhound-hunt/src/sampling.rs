//! Memory sampling, shared by the hunt and the watch: one step reads
//! `process.memoryUsage()` (after a forced full GC when one is due) and the app's own full
//! GCs since the last step, as [`MemorySample`]s on one clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakhound_inspector::{InspectorError, MemoryUsage, RuntimeSample, Session};
use leakhound_leaks::MemorySample;

/// The time base of a run: samples carry milliseconds since `started`; the app's GC
/// events, stamped with the app's `Date.now()`, are placed on the same axis through
/// `unix_start_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    started: Instant,
    unix_start_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub(crate) fn start() -> Clock {
        Clock {
            started: Instant::now(),
            unix_start_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }

    /// Milliseconds since the start.
    pub(crate) fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// A Unix time in ms (the app's `Date.now()`) as ms since the start.
    fn t_ms_of_unix(&self, unix_ms: u64) -> f64 {
        unix_ms.saturating_sub(self.unix_start_ms) as f64
    }
}

/// One reading as a sample: at `t_ms`, with `requests` units of load sent so far; a floor
/// point when read right after a full GC, `forced` when leakhound asked for that GC.
pub(crate) fn sample(m: MemoryUsage, t_ms: f64, requests: u64, after_full_gc: bool, forced: bool) -> MemorySample {
    MemorySample {
        t_ms,
        requests,
        rss_bytes: m.rss_bytes,
        heap_total_bytes: m.heap_total_bytes,
        heap_used_bytes: m.heap_used_bytes,
        external_bytes: m.external_bytes,
        array_buffers_bytes: m.array_buffers_bytes,
        after_full_gc,
        forced_gc: forced,
        active_resources: m.active_resources,
    }
}

/// Takes samples of one app through its inspector session, forcing a full GC every
/// `gc_interval` when one is set.
pub(crate) struct Sampler {
    session: Arc<Session>,
    clock: Clock,
    gc_interval: Option<Duration>,
    last_gc: Instant,
}

impl Sampler {
    /// A sampler on `session`, timing with `clock`.
    pub(crate) fn new(session: Arc<Session>, clock: Clock, gc_interval: Option<Duration>) -> Sampler {
        Sampler {
            session,
            clock,
            gc_interval,
            last_gc: Instant::now(),
        }
    }

    /// One step: a forced full GC if one is due, `process.memoryUsage()`, then the app's
    /// own full GCs since the last step (each with the memory read right after it). The
    /// first sample is the step's own reading (a floor point when the GC was forced);
    /// the others are floor points of the app's GCs. `requests` is the load sent so far.
    ///
    /// # Errors
    /// The inspector call that failed (the forced GC or the memory reading; a failure to
    /// read the app's GC events only loses those events).
    pub(crate) async fn step(&mut self, requests: u64) -> Result<Vec<MemorySample>, InspectorError> {
        let forced = self.force_gc_if_due().await?;
        let m = self.session.memory_usage().await?;
        Ok(self.with_app_gcs(m, requests, forced).await)
    }

    /// [`Sampler::step`] reading the whole [`RuntimeSample`] (heap limit, heap spaces, GC
    /// counts per kind) instead of `process.memoryUsage()` alone, in the same one call.
    ///
    /// # Errors
    /// As [`Sampler::step`].
    pub(crate) async fn step_runtime(&mut self) -> Result<(Vec<MemorySample>, RuntimeSample), InspectorError> {
        let forced = self.force_gc_if_due().await?;
        let r = self.session.runtime_sample().await?;
        Ok((self.with_app_gcs(r.memory, 0, forced).await, r))
    }

    /// A forced full GC when one is due; whether there was one.
    async fn force_gc_if_due(&mut self) -> Result<bool, InspectorError> {
        let forced = self.gc_interval.is_some_and(|g| self.last_gc.elapsed() >= g);
        if forced {
            self.last_gc = Instant::now();
            self.session.collect_garbage().await?;
        }
        Ok(forced)
    }

    /// The reading `m` as a sample, then the app's own full GCs since the last step.
    async fn with_app_gcs(&mut self, m: MemoryUsage, requests: u64, forced: bool) -> Vec<MemorySample> {
        let mut batch = vec![sample(m, self.clock.now_ms(), requests, forced, forced)];
        // The app's own full GCs (ours are recorded above).
        let gcs = self.session.drain_gc_events().await.unwrap_or_default();
        for g in gcs.into_iter().filter(|g| !g.forced) {
            batch.push(sample(
                g.memory,
                self.clock.t_ms_of_unix(g.unix_ms),
                requests,
                true,
                false,
            ));
        }
        batch
    }
}
