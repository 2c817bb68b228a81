//! V8's heap profiler beyond snapshots: allocation tracking (so later snapshots carry
//! allocation stacks) and the sampling heap profiler, with its profile as a typed model and
//! a `.heapprofile` writer.
//!
//! - [`Session::start_tracking_allocations`]: `HeapProfiler.startTrackingHeapObjects` with
//!   `trackAllocations: true`. Every later snapshot has `trace_function_infos`,
//!   `trace_tree` and a `trace_node_id` per node. Tracking ends with the session (node runs
//!   `HeapProfiler.disable` when the debugger leaves); `stopTrackingHeapObjects` is not
//!   offered because V8 takes a whole heap snapshot in it.
//! - [`Session::start_sampling`] / [`Session::sampling_profile`] / [`Session::stop_sampling`]:
//!   `HeapProfiler.startSampling` (by default without the objects the GC has since
//!   collected: `includeObjectsCollectedByMajorGC` and `…MinorGC` false, so the profile is
//!   what *survives*), `getSamplingProfile`, `stopSampling`.
//! - [`HeapProfile`]: the CDP `SamplingHeapProfile` (`{"head": {callFrame, selfSize, id,
//!   children}, "samples": [{size, nodeId, ordinal}]}`), which is also the `.heapprofile`
//!   file DevTools' Memory panel loads; [`HeapProfile::write`] writes one through a
//!   temporary name and renames it, and [`HeapProfile::sites`] sums it by function.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::InspectorError;
use crate::session::Session;

/// A frame of the sampling profile's call tree (CDP `Runtime.CallFrame`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFrame {
    /// The function's name (empty for anonymous functions; `(root)` for the tree's root).
    pub function_name: String,
    /// V8's script id, as a string.
    pub script_id: String,
    /// The script's URL (`file:///srv/app/server.js`, `node:events`), empty when none.
    pub url: String,
    /// Line of the function's start, counted from 0.
    pub line_number: i64,
    /// Column of the function's start, counted from 0.
    pub column_number: i64,
}

/// A node of the profile's call tree (CDP `HeapProfiler.SamplingHeapProfileNode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileNode {
    /// The function of this node.
    pub call_frame: CallFrame,
    /// Bytes of the sampled allocations made in this function at this stack (not its
    /// callees'), still alive when the profile was read.
    pub self_size: f64,
    /// The node's id (samples point at it).
    pub id: u64,
    /// Callees.
    #[serde(default)]
    pub children: Vec<ProfileNode>,
}

/// One sampled allocation (CDP `HeapProfiler.SamplingHeapProfileSample`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSample {
    /// The allocation's size, in bytes (a sample stands for about the sampling interval).
    pub size: f64,
    /// The call-tree node that allocated it.
    pub node_id: u64,
    /// Order of the sample among all samples.
    pub ordinal: f64,
}

/// A sampling heap profile: the call tree of the sampled allocations still alive, and the
/// samples. Serialized as is, it is the `.heapprofile` DevTools opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeapProfile {
    /// The tree's root (`(root)`).
    pub head: ProfileNode,
    /// The samples (empty from V8s that do not send them).
    #[serde(default)]
    pub samples: Vec<ProfileSample>,
}

/// Options of [`Session::start_sampling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingOptions {
    /// Average bytes between samples (V8's default is 32768).
    pub interval_bytes: u64,
    /// Keep samples of objects a major GC has collected since (false: only survivors).
    pub include_collected_by_major_gc: bool,
    /// Keep samples of objects a minor GC has collected since.
    pub include_collected_by_minor_gc: bool,
}

impl Default for SamplingOptions {
    /// 32 KiB between samples, survivors only.
    fn default() -> Self {
        SamplingOptions {
            interval_bytes: 32 * 1024,
            include_collected_by_major_gc: false,
            include_collected_by_minor_gc: false,
        }
    }
}

/// An allocation site of a profile: one function (name, script, line), all its stacks.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationSite {
    /// The function's name (`(anonymous)` when it has none).
    pub function: String,
    /// Its script's URL.
    pub url: String,
    /// Line of the function's start, counted from 1 (0 unknown).
    pub line: u32,
    /// Bytes of the profile's live sampled allocations made there.
    pub bytes: u64,
}

impl HeapProfile {
    /// The sum of every node's `self_size`, bytes.
    pub fn total_bytes(&self) -> u64 {
        let mut total = 0.0;
        self.walk(|n, _| total += n.self_size);
        total as u64
    }

    /// Calls `f(node, depth)` for every node, parents before children, iteratively (the
    /// tree may be deep).
    pub fn walk<'a>(&'a self, mut f: impl FnMut(&'a ProfileNode, usize)) {
        let mut stack = vec![(&self.head, 0usize)];
        while let Some((n, d)) = stack.pop() {
            f(n, d);
            for c in n.children.iter().rev() {
                stack.push((c, d + 1));
            }
        }
    }

    /// The allocation sites, most bytes first (ties: by function, url, line): each
    /// node's self size summed by (function, url, line) over all its stacks. Nodes without
    /// bytes are left out.
    pub fn sites(&self) -> Vec<AllocationSite> {
        let mut by: HashMap<(&str, &str, i64), f64> = HashMap::new();
        self.walk(|n, _| {
            if n.self_size > 0.0 {
                let f = &n.call_frame;
                *by.entry((&f.function_name, &f.url, f.line_number)).or_default() += n.self_size;
            }
        });
        let mut sites: Vec<AllocationSite> = by
            .into_iter()
            .map(|((function, url, line), bytes)| AllocationSite {
                function: if function.is_empty() {
                    "(anonymous)".to_owned()
                } else {
                    function.to_owned()
                },
                url: url.to_owned(),
                line: u32::try_from(line + 1).unwrap_or(0),
                bytes: bytes as u64,
            })
            .collect();
        sites.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.function.cmp(&b.function))
                .then_with(|| a.url.cmp(&b.url))
                .then(a.line.cmp(&b.line))
        });
        sites
    }

    /// Writes the profile as a `.heapprofile` (the JSON DevTools' Memory panel loads) to
    /// `path`: to `<path>.partial-<our pid>` first, synced, then renamed; the partial file
    /// is deleted on any failure.
    ///
    /// # Errors
    /// [`InspectorError::ProfileIo`] when the file cannot be written or renamed.
    pub fn write(&self, path: &Path) -> Result<(), InspectorError> {
        use std::io::Write;
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(".partial-{}", std::process::id()));
        let partial = std::path::PathBuf::from(partial);
        let io = |source: std::io::Error| InspectorError::ProfileIo {
            path: path.to_path_buf(),
            source,
        };
        let result = (|| -> Result<(), InspectorError> {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&partial)
                .map_err(io)?;
            let mut w = std::io::BufWriter::new(file);
            serde_json::to_writer(&mut w, self).map_err(|e| io(e.into()))?;
            w.flush().map_err(io)?;
            w.get_ref().sync_all().map_err(io)?;
            std::fs::rename(&partial, path).map_err(io)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

impl Session {
    /// Turns on V8's allocation tracking (`HeapProfiler.startTrackingHeapObjects` with
    /// `trackAllocations: true`): every snapshot taken afterwards records the stack that
    /// allocated each object it holds that was allocated since. It costs the app time
    /// and memory on every allocation (see `bench/RESULTS.md`).
    ///
    /// The command is sent by an inspector session *inside* the target (`node:inspector`,
    /// kept under `Symbol.for('leakhound.allocationTracking')` on `globalThis`): sent
    /// over this remote session, node 20 kept the stacks of the first snapshots but lost
    /// those of objects alive at the later ones (a hunt's final snapshot had 513 objects
    /// with a stack against 2,952 at its target). Tracking lasts until
    /// [`Session::stop_tracking_allocations`] or the end of the process.
    ///
    /// # Errors
    /// [`InspectorError::Exception`] when the target cannot start it, and everything
    /// [`Session::evaluate`] returns.
    pub async fn start_tracking_allocations(&self) -> Result<(), InspectorError> {
        self.evaluate(
            "(() => { const g = globalThis, k = Symbol.for('leakhound.allocationTracking'); \
             if (g[k]) return true; \
             const inspector = (typeof process === 'object' && typeof process.getBuiltinModule === 'function') \
               ? process.getBuiltinModule('inspector') : require('inspector'); \
             const s = new inspector.Session(); s.connect(); \
             return new Promise((ok, bad) => s.post('HeapProfiler.startTrackingHeapObjects', { trackAllocations: true }, \
               (e) => { if (e) { s.disconnect(); bad(new Error(e.message)); } \
                        else { Object.defineProperty(g, k, { value: s, configurable: true }); ok(true); } })); })()",
        )
        .await
        .map(|_| ())
    }

    /// Stops allocation tracking started by [`Session::start_tracking_allocations`]: its
    /// in-process session is disconnected (node's agent then stops the tracker; like any
    /// heap-profiler session ending, it also resets V8's object ids). Nothing when none
    /// is running.
    ///
    /// # Errors
    /// As [`Session::evaluate`].
    pub async fn stop_tracking_allocations(&self) -> Result<(), InspectorError> {
        self.evaluate(
            "(() => { const g = globalThis, k = Symbol.for('leakhound.allocationTracking'), s = g[k]; \
             if (!s) return false; delete g[k]; s.disconnect(); return true; })()",
        )
        .await
        .map(|_| ())
    }

    /// Starts V8's sampling heap profiler (`HeapProfiler.startSampling`).
    ///
    /// # Errors
    /// As [`Session::call`].
    pub async fn start_sampling(&self, options: SamplingOptions) -> Result<(), InspectorError> {
        self.ensure_heap_profiler().await?;
        self.call(
            "HeapProfiler.startSampling",
            json!({
                "samplingInterval": options.interval_bytes,
                "includeObjectsCollectedByMajorGC": options.include_collected_by_major_gc,
                "includeObjectsCollectedByMinorGC": options.include_collected_by_minor_gc,
            }),
        )
        .await
        .map(|_| ())
    }

    /// The sampling profile so far (`HeapProfiler.getSamplingProfile`); sampling goes on.
    ///
    /// # Errors
    /// As [`Session::call`]; [`InspectorError::UnexpectedReply`] when the reply is not a
    /// profile.
    pub async fn sampling_profile(&self) -> Result<HeapProfile, InspectorError> {
        let reply = self.call("HeapProfiler.getSamplingProfile", json!({})).await?;
        profile_of(reply, "HeapProfiler.getSamplingProfile")
    }

    /// Stops the sampling heap profiler and returns its last profile
    /// (`HeapProfiler.stopSampling`).
    ///
    /// # Errors
    /// As [`Session::sampling_profile`].
    pub async fn stop_sampling(&self) -> Result<HeapProfile, InspectorError> {
        let reply = self.call("HeapProfiler.stopSampling", json!({})).await?;
        profile_of(reply, "HeapProfiler.stopSampling")
    }
}

fn profile_of(mut reply: serde_json::Value, method: &str) -> Result<HeapProfile, InspectorError> {
    let profile = reply.get_mut("profile").map(serde_json::Value::take);
    profile
        .and_then(|p| serde_json::from_value(p).ok())
        .ok_or_else(|| InspectorError::UnexpectedReply {
            method: method.to_owned(),
            reason: "no sampling heap profile in it".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, name: &str, url: &str, line: i64, size: f64, children: Vec<ProfileNode>) -> ProfileNode {
        ProfileNode {
            call_frame: CallFrame {
                function_name: name.into(),
                script_id: "1".into(),
                url: url.into(),
                line_number: line,
                column_number: 0,
            },
            self_size: size,
            id,
            children,
        }
    }

    #[test]
    fn sites_sum_a_function_over_its_stacks_and_the_file_round_trips() {
        let p = HeapProfile {
            head: node(
                1,
                "(root)",
                "",
                -1,
                0.0,
                vec![
                    node(
                        2,
                        "a",
                        "file:///x.js",
                        4,
                        100.0,
                        vec![node(3, "b", "file:///x.js", 9, 50.0, vec![])],
                    ),
                    node(4, "b", "file:///x.js", 9, 70.0, vec![]),
                ],
            ),
            samples: vec![],
        };
        assert_eq!(p.total_bytes(), 220);
        let sites = p.sites();
        assert_eq!(sites.len(), 2);
        assert_eq!(
            (sites[0].function.as_str(), sites[0].line, sites[0].bytes),
            ("b", 10, 120)
        );
        assert_eq!((sites[1].function.as_str(), sites[1].bytes), ("a", 100));
        let dir = std::env::temp_dir().join(format!("lh-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.heapprofile");
        p.write(&path).unwrap();
        let back: HeapProfile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, p);
        // The file is what DevTools reads: camelCase keys, a head and samples.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"head\":{\"callFrame\":{\"functionName\":\"(root)\""),
            "{text}"
        );
        assert!(
            text.contains("\"selfSize\"") && text.contains("\"samples\":[]"),
            "{text}"
        );
        // No partial file left; an existing partial name is never reused.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
