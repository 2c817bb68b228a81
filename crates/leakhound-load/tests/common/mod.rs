//! Test helpers: a real node HTTP server on 127.0.0.1, killed on drop, and a raw HTTP GET that
//! does not use the code under test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Node server: counts requests (except `/count` and `/last`), remembers the last one, and
/// answers with `?status=` (default 200) after `?delay=` ms with `?size=` bytes (default 64).
/// `CLOSE_EVERY=n` sends `connection: close` on every n-th counted request; `EXIT_AFTER=n`
/// exits (a crash, for the client) after answering the n-th. `KEEP_ALIVE_MS` sets the
/// server's `keepAliveTimeout` (node's default, 5 s, without it). `PORT` (default 0) and
/// `START_DELAY_MS` delay the listen. Prints `PORT <n>` once listening.
const SERVER_JS: &str = r#"
const http = require('http');
const closeEvery = Number(process.env.CLOSE_EVERY || 0);
const port = Number(process.env.PORT || 0);
const startDelay = Number(process.env.START_DELAY_MS || 0);
const exitAfter = Number(process.env.EXIT_AFTER || 0);
let count = 0, conns = 0, last = '';
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/count') { res.end(count + ' ' + conns); return; }
    if (url.pathname === '/last') { res.end(last); return; }
    count++;
    last = [req.method, req.url, req.headers['x-leak'] || '', req.headers['content-type'] || '',
            req.headers['content-length'] || '', Buffer.concat(chunks).toString('hex')].join('\n');
    if (closeEvery > 0 && count % closeEvery === 0) res.setHeader('connection', 'close');
    if (count === exitAfter) res.on('finish', () => process.exit(0));
    const status = Number(url.searchParams.get('status') || 200);
    const delay = Number(url.searchParams.get('delay') || 0);
    const size = Number(url.searchParams.get('size') || 64);
    const send = () => { res.statusCode = status; res.end('x'.repeat(size)); };
    if (delay > 0) setTimeout(send, delay); else send();
  });
});
if (process.env.KEEP_ALIVE_MS) server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS);
server.on('connection', () => { conns++; });
const listen = () => server.listen(port, '127.0.0.1', () => console.log('PORT ' + server.address().port));
if (startDelay > 0) setTimeout(listen, startDelay); else listen();
"#;

/// A spawned node server; SIGKILLed and reaped on drop (also when a test panics).
pub struct NodeServer {
    child: Child,
    pub port: u16,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeServer {
    /// Starts the server on a random port and waits (at most 10 s) for it to listen.
    pub fn start(env: &[(&str, &str)]) -> NodeServer {
        let mut server = Self::spawn(env);
        let stdout = server.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("node printed its port within 10 s");
        server.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from node: {line:?}"));
        server
    }

    /// Spawns the server without waiting for it (for `PORT`/`START_DELAY_MS`).
    pub fn spawn(env: &[(&str, &str)]) -> NodeServer {
        let mut cmd = Command::new("node");
        cmd.arg("-e")
            .arg(SERVER_JS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("node is installed");
        NodeServer { child, port: 0 }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `(requests counted, connections accepted)` so far.
    pub fn count(&self) -> (u64, u64) {
        let body = raw_get(self.port, "/count");
        let mut it = body.split_whitespace().map(|n| n.parse::<u64>().expect("a number"));
        (it.next().expect("count"), it.next().expect("conns"))
    }

    /// The last counted request: method, url, x-leak, content-type, content-length, body hex.
    pub fn last(&self) -> String {
        raw_get(self.port, "/last")
    }
}

/// A GET with a plain std socket (`connection: close`), returning the body; 5 s timeouts.
pub fn raw_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect for raw GET");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
    )
    .expect("write raw GET");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read raw GET");
    let (_, body) = response.split_once("\r\n\r\n").expect("http response");
    body.to_owned()
}

/// A port on 127.0.0.1 that refuses connections for as long as the returned socket lives: it
/// is bound but not listening, so no other test (or node server) can take the port meanwhile.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("local addr").port();
    (socket, port)
}
