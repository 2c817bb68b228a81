//! `leakhound watch` on apps of several isolates, against real `node` (the app:
//! `tests/watch_apps/family.js`): a started `node:cluster` app whose two workers leak (each worker its own isolate, its own leak
//! verdict, its own series on `/metrics`), a server whose leak lives in a `worker_threads`
//! Worker, a cluster watched with `--attach` (its workers reached through SIGUSR1; SIGTERM
//! detaches, every process left running with its inspector closed again), and a cluster whose worker is
//! replaced during the watch (reported ended, `leakhound_up` 0, the replacement watched as
//! a new isolate); evidence capture of a leaking worker thread (snapshots of the thread's
//! own heap, through its tunnelled session); `--main-only`; one live row per isolate on a
//! terminal. Load is driven by the tests, bounded in count and time; each watch runs a
//! bounded `--duration`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod agent_support;

use agent_support::{Agent, BIN, Running, http_get};

/// A test app of `tests/watch_apps`.
fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/watch_apps")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Requests sent to `127.0.0.1:port` on a thread of their own, one connection each, until
/// stopped, `max` were answered, or a minute passed.
struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Load {
    fn start(port: u16, max: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut answered = 0;
            while !flag.load(Ordering::SeqCst) && answered < max && Instant::now() < deadline {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.starts_with("HTTP/1.1 200") {
                    answered += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            answered
        });
        Load { stop, thread }
    }

    /// Stops it; the requests answered.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or(0)
    }
}

/// Waits (at most 20 s) until something answers on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(state, ppid, pgrp)` of a running process from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) STATE PPID PGRP …`; comm may contain spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(1)?.parse().ok()?,
        fields.get(2)?.parse().ok()?,
    ))
}

/// Running and not a zombie.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, ..)| state != 'Z' && state != 'X')
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// The pids in process group `pgid` still running.
fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| stat(*p).is_some_and(|(state, _, g)| state != 'Z' && g == pgid))
        .collect()
}

/// The running children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| stat(*p).is_some_and(|(state, ppid, _)| state != 'Z' && ppid == pid))
        .collect()
}

/// The TCP ports `pid` listens on, but `except`, from `ss` (iproute2).
fn listening_ports(pid: u32, except: u16) -> Vec<String> {
    let out = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss (iproute2) is needed by this test");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .filter(|a| !a.ends_with(&format!(":{except}")))
        .collect()
}

/// Waits (at most 5 s) until nothing of process group `pgid` runs; the ones left.
fn left_of_group(pgid: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pgid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    group_members(pgid)
}

/// Every series of `name` in an exposition page (Prometheus text format): its labels and
/// value.
fn series(page: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut found = Vec::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let mut map = BTreeMap::new();
        let mut chars = labels.chars().peekable();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            assert_eq!(chars.next(), Some('"'), "a quoted value in {line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            map.insert(key.trim_start_matches(',').to_owned(), value);
            if chars.peek() == Some(&',') {
                chars.next();
            }
        }
        let value: f64 = value.trim().parse().unwrap_or_else(|_| panic!("a number in {line}"));
        found.push((map, value));
    }
    found
}

/// The watch's documents of one kind of isolate.
fn of_kind<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["targets"]
        .as_array()
        .map(|t| t.iter().filter(|d| d["isolate"]["kind"] == kind).collect())
        .unwrap_or_default()
}

fn pid_file_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|p| p.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "the app wrote no pid");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_started_cluster_is_watched_per_worker_and_each_leaking_worker_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let port = free_port();
    let family = app("family.js");
    let mut agent = Agent::start_with_env(
        &[
            "--json",
            "--duration",
            "14",
            "--sample-ms",
            "200",
            "--gc-interval-ms",
            "300",
            "--warmup",
            "1",
            "--",
            "node",
            family.to_str().unwrap(),
        ],
        &[
            ("PORT", port.to_string()),
            ("PID_FILE", pid_file.display().to_string()),
            ("WORKERS", "2".into()),
        ],
    );
    let primary = pid_file_pid(&pid_file);
    wait_for_port(port);
    let load = Load::start(port, 20_000);
    // While it runs: one set of series per isolate, each with its own pid.
    let page = agent.scrape_until(Duration::from_secs(12), |p| {
        series(p, "leakhound_isolate_info")
            .iter()
            .filter(|(l, _)| l["kind"] == "cluster_worker")
            .count()
            == 2
            && series(p, "leakhound_memory_bytes").len() >= 15
    });
    let info = series(&page, "leakhound_isolate_info");
    let workers: BTreeMap<String, String> = info
        .iter()
        .filter(|(l, _)| l["kind"] == "cluster_worker")
        .map(|(l, _)| (l["worker_id"].clone(), l["pid"].clone()))
        .collect();
    assert_eq!(
        workers.keys().map(String::as_str).collect::<Vec<_>>(),
        ["1", "2"],
        "{page}"
    );
    assert!(
        info.iter()
            .any(|(l, _)| l["kind"] == "main" && l["pid"] == primary.to_string()),
        "{page}"
    );
    let up = series(&page, "leakhound_up");
    for pid in workers.values().chain([&primary.to_string()]) {
        let mine: Vec<_> = up.iter().filter(|(l, _)| &l["pid"] == pid).collect();
        assert_eq!(mine.len(), 1, "one leakhound_up series for pid {pid}: {page}");
        assert_eq!(mine[0].0["thread_id"], "", "{page}");
        assert_eq!(mine[0].1, 1.0, "{page}");
        let heap = series(&page, "leakhound_memory_bytes")
            .into_iter()
            .filter(|(l, _)| &l["pid"] == pid && l["kind"] == "heap_used")
            .count();
        assert_eq!(heap, 1, "pid {pid}'s own heap_used: {page}");
    }
    let out = agent
        .run
        .0
        .take()
        .expect("the agent")
        .wait_with_output()
        .expect("the agent's output");
    let answered = load.stop();
    let stderr = agent.stderr_lines().join("\n");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{stderr}"));
    let ctx = format!("{doc:#}\n--- stderr ---\n{stderr}");
    assert!(answered > 500, "the load reached the workers: {answered}\n{ctx}");
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    assert_eq!(doc["verdict"], "leak", "{ctx}");
    assert_eq!(of_kind(&doc, "main").len(), 1, "{ctx}");
    assert!(
        doc["reason"].as_str().unwrap_or("").starts_with("cluster worker "),
        "the leak is named by its worker: {ctx}"
    );
    assert_eq!(doc["isolate"]["kind"], "main", "the app's own process first: {ctx}");
    assert_eq!(doc["pid"], primary, "{ctx}");
    let ws = of_kind(&doc, "cluster_worker");
    assert_eq!(ws.len(), 2, "{ctx}");
    for w in ws {
        let id = w["isolate"]["worker_id"].as_u64().expect("a worker id");
        assert_eq!(
            w["isolate"]["name"],
            format!("cluster worker {id}, pid {}", w["pid"]),
            "{ctx}"
        );
        assert_eq!(w["verdict"], "leak", "worker {id} leaks: {ctx}");
        assert!(w["growing"].as_array().unwrap().iter().any(|g| g == "js_heap"), "{ctx}");
        assert_eq!(w["ended"], "time up", "{ctx}");
    }
    // Piped, each isolate's line names it.
    assert!(
        stderr.contains("leakhound: watching cluster worker 1, pid ")
            && stderr.contains("leakhound: watching cluster worker 2, pid "),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("cluster worker 2, pid ") && l.contains(": t=")),
        "{stderr}"
    );
    assert_eq!(left_of_group(primary), Vec::<u32>::new(), "left behind\n{ctx}");
}

#[test]
fn a_leak_in_a_worker_thread_is_watched_in_the_threads_own_isolate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "--quiet",
            "watch",
            "--json",
            "--duration",
            "10",
            "--sample-ms",
            "200",
            "--gc-interval-ms",
            "300",
            "--warmup",
            "1",
            "--",
            "node",
        ])
        .arg(app("family.js"))
        .env("WORKERS", "0")
        .env("THREAD", "1")
        .env("PORT", port.to_string())
        .env("PID_FILE", &pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound");
    let run = Running(Some(child));
    wait_for_port(port);
    let load = Load::start(port, 20_000);
    let out = run.output();
    let answered = load.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{stderr}"));
    let ctx = format!("{doc:#}\n--- stderr ---\n{stderr}");
    assert!(answered > 300, "{answered}\n{ctx}");
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let main = pid_file_pid(&pid_file);
    let threads = of_kind(&doc, "worker_thread");
    assert_eq!(threads.len(), 1, "{ctx}");
    let t = threads[0];
    assert_eq!(t["pid"], main, "the thread lives in the app's process: {ctx}");
    assert_eq!(t["isolate"]["thread_id"], 1, "{ctx}");
    assert_eq!(t["isolate"]["name"], format!("worker thread 1 of pid {main}"), "{ctx}");
    assert_eq!(t["verdict"], "leak", "{ctx}");
    assert!(
        t["growing"].as_array().unwrap().iter().any(|g| g == "js_heap"),
        "the thread's own heap grows: {ctx}"
    );
    assert_eq!(doc["verdict"], "leak", "{ctx}");
    assert_eq!(of_kind(&doc, "main").len(), 1, "{ctx}");
    assert!(
        doc["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("worker thread 1 of pid {main}: ")),
        "{ctx}"
    );
    assert_eq!(left_of_group(main), Vec::<u32>::new(), "left behind\n{ctx}");
}

#[test]
fn an_attached_cluster_is_watched_per_worker_and_sigterm_leaves_every_process_running_with_its_inspector_closed() {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    // SIGUSR1 opens the inspector on --inspect-port: 0 (a free port), and the app gives its
    // workers the same (inspectPort 0); none is open before leakhound comes.
    let node = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("family.js"))
        .env("PORT", port.to_string())
        .env("WORKERS", "2")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let node = Running(Some(node));
    let primary = node.pid();
    let result = std::panic::catch_unwind(|| {
        wait_for_port(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut workers = children_of(primary);
        while workers.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            workers = children_of(primary);
        }
        assert_eq!(workers.len(), 2, "two workers run");
        // Let node install its SIGUSR1 handlers.
        std::thread::sleep(Duration::from_millis(500));
        let everyone: Vec<u32> = workers.iter().copied().chain([primary]).collect();
        for pid in &everyone {
            assert_eq!(listening_ports(*pid, port), Vec::<String>::new(), "no inspector yet");
        }
        let agent = Command::new(BIN)
            // No --duration: the agent runs until SIGTERM, which detaches.
            .args(["--quiet", "watch", "--json", "--duration", "60", "--sample-ms", "300"])
            .args(["--attach", &primary.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leakhound");
        let mut agent = Running(Some(agent));
        let load = Load::start(port, 5_000);
        // Each worker's inspector is opened while the watch runs; a few seconds of samples,
        // then SIGTERM.
        let mut opened = BTreeSet::new();
        let started = Instant::now();
        while agent.alive() && started.elapsed() < Duration::from_secs(30) {
            for w in &workers {
                if !listening_ports(*w, port).is_empty() {
                    opened.insert(*w);
                }
            }
            if opened.len() == workers.len() && started.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let term = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &agent.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SIGTERM to the agent");
        let out = agent.output();
        let detached_in = term.elapsed();
        load.stop();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{stderr}"));
        let ctx = format!("{doc:#}\n--- stderr ---\n{stderr}");
        assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "a verdict: {ctx}");
        assert_eq!(doc["pid"], primary, "{ctx}");
        let ws = of_kind(&doc, "cluster_worker");
        let seen: BTreeSet<u64> = ws.iter().filter_map(|w| w["pid"].as_u64()).collect();
        let want: BTreeSet<u64> = workers.iter().map(|w| u64::from(*w)).collect();
        assert_eq!(seen, want, "every worker is watched: {ctx}");
        for w in &ws {
            assert!(
                w["memory"].as_array().is_some_and(|m| m.len() >= 5),
                "the worker's own samples: {ctx}"
            );
            assert_eq!(w["ended"], "stopped", "{ctx}");
        }
        assert!(
            detached_in < Duration::from_secs(10),
            "SIGTERM detached in {detached_in:?}"
        );
        assert_eq!(
            opened,
            workers.iter().copied().collect::<BTreeSet<_>>(),
            "their inspectors were opened (SIGUSR1): {ctx}"
        );
        // Every process runs on, its inspector closed again.
        let deadline = Instant::now() + Duration::from_secs(5);
        let open = || {
            everyone
                .iter()
                .flat_map(|p| listening_ports(*p, port))
                .collect::<Vec<_>>()
        };
        while !open().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(open(), Vec::<String>::new(), "inspectors left open: {ctx}");
        for pid in &everyone {
            assert!(alive(*pid), "pid {pid} was stopped: {ctx}");
        }
        // And it still serves.
        let load = Load::start(port, 5);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !load.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(load.stop(), 5, "the app still answers");
    });
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{primary}")])
        .status();
    drop(node);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_replaced_worker_is_reported_ended_and_its_replacement_is_watched_as_a_new_isolate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let port = free_port();
    let family = app("family.js");
    let mut agent = Agent::start_with_env(
        &[
            "--quiet",
            "--json",
            "--duration",
            "9",
            "--sample-ms",
            "200",
            "--gc-interval-ms",
            "500",
            "--warmup",
            "0.5",
            "--",
            "node",
            family.to_str().unwrap(),
        ],
        &[
            ("PORT", port.to_string()),
            ("PID_FILE", pid_file.display().to_string()),
            ("WORKERS", "2".into()),
            ("REPLACE_AFTER_MS", "2500".into()),
            ("THREAD", "1".into()),
        ],
    );
    let primary = pid_file_pid(&pid_file);
    // Worker 1 exits: its series (its thread's too) stay with leakhound_up 0 beside its
    // replacement's; each worker's thread has series of its own (`thread_id` 1).
    let page = agent.scrape_until(Duration::from_secs(8), |p| {
        let info = series(p, "leakhound_isolate_info");
        let up = series(p, "leakhound_up");
        let pid_of = |id: &str| {
            info.iter()
                .find(|(l, _)| l["worker_id"] == id)
                .map(|(l, _)| l["pid"].clone())
        };
        let up_of = |id: &str, thread: &str| {
            let pid = pid_of(id)?;
            up.iter()
                .find(|(u, _)| u["pid"] == pid && u["thread_id"] == thread)
                .map(|(_, v)| *v)
        };
        up_of("1", "") == Some(0.0)
            && up_of("1", "1") == Some(0.0)
            && up_of("3", "") == Some(1.0)
            && up_of("3", "1") == Some(1.0)
            && up_of("2", "1") == Some(1.0)
    });
    let threads = series(&page, "leakhound_isolate_info")
        .into_iter()
        .filter(|(l, _)| l["kind"] == "worker_thread" && l["thread_id"] == "1")
        .count();
    assert_eq!(threads, 3, "one thread in each of workers 1, 2 and 3: {page}");
    let (status, body) = http_get(agent.addr, "/health", "application/json");
    let health: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(status, 200, "a replaced worker is not critical: {health:#}\n{page}");
    let gone = health["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["up"] == false && t["kind"] == "cluster_worker"))
        .unwrap_or_else(|| panic!("the ended worker is listed: {health:#}"));
    assert_eq!(gone["kind"], "cluster_worker", "{health:#}");
    assert_eq!(gone["status"], "ok", "{health:#}");
    let out = agent
        .run
        .0
        .take()
        .expect("the agent")
        .wait_with_output()
        .expect("the agent's output");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}"));
    let ctx = format!("{doc:#}\n{page}");
    let ws = of_kind(&doc, "cluster_worker");
    let by_id = |id: u64| {
        ws.iter()
            .find(|w| w["isolate"]["worker_id"] == id)
            .unwrap_or_else(|| panic!("cluster worker {id}: {ctx}"))
    };
    assert_eq!(by_id(1)["ended"], "the process exited", "{ctx}");
    assert_eq!(by_id(2)["ended"], "time up", "{ctx}");
    let new = by_id(3);
    assert_eq!(new["ended"], "time up", "{ctx}");
    assert!(
        new["isolate"]["joined_ms"].as_f64().unwrap_or(0.0) > 2000.0,
        "the replacement joined later: {ctx}"
    );
    assert_ne!(new["pid"], by_id(1)["pid"], "{ctx}");
    let gone_thread = of_kind(&doc, "worker_thread")
        .into_iter()
        .find(|t| t["pid"] == by_id(1)["pid"])
        .unwrap_or_else(|| panic!("worker 1's thread: {ctx}"));
    assert!(
        gone_thread["ended"]
            .as_str()
            .is_some_and(|e| e == "its process exited" || e == "the worker thread exited"),
        "{ctx}"
    );
    assert_eq!(left_of_group(primary), Vec::<u32>::new(), "left behind\n{ctx}");
}

#[test]
fn evidence_of_a_leaking_worker_thread_is_taken_from_the_threads_own_heap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let captures = dir.path().join("evidence");
    let pid_file = dir.path().join("app.pid");
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "watch",
            "--json",
            "--duration",
            "18",
            "--sample-ms",
            "200",
            "--gc-interval-ms",
            "300",
            "--warmup",
            "0.5",
            "--capture-after",
            "1s",
            "--captures",
            "3",
            "--capture-interval",
            "1s",
            "--capture-dir",
        ])
        .arg(&captures)
        .args(["--", "node"])
        .arg(app("family.js"))
        .env("WORKERS", "0")
        .env("THREAD", "1")
        .env("PORT", port.to_string())
        .env("PID_FILE", &pid_file)
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound");
    let run = Running(Some(child));
    wait_for_port(port);
    let load = Load::start(port, 40_000);
    let out = run.output();
    load.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let main = pid_file_pid(&pid_file);
    let episodes: Vec<PathBuf> = std::fs::read_dir(&captures)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let thread_episode = episodes
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("-pid{main}-thread1")))
        })
        .unwrap_or_else(|| panic!("an episode of worker thread 1: {episodes:?}\n{stderr}"));
    let report: Value =
        serde_json::from_slice(&std::fs::read(thread_episode.join("report.json")).expect("report.json"))
            .expect("the episode's JSON");
    assert_eq!(report["verdict"], "leak", "{report:#}\n{stderr}");
    // The thread's Map of Jobs: Jobs exist only in the thread's heap, so the snapshots are
    // of it.
    let top = &report["clusters"][0];
    assert_eq!(top["root_class"], "Job", "{report:#}\n{stderr}");
    assert_eq!(top["holder_class"], "Map", "{report:#}\n{stderr}");
    // Named by the variable holding it (a block-scoped `const jobs`), not by the
    // MessagePort listener the trace reaches it through (`Map.{12}.next.listener`).
    assert_eq!(top["holder"], "jobs", "{report:#}\n{stderr}");
    assert_eq!(top["pattern"], "unbounded_collection", "{report:#}\n{stderr}");
    assert_eq!(
        report["snapshots"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["status"] == "taken").count()),
        Some(3),
        "{report:#}"
    );
    assert!(
        stderr.contains(&format!("evidence: worker thread 1 of pid {main}: ")),
        "{stderr}"
    );
    assert_eq!(left_of_group(main), Vec::<u32>::new(), "left behind\n{stderr}");
}

#[test]
fn main_only_watches_the_apps_own_process_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let port = free_port();
    let out = Command::new(BIN)
        .args([
            "--quiet",
            "watch",
            "--json",
            "--main-only",
            "--duration",
            "3",
            "--sample-ms",
            "200",
            "--",
            "node",
        ])
        .arg(app("family.js"))
        .env("PORT", port.to_string())
        .env("PID_FILE", &pid_file)
        .output()
        .expect("run leakhound");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}"));
    assert_eq!(doc["isolate"]["kind"], "main", "{doc:#}");
    assert!(doc.get("targets").is_none(), "no other isolate: {doc:#}");
    assert_eq!(left_of_group(pid_file_pid(&pid_file)), Vec::<u32>::new());
}

#[test]
fn on_a_terminal_each_isolate_has_a_row_of_its_own_naming_it() {
    let command = format!(
        "{BIN} watch --duration 5 --sample-ms 200 --gc-interval-ms 300 --warmup 0.5 -- node {}",
        app("family.js").display()
    );
    let port = free_port();
    // `script` (util-linux) gives the watch a terminal for stdout.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("PORT", port.to_string())
        .env("THREAD", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    for row in [
        "cluster worker 1, pid ",
        "cluster worker 2, pid ",
        "worker thread 1 of pid ",
    ] {
        assert!(
            screen.lines().any(|l| l.contains(row) && l.contains("  heap ")),
            "a row for {row}: {screen}"
        );
    }
    assert!(screen.contains("  heap ") && screen.contains("floor point"), "{screen}");
}

/// `--attach` of a cluster's primary and of one of its workers: the worker is one target,
/// not also found again as the primary's child, and the inspector node opened in it when
/// the primary's was opened is closed again too.
#[test]
fn attaching_a_primary_and_one_of_its_workers_watches_each_once_and_leaves_no_inspector_open() {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let node = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("family.js"))
        .env("PORT", port.to_string())
        .env("WORKERS", "2")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let node = Running(Some(node));
    let primary = node.pid();
    let result = std::panic::catch_unwind(|| {
        wait_for_port(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut workers = children_of(primary);
        while workers.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            workers = children_of(primary);
        }
        workers.sort_unstable();
        assert_eq!(workers.len(), 2, "two workers run");
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new(BIN)
            .args(["--quiet", "watch", "--json", "--duration", "3", "--sample-ms", "300"])
            .args(["--attach", &primary.to_string(), "--attach", &workers[0].to_string()])
            .output()
            .expect("run leakhound");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}"));
        let pids: Vec<u64> = doc["targets"]
            .as_array()
            .map(|t| t.iter().filter_map(|d| d["pid"].as_u64()).collect())
            .unwrap_or_default();
        let mut sorted = pids.clone();
        sorted.sort_unstable();
        let mut want = vec![u64::from(primary), u64::from(workers[0]), u64::from(workers[1])];
        want.sort_unstable();
        assert_eq!(sorted, want, "each process once: {doc:#}");
        let everyone: Vec<u32> = workers.iter().copied().chain([primary]).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        let open = || {
            everyone
                .iter()
                .flat_map(|p| listening_ports(*p, port))
                .collect::<Vec<_>>()
        };
        while !open().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(open(), Vec::<String>::new(), "inspectors left open: {doc:#}");
        assert!(everyone.iter().all(|p| alive(*p)), "every process runs on");
    });
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{primary}")])
        .status();
    drop(node);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The discovery `hunt` shares with `watch`: a hunt attached to a cluster's primary follows
/// its workers, whose inspectors node opened when the primary's was, and closes them again:
/// every process runs on with no inspector listening.
#[test]
fn a_hunt_attached_to_a_cluster_closes_the_inspectors_it_caused_to_open() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let node = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("family.js"))
        .env("PORT", port.to_string())
        .env("WORKERS", "2")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let node = Running(Some(node));
    let primary = node.pid();
    let result = std::panic::catch_unwind(|| {
        wait_for_port(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut workers = children_of(primary);
        while workers.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            workers = children_of(primary);
        }
        assert_eq!(workers.len(), 2, "two workers run");
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "hunt",
                "--json",
                "--requests",
                "300",
                "--warmup",
                "100",
                "--calm-down-ms",
                "300",
            ])
            .args(["--attach", &primary.to_string()])
            .args(["--url", &format!("http://127.0.0.1:{port}/"), "--out-dir"])
            .arg(dir.path().join("snapshots"))
            .output()
            .expect("run leakhound");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let ctx = format!("{doc:#}\n{}", String::from_utf8_lossy(&out.stderr));
        let workers_followed = doc["processes"]
            .as_array()
            .map(|p| p.iter().filter(|p| p["kind"] == "cluster_worker").count());
        assert_eq!(workers_followed, Some(2), "{ctx}");
        assert_eq!(doc["verdict"], "leak", "both workers keep every Session: {ctx}");
        // Each worker's leak is named by the variable holding the Map (a block-scoped
        // `const sessions`), not by the server's timer and `request` listener the trace
        // reaches it through (`Timeout._onTimeout.{bound_this}._events.request`).
        for w in doc["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["kind"] == "cluster_worker")
        {
            let top = &w["clusters"][0];
            assert_eq!(
                (top["holder"].as_str(), top["pattern"].as_str()),
                (Some("sessions"), Some("unbounded_collection")),
                "{}: {ctx}",
                w["name"]
            );
        }
        let everyone: Vec<u32> = workers.iter().copied().chain([primary]).collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        let open = || {
            everyone
                .iter()
                .flat_map(|p| listening_ports(*p, port))
                .collect::<Vec<_>>()
        };
        while !open().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(open(), Vec::<String>::new(), "inspectors left open: {ctx}");
        assert!(everyone.iter().all(|p| alive(*p)), "an attached app is never stopped");
    });
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{primary}")])
        .status();
    drop(node);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
