//! End-to-end tests against real `node` processes on 127.0.0.1 (no mocks).
//!
//! Every test is bounded by [`bounded`], and every node process is killed on all paths:
//! spawned apps through [`NodeProcess`] (its drop kills the process group), attach targets
//! through [`Target`] (kill on drop).

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leakhound_inspector::{
    CloseReason, GcEvent, GcKind, InspectorError, NodeProcess, OutputLine, Session, Signal, SpawnOptions, Stream,
    attach,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Upper bound for any single test; generous because the machine may be loaded.
const TEST_LIMIT: Duration = Duration::from_secs(120);

async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TEST_LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {TEST_LIMIT:?}"),
    }
}

fn node() -> &'static OsStr {
    OsStr::new("node")
}

fn write_app(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write fixture");
    path
}

fn options(cwd: &Path) -> (SpawnOptions, mpsc::UnboundedReceiver<OutputLine>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut opts = SpawnOptions::new(tx);
    opts.cwd = Some(cwd.to_owned());
    opts.ready_timeout = Duration::from_secs(60);
    (opts, rx)
}

/// Waits until the app prints `marker` on stdout.
async fn wait_for_line(rx: &mut mpsc::UnboundedReceiver<OutputLine>, marker: &str) {
    while let Some(line) = rx.recv().await {
        if line.stream == Stream::Stdout && line.line.contains(marker) {
            return;
        }
    }
    panic!("output ended before `{marker}`");
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry: look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

const STEADY_APP: &str = r"
globalThis.keep = [];
for (let i = 0; i < 2000; i++) keep.push({ id: i, name: 'item-' + i });
setInterval(() => { keep.push({ t: Date.now() }); if (keep.length > 5000) keep.length = 2000; }, 20);
console.log('ready');
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_samples_memory_collects_garbage_and_writes_a_valid_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), "app.js", STEADY_APP);
    let (opts, mut output) = options(dir.path());
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect("spawn node");
    bounded("session work", async {
        assert_eq!(session.pid(), process.pid());
        assert!(session.url().starts_with("ws://127.0.0.1:"));
        wait_for_line(&mut output, "ready").await;

        let usage = session.memory_usage().await.expect("memory usage");
        assert!(usage.heap_used_bytes > 0);
        assert!(usage.heap_total_bytes >= usage.heap_used_bytes);
        assert!(usage.rss_bytes > usage.heap_used_bytes);

        session.collect_garbage().await.expect("collect garbage");
        session.collect_garbage().await.expect("collect garbage twice");

        let path = dir.path().join("app.heapsnapshot");
        let mut progress_calls = 0u32;
        let mut last_bytes = 0u64;
        let file = session
            .take_heap_snapshot(&path, |bytes, _| {
                // Bytes written so far: never going back.
                assert!(bytes >= last_bytes);
                last_bytes = bytes;
                progress_calls += 1;
            })
            .await
            .expect("snapshot");
        assert!(progress_calls > 0);
        assert_eq!(last_bytes, file.bytes, "the last progress call reports the whole file");
        assert_eq!(file.path, path);
        assert_eq!(file.bytes, std::fs::metadata(&path).unwrap().len());
        check_snapshot(&path);

        // Only the final file is left.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains(".partial-")),
            "leftover files: {names:?}"
        );

        // A second snapshot over the first one works too.
        let again = session
            .take_heap_snapshot(&path, |_, _| {})
            .await
            .expect("second snapshot");
        assert!(again.bytes > 0);

        // Errors from the target come back as typed errors.
        let err = session.evaluate("throw new Error('boom')").await.unwrap_err();
        assert!(
            matches!(&err, InspectorError::Exception { text, .. } if text.contains("boom")),
            "{err}"
        );
        let err = session.call("No.suchMethod", serde_json::json!({})).await.unwrap_err();
        assert!(
            matches!(&err, InspectorError::Protocol { method, code: -32601, .. } if method == "No.suchMethod"),
            "{err}"
        );
        assert_eq!(
            session.evaluate("Promise.resolve(6 * 7)").await.unwrap(),
            Value::from(42)
        );
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");

    // Output was forwarded without node's inspector notices.
    let mut lines = Vec::new();
    while let Ok(line) = output.try_recv() {
        lines.push(line.line);
    }
    assert!(lines.iter().all(|l| !l.starts_with("Debugger listening")), "{lines:?}");
}

fn check_snapshot(path: &Path) {
    let text = std::fs::read(path).expect("read snapshot");
    let json: Value = serde_json::from_slice(&text).expect("snapshot is json");
    for key in ["snapshot", "nodes", "edges", "strings"] {
        assert!(json.get(key).is_some(), "missing key {key}");
    }
    let meta = &json["snapshot"]["meta"];
    let node_fields = meta["node_fields"].as_array().expect("node_fields").len();
    let edge_fields = meta["edge_fields"].as_array().expect("edge_fields").len();
    let node_count = json["snapshot"]["node_count"].as_u64().expect("node_count");
    let edge_count = json["snapshot"]["edge_count"].as_u64().expect("edge_count");
    let nodes = json["nodes"].as_array().expect("nodes").len() as u64;
    let edges = json["edges"].as_array().expect("edges").len() as u64;
    assert!(node_count > 1000, "only {node_count} nodes");
    assert_eq!(node_count * node_fields as u64, nodes);
    assert_eq!(edge_count * edge_fields as u64, edges);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_exiting_during_spawn_reports_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(
        dir.path(),
        "crash.js",
        "console.error('startup-failure-marker'); process.exit(3);\n",
    );
    let (opts, _output) = options(dir.path());
    let err = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect_err("the app exits at once");
    match &err {
        InspectorError::ExitedBeforeReady {
            status, stderr_tail, ..
        } => {
            assert!(status.contains('3'), "{status}");
            assert!(
                stderr_tail.iter().any(|l| l.contains("startup-failure-marker")),
                "{stderr_tail:?}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("startup-failure-marker"), "{message}");

    let (opts, _output) = options(dir.path());
    let err = bounded(
        "spawn",
        NodeProcess::spawn(OsStr::new("/nonexistent/leakhound-no-such-program"), &[], opts),
    )
    .await
    .expect_err("no such program");
    assert!(matches!(err, InspectorError::Spawn { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reports_when_the_app_finishes_and_lets_node_exit() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(
        dir.path(),
        "short.js",
        "console.log('ready'); setTimeout(() => console.log('done'), 500);\n",
    );
    let (opts, _output) = options(dir.path());
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect("spawn node");
    // The GC observer must not keep the app alive.
    session.install_gc_observer().await.expect("install");
    let outcome = bounded("finish", async {
        let reason = session.closed().await;
        let status = process.wait().await.expect("wait");
        (reason, status)
    })
    .await;
    let _ = process.kill().await;
    let (reason, status) = outcome;
    assert_eq!(reason, CloseReason::TargetFinished);
    assert!(status.success(), "{status}");
    assert!(session.is_closed());
    let err = session.memory_usage().await.unwrap_err();
    assert!(matches!(err, InspectorError::Closed { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_observer_records_forced_major_gcs() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), "app.js", STEADY_APP);
    let (opts, mut output) = options(dir.path());
    let args = [OsString::from("--expose-gc"), app.into_os_string()];
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &args, opts))
        .await
        .expect("spawn node");
    bounded("gc observer", async {
        wait_for_line(&mut output, "ready").await;
        let err = session.drain_gc_events().await.unwrap_err();
        assert!(matches!(err, InspectorError::GcObserverMissing { .. }), "{err}");
        assert!(session.install_gc_observer().await.expect("install"));
        assert!(!session.install_gc_observer().await.expect("install again"));

        // HeapProfiler.collectGarbage counts as forced...
        session.collect_garbage().await.expect("collect garbage");
        let events = next_forced_gc(&session).await;
        let forced = events.iter().find(|e| e.forced).expect("forced gc");
        assert!(forced.memory.heap_used_bytes > 0);
        assert!(forced.memory.rss_bytes > forced.memory.heap_used_bytes);
        assert!(forced.unix_ms > 1_600_000_000_000);
        assert!(forced.duration_ms >= 0.0);

        // ...and so does global.gc().
        session.evaluate("global.gc()").await.expect("global.gc");
        next_forced_gc(&session).await;

        // Draining emptied the ring.
        let rest = session.drain_gc_events().await.expect("drain again");
        assert!(rest.iter().all(|e| !e.forced), "{rest:?}");
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_logged_objects_do_not_count_as_live_after_collect_garbage() {
    let dir = tempfile::tempdir().unwrap();
    // With an inspector open, V8 keeps console call arguments alive for debuggers.
    let app = write_app(
        dir.path(),
        "logger.js",
        r"
for (let i = 0; i < 200; i++) console.log({ big: 'x'.repeat(100000) + i });
setInterval(() => {}, 1000);
console.log('ready');
",
    );
    let (opts, mut output) = options(dir.path());
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect("spawn node");
    bounded("console retention", async {
        wait_for_line(&mut output, "ready").await;
        session.collect_garbage().await.expect("collect garbage");
        let usage = session.memory_usage().await.expect("memory usage");
        // 200 logged strings of 100 KB would be 20 MB.
        assert!(
            usage.heap_used_bytes < 12_000_000,
            "logged objects still live: {usage:?}"
        );
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_samples_count_gcs_per_kind_and_the_observer_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), "app.js", STEADY_APP);
    let (opts, mut output) = options(dir.path());
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect("spawn node");
    bounded("runtime sample", async {
        wait_for_line(&mut output, "ready").await;
        let before = session.runtime_sample().await.expect("sample without observer");
        assert!(before.gc.is_empty(), "no observer, no GC counts: {before:?}");
        assert!(before.heap_limit_bytes.unwrap_or(0) > 16 << 20, "{before:?}");
        assert!(before.heap_spaces.iter().any(|s| s.name == "old_space"), "{before:?}");
        session.install_gc_observer().await.expect("install");
        session.collect_garbage().await.expect("collect garbage");
        let events = next_forced_gc(&session).await;
        assert!(events.iter().all(|e| e.read_lag_ms >= 0.0), "{events:?}");
        // Allocation makes scavenges too.
        session
            .evaluate("globalThis.junk = Array.from({ length: 200000 }, (_, i) => ({ i })); delete globalThis.junk; 1")
            .await
            .expect("allocate");
        let mut sample = session.runtime_sample().await.expect("sample");
        while !sample.gc.iter().any(|k| k.kind == GcKind::Minor) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            sample = session.runtime_sample().await.expect("sample");
        }
        let major = sample
            .gc
            .iter()
            .find(|k| k.kind == GcKind::Major)
            .expect("major GCs counted");
        assert!(major.count >= 2, "collectGarbage runs two mark-compacts: {major:?}");
        assert!(
            major.buckets[3] <= major.count && major.buckets[0] <= major.buckets[1],
            "{major:?}"
        );
        assert!(major.sum_seconds > 0.0);
        assert!(session.remove_gc_observer().await.expect("remove"));
        assert!(!session.remove_gc_observer().await.expect("remove again"));
        let err = session.drain_gc_events().await.unwrap_err();
        assert!(matches!(err, InspectorError::GcObserverMissing { .. }), "{err}");
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");
}

/// Drains GC events until one forced GC shows up (observer callbacks run asynchronously).
async fn next_forced_gc(session: &Session) -> Vec<GcEvent> {
    let mut events = Vec::new();
    while !events.iter().any(|e: &GcEvent| e.forced) {
        events.extend(session.drain_gc_events().await.expect("drain"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_urls_include_the_app_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), "scripted-app.js", STEADY_APP);
    let (opts, mut output) = options(dir.path());
    let (mut process, session) = bounded(
        "spawn",
        NodeProcess::spawn(node(), &[app.clone().into_os_string()], opts),
    )
    .await
    .expect("spawn node");
    bounded("script urls", async {
        wait_for_line(&mut output, "ready").await;
        let urls = session.script_urls().await.expect("script urls");
        let expected = format!("file://{}", app.display());
        assert!(
            urls.values().any(|u| u == &expected),
            "{expected} not among {} urls: {:?}",
            urls.len(),
            urls.values().filter(|u| u.starts_with("file:")).collect::<Vec<_>>()
        );
        assert!(urls.values().any(|u| u.starts_with("node:")));
        // The Debugger domain was disabled again, and the session still works.
        assert!(session.memory_usage().await.is_ok());

        // The same target through its http address.
        let port = session
            .url()
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let other = Session::connect_url(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("connect via /json/list");
        assert_eq!(other.pid(), process.pid());
        other.close().await;

        let err = Session::connect("ws://192.0.2.1:9229/x").await.unwrap_err();
        assert!(matches!(err, InspectorError::NotLoopback { .. }), "{err}");
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_app_mid_snapshot_fails_cleanly_without_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(
        dir.path(),
        "big.js",
        r"
globalThis.keep = [];
for (let i = 0; i < 400000; i++) keep.push({ id: i, name: 'item-' + i, next: null });
for (let i = 1; i < keep.length; i++) keep[i - 1].next = keep[i];
setInterval(() => {}, 1000);
console.log('ready');
",
    );
    let (opts, mut output) = options(dir.path());
    let (mut process, session) = bounded("spawn", NodeProcess::spawn(node(), &[app.into_os_string()], opts))
        .await
        .expect("spawn node");
    let path = dir.path().join("big.heapsnapshot");
    let progress = Arc::new(AtomicU64::new(0));
    let result = bounded("snapshot while killing", async {
        wait_for_line(&mut output, "ready").await;
        let seen = Arc::clone(&progress);
        let snapshot = session.take_heap_snapshot(&path, move |_, _| {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        let killer = async {
            while progress.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            process.signal_group(Signal::SIGKILL).expect("kill mid-snapshot");
        };
        let (snapshot, ()) = tokio::join!(snapshot, killer);
        snapshot
    })
    .await;
    let _ = process.kill().await;
    let err = result.expect_err("snapshot of a killed app must fail");
    match &err {
        InspectorError::Snapshot { path: p, source } => {
            assert_eq!(p, &path);
            assert!(matches!(**source, InspectorError::Closed { .. }), "{source}");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("big.heapsnapshot"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("heapsnapshot"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(session.is_closed());
}

/// A node process started by the test itself (not through `NodeProcess`), killed on drop.
struct Target {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Target {
    fn start(program: &str, args: &[&OsStr], cwd: &Path) -> Target {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start target");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Target { child, stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("pid")
    }

    async fn wait_for(&mut self, marker: &str) {
        while let Some(line) = self.stdout.next_line().await.expect("read stdout") {
            if line.contains(marker) {
                return;
            }
        }
        panic!("target exited before `{marker}`");
    }
}

fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_opens_the_inspector_with_sigusr1_and_checks_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(
        dir.path(),
        "server.js",
        r"
const http = require('http');
const server = http.createServer((req, res) => res.end('hello'));
server.listen(0, '127.0.0.1', () => console.log('ready'));
",
    );
    // SIGUSR1 binds --inspect-port (9229 by default): use a free port so parallel runs and
    // other inspectors on this machine cannot collide.
    let port = format!("--inspect-port=127.0.0.1:{}", free_loopback_port());
    let mut target = Target::start("node", &[OsStr::new(&port), app.as_os_str()], dir.path());
    let pid = target.pid();
    bounded("attach", async {
        target.wait_for("ready").await;
        let session = attach(pid, Duration::from_secs(30)).await.expect("attach");
        assert_eq!(session.pid(), pid);
        let usage = session.memory_usage().await.expect("memory usage");
        assert!(usage.heap_used_bytes > 0);
        session.close().await;

        // A second attach finds the already open inspector.
        let again = attach(pid, Duration::from_secs(30)).await.expect("attach again");
        assert_eq!(again.pid(), pid);
        again.close().await;
    })
    .await;
    let _ = target.child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_refuses_processes_that_would_die_from_sigusr1() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = Target::start("sleep", &[OsStr::new("60")], dir.path());
    let pid = target.pid();
    let err = bounded("attach", attach(pid, Duration::from_millis(500)))
        .await
        .expect_err("sleep is not node");
    assert!(
        matches!(err, InspectorError::NotNode { pid: p, .. } if p == pid),
        "{err}"
    );
    assert!(pid_alive(pid), "the target must survive");
    let _ = target.child.kill().await;

    let err = bounded("attach", attach(u32::MAX - 7, Duration::from_millis(200)))
        .await
        .expect_err("no such pid");
    assert!(matches!(err, InspectorError::NoSuchProcess { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_start_connects_to_the_app_not_to_npm_and_kill_leaves_no_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    write_app(
        dir.path(),
        "package.json",
        r#"{ "name": "leakhound-fixture", "version": "1.0.0", "private": true, "scripts": { "start": "node app.js" } }"#,
    );
    write_app(dir.path(), "app.js", STEADY_APP);
    let (mut opts, _output) = options(dir.path());
    // Keep npm quiet and offline.
    opts.env.push(("npm_config_update_notifier".into(), "false".into()));
    opts.env.push(("npm_config_fund".into(), "false".into()));
    opts.env.push(("npm_config_audit".into(), "false".into()));
    opts.env.push(("npm_config_offline".into(), "true".into()));
    let (mut process, session) = bounded(
        "spawn npm",
        NodeProcess::spawn(OsStr::new("npm"), &[OsString::from("start")], opts),
    )
    .await
    .expect("spawn npm start");
    let app_pid = session.pid();
    bounded("npm session", async {
        assert_ne!(app_pid, process.pid(), "connected to npm itself");
        let script = session.evaluate("process.argv[1]").await.expect("argv");
        assert!(script.as_str().is_some_and(|s| s.ends_with("app.js")), "{script}");
    })
    .await;
    session.close().await;
    process.kill().await.expect("kill");
    bounded("grandchild exit", async {
        while pid_alive(app_pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
