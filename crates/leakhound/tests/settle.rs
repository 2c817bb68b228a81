//! End-to-end tests of the settle step (`leakhound-hunt`'s `settle`): a TTL cache whose
//! entries are deleted by one-shot `setTimeout`s longer than the hunt's phases is no leak
//! once a `settled` snapshot is taken after the timers are due; the same cache whose
//! timers delete the wrong key stays a leak, named by the cache; timers the hunt may not
//! wait for, or an app gone during the wait, leave the leak with what would decide it;
//! intervals are never waited for; each cluster worker settles its own cache; an attached
//! app settles and is left running; and `leaks` on the three snapshots alone says the
//! timers may not be due yet (or, for intervals, never are).
//!
//! The test servers are `tests/settle_apps/` (a TTL of 5 s). Each hunt is small (100
//! warm-up requests, 2 phases of 300) and bounded by [`HUNT_LIMIT`]; at most two run at
//! once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Slot, read_all};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
/// The test servers' TTL, ms.
const TTL_MS: u64 = 5000;
/// A hunt that runs longer than this is killed and fails its test.
const HUNT_LIMIT: Duration = Duration::from_secs(75);

fn app(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(path)
}

/// A finished leakhound run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// The app's pid, from `$PID_FILE`.
    app_pid: Option<u32>,
    /// The hunt's output folder.
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.context()))
    }

    fn context(&self) -> String {
        format!(
            "exit {:?} after {:.1} s\n--- stderr ---\n{}\n--- stdout (first 3000 chars) ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stderr,
            self.stdout.chars().take(3000).collect::<String>()
        )
    }

    /// The app is gone (or a zombie) within a few seconds of leakhound's exit.
    fn assert_app_gone(&self) {
        let pid = self
            .app_pid
            .unwrap_or_else(|| panic!("the app never wrote its pid file\n{}", self.context()));
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()) == Some("Z"))
                .unwrap_or(true)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone() {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!(
                    "the app (pid {pid}) still runs after leakhound exited\n{}",
                    self.context()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// No half-written snapshot is left in the output folder.
    fn assert_no_partial_files(&self) {
        let names: Vec<String> = std::fs::read_dir(&self.out)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            names.iter().all(|n| !n.contains(".partial")),
            "partial files left: {names:?}"
        );
    }
}

/// `leakhound hunt --json` of `app_file` (under `tests/`) with a small bounded load
/// (300 requests per phase), `TTL_MS` set, and `extra` arguments.
fn hunt(app_file: &str, extra: &[&str]) -> Run {
    hunt_n(app_file, 300, extra)
}

/// [`hunt`] with `requests` per phase.
fn hunt_n(app_file: &str, requests: u64, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("snapshots");
    let pid_file = dir.path().join("app.pid");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args([
            "hunt",
            "--json",
            "--requests",
            &requests.to_string(),
            "--warmup",
            "100",
            "--phases",
            "2",
            "--calm-down-ms",
            "300",
            "--gc-interval-ms",
            "200",
            "--out-dir",
        ])
        .arg(&out)
        .args(extra)
        .arg("--")
        .arg("node")
        .arg(app(app_file))
        .env("PID_FILE", &pid_file)
        .env("TTL_MS", TTL_MS.to_string())
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let _slot = Slot::take();
    let started = Instant::now();
    let mut child: Child = cmd.spawn().expect("cannot start leakhound");
    let stdout = read_all(child.stdout.take().expect("stdout"));
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let status = loop {
        match child.try_wait().expect("wait for leakhound") {
            Some(s) => break s,
            None if started.elapsed() > HUNT_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|p| p.trim().parse::<u32>().ok())
                {
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
                let err = stderr.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                panic!(
                    "leakhound did not finish within {} s; killed it\n{err}",
                    HUNT_LIMIT.as_secs()
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let elapsed = started.elapsed();
    let pipe = |rx: &mpsc::Receiver<String>, name: &str| {
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("leakhound exited but its {name} stayed open: a process it started still runs"))
    };
    Run {
        code: status.code(),
        stdout: pipe(&stdout, "stdout"),
        stderr: pipe(&stderr, "stderr"),
        elapsed,
        app_pid: std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok()),
        out,
        _dir: dir,
    }
}

fn holders(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["holder"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The `leakhound leaks --json` of the baseline, target and final snapshots of a hunt.
fn leaks_of(run: &Run, args: &[&str]) -> (Option<i32>, String) {
    let snap = |name: &str| run.out.join(name).display().to_string();
    let output = Command::new(BIN)
        .arg("leaks")
        .args(args)
        .args([
            snap("01-baseline.heapsnapshot"),
            snap("02-target.heapsnapshot"),
            snap("03-final.heapsnapshot"),
        ])
        .output()
        .expect("leakhound leaks");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The TTL cache is no leak: the three snapshots alone showed the timer list and the
/// cache growing (both are in `settle.dropped_clusters`, with their counts), and the
/// settled snapshot, taken after the TTL once the load stopped, dropped both. Memory is
/// back at the baseline then. `leaks` on the same three snapshots (no app to wait on)
/// reports the growth, and says of the timer list that it may not be due yet and what
/// decides it.
#[test]
fn a_ttl_cache_whose_timers_are_not_due_yet_is_no_leak_once_settled() {
    let run = hunt("settle_apps/ttl.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "no leak\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(doc["clusters"].as_array().map(Vec::len), Some(0), "{ctx}");
    let settle = &doc["settle"];
    assert_eq!(settle["status"], "settled", "{settle:#}\n{ctx}");
    // The timers that called for it: one-shot, of the TTL, counted in the live app.
    let timers = &settle["timers"][0];
    assert_eq!(timers["holder"], format!("timerListMap[{TTL_MS}]"), "{settle:#}");
    assert_eq!(timers["duration_ms"].as_u64(), Some(TTL_MS), "{settle:#}");
    assert_eq!(timers["repeating"].as_u64(), Some(0), "{settle:#}");
    // What the three snapshots called a leak, dropped with why.
    let dropped = holders(&settle["dropped_clusters"]);
    assert!(
        dropped.contains(&"cache".to_owned()) && dropped.contains(&format!("timerListMap[{TTL_MS}]")),
        "the cache and the timer list grew until the final snapshot: {dropped:?}\n{settle:#}"
    );
    for d in settle["dropped_clusters"].as_array().into_iter().flatten() {
        let counts: Vec<u64> = d["counts_per_snapshot"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        assert!(
            counts.len() == 3 && counts[0] < counts[1] && counts[1] < counts[2],
            "it grew through baseline, target and final: {d:#}"
        );
        let why = d["why"].as_str().unwrap_or("");
        assert!(
            why.starts_with(&format!(
                "pending one-shot timers of {TTL_MS} ms: gone in a snapshot taken "
            )) && why.ends_with(" after the load stopped"),
            "{why}"
        );
    }
    // The settled snapshot came after the TTL, counted from the end of the load.
    let after = settle["after_load_ms"].as_u64().unwrap_or(0);
    assert!(
        after >= TTL_MS,
        "taken {after} ms after the load: before the timers were due"
    );
    let snapshot = settle["snapshot"].as_str().unwrap_or("");
    assert!(
        snapshot.ends_with("04-settled.heapsnapshot") && Path::new(snapshot).is_file(),
        "{snapshot}"
    );
    assert!(
        doc["snapshots"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["label"] == "settled")),
        "the settled snapshot is listed\n{ctx}"
    );
    assert_eq!(settle["calm_down"]["returned_to_baseline"], true, "{settle:#}");
    let reason = doc["reason"].as_str().unwrap_or("");
    assert!(reason.contains("grew only until the final snapshot"), "{reason}");
    run.assert_app_gone();
    run.assert_no_partial_files();

    // The same three snapshots offline: the growth is there, with the note on the timers.
    let (code, out) = leaks_of(&run, &["--json", "--requests-per-step", "300"]);
    assert_eq!(code, Some(1), "the three snapshots alone show growth\n{out}");
    let leaks: Value = serde_json::from_str(&out).expect("leaks --json");
    let clusters = leaks["clusters"].as_array().cloned().unwrap_or_default();
    let timer_list = clusters
        .iter()
        .find(|c| c["holder"] == format!("timerListMap[{TTL_MS}]"))
        .unwrap_or_else(|| panic!("the timer list is a cluster: {:?}", holders(&leaks["clusters"])));
    assert_eq!(timer_list["timer_list"]["duration_ms"].as_u64(), Some(TTL_MS));
    // One-shot in the snapshot itself: their `_repeat` is null.
    assert!(
        timer_list["timer_list"]["one_shot"].as_u64().unwrap_or(0) >= 300,
        "{timer_list:#}"
    );
    assert_eq!(
        timer_list["timer_list"]["repeating"].as_u64(),
        Some(0),
        "{timer_list:#}"
    );
    let note = timer_list["timer_list"]["note"].as_str().unwrap_or("");
    assert!(
        note.contains("may simply not be due yet") && note.contains("after the load stopped decides it"),
        "{note}"
    );
    // Other clusters carry no such note.
    assert!(
        clusters
            .iter()
            .filter(|c| c["holder"] == "cache")
            .all(|c| c.get("timer_list").is_none()),
        "{out}"
    );
    let (_, text) = leaks_of(&run, &[]);
    assert!(
        text.contains(&format!("timers of {TTL_MS} ms: ")) && text.contains(" one-shot timers (setTimeout"),
        "{text}"
    );
}

/// The TTL cache whose timers delete the wrong key leaks: the timer list is gone in the
/// settled snapshot (the timers fired), the cache is still growing there, and the
/// verdict names it.
#[test]
fn a_ttl_cache_whose_timers_delete_the_wrong_key_stays_a_leak_named_by_the_cache() {
    let run = hunt("settle_apps/ttl_leak.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "a leak\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["verdict"], "leak", "{ctx}");
    assert_eq!(doc["clusters"][0]["holder"], "cache", "{ctx}");
    assert_eq!(doc["clusters"][0]["pattern"], "unbounded_collection", "{ctx}");
    let settle = &doc["settle"];
    assert_eq!(settle["status"], "settled", "{settle:#}\n{ctx}");
    assert_eq!(settle["kept_clusters"][0], "cache", "{settle:#}");
    assert!(
        holders(&settle["dropped_clusters"]).contains(&format!("timerListMap[{TTL_MS}]")),
        "the timers fired: their list no longer grows\n{settle:#}"
    );
    let reason = doc["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("cache (Map) keeps") && reason.contains("still growing in a snapshot taken"),
        "{reason}"
    );
    run.assert_app_gone();
    run.assert_no_partial_files();
}

/// A hunt that may not wait as long as the timers need leaves the clusters as they are,
/// a leak, but says which timers may not have been due and what would decide it.
#[test]
fn timers_longer_than_the_wait_allowed_leave_the_leak_with_what_would_decide_it() {
    let run = hunt("settle_apps/ttl.js", &["--settle-max-wait", "2s"]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the three snapshots' leak stands\n{ctx}");
    let doc = run.json();
    let settle = &doc["settle"];
    assert_eq!(settle["status"], "not_settled", "{settle:#}\n{ctx}");
    assert!(settle.get("snapshot").is_none(), "{settle:#}");
    let next = doc["what_would_decide"].as_str().unwrap_or("");
    assert!(
        next.contains("after the load stops") && next.contains("--settle-max-wait 5s"),
        "{next}"
    );
    let reason = doc["reason"].as_str().unwrap_or("");
    assert!(reason.contains("may free what the clusters hold"), "{reason}");
    // The timer list's cluster says the same.
    let timers = doc["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["holder"] == format!("timerListMap[{TTL_MS}]")))
        .unwrap_or_else(|| panic!("the timer list is a cluster\n{ctx}"));
    let note = timers["timer_list"]["note"].as_str().unwrap_or("");
    assert!(
        note.contains("no settled snapshot was taken") && note.contains("--settle-max-wait 5s"),
        "{note}"
    );
    assert!(
        run.elapsed < Duration::from_secs(TTL_MS / 1000 + 20),
        "it did not wait for the timers"
    );
    run.assert_app_gone();
}

/// Intervals started per request never come due: counted as repeating in the live app,
/// they are not waited for, and the leak stands.
#[test]
fn intervals_are_never_waited_for() {
    let run = hunt("apps/interval_leak.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "a leak\n{ctx}");
    let doc = run.json();
    let settle = &doc["settle"];
    assert_eq!(settle["status"], "repeating", "{settle:#}\n{ctx}");
    assert_eq!(settle["timers"][0]["one_shot"].as_u64(), Some(0), "{settle:#}");
    assert!(settle["timers"][0]["repeating"].as_u64().unwrap_or(0) > 0, "{settle:#}");
    assert!(
        doc["clusters"][0]["timer_list"]["note"]
            .as_str()
            .unwrap_or("")
            .contains("they never come due"),
        "{ctx}"
    );
    assert!(doc.get("what_would_decide").is_none(), "{ctx}");
    assert!(
        doc["snapshots"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["label"] != "settled")),
        "no settled snapshot\n{ctx}"
    );
    assert!(
        run.elapsed < Duration::from_secs(40),
        "it did not wait for the 60 s intervals: {:?}",
        run.elapsed
    );
    run.assert_app_gone();
    // Offline too, the snapshots say they repeat (no `_repeat` edge: a number there).
    let (code, out) = leaks_of(&run, &["--json", "--requests-per-step", "300"]);
    assert_eq!(code, Some(1), "{out}");
    let leaks: Value = serde_json::from_str(&out).expect("leaks --json");
    let timer_list = &leaks["clusters"][0]["timer_list"];
    assert_eq!(timer_list["one_shot"].as_u64(), Some(0), "{timer_list:#}");
    assert!(timer_list["repeating"].as_u64().unwrap_or(0) >= 300, "{timer_list:#}");
    assert!(
        timer_list["note"].as_str().unwrap_or("").contains("never come due"),
        "{timer_list:#}"
    );
}

/// An app gone while the hunt waits for its timers gives no settled snapshot: the
/// clusters of the three snapshots stand, and the verdict says the timers may not have
/// been due, why nothing decided it, and what would.
#[test]
fn an_app_gone_during_the_wait_leaves_the_leak_with_what_would_decide_it() {
    let run = hunt("settle_apps/ttl_dies.js", &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the three snapshots' leak stands\n{ctx}");
    let doc = run.json();
    let settle = &doc["settle"];
    assert_eq!(settle["status"], "not_settled", "{settle:#}\n{ctx}");
    let why = settle["why_not"].as_str().unwrap_or("");
    assert!(why.starts_with("the app stopped while waiting for them"), "{why}");
    let next = doc["what_would_decide"].as_str().unwrap_or("");
    assert!(
        next.contains("after the load stops, with the app still running"),
        "{next}"
    );
    assert!(
        doc["reason"]
            .as_str()
            .unwrap_or("")
            .contains("were still pending at the final snapshot"),
        "{ctx}"
    );
    assert!(
        doc["snapshots"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["label"] != "settled")),
        "no settled snapshot\n{ctx}"
    );
    run.assert_app_gone();
    run.assert_no_partial_files();
}

/// In a cluster, each worker that served the load settles on its own: its timer list and
/// cache are dropped by its own settled snapshot, and the app is no leak.
#[test]
fn each_cluster_worker_settles_its_own_ttl_cache() {
    let run = hunt_n("settle_apps/ttl_cluster.js", 600, &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "no leak\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["verdict"], "no_leak", "{ctx}");
    let workers: Vec<&Value> = doc["processes"]
        .as_array()
        .map(|p| p.iter().filter(|p| p["kind"] == "cluster_worker").collect())
        .unwrap_or_default();
    assert_eq!(workers.len(), 2, "{ctx}");
    let mut settled = 0;
    for w in &workers {
        assert_eq!(w["verdict"], "no_leak", "{}\n{ctx}", w["name"]);
        if w["settle"]["status"] == "settled" {
            settled += 1;
            // The timer list and the cache (whose label in a block-scoped context is not
            // what this test is about).
            let dropped = holders(&w["settle"]["dropped_clusters"]);
            assert!(
                dropped.len() >= 2 && dropped.contains(&format!("timerListMap[{TTL_MS}]")),
                "{:#}",
                w["settle"]
            );
            assert!(
                w["snapshots"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["label"] == "settled")),
                "{ctx}"
            );
        }
    }
    assert!(settled >= 1, "a worker that served the load settled\n{ctx}");
    // The top-level record is a worker's: the primary serves nothing.
    assert_eq!(doc["settle"]["status"], "settled", "{ctx}");
    run.assert_app_gone();
    run.assert_no_partial_files();
}

/// A running app hunted with `--attach` settles too (the settled snapshot through the
/// same path, headroom checked), and is left running.
#[test]
fn an_attached_ttl_cache_settles_and_is_left_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut app = Command::new("node")
        .arg("--inspect-port=0")
        .arg(app("settle_apps/ttl.js"))
        .env("PORT", port.to_string())
        .env("TTL_MS", TTL_MS.to_string())
        .env_remove("PID_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    // Let node install its SIGUSR1 handler and listen.
    std::thread::sleep(Duration::from_millis(700));
    let dir = tempfile::tempdir().expect("tempdir");
    let _slot = Slot::take();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args([
            "hunt",
            "--json",
            "--requests",
            "300",
            "--warmup",
            "100",
            "--calm-down-ms",
            "300",
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--attach",
            &app.id().to_string(),
            "--out-dir",
        ])
        .arg(dir.path().join("snapshots"))
        .output()
        .expect("run leakhound hunt");
    let alive = app.try_wait().expect("try_wait").is_none();
    let _ = app.kill();
    let _ = app.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("after {:?}\n{stderr}", started.elapsed());
    assert!(alive, "an attached app is never stopped\n{ctx}");
    assert_eq!(out.status.code(), Some(0), "no leak\n{ctx}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(doc["settle"]["status"], "settled", "{:#}\n{ctx}", doc["settle"]);
    assert!(
        holders(&doc["settle"]["dropped_clusters"]).contains(&"cache".to_owned()),
        "{:#}",
        doc["settle"]
    );
}
