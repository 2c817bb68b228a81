//! What `hunt --sample-allocations` keeps of the sampling heap profile taken over the load
//! phases: the `.heapprofile` file's path, the top surviving allocation sites, and the
//! call tree folded into `frame;frame;frame bytes` lines for a flame graph.

use std::path::PathBuf;

use leakhound_inspector::{AllocationSite, HeapProfile};

/// Allocation sites kept in a [`HeapProfileRecord`].
pub const TOP_SITES: usize = 20;

/// The sampling heap profile of a hunt.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapProfileRecord {
    /// The `.heapprofile` file (DevTools' Memory panel loads it).
    pub path: PathBuf,
    /// Average bytes between samples.
    pub interval_bytes: u64,
    /// Live sampled bytes in the profile (what survived the load phases and the final
    /// snapshot's GC).
    pub total_bytes: u64,
    /// The top [`TOP_SITES`] allocation sites by surviving bytes, most first.
    pub sites: Vec<AllocationSite>,
    /// The call tree as folded stacks (outermost frame first, [`frame_label`]s joined by
    /// `;`) with their surviving bytes, in tree order: a flame graph's input.
    pub folded: Vec<(String, u64)>,
}

/// A frame as the flame graph names it: `function (url:line)`, the url without `file://`,
/// the line of the function's start counted from 1. Both the profile's frames and a
/// cluster's allocation stack frames are named this way, so they can be matched.
pub fn frame_label(function: &str, url: &str, line: u32) -> String {
    let function = if function.is_empty() { "(anonymous)" } else { function };
    let url = url.strip_prefix("file://").unwrap_or(url);
    // `;` separates frames in folded stacks.
    format!("{function} ({url}:{line})").replace(';', ",")
}

impl HeapProfileRecord {
    /// Summarises `profile`, written at `path`, sampled every `interval_bytes`.
    pub fn of(profile: &HeapProfile, path: PathBuf, interval_bytes: u64) -> HeapProfileRecord {
        let mut sites = profile.sites();
        sites.truncate(TOP_SITES);
        HeapProfileRecord {
            path,
            interval_bytes,
            total_bytes: profile.total_bytes(),
            sites,
            folded: folded(profile),
        }
    }
}

/// The profile's nodes with bytes as folded stacks (the `(root)` left out), iteratively.
fn folded(profile: &HeapProfile) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack: Vec<(&leakhound_inspector::ProfileNode, Option<String>)> =
        profile.head.children.iter().rev().map(|c| (c, None)).collect();
    while let Some((n, prefix)) = stack.pop() {
        let f = &n.call_frame;
        let label = frame_label(&f.function_name, &f.url, u32::try_from(f.line_number + 1).unwrap_or(0));
        let path = match prefix {
            Some(p) => format!("{p};{label}"),
            None => label,
        };
        if n.self_size >= 1.0 {
            out.push((path.clone(), n.self_size as u64));
        }
        for c in n.children.iter().rev() {
            stack.push((c, Some(path.clone())));
        }
    }
    out
}
