//! The default `hunt` on real web frameworks installed from npm (express 4, fastify 4,
//! koa 2): healthy apps say `no_leak`, and the same frameworks with a leak in app code say
//! `leak` and name the holder and the app's file. Runs with `LEAKHOUND_NPM_SCENARIOS=1`
//! (`.ci/run` sets it when the npm registry answers), like the npm scenarios: the
//! packages are installed once into the test's target folder.
//!
//! The apps are `tests/frameworks/*.js`; they are copied next to the installed
//! `node_modules` so that `require` finds the packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn enabled() -> bool {
    let on = std::env::var("LEAKHOUND_NPM_SCENARIOS").is_ok_and(|v| v == "1");
    #[allow(clippy::print_stderr, reason = "a skipped test says why")]
    if !on {
        eprintln!("skipped: set LEAKHOUND_NPM_SCENARIOS=1 to hunt real frameworks installed from npm");
    }
    on
}

/// The folder with the apps and their installed packages, installed once for both tests
/// (they run in parallel).
fn app_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frameworks");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("frameworks");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&fixtures).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    // Installed once per target folder; a half-finished install is redone.
    let marker = dir.join("node_modules/.leakhound-installed");
    if !marker.is_file() {
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(st.success(), "npm install failed in {}", dir.display());
        std::fs::write(&marker, b"").unwrap();
    }
    dir
}

/// `leakhound hunt --json -- node APP` with the default settings; exit code and report.
fn hunt(dir: &Path, app: &str) -> (i32, Value) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["-q", "hunt", "--json", "--out-dir"])
        .arg(out_dir.path().join("snapshots"))
        .args(["--", "node", app])
        .current_dir(dir)
        .output()
        .expect("leakhound runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{app}: {e}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        report.get("error").is_none(),
        "{app}: the hunt failed: {report}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), report)
}

#[test]
fn healthy_framework_apps_say_no_leak_with_the_default_hunt() {
    if !enabled() {
        return;
    }
    let dir = app_dir();
    let mut wrong = Vec::new();
    for app in ["express-app.js", "fastify-app.js", "koa-app.js"] {
        let (code, r) = hunt(&dir, app);
        // Every request was answered: the load reached the app's routes.
        let ok: u64 = r["load"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["responses_2xx_3xx"].as_u64().unwrap())
            .sum();
        assert_eq!(
            ok,
            r["requests_sent"].as_u64().unwrap(),
            "{app}: not every request got a 2xx"
        );
        if code != 0 || r["verdict"] != "no_leak" || !r["clusters"].as_array().unwrap().is_empty() {
            wrong.push(format!(
                "{app}: exit {code}, {} — {} ({} clusters)",
                r["verdict"],
                r["reason"],
                r["clusters"].as_array().unwrap().len()
            ));
        }
    }
    assert!(wrong.is_empty(), "healthy apps judged wrongly:\n{}", wrong.join("\n"));
}

#[test]
fn framework_apps_with_a_leak_in_app_code_name_the_holder() {
    if !enabled() {
        return;
    }
    let dir = app_dir();
    for (app, holder, class) in [
        ("express-leak.js", "auditLog", "Array"),
        ("fastify-leak.js", "timings", "Map"),
    ] {
        let (code, r) = hunt(&dir, app);
        assert_eq!(
            (code, r["verdict"].as_str()),
            (1, Some("leak")),
            "{app}: {}",
            r["reason"]
        );
        let top = &r["clusters"][0];
        assert_eq!(top["holder"], holder, "{app}");
        assert_eq!(top["holder_class"], class, "{app}");
        assert_eq!(top["pattern"], "unbounded_collection", "{app}");
        let source = top["source"].as_str().unwrap_or_default();
        assert!(
            source.contains(app),
            "{app}: the source is the app's file, not the framework's: {source}"
        );
        let per_request = top["per_request"]["count"].as_f64().unwrap();
        assert!(
            (per_request - 1.0).abs() < 0.1,
            "{app}: one entry per request, got {per_request}"
        );
    }
}
