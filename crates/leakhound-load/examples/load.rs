//! The built-in load driver on its own, for benchmarks (`bench/agent_overhead.py`):
//!
//! ```sh
//! cargo run --release -p leakhound-load --example load -- URL SECONDS [CONNECTIONS]
//! ```
//!
//! Drives `CONNECTIONS` (default 16) keep-alive connections at `URL` as fast as they go for
//! `SECONDS`, on a current-thread runtime (one core), and prints one line of JSON:
//! `{"requests":…,"errors":…,"requests_per_s":…,"p50_ms":…,"p99_ms":…}`.

use std::time::Duration;

use leakhound_load::{LoadSpec, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: load URL SECONDS [CONNECTIONS]";
    let (Some(url), Some(secs)) = (args.first(), args.get(1).and_then(|s| s.parse::<f64>().ok())) else {
        fail(usage);
    };
    let connections = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(16);
    let mut spec = LoadSpec::new(url);
    spec.connections = connections;
    spec.duration = Some(Duration::from_secs_f64(secs));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let report = rt.block_on(run(&spec, |_| {})).unwrap_or_else(|e| fail(&e.to_string()));
    #[allow(clippy::print_stdout, reason = "the example's output")]
    {
        println!(
            "{{\"requests\":{},\"errors\":{},\"requests_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            report.requests_sent,
            report.errors + report.responses_4xx + report.responses_5xx,
            report.requests_per_s,
            report.latency_ms.p50,
            report.latency_ms.p99
        );
    }
}

fn fail(message: &str) -> ! {
    #[allow(clippy::print_stderr, reason = "the example's error")]
    {
        eprintln!("load: {message}");
    }
    std::process::exit(2)
}
