//! A real Prometheus scrapes two agents: one watches a leaky server, the other its fixed
//! twin, both under the same bounded load. Through Prometheus's HTTP API, the expression of
//! the shipped `LeakhoundMemoryFloorRising` alert is true for the leaky app only, and with
//! the shipped rules (their windows shortened for the test) the alert fires for it alone.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`; `.ci/run` installs it).
//! Bounded: at most 2 × 3,000 requests, and 120 s of waiting for Prometheus.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod agent_support;

use agent_support::{Agent, Running, app, http_get};

/// A free port on 127.0.0.1 (bound, then released for the process that takes it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The shipped rules with test-friendly windows: every `for:` 3 s, `[1h]` 1 m.
fn rules_for_the_test() -> (String, String) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/leakhound.rules.yml");
    let text = std::fs::read_to_string(shipped).expect("the shipped rules");
    let mut floor_expr = None;
    let mut out = String::new();
    let mut in_floor_rule = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("- alert: ") {
            in_floor_rule = t == "- alert: LeakhoundMemoryFloorRising";
        }
        if in_floor_rule && let Some(e) = t.strip_prefix("expr: ") {
            floor_expr = Some(e.to_owned());
        }
        if t.starts_with("for: ") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}for: 3s\n"));
        } else {
            out.push_str(&line.replace("[1h]", "[1m]"));
            out.push('\n');
        }
    }
    (out, floor_expr.expect("the floor alert's expression"))
}

/// `value` percent-encoded for a query string.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `app` labels of the series an instant query returns.
fn query_apps(prom: SocketAddr, query: &str) -> Vec<String> {
    let (status, body) = http_get(
        prom,
        &format!("/api/v1/query?query={}", encode(query)),
        "application/json",
    );
    assert_eq!(status, 200, "{query}: {body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(doc["status"], "success", "{doc}");
    let mut apps: Vec<String> = doc["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["app"].as_str().map(str::to_owned))
        .collect();
    apps.sort();
    apps.dedup();
    apps
}

fn prometheus_available() -> bool {
    let found = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus (Debian package prometheus) is missing: .ci/run installs it"
        );
        #[allow(clippy::print_stderr, reason = "a skipped test says so")]
        {
            eprintln!("SKIPPED: the prometheus binary (Debian package prometheus) is not installed");
        }
    }
    found
}

/// Prometheus answers 200 on `/-/ready`.
fn ready(prom: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(prom) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut answer = String::new();
    s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n").is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
}

/// Sends one `GET /` over a new connection; true when answered.
fn request(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: shop\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.")
}

/// An agent watching `shop.js` on `port` (`leak` or its fixed twin) with forced GCs every
/// 250 ms for quick floor points.
fn agent(name: &str, port: u16, leak: bool) -> Agent {
    let shop = app("shop.js");
    Agent::start_with_env(
        &[
            "--quiet",
            "--app-name",
            name,
            "--sample-ms",
            "250",
            "--gc-interval-ms",
            "250",
            "--warmup",
            "2",
            "--duration",
            "180",
            "--",
            "node",
            shop.to_str().unwrap(),
        ],
        &[
            ("PORT", port.to_string()),
            ("SHOP_LEAK", if leak { "1" } else { "0" }.to_owned()),
        ],
    )
}

#[test]
fn prometheus_sees_the_floor_alert_for_the_leaky_app_only() {
    if !prometheus_available() {
        return;
    }
    let (leaky_port, fixed_port) = (free_port(), free_port());
    let leaky = agent("leaky", leaky_port, true);
    let fixed = agent("fixed", fixed_port, false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(request(leaky_port) && request(fixed_port)) {
        assert!(Instant::now() < deadline, "the apps never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = tempfile::tempdir().unwrap();
    let (rules, floor_expr) = rules_for_the_test();
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nscrape_configs:\n  - job_name: leakhound\n    static_configs:\n      - targets: ['{}', '{}']\n",
        leaky.addr, fixed.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={prom_addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prometheus = Running(Some(prometheus));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(prom_addr) {
        assert!(Instant::now() < deadline, "prometheus never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The same bounded load on both: 40 requests a second each, 3,000 at most.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0;
            while sent < 3000 && !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                request(leaky_port);
                request(fixed_port);
                sent += 1;
                std::thread::sleep(Duration::from_millis(25).saturating_sub(t.elapsed()));
            }
            sent
        })
    };

    let up = "up{job=\"leakhound\"} == 1";
    let firing = "ALERTS{alertname=\"LeakhoundMemoryFloorRising\", alertstate=\"firing\"}";
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_both_up = false;
    let leaky_flagged_at = loop {
        // `up` has no app label: its series are counted by instance.
        let (_, body) = http_get(
            prom_addr,
            &format!("/api/v1/query?query={}", encode(up)),
            "application/json",
        );
        seen_both_up |= body.matches("\"instance\"").count() == 2;
        let apps = query_apps(prom_addr, &floor_expr);
        assert!(
            !apps.contains(&"fixed".to_owned()),
            "the fixed twin is flagged: {apps:?}"
        );
        if apps == ["leaky"] {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the leak alert's expression never held for the leaky app"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(seen_both_up, "Prometheus scraped both agents");
    // The alert itself (its `for:` shortened to 3 s) fires for the leaky app; the fixed
    // twin, under the same load for as long, stays unflagged.
    let mut fired = false;
    while leaky_flagged_at.elapsed() < Duration::from_secs(15) {
        let apps = query_apps(prom_addr, &floor_expr);
        assert!(
            !apps.contains(&"fixed".to_owned()),
            "the fixed twin is flagged: {apps:?}"
        );
        let alerting = query_apps(prom_addr, firing);
        assert!(!alerting.contains(&"fixed".to_owned()), "{alerting:?}");
        fired |= alerting == ["leaky"];
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    let sent = load.join().expect("the load thread");
    assert!(fired, "LeakhoundMemoryFloorRising fired for the leaky app");
    assert!(sent > 100, "the load ran: {sent} requests each");
    drop(leaky);
    drop(fixed);
}
