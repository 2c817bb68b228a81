//! `--attach` leaves a process as it found it and never opens an inspector the network can
//! reach: the inspector SIGUSR1 opened is closed again when leakhound leaves; a process
//! whose settings put the inspector on a non-loopback address is refused before any signal
//! (run inside a private network namespace, loopback only, so that a failure cannot expose
//! anything); a process that is not node is refused.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

/// The TCP ports `pid` listens on, from `ss` (iproute2).
fn listening_ports(pid: u32) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss (iproute2) is needed by this test");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

/// A node process killed when dropped, so a failing assertion leaves nothing running.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(script: &str, extra: &[&str]) -> Node {
    let child = Command::new("node")
        .args(extra)
        .args(["-e", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("start node");
    // Let node install its SIGUSR1 handler.
    std::thread::sleep(Duration::from_millis(700));
    Node(child)
}

#[test]
fn the_inspector_opened_by_attach_is_closed_when_leakhound_leaves() {
    let mut app = node("setInterval(() => {}, 1000)", &["--inspect-port=0"]);
    let pid = app.0.id();
    assert!(listening_ports(pid).is_empty(), "node starts with no listener");
    let out = Command::new(BIN)
        .args(["--quiet", "watch", "--json", "--duration", "2", "--sample-ms", "200"])
        .args(["--attach", &pid.to_string()])
        .output()
        .expect("run leakhound");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "a verdict, not an error: {stderr}"
    );
    // node closes the server right after our session ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ports = listening_ports(pid);
    while !ports.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ports = listening_ports(pid);
    }
    let alive = app.0.try_wait().expect("try_wait").is_none();
    drop(app);
    assert!(alive, "an attached app is never stopped");
    assert!(
        ports.is_empty(),
        "the inspector leakhound opened is still listening on {ports:?}"
    );
}

#[test]
fn a_process_that_asks_for_a_non_loopback_inspector_is_refused() {
    // A private network namespace with only loopback: whatever happens, nothing is reachable.
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -n` (root, util-linux): CI runs as root"
    );
    let script = format!(
        "ip link set lo up; node --inspect-port=0.0.0.0:9231 -e 'setInterval(() => {{}}, 1000)' & app=$!; sleep 0.7; \
         {BIN} --quiet watch --duration 2 --attach $app; echo \"exit=$?\"; \
         ss -Hltnp | grep \"pid=$app,\" || echo no-listener; kill $app"
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("run in a network namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("exit=2"), "refused with exit 2: {stdout}\n{stderr}");
    assert!(
        stderr.contains("non-loopback address (--inspect-port=0.0.0.0:9231)"),
        "says why: {stderr}"
    );
    assert!(stdout.contains("no-listener"), "no inspector was opened: {stdout}");
}

#[test]
fn a_process_that_is_not_node_is_refused() {
    // A Python process that catches SIGUSR1 (the signal alone would not tell it from node).
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import signal, time\nsignal.signal(signal.SIGUSR1, lambda *a: print('got SIGUSR1', flush=True))\ntime.sleep(30)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new(BIN)
        .args(["--quiet", "watch", "--duration", "1", "--attach", &py.id().to_string()])
        .output()
        .expect("run leakhound");
    let _ = py.kill();
    let got = py.wait_with_output().expect("python output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not node"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&got.stdout).contains("got SIGUSR1"),
        "no signal was sent"
    );
}

#[test]
fn a_series_of_snapshots_in_one_session_can_be_compared_and_separate_runs_are_explained() {
    // One Order kept every 20 ms: a leak between any two snapshots.
    let app = node(
        "class Order { constructor(n) { this.n = n } }; const orders = []; let n = 0; \
         setInterval(() => orders.push(new Order(n++)), 20)",
        // SIGUSR1's inspector on a port of its own: 9229 may be taken on a shared machine.
        &["--inspect-port=0"],
    );
    let pid = app.0.id().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = format!("{}/", dir.path().join("series").display());
    let series = Command::new(BIN)
        .args([
            "snapshot",
            "--pid",
            &pid,
            "--count",
            "3",
            "--interval",
            "1s",
            "-o",
            &folder,
        ])
        .output()
        .expect("run leakhound snapshot");
    let stdout = String::from_utf8_lossy(&series.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&series.stderr).into_owned();
    let files: Vec<&str> = stdout.lines().filter_map(|l| l.split(" (").next()).collect();
    let ports = listening_ports(app.0.id());
    let single = Command::new(BIN)
        .args(["snapshot", "--pid", &pid, "-o"])
        .arg(dir.path().join("alone.heapsnapshot"))
        .output()
        .expect("run leakhound snapshot");
    drop(app);
    assert_eq!(series.status.code(), Some(0), "{stderr}");
    assert_eq!(files.len(), 3, "one line per snapshot: {stdout}");
    for (n, f) in files.iter().enumerate() {
        assert!(
            f.contains(&format!("/series/Heap-{pid}-")) && f.ends_with(&format!("-{}.heapsnapshot", n + 1)),
            "{f}"
        );
    }
    assert!(
        stdout.lines().all(|l| l.contains(" MB, ") || l.contains(" kB, ")),
        "sizes in MB as elsewhere, not raw bytes: {stdout}"
    );
    assert!(
        stderr.contains(&format!("closed the inspector it opened in pid {pid}")),
        "{stderr}"
    );
    assert!(ports.is_empty(), "the inspector is closed: {ports:?}");
    // The series compares: a leak (exit 1), not "different processes" (exit 2).
    let leaks = Command::new(BIN)
        .args(["--quiet", "leaks"])
        .args(&files)
        .output()
        .expect("run leakhound leaks");
    let leaks_err = String::from_utf8_lossy(&leaks.stderr);
    assert_eq!(leaks.status.code(), Some(1), "{leaks_err}");
    assert!(String::from_utf8_lossy(&leaks.stdout).contains("Order"));
    // A snapshot of a later run does not: the message says why and what to do.
    assert_eq!(
        single.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    assert!(
        String::from_utf8_lossy(&single.stderr).contains("--count 3 --interval 60s"),
        "a single snapshot points to series"
    );
    let diff = Command::new(BIN)
        .args(["--quiet", "diff", files[2]])
        .arg(dir.path().join("alone.heapsnapshot"))
        .output()
        .expect("run leakhound diff");
    let diff_err = String::from_utf8_lossy(&diff.stderr);
    assert_eq!(diff.status.code(), Some(2), "{diff_err}");
    assert!(
        diff_err.contains("object ids were reset") && diff_err.contains("leakhound snapshot --count N"),
        "{diff_err}"
    );
}

#[test]
fn a_hunt_of_a_running_app_says_it_attached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = format!("require('http').createServer((q, s) => s.end('ok')).listen({port}, '127.0.0.1')");
    let mut app = node(&server, &["--inspect-port=0"]);
    let pid = app.0.id();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args([
            "hunt",
            "--json",
            "--requests",
            "200",
            "--warmup",
            "50",
            "--calm-down-ms",
            "200",
        ])
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--attach",
            &pid.to_string(),
        ])
        .arg("--out-dir")
        .arg(dir.path().join("snapshots"))
        .output()
        .expect("run leakhound hunt");
    let alive = app.0.try_wait().expect("try_wait").is_none();
    drop(app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(
        stderr.contains(&format!("leakhound: attached to pid {pid}\n")),
        "{stderr}"
    );
    assert!(!stderr.contains("app started"), "it did not start the app: {stderr}");
    assert!(alive, "an attached app is never stopped");
}
