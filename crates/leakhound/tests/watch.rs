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
fn a_short_flat_watch_is_inconclusive_and_says_what_would_decide() {
    // Four seconds cannot show a floor flat to 1 MiB/h: the answer is "inconclusive" (exit
    // 3) with what would decide it, never "no leak".
    let (code, doc, stderr) =
        watch("let scratch; setInterval(() => { scratch = Array.from({ length: 3000 }, (_, i) => ({ i })); }, 50);");
    assert_eq!(code, Some(3), "{stderr}\n{doc:#}");
    assert_eq!(doc["verdict"], "inconclusive", "{doc:#}");
    let next = doc["what_would_decide"].as_str().unwrap_or("");
    assert!(next.starts_with("run longer: about "), "{doc:#}");
    assert!(next.contains("more floor point"), "{doc:#}");
    assert_eq!(doc["ended"], "time up");
}

#[test]
fn a_watch_with_no_floor_point_is_inconclusive() {
    // No forced GC and an app that runs none of its own: no floor at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.js");
    std::fs::write(&app, "setInterval(() => {}, 1000);").expect("write app");
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args([
            "--quiet",
            "watch",
            "--json",
            "--duration",
            "2",
            "--gc-interval-ms",
            "0",
            "--warmup",
            "0",
            "--",
        ])
        .arg("node")
        .arg(&app)
        .output()
        .expect("run leakhound watch");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(3), "{doc:#}");
    assert_eq!(doc["verdict"], "inconclusive");
    assert!(doc["reason"].as_str().unwrap_or("").contains("no full GC"), "{doc:#}");
}

#[test]
fn a_second_leakhound_on_the_same_process_is_refused() {
    // --inspect-port=0: SIGUSR1 opens the inspector on a free port, not on 9229, which
    // another process on this machine may hold.
    let mut app = Command::new("node")
        .args(["--inspect-port=0", "-e", "setInterval(() => {}, 1000)"])
        .spawn()
        .expect("start node");
    let pid = app.id().to_string();
    // Let node install its signal handlers before SIGUSR1 arrives.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let first = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args([
            "--quiet",
            "watch",
            "--json",
            "--duration",
            "8",
            "--sample-ms",
            "200",
            "--attach",
            &pid,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the first watch");
    let first_pid = first.id();
    // The first one holds the claim from before it attaches.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let second = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--quiet", "watch", "--duration", "2", "--attach", &pid])
        .output()
        .expect("run the second watch");
    let first = first.wait_with_output().expect("first watch");
    let _ = app.kill();
    let _ = app.wait();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "the second is refused: {stderr}");
    assert!(
        stderr.contains(&format!(
            "pid {pid} is already attached to by another leakhound (pid {first_pid}:"
        )),
        "names the first one: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&first.stdout)
        .unwrap_or_else(|e| panic!("first watch: {e}: {}", String::from_utf8_lossy(&first.stderr)));
    assert_eq!(doc["ended"], "time up", "the first one was not disturbed");
}
