//! `diff` and `leaks` compare objects by id, which only means something within one
//! process and in time order: snapshots of different processes, in the wrong order, or
//! of different V8 versions get a clear error (exit code 2), never a silent wrong answer.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(format!("{name}.heapsnapshot.gz"))
}

fn fails_with(args: &[&str], files: &[&str], needle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .arg("--quiet")
        .args(args)
        .args(files.iter().map(|f| corpus(f)))
        .output()
        .expect("run leakhound");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} {files:?}: {stderr}");
    assert!(stderr.starts_with("leakhound: "), "{stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?} {files:?}: expected {needle:?} in {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
}

#[test]
fn leaks_refuses_snapshots_in_the_wrong_order() {
    fails_with(&["leaks"], &["series-3", "series-2", "series-1"], "out of order");
}

#[test]
fn leaks_and_diff_refuse_snapshots_of_different_processes() {
    fails_with(
        &["leaks"],
        &["pair-a-base", "pair-b-base", "pair-b-current"],
        "different processes",
    );
    fails_with(&["diff"], &["pair-a-base", "pair-b-current"], "different processes");
}

#[test]
fn the_different_processes_error_names_a_reset_of_object_ids_and_the_way_out() {
    for (args, files) in [
        (&["leaks"][..], &["pair-a-base", "pair-b-base", "pair-b-current"][..]),
        (&["diff"][..], &["pair-a-base", "pair-b-current"][..]),
    ] {
        fails_with(args, files, "or V8's object ids were reset between the snapshots");
        fails_with(
            args,
            files,
            "take a series in one session with `leakhound snapshot --count N`",
        );
    }
}

#[test]
fn two_processes_are_named_as_such_whatever_their_order() {
    // pair-b's process allocated more ids than pair-a's: newest first, the ids alone would
    // look like a wrong order.
    fails_with(&["diff"], &["pair-b-current", "pair-a-base"], "different processes");
    fails_with(&["diff"], &["pair-a-current", "pair-b-base"], "different processes");
    fails_with(
        &["leaks"],
        &["pair-b-current", "pair-a-base", "pair-a-current"],
        "different processes",
    );
}

#[test]
fn one_process_newest_first_is_a_wrong_order() {
    fails_with(&["diff"], &["pair-a-current", "pair-a-base"], "give them oldest first");
}

#[test]
fn a_snapshot_compared_with_itself_is_no_change() {
    // Small and large: a snapshot of a handful of objects is one process too.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.heapsnapshot");
    std::fs::write(&small, SMALL).unwrap();
    for file in [small, corpus("closures")] {
        let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
            .args(["--quiet", "diff", "--json"])
            .arg(&file)
            .arg(&file)
            .output()
            .expect("run leakhound");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", file.display());
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let rows = doc["rows"]
            .as_array()
            .or(doc["comparison"].as_array())
            .cloned()
            .unwrap_or_default();
        assert!(
            rows.iter().all(|r| r["delta_count"] == 0),
            "{}: nothing changed: {doc:#}",
            file.display()
        );
    }
}

/// A valid snapshot of four objects (the root, two `Leaky`, one string).
const SMALL: &str = r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":["object_index","script_id","line","column"]},"node_count":4,"edge_count":3,"trace_function_count":0},
"nodes":[9,1,1,0,2,0,0
,3,2,3,40,1,0,0
,3,2,5,40,0,0,0
,2,3,7,16,0,0,0],
"edges":[1,1,7
,1,2,14
,2,4,21],
"trace_function_infos":[],"trace_tree":[],"samples":[],"locations":[],
"strings":["<dummy>","","Leaky","hello","a"]}
"#;

#[test]
fn diff_refuses_snapshots_of_different_v8_versions() {
    fails_with(
        &["diff"],
        &["node12-collections", "collections"],
        "different V8 versions",
    );
}

#[test]
fn leaks_accepts_a_series_in_order() {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhound"))
        .args(["--quiet", "leaks", "--json"])
        .args(["series-1", "series-2", "series-3"].iter().map(|f| corpus(f)))
        .output()
        .expect("run leakhound");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // The series grows `Session` by 300 per step and keeps a bounded `CacheEntry` cache.
    let clusters = doc["clusters"].as_array().expect("clusters");
    assert!(clusters.iter().any(|c| c["root_class"] == "Session"), "{doc:#}");
    assert!(
        !clusters.iter().any(|c| c["root_class"] == "CacheEntry"),
        "bounded cache reported: {doc:#}"
    );
}
