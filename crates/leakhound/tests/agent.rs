//! `leakhound watch` as a production agent: several running processes in one agent, floor
//! points from the apps' own full GCs (no forced GC when attached), SIGTERM detaches and
//! leaves every app running with its inspector closed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn app(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agent_apps")
        .join(name)
}

/// A process killed when dropped, so a failing assertion leaves nothing running.
struct Running(Option<Child>);

impl Running {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Still running.
    fn alive(&mut self) -> bool {
        self.0.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits for it to end by itself and returns what it wrote.
    fn output(mut self) -> std::process::Output {
        self.0.take().expect("a child").wait_with_output().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `node --inspect-port=0 FILE`: SIGUSR1 opens its inspector on a free loopback port.
fn node(file: &str) -> Running {
    let child = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app(file))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start node");
    // Let node install its SIGUSR1 handler.
    std::thread::sleep(Duration::from_millis(700));
    Running(Some(child))
}

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

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "SIGTERM to {pid}");
}

#[test]
fn one_agent_watches_several_processes_from_their_own_gcs_and_sigterm_leaves_them_running() {
    let mut a = node("churn.js");
    let mut b = node("churn.js");
    let (pa, pb) = (a.pid(), b.pid());
    let agent = Command::new(BIN)
        .args(["--quiet", "watch", "--json", "--sample-ms", "300", "--warmup", "0"])
        .args(["--attach", &pa.to_string(), "--attach", &pb.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let agent = Running(Some(agent));
    std::thread::sleep(Duration::from_secs(7));
    sigterm(agent.pid());
    let out = agent.output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "a verdict, not an error: {:?} {stderr}",
        out.status
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}: {stderr}"));
    let targets = doc["targets"].as_array().expect("one document per process");
    assert_eq!(targets.len(), 2, "{doc:#}");
    for (t, pid) in targets.iter().zip([pa, pb]) {
        assert_eq!(t["pid"], pid);
        assert_eq!(t["ended"], "stopped", "{t:#}");
        // No forced GC: every floor point is one of the app's own full GCs.
        let floors = t["memory"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["after_full_gc"] == true)
            .count();
        assert!(floors >= 2, "the app's own full GCs give floor points: {t:#}");
    }
    // Both apps run on, their inspectors closed again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ports = (listening_ports(pa), listening_ports(pb));
    while !(ports.0.is_empty() && ports.1.is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        ports = (listening_ports(pa), listening_ports(pb));
    }
    assert!(a.alive() && b.alive(), "SIGTERM never stops an attached app");
    assert!(
        ports.0.is_empty() && ports.1.is_empty(),
        "inspectors still open: {ports:?}"
    );
}
