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

/// The note for `r`, or `None` when it has clusters or says `no_leak` (then "no cluster
/// grew" is the whole story).
pub fn no_cluster_note(r: &HuntJson) -> Option<NoClusterNote> {
    if !r.clusters.is_empty() || r.verdict == VerdictJson::NoLeak {
        return None;
    }
    let grew = |k: &str| r.floor.growing.iter().any(|g| g == k);
    let headline = match r.verdict {
        VerdictJson::Leak => {
            "The memory floor rose under load, but no group of objects grew under one holder \
             through every snapshot, so there is no holder to name yet."
        }
        _ => "No group of objects grew under one holder through every snapshot, and the floor alone does not decide.",
    }
    .to_owned();

    let mut measured = Vec::new();
    for (kind, name, fit) in [
        (JS_HEAP, "JS heap (heapUsed)", &r.floor.heap_used),
        (EXTERNAL, "external memory (Buffers, ArrayBuffers)", &r.floor.external),
        (NATIVE, "process RSS", &r.floor.rss),
    ] {
        if grew(kind) {
            measured.push(format!("{name}: floor {}", fit_text(fit)));
        }
    }
    if measured.is_empty() {
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
            "External memory grows: Buffers and ArrayBuffers kept alive off the JS heap. Compare \
             the baseline and final snapshots by class (`leakhound diff BASELINE FINAL`, rows \
             ArrayBuffer, Buffer, Uint8Array) and look for streams or sockets that are never \
             consumed or closed."
                .to_owned(),
        );
    }
    if heap || !native_only {
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
