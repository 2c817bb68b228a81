//! The node processes an app forks (cluster workers, `child_process.fork`), found through
//! `/proc`'s process tree, and sessions with their inspectors.
//!
//! How a child's inspector is found, without guessing ports: a child that inherits
//! `--inspect=127.0.0.1:0` from the app (node's `cluster` passes the primary's `execArgv`,
//! adding `--inspect-port=<primary's port + n>`: a port node picks, which may even be
//! taken) opens its inspector wherever it can; leakhound reads the loopback ports the child
//! really LISTENs on from `/proc` and keeps the one whose `/json/list` target reports the
//! child's pid. A child with no inspector (started without the flag, as the children of
//! an app leakhound attached to) is opened with SIGUSR1 ([`crate::attach()`], node only),
//! which closes it again when leakhound leaves. The host is never changed: a child whose
//! settings put its inspector on another host is refused like any attach.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::attach::probe;
use crate::error::InspectorError;
use crate::isolate::{Isolate, IsolateKind};
use crate::proc::{listening_loopback_addrs, node_executable};
use crate::session::Session;

/// Poll interval while a child's inspector comes up.
const POLL: Duration = Duration::from_millis(50);

/// The pids of the node processes below `root` in the process tree (children,
/// grandchildren, …; `root` itself left out), lowest first. Processes that vanish while
/// they are read, and processes that are not node (a shell between the app and its
/// children, `npm`'s `sh -c`), are skipped, but their node descendants are kept.
pub fn node_descendants(root: u32) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in all.flatten() {
        if let Ok(stat) = p.stat()
            && let (Ok(pid), Ok(ppid)) = (u32::try_from(stat.pid), u32::try_from(stat.ppid))
            // Zombies have no inspector and no memory.
            && stat.state != 'Z'
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &c in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if c != root && found.insert(c) {
                stack.push(c);
            }
        }
    }
    found
        .into_iter()
        .filter(|pid| node_executable(*pid).is_ok_and(|(_, node)| node))
        .collect()
}

/// Connects to the inspector of child process `pid`: the loopback ports it listens on are
/// probed (a `/json/list` target whose `process.pid` is `pid`), for half of `timeout` when
/// its command line or `NODE_OPTIONS` has an `--inspect` flag (it opens its inspector
/// itself), else once; when none answers, its inspector is opened with SIGUSR1 ([`crate::attach()`], for the rest of
/// `timeout`, closed again when the session closes).
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`] when the child is gone, and the errors of
/// [`crate::attach()`] when neither way finds an inspector.
pub async fn connect_child(pid: u32, timeout: Duration) -> Result<Session, InspectorError> {
    connect(pid, timeout, None).await
}

/// [`connect_child`] for a child of an app leakhound attached to, whose inspector must be
/// left as it was found: `open_before` are the loopback ports the child listened on before
/// leakhound attached to the app ([`listeners_below`]). An inspector found on another port
/// of a child whose flags do not open one was opened because of leakhound (node's cluster
/// opens every worker's inspector when the primary's is opened by SIGUSR1), so it is closed
/// again when the session closes, as one opened with SIGUSR1 here is.
///
/// # Errors
///
/// As [`connect_child`].
pub async fn connect_child_of_attached(
    pid: u32,
    timeout: Duration,
    open_before: &BTreeSet<SocketAddr>,
) -> Result<Session, InspectorError> {
    connect(pid, timeout, Some(open_before)).await
}

/// The loopback ports each node process below `root` listens on now, by pid: taken before
/// attaching to an app, for [`connect_child_of_attached`].
pub fn listeners_below(root: u32) -> BTreeMap<u32, BTreeSet<SocketAddr>> {
    node_descendants(root)
        .into_iter()
        .filter_map(|pid| listening_loopback_addrs(pid).ok().map(|a| (pid, a)))
        .collect()
}

async fn connect(
    pid: u32,
    timeout: Duration,
    open_before: Option<&BTreeSet<SocketAddr>>,
) -> Result<Session, InspectorError> {
    let deadline = Instant::now() + timeout;
    let opens_itself = crate::proc::opens_inspector_itself(pid)?;
    // Half the time for an inspector the child opens itself (inherited flags); one look
    // at what it listens on when it has no such flag (an attached app's children).
    let own_until = if opens_itself {
        Instant::now() + timeout / 2
    } else {
        Instant::now()
    };
    let mut rejected: BTreeSet<SocketAddr> = BTreeSet::new();
    loop {
        for addr in listening_loopback_addrs(pid)? {
            if rejected.contains(&addr) {
                continue;
            }
            match probe(addr, pid, deadline).await {
                Ok(session) => {
                    if !opens_itself && open_before.is_some_and(|b| !b.contains(&addr)) {
                        // Opened since leakhound attached to the app, by no flag of its own.
                        session.close_inspector_on_close();
                    }
                    return Ok(session);
                }
                Err(_) => {
                    rejected.insert(addr);
                }
            }
        }
        if Instant::now() >= own_until {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    crate::attach(pid, deadline.saturating_duration_since(Instant::now()).max(POLL)).await
}

/// What child process `pid` is: a cluster worker (node's cluster starts it with
/// `NODE_UNIQUE_ID`, its `cluster.worker.id`, in the environment, which the worker deletes
/// from `process.env` but `/proc/PID/environ` keeps) or another child.
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] when its environment
/// cannot be read.
pub fn classify_child(pid: u32) -> Result<Isolate, InspectorError> {
    let env = crate::proc::environ(pid)?;
    let unique = env.get(std::ffi::OsStr::new("NODE_UNIQUE_ID"));
    Ok(Isolate {
        pid,
        kind: if unique.is_some() {
            IsolateKind::ClusterWorker
        } else {
            IsolateKind::Child
        },
        thread_id: None,
        worker_id: unique.and_then(|v| v.to_str()).and_then(|v| v.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_children_are_found_only_when_node() {
        // A `sleep` child is not node: not listed; no panic on a tree walk.
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = node_descendants(std::process::id());
        assert!(!found.contains(&child.id()), "{found:?}");
        let _ = child.kill();
        let _ = child.wait();
    }
}
