//! Taking snapshots of a running app safely. `leakhound snapshot`'s parts that are not
//! drawing: where the files of a series go, the memory headroom check before each
//! snapshot, and what became of the inspector attach opened once the session closed it;
//! and the production watch's evidence snapshot ([`capture_snapshot`]): one capture per
//! machine at a time, memory headroom for the target, free disk, then the file, or the
//! reason it was skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Failure;

/// The files of a series of `count` snapshots of `pid` started at `stamp` (unix seconds).
/// One snapshot goes to `output` as given, or into it with the default name when it is a
/// folder (an existing directory, or a path ending in `/`). More are numbered from 1: in
/// that folder, named `Heap-<pid>-<stamp>-<n>.heapsnapshot`, or after `output` as a prefix,
/// `<output>-<n>.heapsnapshot` (a trailing `.heapsnapshot` of the prefix dropped).
pub fn snapshot_paths(output: Option<&Path>, count: u32, pid: u32, stamp: u64) -> Vec<PathBuf> {
    let name = |n: u32| {
        if count == 1 {
            format!("Heap-{pid}-{stamp}.heapsnapshot")
        } else {
            format!("Heap-{pid}-{stamp}-{n}.heapsnapshot")
        }
    };
    let Some(out) = output else {
        return (1..=count).map(|n| PathBuf::from(name(n))).collect();
    };
    let folder = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if folder {
        return (1..=count).map(|n| out.join(name(n))).collect();
    }
    if count == 1 {
        return vec![out.to_owned()];
    }
    let prefix = out.to_string_lossy();
    let prefix = prefix.strip_suffix(".heapsnapshot").unwrap_or(&prefix);
    (1..=count)
        .map(|n| PathBuf::from(format!("{prefix}-{n}.heapsnapshot")))
        .collect()
}

/// What became of the inspector `attach` opened in `pid` (at `ws_url`) once the session
/// closed it: gone from the process's listeners within a second, or still there.
pub async fn inspector_closed_note(pid: u32, ws_url: &str) -> String {
    let port = ws_url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let listening = || {
        leakhound_inspector::proc::listening_addrs(pid)
            .map(|a| a.iter().any(|a| Some(a.port()) == port))
            .unwrap_or(false)
    };
    for _ in 0..20 {
        if !listening() {
            return format!("leakhound: closed the inspector it opened in pid {pid}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    format!("leakhound: warning: the inspector it opened in pid {pid} still listens ({ws_url})")
}

/// The memory headroom check before `leakhound snapshot` (see
/// `leakhound_inspector::headroom`): against the machine's `MemAvailable` and, with `--pid`,
/// the process's cgroup limit (with `--inspect` the process behind the URL is not known for
/// sure: the machine's figure only). Returns the warnings to print.
///
/// # Errors
/// [`Failure::SnapshotRefused`] when the snapshot does not fit and `ignore` is not set
/// (nothing is written); [`Failure::Inspector`] when the target's connection failed.
pub async fn snapshot_headroom(
    session: &leakhound_inspector::Session,
    pid: Option<u32>,
    ignore: bool,
) -> Result<Vec<String>, Failure> {
    use leakhound_inspector::headroom::{self, Fit};
    let figures = match session.heap_figures().await {
        Ok(f) => f,
        Err(e) if session.is_closed() => return Err(Failure::Inspector(e)),
        Err(e) => return Ok(vec![format!("memory headroom not checked: {e}")]),
    };
    let check = match pid {
        Some(pid) => headroom::check(pid, &figures),
        None => {
            headroom::available_on_machine().map(|a| headroom::judge(headroom::estimate_snapshot_cost(&figures), a))
        }
    };
    Ok(match check {
        Ok(c) => match c.fit {
            Fit::Fits => Vec::new(),
            Fit::Tight => vec![format!("memory is tight: {c}")],
            Fit::DoesNotFit if ignore => vec![format!("taken with --ignore-headroom: {c}")],
            Fit::DoesNotFit => return Err(Failure::SnapshotRefused(Box::new(c))),
        },
        Err(e) => vec![format!("memory headroom not checked: {e}")],
    })
}

/// Why an evidence snapshot was not taken (the metric `leakhound_captures_skipped_total`
/// counts them by [`SkipReason::label`]); the caller writes a sampling profile instead.
#[derive(Debug, Clone)]
pub enum SkipReason {
    /// Writing it would not fit in the memory free for the target (the headroom model).
    Headroom(Box<leakhound_inspector::headroom::Check>),
    /// The file would not fit on the disk with its reserve.
    Disk {
        /// Free space on the capture folder's file system, bytes.
        free_bytes: u64,
        /// The file's estimate, bytes.
        file_bytes: u64,
    },
    /// Another capture held the machine's capture slot for longer than the wait.
    Busy,
}

impl SkipReason {
    /// The metric label: `headroom`, `disk` or `busy`.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::Headroom(_) => "headroom",
            SkipReason::Disk { .. } => "disk",
            SkipReason::Busy => "busy",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Headroom(c) => write!(f, "not enough memory free for the app to write it: {c}"),
            SkipReason::Disk { free_bytes, file_bytes } => write!(
                f,
                "not enough disk: the file needs about {} MB plus a {} MB reserve, {} MB are free",
                file_bytes >> 20,
                leakhound_inspector::headroom::disk::DISK_RESERVE_BYTES >> 20,
                free_bytes >> 20
            ),
            SkipReason::Busy => f.write_str("another leakhound was capturing on this machine"),
        }
    }
}

/// An evidence snapshot taken by [`capture_snapshot`].
#[derive(Debug, Clone)]
pub struct Captured {
    /// The file, complete (written to a temporary name, then renamed).
    pub file: leakhound_inspector::SnapshotFile,
    /// What it cost the target, for the next estimate.
    pub previous: Option<leakhound_inspector::headroom::PreviousSnapshot>,
    /// Warnings (memory tight, headroom not checked).
    pub warnings: Vec<String>,
}

/// Takes one evidence snapshot of `session` (process `pid`) to `path`, never the one that
/// kills production: it waits at most `wait` for the machine's one capture slot
/// ([`crate::try_lock_capture`]), checks the memory headroom for the target (its cgroup and
/// the machine's, with `previous`, the cost of its last snapshot, when known) and the free
/// disk where `path` goes, then forces a full GC and writes the file. `Ok(Err(reason))`
/// when it was skipped.
///
/// # Errors
/// [`Failure::Inspector`] when the target's connection failed or the snapshot could not be
/// written (no partial file is left); [`Failure::Config`] when the runtime folder of the
/// capture lock cannot be used.
pub async fn capture_snapshot(
    session: &leakhound_inspector::Session,
    pid: u32,
    path: &Path,
    previous: Option<leakhound_inspector::headroom::PreviousSnapshot>,
    wait: Duration,
) -> Result<Result<Captured, SkipReason>, Failure> {
    use leakhound_inspector::headroom::{self, Fit};
    let deadline = tokio::time::Instant::now() + wait;
    let _slot = loop {
        match crate::try_lock_capture() {
            Ok(Some(lock)) => break lock,
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(None) => return Ok(Err(SkipReason::Busy)),
            Err(e) => return Err(Failure::Config(e.to_string())),
        }
    };
    let mut warnings = Vec::new();
    let figures = match session.heap_figures().await {
        Ok(mut f) => {
            f.previous = previous;
            Some(f)
        }
        Err(e) if session.is_closed() => return Err(Failure::Inspector(e)),
        Err(e) => {
            warnings.push(format!("memory headroom not checked: {e}"));
            None
        }
    };
    let mut file_estimate = None;
    if let Some(figures) = &figures {
        match headroom::check(pid, figures) {
            Ok(c) => {
                file_estimate = Some(c.cost.file_bytes);
                match c.fit {
                    Fit::Fits => {}
                    Fit::Tight => warnings.push(format!("memory is tight: {c}")),
                    Fit::DoesNotFit => return Ok(Err(SkipReason::Headroom(Box::new(c)))),
                }
            }
            Err(e) => warnings.push(format!("memory headroom not checked: {e}")),
        }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(file_bytes) = file_estimate {
        match headroom::disk::disk_fits(dir, file_bytes) {
            Ok(Ok(_)) => {}
            Ok(Err(free_bytes)) => return Ok(Err(SkipReason::Disk { free_bytes, file_bytes })),
            Err(e) => warnings.push(format!("free disk not checked: {e}")),
        }
    }
    let rss_before = headroom::rss_of(pid).ok();
    session.collect_garbage().await.map_err(Failure::Inspector)?;
    let file = session
        .take_heap_snapshot(path, |_, _| {})
        .await
        .map_err(Failure::Inspector)?;
    let previous = match (figures, rss_before, headroom::rss_of(pid)) {
        (Some(f), Some(before), Ok(after)) => Some(headroom::PreviousSnapshot {
            heap_used_bytes: f.heap_used_bytes,
            large_object_bytes: f.large_object_bytes,
            rss_before_bytes: previous.map_or(before.rss_bytes, |p| p.rss_before_bytes),
            peak_rss_bytes: after.peak_bytes,
            file_bytes: file.bytes,
        }),
        _ => None,
    };
    Ok(Ok(Captured {
        file,
        previous,
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_series_of_snapshots_goes_into_a_folder_or_after_a_prefix() {
        let names = |out: Option<&str>, count| -> Vec<String> {
            snapshot_paths(out.map(Path::new), count, 42, 1700)
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        assert_eq!(names(None, 1), ["Heap-42-1700.heapsnapshot"]);
        assert_eq!(
            names(None, 2),
            ["Heap-42-1700-1.heapsnapshot", "Heap-42-1700-2.heapsnapshot"]
        );
        assert_eq!(names(Some("a.heapsnapshot"), 1), ["a.heapsnapshot"]);
        assert_eq!(names(Some("shop"), 2), ["shop-1.heapsnapshot", "shop-2.heapsnapshot"]);
        assert_eq!(
            names(Some("shop.heapsnapshot"), 2),
            ["shop-1.heapsnapshot", "shop-2.heapsnapshot"]
        );
        assert_eq!(
            names(Some("snaps/"), 2),
            ["snaps/Heap-42-1700-1.heapsnapshot", "snaps/Heap-42-1700-2.heapsnapshot"]
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        assert_eq!(names(Some(&d), 1), [format!("{d}/Heap-42-1700.heapsnapshot")]);
    }
}
