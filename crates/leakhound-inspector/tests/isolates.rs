//! The isolates of one app against real `node`: cluster workers found through `/proc` and
//! connected through the inspectors they inherited, and a `worker_threads` Worker reached
//! through its process's session (`NodeWorker`), with its own heap.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use leakhound_inspector::children::{classify_child, connect_child, node_descendants};
use leakhound_inspector::{IsolateKind, NodeProcess, OutputLine, SpawnOptions, Stream};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(120);

fn options(cwd: &Path) -> (SpawnOptions, mpsc::UnboundedReceiver<OutputLine>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut opts = SpawnOptions::new(tx);
    opts.cwd = Some(cwd.to_owned());
    opts.ready_timeout = Duration::from_secs(60);
    (opts, rx)
}

async fn wait_for_lines(rx: &mut mpsc::UnboundedReceiver<OutputLine>, marker: &str, n: usize) {
    let mut seen = 0;
    while let Some(line) = rx.recv().await {
        if line.stream == Stream::Stdout && line.line.contains(marker) {
            seen += 1;
            if seen == n {
                return;
            }
        }
    }
    panic!("output ended before {n} × `{marker}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_workers_are_found_and_connected_with_their_own_pids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.js"),
        "const cluster = require('node:cluster');\n\
         if (cluster.isPrimary) { for (let i = 0; i < 2; i++) cluster.fork(); }\n\
         else { globalThis.mine = 'worker ' + cluster.worker.id; console.log('worker up'); setInterval(() => {}, 1000); }\n",
    )
    .unwrap();
    tokio::time::timeout(LIMIT, async {
        let (opts, mut rx) = options(dir.path());
        let (mut app, main) = NodeProcess::spawn(OsStr::new("node"), &[OsString::from("cluster.js")], opts)
            .await
            .unwrap();
        wait_for_lines(&mut rx, "worker up", 2).await;
        let kids = node_descendants(app.pid());
        assert_eq!(kids.len(), 2, "{kids:?}");
        let mut ids = Vec::new();
        for pid in kids {
            let s = connect_child(pid, Duration::from_secs(20)).await.unwrap();
            assert_eq!(s.pid(), pid);
            let iso = classify_child(pid).unwrap();
            assert_eq!(iso.kind, IsolateKind::ClusterWorker);
            let mine = s.evaluate("globalThis.mine").await.unwrap();
            assert_eq!(
                mine.as_str(),
                Some(format!("worker {}", iso.worker_id.unwrap()).as_str())
            );
            assert!(iso.to_string().starts_with("cluster worker "), "{iso}");
            ids.push(iso.worker_id.unwrap());
            s.close().await;
        }
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
        main.close().await;
        app.kill().await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_thread_is_a_session_with_its_own_heap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("threads.js"),
        "const { Worker, isMainThread, parentPort } = require('node:worker_threads');\n\
         if (isMainThread) { const w = new Worker(__filename); w.on('message', () => console.log('worker up')); setInterval(() => {}, 1000); }\n\
         else { globalThis.keep = []; for (let i = 0; i < 300000; i++) globalThis.keep.push({ i }); parentPort.postMessage('up'); setInterval(() => {}, 1000); }\n",
    )
    .unwrap();
    tokio::time::timeout(LIMIT, async {
        let (opts, mut rx) = options(dir.path());
        let (mut app, main) = NodeProcess::spawn(OsStr::new("node"), &[OsString::from("threads.js")], opts)
            .await
            .unwrap();
        wait_for_lines(&mut rx, "worker up", 1).await;
        main.enable_worker_threads().await.unwrap();
        let mut infos = Vec::new();
        for _ in 0..100 {
            infos = main.new_worker_threads();
            if !infos.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(infos.len(), 1, "{infos:?}");
        let worker = main.connect_worker_thread(&infos[0]).await.unwrap();
        assert_eq!(worker.pid(), app.pid());
        let tid = worker.evaluate("require('node:worker_threads').threadId").await;
        // `require` is not in scope of Runtime.evaluate everywhere: ask process instead.
        let tid = match tid {
            Ok(v) => v,
            Err(_) => worker
                .evaluate("process.getBuiltinModule('node:worker_threads').threadId")
                .await
                .unwrap(),
        };
        assert_eq!(tid.as_u64().map(|t| t as u32), infos[0].thread_id);
        worker.collect_garbage().await.unwrap();
        let w = worker.memory_usage().await.unwrap();
        let m = main.memory_usage().await.unwrap();
        // 300,000 objects live in the worker's heap, not the main thread's.
        assert!(w.heap_used_bytes > m.heap_used_bytes + (5 << 20), "{w:?} vs {m:?}");
        let path = dir.path().join("w.heapsnapshot");
        let file = worker.take_heap_snapshot(&path, |_, _| {}).await.unwrap();
        assert!(file.bytes > 1 << 20);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"keep\""));
        worker.close().await;
        // The main thread's session goes on after the worker's closed.
        assert!(main.memory_usage().await.is_ok());
        main.close().await;
        app.kill().await.unwrap();
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_child_is_a_child_not_a_cluster_worker() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fork.js"),
        "const { fork } = require('node:child_process');\n\
         if (process.argv[2] === 'child') { console.log('child up'); setInterval(() => {}, 1000); }\n\
         else { fork(__filename, ['child']); setInterval(() => {}, 1000); }\n",
    )
    .unwrap();
    tokio::time::timeout(LIMIT, async {
        let (opts, mut rx) = options(dir.path());
        let (mut app, main) = NodeProcess::spawn(OsStr::new("node"), &[OsString::from("fork.js")], opts)
            .await
            .unwrap();
        wait_for_lines(&mut rx, "child up", 1).await;
        let kids = node_descendants(app.pid());
        assert_eq!(kids.len(), 1, "{kids:?}");
        let iso = classify_child(kids[0]).unwrap();
        assert_eq!(iso.kind, IsolateKind::Child);
        assert_eq!(iso.to_string(), format!("child process, pid {}", kids[0]));
        // It inherited the inspector flag: its own inspector, on its own port.
        let s = connect_child(kids[0], Duration::from_secs(20)).await.unwrap();
        assert_eq!(s.pid(), kids[0]);
        assert_ne!(s.url(), main.url());
        s.close().await;
        main.close().await;
        app.kill().await.unwrap();
    })
    .await
    .expect("bounded");
}
