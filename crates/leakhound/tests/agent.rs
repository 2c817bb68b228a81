//! `leakhound watch` as a production agent: several running processes in one agent, floor
//! points from the apps' own full GCs (no forced GC when attached), SIGTERM detaches and
//! leaves every app running with its inspector closed; `/metrics` that `promtool check
//! metrics` accepts and `/health`; the faults: an app that dies (reported, `leakhound_up`
//! 0, the others still served), a taken metrics port (exit 2 at once), a scrape while the
//! app is busy (answered from the last state).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod agent_support;

use agent_support::{Agent, BIN, Running, app, http_get, promtool, value};

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

#[test]
fn metrics_pass_promtool_and_health_says_warning_for_a_rising_floor() {
    let app = app("leaky.js");
    let agent = Agent::start(&[
        "--quiet",
        "--sample-ms",
        "200",
        "--gc-interval-ms",
        "250",
        "--warmup",
        "0.5",
        "--duration",
        "60",
        "--",
        "node",
        app.to_str().unwrap(),
    ]);
    let _ = &agent.run;
    let page = agent.scrape_until(Duration::from_secs(40), |p| {
        value(p, "leakhound_leak_verdict", &["kind=\"heap_used\""]) == Some(1.0)
    });
    // Labels: the app from the script's name, the pid, an empty thread_id.
    assert!(page.contains("leakhound_up{app=\"leaky\",pid=\""), "{page}");
    assert!(page.contains(",thread_id=\"\"}"), "{page}");
    for name in [
        "leakhound_memory_bytes",
        "leakhound_memory_floor_bytes",
        "leakhound_memory_floor_slope_bytes_per_second",
        "leakhound_verdict_inconclusive",
        "leakhound_floor_points",
        "leakhound_heap_limit_bytes",
        "leakhound_gc_full_total",
        "v8js_memory_heap_used_bytes",
        "v8js_gc_duration_seconds_bucket",
    ] {
        assert!(page.contains(&format!("\n{name}{{")), "{name} missing:\n{page}");
    }
    for kind in ["heap_used", "heap_total", "external", "array_buffers", "rss"] {
        assert!(
            value(&page, "leakhound_memory_bytes", &[&format!("kind=\"{kind}\"")]).is_some_and(|v| v >= 0.0),
            "{kind}"
        );
    }
    let lower = value(
        &page,
        "leakhound_memory_floor_slope_bytes_per_second",
        &["kind=\"heap_used\"", "bound=\"lower\""],
    )
    .expect("the slope's lower bound");
    assert!(lower > 0.0, "a rising floor's lower bound is above zero: {lower}");
    assert!(value(&page, "v8js_gc_duration_seconds_count", &["v8js_gc_type=\"major\""]).unwrap_or(0.0) >= 2.0);
    if let Some(promtool) = promtool() {
        let mut check = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        check.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{page}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What Prometheus asks for: OpenMetrics text, ending in # EOF.
    let (status, om) = http_get(agent.addr, "/metrics", "application/openmetrics-text; version=1.0.0");
    assert_eq!(status, 200);
    assert!(
        om.ends_with("# EOF\n") && om.contains("# TYPE leakhound_gc_full counter"),
        "{om}"
    );
    let (status, body) = http_get(agent.addr, "/health", "application/json");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(status, 200, "warning answers 200: {doc:#}");
    assert_eq!(doc["status"], "warning", "{doc:#}");
    let t = &doc["targets"][0];
    assert_eq!(t["verdict"], "leak");
    assert!(t["memory_mb"]["heap_used"].as_f64().unwrap() > 1.0, "{doc:#}");
    assert!(t["heap_limit_mb"].as_f64().unwrap() > 100.0, "{doc:#}");
    assert!(t["uptime_s"].as_f64().unwrap() > 0.0, "{doc:#}");
    // A heap threshold the app is above makes it critical: 503.
    drop(agent);
    let agent = Agent::start(&[
        "--quiet",
        "--sample-ms",
        "200",
        "--critical-heap",
        "1M",
        "--duration",
        "30",
        "--",
        "node",
        app.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = http_get(agent.addr, "/health", "application/json");
        if status == 503 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"status\":\"critical\"") && body.contains("--critical-heap 1.0 MB"),
        "{body}"
    );
}

#[test]
fn a_taken_metrics_port_is_a_clear_error_before_any_app_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let script = format!(
        "require('fs').writeFileSync({:?}, 'x'); setInterval(() => {{}}, 1000);",
        marker
    );
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "watch",
            "--metrics-addr",
            &addr,
            "--duration",
            "20",
            "--",
            "node",
            "-e",
            &script,
        ])
        .output()
        .expect("run leakhound");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot serve metrics on {addr}: the address is already in use"
        )),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "it fails at once");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "no app was started");
}

#[test]
fn an_app_that_dies_is_reported_and_the_others_are_still_served() {
    let mut alive = node("churn.js");
    let dying = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("dies.js"))
        .env("DIE_AFTER_MS", "4000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start node");
    let dying = Running(Some(dying));
    std::thread::sleep(Duration::from_millis(700));
    let (pa, pd) = (alive.pid(), dying.pid());
    let agent = Agent::start(&[
        "--sample-ms",
        "200",
        "--attach",
        &pa.to_string(),
        "--attach",
        &pd.to_string(),
    ]);
    let page = agent.scrape_until(Duration::from_secs(30), |p| {
        value(p, "leakhound_up", &[&format!("pid=\"{pd}\"")]) == Some(0.0)
    });
    assert_eq!(
        value(&page, "leakhound_up", &[&format!("pid=\"{pa}\"")]),
        Some(1.0),
        "{page}"
    );
    // The other one is still sampled: its GC count keeps moving.
    let gcs = |p: &str| {
        value(
            p,
            "v8js_gc_duration_seconds_count",
            &[&format!("pid=\"{pa}\""), "minor"],
        )
    };
    let before = gcs(&page).expect("the live app's GCs");
    agent.scrape_until(Duration::from_secs(20), |p| gcs(p).is_some_and(|n| n > before));
    let (status, body) = http_get(agent.addr, "/health", "application/json");
    assert_eq!(status, 503, "a process gone is critical: {body}");
    assert!(body.contains(&format!("pid {pd} is no longer watched")), "{body}");
    let lines = agent.stderr_lines().join("\n");
    assert!(
        lines.contains(&format!("leakhound: pid {pd}: the app exited")),
        "reported: {lines}"
    );
    sigterm(agent.run.pid());
    let out = agent.run.output();
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{out:?}");
    assert!(alive.alive(), "the attached app runs on");
    drop(dying);
}

#[test]
fn a_scrape_while_the_app_is_busy_still_answers_at_once() {
    let app = app("busy.js");
    let agent = Agent::start(&[
        "--quiet",
        "--sample-ms",
        "100",
        "--duration",
        "40",
        "--",
        "node",
        app.to_str().unwrap(),
    ]);
    // The first sample, then scrapes through several 2.5 s blocks of the app's event loop,
    // when a sample waits for the app.
    agent.scrape_until(Duration::from_secs(20), |p| {
        value(p, "leakhound_memory_bytes", &["heap_used"]).is_some()
    });
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        let t = Instant::now();
        let (status, page) = http_get(agent.addr, "/metrics", "text/plain");
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, 200);
        assert!(page.contains("leakhound_up{"), "{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(slowest < Duration::from_millis(1000), "a scrape waited {slowest:?}");
}

#[test]
fn on_a_terminal_the_watch_draws_one_refreshing_row_per_process() {
    // `script` (util-linux) gives the watch a terminal for stdout.
    let leaky = app("leaky.js");
    let command = format!(
        "{BIN} watch --duration 4 --sample-ms 200 --gc-interval-ms 300 --warmup 0.5 -- node {}",
        leaky.display()
    );
    // NO_COLOR: the verdict line is plain text; the live view still redraws in place.
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{screen}");
    let rows = screen.matches("floor points  ").count() + screen.matches("floor point  ").count();
    assert!(rows >= 3, "the row is redrawn as samples come: {screen}");
    assert!(
        screen.contains("\x1b["),
        "redrawn in place with cursor movements: {screen}"
    );
    assert!(
        screen.contains("  heap ") && screen.contains("/h (95 % CI "),
        "{screen}"
    );
    assert!(
        screen.contains("LEAK: the post-GC floor of js_heap rises"),
        "the verdict after: {screen}"
    );
}
