//! What this crate reads from `/proc`, through the `procfs` crate: whether a process catches
//! SIGUSR1 (`/proc/PID/status`), the loopback TCP addresses it listens on (its socket inodes
//! in `/proc/PID/fd` matched with the LISTEN rows of our `/proc/net/tcp` and `/proc/net/tcp6`),
//! and, for callers, this process's own resident memory. Linux only.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;

use procfs::ProcError;
use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

use crate::endpoint;
use crate::error::InspectorError;

/// The SIGUSR1 bit of a signal mask such as `SigCgt` (signal `n` is bit `n - 1`).
const SIGUSR1_BIT: u64 = 1 << (nix::sys::signal::Signal::SIGUSR1 as u32 - 1);

/// This process's resident set size now and at its peak, in KiB, as the kernel reports them
/// (`VmRSS` and `VmHWM` in `/proc/self/status`, whose unit is written `kB` but is 1024 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssPeak {
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Highest resident set size so far (`VmHWM`), in KiB.
    pub peak_kib: u64,
}

/// Reads this process's current and peak resident set size from `/proc/self/status`.
///
/// Returns `None` where there is no such file or either field is missing (not Linux, a
/// restricted `/proc`); meant for optional diagnostics such as timing lines.
pub fn self_rss_peak() -> Option<RssPeak> {
    let status = Process::myself().ok()?.status().ok()?;
    Some(RssPeak {
        rss_kib: status.vmrss?,
        peak_kib: status.vmhwm?,
    })
}

/// Opens `/proc/PID`; a pid that does not exist (or does not fit an `i32`) is
/// [`InspectorError::NoSuchProcess`].
fn process(pid: u32) -> Result<Process, InspectorError> {
    let raw = i32::try_from(pid).map_err(|_| InspectorError::NoSuchProcess { pid })?;
    Process::new(raw).map_err(|e| proc_error(pid, &format!("/proc/{pid}"), e))
}

/// A `procfs` error about process `pid` as ours: a missing file means the process is gone,
/// anything else names the file (`fallback` when `procfs` does not say which).
fn proc_error(pid: u32, fallback: &str, e: ProcError) -> InspectorError {
    let path = |p: Option<PathBuf>| p.unwrap_or_else(|| PathBuf::from(fallback));
    let (path, source) = match e {
        ProcError::NotFound(_) => return InspectorError::NoSuchProcess { pid },
        // procfs keeps only the kind: rebuild the OS error, whose message is the usual one.
        ProcError::PermissionDenied(p) => (path(p), std::io::Error::from(nix::errno::Errno::EACCES)),
        ProcError::Io(source, p) => (path(p), source),
        ProcError::Incomplete(p) => (
            path(p),
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete contents"),
        ),
        other => (PathBuf::from(fallback), std::io::Error::other(other)),
    };
    InspectorError::ProcFs { pid, path, source }
}

/// True when the process has a handler for SIGUSR1 (`SigCgt` in `/proc/PID/status`).
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] (e.g. permission denied).
pub(crate) fn sigusr1_caught(pid: u32) -> Result<bool, InspectorError> {
    let status = process(pid)?
        .status()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/status"), e))?;
    Ok(status.sigcgt & SIGUSR1_BIT != 0)
}

/// The inodes of the sockets the process has open. Descriptors that close while we look are
/// skipped.
fn socket_inodes(pid: u32) -> Result<HashSet<u64>, InspectorError> {
    let fds = process(pid)?
        .fd()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/fd"), e))?;
    Ok(fds
        .flatten()
        .filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect())
}

/// The loopback addresses the process listens on (TCP, IPv4 and IPv6). The socket tables are
/// those of our own network namespace.
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] when `/proc/PID/fd` or a
/// socket table cannot be read (a kernel without IPv6 has no `tcp6` table: not an error).
pub(crate) fn listening_loopback_addrs(pid: u32) -> Result<BTreeSet<SocketAddr>, InspectorError> {
    Ok(listening_addrs(pid)?
        .into_iter()
        .filter(|addr| endpoint::is_loopback(addr.ip()))
        .collect())
}

/// Every TCP address the process listens on, loopback or not (as
/// [`listening_loopback_addrs`], unfiltered).
///
/// # Errors
///
/// As [`listening_loopback_addrs`].
pub fn listening_addrs(pid: u32) -> Result<BTreeSet<SocketAddr>, InspectorError> {
    let inodes = socket_inodes(pid)?;
    let mut addrs = BTreeSet::new();
    if inodes.is_empty() {
        return Ok(addrs);
    }
    let tables = [
        ("/proc/net/tcp", procfs::net::tcp as fn() -> _),
        ("/proc/net/tcp6", procfs::net::tcp6),
    ];
    for (path, read) in tables {
        let entries = match read() {
            Ok(entries) => entries,
            // No IPv6 support in this kernel.
            Err(ProcError::NotFound(_)) => continue,
            Err(e) => return Err(proc_error(pid, path, e)),
        };
        addrs.extend(
            entries
                .into_iter()
                .filter(|e| e.state == TcpState::Listen && inodes.contains(&e.inode))
                .map(|e| e.local_address),
        );
    }
    Ok(addrs)
}

/// True when `program` names a node binary (`node`, `nodejs`, `node20`, `node-v20.1.0`, …),
/// whose first argument can be `--inspect=…`. Anything else (`npm`, `npx`, a shell script)
/// gets the flag through `NODE_OPTIONS`.
pub(crate) fn is_node_binary(program: &OsStr) -> bool {
    let Some(name) = Path::new(program).file_name().and_then(OsStr::to_str) else {
        return false;
    };
    let name = name.strip_suffix(".exe").unwrap_or(name);
    match name.strip_prefix("node") {
        Some("") | Some("js") => true,
        Some(rest) => rest
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.' || c == '_'),
        None => false,
    }
}

/// True when `program` names Deno (`deno`, `/usr/bin/deno`), which takes
/// `--inspect=127.0.0.1:0` after its subcommand (`deno run --inspect=… server.ts`) and
/// speaks V8's inspector protocol.
pub(crate) fn is_deno_binary(program: &OsStr) -> bool {
    Path::new(program)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|n| n == "deno" || n == "deno.exe")
}

/// Whether any process we can see has `path` open (a link in some `/proc/PID/fd` points to
/// it): node may still be writing a snapshot there after leakhound was killed. Processes
/// whose descriptors we may not read are skipped (as root, none are).
pub fn file_is_open(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(all) = procfs::process::all_processes() else {
        return false;
    };
    all.flatten().any(|p| {
        p.fd().is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| matches!(&fd.target, FDTarget::Path(p) if *p == target))
        })
    })
}

/// What the process is: its executable (`/proc/PID/exe`) and whether it is node (the
/// executable's name is node's, or it maps `libnode`, as embedders do). Read without
/// running anything.
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] (e.g. permission denied).
pub(crate) fn node_executable(pid: u32) -> Result<(PathBuf, bool), InspectorError> {
    let p = process(pid)?;
    let exe = p.exe().map_err(|e| proc_error(pid, &format!("/proc/{pid}/exe"), e))?;
    let name = exe.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    if is_node_binary(&name) {
        return Ok((exe, true));
    }
    let maps = p.maps().map_err(|e| proc_error(pid, &format!("/proc/{pid}/maps"), e))?;
    let libnode = maps.iter().any(|m| match &m.pathname {
        procfs::process::MMapPath::Path(path) => path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("libnode.so")),
        _ => false,
    });
    Ok((exe, libnode))
}

/// The environment process `pid` was started with (`/proc/PID/environ`).
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] (e.g. permission denied).
pub(crate) fn environ(
    pid: u32,
) -> Result<std::collections::HashMap<std::ffi::OsString, std::ffi::OsString>, InspectorError> {
    process(pid)?
        .environ()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/environ"), e))
}

/// The inspector host the process asks for, when it names one that is not loopback: the
/// first `--inspect`, `--inspect-brk`, `--inspect-wait`, `--inspect-port` or `--debug-port`
/// setting in its command line (`/proc/PID/cmdline`) or its `NODE_OPTIONS`
/// (`/proc/PID/environ`) whose `HOST` (in `HOST:PORT` or `HOST`) is not `127.x.x.x`, `::1`
/// or `localhost`. Returns the setting as written. SIGUSR1 would open the inspector there.
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] (e.g. permission denied).
pub(crate) fn non_loopback_inspect_setting(pid: u32) -> Result<Option<String>, InspectorError> {
    let p = process(pid)?;
    let mut args = p
        .cmdline()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/cmdline"), e))?;
    let environ = p
        .environ()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/environ"), e))?;
    if let Some(options) = environ.get(std::ffi::OsStr::new("NODE_OPTIONS")) {
        args.extend(options.to_string_lossy().split_whitespace().map(str::to_owned));
    }
    Ok(non_loopback_setting(&args))
}

/// Whether process `pid` opens its inspector itself: its command line (`/proc/PID/cmdline`)
/// or its `NODE_OPTIONS` has `--inspect`, `--inspect-brk` or `--inspect-wait` (with or
/// without a value; `--inspect-port` alone only says where SIGUSR1 would open it).
///
/// # Errors
///
/// [`InspectorError::NoSuchProcess`], or [`InspectorError::ProcFs`] (e.g. permission denied).
pub(crate) fn opens_inspector_itself(pid: u32) -> Result<bool, InspectorError> {
    let p = process(pid)?;
    let mut args = p
        .cmdline()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/cmdline"), e))?;
    let environ = p
        .environ()
        .map_err(|e| proc_error(pid, &format!("/proc/{pid}/environ"), e))?;
    if let Some(options) = environ.get(std::ffi::OsStr::new("NODE_OPTIONS")) {
        args.extend(options.to_string_lossy().split_whitespace().map(str::to_owned));
    }
    Ok(args.iter().any(|a| {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        matches!(flag, "--inspect" | "--inspect-brk" | "--inspect-wait")
    }))
}

/// See [`non_loopback_inspect_setting`]; `args` are the command line's words.
fn non_loopback_setting(args: &[String]) -> Option<String> {
    const FLAGS: [&str; 5] = [
        "--inspect",
        "--inspect-brk",
        "--inspect-wait",
        "--inspect-port",
        "--debug-port",
    ];
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        // node's own options end at the script name; NODE_OPTIONS words come after it
        // in `args`, so keep scanning: a script argument spelled like an inspect flag is
        // refused too, which is the safe side.
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        if !FLAGS.contains(&flag) {
            continue;
        }
        // Only --inspect-port and --debug-port take their value as the next word.
        let value = match value {
            Some(v) => v,
            None if flag == "--inspect-port" || flag == "--debug-port" => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => continue,
            },
            None => continue,
        };
        let host = match value.rsplit_once(':') {
            // `[::]:9229`, `0.0.0.0:9229`, `::1` would split wrongly: brackets first.
            _ if value.starts_with('[') => value[1..].split(']').next().unwrap_or("").to_owned(),
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h.to_owned(),
            _ if value.chars().all(|c| c.is_ascii_digit()) => continue,
            _ => value.clone(),
        };
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(endpoint::is_loopback);
        if !loopback {
            return Some(
                arg.clone()
                    + &if arg.contains('=') {
                        String::new()
                    } else {
                        format!(" {value}")
                    },
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_opening_its_own_inspector_is_told_from_one_that_waits_for_sigusr1() {
        let opens = |flag: &str| {
            let mut child = std::process::Command::new("sh")
                .args(["-c", "sleep 5", flag])
                .spawn()
                .unwrap();
            // Until `exec` is done, /proc shows the test binary's command line.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline
                && !std::fs::read(format!("/proc/{}/cmdline", child.id())).is_ok_and(|c| c.starts_with(b"sh\0"))
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let r = opens_inspector_itself(child.id()).unwrap();
            let _ = child.kill();
            let _ = child.wait();
            r
        };
        assert!(opens("--inspect=127.0.0.1:0"));
        assert!(opens("--inspect-brk"));
        assert!(!opens("--inspect-port=0"));
        assert!(!opens("app.js"));
    }

    #[test]
    fn inspect_settings_on_other_hosts_are_found() {
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        for (cmd, want) in [
            (
                "node --inspect-port=0.0.0.0:9231 app.js",
                Some("--inspect-port=0.0.0.0:9231"),
            ),
            (
                "node --inspect-port 0.0.0.0:9231 app.js",
                Some("--inspect-port 0.0.0.0:9231"),
            ),
            ("node --inspect=[::]:9229 app.js", Some("--inspect=[::]:9229")),
            ("node --inspect=10.1.2.3 app.js", Some("--inspect=10.1.2.3")),
            (
                "node --inspect-brk=example.org:9229 app.js",
                Some("--inspect-brk=example.org:9229"),
            ),
            ("node --inspect=127.0.0.1:9229 app.js", None),
            ("node --inspect=localhost:9229 app.js", None),
            ("node --inspect=[::1]:9229 app.js", None),
            ("node --inspect-port=9231 app.js", None),
            ("node --inspect app.js", None),
            ("node app.js --port 0.0.0.0:80", None),
        ] {
            assert_eq!(non_loopback_setting(&words(cmd)).as_deref(), want, "{cmd}");
        }
    }
    use procfs::FromBufReadSI;
    use procfs::net::TcpNetEntries;

    fn listeners(table: &str) -> Vec<(SocketAddr, u64)> {
        let entries = TcpNetEntries::from_buf_read(table.as_bytes(), procfs::current_system_info()).unwrap();
        entries
            .0
            .into_iter()
            .filter(|e| e.state == TcpState::Listen)
            .map(|e| (e.local_address, e.inode))
            .collect()
    }

    /// procfs reads the kernel's native-endian hex words as the hand-written parser did.
    #[test]
    #[cfg(target_endian = "little")]
    fn reads_proc_net_tcp_like_before() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2405 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2405 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(
            listeners(tcp),
            vec![
                ("127.0.0.1:9221".parse().unwrap(), 123_456),
                ("0.0.0.0:3000".parse().unwrap(), 222),
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:2406 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2407 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 778 1 0000000000000000 100 0 0 10 0
";
        let rows = listeners(tcp6);
        assert_eq!(rows[0], ("[::1]:9222".parse().unwrap(), 777));
        assert_eq!(rows[1], ("[::ffff:127.0.0.1]:9223".parse().unwrap(), 778));
        assert!(endpoint::is_loopback(rows[1].0.ip()));
    }

    #[test]
    fn sigusr1_is_signal_ten() {
        assert_eq!(SIGUSR1_BIT, 1 << 9);
        // A node process's SigCgt.
        assert_ne!(0x0000_0001_0000_4602 & SIGUSR1_BIT, 0);
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
        for pid in [u32::MAX - 1, 1 << 23] {
            assert!(
                matches!(listening_loopback_addrs(pid), Err(InspectorError::NoSuchProcess { .. })),
                "{pid}"
            );
            assert!(
                matches!(sigusr1_caught(pid), Err(InspectorError::NoSuchProcess { .. })),
                "{pid}"
            );
        }
    }

    #[test]
    fn reads_our_own_memory() {
        let m = self_rss_peak().unwrap();
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib, "{m:?}");
    }
}
