//! Accuracy of `leakhound leaks` on the shared leak scenarios (test data kept outside the
//! repository: `$LEAKHOUND_SHARED`, by default a `shared` folder beside the checkout). Each
//! is run as its README says (`node drive.js NAME N OUT`: a real server on 127.0.0.1, a
//! warm-up, then baseline, N requests, target, N requests, final), and the top cluster
//! must name the holder, the pattern and the file given in its `TRUTH.md` (the app's own
//! file first among its sources, guessed in a documented way), at the per-request rate it
//! gives (within 10 %) and with a count that agrees with that rate; control scenarios
//! must report nothing.
//!
//! Scenarios without npm dependencies always run. Those with dependencies run when
//! `LEAKHOUND_NPM_SCENARIOS=1` (drive.js installs them with npm).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const REQUESTS: u64 = 600;

fn shared_dir() -> PathBuf {
    match std::env::var_os("LEAKHOUND_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// What a scenario's TRUTH.md says leakhound should find.
#[derive(Debug)]
struct Truth {
    leak: bool,
    pattern: Option<String>,
    also_acceptable: Vec<String>,
    holder: Option<String>,
    file: Option<String>,
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(&text[i..j])
}

fn parse_truth(text: &str) -> Truth {
    let verdict_line = text
        .lines()
        .find(|l| l.contains("Expected leakhound verdict"))
        .unwrap_or("");
    let leak = !verdict_line.to_lowercase().contains("no leak");
    let mut also = Vec::new();
    let mut rest = verdict_line;
    while let Some(i) = rest.find("` also acceptable") {
        if let Some(j) = rest[..i].rfind('`') {
            also.push(rest[j + 1..i].to_owned());
        }
        rest = &rest[i + 1..];
    }
    Truth {
        leak,
        pattern: between(verdict_line, "`pattern` = `", "`").map(str::to_owned),
        also_acceptable: also,
        holder: between(verdict_line, "holder = `", "`").map(str::to_owned),
        file: between(text, "App code: `", "`").map(|f| f.split(':').next().unwrap_or(f).to_owned()),
    }
}

fn needs_npm(dir: &Path) -> bool {
    let pkg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("package.json")).unwrap_or_default()).unwrap_or(Value::Null);
    pkg["dependencies"].as_object().is_some_and(|d| !d.is_empty())
}

fn run_scenario(name: &str, truth: &Truth) -> Result<(), String> {
    let shared = shared_dir();
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    // drive.js picks its server port at random in 20000–40000, which overlaps the
    // kernel's ephemeral range: a port some other connection holds is a collision of the
    // harness, not a failure of the scenario, so it is drawn again (at most three times).
    let mut attempts = 0;
    let drive = loop {
        attempts += 1;
        let drive = Command::new("node")
            .arg(shared.join("scenarios/drive.js"))
            .arg(name)
            .arg(REQUESTS.to_string())
            .arg(out.path())
            .output()
            .map_err(|e| format!("{name}: cannot run node drive.js: {e}"))?;
        if drive.status.success() || attempts == 3 || !String::from_utf8_lossy(&drive.stderr).contains("EADDRINUSE") {
            break drive;
        }
    };
    if !drive.status.success() {
        return Err(format!(
            "{name}: drive.js failed: {}",
            String::from_utf8_lossy(&drive.stderr)
        ));
    }
    let snaps: Vec<PathBuf> = ["s1", "s2", "s3"]
        .iter()
        .map(|s| out.path().join(format!("{s}.heapsnapshot")))
        .collect();
    let run = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args([
            "leaks",
            "--quiet",
            "--json",
            "--requests-per-step",
            &REQUESTS.to_string(),
        ])
        .args(&snaps)
        .output()
        .map_err(|e| e.to_string())?;
    let code = run.status.code();
    let doc: Value = serde_json::from_slice(&run.stdout).map_err(|e| {
        format!(
            "{name}: bad JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    })?;
    let clusters = doc["clusters"].as_array().ok_or(format!("{name}: no clusters list"))?;
    if !truth.leak {
        if !clusters.is_empty() || code != Some(0) || doc["verdict"] != "no_leak" {
            return Err(format!(
                "{name}: control scenario reported a leak (exit {code:?}): {:#}",
                clusters[0]
            ));
        }
        return Ok(());
    }
    if code != Some(1) || doc["verdict"] != "leak" {
        return Err(format!(
            "{name}: expected a leak and exit code 1, got {code:?} and {}",
            doc["verdict"]
        ));
    }
    let top = &clusters[0];
    let mut problems = Vec::new();
    if let Some(h) = &truth.holder
        && top["holder"].as_str() != Some(h)
    {
        problems.push(format!("holder {} (expected `{h}`)", top["holder"]));
    }
    let got = top["pattern"].as_str().unwrap_or("");
    if let Some(p) = &truth.pattern
        && got != p
        && !truth.also_acceptable.iter().any(|a| a == got)
    {
        problems.push(format!("pattern {got} (expected {p} or {:?})", truth.also_acceptable));
    }
    let source = top["source"].as_str().unwrap_or("");
    if let Some(f) = &truth.file
        && !source.contains(&format!("/{f}:"))
    {
        problems.push(format!("source {source:?} (expected file {f})"));
    }
    // The source is a guess of a documented kind, the app's own code first.
    let confidence = top["source_confidence"].as_str().unwrap_or("");
    if !["holder_owner", "closure", "constructor"].contains(&confidence) {
        problems.push(format!("source_confidence {confidence:?}"));
    }
    if top["sources"][0]["in_dependency"] != false {
        problems.push(format!("sources[0] {} is not the app's own code", top["sources"][0]));
    }
    let per_request = top["per_request"]["count"].as_f64().unwrap_or(0.0);
    if (per_request - 1.0).abs() > 0.1 {
        problems.push(format!(
            "per_request.count {per_request} (expected 1 accumulating object per request ±10 %)"
        ));
    }
    // The headline's count and the rate count the same objects.
    let count = top["count"].as_f64().unwrap_or(0.0);
    if (count - per_request * REQUESTS as f64).abs() > 0.1 * count {
        problems.push(format!("count {count} vs per_request.count {per_request} × {REQUESTS}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}: {}", problems.join("; ")))
    }
}

#[test]
fn leaks_names_the_truth_of_every_scenario() {
    let dir = shared_dir().join("scenarios");
    let with_npm = std::env::var("LEAKHOUND_NPM_SCENARIOS").is_ok_and(|v| v == "1");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared must sit beside the repository)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("TRUTH.md").is_file() && p.join("server.js").is_file())
        .collect();
    entries.sort();
    let mut ran = 0;
    let mut failures = Vec::new();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if needs_npm(&path) && !with_npm {
            continue;
        }
        let truth = parse_truth(&std::fs::read_to_string(path.join("TRUTH.md")).unwrap());
        if let Err(e) = run_scenario(&name, &truth) {
            failures.push(e);
        }
        ran += 1;
    }
    assert!(
        ran >= 3,
        "expected at least the three scenarios without npm dependencies, ran {ran}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn truth_files_parse() {
    let t = parse_truth(
        "**Expected leakhound verdict:** leak; `pattern` = `closure_retention`; holder = `metrics.flushHooks` (Array); `external_memory` also acceptable.\n\n**Leak: yes.** App code: `server.js:9` `metrics`",
    );
    assert!(t.leak);
    assert_eq!(t.pattern.as_deref(), Some("closure_retention"));
    assert_eq!(t.also_acceptable, vec!["external_memory".to_owned()]);
    assert_eq!(t.holder.as_deref(), Some("metrics.flushHooks"));
    assert_eq!(t.file.as_deref(), Some("server.js"));
    let c = parse_truth("**Expected leakhound verdict:** no leak; `clusters` empty.");
    assert!(!c.leak);
}
