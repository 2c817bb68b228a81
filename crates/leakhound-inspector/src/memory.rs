//! Memory numbers of the target: `process.memoryUsage()` samples and major-GC events seen by
//! an injected `PerformanceObserver` on node's `gc` performance entries (`detail.kind` 4 is a
//! mark-compact GC, `detail.flags & 4` a forced one). The same observer keeps cumulative
//! GC counts and durations per kind (the OpenTelemetry `v8js.gc.duration` histogram), read
//! with the heap spaces and the heap limit in one [`RuntimeSample`].
//!
//! Why a `PerformanceObserver` and not `v8.GCProfiler`: the profiler records V8's heap
//! statistics and every heap space's before and after *every* GC (scavenges included,
//! hundreds a second in a busy app) as JSON text that is parsed into JS objects in the
//! app when it is stopped, so its cost grows with the allocation rate; the observer costs
//! one small entry per GC, and reads `process.memoryUsage()` only after the rare
//! mark-compact GCs. Its reading is not taken inside the GC but when node delivers the
//! entry (a `setImmediate` after the GC's end), so the app may have allocated a little
//! since: the observer records that delay ([`GcEvent::read_lag_ms`]); the value is an
//! upper bound of the true post-GC heap, close to it while the delay is short (measured
//! against the profiler's in-GC figures: 0.05 MB above them at the median for an 18.9 MB
//! floor, 0.5 ms after the GC; `bench/gc-floor-lag.js`).

use std::time::Duration;

use serde_json::Value;

use crate::error::{InspectorError, shorten};
use crate::session::Session;

/// Key under which the injected observer keeps its state on `globalThis`.
const GC_STATE_KEY: &str = "leakhound.gc";

/// The class of the GC observer's state object in the target, as a heap snapshot names
/// it: what hangs off an object of this class is leakhound's own memory (the leak finder's
/// `is_own_instrumentation` knows it by this name).
pub(crate) const OWN_STATE_CLASS: &str = "LeakhoundGcState";

/// Lower bound of the timeout for `HeapProfiler.collectGarbage` (a full GC of a multi-GB heap
/// takes many seconds).
const MIN_GC_TIMEOUT: Duration = Duration::from_secs(120);

/// Most GC events the target keeps between two drains; older ones are dropped first.
pub const GC_RING_CAPACITY: usize = 1024;

/// `process.memoryUsage()` with the number of active resources (handles, requests,
/// timers) beside it as `activeResources`, where the node version can count them.
const MEMORY_USAGE_SCRIPT: &str = "(() => { \
    const p = (typeof process === 'object' && process && typeof process.memoryUsage === 'function') ? process : null; \
    const m = p ? p.memoryUsage() : Deno.memoryUsage(); \
    if (p && typeof p.getActiveResourcesInfo === 'function') m.activeResources = p.getActiveResourcesInfo().length; \
    return m; })()";

/// One `process.memoryUsage()` sample of the target, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    /// Resident set size of the whole process (`rss`).
    pub rss_bytes: u64,
    /// Memory committed for the V8 heap (`heapTotal`).
    pub heap_total_bytes: u64,
    /// Memory used by live and not yet collected V8 objects (`heapUsed`).
    pub heap_used_bytes: u64,
    /// Off-heap memory held by V8-managed objects' C++ backings, including array buffers
    /// (`external`).
    pub external_bytes: u64,
    /// Backing stores of `ArrayBuffer`, `SharedArrayBuffer` and `Buffer` (`arrayBuffers`;
    /// 0 on node versions that do not report it).
    pub array_buffers_bytes: u64,
    /// Active resources keeping the event loop alive (handles: sockets, servers, file
    /// watchers; requests; timers), `process.getActiveResourcesInfo().length`; `None` on
    /// node versions without it (before 17.3) and in GC observer samples.
    pub active_resources: Option<u64>,
}

impl MemoryUsage {
    /// Reads the object returned by `process.memoryUsage()`; `None` when a required field is
    /// missing or not a non-negative number.
    fn from_js(value: &Value) -> Option<MemoryUsage> {
        Some(MemoryUsage {
            rss_bytes: js_u64(value.get("rss")?)?,
            heap_total_bytes: js_u64(value.get("heapTotal")?)?,
            heap_used_bytes: js_u64(value.get("heapUsed")?)?,
            external_bytes: js_u64(value.get("external")?)?,
            array_buffers_bytes: match value.get("arrayBuffers") {
                Some(v) => js_u64(v)?,
                None => 0,
            },
            active_resources: value.get("activeResources").and_then(js_u64),
        })
    }
}

/// A major (mark-compact) garbage collection observed in the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcEvent {
    /// When the observer recorded the event and sampled `memory` (`Date.now()` in the target,
    /// milliseconds since the Unix epoch). Observer callbacks run shortly after the GC.
    pub unix_ms: u64,
    /// How long the GC took, in milliseconds (`PerformanceEntry.duration`).
    pub duration_ms: f64,
    /// True when the GC was forced: `detail.flags & 4` (`NODE_PERFORMANCE_GC_FLAGS_FORCED`,
    /// set by `global.gc()`), or it started while [`Session::collect_garbage`] was running
    /// (V8 leaves `HeapProfiler.collectGarbage` GCs unflagged). GCs done for a heap snapshot
    /// are not marked.
    pub forced: bool,
    /// `process.memoryUsage()` right after the GC; `heap_used_bytes` is then close to the
    /// post-GC floor.
    pub memory: MemoryUsage,
    /// Milliseconds between the end of the GC and the `memory` reading (`performance.now()`
    /// in the target; 0 when an older observer did not record it): what the app may have
    /// allocated since the GC is in `memory` too.
    pub read_lag_ms: f64,
}

/// The kinds of GC node reports in its `gc` performance entries (`detail.kind`), named as
/// OpenTelemetry's `v8js.gc.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GcKind {
    /// A scavenge of the young generation (`NODE_PERFORMANCE_GC_MINOR`, 1).
    Minor,
    /// A full mark-compact GC (`NODE_PERFORMANCE_GC_MAJOR`, 4).
    Major,
    /// A step of incremental marking (`NODE_PERFORMANCE_GC_INCREMENTAL`, 8).
    Incremental,
    /// Processing of weak callbacks (`NODE_PERFORMANCE_GC_WEAKCB`, 16).
    WeakCallbacks,
}

impl GcKind {
    /// OpenTelemetry's `v8js.gc.type` value: `minor`, `major`, `incremental`, `weakcb`.
    pub fn as_str(self) -> &'static str {
        match self {
            GcKind::Minor => "minor",
            GcKind::Major => "major",
            GcKind::Incremental => "incremental",
            GcKind::WeakCallbacks => "weakcb",
        }
    }

    fn from_str(name: &str) -> Option<GcKind> {
        Some(match name {
            "minor" => GcKind::Minor,
            "major" => GcKind::Major,
            "incremental" => GcKind::Incremental,
            "weakcb" => GcKind::WeakCallbacks,
            _ => return None,
        })
    }
}

/// Upper bounds, in seconds, of the GC duration buckets: OpenTelemetry's `v8js.gc.duration`
/// advice (0.01, 0.1, 1, 10).
pub const GC_DURATION_BUCKETS_SECONDS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

/// GCs of one kind the observer saw since it was installed: a cumulative histogram of their
/// durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcKindStats {
    /// The kind of GC.
    pub kind: GcKind,
    /// How many there were.
    pub count: u64,
    /// Their durations added up, in seconds.
    pub sum_seconds: f64,
    /// How many took at most each of [`GC_DURATION_BUCKETS_SECONDS`] (cumulative, as
    /// Prometheus' `le` buckets).
    pub buckets: [u64; 4],
}

/// One V8 heap space (`v8.getHeapSpaceStatistics()`), in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapSpace {
    /// The space's name: `new_space`, `old_space`, `code_space`, `large_object_space`, …
    pub name: String,
    /// Bytes of live and not yet collected objects in it (`space_used_size`).
    pub used_bytes: u64,
    /// Bytes committed for it (`space_size`).
    pub size_bytes: u64,
    /// Bytes still free in it (`space_available_size`).
    pub available_bytes: u64,
    /// Bytes of physical memory it uses (`physical_space_size`).
    pub physical_bytes: u64,
}

/// One reading of the target's runtime, in one inspector call: `process.memoryUsage()`, the
/// heap limit and spaces (`v8.getHeapStatistics()`, `v8.getHeapSpaceStatistics()`), and the
/// GC observer's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSample {
    /// `process.memoryUsage()`.
    pub memory: MemoryUsage,
    /// `heap_size_limit`: the most the V8 heap may grow to (None when the target's `v8`
    /// module could not be reached).
    pub heap_limit_bytes: Option<u64>,
    /// Every heap space (empty when the `v8` module could not be reached).
    pub heap_spaces: Vec<HeapSpace>,
    /// Cumulative GC counts and durations per kind since the observer was installed (empty
    /// without the observer, or before the first GC).
    pub gc: Vec<GcKindStats>,
    /// `process.uptime()`: seconds since the target process started (None if unreadable).
    pub uptime_seconds: Option<f64>,
}

fn js_u64(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 {
        // Deliberate truncation of a float that JSON carried for an integer.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f as u64)
    } else {
        None
    }
}

fn install_script() -> String {
    format!(
        r#"(() => {{
  const key = Symbol.for('{GC_STATE_KEY}');
  if (globalThis[key]) return false;
  const PO = globalThis.PerformanceObserver;
  if (typeof PO !== 'function') throw new Error('PerformanceObserver is not available in this node version');
  // windows: [start, end] (performance.now() times) of GCs requested through the inspector,
  // whose entries V8 does not flag as forced; end is Infinity while the request runs.
  // An instance of a class of leakhound's name, so that a heap snapshot names it: its
  // ring of GC events, which fills across snapshots, is leakhound's own memory whichever
  // path (the global's Symbol property, the observer's closure) reaches it.
  const state = Object.assign(new (class {OWN_STATE_CLASS} {{}})(), {{ events: [], dropped: 0, windows: [], gc: {{}} }});
  try {{ state.v8 = process.getBuiltinModule?.('node:v8') ?? process.mainModule?.require('v8'); }} catch {{}}
  const kinds = {{ 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' }};
  const bounds = [{buckets}];
  state.begin = () => {{
    state.windows.push([performance.now(), Infinity]);
    if (state.windows.length > 16) state.windows.shift();
  }};
  state.end = () => {{
    for (const w of state.windows) if (w[1] === Infinity) w[1] = performance.now();
  }};
  const observer = new PO((list) => {{
    for (const entry of list.getEntries()) {{
      const detail = entry.detail || entry;
      const name = kinds[detail.kind];
      if (name) {{
        const k = state.gc[name] || (state.gc[name] = {{ count: 0, sum_s: 0, buckets: [0, 0, 0, 0] }});
        const s = entry.duration / 1000;
        k.count++; k.sum_s += s;
        for (let i = 0; i < bounds.length; i++) if (s <= bounds[i]) k.buckets[i]++;
      }}
      if (detail.kind !== 4) continue;
      const start = entry.startTime;
      const requested = state.windows.some((w) => start >= w[0] && start <= w[1]);
      if (state.events.length >= {GC_RING_CAPACITY}) {{ state.events.shift(); state.dropped++; }}
      state.events.push({{
        t_ms: Date.now(),
        duration_ms: entry.duration,
        forced: requested || ((detail.flags | 0) & 4) !== 0,
        mem: process.memoryUsage(),
        lag_ms: performance.now() - (start + entry.duration),
      }});
    }}
  }});
  observer.observe({{ entryTypes: ['gc'] }});
  state.observer = observer;
  Object.defineProperty(globalThis, key, {{ value: state, configurable: true, enumerable: false, writable: false }});
  return true;
}})()"#,
        buckets = GC_DURATION_BUCKETS_SECONDS.map(|b| b.to_string()).join(", ")
    )
}

fn remove_script() -> String {
    format!(
        "(() => {{ const key = Symbol.for('{GC_STATE_KEY}'); const s = globalThis[key]; \
         if (!s) return false; try {{ s.observer.disconnect(); }} catch {{}} \
         delete globalThis[key]; return true; }})()"
    )
}

fn runtime_script() -> String {
    format!(
        "(() => {{ const s = globalThis[Symbol.for('{GC_STATE_KEY}')]; \
         const out = {{ mem: process.memoryUsage(), uptime: process.uptime() }}; \
         let v8 = s && s.v8; \
         if (!v8) {{ try {{ v8 = process.getBuiltinModule?.('node:v8') ?? process.mainModule?.require('v8'); }} catch {{}} }} \
         if (v8) {{ try {{ out.limit = v8.getHeapStatistics().heap_size_limit; \
         out.spaces = v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_used_size, x.space_size, x.space_available_size, x.physical_space_size]); }} catch {{}} }} \
         if (s && s.gc) out.gc = s.gc; \
         return out; }})()"
    )
}

fn window_script(which: &str) -> String {
    format!(
        "(() => {{ const s = globalThis[Symbol.for('{GC_STATE_KEY}')]; \
         if (s && typeof s.{which} === 'function') s.{which}(); }})()"
    )
}

fn drain_script() -> String {
    format!(
        "(() => {{ const s = globalThis[Symbol.for('{GC_STATE_KEY}')]; \
         if (!s) return null; return s.events.splice(0, s.events.length); }})()"
    )
}

impl Session {
    /// Makes V8 drop the console messages it keeps for debuggers
    /// (`Runtime.discardConsoleEntries`).
    ///
    /// While an inspector is open (even with no session attached), V8 retains the arguments
    /// of the last console calls (up to 1000 messages) so a debugger can show them later:
    /// an app that `console.log`s objects seems to leak them (measured on node 20: 300 logged
    /// 100 KB strings kept 30 MB alive until this call). [`Session::collect_garbage`] and
    /// [`Session::take_heap_snapshot`] call this first. Targets that do not know the command
    /// are ignored.
    ///
    /// # Errors
    ///
    /// As [`Session::call`], except [`InspectorError::Protocol`].
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn discard_console_entries(&self) -> Result<(), InspectorError> {
        match self.call("Runtime.discardConsoleEntries", serde_json::json!({})).await {
            Ok(_) | Err(InspectorError::Protocol { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Forces a full garbage collection in the target (`HeapProfiler.collectGarbage`, after
    /// enabling the HeapProfiler domain once). V8 runs two mark-compact GCs for it. Console
    /// messages retained for debuggers are discarded first
    /// ([`Session::discard_console_entries`]) so they do not count as live.
    ///
    /// V8 does not flag these GCs as forced, so when the GC observer is installed this marks
    /// the time window of the request in the target, and the observer reports GCs that
    /// started in it with [`GcEvent::forced`] set.
    ///
    /// Uses the call timeout, but at least 120 s: a full GC of a big heap takes seconds.
    ///
    /// # Errors
    ///
    /// As [`Session::call`].
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`]; a cancelled call may leave the window open, which marks later
    /// GCs as forced until the next `collect_garbage` completes.
    pub async fn collect_garbage(&self) -> Result<(), InspectorError> {
        self.discard_console_entries().await?;
        self.ensure_heap_profiler().await?;
        self.evaluate(&window_script("begin")).await?;
        let timeout = self.call_timeout().max(MIN_GC_TIMEOUT);
        let collected = self
            .call_with_timeout("HeapProfiler.collectGarbage", serde_json::json!({}), timeout)
            .await;
        let ended = self.evaluate(&window_script("end")).await;
        collected?;
        ended.map(|_| ())
    }

    /// Samples `process.memoryUsage()` in the target.
    ///
    /// # Errors
    ///
    /// As [`Session::evaluate`], plus [`InspectorError::UnexpectedReply`] when the value does
    /// not have the expected numeric fields.
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn memory_usage(&self) -> Result<MemoryUsage, InspectorError> {
        let value = self.evaluate(MEMORY_USAGE_SCRIPT).await?;
        MemoryUsage::from_js(&value).ok_or_else(|| InspectorError::UnexpectedReply {
            method: String::from("process.memoryUsage()"),
            reason: format!("unexpected value {}", shorten(&value.to_string(), 200)),
        })
    }

    /// Installs, once per target process, a `PerformanceObserver` on `gc` entries that records
    /// every major GC (`detail.kind == 4`) with a `process.memoryUsage()` sample into a ring of
    /// at most [`GC_RING_CAPACITY`] entries held on `globalThis[Symbol.for('leakhound.gc')]`
    /// (non-enumerable). Read them with [`Session::drain_gc_events`].
    ///
    /// Returns `true` if this call installed the observer, `false` if it was already there
    /// (installed by this or an earlier session). The observer and its ring stay in the
    /// target until it exits; they show up in heap snapshots as a few small objects.
    ///
    /// # Errors
    ///
    /// As [`Session::evaluate`] ([`InspectorError::Exception`] on node versions without a
    /// global `PerformanceObserver`).
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn install_gc_observer(&self) -> Result<bool, InspectorError> {
        let value = self.evaluate(&install_script()).await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// Removes the observer [`Session::install_gc_observer`] put into the target
    /// (disconnects it and deletes its state), leaving the process as it was; `true` when
    /// there was one. For a process leakhound attached to and leaves running.
    ///
    /// # Errors
    ///
    /// As [`Session::evaluate`].
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn remove_gc_observer(&self) -> Result<bool, InspectorError> {
        let value = self.evaluate(&remove_script()).await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// Reads the target's [`RuntimeSample`] in one `Runtime.evaluate`: `process.memoryUsage()`,
    /// the heap limit and spaces, and the GC observer's cumulative counts per kind.
    ///
    /// # Errors
    ///
    /// As [`Session::memory_usage`].
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn runtime_sample(&self) -> Result<RuntimeSample, InspectorError> {
        let value = self.evaluate(&runtime_script()).await?;
        runtime_sample_from_js(&value).ok_or_else(|| InspectorError::UnexpectedReply {
            method: String::from("runtime sample"),
            reason: format!("unexpected value {}", shorten(&value.to_string(), 200)),
        })
    }

    /// Returns the major GCs recorded since the last drain, oldest first, and clears them in
    /// the target.
    ///
    /// Observer callbacks run asynchronously in the target, so a GC that just finished may
    /// only show up in a later drain.
    ///
    /// # Errors
    ///
    /// [`InspectorError::GcObserverMissing`] when [`Session::install_gc_observer`] was not
    /// called for this process, [`InspectorError::UnexpectedReply`] when the recorded data is
    /// malformed (e.g. overwritten by the app), and everything [`Session::evaluate`] returns.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if cancelled after the target emptied its ring, those events are
    /// lost.
    pub async fn drain_gc_events(&self) -> Result<Vec<GcEvent>, InspectorError> {
        let value = self.evaluate(&drain_script()).await?;
        let unexpected = |reason: String| InspectorError::UnexpectedReply {
            method: String::from("drain gc events"),
            reason,
        };
        let entries = match value {
            Value::Null => return Err(InspectorError::GcObserverMissing { pid: self.pid() }),
            Value::Array(entries) => entries,
            other => {
                return Err(unexpected(format!(
                    "expected an array, got {}",
                    shorten(&other.to_string(), 200)
                )));
            }
        };
        entries
            .iter()
            .map(|entry| {
                gc_event_from_js(entry)
                    .ok_or_else(|| unexpected(format!("malformed entry {}", shorten(&entry.to_string(), 200))))
            })
            .collect()
    }
}

fn gc_event_from_js(entry: &Value) -> Option<GcEvent> {
    Some(GcEvent {
        unix_ms: js_u64(entry.get("t_ms")?)?,
        duration_ms: entry.get("duration_ms")?.as_f64().filter(|d| d.is_finite())?,
        forced: entry.get("forced")?.as_bool()?,
        memory: MemoryUsage::from_js(entry.get("mem")?)?,
        read_lag_ms: entry
            .get("lag_ms")
            .and_then(Value::as_f64)
            .filter(|l| l.is_finite())
            .map_or(0.0, |l| l.max(0.0)),
    })
}

/// Reads the object of `runtime_script`; `None` when `mem` is missing or malformed. Heap
/// spaces or GC kinds that are malformed are left out.
fn runtime_sample_from_js(value: &Value) -> Option<RuntimeSample> {
    let memory = MemoryUsage::from_js(value.get("mem")?)?;
    let heap_limit_bytes = value.get("limit").and_then(js_u64);
    let heap_spaces = value
        .get("spaces")
        .and_then(Value::as_array)
        .map(|spaces| {
            spaces
                .iter()
                .filter_map(|s| {
                    let s = s.as_array()?;
                    Some(HeapSpace {
                        name: s.first()?.as_str()?.to_owned(),
                        used_bytes: js_u64(s.get(1)?)?,
                        size_bytes: js_u64(s.get(2)?)?,
                        available_bytes: js_u64(s.get(3)?)?,
                        physical_bytes: js_u64(s.get(4)?)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut gc: Vec<GcKindStats> = value
        .get("gc")
        .and_then(Value::as_object)
        .map(|kinds| {
            kinds
                .iter()
                .filter_map(|(name, k)| {
                    let buckets = k.get("buckets")?.as_array()?;
                    let mut b = [0u64; 4];
                    for (slot, v) in b.iter_mut().zip(buckets) {
                        *slot = js_u64(v)?;
                    }
                    Some(GcKindStats {
                        kind: GcKind::from_str(name)?,
                        count: js_u64(k.get("count")?)?,
                        sum_seconds: k.get("sum_s")?.as_f64().filter(|s| s.is_finite() && *s >= 0.0)?,
                        buckets: b,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    gc.sort_by_key(|k| k.kind);
    Some(RuntimeSample {
        memory,
        heap_limit_bytes,
        heap_spaces,
        gc,
        uptime_seconds: value
            .get("uptime")
            .and_then(Value::as_f64)
            .filter(|u| u.is_finite() && *u >= 0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_usage_reads_node_output() {
        let v = json!({"arrayBuffers":10475,"external":1190437,"heapTotal":4169728,"heapUsed":2697184,"rss":42352640});
        assert_eq!(
            MemoryUsage::from_js(&v),
            Some(MemoryUsage {
                rss_bytes: 42_352_640,
                heap_total_bytes: 4_169_728,
                heap_used_bytes: 2_697_184,
                external_bytes: 1_190_437,
                array_buffers_bytes: 10_475,
                active_resources: None,
            })
        );
        let mut with_resources = v.clone();
        with_resources["activeResources"] = json!(14);
        assert_eq!(
            MemoryUsage::from_js(&with_resources).and_then(|m| m.active_resources),
            Some(14)
        );
    }

    #[test]
    fn memory_usage_rejects_bad_values() {
        assert_eq!(MemoryUsage::from_js(&json!(null)), None);
        assert_eq!(MemoryUsage::from_js(&json!({"rss": 1})), None);
        let v = json!({"external":-1,"heapTotal":1,"heapUsed":1,"rss":1});
        assert_eq!(MemoryUsage::from_js(&v), None);
        let v = json!({"external":1.0,"heapTotal":1e3,"heapUsed":1,"rss":1});
        assert_eq!(
            MemoryUsage::from_js(&v).map(|m| (m.heap_total_bytes, m.array_buffers_bytes)),
            Some((1000, 0))
        );
    }

    #[test]
    fn gc_events_parse() {
        let mem = json!({"arrayBuffers":1,"external":2,"heapTotal":3,"heapUsed":4,"rss":5});
        let e = json!({"t_ms": 1.7e12, "duration_ms": 2.5, "forced": true, "mem": mem});
        let ev = gc_event_from_js(&e).unwrap();
        assert_eq!(ev.unix_ms, 1_700_000_000_000);
        assert!(ev.forced);
        assert_eq!(ev.memory.heap_used_bytes, 4);
        assert_eq!(gc_event_from_js(&json!({"t_ms": 1})), None);
    }

    #[test]
    fn runtime_samples_parse_and_skip_malformed_parts() {
        let v = json!({
            "mem": {"arrayBuffers":1,"external":2,"heapTotal":3,"heapUsed":4,"rss":5},
            "limit": 4345298944u64,
            "spaces": [["old_space", 10, 20, 30, 40], ["bad", -1, 0, 0, 0]],
            "gc": {
                "minor": {"count": 7, "sum_s": 0.021, "buckets": [7, 7, 7, 7]},
                "major": {"count": 2, "sum_s": 0.25, "buckets": [0, 1, 2, 2]},
                "odd": {"count": 1, "sum_s": 1, "buckets": [1, 1, 1, 1]}
            }
        });
        let r = runtime_sample_from_js(&v).unwrap();
        assert_eq!(r.memory.heap_used_bytes, 4);
        assert_eq!(r.uptime_seconds, None);
        assert_eq!(r.heap_limit_bytes, Some(4_345_298_944));
        assert_eq!(r.heap_spaces.len(), 1);
        assert_eq!(r.heap_spaces[0].name, "old_space");
        assert_eq!(r.heap_spaces[0].physical_bytes, 40);
        assert_eq!(
            r.gc.iter().map(|k| k.kind.as_str()).collect::<Vec<_>>(),
            ["minor", "major"]
        );
        assert_eq!(r.gc[1].buckets, [0, 1, 2, 2]);
        let bare = runtime_sample_from_js(&json!({"mem": {"external":2,"heapTotal":3,"heapUsed":4,"rss":5}})).unwrap();
        assert_eq!(
            (bare.heap_limit_bytes, bare.heap_spaces.len(), bare.gc.len()),
            (None, 0, 0)
        );
        assert_eq!(runtime_sample_from_js(&json!({"limit": 1})), None);
    }
}
