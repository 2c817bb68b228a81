//! [`attach`]: open the inspector of a running node process with SIGUSR1 and connect to it.
//!
//! SIGUSR1 makes node listen on 127.0.0.1:9229 (or its `--inspect-port`), which may be taken
//! by another process, so the port is not assumed: the loopback ports the target actually
//! LISTENs on are read from `/proc` (see `proc.rs`), and the session is checked with
//! `process.pid`. Linux only.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::endpoint::{self, Endpoint};
use crate::error::{InspectorError, duration_ms};
use crate::proc::{
    listening_addrs, listening_loopback_addrs, node_executable, non_loopback_inspect_setting, sigusr1_caught,
};
use crate::session::Session;

/// Poll interval while waiting for the handler or the port.
const POLL: Duration = Duration::from_millis(50);
/// Ports that were listening before the signal are probed only after this delay, so that a
/// freshly opened inspector is preferred over the app's own loopback servers.
const OLD_PORTS_AFTER: Duration = Duration::from_millis(500);
/// Timeout of one `/json/list` probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens the inspector of the running node process `pid` and connects a [`Session`] to it.
///
/// Steps: wait until the process catches SIGUSR1 (read from `/proc/PID/status`; sending it
/// to a process that does not would kill it), send SIGUSR1, then poll until one of the
/// process's loopback listening ports answers `/json/list` like an inspector whose
/// `process.pid` is `pid`. Ports that appear after the signal are tried first; ports that
/// were already listening (an inspector opened earlier, or the app's own servers, which then
/// receive one `GET /json/list`) are tried after 500 ms. If the process does not catch SIGUSR1
/// but already listens on loopback ports, no signal is sent and those are tried.
///
/// Works only for processes in our network namespace (not inside a container) that we may
/// inspect (same user or root). After this, the target's inspector stays open until it exits.
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], [`InspectorError::ProcFs`] (e.g. permission denied),
/// [`InspectorError::Sigusr1NotHandled`] (not node, or node with `--disable-sigusr1`),
/// [`InspectorError::Signal`], [`InspectorError::PidMismatch`], or
/// [`InspectorError::InspectorNotFound`] when `timeout` passes.
///
/// # Cancel safety
///
/// Cancel safe; the inspector may have been opened in the target already.
pub async fn attach(pid: u32, timeout: Duration) -> Result<Session, InspectorError> {
    let deadline = Instant::now() + timeout;
    // Only node gets SIGUSR1 (a Python process that catches it would get a signal and an
    // HTTP probe meant for node).
    let (exe, is_node) = node_executable(pid)?;
    if !is_node {
        return Err(InspectorError::NotNode { pid, exe });
    }
    let before = listening_loopback_addrs(pid)?;
    let before_all = listening_addrs(pid)?;

    let signalled = loop {
        if sigusr1_caught(pid)? {
            // SIGUSR1 opens the inspector where the process's own settings say: never on
            // an address the network can reach.
            if let Some(setting) = non_loopback_inspect_setting(pid)? {
                return Err(InspectorError::NonLoopbackInspector { pid, setting });
            }
            send_sigusr1(pid)?;
            break true;
        }
        if !before.is_empty() {
            break false;
        }
        if Instant::now() >= deadline {
            return Err(InspectorError::Sigusr1NotHandled { pid });
        }
        tokio::time::sleep(POLL).await;
    };

    let signalled_at = Instant::now();
    let mut rejected: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut mismatch: Option<InspectorError> = None;
    loop {
        if signalled {
            refuse_new_wide_listeners(pid, &before_all).await?;
        }
        let now = listening_loopback_addrs(pid)?;
        let mut candidates: Vec<SocketAddr> = now.iter().filter(|a| !before.contains(a)).copied().collect();
        if !signalled || signalled_at.elapsed() >= OLD_PORTS_AFTER {
            let mut old: Vec<SocketAddr> = now.iter().filter(|a| before.contains(a)).copied().collect();
            old.sort_by_key(|a| (a.port() != endpoint::DEFAULT_PORT, a.port()));
            candidates.extend(old);
        }
        for addr in candidates {
            if rejected.contains(&addr) {
                continue;
            }
            match probe(addr, pid, deadline).await {
                Ok(session) => {
                    if signalled && !before.contains(&addr) {
                        // Ours: closed again when leakhound leaves.
                        session.close_inspector_on_close();
                    }
                    return Ok(session);
                }
                Err(e @ InspectorError::PidMismatch { .. }) => {
                    mismatch = Some(e);
                    rejected.insert(addr);
                }
                Err(_) => {
                    rejected.insert(addr);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(mismatch.unwrap_or(InspectorError::InspectorNotFound {
                pid,
                timeout_ms: duration_ms(timeout),
                probed_ports: rejected.iter().map(SocketAddr::port).collect(),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Fails when the process listens on a non-loopback address it did not listen on before
/// the signal: the inspector opened where the command line did not say (e.g. the app set
/// `process.debugPort` or its host at run time). That inspector is closed again at once
/// (through its loopback side: a wildcard address accepts 127.0.0.1 too).
async fn refuse_new_wide_listeners(pid: u32, before: &BTreeSet<SocketAddr>) -> Result<(), InspectorError> {
    let wide: Vec<SocketAddr> = listening_addrs(pid)?
        .into_iter()
        .filter(|a| !endpoint::is_loopback(a.ip()) && !before.contains(a))
        .collect();
    let Some(first) = wide.first() else {
        return Ok(());
    };
    for addr in &wide {
        let local = if addr.is_ipv4() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        };
        if let Ok(session) = probe(local, pid, Instant::now() + PROBE_TIMEOUT).await {
            session.close_inspector_on_close();
            session.close().await;
        }
    }
    Err(InspectorError::NonLoopbackInspector {
        pid,
        setting: format!("it opened a listener on {first} after SIGUSR1"),
    })
}

/// Reads `/json/list` at `addr` and connects to a target whose `process.pid` is `pid`.
pub(crate) async fn probe(addr: SocketAddr, pid: u32, deadline: Instant) -> Result<Session, InspectorError> {
    let endpoint = Endpoint::from_addr(addr, "/");
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(200));
    let targets = endpoint::json_list(&endpoint, PROBE_TIMEOUT.min(remaining)).await?;
    let mut last = None;
    for target in targets {
        let ws = Endpoint::from_addr(addr, &target.ws_path);
        let session = match Session::connect_endpoint(&ws).await {
            Ok(session) => session,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        if session.pid() == pid {
            return Ok(session);
        }
        last = Some(InspectorError::PidMismatch {
            url: ws.ws_url(),
            expected: pid,
            actual: session.pid(),
        });
        session.close().await;
    }
    Err(last.unwrap_or(InspectorError::NoTarget {
        url: endpoint.http_url(),
    }))
}

fn send_sigusr1(pid: u32) -> Result<(), InspectorError> {
    let raw = i32::try_from(pid).map_err(|_| InspectorError::NoSuchProcess { pid })?;
    match kill(Pid::from_raw(raw), Signal::SIGUSR1) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ESRCH) => Err(InspectorError::NoSuchProcess { pid }),
        Err(source) => Err(InspectorError::Signal {
            pid,
            signal: "SIGUSR1",
            source,
        }),
    }
}
