//! `hunt --track-allocations` and `--sample-allocations` end to end, on real node servers:
//! a leak made in the app's own code (`apps/alloc/app_leak.js`: `makeOrder`), a leak made
//! inside a tiny package under `node_modules` called from the app (`apps/alloc/pkg_leak.js`
//! → `tiny-registry`: the app's `registerVisit` must come first among the app's frames),
//! and a `../shared/scenarios` server (`map-cache`: `handler` makes each `Quote`). The
//! first allocation stack of the leak cluster must name the allocating function and its
//! file, and the cluster's source must be that frame (`source_confidence:
//! "allocation_stack"`). The `.heapprofile` must be the JSON DevTools' Memory panel
//! loads (checked by its format: `head` with `callFrame`, `selfSize`, `id`, `children`,
//! `samples` pointing at nodes; the DevTools oracle's engine has no heap-profile model
//! outside its UI), and the HTML must carry the flame graph.
//!
//! Each hunt is small (100 warm-up requests, 2 phases of 1500) and killed past 120 s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const LIMIT: Duration = Duration::from_secs(120);

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/alloc")
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("LEAKHOUND_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Runs `leakhound hunt --json --track-allocations EXTRA -- node APP` in `dir`; returns
/// the exit code and the JSON.
fn hunt(dir: &Path, app: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    hunt_n(dir, app, TRACKED_REQUESTS, extra)
}

/// Requests per phase of the tracked hunts: V8 keeps the stacks of only some of the
/// objects added in the last phase (it loses those of objects moved by the GC after its
/// heap-stats timer gave them an id; see `leakhound-leaks/src/alloc.rs`), a few
/// percent under load, so the last phase adds enough of them.
const TRACKED_REQUESTS: u64 = 1500;

/// [`hunt`] with `requests` per phase.
fn hunt_n(dir: &Path, app: &str, requests: u64, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = dir.join("out");
    let requests = requests.to_string();
    let mut args: Vec<String> = [
        "hunt",
        "--json",
        "--requests",
        &requests,
        "--warmup",
        "100",
        "--phases",
        "2",
        "--calm-down-ms",
        "300",
        "--gc-interval-ms",
        "200",
        "--app-output",
        "hide",
        "--out-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "node".into(), app.into()]);
    let mut child = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leakhound");
    let started = Instant::now();
    // Read both pipes while waiting: a report bigger than the pipe's buffer would block
    // leakhound's write, and the hunt would never end.
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hunt of {app} did not finish within {} s", LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\nstderr: {stderr}"));
    (output.status.code(), json, stderr)
}

/// The cluster whose holder is `holder`.
fn cluster<'a>(doc: &'a Value, holder: &str) -> &'a Value {
    doc["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["holder"] == holder))
        .unwrap_or_else(|| panic!("no cluster held by {holder}: {:#}", doc["clusters"]))
}

/// The first stack's first frame of the app's own code (`origin: "user"`).
fn first_user_frame(c: &Value) -> &Value {
    let stacks = c["allocation_stacks"].as_array().expect("allocation_stacks");
    assert!(!stacks.is_empty(), "no allocation stacks: {c:#}");
    let frames = stacks[0]["frames"].as_array().expect("frames");
    assert_eq!(frames[0]["origin"], "user", "the app's frames come first: {frames:#?}");
    &frames[0]
}

fn ends_with(v: &Value, suffix: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(suffix))
}

#[test]
fn a_leak_made_in_app_code_names_the_allocating_function() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(apps().join("app_leak.js"), dir.path().join("app_leak.js")).unwrap();
    let (code, doc, stderr) = hunt(dir.path(), "app_leak.js", &["--track-allocations"]);
    assert_eq!(code, Some(1), "{stderr}");
    let c = cluster(&doc, "orders");
    let f = first_user_frame(c);
    assert_eq!(f["function"], "makeOrder", "{c:#}");
    assert!(ends_with(&f["url"], "/app_leak.js"), "{f}");
    // V8 records where the function starts: `function makeOrder(` is line 9.
    assert_eq!(f["line"], 9, "{f}");
    assert_eq!(f["depth"], 0, "{f}");
    assert_eq!(c["source_confidence"], "allocation_stack", "{c:#}");
    assert!(ends_with(&c["source"], "/app_leak.js:9:19"), "{}", c["source"]);
    // Node's own frames are marked, and come after the app's.
    let frames = c["allocation_stacks"][0]["frames"].as_array().unwrap();
    assert!(frames.iter().any(|f| f["origin"] == "node_internal"), "{frames:#?}");
    let first_internal = frames.iter().position(|f| f["origin"] != "user").unwrap();
    assert!(
        frames[first_internal..].iter().all(|f| f["origin"] != "user"),
        "{frames:#?}"
    );
    // The linter's finding in `handle` (a frame of the stack: it called makeOrder) is
    // attached, confirmed at runtime: the push at line 14.
    let findings = c["lint_findings"].as_array().cloned().unwrap_or_default();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "unbounded-collection" && f["line"] == 14 && f["confirmed_at_runtime"] == true),
        "{findings:#?}"
    );
    // Without tracking the same hunt has no stacks and a guessed source.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::copy(apps().join("app_leak.js"), dir2.path().join("app_leak.js")).unwrap();
    let (_, doc, _) = hunt(dir2.path(), "app_leak.js", &[]);
    let c = cluster(&doc, "orders");
    assert!(c.get("allocation_stacks").is_none(), "{c:#}");
    assert_ne!(c["source_confidence"], "allocation_stack");
}

#[test]
fn a_leak_made_inside_a_package_names_the_app_function_that_called_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(apps().join("pkg_leak.js"), dir.path().join("pkg_leak.js")).unwrap();
    let pkg = dir.path().join("node_modules/tiny-registry");
    std::fs::create_dir_all(&pkg).unwrap();
    for f in ["index.js", "package.json"] {
        std::fs::copy(apps().join("tiny-registry").join(f), pkg.join(f)).unwrap();
    }
    let (code, doc, stderr) = hunt(dir.path(), "pkg_leak.js", &["--track-allocations"]);
    assert_eq!(code, Some(1), "{stderr}");
    let c = cluster(&doc, "entries");
    let f = first_user_frame(c);
    assert_eq!(f["function"], "registerVisit", "{c:#}");
    assert!(ends_with(&f["url"], "/pkg_leak.js"), "{f}");
    assert!(ends_with(&c["source"], "/pkg_leak.js:9:23"), "{}", c["source"]);
    assert_eq!(c["source_confidence"], "allocation_stack");
    // The package's own frames are there, marked as the dependency's: the allocating
    // function first in the call order. Once TurboFan inlines makeEntry into register,
    // V8 records the allocation in register, so either is the package's allocating frame.
    let frames = c["allocation_stacks"][0]["frames"].as_array().unwrap();
    let deepest = frames.iter().find(|f| f["depth"] == 0).expect("depth 0");
    assert!(
        deepest["function"] == "makeEntry" || deepest["function"] == "register",
        "{frames:#?}"
    );
    assert_eq!(deepest["origin"], "dependency", "{deepest}");
    assert_eq!(deepest["dependency"], "tiny-registry", "{deepest}");
    assert!(
        ends_with(&deepest["url"], "/node_modules/tiny-registry/index.js"),
        "{deepest}"
    );
    let inlined = u64::from(deepest["function"] == "register");
    assert_eq!(
        f["depth"].as_u64(),
        Some(2 - inlined),
        "registerVisit calls register, which calls makeEntry: {frames:#?}"
    );
}

#[test]
fn a_shared_scenario_leak_names_its_allocating_function() {
    let server = shared_dir().join("scenarios/map-cache/server.js");
    assert!(
        server.exists(),
        "{} not found: the shared folder is expected beside the checkout (or set LEAKHOUND_SHARED)",
        server.display()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&server, dir.path().join("server.js")).unwrap();
    let (code, doc, stderr) = hunt(dir.path(), "server.js", &["--track-allocations"]);
    assert_eq!(code, Some(1), "{stderr}");
    let c = cluster(&doc, "quoteCache");
    let f = first_user_frame(c);
    // `new Quote(id, req.url)` in `handler` (line 20).
    assert_eq!(f["function"], "handler", "{c:#}");
    assert!(ends_with(&f["url"], "/server.js"), "{f}");
    assert_eq!(f["line"], 20, "{f}");
}

#[test]
fn sample_allocations_writes_a_heapprofile_devtools_loads_and_a_flame_graph() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(apps().join("app_leak.js"), dir.path().join("app_leak.js")).unwrap();
    let html = dir.path().join("report.html");
    // 2 × 1500 orders of ~150 bytes survive: about 14 samples of 32 KiB, so makeOrder
    // has one but with a chance below 1e-6.
    let (code, doc, stderr) = hunt_n(
        dir.path(),
        "app_leak.js",
        1500,
        &[
            "--track-allocations",
            "--sample-allocations",
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let path = PathBuf::from(doc["heap_profile"].as_str().expect("heap_profile"));
    let path = if path.is_absolute() {
        path
    } else {
        dir.path().join(path)
    };
    let text = std::fs::read_to_string(&path).unwrap();
    // DevTools' Memory panel loads `{"head": SamplingHeapProfileNode, "samples": [...]}`
    // (HeapProfileView's SamplingHeapProfileType.loadFromFile: JSON with a `head`).
    let profile: Value = serde_json::from_str(&text).unwrap();
    let head = &profile["head"];
    assert_eq!(head["callFrame"]["functionName"], "(root)", "{head}");
    let mut stack = vec![head];
    let (mut nodes, mut make_order_bytes) = (0, 0.0);
    while let Some(n) = stack.pop() {
        nodes += 1;
        for key in ["functionName", "scriptId", "url", "lineNumber", "columnNumber"] {
            assert!(n["callFrame"].get(key).is_some(), "{key} missing in {}", n["callFrame"]);
        }
        assert!(n["selfSize"].is_number() && n["id"].is_number(), "{n}");
        if n["callFrame"]["functionName"] == "makeOrder" {
            make_order_bytes += n["selfSize"].as_f64().unwrap();
        }
        stack.extend(n["children"].as_array().expect("children"));
    }
    assert!(nodes > 5, "{nodes} nodes");
    assert!(profile["samples"].is_array(), "no samples");
    let ids: std::collections::HashSet<u64> = {
        let mut ids = std::collections::HashSet::new();
        let mut stack = vec![head];
        while let Some(n) = stack.pop() {
            ids.insert(n["id"].as_u64().unwrap());
            stack.extend(n["children"].as_array().unwrap());
        }
        ids
    };
    // V8 lists samples by the node that allocated them; a few may name nodes its tree
    // has already pruned (DevTools skips those), most must be found.
    let samples = profile["samples"].as_array().unwrap();
    let found = samples
        .iter()
        .filter(|s| ids.contains(&s["nodeId"].as_u64().unwrap()))
        .count();
    assert!(
        found * 10 >= samples.len() * 9,
        "{found} of {} samples name a node",
        samples.len()
    );
    assert!(make_order_bytes > 0.0, "makeOrder has no surviving sample");
    let sites = doc["surviving_allocations"].as_array().expect("surviving_allocations");
    let site = sites
        .iter()
        .find(|s| s["function"] == "makeOrder")
        .expect("makeOrder site");
    assert!(ends_with(&site["url"], "/app_leak.js") && site["line"] == 9, "{site}");
    let share: f64 = sites.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    // Each share is rounded to 3 decimals.
    let slack = 0.0005 * sites.len() as f64 + 1e-9;
    assert!(share > 0.0 && share <= 1.0 + slack, "{share}: {sites:#?}");
    // The HTML has the flame graph, drawn without scripts, makeOrder highlighted.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"allocations\""), "no allocations section");
    let svg_at = page.find("<svg").expect("an svg");
    assert!(!page.contains("<script"), "the page has a script");
    assert!(
        page[svg_at..].contains("makeOrder"),
        "makeOrder is not in the flame graph"
    );
    assert!(page.contains("rgb(214,40,40)"), "no frame highlighted");
}
