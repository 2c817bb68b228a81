//! The HTTP load driver and `wait_ready` against real servers on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{NodeServer, closed_port};
use leakhound_load::{LoadError, LoadSpec, run, wait_ready};

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

fn assert_consistent(report: &leakhound_load::LoadReport) {
    assert_eq!(
        report.requests_sent,
        report.responses_2xx_3xx + report.responses_4xx + report.responses_5xx + report.errors,
        "{report:?}"
    );
    assert_eq!(
        report.status_counts.values().sum::<u64>(),
        report.requests_sent - report.errors,
        "{report:?}"
    );
}

async fn exact_count(connections: usize, requests: u64) {
    let server = NodeServer::start(&[]);
    let progress = AtomicU64::new(0);
    let report = bounded(run(&spec(server.url("/"), connections, requests), |done| {
        progress.fetch_max(done, Ordering::Relaxed);
    }))
    .await
    .expect("load run");
    assert_consistent(&report);
    assert_eq!(report.requests_sent, requests, "{report:?}");
    assert_eq!(report.responses_2xx_3xx, requests, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.status_counts.get(&200), Some(&requests));
    assert_eq!(progress.load(Ordering::Relaxed), requests);
    let (count, conns) = server.count();
    assert_eq!(count, requests, "the server counted every request exactly once");
    // One keep-alive connection per worker, no more than `requests` of them (+1 for the
    // /count request itself).
    let workers = (connections as u64).min(requests);
    assert_eq!(conns, workers + 1, "connections were kept alive");
    let l = report.latency_ms;
    assert!(
        l.p50 > 0.0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max,
        "{l:?}"
    );
    assert!(report.requests_per_s > 0.0 && report.elapsed_ms > 0.0, "{report:?}");
    assert!(report.summary_line().starts_with(&format!("{requests} requests in ")));
}

#[tokio::test]
async fn exact_request_count_with_several_connections() {
    exact_count(8, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_request_count_on_the_multi_thread_runtime() {
    exact_count(5, 777).await;
}

#[tokio::test]
async fn fewer_requests_than_connections_opens_fewer_connections() {
    exact_count(10, 3).await;
}

#[tokio::test]
async fn server_closing_keep_alive_connections_still_gives_the_exact_count() {
    let server = NodeServer::start(&[("CLOSE_EVERY", "7")]);
    let report = bounded(run(&spec(server.url("/"), 4, 500), |_| {}))
        .await
        .expect("load run");
    assert_consistent(&report);
    assert_eq!(report.requests_sent, 500, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.responses_2xx_3xx, 500, "{report:?}");
    let (count, conns) = server.count();
    assert_eq!(count, 500);
    // 500 / 7 = 71 closes, each followed by a reconnect (except maybe at the very end).
    assert!(conns >= 4 + 70, "expected reconnects, got {conns} connections");
}

#[tokio::test]
async fn post_with_headers_and_body_arrives_intact() {
    let server = NodeServer::start(&[]);
    let body: Vec<u8> = vec![0, 1, 2, b'\n', b'\r', 0x7f, 0x80, 0xfe, 0xff, b'{', b'}'];
    let mut spec = spec(server.url("/echo?q=1&r=%20"), 2, 3);
    spec.method = "post".into();
    spec.headers = vec![
        ("X-Leak".into(), "hound".into()),
        ("content-type".into(), "application/octet-stream".into()),
    ];
    spec.body = Some(body.clone());
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    assert_eq!(report.responses_2xx_3xx, 3, "{report:?}");
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        server.last(),
        format!(
            "POST\n/echo?q=1&r=%20\nhound\napplication/octet-stream\n{}\n{hex}",
            body.len()
        )
    );
    assert_eq!(server.count().0, 3);
}

#[tokio::test]
async fn statuses_are_classified() {
    let server = NodeServer::start(&[]);
    let r404 = bounded(run(&spec(server.url("/?status=404"), 3, 20), |_| {}))
        .await
        .expect("load run");
    assert_consistent(&r404);
    assert_eq!(
        (r404.responses_2xx_3xx, r404.responses_4xx, r404.responses_5xx),
        (0, 20, 0)
    );
    assert_eq!(r404.status_counts.get(&404), Some(&20));
    assert!(
        r404.summary_line().ends_with("0 errors, 20 4xx"),
        "{}",
        r404.summary_line()
    );

    let r503 = bounded(run(&spec(server.url("/?status=503&size=0"), 2, 10), |_| {}))
        .await
        .expect("load run");
    assert_eq!(
        (r503.responses_2xx_3xx, r503.responses_4xx, r503.responses_5xx),
        (0, 0, 10)
    );
    let r302 = bounded(run(&spec(server.url("/?status=302"), 1, 5), |_| {}))
        .await
        .expect("load run");
    assert_eq!(r302.responses_2xx_3xx, 5, "{r302:?}");
    assert_eq!(server.count().0, 35);
}

#[tokio::test]
async fn large_response_bodies_are_read_to_the_end() {
    let server = NodeServer::start(&[]);
    let report = bounded(run(&spec(server.url("/?size=1000000"), 2, 20), |_| {}))
        .await
        .expect("load run");
    assert_eq!(report.responses_2xx_3xx, 20, "{report:?}");
    // Bodies were consumed, so the connections stayed usable.
    assert_eq!(server.count(), (20, 3));
}

#[tokio::test]
async fn rate_limit_holds() {
    let server = NodeServer::start(&[]);
    let mut spec = spec(server.url("/"), 5, 50);
    spec.rate_per_s = Some(100.0);
    let started = Instant::now();
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    let wall = started.elapsed();
    assert_eq!(report.requests_sent, 50);
    // Request 49 is due 0.49 s after the start.
    assert!(wall >= Duration::from_millis(450), "too fast: {wall:?}");
    assert!(wall < Duration::from_secs(3), "too slow: {wall:?}");
    assert!(
        report.requests_per_s > 40.0 && report.requests_per_s < 105.0,
        "{report:?}"
    );
    assert_eq!(server.count().0, 50);
}

#[tokio::test]
async fn duration_bounded_run_stops_in_time() {
    let server = NodeServer::start(&[]);
    let mut spec = LoadSpec::new(server.url("/"));
    spec.connections = 4;
    spec.duration = Some(Duration::from_millis(400));
    let started = Instant::now();
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    let wall = started.elapsed();
    assert!(wall >= Duration::from_millis(400), "{wall:?}");
    assert!(wall < Duration::from_millis(1500), "did not stop in time: {wall:?}");
    assert!(report.requests_sent > 10, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(server.count().0, report.requests_sent);
}

#[tokio::test]
async fn duration_with_rate_sends_the_scheduled_requests() {
    let server = NodeServer::start(&[]);
    let mut spec = LoadSpec::new(server.url("/"));
    spec.connections = 3;
    spec.duration = Some(Duration::from_millis(600));
    spec.rate_per_s = Some(50.0);
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    // Due at 0, 20, ..., 580 ms: 30 requests.
    assert!((20..=30).contains(&report.requests_sent), "{}", report.summary_line());
    assert_eq!(server.count().0, report.requests_sent);
}

#[tokio::test]
async fn requests_and_duration_whichever_comes_first() {
    let server = NodeServer::start(&[]);
    let mut spec = spec(server.url("/"), 2, 1_000_000);
    spec.duration = Some(Duration::from_millis(200));
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    assert!(report.requests_sent < 1_000_000 && report.requests_sent > 0);
    assert!(report.elapsed_ms < 1500.0, "{report:?}");
}

#[tokio::test]
async fn slow_responses_hit_the_request_timeout() {
    let server = NodeServer::start(&[]);
    let mut spec = spec(server.url("/?delay=3000"), 1, 2);
    spec.request_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let report = bounded(run(&spec, |_| {})).await.expect("load run");
    assert_consistent(&report);
    assert_eq!((report.requests_sent, report.errors), (2, 2), "{report:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(report.latency_ms, leakhound_load::Latency::default());
    assert!(report.summary_line().ends_with("2 errors"));
}

#[tokio::test]
async fn server_crashing_mid_run_gives_a_report_with_errors_quickly() {
    let server = NodeServer::start(&[("EXIT_AFTER", "50")]);
    let started = Instant::now();
    let report = bounded(run(&spec(server.url("/"), 4, 5000), |_| {}))
        .await
        .expect("a report, not an error: the server answered at first");
    assert_consistent(&report);
    assert_eq!(report.requests_sent, 5000, "{report:?}");
    assert!(
        report.responses_2xx_3xx >= 50 && report.responses_2xx_3xx < 60,
        "{report:?}"
    );
    assert!(report.errors > 4900, "{report:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn server_crashing_during_a_timed_run_backs_off() {
    let server = NodeServer::start(&[("EXIT_AFTER", "20")]);
    let mut spec = LoadSpec::new(server.url("/"));
    spec.connections = 4;
    spec.duration = Some(Duration::from_millis(700));
    let started = Instant::now();
    let report = bounded(run(&spec, |_| {})).await.expect("a report");
    let wall = started.elapsed();
    assert_consistent(&report);
    assert!(report.responses_2xx_3xx >= 20, "{report:?}");
    // Backing off 10, 20, 40, ... 200 ms: a handful of reconnects per connection, not a spin.
    assert!(report.errors > 0 && report.errors < 100, "{report:?}");
    assert!(
        wall >= Duration::from_millis(700) && wall < Duration::from_secs(2),
        "{wall:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let (_reserved, port) = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    for duration in [None, Some(Duration::from_secs(5))] {
        let mut spec = LoadSpec::new(url.clone());
        spec.connections = 3;
        spec.requests = Some(10);
        spec.duration = duration;
        let started = Instant::now();
        let err = match bounded(run(&spec, |_| {})).await {
            Ok(report) => panic!("nothing listens, yet: {report:?}"),
            Err(e) => e,
        };
        assert!(started.elapsed() < Duration::from_secs(2));
        match &err {
            LoadError::Connect { url: u, source } => {
                assert_eq!(u, &url);
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.starts_with("cannot connect to http://127.0.0.1:"), "{text}");
    }
}

#[tokio::test]
async fn invalid_specs_fail_before_any_connection() {
    let mut https = LoadSpec::new("https://127.0.0.1:1/");
    https.requests = Some(1);
    match bounded(run(&https, |_| {})).await {
        Err(LoadError::InvalidSpec { field: "url", reason }) => {
            assert!(reason.contains("https"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let no_stop = LoadSpec::new("http://127.0.0.1:1/");
    assert!(matches!(
        bounded(run(&no_stop, |_| {})).await,
        Err(LoadError::InvalidSpec { field: "requests", .. })
    ));
}

#[tokio::test]
async fn wait_ready_succeeds_once_a_server_starts_late() {
    // The port refuses connections until the socket starts listening 400 ms later; then a
    // minimal HTTP server answers 503 on it.
    let (socket, port) = closed_port();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = socket.listen(16).expect("listen");
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let started = Instant::now();
    let status = bounded(wait_ready(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(15),
    ))
    .await;
    server.abort();
    assert_eq!(status.expect("server came up"), 503, "any status means ready");
    assert!(started.elapsed() >= Duration::from_millis(350));
}

#[tokio::test]
async fn wait_ready_returns_at_once_for_a_running_server() {
    let server = NodeServer::start(&[]);
    let started = Instant::now();
    let status = bounded(wait_ready(&server.url("/health"), Duration::from_secs(5)))
        .await
        .expect("ready");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn wait_ready_times_out_cleanly_on_a_closed_port() {
    let (_reserved, port) = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let err = bounded(wait_ready(&url, Duration::from_millis(300)))
        .await
        .expect_err("nothing listens");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    match &err {
        LoadError::NotReady {
            url: u,
            timeout,
            last_error,
        } => {
            assert_eq!(u, &url);
            assert_eq!(*timeout, Duration::from_millis(300));
            assert!(last_error.contains("refused"), "{last_error}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("300 ms") && text.contains("refused"),
        "{text}"
    );
}

#[tokio::test]
async fn wait_ready_times_out_on_a_server_that_never_answers() {
    // Accepts connections but never writes a byte.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let acceptor = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let err = bounded(wait_ready(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_millis(300),
    ))
    .await
    .expect_err("never answers");
    acceptor.abort();
    assert!(
        matches!(&err, LoadError::NotReady { last_error, .. } if last_error.contains("no HTTP answer")),
        "{err}"
    );
}

#[tokio::test]
async fn wait_ready_rejects_bad_urls() {
    for url in ["", "https://127.0.0.1:1/", "127.0.0.1:80", "ftp://x/"] {
        let err = bounded(wait_ready(url, Duration::from_secs(1)))
            .await
            .expect_err("bad url");
        assert!(
            matches!(err, LoadError::InvalidSpec { field: "url", .. }),
            "{url:?}: {err}"
        );
    }
}
