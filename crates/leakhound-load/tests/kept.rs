//! Connections kept across load phases ([`run_kept`] on one [`ConnectionPool`]) and kept
//! from idling out between them ([`ConnectionPool::keep_warm`]), against a real node
//! server on 127.0.0.1 that counts the connections it accepted.

mod common;

use std::time::Duration;

use common::NodeServer;
use leakhound_load::{ConnectionPool, KeepWarmOptions, LoadSpec, run, run_kept};

/// Every test is bounded: a hang fails instead of blocking CI.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .expect("test finished within 30 s")
}

fn spec(url: String, connections: usize, requests: u64) -> LoadSpec {
    let mut spec = LoadSpec::new(url);
    spec.connections = connections;
    spec.requests = Some(requests);
    spec
}

#[tokio::test]
async fn phases_on_one_pool_use_the_same_connections() {
    let server = NodeServer::start(&[]);
    let s = spec(server.url("/"), 4, 200);
    let mut pool = ConnectionPool::new();
    for _ in 0..3 {
        let report = bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase");
        assert_eq!(report.responses_2xx_3xx, 200, "{report:?}");
        assert_eq!(pool.len(), 4, "every connection is back in the pool");
    }
    let (count, conns) = server.count();
    assert_eq!(count, 600);
    // 4 connections for the 3 phases, + 1 for the /count request itself.
    assert_eq!(conns, 5, "the phases reused the pool's connections");
    assert_eq!(pool.opened(), 4);
    // Without a pool, each phase opens its own.
    for _ in 0..2 {
        bounded(run(&s, |_| {})).await.expect("phase");
    }
    assert_eq!(server.count().1, 5 + 1 + 4 * 2);
}

#[tokio::test]
async fn fill_opens_the_connections_before_any_request() {
    let server = NodeServer::start(&[]);
    let s = spec(server.url("/"), 3, 30);
    let mut pool = ConnectionPool::new();
    assert_eq!(bounded(pool.fill(&s)).await.expect("fill"), 3);
    let (count, conns) = server.count();
    assert_eq!((count, conns), (0, 3 + 1), "three connections, no request");
    bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase");
    assert_eq!(server.count(), (30, 3 + 2), "the phase used the filled connections");
}

#[tokio::test]
async fn keep_warm_keeps_connections_past_the_servers_keep_alive_timeout() {
    // The server drops a connection idle for 600 ms; the hunt waits 2 s between phases.
    let server = NodeServer::start(&[("KEEP_ALIVE_MS", "600")]);
    let s = spec(server.url("/"), 3, 60);
    let mut pool = ConnectionPool::new();
    bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase 1");
    let warm = pool
        .keep_warm(
            &s,
            KeepWarmOptions {
                idle: Duration::from_millis(200),
                hold: None,
            },
        )
        .expect("keep-warm");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = warm.requests_sent();
    assert_eq!(warm.requests_failed(), 0);
    let mut pool = bounded(warm.stop()).await;
    assert!(sent >= 3 * 3, "about one request per connection per 200-400 ms: {sent}");
    assert_eq!(pool.len(), 3);
    bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase 2");
    let (count, conns) = server.count();
    assert_eq!(count, 120 + sent, "every keep-warm request reached the server");
    assert_eq!(conns, 3 + 1, "no connection was lost between the phases");
    assert_eq!(pool.opened(), 3);

    // The control: the same wait without keep-warm loses them all, and phase 2 opens
    // new ones.
    tokio::time::sleep(Duration::from_secs(2)).await;
    bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase 3");
    assert_eq!(server.count().1, 3 + 1 + 3 + 1, "the idle connections were closed");
    assert_eq!(pool.opened(), 6);
}

#[tokio::test]
async fn keep_warm_sends_nothing_while_held() {
    let server = NodeServer::start(&[]);
    let s = spec(server.url("/"), 2, 10);
    let mut pool = ConnectionPool::new();
    bounded(run_kept(&s, &mut pool, |_| {})).await.expect("phase");
    let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let warm = pool
        .keep_warm(
            &s,
            KeepWarmOptions {
                idle: Duration::from_millis(100),
                hold: Some(hold.clone()),
            },
        )
        .expect("keep-warm");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(warm.requests_sent(), 0, "nothing is sent while held");
    hold.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(warm.requests_sent() >= 2, "{}", warm.requests_sent());
    drop(bounded(warm.stop()).await);
    assert!(server.count().0 > 10);
}
