//! The watch's per-target hook, where evidence capture plugs in: called after every sample
//! of a real node app with that target's status and a live inspector session it can use.
//! Bounded: the watch runs 3 s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakhound_hunt::{
    HookAction, HookFuture, IsolateKind, TargetHook, TargetStatus, WatchConfig, WatchEvent, WatchOptions, watch,
};
use leakhound_inspector::Session;

/// Records, per call, the status's pid, the session's pid and what the session evaluated.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(u32, u32, serde_json::Value)>>);

impl TargetHook for Recorder {
    fn after_sample<'a>(&'a self, status: &'a TargetStatus, session: &'a Session) -> HookFuture<'a> {
        Box::pin(async move {
            let value = session.evaluate("6 * 7").await.unwrap_or_default();
            self.0.lock().unwrap().push((status.key.pid, session.pid(), value));
            HookAction::Continue
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_runs_after_each_sample_with_the_targets_session() {
    let mut cfg = WatchConfig::from_options(WatchOptions {
        command: vec!["node".into(), "-e".into(), "setInterval(() => {}, 1000)".into()],
        attach: Vec::new(),
        duration: Some(Duration::from_secs(3)),
        sample_ms: Some(100),
        gc_interval_ms: Some(0),
        warmup: Duration::ZERO,
        main_only: false,
    })
    .expect("config");
    let recorder = Arc::new(Recorder::default());
    cfg.hook = Some(recorder.clone());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let outcomes = tokio::time::timeout(Duration::from_secs(60), watch(cfg, tx))
        .await
        .expect("the watch ends")
        .expect("the watch runs");
    let calls = recorder.0.lock().unwrap().clone();
    assert!(calls.len() >= 5, "called after each sample: {calls:?}");
    assert!(
        calls.len() <= outcomes[0].samples.len(),
        "at most once per sample: {} calls, {} samples",
        calls.len(),
        outcomes[0].samples.len()
    );
    for (status_pid, session_pid, value) in calls {
        assert_eq!(status_pid, outcomes[0].pid);
        assert_eq!(session_pid, status_pid, "the target's own session");
        assert_eq!(value, serde_json::json!(42), "a live session the hook can use");
    }
}

/// Records, per call, the isolate and the `threadId` its session evaluates; asks for a
/// restart after every sample of a worker thread (which must never restart the app).
#[derive(Debug, Default)]
struct PerIsolate(Mutex<Vec<(leakhound_hunt::Isolate, serde_json::Value)>>);

impl TargetHook for PerIsolate {
    fn after_sample<'a>(&'a self, status: &'a TargetStatus, session: &'a Session) -> HookFuture<'a> {
        Box::pin(async move {
            let value = session
                .evaluate("process.getBuiltinModule('node:worker_threads').threadId")
                .await
                .unwrap_or_default();
            self.0.lock().unwrap().push((status.isolate, value));
            if status.isolate.kind == IsolateKind::WorkerThread {
                HookAction::Restart {
                    kill_timeout: Duration::from_millis(100),
                    delay: Duration::ZERO,
                }
            } else {
                HookAction::Continue
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_runs_per_isolate_with_its_own_session_and_only_the_app_itself_restarts() {
    let script = "const { Worker } = require('node:worker_threads'); \
                  new Worker('setInterval(() => {}, 1000)', { eval: true }); setInterval(() => {}, 1000)";
    let mut cfg = WatchConfig::from_options(WatchOptions {
        command: vec!["node".into(), "-e".into(), script.into()],
        attach: Vec::new(),
        duration: Some(Duration::from_secs(4)),
        sample_ms: Some(100),
        gc_interval_ms: Some(0),
        warmup: Duration::ZERO,
        main_only: false,
    })
    .expect("config");
    let recorder = Arc::new(PerIsolate::default());
    cfg.hook = Some(recorder.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let outcomes = tokio::time::timeout(Duration::from_secs(60), watch(cfg, tx))
        .await
        .expect("the watch ends")
        .expect("the watch runs");
    let calls = recorder.0.lock().unwrap().clone();
    let thread_calls: Vec<_> = calls
        .iter()
        .filter(|(i, _)| i.kind == IsolateKind::WorkerThread)
        .collect();
    assert!(thread_calls.len() >= 3, "called for the thread too: {calls:?}");
    for (isolate, value) in &thread_calls {
        assert_eq!(isolate.thread_id, Some(1), "{calls:?}");
        assert_eq!(*value, serde_json::json!(1), "the thread's own session: {calls:?}");
        assert_eq!(isolate.pid, outcomes[0].pid);
    }
    assert!(
        calls
            .iter()
            .any(|(i, v)| i.kind == IsolateKind::Main && *v == serde_json::json!(0)),
        "the main thread's session: {calls:?}"
    );
    assert_eq!(outcomes.len(), 2, "the app and its thread: {outcomes:?}");
    assert_eq!(outcomes[1].isolate.kind, IsolateKind::WorkerThread);
    let mut restarted = false;
    while let Ok(e) = rx.try_recv() {
        restarted |= matches!(e, WatchEvent::Restarted { .. });
    }
    assert!(!restarted, "a worker thread's hook never restarts the app");
    assert_eq!(outcomes[0].ended, "time up");
}
