//! `leakhound snapshot`'s parts that are not drawing: where the files of a series go, the
//! memory headroom check before each snapshot, and what became of the inspector attach
//! opened once the session closed it.

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
