//! Memory numbers of the target: `process.memoryUsage()` samples and major-GC events seen by
//! an injected `PerformanceObserver` on node's `gc` performance entries (`detail.kind` 4 is a
//! mark-compact GC, `detail.flags & 4` a forced one).

use std::time::Duration;

use serde_json::Value;

use crate::error::{InspectorError, shorten};
use crate::session::Session;

/// Key under which the injected observer keeps its state on `globalThis`.
const GC_STATE_KEY: &str = "leakhound.gc";

/// Lower bound of the timeout for `HeapProfiler.collectGarbage` (a full GC of a multi-GB heap
/// takes many seconds).
const MIN_GC_TIMEOUT: Duration = Duration::from_secs(120);

/// Most GC events the target keeps between two drains; older ones are dropped first.
pub const GC_RING_CAPACITY: usize = 1024;

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
  const state = {{ events: [], dropped: 0, windows: [] }};
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
      if (detail.kind !== 4) continue;
      const start = entry.startTime;
      const requested = state.windows.some((w) => start >= w[0] && start <= w[1]);
      if (state.events.length >= {GC_RING_CAPACITY}) {{ state.events.shift(); state.dropped++; }}
      state.events.push({{
        t_ms: Date.now(),
        duration_ms: entry.duration,
        forced: requested || ((detail.flags | 0) & 4) !== 0,
        mem: process.memoryUsage(),
      }});
    }}
  }});
  observer.observe({{ entryTypes: ['gc'] }});
  state.observer = observer;
  Object.defineProperty(globalThis, key, {{ value: state, configurable: true, enumerable: false, writable: false }});
  return true;
}})()"#
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
        let value = self
            .evaluate(
                "(typeof process === 'object' && process && typeof process.memoryUsage === 'function') \
                 ? process.memoryUsage() : Deno.memoryUsage()",
            )
            .await?;
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
            })
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
}
