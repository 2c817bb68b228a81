//! `capture::capture_snapshot` on a real node process: a complete snapshot file and the
//! cost figures for the next estimate; skipped (not waited on forever) while the machine's
//! capture slot is held (the lock is an flock: another holder in this process counts as
//! much as one in another; `lock.rs` tests the other process).

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use leakhound_hunt::capture::{SkipReason, capture_snapshot};
use leakhound_inspector::{NodeProcess, SpawnOptions};

const APP: &str = "const keep = []; for (let i = 0; i < 50000; i++) keep.push({ i, s: 'x' + i }); \
                   setInterval(() => keep.length, 1000);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_snapshot_is_complete_or_skipped_with_a_reason() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (app, session) = NodeProcess::spawn(
        OsStr::new("node"),
        &[OsString::from("-e"), OsString::from(APP)],
        SpawnOptions::new(tx),
    )
    .await
    .expect("node starts under the inspector");
    let pid = session.pid();
    let dir = tempfile::tempdir().unwrap();

    // The machine's capture slot is taken: skipped after the wait, nothing written.
    let path = dir.path().join("busy.heapsnapshot");
    let slot = leakhound_hunt::try_lock_capture().unwrap().expect("the slot is free");
    let r = capture_snapshot(&session, pid, &path, None, Duration::from_millis(400))
        .await
        .unwrap();
    let reason = r.expect_err("skipped while the slot is taken");
    assert!(matches!(reason, SkipReason::Busy), "{reason}");
    assert_eq!(reason.label(), "busy");
    assert!(!path.exists());
    drop(slot);

    // Free: taken, complete, with what it cost.
    let path = dir.path().join("one.heapsnapshot");
    let captured = capture_snapshot(&session, pid, &path, None, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("taken");
    assert_eq!(captured.file.path, path);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, captured.file.bytes);
    assert!(bytes.starts_with(b"{\"snapshot\":"), "a heap snapshot");
    assert!(bytes.trim_ascii_end().ends_with(b"]}"), "complete");
    let cost = captured.previous.expect("cost figures");
    assert!(cost.heap_used_bytes > 1 << 20 && cost.peak_rss_bytes >= cost.rss_before_bytes);
    // No partial file is left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["one.heapsnapshot"]);

    // The next one starts from the measured cost.
    let two = dir.path().join("two.heapsnapshot");
    let again = capture_snapshot(&session, pid, &two, Some(cost), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(again.is_ok() && two.is_file());
    session.close().await;
    drop(app);
}
