//! Leaks with no growing collection (issue 16): a chain of closure contexts, growth off the
//! global object, objects kept only by native handles, `once` listeners, a class's static
//! registry, a promise chain that never settles, a timer list thousands deep, a
//! dictionary-mode object under a Symbol key, a string grown with `+=`.
//!
//! Each shape is a small server of our own (`tests/shapes/NAME.js`) with a fixed twin
//! (the same server run with `FIXED=1`, which cleans up). Both are driven the same way by
//! `tests/apps/snapshots.js` (a real server on 127.0.0.1: a warm-up, then baseline,
//! [`REQUESTS`] requests, target, [`REQUESTS`] requests, final, each snapshot after a
//! short pause for closing connections to close), then read with `leakhound leaks`: the
//! leak must be named by holder, pattern and source, the twin must report nothing. A few
//! shapes also go through a whole `leakhound hunt`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const REQUESTS: u64 = 300;

/// At most two node servers at once on a 2-core machine.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

static SLOTS: Slots = Slots {
    free: Mutex::new(2),
    cv: Condvar::new(),
};

/// One of the two slots, released on drop.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut free = SLOTS.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = SLOTS.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        SLOTS.cv.notify_one();
    }
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn server(name: &str) -> PathBuf {
    tests_dir().join("shapes").join(format!("{name}.js"))
}

/// The three snapshots of `name` (its twin when `fixed`) in `out`.
fn snapshots(name: &str, fixed: bool, out: &Path) -> Vec<PathBuf> {
    let _slot = Slot::take();
    let run = Command::new("node")
        .arg(tests_dir().join("apps/snapshots.js"))
        .arg(server(name))
        .arg(REQUESTS.to_string())
        .arg(out)
        .env("FIXED", if fixed { "1" } else { "0" })
        .env("SNAPSHOT_SETTLE_MS", "500")
        .output()
        .expect("cannot run node");
    assert!(
        run.status.success(),
        "snapshots.js {name} (fixed: {fixed}): {}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    ["s1", "s2", "s3"]
        .iter()
        .map(|s| out.join(format!("{s}.heapsnapshot")))
        .collect()
}

/// `leakhound leaks --json --requests-per-step REQUESTS SNAPSHOTS`: the document and the
/// exit code.
fn leaks(snaps: &[PathBuf]) -> (Value, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args([
            "leaks",
            "--quiet",
            "--json",
            "--requests-per-step",
            &REQUESTS.to_string(),
        ])
        .args(snaps)
        .output()
        .expect("run leakhound");
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("leaks printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (doc, out.status.code())
}

/// What the leak of a shape must be reported as.
struct Expect {
    shape: &'static str,
    holder: &'static str,
    pattern: &'static str,
    /// Whether the source must name the server's own file (false where a snapshot holds
    /// nothing of the app's code, said in the report).
    source_in_app: bool,
    /// Accumulating objects per request, ±10 %.
    per_request: f64,
}

/// The leak of `e.shape` is named as expected, and its twin reports nothing. Returns
/// the leak's top cluster.
fn check_shape(e: &Expect) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaky = dir.path().join("leak");
    let fixed = dir.path().join("fixed");
    std::fs::create_dir_all(&leaky).unwrap();
    std::fs::create_dir_all(&fixed).unwrap();
    let (doc, code) = leaks(&snapshots(e.shape, false, &leaky));
    assert_eq!(code, Some(1), "{}: expected a leak: {doc:#}", e.shape);
    assert_eq!(doc["verdict"], "leak");
    assert_eq!(
        doc["clusters"].as_array().map(Vec::len),
        Some(1),
        "{}: one leak, one cluster: {:#}",
        e.shape,
        doc["clusters"]
    );
    let top = doc["clusters"][0].clone();
    let summary = format!(
        "{}: holder={} pattern={} source={} per_request={} counts={}",
        e.shape, top["holder"], top["pattern"], top["source"], top["per_request"]["count"], top["counts_per_snapshot"]
    );
    assert_eq!(top["holder"].as_str(), Some(e.holder), "{summary}");
    assert_eq!(top["pattern"].as_str(), Some(e.pattern), "{summary}");
    if e.source_in_app {
        let source = top["source"].as_str().unwrap_or("");
        assert!(
            source.contains(&format!("/tests/shapes/{}.js:", e.shape)),
            "the source should be the server's file; {summary}"
        );
    }
    let rate = top["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (rate - e.per_request).abs() <= 0.1 * e.per_request,
        "per_request.count should be {} ±10 %; {summary}",
        e.per_request
    );
    // The count grows at every snapshot.
    let counts: Vec<u64> = top["counts_per_snapshot"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c.as_u64().unwrap_or(0))
        .collect();
    assert!(counts.windows(2).all(|w| w[1] > w[0]), "{summary}");
    // No cluster is held by the server's request listener or V8's internals.
    for c in doc["clusters"].as_array().expect("clusters") {
        let h = c["holder"].as_str().unwrap_or("");
        assert!(
            !h.contains("_events.request") && !h.contains("(synthetic)") && !h.starts_with("system /"),
            "{}: holder {h:?} is the server's listener or a V8 internal",
            e.shape
        );
    }
    let (twin, code) = leaks(&snapshots(e.shape, true, &fixed));
    assert_eq!(
        (code, twin["verdict"].as_str()),
        (Some(0), Some("no_leak")),
        "{}: the fixed twin reported a leak: {:#}",
        e.shape,
        twin["clusters"]
    );
    top
}

#[test]
fn a_chain_of_closure_contexts_is_named_by_its_linking_variable_and_function() {
    let top = check_shape(&Expect {
        shape: "closure_chain",
        holder: "previous",
        pattern: "closure_retention",
        source_in_app: true,
        per_request: 1.0,
    });
    // The function that creates each link.
    assert!(
        top["source"].as_str().unwrap_or("").ends_with("closure_chain.js:12:25"),
        "{top:#}"
    );
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("rebuildRenderer"),
        "{top:#}"
    );
}

#[test]
fn an_undeclared_global_is_the_holder_by_name() {
    check_shape(&Expect {
        shape: "global_sloppy",
        holder: "auditTrail",
        pattern: "global_variable",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn a_property_of_global_this_is_the_holder_by_name() {
    check_shape(&Expect {
        shape: "global_this",
        holder: "pendingUploads",
        pattern: "global_variable",
        source_in_app: false,
        per_request: 1.0,
    });
}

#[test]
fn a_global_given_a_bigger_array_each_time_is_the_holder_by_name() {
    check_shape(&Expect {
        shape: "global_reassigned",
        holder: "history",
        pattern: "global_variable",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn agents_kept_by_their_idle_keep_alive_sockets_are_agent_sockets() {
    let top = check_shape(&Expect {
        shape: "agent_per_request",
        holder: "TCPSocketWrap handles",
        pattern: "agent_sockets",
        source_in_app: false,
        per_request: 2.0,
    });
    assert_eq!(top["root_class"], "Socket", "{top:#}");
    assert!(
        top["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .any(|o| o["class_name"] == "Agent" && o["count"].as_u64() >= Some(REQUESTS)),
        "one Agent per request among what the sockets keep: {top:#}"
    );
}

#[test]
fn sockets_nobody_reads_are_an_unconsumed_stream() {
    let top = check_shape(&Expect {
        shape: "socket_unread",
        holder: "TCPSocketWrap handles",
        pattern: "unconsumed_stream",
        source_in_app: false,
        per_request: 2.0,
    });
    assert_eq!(top["root_class"], "Socket", "{top:#}");
}

#[test]
fn file_watchers_never_closed_are_grouped_by_their_handle_kind() {
    let top = check_shape(&Expect {
        shape: "watcher_per_request",
        holder: "FSEventWrap handles",
        pattern: "open_handles",
        source_in_app: true,
        per_request: 1.0,
    });
    assert_eq!(top["root_class"], "FSWatcher", "{top:#}");
    assert_eq!(top["holder_class"], "Node / FSEventWrap", "{top:#}");
}

#[test]
fn once_listeners_on_an_emitter_that_never_emits_again_are_named_by_its_event() {
    let top = check_shape(&Expect {
        shape: "once_listener",
        holder: "database._events.ready",
        pattern: "listener_accumulation",
        source_in_app: true,
        per_request: 1.0,
    });
    // The app's function behind Node's once wrapper.
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("whenReady (added with once)"),
        "{top:#}"
    );
}

#[test]
fn a_static_registry_is_named_by_its_class_and_field() {
    check_shape(&Expect {
        shape: "static_registry",
        holder: "Connection.live",
        pattern: "unbounded_collection",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn a_promise_chain_that_never_settles_is_named_by_the_variable_holding_it() {
    check_shape(&Expect {
        shape: "promise_chain",
        holder: "lock",
        pattern: "promise_chain",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn a_promise_chain_built_by_async_recursion_is_named_by_the_variable_holding_its_tail() {
    let top = check_shape(&Expect {
        shape: "async_recursion",
        holder: "wakeConsumer",
        pattern: "promise_chain",
        source_in_app: true,
        per_request: 1.0,
    });
    // The async function whose calls make each link.
    assert!(
        top["sources"][0]["what"].as_str().unwrap_or("").contains("consume"),
        "{top:#}"
    );
}

#[test]
fn a_timer_list_thousands_deep_is_named_by_its_duration() {
    check_shape(&Expect {
        shape: "timer_list",
        holder: "timerListMap[600000]",
        pattern: "uncleared_timer",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn a_dictionary_object_under_a_symbol_key_is_named_by_its_owner_property() {
    check_shape(&Expect {
        shape: "dictionary_symbol",
        holder: "store[Symbol(entries)]",
        pattern: "unbounded_collection",
        source_in_app: true,
        per_request: 1.0,
    });
}

#[test]
fn a_string_grown_with_plus_equals_is_named_by_its_variable() {
    check_shape(&Expect {
        shape: "string_append",
        holder: "accessLog",
        pattern: "growing_string",
        source_in_app: true,
        per_request: 5.0,
    });
}

/// A hunt that runs longer than this is killed and fails its test.
const HUNT_LIMIT: Duration = Duration::from_secs(120);

/// `leakhound hunt --json` of shape `name` (its twin when `fixed`): 100 warm-up requests,
/// 2 phases of [`REQUESTS`]; the document and the exit code.
fn hunt(name: &str, fixed: bool) -> (Value, Option<i32>) {
    let _slot = Slot::take();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(dir.path())
        .args(["hunt", "--quiet", "--json", "--requests", &REQUESTS.to_string()])
        .args([
            "--warmup",
            "100",
            "--phases",
            "2",
            "--calm-down-ms",
            "500",
            "--gc-interval-ms",
            "200",
        ])
        .arg("--out-dir")
        .arg(&out)
        .arg("--")
        .arg("node")
        .arg(server(name))
        .env("FIXED", if fixed { "1" } else { "0" })
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start leakhound");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > HUNT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hunt of {name} did not finish in {} s: {}",
                HUNT_LIMIT.as_secs(),
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    let doc = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "hunt of {name}: no JSON ({e}): {text}\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    });
    (doc, status.code())
}

/// A hunt of shape `name` names its leak as `holder` / `pattern` (the source in the
/// server's file when `source_in_app`), and a hunt of its twin finds no cluster.
fn check_hunt(name: &str, holder: &str, pattern: &str, source_in_app: bool) {
    let (doc, code) = hunt(name, false);
    assert_eq!(code, Some(1), "{name}: expected a leak: {doc:#}");
    let top = &doc["clusters"][0];
    assert_eq!(top["holder"].as_str(), Some(holder), "{name}: {top:#}");
    assert_eq!(top["pattern"].as_str(), Some(pattern), "{name}: {top:#}");
    if source_in_app {
        assert!(
            top["source"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("/tests/shapes/{name}.js:")),
            "{name}: {top:#}"
        );
    }
    let (twin, code) = hunt(name, true);
    assert_eq!(
        twin["clusters"].as_array().map(Vec::len),
        Some(0),
        "{name}: the twin's hunt found a cluster (exit {code:?}): {:#}",
        twin["clusters"]
    );
    assert_ne!(code, Some(1), "{name}: the twin's hunt says leak: {twin:#}");
}

#[test]
fn hunt_names_a_closure_context_chain_and_passes_its_twin() {
    check_hunt("closure_chain", "previous", "closure_retention", true);
}

#[test]
fn hunt_names_a_promise_chain_and_passes_its_twin() {
    check_hunt("promise_chain", "lock", "promise_chain", true);
}

#[test]
fn hunt_names_agents_kept_by_their_sockets_and_passes_its_twin() {
    check_hunt("agent_per_request", "TCPSocketWrap handles", "agent_sockets", false);
}

#[test]
fn a_string_grown_in_a_property_is_named_by_its_owner_and_property() {
    let top = check_shape(&Expect {
        shape: "string_property",
        holder: "stats.log",
        pattern: "growing_string",
        source_in_app: true,
        // Pieces of the concatenation tree per request.
        per_request: 4.2,
    });
    assert_eq!(top["root_class"], "(string)", "{top:#}");
}
