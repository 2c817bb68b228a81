//! `leakhound lint` through the real binary: exit codes, the JSON and SARIF documents,
//! and the link to the heap (`leaks` attaching findings to clusters, `lint --report`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leakhound"));
    c.env_remove("LEAKHOUND_NO_LINT");
    c
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../leakhound-lint/tests/fixtures")
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    bin().arg("lint").args(args).args(paths).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn exit_codes_follow_the_level_and_file_errors() {
    let leak = fixtures().join("listener-per-call/leak.js");
    let twin = fixtures().join("listener-per-call/ok.mjs");
    let info_only = fixtures().join("closure-keeps-large/leak.js");
    assert_eq!(run(&[], &[&leak]).status.code(), Some(1));
    assert_eq!(run(&[], &[&twin]).status.code(), Some(0));
    assert_eq!(run(&["--level", "error"], &[&leak]).status.code(), Some(0));
    assert_eq!(
        run(&[], &[&info_only]).status.code(),
        Some(0),
        "info is below the default level"
    );
    assert_eq!(run(&["--level", "info"], &[&info_only]).status.code(), Some(1));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.ts"), "const = ;\n").unwrap();
    let out = run(&["--format", "json"], &[dir.path()]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert_eq!(doc["file_errors"].as_array().unwrap().len(), 1);
    assert_eq!(doc["file_errors"][0]["line"], 1);

    let out = run(&[], &[Path::new("/no/such/folder")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stylish_lists_file_position_severity_message_rule_and_a_summary() {
    let leak = fixtures().join("listener-per-call/leak.js");
    let out = run(&[], &[&leak]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("listener-per-call/leak.js"), "{text}");
    assert!(
        lines[1].trim_start().starts_with("9:3 ")
            && lines[1].contains("warning")
            && lines[1].ends_with("listener-per-call"),
        "{text}"
    );
    assert!(lines[2].contains("fix: remove the listener"), "{text}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("✖ 2 problems (0 errors, 2 warnings, 0 infos)"),
        "{text}"
    );
}

#[test]
fn json_is_the_documented_object() {
    let out = run(
        &["--format", "json"],
        &[&fixtures().join("unbounded-collection/leak.js")],
    );
    let doc = json(&out);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["kind"], "lint");
    assert_eq!(doc["summary"]["warnings"], 4);
    let f = &doc["findings"][1];
    for key in [
        "rule",
        "severity",
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "message",
        "fix_hint",
        "subject",
        "function",
        "source_line",
    ] {
        assert!(f.get(key).is_some(), "no `{key}` in {f}");
    }
    assert_eq!(f["rule"], "unbounded-collection");
    assert_eq!(f["line"], 19);
    assert_eq!(f["function"]["name"], "handler");
    assert!(f.get("confirmed_at_runtime").is_none());
    assert_eq!(doc["rules"].as_array().unwrap().len(), 8);
}

/// SARIF 2.1.0's required structure, as code-scanning services read it.
#[test]
fn sarif_has_the_required_2_1_0_structure() {
    let out = run(
        &["--format", "sarif"],
        &[&fixtures().join("interval-not-cleared/leak.ts")],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "leakhound");
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"interval-not-cleared") && ids.contains(&"listener-per-call"));
    for r in rules {
        assert!(
            r["shortDescription"]["text"].is_string() && r["help"]["text"].is_string(),
            "{r}"
        );
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(ids[index], id, "ruleIndex points at the rule");
        assert!(matches!(r["level"].as_str().unwrap(), "note" | "warning" | "error"));
        assert!(r["message"]["text"].is_string());
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with("interval-not-cleared/leak.ts")
        );
        assert!(
            loc["region"]["startLine"].as_u64().unwrap() >= 1 && loc["region"]["startColumn"].as_u64().unwrap() >= 1
        );
    }
    assert_eq!(runs[0]["invocations"][0]["executionSuccessful"], true);
}

/// The golden scenario snapshots name `/tmp/leakhound-scenarios/NAME/server.js`, where
/// they were taken: the shared scenarios' sources are put there unless they already are,
/// and what this test put there is removed when it ends (a panic included).
struct ScenarioSource {
    file: PathBuf,
    created: Vec<PathBuf>,
}

impl ScenarioSource {
    fn new(name: &str) -> ScenarioSource {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/scenarios")
            .join(name)
            .join("server.js");
        let want = std::fs::read_to_string(&shared).unwrap();
        let dir = PathBuf::from("/tmp/leakhound-scenarios").join(name);
        let file = dir.join("server.js");
        let mut created = Vec::new();
        match std::fs::read_to_string(&file) {
            Ok(have) => assert_eq!(have, want, "{} differs from {}", file.display(), shared.display()),
            Err(_) => {
                for d in [dir.parent().unwrap(), &dir] {
                    if !d.exists() {
                        std::fs::create_dir(d).unwrap();
                        created.push(d.to_owned());
                    }
                }
                std::fs::write(&file, &want).unwrap();
                created.push(file.clone());
            }
        }
        ScenarioSource { file, created }
    }
}

impl Drop for ScenarioSource {
    fn drop(&mut self) {
        for p in self.created.iter().rev() {
            let _ = if p.is_dir() {
                std::fs::remove_dir(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
}

fn golden_snapshots(name: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/scenarios");
    (1..=3)
        .map(|i| dir.join(format!("{name}-s{i}.heapsnapshot.gz")))
        .collect()
}

/// `leaks` lints the files its clusters point to and attaches the findings inside the
/// function a source names (matched by enclosing function, not line): the listener
/// added at line 14 inside `handler` (line 11), for a source at the listener (14:50).
#[test]
fn leaks_attaches_the_findings_the_heap_confirmed_and_lint_report_marks_them() {
    let cases = [
        ("http-emitter-listener", "listener-per-call", 14),
        ("map-cache", "unbounded-collection", 23),
    ];
    for (name, rule, line) in cases {
        let guard = ScenarioSource::new(name);
        let source = guard.file.clone();
        let snaps = golden_snapshots(name);
        let out = bin()
            .args(["--quiet", "leaks", "--json", "--requests-per-step", "300"])
            .args(&snaps)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let doc = json(&out);
        let found = doc["clusters"][0]["lint_findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no lint_findings"));
        assert!(
            found
                .iter()
                .any(|f| f["rule"] == rule && f["line"] == line && f["confirmed_at_runtime"] == true),
            "{name}: {found:#?}"
        );
        // Not every finding of the file: setMaxListeners at module level is in no function.
        assert!(
            found.iter().all(|f| f["rule"] != "max-listeners-unbounded"),
            "{found:#?}"
        );

        let text = bin()
            .args(["--quiet", "leaks", "--requests-per-step", "300"])
            .args(&snaps)
            .output()
            .unwrap();
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(
            text.contains(&format!("lint (confirmed at runtime): {}:{line}:", source.display())),
            "{text}"
        );
        assert!(
            text.contains(&format!("{line:>5} | ")),
            "the source line is shown: {text}"
        );

        // The same report read back by `lint --report`.
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("leaks.json");
        std::fs::write(&report, &out.stdout).unwrap();
        let lint = bin()
            .arg("lint")
            .args(["--format", "json", "--report"])
            .arg(&report)
            .arg(&source)
            .output()
            .unwrap();
        let doc = json(&lint);
        let findings = doc["findings"].as_array().unwrap();
        let hit = findings
            .iter()
            .find(|f| f["rule"] == rule && f["line"] == line)
            .unwrap();
        assert_eq!(hit["confirmed_at_runtime"], true, "{findings:#?}");
        assert!(doc["summary"]["confirmed"].as_u64().unwrap() >= 1);
        if name == "http-emitter-listener" {
            let other = findings
                .iter()
                .find(|f| f["rule"] == "max-listeners-unbounded")
                .unwrap();
            assert_eq!(other["confirmed_at_runtime"], false);
        }
    }

    // Without the files (or with LEAKHOUND_NO_LINT) nothing is attached.
    let snaps = golden_snapshots("map-cache");
    let out = bin()
        .env("LEAKHOUND_NO_LINT", "1")
        .args(["--quiet", "leaks", "--json", "--requests-per-step", "300"])
        .args(&snaps)
        .output()
        .unwrap();
    assert!(json(&out)["clusters"][0].get("lint_findings").is_none());
}

/// A real hunt of the listener fixture: the growing listener array's cluster carries the
/// `listener-per-call` finding of the line that adds it, confirmed at runtime.
#[test]
fn hunt_attaches_the_listener_finding_to_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("server.js");
    std::fs::copy(fixtures().join("listener-per-call/leak.js"), &app).unwrap();
    let out = bin()
        .args([
            "--quiet",
            "hunt",
            "--json",
            "--requests",
            "400",
            "--warmup",
            "100",
            "--phases",
            "2",
        ])
        .args(["--calm-down-ms", "300", "--gc-interval-ms", "200", "--out-dir"])
        .arg(dir.path().join("snaps"))
        .arg("--")
        .arg("node")
        .arg(&app)
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{doc:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clusters = doc["clusters"].as_array().unwrap();
    let listener = clusters
        .iter()
        .find(|c| c["holder"].as_str().unwrap_or("").contains("config-changed"))
        .unwrap_or_else(|| panic!("no cluster for bus._events['config-changed']: {clusters:#?}"));
    let found = listener["lint_findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no lint_findings: {listener:#}"));
    assert!(
        found
            .iter()
            .any(|f| f["rule"] == "listener-per-call" && f["line"] == 9 && f["confirmed_at_runtime"] == true),
        "{found:#?}"
    );
}
