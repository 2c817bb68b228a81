//! The CLI's JSON carries the DevTools oracle's numbers under the oracle's field names:
//! `summary --json` rows, `diff --json` Comparison rows and `retainers --json` first-level
//! lists equal the corpus's golden files, which the real DevTools engine computed
//! (`tests/corpus/README.md` says how they are regenerated).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(name)
}

fn golden(name: &str) -> Value {
    let raw = std::fs::read(corpus(name)).expect("golden");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    serde_json::from_str(&text).expect("json")
}

fn run(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .arg("--quiet")
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "leakhound {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(keys.iter().map(|k| ((*k).to_owned(), v[*k].clone())).collect())
}

#[test]
fn summary_json_rows_equal_the_devtools_summary() {
    let snap = corpus("collections.heapsnapshot.gz");
    let ours = run(&["summary", "--json", "--top", "0", snap.to_str().unwrap()]);
    let theirs = golden("collections.golden.json.gz");
    let keys = [
        "class_name",
        "class_key",
        "count",
        "distance",
        "self_size_bytes",
        "retained_size_bytes",
    ];
    let a: Vec<Value> = ours["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| pick(r, &keys))
        .collect();
    let b: Vec<Value> = theirs["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| pick(r, &keys))
        .collect();
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b);
    assert_eq!(
        ours["snapshot"]["total_size_bytes"],
        theirs["snapshot"]["total_size_bytes"]
    );
}

#[test]
fn diff_json_rows_equal_the_devtools_comparison() {
    for pair in ["pair-a", "pair-b"] {
        let cur = corpus(&format!("{pair}-current.heapsnapshot.gz"));
        let base = corpus(&format!("{pair}-base.heapsnapshot.gz"));
        let ours = run(&[
            "diff",
            "--json",
            "--top",
            "0",
            "--sort",
            "alloc",
            base.to_str().unwrap(),
            cur.to_str().unwrap(),
        ]);
        let theirs = golden(&format!("{pair}.golden.json.gz"));
        let keys = [
            "class_name",
            "class_key",
            "new_count",
            "deleted_count",
            "delta_count",
            "alloc_size_bytes",
            "freed_size_bytes",
            "size_delta_bytes",
        ];
        let a: Vec<Value> = ours["comparison"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| pick(r, &keys))
            .collect();
        let b: Vec<Value> = theirs["comparison"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| pick(r, &keys))
            .collect();
        assert_eq!(a, b, "{pair}");
        assert!(
            ours["comparison"][0]["retained_size_delta_bytes"].is_i64(),
            "{pair}: retained delta present"
        );
    }
}

#[test]
fn retainers_json_first_level_equals_the_devtools_retainers_view() {
    let theirs = golden("pair-a.golden.json.gz");
    let snap = corpus("pair-a-current.heapsnapshot.gz");
    let mut checked = 0;
    for entry in theirs["retainers"].as_array().unwrap() {
        let id = entry["id"].as_u64().unwrap();
        let count = entry["retainer_count"].as_u64().unwrap();
        if count == 0 || count > 200 {
            continue;
        }
        let ours = run(&[
            "retainers",
            "--json",
            "--depth",
            "1",
            "--max-retainers",
            "1000",
            "--id",
            &format!("@{id}"),
            snap.to_str().unwrap(),
        ]);
        let tree = &ours["trees"][0];
        assert_eq!(tree["id"].as_u64(), Some(id));
        let a: Vec<(u64, String)> = tree["retainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_u64().unwrap(), r["edge_type"].as_str().unwrap().to_owned()))
            .collect();
        let b: Vec<(u64, String)> = entry["retainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_u64().unwrap(), r["edge_type"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(a, b, "retainers of @{id}");
        checked += 1;
        if checked == 6 {
            break;
        }
    }
    assert!(checked >= 3, "the golden should list retainers of several nodes");
}

#[test]
fn an_unreachable_object_has_no_path_to_a_root() {
    // The corpus' `unreachable` snapshot: a ring of RingNode objects cut off from the root.
    let snap = corpus("unreachable.heapsnapshot.gz");
    let doc = run(&[
        "retainers",
        "--json",
        "--class",
        "RingNode",
        "--instances",
        "1",
        snap.to_str().unwrap(),
    ]);
    let path = doc["paths_to_root"][0].as_array().expect("a path list");
    assert_eq!(
        path.len(),
        1,
        "only the object itself, not a walk around its ring: {path:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--quiet", "retainers", "--class", "RingNode", "--instances", "1"])
        .arg(&snap)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no path to a GC root"), "{text}");
    assert!(!text.contains("shortest path to a GC root"), "{text}");
}
