//! `run_external` with real `sh -c` commands.

use std::time::{Duration, Instant};

use leakhound_load::{EXTERNAL_TAIL_LINES, ExternalLoad, LoadError, run_external};
use tokio::sync::mpsc;

async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("test finished within 30 s")
}

fn load(command: &str) -> ExternalLoad {
    ExternalLoad {
        command: command.into(),
        units: 7,
        env: Vec::new(),
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    lines
}

#[tokio::test]
async fn success_forwards_stdout_and_stderr_lines() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut spec = load("echo \"hello $LH_TEST_VAR\"; echo oops >&2; printf 'no newline'");
    spec.env = vec![("LH_TEST_VAR".into(), "world".into())];
    let report = bounded(run_external(&spec, tx)).await.expect("success");
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.units, 7);
    assert!(report.elapsed_ms >= 0.0 && report.elapsed_ms < 10_000.0);
    let mut lines = drain(&mut rx);
    lines.sort();
    assert_eq!(lines, ["hello world", "no newline", "oops"]);
}

#[tokio::test]
async fn non_zero_exit_is_an_error_with_code_and_last_lines() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = load("i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); done; sleep 0.2; echo boom >&2; exit 3");
    let err = bounded(run_external(&spec, tx)).await.expect_err("exit 3");
    match &err {
        LoadError::ExternalFailed {
            command,
            code,
            status,
            last_lines,
        } => {
            assert_eq!(command, &spec.command);
            assert_eq!(*code, Some(3));
            assert!(status.contains('3'), "{status}");
            assert_eq!(last_lines.len(), EXTERNAL_TAIL_LINES);
            assert!(last_lines.contains(&"line29".to_string()), "{last_lines:?}");
            assert!(last_lines.contains(&"boom".to_string()), "{last_lines:?}");
            assert!(!last_lines.contains(&"line0".to_string()), "{last_lines:?}");
        }
        other => panic!("expected ExternalFailed, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.starts_with("external load command `"), "{text}");
    assert!(text.contains("last output:\n") && text.contains("boom"), "{text}");
    assert_eq!(drain(&mut rx).len(), 31, "every line was forwarded");
}

#[tokio::test]
async fn killed_by_a_signal_is_an_error_without_code() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = bounded(run_external(&load("kill -9 $$"), tx))
        .await
        .expect_err("killed");
    assert!(
        matches!(&err, LoadError::ExternalFailed { code: None, last_lines, .. } if last_lines.is_empty()),
        "{err:?}"
    );
    assert!(err.to_string().ends_with("; no output"), "{err}");
}

#[tokio::test]
async fn empty_command_is_invalid() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = bounded(run_external(&load("  "), tx)).await.expect_err("empty");
    assert!(matches!(err, LoadError::InvalidSpec { field: "command", .. }), "{err}");
}

#[tokio::test]
async fn closed_receiver_and_odd_output_are_fine() {
    let (tx, rx) = mpsc::unbounded_channel();
    drop(rx);
    // Invalid UTF-8, CRLF and a 100 kB line without a newline.
    let spec = load("printf '\\377ok\\r\\n'; head -c 100000 /dev/zero | tr '\\0' a");
    let report = bounded(run_external(&spec, tx)).await.expect("success");
    assert_eq!(report.exit_code, Some(0));

    let (tx, mut rx) = mpsc::unbounded_channel();
    bounded(run_external(&spec, tx)).await.expect("success");
    let lines = drain(&mut rx);
    assert_eq!(lines.len(), 2, "{:?}", lines.first());
    assert_eq!(lines[0], "\u{fffd}ok");
    assert!(lines[1].ends_with('…') && lines[1].len() < 17 * 1024);
}

#[tokio::test]
async fn background_process_holding_the_pipes_does_not_hang() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    // The background sleep inherits stdout; run_external must not wait for it.
    let report = bounded(run_external(&load("sleep 5 & echo $!"), tx))
        .await
        .expect("success");
    assert_eq!(report.exit_code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // Clean up the sleep we started, by its pid.
    let pid = rx.try_recv().expect("pid line");
    let _ = std::process::Command::new("kill").args(["-KILL", pid.trim()]).status();
}

/// Whether a process is gone (or a zombie waiting for whoever inherited it).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn dropping_the_future_kills_the_whole_command() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    // sh, and a sleep started by it, both print their pids.
    let spec = load("sleep 30 & echo $!; echo $$; wait");
    // Boxed so that `drop` below really drops the future.
    let mut running = Box::pin(run_external(&spec, tx));
    let mut pids = Vec::new();
    bounded(async {
        while pids.len() < 2 {
            tokio::select! {
                result = &mut running => panic!("ended early: {result:?}"),
                line = rx.recv() => pids.push(line.expect("a pid").parse::<u32>().expect("pid")),
            }
        }
    })
    .await;
    assert!(pids.iter().all(|&pid| !is_dead(pid)));
    let dropped_at = Instant::now();
    drop(running);
    while !pids.iter().all(|&pid| is_dead(pid)) {
        assert!(
            dropped_at.elapsed() < Duration::from_secs(5),
            "still alive after drop: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
