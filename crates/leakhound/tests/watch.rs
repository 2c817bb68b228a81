//! `leakhound watch -- node app.js`: the memory watch alone. A real node app whose heap
//! keeps growing gets exit code 1 and a rising floor; an idle one gets exit code 0.
//! Bounded: each watch runs 4 seconds.

use std::process::Command;

fn watch(script: &str) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.js");
    std::fs::write(&app, script).expect("write app");
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args([
            "--quiet",
            "watch",
            "--json",
            "--duration",
            "4",
            "--sample-ms",
            "100",
            "--gc-interval-ms",
            "300",
        ])
        .args(["--warmup", "0.5", "--"])
        .arg("node")
        .arg(&app)
        .output()
        .expect("run leakhound watch");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stderr}"));
    (out.status.code(), doc, stderr)
}

#[test]
fn a_rising_floor_is_a_leak() {
    let (code, doc, stderr) = watch(
        "const keep = []; setInterval(() => { for (let i = 0; i < 3000; i++) keep.push({ i, s: 'x' + i }); }, 50);",
    );
    assert_eq!(code, Some(1), "{stderr}\n{doc:#}");
    assert_eq!(doc["verdict"], "leak");
    assert!(
        doc["growing"].as_array().unwrap().iter().any(|g| g == "js_heap"),
        "{doc:#}"
    );
    let per_hour = doc["floor"]["heap_used"]["bytes_per_hour"].as_f64().unwrap();
    assert!(
        per_hour > 1e8,
        "the heap floor should rise by far more than 100 MB/h here: {per_hour}"
    );
    assert!(doc["memory"].as_array().unwrap().len() >= 10, "samples were taken");
}

#[test]
fn a_flat_floor_is_not_a_leak() {
    let (code, doc, stderr) =
        watch("let scratch; setInterval(() => { scratch = Array.from({ length: 3000 }, (_, i) => ({ i })); }, 50);");
    assert_eq!(code, Some(0), "{stderr}\n{doc:#}");
    assert_eq!(doc["verdict"], "no_leak", "{doc:#}");
    assert_eq!(doc["ended"], "time up");
}
