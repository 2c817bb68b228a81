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

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Slot;

mod support;

const REQUESTS: u64 = 300;

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn server(name: &str) -> PathBuf {
    tests_dir().join("shapes").join(format!("{name}.js"))
}

/// The remote services some shapes call (`tests/shapes/upstream.js`, in a process of its
/// own so the app's leaking sockets are client sockets only): its HTTP and TCP ports. It
/// exits when this test process does (its stdin is a pipe only this process holds).
fn upstream() -> (u16, u16) {
    static UPSTREAM: OnceLock<(u16, u16, Mutex<Child>)> = OnceLock::new();
    let (http, tcp, _) = UPSTREAM.get_or_init(|| {
        let mut child = Command::new("node")
            .arg(server("upstream"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start upstream.js");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("upstream.js prints its ports");
        let ports: Vec<u16> = line.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        assert_eq!(ports.len(), 2, "upstream.js printed {line:?}");
        (ports[0], ports[1], Mutex::new(child))
    });
    (*http, *tcp)
}

/// The environment a shape's server gets: the upstream's ports for those that call out.
fn shape_env(name: &str) -> Vec<(&'static str, String)> {
    if matches!(name, "agent_per_request" | "socket_unread") {
        let (http, tcp) = upstream();
        vec![("UPSTREAM_PORT", http.to_string()), ("GREETER_PORT", tcp.to_string())]
    } else {
        Vec::new()
    }
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
        .envs(shape_env(name))
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

/// `leakhound leaks --requests-per-step REQUESTS SNAPSHOTS` for a person: the text.
fn leaks_text(snaps: &[PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["leaks", "--quiet", "--requests-per-step", &REQUESTS.to_string()])
        .args(snaps)
        .env("NO_COLOR", "1")
        .output()
        .expect("run leakhound");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    /// The holder's label; one ending in `*` is a prefix (a label with a port in it).
    holder: &'static str,
    pattern: &'static str,
    /// Whether the source must name the server's own file (false where a snapshot holds
    /// nothing of the app's code, said in the report).
    source_in_app: bool,
    /// Accumulating objects per request, ±10 %.
    per_request: f64,
}

/// Whether `holder` is the label `expected` names (a prefix when it ends in `*`).
fn holder_is(holder: Option<&str>, expected: &str) -> bool {
    match expected.strip_suffix('*') {
        Some(prefix) => holder.is_some_and(|h| h.starts_with(prefix)),
        None => holder == Some(expected),
    }
}

/// The leak of `e.shape` is named as expected, and its twin reports nothing. Returns
/// the leak's top cluster.
fn check_shape(e: &Expect) -> Value {
    check_shape_with_text(e).0
}

/// [`check_shape`], with the leak's `leaks` text report beside its top cluster.
fn check_shape_with_text(e: &Expect) -> (Value, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaky = dir.path().join("leak");
    let fixed = dir.path().join("fixed");
    std::fs::create_dir_all(&leaky).unwrap();
    std::fs::create_dir_all(&fixed).unwrap();
    let snaps = snapshots(e.shape, false, &leaky);
    let text = leaks_text(&snaps);
    let (doc, code) = leaks(&snaps);
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
    assert!(holder_is(top["holder"].as_str(), e.holder), "{summary}");
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
    (top, text)
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
    let top = check_shape(&Expect {
        shape: "global_this",
        holder: "pendingUploads",
        pattern: "global_variable",
        source_in_app: true,
        per_request: 1.0,
    });
    // The function that reads the global through `globalThis` (its IC's handler keeps
    // the global's cell).
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("function trackUpload (uses global `pendingUploads`)"),
        "{top:#}"
    );
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
    // One client socket per request (the upstream is another process), counted apart
    // from the app's own server sockets, which stay open and healthy beside them.
    let (top, text) = check_shape_with_text(&Expect {
        shape: "agent_per_request",
        holder: "TCPSocketWrap handles (client sockets)",
        pattern: "agent_sockets",
        source_in_app: true,
        per_request: 1.0,
    });
    assert_eq!(top["root_class"], "Socket", "{top:#}");
    // Nothing these handles keep is the app's code: the report says why, and what
    // would find it ...
    let why = top["source_unknown_why"].as_str().unwrap_or("");
    assert!(why.contains("--track-allocations"), "{top:#}");
    assert!(
        text.contains("source in the app: unknown from the heap:") && text.contains("--track-allocations"),
        "{text}"
    );
    // ... and the lint rule of the pattern finds the function making an Agent per call
    // in the app's scripts.
    assert_eq!(top["source_confidence"], "lint_rule", "{top:#}");
    let what = top["sources"][0]["what"].as_str().unwrap_or("");
    assert!(
        what.contains("function fetchPrice") && what.contains("agent-per-call"),
        "{top:#}"
    );
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
        holder: "TCPSocketWrap handles (client sockets)",
        pattern: "unconsumed_stream",
        source_in_app: false,
        per_request: 1.0,
    });
    // The heap cannot know who opened them (the twin's fix in the same file hides them
    // from lint too): the report says so, and what would find it.
    assert!(
        top["source_unknown_why"]
            .as_str()
            .unwrap_or("")
            .contains("--track-allocations"),
        "{top:#}"
    );
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
    let (top, text) = check_shape_with_text(&Expect {
        shape: "string_append",
        holder: "accessLog",
        pattern: "growing_string",
        source_in_app: true,
        // Pieces of the concatenation tree per request.
        per_request: 5.0,
    });
    check_string_bytes(&top, &text, LOG_LINE_CHARS);
}

#[test]
fn node_s_http_parser_pool_filling_up_is_not_a_leak() {
    // The FreeList of HTTP parsers holds more new parsers at every snapshot when more
    // requests are parsed at once; it is bounded (1,000) by construction.
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = snapshots("parser_pool", false, dir.path());
    let (doc, code) = leaks(&snaps);
    let holders: Vec<&str> = doc["clusters"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["holder"].as_str()).collect())
        .unwrap_or_default();
    assert!(!holders.iter().any(|h| h.contains("parsers")), "{doc:#}");
    assert_eq!((code, doc["verdict"].as_str()), (Some(0), Some("no_leak")), "{doc:#}");
}

#[test]
fn a_block_scoped_map_behind_a_timer_and_a_listener_is_named_by_its_variable() {
    let top = check_shape(&Expect {
        shape: "block_scoped_map",
        holder: "visits",
        pattern: "unbounded_collection",
        source_in_app: true,
        per_request: 1.0,
    });
    assert_eq!(top["holder_class"], "Map", "{top:#}");
    assert_eq!(top["root_class"], "Visit", "{top:#}");
    // The case this guards: the trace reaches the Map through a timer or an emitter's
    // listener, then an unnamed slot of the block's context, not through a name.
    let trace = top["trace"].as_array().expect("trace");
    let holder_at = trace
        .iter()
        .position(|st| st["is_holder"] == true)
        .unwrap_or_else(|| panic!("no holder step: {top:#}"));
    let above = &trace[..holder_at];
    assert!(
        above
            .iter()
            .any(|st| st["class_name"] == "Timeout" || st["edge"].as_str().unwrap_or("").contains("_events")),
        "the shortest path should go through the interval or a listener: {top:#}"
    );
    // A block context's slot, which V8 leaves unnamed, shown as the variable it is.
    assert_eq!(
        (
            trace[holder_at]["edge_type"].as_str(),
            trace[holder_at]["edge"].as_str()
        ),
        (Some("hidden"), Some("->visits")),
        "{top:#}"
    );
}

/// Characters `string_append.js` appends per request: an ISO date (24), ` GET ` (5), the
/// URL `/` (1), ` 200\n` (5).
const LOG_LINE_CHARS: f64 = 35.0;

/// A growing string's cluster gives the string's size in bytes in every snapshot, growing
/// at each, and its growth per request in bytes: at least the characters appended
/// (one byte each in a one-byte string) and at most what their pieces can take (a
/// sequential string's header and a cons string per piece: 5 pieces of at most 48 bytes
/// each, plus the characters). The text says it in bytes too.
fn check_string_bytes(top: &Value, text: &str, chars_per_request: f64) {
    let bytes: Vec<u64> = top["string_bytes_per_snapshot"]
        .as_array()
        .unwrap_or_else(|| panic!("no string_bytes_per_snapshot: {top:#}"))
        .iter()
        .map(|b| b.as_u64().unwrap_or(0))
        .collect();
    assert_eq!(bytes.len(), 3, "{top:#}");
    assert!(bytes.windows(2).all(|w| w[1] > w[0]), "{bytes:?}");
    // The last snapshot's string holds every line since the start (warm-up included).
    let lines = (100 + 2 * REQUESTS) as f64;
    assert!(bytes[2] as f64 >= chars_per_request * lines, "{bytes:?}");
    let per_request = top["per_request"]["string_bytes"].as_f64().unwrap_or(f64::NAN);
    assert!(
        per_request >= chars_per_request && per_request <= chars_per_request + 5.0 * 48.0,
        "per_request.string_bytes {per_request} for {chars_per_request} characters a request: {top:#}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("string:") && l.contains("B per request")),
        "{text}"
    );
}

/// A hunt that runs longer than this is killed and fails its test.
const HUNT_LIMIT: Duration = Duration::from_secs(120);

/// `leakhound hunt --json` of shape `name` (its twin when `fixed`): 100 warm-up requests,
/// 2 phases of [`REQUESTS`]; the document and the exit code.
fn hunt(name: &str, fixed: bool) -> (Value, Option<i32>) {
    hunt_with(name, fixed, &[])
}

/// [`hunt`] with `extra` options after the default ones (`--requests` among them replaces
/// the default count).
fn hunt_with(name: &str, fixed: bool, extra: &[&str]) -> (Value, Option<i32>) {
    let (text, code, stderr) = hunt_raw(name, fixed, &[&["--json"], extra].concat());
    let doc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("hunt of {name}: no JSON ({e}): {text}\n{stderr}"));
    (doc, code)
}

/// `leakhound hunt` of shape `name` as [`hunt`] runs it, with `extra` options (`--requests`
/// among them replaces the default) and without `--json` unless given: its stdout, exit
/// code and stderr.
fn hunt_raw(name: &str, fixed: bool, extra: &[&str]) -> (String, Option<i32>, String) {
    let _slot = Slot::take();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .current_dir(dir.path())
        .args(["hunt", "--quiet"])
        .args(
            (!extra.contains(&"--requests"))
                .then(|| ["--requests".to_owned(), REQUESTS.to_string()])
                .into_iter()
                .flatten(),
        )
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
        .args(extra)
        .arg("--out-dir")
        .arg(&out)
        .arg("--")
        .arg("node")
        .arg(server(name))
        .env("FIXED", if fixed { "1" } else { "0" })
        .envs(shape_env(name))
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .env("NO_COLOR", "1")
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
    (
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        status.code(),
        std::fs::read_to_string(&stderr).unwrap_or_default(),
    )
}

/// A hunt of shape `name` names its leak as `holder` / `pattern` (the source in the
/// server's file when `source_in_app`), and a hunt of its twin finds no cluster.
fn check_hunt(name: &str, holder: &str, pattern: &str, source_in_app: bool) -> Value {
    let (doc, code) = hunt(name, false);
    assert_eq!(code, Some(1), "{name}: expected a leak: {doc:#}");
    let top = &doc["clusters"][0];
    assert!(holder_is(top["holder"].as_str(), holder), "{name}: {top:#}");
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
    doc["clusters"][0].clone()
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
    // The source: the app's function making an Agent per call, found by lint.
    let top = check_hunt(
        "agent_per_request",
        "TCPSocketWrap handles (client sockets)",
        "agent_sockets",
        true,
    );
    assert_eq!(top["source_confidence"], "lint_rule", "{top:#}");
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("function fetchPrice"),
        "{top:#}"
    );
}

#[test]
fn a_string_grown_in_a_property_is_named_by_its_owner_and_property() {
    let (top, text) = check_shape_with_text(&Expect {
        shape: "string_property",
        holder: "stats.log",
        pattern: "growing_string",
        source_in_app: true,
        // Pieces of the concatenation tree per request.
        per_request: 4.2,
    });
    assert_eq!(top["root_class"], "(string)", "{top:#}");
    // `GET / ` (6), a 13-digit Date.now() and a newline: 20 characters a request.
    check_string_bytes(&top, &text, 20.0);
}

#[test]
fn server_sockets_left_half_open_are_named_as_server_sockets_beside_healthy_client_ones() {
    // The collector's accepted sockets leak; the app's pooled client sockets (a shared
    // keep-alive Agent) stay open and healthy beside them, and are neither counted nor
    // blamed: no Agent among what the leaking sockets keep, not `agent_sockets`.
    let top = check_shape(&Expect {
        shape: "server_half_open",
        holder: "TCPSocketWrap handles (server sockets accepted on 127.0.0.1)",
        pattern: "open_handles",
        source_in_app: true,
        per_request: 1.0,
    });
    assert_eq!(top["root_class"], "Socket", "{top:#}");
    // The app's code that handles what the server accepts.
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("collectAudit"),
        "{top:#}"
    );
    assert!(
        top["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .all(|o| o["class_name"] != "Agent"),
        "{top:#}"
    );
}

#[test]
fn with_allocation_tracking_per_request_agents_are_traced_to_the_app_function_making_them() {
    let (doc, code) = hunt_with("agent_per_request", false, &["--track-allocations"]);
    assert_eq!(code, Some(1), "expected a leak: {doc:#}");
    let top = &doc["clusters"][0];
    assert_eq!(top["holder"], "TCPSocketWrap handles (client sockets)", "{top:#}");
    assert_eq!(top["pattern"], "agent_sockets", "{top:#}");
    assert_eq!(top["source_confidence"], "allocation_stack", "{top:#}");
    assert!(
        top["source"]
            .as_str()
            .unwrap_or("")
            .contains("/tests/shapes/agent_per_request.js:"),
        "{top:#}"
    );
    assert!(
        top["sources"][0]["what"].as_str().unwrap_or("").contains("fetchPrice"),
        "{top:#}"
    );
    assert!(top.get("source_unknown_why").is_none(), "{top:#}");
}

#[test]
fn with_allocation_tracking_a_global_this_property_is_traced_to_the_function_filling_it() {
    let (doc, code) = hunt_with("global_this", false, &["--track-allocations"]);
    assert_eq!(code, Some(1), "expected a leak: {doc:#}");
    let top = &doc["clusters"][0];
    assert_eq!(top["holder"], "pendingUploads", "{top:#}");
    assert_eq!(top["pattern"], "global_variable", "{top:#}");
    assert_eq!(top["source_confidence"], "allocation_stack", "{top:#}");
    assert!(
        top["source"]
            .as_str()
            .unwrap_or("")
            .contains("/tests/shapes/global_this.js:"),
        "{top:#}"
    );
    assert!(
        top["sources"][0]["what"].as_str().unwrap_or("").contains("trackUpload"),
        "{top:#}"
    );
}

/// Options of the no-cluster hunts: enough requests for the floor to show a page of
/// WebAssembly memory every 4 requests (16 KiB a request), in 2 phases.
const WASM_HUNT: &[&str] = &["--requests", "1200"];

#[test]
fn a_hunt_whose_memory_grows_outside_the_js_heap_says_what_grew_and_what_to_try() {
    // The leak: a WebAssembly.Memory grown per request. No JS object accumulates, so no
    // cluster; the hunt must still say leak, name the memory that grew (external memory
    // or RSS, not the JS heap) and what to try, in JSON and in text, never "0 clusters"
    // alone.
    let (doc, code) = hunt_with("wasm_memory", false, WASM_HUNT);
    assert_eq!(code, Some(1), "expected a leak from the floor: {doc:#}");
    assert_eq!(doc["verdict"], "leak", "{doc:#}");
    assert_eq!(doc["clusters"].as_array().map(Vec::len), Some(0), "{doc:#}");
    let growing: Vec<&str> = doc["floor"]["growing"]
        .as_array()
        .expect("floor.growing")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !growing.is_empty() && !growing.contains(&"js_heap"),
        "the floor grew outside the JS heap only: {:#}",
        doc["floor"]
    );
    let note = doc["without_cluster"]
        .as_str()
        .unwrap_or_else(|| panic!("no without_cluster: {doc:#}"));
    let names_it = |t: &str| t.contains("external memory") || t.contains("process RSS");
    assert!(names_it(note), "{note}");
    assert!(note.contains("To try:"), "{note}");
    assert!(!note.contains("no memory kind grew"), "{note}");

    let (text, code, stderr) = hunt_raw("wasm_memory", false, WASM_HUNT);
    assert_eq!(code, Some(1), "{text}\n{stderr}");
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    assert!(lines.iter().any(|l| l.starts_with("no cluster:")), "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with("measured:") && names_it(l)),
        "the text names the memory that grew: {text}"
    );
    assert!(lines.iter().any(|l| l.starts_with("try:")), "{text}");

    let (twin, code) = hunt_with("wasm_memory", true, WASM_HUNT);
    assert_eq!((code, twin["verdict"].as_str()), (Some(0), Some("no_leak")), "{twin:#}");
    assert!(twin.get("without_cluster").is_none_or(Value::is_null), "{twin:#}");
}

#[test]
fn hunt_names_half_open_server_sockets_and_passes_its_twin() {
    check_hunt(
        "server_half_open",
        "TCPSocketWrap handles (server sockets accepted on 127.0.0.1)",
        "open_handles",
        true,
    );
}

#[test]
fn hunt_gives_a_growing_string_in_bytes_and_passes_its_twin() {
    let top = check_hunt("string_append", "accessLog", "growing_string", true);
    let rate = top["per_request"]["string_bytes"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (LOG_LINE_CHARS..=LOG_LINE_CHARS + 5.0 * 48.0).contains(&rate),
        "per_request.string_bytes {rate}: {top:#}"
    );
}

#[test]
fn hunt_names_a_global_this_property_with_its_function_and_passes_its_twin() {
    // Without allocation tracking: the function whose IC handler keeps the global's cell.
    let top = check_hunt("global_this", "pendingUploads", "global_variable", true);
    assert!(
        top["sources"][0]["what"].as_str().unwrap_or("").contains("trackUpload"),
        "{top:#}"
    );
}

#[test]
fn with_allocation_tracking_unread_sockets_are_traced_to_the_app_function_opening_them() {
    let (doc, code) = hunt_with("socket_unread", false, &["--track-allocations"]);
    assert_eq!(code, Some(1), "expected a leak: {doc:#}");
    let top = &doc["clusters"][0];
    assert_eq!(top["holder"], "TCPSocketWrap handles (client sockets)", "{top:#}");
    assert_eq!(top["pattern"], "unconsumed_stream", "{top:#}");
    assert_eq!(top["source_confidence"], "allocation_stack", "{top:#}");
    assert!(
        top["source"]
            .as_str()
            .unwrap_or("")
            .contains("/tests/shapes/socket_unread.js:"),
        "{top:#}"
    );
    assert!(
        top["sources"][0]["what"].as_str().unwrap_or("").contains("notify"),
        "{top:#}"
    );
}

#[test]
fn leaks_without_a_cluster_says_the_backing_stores_grew_inside_old_objects() {
    // The WebAssembly.Memory made bigger at every request: no new objects accumulate, so
    // `leaks` has no cluster, but it says the backing stores grew (text and JSON); its
    // twin has neither.
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = snapshots("wasm_memory", false, dir.path());
    let (doc, code) = leaks(&snaps);
    // Never "no leak" while memory grew: inconclusive (exit 3), with what would decide it.
    assert_eq!(
        (code, doc["verdict"].as_str()),
        (Some(3), Some("inconclusive")),
        "{doc:#}"
    );
    assert!(
        doc["what_would_decide"]
            .as_str()
            .is_some_and(|s| s.contains("leakhound hunt")),
        "{doc:#}"
    );
    let bytes: Vec<u64> = doc["backing_store_bytes_per_snapshot"]
        .as_array()
        .unwrap_or_else(|| panic!("no backing_store_bytes_per_snapshot: {doc:#}"))
        .iter()
        .map(|b| b.as_u64().unwrap_or(0))
        .collect();
    // 16 KiB a request, REQUESTS requests a step.
    assert!(bytes[2] - bytes[1] >= 16 * 1024 * REQUESTS * 9 / 10, "{bytes:?}");
    let text = leaks_text(&snaps);
    assert!(text.starts_with("inconclusive: "), "{text}");
    assert!(!text.contains("no leak"), "{text}");
    assert!(
        text.contains("but off the JS heap: ArrayBuffer backing stores grew"),
        "{text}"
    );
    assert!(text.contains("what would decide it: "), "{text}");
    let fixed = tempfile::tempdir().expect("tempdir");
    let (twin, code) = leaks(&snapshots("wasm_memory", true, fixed.path()));
    assert_eq!(code, Some(0), "{twin:#}");
    assert!(twin.get("backing_store_bytes_per_snapshot").is_none(), "{twin:#}");
}

#[test]
fn a_map_and_a_set_of_numbers_whose_tables_grow_are_named_by_their_variables() {
    // Small integers have no node in a snapshot: no new object, only each hash table's
    // capacity grows, in doublings. Counts are slots of capacity, so a rate is an
    // estimate between one and two slots per entry.
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = snapshots("number_map", false, dir.path());
    let (doc, code) = leaks(&snaps);
    assert_eq!((code, doc["verdict"].as_str()), (Some(1), Some("leak")), "{doc:#}");
    for (holder, class) in [("hitsById", "Map"), ("seenIds", "Set")] {
        let c = doc["clusters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["holder"] == holder))
            .unwrap_or_else(|| panic!("no cluster held by {holder}: {doc:#}"));
        assert_eq!(c["holder_class"], class, "{c:#}");
        assert_eq!(c["pattern"], "unbounded_collection", "{c:#}");
        assert_eq!(c["unit"], "(entry slot)", "{c:#}");
        assert!(
            c["source"]
                .as_str()
                .unwrap_or("")
                .contains("/tests/shapes/number_map.js:"),
            "{c:#}"
        );
        let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
        assert!((0.9..=2.2).contains(&rate), "{holder}: {rate} slots per request: {c:#}");
    }
    let twin = tempfile::tempdir().expect("tempdir");
    let (doc, code) = leaks(&snapshots("number_map", true, twin.path()));
    assert_eq!((code, doc["verdict"].as_str()), (Some(0), Some("no_leak")), "{doc:#}");
}

#[test]
fn an_object_of_numbers_keyed_by_a_new_id_is_named_by_its_variable() {
    // Timestamps are heap numbers, never reported: only the element store grows.
    let dir = tempfile::tempdir().expect("tempdir");
    let (doc, code) = leaks(&snapshots("number_object", false, dir.path()));
    assert_eq!((code, doc["verdict"].as_str()), (Some(1), Some("leak")), "{doc:#}");
    let c = &doc["clusters"][0];
    assert_eq!(c["holder"], "lastSeenById", "{doc:#}");
    assert_eq!(c["holder_class"], "Object", "{c:#}");
    assert_eq!(c["pattern"], "unbounded_collection", "{c:#}");
    assert_eq!(c["unit"], "(property slot)", "{c:#}");
    assert!(
        c["source"]
            .as_str()
            .unwrap_or("")
            .contains("/tests/shapes/number_object.js:"),
        "{c:#}"
    );
    // Slots of capacity: one per entry and the store's slack.
    let rate = c["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((0.9..=2.2).contains(&rate), "{rate} slots per request: {c:#}");
    let twin = tempfile::tempdir().expect("tempdir");
    let (doc, code) = leaks(&snapshots("number_object", true, twin.path()));
    assert_eq!((code, doc["verdict"].as_str()), (Some(0), Some("no_leak")), "{doc:#}");
}

#[test]
fn a_weakmap_value_under_a_long_lived_key_is_named_by_the_weakmap_and_key() {
    let top = check_shape(&Expect {
        shape: "weakmap_value",
        holder: "auditByServer.get(Server)",
        pattern: "unbounded_collection",
        source_in_app: true,
        per_request: 1.0,
    });
    assert!(
        top["sources"][0]["what"]
            .as_str()
            .unwrap_or("")
            .contains("holds `auditByServer`"),
        "{top:#}"
    );
}
