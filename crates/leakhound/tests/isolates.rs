//! `hunt` on apps of several isolates, against real `node`: a `node:cluster` server whose
//! two workers leak (and its fixed twin), a cluster whose worker is replaced during the
//! hunt, and a server whose leak lives in a `worker_threads` Worker (and its fixed twin).
//! Each asserts the verdict, the isolate it names and the holder inside it, and that no
//! process of the app's process group is left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
/// A hunt that runs longer than this is killed and fails its test.
const LIMIT: Duration = Duration::from_secs(150);

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps").join(name)
}

struct Run {
    code: Option<i32>,
    doc: Value,
    stderr: String,
    app_pid: Option<u32>,
    elapsed: Duration,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit {:?}\n--- json ---\n{}\n--- stderr ---\n{}",
            self.code,
            serde_json::to_string_pretty(&self.doc).unwrap_or_default(),
            self.stderr
        )
    }

    fn process(&self, pred: impl Fn(&Value) -> bool) -> Vec<&Value> {
        self.doc["processes"]
            .as_array()
            .map(|a| a.iter().filter(|p| pred(p)).collect())
            .unwrap_or_default()
    }
}

/// The pids in process group `pgid` that are still running (zombies are gone).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) STATE PPID PGRP …`; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            found.push(pid);
        }
    }
    found
}

/// Runs `leakhound hunt --json … -- node APP` with `env`, bounded by [`LIMIT`].
fn hunt(app_file: &str, requests: u64, env: &[(&str, &str)]) -> Run {
    hunt_with(&["node".into()], app_file, requests, &[], env)
}

/// Runs `leakhound hunt --json … -- RUNTIME… APP` with `env`, bounded by [`LIMIT`].
fn hunt_with(
    runtime: &[std::ffi::OsString],
    app_file: &str,
    requests: u64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args([
            "hunt",
            "--json",
            "--requests",
            &requests.to_string(),
            "--warmup",
            "200",
            "--phases",
            "2",
            "--calm-down-ms",
            "300",
            "--gc-interval-ms",
            "200",
            "--out-dir",
        ])
        .arg(dir.path().join("snapshots"))
        .args(extra)
        .arg("--")
        .args(runtime)
        .arg(app(app_file))
        .env("PID_FILE", &pid_file)
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("start leakhound");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("leakhound output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("leakhound did not finish within {LIMIT:?}");
        }
    };
    let app_pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let run = Run {
        code: out.status.code(),
        doc: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        app_pid,
        elapsed: started.elapsed(),
    };
    // Nothing of the app's process group is left: the primary, its workers, their threads.
    let pgid = run
        .app_pid
        .unwrap_or_else(|| panic!("the app wrote no pid\n{}", run.context()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pgid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "left behind\n{}", run.context());
    run
}

/// The isolate's one cluster keeps `root` objects in a `Map` named `holder`, about one per
/// request it served.
fn assert_holds(p: &Value, holder: &str, root: &str, run: &Run) {
    let c = &p["clusters"][0];
    assert_eq!(c["holder_class"], "Map", "{}\n{}", p["name"], run.context());
    // The variable holding the Map (declared in a block, whose context slots V8 leaves
    // unnamed), not the path the trace took to it (the server's timer, its `request`
    // listener, a MessagePort's listener), and the pattern of a Map.
    assert_eq!(c["holder"], holder, "{}\n{}", p["name"], run.context());
    assert_eq!(c["pattern"], "unbounded_collection", "{}\n{}", p["name"], run.context());
    assert_eq!(c["root_class"], root, "{}\n{}", p["name"], run.context());
    assert_eq!(c["pid"], p["pid"], "{}", run.context());
    let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (rate - 1.0).abs() <= 0.15,
        "{}: {rate} {root} per request it served\n{}",
        p["name"],
        run.context()
    );
}

#[test]
fn each_leaking_cluster_worker_is_named_with_its_holder() {
    let run = hunt("cluster_leak.js", 600, &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    assert_eq!(run.doc["verdict"], "leak", "{ctx}");
    let workers = run.process(|p| p["kind"] == "cluster_worker");
    assert_eq!(workers.len(), 2, "{ctx}");
    let mut served = 0;
    for w in &workers {
        assert_eq!(w["verdict"], "leak", "{ctx}");
        assert_eq!(w["requests_method"], "http_server_requests_counted", "{ctx}");
        assert!(w["name"].as_str().unwrap_or("").starts_with("cluster worker "), "{ctx}");
        assert_eq!(w["snapshotted"], true, "{ctx}");
        served += w["requests_served"].as_u64().unwrap_or(0);
        assert_holds(w, "sessions", "Session", &run);
    }
    // Every request sent was served by one of the two workers, and counted there (and the
    // few requests that checked the app was ready).
    let sent = run.doc["requests_sent"].as_u64().unwrap_or(0);
    assert!((sent..=sent + 10).contains(&served), "{served} served of {sent}\n{ctx}");
    // The primary serves nothing: followed, not snapshotted, no leak.
    let main = run.process(|p| p["kind"] == "main");
    assert_eq!(main.len(), 1, "{ctx}");
    assert_eq!(main[0]["snapshotted"], false, "{ctx}");
    assert_eq!(main[0]["requests_served"], 0, "{ctx}");
    assert_eq!(main[0]["verdict"], "no_leak", "{ctx}");
    // The whole app's clusters say where they come from, and the reason names the isolate.
    let top = &run.doc["clusters"][0];
    assert!(
        top["isolate"].as_str().unwrap_or("").starts_with("cluster worker "),
        "{ctx}"
    );
    assert!(
        run.doc["reason"].as_str().unwrap_or("").starts_with("cluster worker "),
        "{ctx}"
    );
    assert!(workers.iter().any(|w| w["pid"] == top["pid"]), "{ctx}");
}

#[test]
fn a_fixed_cluster_is_no_leak_in_every_worker() {
    let run = hunt("cluster_leak.js", 600, &[("FIXED", "1")]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert_eq!(run.doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(run.process(|p| p["kind"] == "cluster_worker").len(), 2, "{ctx}");
    for p in run.process(|_| true) {
        assert_eq!(p["verdict"], "no_leak", "{}: {ctx}", p["name"]);
        assert_eq!(p["clusters"].as_array().map(Vec::len), Some(0), "{ctx}");
    }
}

#[test]
fn a_worker_replaced_during_the_hunt_is_followed_and_said() {
    // Worker 1 exits after 300 requests (in the first load phase); the primary forks
    // worker 3. Worker 2 lives through the hunt and leaks.
    let run = hunt("cluster_leak.js", 600, &[("REPLACE_AFTER", "300")]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    assert_eq!(run.doc["verdict"], "leak", "{ctx}");
    let workers = run.process(|p| p["kind"] == "cluster_worker");
    let by_id = |id: u64| workers.iter().find(|w| w["worker_id"] == id).copied();
    let first = by_id(1).unwrap_or_else(|| panic!("worker 1 not followed\n{ctx}"));
    assert!(first["exited_ms"].as_f64().is_some(), "{ctx}");
    assert!(first["note"].as_str().unwrap_or("").contains("exited at"), "{ctx}");
    assert_ne!(first["verdict"], "no_leak", "{ctx}");
    let replacement = by_id(3).unwrap_or_else(|| panic!("the replacement, worker 3, not followed\n{ctx}"));
    assert!(replacement["joined_ms"].as_f64().unwrap_or(0.0) > 0.0, "{ctx}");
    assert!(
        replacement["note"].as_str().unwrap_or("").contains("replacement"),
        "{ctx}"
    );
    let survivor = by_id(2).unwrap_or_else(|| panic!("worker 2 not followed\n{ctx}"));
    assert_eq!(survivor["verdict"], "leak", "{ctx}");
    assert_holds(survivor, "sessions", "Session", &run);
    assert!(
        run.doc["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap_or("").contains("cluster worker 1"))),
        "{ctx}"
    );
}

#[test]
fn a_leak_in_a_worker_thread_is_found_in_the_workers_heap() {
    let run = hunt("thread_leak.js", 600, &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    assert_eq!(run.doc["verdict"], "leak", "{ctx}");
    let threads = run.process(|p| p["kind"] == "worker_thread");
    assert_eq!(threads.len(), 1, "{ctx}");
    let t = threads[0];
    assert_eq!(t["verdict"], "leak", "{ctx}");
    assert_eq!(t["thread_id"], 1, "{ctx}");
    assert_eq!(t["pid"], run.app_pid.unwrap_or(0), "{ctx}");
    assert_eq!(
        t["name"],
        format!("worker thread 1 of pid {}", run.app_pid.unwrap_or(0)),
        "{ctx}"
    );
    // Its own heap grows, not the process's rss alone.
    assert!(
        !t["floor"]["growing"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .any(|g| g == "native"),
        "{ctx}"
    );
    assert_holds(t, "jobs", "Job", &run);
    assert_eq!(run.doc["clusters"][0]["thread_id"], 1, "{ctx}");
    let main = run.process(|p| p["kind"] == "main");
    assert_eq!(main[0]["verdict"], "no_leak", "{ctx}");
    assert!(
        run.doc["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("worker thread 1 of pid"),
        "{ctx}"
    );
}

#[test]
fn a_fixed_worker_thread_is_no_leak() {
    let run = hunt("thread_leak.js", 600, &[("FIXED", "1")]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert_eq!(run.doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(run.process(|p| p["kind"] == "worker_thread").len(), 1, "{ctx}");
    for p in run.process(|_| true) {
        assert_eq!(p["verdict"], "no_leak", "{}: {ctx}", p["name"]);
    }
    assert!(run.elapsed < LIMIT);
}

/// Deno for the Deno tests: `$LEAKHOUND_DENO`, `deno` on `PATH`, or the one npm installs
/// into `target/deno` (`npm install deno`, as `.ci/run` does; done here once if missing).
/// None, with the reason, only when it cannot be installed.
fn deno() -> Result<PathBuf, String> {
    static DENO: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    DENO.get_or_init(|| {
        if let Some(p) = std::env::var_os("LEAKHOUND_DENO") {
            return Ok(PathBuf::from(p));
        }
        let works = |p: &Path| {
            Command::new(p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if works(Path::new("deno")) {
            return Ok(PathBuf::from("deno"));
        }
        let prefix = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/deno");
        let bin = prefix.join("node_modules/.bin/deno");
        if !works(&bin) {
            let out = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&prefix)
                .arg("deno@2")
                .output()
                .map_err(|e| format!("npm cannot run: {e}"))?;
            if !works(&bin) {
                return Err(format!(
                    "`npm install deno` did not give a working deno: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(bin)
    })
    .clone()
}

fn deno_run() -> Option<Vec<std::ffi::OsString>> {
    match deno() {
        Ok(bin) => Some(vec![bin.into_os_string(), "run".into(), "-A".into()]),
        Err(why) => {
            #[allow(clippy::print_stderr, reason = "a skipped test says why")]
            {
                eprintln!("SKIPPED: deno cannot be installed here ({why})");
            }
            None
        }
    }
}

#[test]
fn a_deno_server_that_leaks_is_hunted_like_node() {
    let Some(runtime) = deno_run() else { return };
    // Deno serves 30,000 requests/s here: a rate gives each phase time for floor points.
    let run = hunt_with(&runtime, "deno_leak.ts", 1500, &["--rate", "1000"], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    assert_eq!(run.doc["verdict"], "leak", "{ctx}");
    let top = &run.doc["clusters"][0];
    assert_eq!(top["holder"], "sessions", "{ctx}");
    assert_eq!(top["holder_class"], "Map", "{ctx}");
    assert_eq!(top["root_class"], "Session", "{ctx}");
    let rate = top["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((rate - 1.0).abs() <= 0.1, "{rate} per request\n{ctx}");
    // One isolate, the Deno process, measured through Deno's memoryUsage.
    let p = run.process(|_| true);
    assert_eq!(p.len(), 1, "{ctx}");
    assert_eq!(p[0]["kind"], "main", "{ctx}");
    assert_eq!(p[0]["pid"], run.app_pid.unwrap_or(0), "{ctx}");
    // Deno's server publishes no `http.server.request.start`: what it served is unknown,
    // not 0, and the rates are per request sent (said so).
    assert_eq!(p[0]["requests_method"], "requests_sent", "{ctx}");
    assert!(p[0].get("requests_served").is_none(), "{ctx}");
    assert!(run.doc["memory"].as_array().is_some_and(|m| m.len() > 3), "{ctx}");
    assert!(run.doc["snapshots"].as_array().is_some_and(|s| s.len() == 3), "{ctx}");
}

#[test]
fn a_fixed_deno_server_is_no_leak() {
    let Some(runtime) = deno_run() else { return };
    let run = hunt_with(&runtime, "deno_leak.ts", 1500, &["--rate", "1000"], &[("FIXED", "1")]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert_eq!(run.doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(run.doc["clusters"].as_array().map(Vec::len), Some(0), "{ctx}");
}

#[test]
fn bun_is_refused_with_the_way_to_a_v8_snapshot() {
    let out = Command::new(BIN)
        .args(["hunt", "--", "bun", "server.ts"])
        .output()
        .expect("run leakhound");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Bun.generateHeapSnapshot(\"v8\")") && err.contains("leakhound summary"),
        "{err}"
    );
}

/// Attached to a cluster's primary started without an inspector, leakhound cannot reach
/// the workers (SIGUSR1 opens each one's inspector on the same default port, which the
/// primary holds): it must not say "no leak" for the isolates it did not see.
#[test]
fn an_attached_cluster_whose_workers_cannot_be_reached_is_never_no_leak() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut app = Command::new("node")
        .arg(app("cluster_leak.js"))
        .env("PORT", port.to_string())
        .env("FIXED", "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let pgid = app.id();
    // The workers listen once the port answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["hunt", "--json", "--requests", "300", "--calm-down-ms", "300"])
        .args([
            "--attach",
            &pgid.to_string(),
            "--url",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .expect("run leakhound");
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = app.wait();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let ctx = format!("{doc:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(doc["verdict"], "no_leak", "{ctx}");
    if doc["processes"].as_array().is_some_and(|p| p.len() == 1) {
        assert_eq!(out.status.code(), Some(3), "{ctx}");
        assert_eq!(doc["verdict"], "inconclusive", "{ctx}");
        assert!(
            doc["reason"].as_str().unwrap_or("").contains("could not be followed"),
            "{ctx}"
        );
    }
}

/// `snapshot --pid PID --thread N` writes the worker thread's heap, not the main thread's:
/// the jobs the worker keeps are in it and only in it; a thread that does not exist is
/// named with the ones that do.
#[test]
fn snapshot_of_one_worker_thread() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    // SIGUSR1 opens the inspector on --inspect-port: 0, not 9229, which tests running at
    // the same time would share.
    let mut app = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("thread_leak.js"))
        .env("PORT", port.to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let pid = app.id();
    let result = std::panic::catch_unwind(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sent = 0;
        while sent < 40 && Instant::now() < deadline {
            use std::io::{Read, Write};
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.contains("jobs") {
                    sent += 1;
                }
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert_eq!(sent, 40);
        let count_jobs = |args: &[&str], file: &str| {
            let path = dir.path().join(file);
            let out = Command::new(BIN)
                .args(["--quiet", "snapshot", "--pid", &pid.to_string()])
                .args(args)
                .arg("-o")
                .arg(&path)
                .output()
                .expect("run leakhound");
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
            let out = Command::new(BIN)
                .args(["summary", "--top", "10000", "--json"])
                .arg(&path)
                .output()
                .expect("run leakhound summary");
            let doc: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
            doc["summary"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["class_name"] == "Job"))
                .and_then(|r| r["count"].as_u64())
                .unwrap_or(0)
        };
        assert_eq!(count_jobs(&["--thread", "1"], "thread.heapsnapshot"), 40);
        assert_eq!(count_jobs(&[], "main.heapsnapshot"), 0);
        let out = Command::new(BIN)
            .args(["--quiet", "snapshot", "--pid", &pid.to_string(), "--thread", "7"])
            .arg("-o")
            .arg(dir.path().join("none.heapsnapshot"))
            .output()
            .expect("run leakhound");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no worker thread 7") && err.contains("are 1"), "{err}");
    });
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pid}")])
        .status();
    let _ = app.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Ctrl-C in the middle of a cluster's hunt stops the whole app: the primary and every
/// worker (the process group), while leakhound is following them.
#[test]
fn ctrl_c_during_a_cluster_hunt_leaves_no_worker_behind() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["hunt", "--requests", "200000", "--rate", "2000", "--out-dir"])
        .arg(dir.path().join("snapshots"))
        .args(["--", "node"])
        .arg(app("cluster_leak.js"))
        .env("PID_FILE", &pid_file)
        .env("WORKERS", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait until the three workers are followed and the first load phase runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut followed, mut loading) = (0, false);
    let mut seen = Vec::new();
    while (followed < 3 || !loading) && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            followed += usize::from(line.contains("following cluster worker"));
            loading |= line.contains("baseline snapshot");
            seen.push(line);
        }
    }
    let pgid: u32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no app pid\n{}", seen.join("\n")));
    assert!(followed == 3 && loading, "{}", seen.join("\n"));
    assert!(group_members(pgid).len() >= 4, "the primary and three workers run");
    let _ = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status();
    let status = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pgid}")])
                    .status();
                panic!("leakhound did not stop on Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(status.code(), Some(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pgid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "left behind after Ctrl-C");
}

/// With `--main-only`, a cluster's primary serves none of the requests: its "no leak" would
/// say nothing about the workers, so the hunt is inconclusive and says how to decide.
#[test]
fn main_only_on_a_cluster_is_not_a_no_leak() {
    let run = hunt_with(
        &["node".into()],
        "cluster_leak.js",
        300,
        &["--main-only"],
        &[("FIXED", "1")],
    );
    let ctx = run.context();
    assert_eq!(run.code, Some(3), "{ctx}");
    assert_eq!(run.doc["verdict"], "inconclusive", "{ctx}");
    assert_eq!(run.process(|_| true).len(), 1, "{ctx}");
    assert!(
        run.doc["what_would_decide"]
            .as_str()
            .unwrap_or("")
            .contains("--main-only"),
        "{ctx}"
    );
}
