//! Helpers of the agent's tests (`agent.rs`, `prometheus.rs`): the test apps, processes
//! killed when dropped, an agent started on a free metrics port, HTTP/1.0 requests.

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The leakhound binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

/// A test app of `tests/agent_apps`.
pub fn app(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agent_apps")
        .join(name)
}

/// A process killed when dropped, so a failing assertion leaves nothing running.
pub struct Running(pub Option<Child>);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Still running.
    pub fn alive(&mut self) -> bool {
        self.0.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits for it to end by itself and returns what it wrote.
    pub fn output(mut self) -> std::process::Output {
        self.0.take().expect("a child").wait_with_output().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `GET path` over HTTP/1.0 with an `Accept` header: the status and the body. Each call has
/// 5 s in all.
pub fn http_get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the agent");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// The value of the series `name{…labels…}` whose labels contain every one of `labels`.
pub fn value(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// An agent started with `--metrics-addr 127.0.0.1:0`, its address read from its stderr,
/// the rest of its stderr collected.
pub struct Agent {
    /// The agent's process.
    pub run: Running,
    /// Where it serves /metrics and /health.
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Agent {
    /// `leakhound watch --metrics-addr 127.0.0.1:0 ARGS…`, once it says where it serves.
    pub fn start(args: &[&str]) -> Agent {
        Agent::start_with_env(args, &[])
    }

    /// [`Agent::start`] with variables added to its environment (the app it starts
    /// inherits them).
    pub fn start_with_env(args: &[&str], env: &[(&str, String)]) -> Agent {
        let mut child = Command::new(BIN)
            .args(["watch", "--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let run = Running(Some(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the agent says where it serves metrics");
            if let Some(rest) = line.strip_prefix("leakhound: metrics on http://") {
                break rest.split('/').next().and_then(|a| a.parse().ok()).expect("an address");
            }
        };
        Agent { run, addr, stderr: rx }
    }

    /// Scrapes until `ready` holds for the page (at most `within`).
    pub fn scrape_until(&self, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let (status, page) = http_get(self.addr, "/metrics", "text/plain");
            assert_eq!(status, 200, "{page}");
            if ready(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "not ready in {within:?}:\n{page}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

/// promtool, or None (said on stderr) when it is missing outside CI.
pub fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool (Debian package prometheus) is missing: .ci/run installs it"
        );
        #[allow(clippy::print_stderr, reason = "a skipped check says so")]
        {
            eprintln!("SKIPPED the promtool check: promtool (Debian package prometheus) is not installed");
        }
    }
    found.then_some("promtool")
}
