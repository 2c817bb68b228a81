//! What `leakhound leaks` says about a cluster can be trusted (issue 10): one cluster per
//! holder, whose headline, body and JSON count the same unit (the holder's direct
//! elements, `1.00 listener per request`) at the same rate; and a source line that names
//! the app's own code before a dependency's, marked as a guess.
//!
//! Each test runs a small server of its own (`tests/apps/`, or written into a temporary
//! folder with a `node_modules` of its own) and takes the three snapshots with
//! `tests/apps/snapshots.js` (a real server on 127.0.0.1: a warm-up, then baseline,
//! [`REQUESTS`] requests, target, [`REQUESTS`] requests, final), then reads them with
//! `leakhound leaks --requests-per-step`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const REQUESTS: u64 = 300;

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// Takes the three snapshots of `server` into `out` (baseline, target, final).
fn snapshots(server: &Path, out: &Path) -> Vec<PathBuf> {
    let run = Command::new("node")
        .arg(apps().join("snapshots.js"))
        .arg(server)
        .arg(REQUESTS.to_string())
        .arg(out)
        .output()
        .expect("cannot run node");
    assert!(
        run.status.success(),
        "snapshots.js {}: {}\n{}",
        server.display(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    ["s1", "s2", "s3"]
        .iter()
        .map(|s| out.join(format!("{s}.heapsnapshot")))
        .collect()
}

/// `leakhound leaks --requests-per-step REQUESTS [--json] SNAPSHOTS`: (stdout, exit code).
fn leaks(snaps: &[PathBuf], json: bool) -> (String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["leaks", "--quiet", "--requests-per-step", &REQUESTS.to_string()])
        .args(json.then_some("--json"))
        .args(snaps)
        .output()
        .expect("run leakhound");
    (String::from_utf8(out.stdout).expect("UTF-8"), out.status.code())
}

/// The JSON and the text report of `snaps`.
fn report(snaps: &[PathBuf]) -> (Value, String) {
    let (json, code) = leaks(snaps, true);
    assert_eq!(code, Some(1), "expected a leak: {json}");
    let doc: Value = serde_json::from_str(&json).expect("JSON");
    let (text, code) = leaks(snaps, false);
    assert_eq!(code, Some(1), "{text}");
    (doc, text)
}

/// The lines of cluster `#n` in the text report (its headline first, up to its trace).
fn cluster_text(text: &str, n: usize) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.starts_with(&format!("#{n} ")))
        .take_while(|l| !l.contains("retainer trace:"))
        .collect()
}

#[test]
fn one_holder_keeping_a_logger_per_request_is_one_cluster_counted_in_listeners() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = snapshots(&apps().join("logger_leak.js"), dir.path());
    let (doc, text) = report(&snaps);
    let clusters = doc["clusters"].as_array().expect("clusters");
    let holder = "crashes._events.uncaughtException";
    let held: Vec<&Value> = clusters.iter().filter(|c| c["holder"] == holder).collect();
    assert_eq!(held.len(), 1, "one cluster for the one holder:\n{text}");
    assert_eq!(clusters.len(), 1, "nothing else leaks:\n{text}");
    let c = held[0];
    let ctx = format!("{c:#}\n{text}");
    // The holder's direct elements: two listeners per request, named by what they are.
    assert_eq!(c["pattern"], "listener_accumulation", "{ctx}");
    assert_eq!(c["unit"], "listener", "{ctx}");
    assert_eq!(c["root_class"], "bound handleException(), flushOnCrash()", "{ctx}");
    let rate = c["per_request"]["count"].as_f64().expect("per_request.count");
    assert!((rate - 2.0).abs() <= 0.2, "2 listeners per request, not {rate}\n{ctx}");
    // One count everywhere: the roots, their growth per request, the listener array.
    let count = c["count"].as_u64().expect("count");
    assert!(
        (count as f64 - rate * REQUESTS as f64).abs() <= 0.1 * count as f64,
        "count {count} vs {rate} per request\n{ctx}"
    );
    let per_snapshot: Vec<u64> = c["counts_per_snapshot"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|n| n.as_u64().unwrap_or(0))
        .collect();
    assert_eq!(c["listener_count"].as_u64(), per_snapshot.last().copied(), "{ctx}");
    // What each listener brings along: the logger, its 7 bound level methods, its own
    // listener, its transport, a share of the bound functions' loggers.
    let others = c["other_objects_per_root"].as_f64().unwrap_or(0.0);
    assert!(others >= 5.0, "other_objects_per_root {others}\n{ctx}");
    let lines = cluster_text(&text, 1);
    assert!(
        lines[0].contains(&format!(
            "{holder} holds {count} listeners (bound handleException(), flushOnCrash())"
        )),
        "headline: {}\n{ctx}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!("; {rate:.2} listeners per request")),
        "growth line: {}\n{ctx}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("   each listener brings along ") && lines[2].contains("bound log()"),
        "{}\n{ctx}",
        lines[2]
    );
    assert!(!text.contains("native_bind()"), "V8's name for bound functions:\n{ctx}");
}

/// Writes `files` (path relative to `dir`, content) into `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

const LISTEN: &str = r#"
require('http')
  .createServer(handler)
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
"#;

#[test]
fn the_source_names_the_apps_file_before_the_dependency_that_fills_its_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = format!(
        "'use strict';\n\
         // The app's own Map, filled through a dependency's helper.\n\
         const {{ remember }} = require('tinycache');\n\
         const sessions = new Map();\n\
         let next = 0;\n\
         function handler(req, res) {{\n\
           remember(sessions, 's' + next++, req.url);\n\
           res.end('ok');\n\
         }}\n{LISTEN}"
    );
    write_files(
        dir.path(),
        &[
            ("app/server.js", &server),
            (
                "app/node_modules/tinycache/package.json",
                r#"{"name": "tinycache", "version": "1.0.0", "main": "index.js"}"#,
            ),
            (
                "app/node_modules/tinycache/index.js",
                "'use strict';\n\
                 class Entry {\n\
                   constructor(value) {\n\
                     this.value = value;\n\
                     this.at = Date.now();\n\
                     this.touch = function touch() { this.at = Date.now(); };\n\
                   }\n\
                 }\n\
                 exports.remember = function remember(map, key, value) {\n\
                   map.set(key, new Entry(value));\n\
                 };\n",
            ),
        ],
    );
    let out = dir.path().join("snaps");
    std::fs::create_dir(&out).expect("mkdir");
    let snaps = snapshots(&dir.path().join("app/server.js"), &out);
    let (doc, text) = report(&snaps);
    let c = &doc["clusters"][0];
    let ctx = format!("{c:#}\n{text}");
    assert_eq!(c["holder"], "sessions", "{ctx}");
    assert_eq!(c["root_class"], "Entry", "{ctx}");
    // The app's own file first, as a guess of a documented kind.
    let source = c["source"].as_str().unwrap_or("");
    assert!(source.contains("/app/server.js:"), "source {source}\n{ctx}");
    assert_eq!(c["source_confidence"], "holder_owner", "{ctx}");
    let sources = c["sources"].as_array().expect("sources");
    assert_eq!(sources[0]["location"].as_str(), Some(source), "{ctx}");
    assert_eq!(sources[0]["in_dependency"], false, "{ctx}");
    // The dependency's frames after it, marked.
    let dep: Vec<&Value> = sources
        .iter()
        .filter(|s| {
            s["location"]
                .as_str()
                .unwrap_or("")
                .contains("/node_modules/tinycache/")
        })
        .collect();
    assert!(!dep.is_empty(), "the dependency's constructor and closure: {ctx}");
    for s in &dep {
        assert_eq!(s["in_dependency"], true, "{s}");
        assert_eq!(s["dependency"], "tinycache", "{s}");
    }
    assert!(
        sources
            .iter()
            .any(|s| s["what"] == "constructor of Entry" && s["in_dependency"] == true),
        "{ctx}"
    );
    let lines = cluster_text(&text, 1);
    let source_line = lines
        .iter()
        .position(|l| l.starts_with("   source (guessed from the snapshot): "))
        .unwrap_or_else(|| panic!("no guessed source line\n{ctx}"));
    assert!(lines[source_line].contains("/app/server.js:"), "{ctx}");
    assert!(!lines[source_line].contains("node_modules"), "{ctx}");
    assert!(
        lines[source_line + 1..]
            .iter()
            .any(|l| l.starts_with("      also: ") && l.ends_with("(in node_modules/tinycache)")),
        "{ctx}"
    );
}

#[test]
fn two_maps_with_one_name_in_two_modules_are_two_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Both keep objects of one class: only where the Maps are tells them apart.
    let module = |what: &str| {
        format!(
            "'use strict';\n\
             // A {what} cache nothing evicts.\n\
             const Entry = require('./entry');\n\
             const cache = new Map();\n\
             exports.put = function put(key, value) {{\n\
               cache.set(key, new Entry(value));\n\
             }};\n"
        )
    };
    let entry = "'use strict';\n\
                 module.exports = class Entry {\n\
                   constructor(value) {\n\
                     this.value = value;\n\
                     this.at = Date.now();\n\
                   }\n\
                 };\n";
    let server = format!(
        "'use strict';\n\
         const users = require('./users');\n\
         const prices = require('./prices');\n\
         let next = 0;\n\
         function handler(req, res) {{\n\
           const n = next++;\n\
           users.put('u' + n, req.url);\n\
           prices.put('p' + n, n);\n\
           res.end('ok');\n\
         }}\n{LISTEN}"
    );
    write_files(
        dir.path(),
        &[
            ("app/server.js", &server),
            ("app/users.js", &module("user")),
            ("app/prices.js", &module("price")),
            ("app/entry.js", entry),
        ],
    );
    let out = dir.path().join("snaps");
    std::fs::create_dir(&out).expect("mkdir");
    let snaps = snapshots(&dir.path().join("app/server.js"), &out);
    let (doc, text) = report(&snaps);
    let caches: Vec<&Value> = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter(|c| c["holder"] == "cache")
        .collect();
    assert_eq!(caches.len(), 2, "two Maps, two clusters:\n{text}");
    let mut files: Vec<String> = Vec::new();
    for c in &caches {
        assert_eq!(c["holder_nodes"], 1, "{c:#}");
        let rate = c["per_request"]["count"].as_f64().unwrap_or(0.0);
        assert!((rate - 1.0).abs() <= 0.1, "1 entry per request in each: {c:#}");
        // The function that owns each Map is in its own module.
        let owner = c["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["what"] == "function put (holds `cache`)"))
            .and_then(|s| s["location"].as_str())
            .unwrap_or("");
        files.push(
            owner
                .rsplit('/')
                .next()
                .and_then(|s| s.split(':').next())
                .unwrap_or("")
                .to_owned(),
        );
    }
    files.sort();
    assert_eq!(
        files,
        ["prices.js", "users.js"],
        "each cluster in its own module:\n{text}"
    );
}
