//! What a hunt report says when the memory floor rose (or could not be judged) but the
//! leak finder found no cluster of objects that grew across the snapshots: what was
//! measured, and what to try next. Shared by the text and the HTML reports, so a
//! floor-only leak never reads as a green "0 clusters".

use crate::format;
use crate::hunt::{FloorFitJson, HuntJson, VerdictJson};

/// The explanation of a hunt without clusters whose verdict is not `no_leak`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoClusterNote {
    /// One sentence: the floor rose (or could not be judged) and no cluster grew.
    pub headline: String,
    /// What was measured, one line per memory kind whose floor rose, plus the snapshots.
    pub measured: Vec<String>,
    /// What to try next, most useful first.
    pub next: Vec<String>,
}

/// Memory kinds as the hunt's floor statistics name them (`growing`).
const JS_HEAP: &str = "js_heap";
const EXTERNAL: &str = "external";
const NATIVE: &str = "native";

/// The note for `r`, or `None` when it has clusters, or says `no_leak` with no growing
/// handles (then "no cluster grew" is the whole story).
pub fn no_cluster_note(r: &HuntJson) -> Option<NoClusterNote> {
    let handles = r.active_resources.as_ref().filter(|h| h.growing);
    if !r.clusters.is_empty() || (r.verdict == VerdictJson::NoLeak && handles.is_none()) {
        return None;
    }
    let grew = |k: &str| r.floor.growing.iter().any(|g| g == k);
    let headline = match r.verdict {
        VerdictJson::Leak => {
            "The memory floor rose under load, but no group of objects grew under one holder \
             through every snapshot, so there is no holder to name yet."
        }
        VerdictJson::NoLeak => {
            "The heap's floor is flat, but the app's active handles grew and stayed open: \
             sockets, timers or watchers can leak outside the objects a snapshot groups."
        }
        VerdictJson::Inconclusive => {
            "No group of objects grew under one holder through every snapshot, and the floor alone does not decide."
        }
    }
    .to_owned();

    let mut measured = Vec::new();
    if let Some(h) = handles {
        measured.push(format!(
            "active handles (process.getActiveResourcesInfo()): {} → {} ({:+.2} per request), still open after the load stopped",
            h.first, h.last, h.per_request
        ));
    }
    for (kind, name, fit) in [
        (JS_HEAP, "JS heap (heapUsed)", &r.floor.heap_used),
        (EXTERNAL, "external memory (Buffers, ArrayBuffers)", &r.floor.external),
        (NATIVE, "process RSS", &r.floor.rss),
    ] {
        if grew(kind) {
            measured.push(format!("{name}: floor {}", fit_text(fit)));
        }
    }
    if measured.is_empty() || (handles.is_some() && measured.len() == 1 && r.verdict != VerdictJson::NoLeak) {
        measured.push(format!(
            "JS heap (heapUsed): floor {}; no memory kind grew with confidence",
            fit_text(&r.floor.heap_used)
        ));
    }
    let snapshots = r.snapshots.len();
    measured.push(if snapshots >= 3 {
        format!("{snapshots} heap snapshots compared: no holder kept more objects in each one than in the one before")
    } else {
        format!("{snapshots} heap snapshot(s): the leak finder needs three (baseline, target, final) to compare")
    });

    let mut next = Vec::new();
    if handles.is_some() {
        next.push(
            "List them with `process.getActiveResourcesInfo()` in the app and close what each \
             request opens (sockets, per-request http.Agents, servers, file watchers, \
             intervals); `leakhound leaks` on the snapshots groups the JS objects handles keep \
             (`TCPSocketWrap handles`, …)."
                .to_owned(),
        );
    }
    let heap = grew(JS_HEAP);
    let external = grew(EXTERNAL);
    let native_only = grew(NATIVE) && !heap && !external;
    if native_only {
        next.push(
            "Only the process's RSS grows while the JS heap and external memory stay flat: heap \
             snapshots cannot show it. Suspect native addons, memory outside V8 (malloc arenas: \
             try MALLOC_ARENA_MAX=2) or code space; a native profiler (heaptrack, valgrind \
             massif) on the process would show where."
                .to_owned(),
        );
    }
    if external {
        next.push(
            "External memory grows: Buffers, ArrayBuffers or a WebAssembly.Memory kept alive \
             off the JS heap, where one object can hold any number of bytes. Compare the \
             baseline and final snapshots by class (`leakhound diff BASELINE FINAL`, rows \
             ArrayBuffer, Buffer, Uint8Array, WebAssembly.Memory, and their retained sizes), \
             look for streams or sockets that are never consumed or closed, and for a buffer \
             or WebAssembly memory that grows (a native or WASM allocator that never frees)."
                .to_owned(),
        );
    }
    if heap || (!native_only && r.verdict != VerdictJson::NoLeak) {
        next.push(
            "Give the leak more room to show: more requests per phase (--requests) or more load \
             phases (--phases), so growth too small to stand out between two snapshots shows \
             in every one."
                .to_owned(),
        );
        next.push(
            "Leaks without a growing collection (closures chained through their contexts, \
             strings grown with +=, objects kept by native handles) have no container to name: \
             `leakhound diff BASELINE FINAL` lists what grew by class (#New, #Delta), and \
             `leakhound retainers FINAL --class NAME` shows what keeps one."
                .to_owned(),
        );
    }
    Some(NoClusterNote {
        headline,
        measured,
        next,
    })
}

impl NoClusterNote {
    /// The note as one paragraph: headline, what was measured, what to try (the JSON
    /// report's `without_cluster`).
    pub fn paragraph(&self) -> String {
        format!(
            "{} Measured: {}. To try: {}",
            self.headline,
            self.measured.join("; "),
            self.next.join(" ")
        )
    }
}

/// `"4.6 MB → 9.1 MB, +1.2 kB per request (95 % CI +0.9 kB … +1.5 kB), 8 points"`.
fn fit_text(f: &FloorFitJson) -> String {
    let mut s = format!("{} → {}", format::bytes(f.first_bytes), format::bytes(f.last_bytes));
    if let Some(rate) = f.bytes_per_request {
        s.push_str(&format!(", {} per request", format::byte_rate(rate)));
        if let Some((lo, hi)) = f.bytes_per_request_ci95 {
            s.push_str(&format!(
                " (95 % CI {} … {})",
                format::byte_rate(lo),
                format::byte_rate(hi)
            ));
        }
    }
    s.push_str(&format!(", {} floor points", f.points));
    s
}
