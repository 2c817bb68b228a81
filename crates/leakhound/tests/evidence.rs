//! Evidence capture in production (`watch --capture-dir`, issue 14), on real node servers
//! that leak at a steady rate under a bounded load they drive at themselves
//! (`tests/evidence_apps/`): a rising floor gets a series of snapshots and the leak
//! finder's report naming the holder, while the fixed twin under the same load gets
//! nothing; a short memory headroom skips every snapshot and keeps a sampling heap profile
//! instead; `--restart-above` restarts the app with its snapshot kept and watches the new
//! process. Durations are shortened with the capture flags.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/evidence_apps")
        .join(name)
}

/// `leakhound watch --json` of `app` with `flags`, capturing into `dir`; exit code, the
/// final JSON and stderr.
fn watch(app_file: &str, dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let mut c = Command::new(BIN);
    c.args([
        "watch",
        "--json",
        "--sample-ms",
        "200",
        "--gc-interval-ms",
        "300",
        "--warmup",
        "0.5",
    ])
    .arg("--capture-dir")
    .arg(dir)
    .args(flags)
    .arg("--")
    .arg("node")
    .arg(app(app_file));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("leakhound runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), json, stderr)
}

/// The episode folders under `dir`, oldest first.
fn episodes(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("episode-"))
    });
    v.sort();
    v
}

fn report(episode: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(episode.join("report.json")).expect("report.json")).expect("JSON")
}

/// No `*.partial-*` file is left anywhere under `dir`.
fn no_partial_files(dir: &Path) {
    for e in episodes(dir) {
        for f in std::fs::read_dir(&e).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".partial-"), "{name} in {}", e.display());
        }
    }
}

const QUICK: &[&str] = &["--capture-after", "2s", "--captures", "3", "--capture-interval", "2s"];

#[test]
fn a_rising_floor_captures_a_series_that_names_the_holder_and_the_fixed_twin_captures_nothing() {
    let leak_dir = tempfile::tempdir().unwrap();
    let fixed_dir = tempfile::tempdir().unwrap();
    let flags: Vec<&str> = [&["--duration", "25"][..], QUICK].concat();
    let (leak, fixed) = std::thread::scope(|s| {
        let a = s.spawn(|| watch("steady-leak.js", leak_dir.path(), &flags, &[]));
        let b = s.spawn(|| watch("steady-fixed.js", fixed_dir.path(), &flags, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });

    let (code, _, stderr) = leak;
    assert_eq!(code, Some(1), "{stderr}");
    let eps = episodes(leak_dir.path());
    assert_eq!(eps.len(), 1, "one episode (then the cooldown): {stderr}");
    let r = report(&eps[0]);
    assert_eq!(r["kind"], "episode");
    assert_eq!(r["trigger"], "rising_floor");
    assert_eq!(r["verdict"], "leak", "{r:#}");
    assert_eq!(r["top_holder"], "inflight", "{r:#}");
    assert_eq!(r["clusters"][0]["pattern"], "unbounded_collection");
    let snaps = r["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    for s in snaps {
        assert_eq!(s["status"], "taken", "{s}");
        assert!(Path::new(s["path"].as_str().unwrap()).is_file());
    }
    for f in ["report.txt", "report.html", "profile.heapprofile"] {
        assert!(eps[0].join(f).is_file(), "{f}");
    }
    assert!(stderr.contains("the leak finder names inflight"), "{stderr}");
    no_partial_files(leak_dir.path());

    let (code, _, stderr) = fixed;
    assert_ne!(code, Some(1), "the fixed twin: {stderr}");
    assert!(
        episodes(fixed_dir.path()).is_empty(),
        "the fixed twin captured: {stderr}"
    );
}

#[test]
fn a_short_headroom_skips_the_snapshots_and_keeps_a_sampling_profile() {
    let dir = tempfile::tempdir().unwrap();
    let flags: Vec<&str> = [&["--duration", "16"][..], QUICK].concat();
    // The documented override of the free-memory figure: 1 MiB is free for the app.
    let (code, _, stderr) = watch(
        "steady-leak.js",
        dir.path(),
        &flags,
        &[("LEAKHOUND_AVAILABLE_BYTES", "1M")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let eps = episodes(dir.path());
    assert_eq!(eps.len(), 1, "{stderr}");
    let r = report(&eps[0]);
    let snaps = r["snapshots"].as_array().unwrap();
    assert!(!snaps.is_empty());
    for s in snaps {
        assert_eq!(
            (s["status"].as_str(), s["skip_reason"].as_str()),
            (Some("skipped"), Some("headroom")),
            "{s}"
        );
    }
    // No snapshot file, but a profile in DevTools' .heapprofile format.
    let files: Vec<String> = std::fs::read_dir(&eps[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.ends_with(".heapsnapshot")), "{files:?}");
    let profile: Value = serde_json::from_slice(&std::fs::read(eps[0].join("profile.heapprofile")).unwrap()).unwrap();
    assert_eq!(profile["head"]["callFrame"]["functionName"], "(root)");
    assert!(
        profile["head"]["children"].is_array() && profile["samples"].is_array(),
        "{profile}"
    );
    assert!(
        r["leaks_not_run"].as_str().unwrap_or("").contains("needs three"),
        "{r:#}"
    );
    assert!(stderr.contains("snapshot skipped (headroom)"), "{stderr}");
}

#[test]
fn restart_above_restarts_the_app_with_its_snapshot_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (code, json, stderr) = watch(
        "steady-leak.js",
        dir.path(),
        &["--duration", "25", "--restart-above", "heap:6M", "--kill-timeout", "2s"],
        &[],
    );
    assert!(code.is_some(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("restarted the app (--restart-above)"))
        .unwrap_or_else(|| panic!("no restart: {stderr}"));
    let old_pid: u32 = line
        .split("pid ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The new process is the one watched to the end, and the old one is gone.
    assert_ne!(json["pid"].as_u64(), Some(u64::from(old_pid)), "{json}");
    assert!(
        !Path::new(&format!("/proc/{old_pid}")).exists(),
        "pid {old_pid} still runs"
    );
    // Its evidence was kept: one snapshot, before the restart.
    let eps = episodes(dir.path());
    let first = eps.first().unwrap_or_else(|| panic!("no evidence: {stderr}"));
    assert!(
        first
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(&format!("-pid{old_pid}"))
    );
    let r = report(first);
    assert_eq!(r["trigger"], "restart", "{r:#}");
    assert_eq!(r["snapshots"][0]["status"], "taken", "{r:#}");
    assert!(first.join("01.heapsnapshot").is_file());
}

#[test]
fn near_the_heap_limit_one_snapshot_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    // A small heap limit (about 75 MB with --max-old-space-size=24) and a fast leak: 11 %
    // of it is passed within seconds, long before the floor's hour would start an episode.
    let mut c = Command::new(BIN);
    c.args([
        "watch",
        "--json",
        "--duration",
        "14",
        "--sample-ms",
        "200",
        "--gc-interval-ms",
        "300",
    ])
    .args([
        "--warmup",
        "0.5",
        "--capture-after",
        "1h",
        "--capture-near-limit",
        "11%",
    ])
    .arg("--capture-dir")
    .arg(dir.path())
    .args(["--", "node", "--max-old-space-size=24"])
    .arg(app("steady-leak.js"))
    .env("LEAKHOUND_RATE_MS", "1");
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let eps = episodes(dir.path());
    assert_eq!(eps.len(), 1, "once, not at every sample: {stderr}");
    let r = report(&eps[0]);
    assert_eq!(r["trigger"], "near_limit", "{r:#}");
    assert!(
        r["trigger_text"].as_str().unwrap().contains("of V8's heap limit"),
        "{r:#}"
    );
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(r["snapshots"][0]["status"], "taken");
    no_partial_files(dir.path());
}

/// `GET path` on `addr`, its status line's code and how long the answer took.
fn get(addr: &str, path: &str) -> (u16, std::time::Duration) {
    use std::io::{Read, Write};
    let t = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let code = buf.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, t.elapsed())
}

#[test]
fn metrics_and_health_answer_while_a_snapshot_is_written() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "watch",
            "--duration",
            "20",
            "--sample-ms",
            "200",
            "--gc-interval-ms",
            "300",
            "--warmup",
            "0.5",
        ])
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--capture-after",
            "1s",
            "--captures",
            "2",
        ])
        .args(["--capture-interval", "1s", "--capture-dir"])
        .arg(dir.path())
        .args(["--", "node"])
        .arg(app("steady-leak.js"))
        .env("LEAKHOUND_PREFILL_MB", "40")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    let mut scrapes = Vec::new();
    let mut capturing = false;
    let mut log = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < until {
        while let Ok(line) = rx.try_recv() {
            if let Some(rest) = line.split("metrics on http://").nth(1) {
                addr = rest.split('/').next().map(str::to_owned);
            }
            if line.contains("capturing into") {
                capturing = true;
            }
            if line.contains("report in") {
                capturing = false;
            }
            log.push(line);
        }
        if log.iter().any(|l| l.contains("report in")) && !capturing {
            break;
        }
        if let (Some(a), true) = (&addr, capturing) {
            scrapes.push(get(a, "/metrics"));
            scrapes.push(get(a, "/health"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    assert!(log.contains("report in"), "no episode finished: {log}");
    assert!(
        scrapes.len() >= 4,
        "scraped during the capture: {} times\n{log}",
        scrapes.len()
    );
    let slowest = scrapes.iter().map(|s| s.1).max().unwrap();
    assert!(scrapes.iter().all(|s| s.0 == 200), "{scrapes:?}");
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "a scrape waited {slowest:?} during a capture"
    );
}
