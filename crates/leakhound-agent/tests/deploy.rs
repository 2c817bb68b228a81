//! What `deploy/` ships against what the agent serves: the alert rules pass `promtool check
//! rules` and their unit tests (`promtool test rules`), every metric the rules and the
//! Grafana dashboard read is one the agent writes (rendered here from a board), and every
//! dashboard query is valid PromQL (checked by promtool as a recording rule). Also the
//! page and `/health` of a board, without a live app: the verdict series agree with the
//! watch's verdict.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use leakhound_agent::health::health;
use leakhound_agent::{Board, Format, HealthConfig, HealthStatus, HeapThreshold};
use leakhound_hunt::{Isolate, IsolateKind, TargetKey, TargetStatus, WatchEvent, judge_watch};
use leakhound_inspector::{GcKind, GcKindStats, HeapSpace};
use leakhound_leaks::{MemorySample, analyze_floor};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// promtool, or None (said on stderr) when it is missing outside CI; in CI (`CI` set) a
/// missing promtool fails: `.ci/run` installs it.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool (Debian package prometheus) is missing: .ci/run installs it"
        );
        #[allow(clippy::print_stderr, reason = "a skipped check says so")]
        {
            eprintln!("SKIPPED: promtool (Debian package prometheus) is not installed");
        }
    }
    found.then_some("promtool")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run promtool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A watched process with `points` floor points rising by `rise` bytes a minute.
fn status(index: usize, pid: u32, points: u64, rise: u64) -> TargetStatus {
    let samples: Vec<MemorySample> = (0..points)
        .map(|i| MemorySample {
            t_ms: i as f64 * 60_000.0,
            heap_used_bytes: (40 << 20) + i * rise,
            heap_total_bytes: 64 << 20,
            external_bytes: 1 << 20,
            array_buffers_bytes: 10_000,
            rss_bytes: 90 << 20,
            after_full_gc: true,
            ..Default::default()
        })
        .collect();
    let floor = analyze_floor(&samples, 0.0);
    let (verdict, reason, what_would_decide) = judge_watch(&floor, std::time::Duration::from_secs(points * 60));
    TargetStatus {
        index,
        target: index,
        isolate: Isolate::process(pid, IsolateKind::Main),
        key: TargetKey { pid, thread_id: None },
        attached: true,
        up: true,
        since: Instant::now(),
        last: samples.last().copied(),
        last_floor: samples.last().copied(),
        heap_limit_bytes: Some(4 << 30),
        heap_spaces: vec![HeapSpace {
            name: "old_space".into(),
            used_bytes: 30 << 20,
            size_bytes: 40 << 20,
            available_bytes: 10 << 20,
            physical_bytes: 40 << 20,
        }],
        gc: vec![GcKindStats {
            kind: GcKind::Major,
            count: 12,
            sum_seconds: 0.3,
            buckets: [2, 12, 12, 12],
        }],
        app_uptime_seconds: Some(3600.0),
        floor,
        verdict,
        reason,
        what_would_decide,
        ended: None,
    }
}

/// A board with a leaking process (index 0) and a flat one (index 1).
fn board() -> Board {
    let mut b = Board::new("shop");
    for (i, (pid, rise)) in [(101, 4 << 20), (202, 0)].into_iter().enumerate() {
        b.apply(&WatchEvent::Started {
            target: i,
            pid,
            attached: true,
        });
        b.apply(&WatchEvent::Status(Box::new(status(i, pid, 40, rise))));
    }
    b
}

/// Metric names (`leakhound_…`, `v8js_…`) in a text: the series names of a page or the
/// names a query reads, histograms' `_bucket`/`_sum`/`_count` series under their own name.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("leakhound_") || rest.starts_with("v8js_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.insert(rest[..len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn the_page_and_health_of_a_board_agree_with_the_watch() {
    let board = board();
    let shared = std::sync::Arc::new(std::sync::RwLock::new(board.clone()));
    let page = leakhound_agent::metrics::render(&shared, Format::PrometheusText);
    let value = |needle: &str| -> f64 {
        page.lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle}:\n{page}"))
    };
    assert_eq!(
        value("leakhound_leak_verdict{app=\"shop\",pid=\"101\",thread_id=\"\",kind=\"heap_used\"}"),
        1.0
    );
    assert_eq!(
        value("leakhound_leak_verdict{app=\"shop\",pid=\"202\",thread_id=\"\",kind=\"heap_used\"}"),
        0.0
    );
    assert_eq!(
        value("leakhound_floor_points{app=\"shop\",pid=\"101\",thread_id=\"\",kind=\"heap_used\"}"),
        40.0
    );
    assert_eq!(value("leakhound_gc_full_total{app=\"shop\",pid=\"101\""), 12.0);
    assert_eq!(value("v8js_gc_type=\"major\",le=\"0.1\""), 12.0);
    assert_eq!(value("v8js_gc_type=\"major\",le=\"0.01\""), 2.0);
    // 4 MiB a minute.
    let per_s = value("pid=\"101\",thread_id=\"\",kind=\"heap_used\",bound=\"estimate\"}");
    assert!((per_s - (4 << 20) as f64 / 60.0).abs() < 1.0, "{per_s}");

    let (status, doc) = health(&board, &HealthConfig::default());
    assert_eq!(status, HealthStatus::Warning, "a rising floor warns: {doc:?}");
    assert_eq!(doc.targets[0].status, "warning");
    assert_eq!(doc.targets[1].status, "ok");
    let tight = HealthConfig {
        warn: HeapThreshold::Bytes(1 << 20),
        critical: "4%".parse().unwrap(),
    };
    // 40 MiB + 39 × 4 MiB = 196 MiB is above 4 % of 4 GiB (164 MiB); the flat one's 40 MiB
    // only above the warning.
    let (status, doc) = health(&board, &tight);
    assert_eq!(status, HealthStatus::Critical);
    assert_eq!(status.http_status(), 503);
    assert_eq!(doc.targets[1].status, "warning", "{doc:?}");
    let mut gone = board.clone();
    gone.apply(&WatchEvent::Ended {
        target: 1,
        pid: 202,
        reason: "the app exited or closed its inspector".into(),
    });
    let (_, doc) = health(&gone, &HealthConfig::default());
    assert_eq!(doc.targets[1].status, "critical");
    let page =
        leakhound_agent::metrics::render(&std::sync::Arc::new(std::sync::RwLock::new(gone)), Format::OpenMetrics);
    assert!(
        page.contains("leakhound_up{app=\"shop\",pid=\"202\",thread_id=\"\"} 0.0"),
        "{page}"
    );
    assert!(page.ends_with("# EOF\n"));
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let rules = deploy().join("prometheus/leakhound.rules.yml");
    run(Command::new(promtool).args(["check", "rules"]).arg(&rules));
    let tests = deploy().join("prometheus/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests)
        .expect("deploy/prometheus/tests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "rule unit tests in {}", tests.display());
    run(Command::new(promtool).args(["test", "rules"]).args(&files));
}

#[test]
fn the_rules_and_the_dashboard_read_only_metrics_the_agent_writes() {
    let shared = std::sync::Arc::new(std::sync::RwLock::new(board()));
    let page = leakhound_agent::metrics::render(&shared, Format::PrometheusText);
    let mut served = metric_names(&page);
    for name in served.clone() {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                served.insert(base.to_owned());
            }
        }
    }
    // Every metric the rules and the dashboard read is written now (restarts included).
    let to_come: BTreeSet<&str> = BTreeSet::new();
    let rules = std::fs::read_to_string(deploy().join("prometheus/leakhound.rules.yml")).unwrap();
    let exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(exprs.len(), 4, "{rules}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(deploy().join("grafana/leakhound.json")).unwrap())
            .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            queries.push(t["expr"].as_str().expect("an expr").to_owned());
        }
    }
    assert!(queries.len() >= 10, "{queries:?}");
    for q in exprs.iter().chain(&queries) {
        let names = metric_names(q);
        assert!(!names.is_empty(), "{q}");
        for n in names {
            assert!(
                served.contains(&n) || to_come.contains(n.as_str()),
                "{n} (in {q}) is not written by the agent: {served:?}"
            );
        }
    }
    // Every dashboard query parses: promtool checks it as a recording rule.
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let q = q.replace("$app", ".*").replace("$pid", ".*");
        file.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    let path = dir.path().join("dashboard.rules.yml");
    std::fs::write(&path, file).unwrap();
    run(Command::new(promtool).args(["check", "rules"]).arg(&path));
}

#[test]
fn captures_restarts_and_evidence_reach_the_metrics_and_health() {
    use leakhound_hunt::capture::SkipReason;
    use leakhound_hunt::capture_hook::CaptureEvent;
    let mut b = board();
    let key = TargetKey {
        pid: 101,
        thread_id: None,
    };
    for _ in 0..2 {
        b.apply_capture(&CaptureEvent::Skipped {
            key: key.clone(),
            reason: SkipReason::Busy,
        });
    }
    b.apply(&WatchEvent::Restarted {
        target: 1,
        old_pid: 202,
        new_pid: 303,
        restarts: 1,
    });
    let shared = std::sync::Arc::new(std::sync::RwLock::new(b));
    let page = leakhound_agent::metrics::render(&shared, Format::PrometheusText);
    assert!(
        page.contains("leakhound_captures_skipped_total{app=\"shop\",pid=\"101\",thread_id=\"\",reason=\"busy\"} 2"),
        "{page}"
    );
    assert!(page.contains("reason=\"headroom\"} 0"), "{page}");
    // One series per target whatever its pid, so increase() sees a restart.
    assert!(
        page.contains("leakhound_restarts_total{app=\"shop\",target=\"1\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("leakhound_restarts_total{app=\"shop\",target=\"0\"} 0"),
        "{page}"
    );
    let (_, doc) = health(&shared.read().unwrap(), &HealthConfig::default());
    assert_eq!(doc.targets[1].restarts, Some(1));
    assert_eq!(doc.targets[0].restarts, None);
}

/// An app's cluster workers and worker threads each get their own series and `/health`
/// entry; a worker that exits is `leakhound_up` 0 and only noted (not critical) while its
/// replacement is watched; the ended ones below an app are bounded on the board.
#[test]
fn isolates_below_an_app_are_series_of_their_own_and_ended_ones_are_bounded() {
    let mut b = Board::new("shop");
    b.apply(&WatchEvent::Started {
        target: 0,
        pid: 100,
        attached: true,
    });
    b.apply(&WatchEvent::Status(Box::new(status(0, 100, 10, 0))));
    let worker = |pid: u32, id: u32| Isolate {
        pid,
        kind: IsolateKind::ClusterWorker,
        thread_id: None,
        worker_id: Some(id),
    };
    let thread = Isolate {
        pid: 101,
        kind: IsolateKind::WorkerThread,
        thread_id: Some(1),
        worker_id: None,
    };
    for (index, isolate) in [(1, worker(101, 1)), (2, thread), (3, worker(102, 2))] {
        b.apply(&WatchEvent::Followed {
            index,
            target: 0,
            isolate,
            attached: true,
        });
        let mut st = status(index, isolate.pid, 10, if index == 2 { 4 << 20 } else { 0 });
        st.isolate = isolate;
        st.key.thread_id = isolate.thread_id.map(u64::from);
        b.apply(&WatchEvent::Status(Box::new(st)));
    }
    // Worker 2 exits.
    b.apply(&WatchEvent::Ended {
        target: 3,
        pid: 102,
        reason: "the process exited".into(),
    });
    let shared = std::sync::Arc::new(std::sync::RwLock::new(b.clone()));
    let page = leakhound_agent::metrics::render(&shared, Format::PrometheusText);
    for (labels, v) in [
        ("pid=\"100\",thread_id=\"\"", 1),
        ("pid=\"101\",thread_id=\"\"", 1),
        ("pid=\"101\",thread_id=\"1\"", 1),
        ("pid=\"102\",thread_id=\"\"", 0),
    ] {
        assert!(
            page.contains(&format!("leakhound_up{{app=\"shop\",{labels}}} {v}")),
            "{labels}: {page}"
        );
    }
    assert!(
        page.contains(
            "leakhound_isolate_info{app=\"shop\",pid=\"101\",thread_id=\"1\",kind=\"worker_thread\",worker_id=\"\"} 1"
        ),
        "{page}"
    );
    assert!(
        page.contains(
            "leakhound_isolate_info{app=\"shop\",pid=\"102\",thread_id=\"\",kind=\"cluster_worker\",worker_id=\"2\"} 1"
        ),
        "{page}"
    );
    // The thread's floor rises: its own verdict series.
    assert!(
        page.contains("leakhound_leak_verdict{app=\"shop\",pid=\"101\",thread_id=\"1\",kind=\"heap_used\"} 1"),
        "{page}"
    );
    // One restarts series per app, not per isolate.
    assert_eq!(page.matches("leakhound_restarts_total{").count(), 1, "{page}");
    let (overall, doc) = health(&b, &HealthConfig::default());
    assert_eq!(
        overall,
        HealthStatus::Warning,
        "the thread's rising floor warns: {doc:?}"
    );
    let gone = doc
        .targets
        .iter()
        .find(|t| t.pid == 102)
        .expect("the ended worker is listed");
    assert!(!gone.up);
    assert_eq!(gone.status, "ok", "a worker that exited is not critical: {doc:?}");
    assert_eq!(gone.kind.as_deref(), Some("cluster_worker"));
    assert_eq!(
        gone.reasons,
        vec!["cluster worker 2, pid 102 ended: the process exited".to_owned()]
    );
    assert_eq!(
        doc.targets
            .iter()
            .find(|t| t.thread_id == Some(1))
            .and_then(|t| t.name.clone()),
        Some("worker thread 1 of pid 101".to_owned())
    );
    // The app's own process that ends is critical.
    let mut all_gone = b.clone();
    all_gone.apply(&WatchEvent::Ended {
        target: 0,
        pid: 100,
        reason: "the app exited or closed its inspector".into(),
    });
    assert_eq!(health(&all_gone, &HealthConfig::default()).0, HealthStatus::Critical);
    // Workers replaced for ever: the board keeps the newest ended ones only.
    for n in 0..(leakhound_agent::ENDED_ISOLATES_KEPT as u32 + 10) {
        let index = 10 + n as usize;
        let pid = 1000 + n;
        b.apply(&WatchEvent::Followed {
            index,
            target: 0,
            isolate: worker(pid, 3 + n),
            attached: true,
        });
        b.apply(&WatchEvent::Ended {
            target: index,
            pid,
            reason: "the process exited".into(),
        });
    }
    let ended = b.entries().filter(|e| !e.up).count();
    assert_eq!(ended, leakhound_agent::ENDED_ISOLATES_KEPT);
    assert!(b.entries().any(|e| e.key.pid == 100 && e.up), "the app stays");
    assert!(
        b.entries()
            .any(|e| e.key.pid == 1000 + leakhound_agent::ENDED_ISOLATES_KEPT as u32 + 9),
        "the newest ended stays"
    );
}
