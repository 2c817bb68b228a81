//! Hunts of servers unlike the other tests' (`tests/tryout/`), each written after a hunt
//! that gave a wrong or unhelpful answer: the assertion is what the answer must be.
//!
//! Every hunt is small (100 warm-up requests, 2 phases of 300), runs one at a time, and
//! is killed (failing its test) past [`HUNT_LIMIT`]; each app writes its pid to
//! `$PID_FILE` and every test checks it is gone afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
/// A hunt that runs longer than this is killed and fails its test.
const HUNT_LIMIT: Duration = Duration::from_secs(120);
/// One hunt at a time: node apps under load on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tryout").join(name)
}

/// A finished leakhound run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    app_pid: Option<u32>,
    _dir: tempfile::TempDir,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.context()))
    }

    fn context(&self) -> String {
        format!(
            "exit {:?}\n--- stderr ---\n{}\n--- stdout (first 3000 chars) ---\n{}",
            self.code,
            self.stderr,
            self.stdout.chars().take(3000).collect::<String>()
        )
    }

    /// The app (pid from its pid file) is gone within a few seconds.
    fn assert_app_gone(&self) {
        let pid = self
            .app_pid
            .unwrap_or_else(|| panic!("the app never wrote its pid file\n{}", self.context()));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next());
            if stat.is_empty() || state == Some("Z") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app (pid {pid}) outlived leakhound\n{}",
                self.context()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `leakhound ARGS` (ARGS ending with the app's command), in a fresh folder, with
/// `PID_FILE` set; killed past [`HUNT_LIMIT`].
fn leakhound(args: &[String]) -> Run {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("app.pid");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(args)
        .env("PID_FILE", &pid_file)
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound");
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if started.elapsed() > HUNT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("leakhound did not finish within {} s", HUNT_LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let app_pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Run {
        code: status.code(),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        app_pid,
        _dir: dir,
    }
}

/// A small `hunt --json` of `app_file` with `extra` options.
fn hunt(app_file: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = [
        "hunt",
        "--json",
        "--warmup",
        "100",
        "--requests",
        "300",
        "--calm-down-ms",
        "300",
        "--gc-interval-ms",
        "200",
        "--out-dir",
        "snapshots",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.extend(["--".to_owned(), "node".to_owned(), app(app_file).display().to_string()]);
    leakhound(&args)
}

/// Intervals of 30 s started per request share Node's 30 s timer list with the http
/// server's own `connectionsCheckingInterval`: the shortest path reaches half of them
/// through the server's timer. Before, that half was a second cluster held by
/// `(synthetic)[].{native_to_javascript}[Symbol(owner_symbol)]` (the Server), each
/// cluster at 0.5 per request; the list holds them all, one per request.
#[test]
fn timers_sharing_the_http_servers_timer_list_are_held_by_the_list() {
    let run = hunt("heartbeat_30s.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "a leak\n{ctx}");
    let doc = run.json();
    let clusters = doc["clusters"].as_array().expect("clusters");
    let timers: Vec<&Value> = clusters.iter().filter(|c| c["root_class"] == "Timeout").collect();
    assert_eq!(timers.len(), 1, "one cluster of Timeouts\n{ctx}");
    let c = timers[0];
    assert_eq!(c["holder"], "timerListMap[30000]", "{ctx}");
    assert_eq!(c["pattern"], "uncleared_timer", "{ctx}");
    let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((rate - 1.0).abs() <= 0.1, "one Timeout per request: {rate}\n{ctx}");
    assert!(
        !doc.to_string().contains("(synthetic)[]"),
        "no holder is named from the synthetic root\n{ctx}"
    );
    run.assert_app_gone();
}

/// The default load (`GET /`) meets a 404 on every request of an API whose one route is
/// `POST /api/orders`: nothing grows, since nothing ran. Before, that was `no_leak`
/// (exit 0, a CI gate passed) with a warning; a load that missed the app's work is no
/// evidence, so the verdict is inconclusive and says what would decide.
#[test]
fn a_load_answered_404_throughout_is_not_a_no_leak() {
    let run = hunt("orders_route.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(3), "inconclusive\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["verdict"], "inconclusive", "{ctx}");
    let decide = doc["what_would_decide"].as_str().unwrap_or_default();
    assert!(
        decide.contains("--url") && decide.contains("--expect-status"),
        "{decide}\n{ctx}"
    );
    assert!(doc["reason"].as_str().unwrap_or_default().contains("404"), "{ctx}");
    run.assert_app_gone();
}

/// The same app with 404 declared expected: the user says the route is right, so the
/// usual verdict stands (no leak: nothing grows on 404s).
#[test]
fn expected_statuses_keep_the_verdict() {
    let run = hunt("orders_route.js", &["--expect-status", "404"]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "no leak\n{ctx}");
    run.assert_app_gone();
}

/// `--url /api/orders` (a path alone) loads that route on the free port the app gets as
/// PORT. Before, it was refused (`has no scheme`), and a full `--url` did not give the
/// app its port, so an app that reads PORT listened elsewhere.
#[test]
fn a_url_that_is_a_path_reaches_the_route_on_the_apps_port() {
    let body = r#"{"sku":"A-1","qty":2}"#;
    let run = hunt(
        "orders_route.js",
        &[
            "--url",
            "/api/orders",
            "--method",
            "POST",
            "--body",
            body,
            "--expect-status",
            "201",
        ],
    );
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the audit log leaks\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["clusters"][0]["holder"], "auditLog", "{ctx}");
    let url = doc["app"]["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/orders"),
        "{url}"
    );
    run.assert_app_gone();
}

/// A full loopback `--url` with a port: the app started gets that port as PORT.
#[test]
fn a_loopback_url_with_a_port_is_where_the_app_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("http://127.0.0.1:{port}/api/orders");
    let body = r#"{"sku":"A-1","qty":2}"#;
    let run = hunt(
        "orders_route.js",
        &[
            "--url",
            &url,
            "--method",
            "POST",
            "--body",
            body,
            "--expect-status",
            "201",
        ],
    );
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the audit log leaks\n{ctx}");
    assert_eq!(run.json()["clusters"][0]["holder"], "auditLog", "{ctx}");
    run.assert_app_gone();
}

/// The message of a refused `--url` is said once. Before, `{e:#}` printed the error and
/// its source, which spelled out the same text: `invalid url: … https is not supported
/// …: invalid url: … https is not supported …`.
#[test]
fn an_error_is_said_once() {
    let args: Vec<String> = ["hunt", "--url", "https://127.0.0.1:3443/", "--", "node", "-e", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let run = leakhound(&args);
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert_eq!(
        run.stderr.matches("https is not supported").count(),
        1,
        "said once\n{}",
        run.context()
    );
}

/// A failed load command: the kept snapshots end the message's first line and the
/// command's last output follows on lines of its own. Before, the note landed after
/// `last output:` and the output came after it: `…; last output: (snapshots kept: …)\ncurl: …`.
#[test]
fn a_failed_load_command_shows_its_output_after_the_kept_snapshots() {
    let load = app("fail_load.sh").display().to_string();
    let run = hunt("orders_route.js", &["--load", &load, "--units", "10"]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    let err = run.json()["error"].as_str().unwrap_or_default().to_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains("failed (exit status: 1)") && lines[0].ends_with("01-baseline.heapsnapshot)"),
        "the first line names the failure and the kept snapshot: {err}"
    );
    assert_eq!(lines.get(1).copied(), Some("its last output:"), "{err}");
    assert!(lines.get(2).is_some_and(|l| l.contains("TLS connect error")), "{err}");
    run.assert_app_gone();
}

/// Listeners added per request to a long-lived AbortSignal (an EventTarget): Node keeps a
/// `Listener` per `addEventListener` in a list under the signal's `kEvents` Map. Before,
/// that was `unbounded_collection` with the fix hint of a cache (an LRU, a TTL); it is
/// a listener leak.
#[test]
fn listeners_on_an_abort_signal_are_a_listener_leak() {
    let run = hunt("abort_listeners.mjs", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "a leak\n{ctx}");
    let c = &run.json()["clusters"][0];
    assert_eq!(c["pattern"], "listener_accumulation", "{ctx}");
    assert!(
        c["holder"].as_str().is_some_and(|h| h.starts_with("shutdown.")),
        "{ctx}"
    );
    let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((rate - 1.0).abs() <= 0.1, "one listener per request: {rate}\n{ctx}");
    run.assert_app_gone();
}

/// A Buffer re-allocated longer at every request (`log = Buffer.concat([log, line])`):
/// no object survives from one snapshot to the next and the growth (~50 bytes a request)
/// is under the floor's noise, so the hunt said `no_leak` ("memory returned to the
/// baseline"). The variable's Buffer is larger at every snapshot: a leak, in bytes.
#[test]
fn a_buffer_reallocated_longer_at_every_request_is_a_leak() {
    let run = hunt("access_log_buffer.js", &["--html", "report.html"]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "a leak\n{ctx}");
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("bytes per request"), "counted in bytes: {reason}");
    let html = std::fs::read_to_string(run._dir.path().join("report.html")).expect("the HTML report");
    assert!(
        !html.contains("× <code>byte"),
        "no bytes counted as objects in the HTML"
    );
    let c = &run.json()["clusters"][0];
    assert_eq!(c["holder"], "accessLog", "{ctx}");
    assert_eq!(c["pattern"], "external_memory", "{ctx}");
    let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((30.0..80.0).contains(&rate), "some 50 bytes per request: {rate}\n{ctx}");
    run.assert_app_gone();
}

/// Its twin keeps the last 4 KiB: bounded, no leak.
#[test]
fn a_buffer_kept_to_a_bound_is_not_a_leak() {
    let mut args: Vec<String> = [
        "hunt",
        "--json",
        "--warmup",
        "200",
        "--requests",
        "1000",
        "--out-dir",
        "snapshots",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--".to_owned(),
        "env".to_owned(),
        "FIXED=1".to_owned(),
        "node".to_owned(),
        app("access_log_buffer.js").display().to_string(),
    ]);
    let run = leakhound(&args);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "no leak\n{ctx}");
    run.assert_app_gone();
}

/// An app that accepts connections and closes them without an HTTP answer (an HTTPS
/// server met with plain HTTP). Before, the hunt said only `did not answer within 30000
/// ms; last error: no valid HTTP response: connection closed before message completed`;
/// it now says what that means and what to do.
#[test]
fn a_server_that_speaks_no_http_is_told_to_bring_a_tls_load() {
    let run = hunt("tls_like.js", &["--ready-timeout", "3"]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    let err = run.json()["error"].as_str().unwrap_or_default().to_owned();
    for part in ["without an HTTP response", "HTTPS", "--load", "--ready"] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    run.assert_app_gone();
}

/// `lint` on the AbortSignal server: `addEventListener` per request on a module-level
/// signal, never removed, is `listener-per-call` (before, lint said nothing, though the
/// hunt finds the leak); `{ once: true }`, `{ signal }` or a `removeEventListener` of the
/// same function are not.
#[test]
fn lint_finds_add_event_listener_per_call() {
    let files = [app("abort_listeners.mjs"), app("event_target_ok.js")];
    let mut args = vec!["lint".to_owned(), "--format".to_owned(), "json".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = Command::new(BIN).args(&args).output().expect("run lint");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("lint JSON");
    let text = doc.to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let rules: Vec<(String, String)> = doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            (
                x["path"].as_str().unwrap_or_default().to_owned(),
                x["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        rules
            .iter()
            .any(|(p, r)| p.ends_with("abort_listeners.mjs") && r == "listener-per-call"),
        "{text}"
    );
    assert!(!rules.iter().any(|(p, _)| p.ends_with("event_target_ok.js")), "{text}");
}
