//! [`attach`]: open the inspector of a running node process with SIGUSR1 and connect to it.
//!
//! SIGUSR1 makes node listen on 127.0.0.1:9229 (or its `--inspect-port`), which may be taken
//! by another process, so the port is not assumed: the loopback ports the target actually
//! LISTENs on are found by matching the socket inodes of `/proc/PID/fd` with the rows of
//! `/proc/net/tcp` and `/proc/net/tcp6`, and the session is checked with `process.pid`
//! (`../shared/reference/crates.md` §5, gotcha 3). Linux only.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::endpoint::{self, Endpoint};
use crate::error::{InspectorError, duration_ms};
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
    let before = listening_loopback_addrs(pid)?;

    let signalled = loop {
        if sigusr1_caught(pid)? {
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
                Ok(session) => return Ok(session),
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

/// Reads `/json/list` at `addr` and connects to a target whose `process.pid` is `pid`.
async fn probe(addr: SocketAddr, pid: u32, deadline: Instant) -> Result<Session, InspectorError> {
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

fn proc_path(pid: u32, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

fn proc_error(pid: u32, path: PathBuf, source: std::io::Error) -> InspectorError {
    if source.kind() == std::io::ErrorKind::NotFound {
        InspectorError::NoSuchProcess { pid }
    } else {
        InspectorError::ProcFs { pid, path, source }
    }
}

/// True when the process has a handler for SIGUSR1 (`SigCgt` in `/proc/PID/status`).
fn sigusr1_caught(pid: u32) -> Result<bool, InspectorError> {
    let path = proc_path(pid, "status");
    let status = std::fs::read_to_string(&path).map_err(|e| proc_error(pid, path, e))?;
    Ok(parse_sigcgt(&status).is_some_and(|mask| mask & (1 << (Signal::SIGUSR1 as u32 - 1)) != 0))
}

fn parse_sigcgt(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("SigCgt:"))?;
    u64::from_str_radix(line.trim_start_matches("SigCgt:").trim(), 16).ok()
}

/// The inodes of the sockets the process has open.
fn socket_inodes(pid: u32) -> Result<HashSet<u64>, InspectorError> {
    let dir = proc_path(pid, "fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| proc_error(pid, dir.clone(), e))?;
    let mut inodes = HashSet::new();
    for entry in entries.flatten() {
        // Descriptors may close while we look: skip what we cannot read.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

/// The loopback addresses the process listens on (TCP, IPv4 and IPv6).
fn listening_loopback_addrs(pid: u32) -> Result<BTreeSet<SocketAddr>, InspectorError> {
    let inodes = socket_inodes(pid)?;
    let mut addrs = BTreeSet::new();
    if inodes.is_empty() {
        return Ok(addrs);
    }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No IPv6 support in this kernel.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(InspectorError::ProcFs {
                    pid,
                    path: PathBuf::from(table),
                    source,
                });
            }
        };
        for (addr, inode) in parse_tcp_listeners(&text) {
            if inodes.contains(&inode) && endpoint::is_loopback(addr.ip()) {
                addrs.insert(addr);
            }
        }
    }
    Ok(addrs)
}

/// Parses the LISTEN rows (`st == 0A`) of `/proc/net/tcp` or `/proc/net/tcp6` into
/// (local address, socket inode).
fn parse_tcp_listeners(text: &str) -> Vec<(SocketAddr, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                return None;
            }
            let addr = parse_hex_addr(fields[1])?;
            let inode = fields[9].parse::<u64>().ok()?;
            Some((addr, inode))
        })
        .collect()
}

/// Parses `0100007F:2405` or a 32-digit IPv6 address. The kernel prints each 32-bit word of
/// the address as a native-endian integer.
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => {
            let word = u32::from_str_radix(ip_hex, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_proc_net_tcp() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2405 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2405 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
   3: garbage
";
        let rows = parse_tcp_listeners(tcp);
        assert_eq!(
            rows,
            vec![
                ("127.0.0.1:9221".parse().unwrap(), 123_456),
                ("0.0.0.0:3000".parse().unwrap(), 222),
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2406 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2407 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 100 0 0 10 0
";
        let rows = parse_tcp_listeners(tcp6);
        assert_eq!(rows[0], ("[::1]:9222".parse().unwrap(), 777));
        assert_eq!(rows[1], ("[::ffff:127.0.0.1]:9223".parse().unwrap(), 778));
        assert!(endpoint::is_loopback(rows[1].0.ip()));
    }

    #[test]
    fn rejects_malformed_addresses() {
        for f in ["", "0100007F", "0100007F:XYZ", "01007F:2405", "ü:1", "0100007F:12345"] {
            assert_eq!(parse_hex_addr(f), None, "{f}");
        }
    }

    #[test]
    fn reads_sigcgt() {
        let status = "Name:\tnode\nSigIgn:\t0000000000000006\nSigCgt:\t0000000100004602\n";
        let mask = parse_sigcgt(status).unwrap();
        assert_ne!(mask & (1 << 9), 0);
        assert_eq!(parse_sigcgt("Name: x\n"), None);
    }

    #[test]
    fn our_own_listeners_are_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listening_loopback_addrs(std::process::id()).unwrap();
        assert!(found.contains(&addr), "{addr} not in {found:?}");
    }

    #[test]
    fn missing_processes_are_reported() {
        // Pid numbers above the kernel's pid_max (at most 2^22) never exist.
        assert!(matches!(
            listening_loopback_addrs(u32::MAX - 1),
            Err(InspectorError::NoSuchProcess { .. })
        ));
    }
}
