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
