//! Inspector addresses: URL parsing (the `url` crate) restricted to the loopback interface,
//! and the inspector's `/json/list` HTTP endpoint (a `hyper` HTTP/1.1 client).
//!
//! Node keeps `/json/list` connections open after answering (even for HTTP/1.0 or
//! `Connection: close`), so the body is read by its `Content-Length` under a timeout, never
//! to EOF.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use crate::error::{InspectorError, shorten};

/// Default inspector port when a URL gives none.
pub(crate) const DEFAULT_PORT: u16 = 9229;

/// Largest `/json/list` header block we accept, in bytes (hyper's read buffer limit).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest `/json/list` body we accept, in bytes.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A parsed, loopback-only inspector endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Where to open the TCP connection (always a loopback address).
    pub addr: SocketAddr,
    /// The `Host` header value (`127.0.0.1:9229`, `[::1]:9229`, `localhost:9229`).
    pub host: String,
    /// The request path, starting with `/`.
    pub path: String,
}

impl Endpoint {
    /// Builds an endpoint for a known loopback socket address.
    pub(crate) fn from_addr(addr: SocketAddr, path: &str) -> Endpoint {
        let host = match addr {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Endpoint { addr, host, path }
    }

    /// The `ws://` URL of this endpoint.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}{}", self.host, self.path)
    }

    /// The `http://` URL of this endpoint.
    pub(crate) fn http_url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }
}

/// Parses `scheme://host[:port][/path]` where `scheme` is `expected_scheme` (any letter case)
/// and `host` is a loopback IP literal or `localhost` (mapped to 127.0.0.1 without consulting
/// DNS or `/etc/hosts`); a missing port means 9229. Surrounding whitespace is ignored.
///
/// The `url` crate parses; the host and port are then also checked as written, because its
/// WHATWG parser normalizes away what this function has always refused or kept: `ws:host`
/// without `//`, IPv4 shorthands (`127.1`, `0x7f.0.0.1`), percent-encoded or IDNA host names,
/// an empty port, and an explicit port equal to the scheme's default (`:80` stays 80 here).
///
/// # Errors
///
/// [`InspectorError::InvalidUrl`] for malformed input, another scheme, user information, or a
/// bad port (0, above 65535, not a number); [`InspectorError::NotLoopback`] for any other host.
pub(crate) fn parse_url(url: &str, expected_scheme: &str) -> Result<Endpoint, InspectorError> {
    let invalid = |reason: &str| InspectorError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let not_loopback = || InspectorError::NotLoopback { url: url.to_owned() };
    let trimmed = url.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| invalid("expected scheme://host:port/path"))?;
    if !scheme.eq_ignore_ascii_case(expected_scheme) {
        return Err(invalid(&format!("expected a {expected_scheme}:// url")));
    }
    // The authority as written: up to the path, query or fragment.
    let authority = rest.find(['/', '?', '#']).map_or(rest, |i| &rest[..i]);
    if authority.contains('@') {
        return Err(invalid("user information is not supported"));
    }
    // A port is written after the last `:` that follows the host (and its `]`, for IPv6).
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let (written_host, written_port) = match authority[host_end..].rfind(':') {
        Some(i) => (&authority[..host_end + i], Some(&authority[host_end + i + 1..])),
        None => (authority, None),
    };
    let bracketed = written_host.starts_with('[') && written_host.ends_with(']');
    if !bracketed && written_host.contains(':') {
        return Err(invalid("bad host or port"));
    }
    let port = match written_port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("bad port"))?,
    };
    if written_host.is_empty() {
        return Err(invalid("missing host"));
    }
    let parsed = Url::parse(trimmed).map_err(|e| match e {
        url::ParseError::EmptyHost => invalid("missing host"),
        url::ParseError::InvalidPort => invalid("bad port"),
        // A bracketed host that is not an IPv6 address (`[zz]`, a zone id) is another host.
        url::ParseError::InvalidIpv6Address if bracketed => not_loopback(),
        url::ParseError::InvalidIpv6Address => invalid("bad host or port"),
        url::ParseError::InvalidIpv4Address | url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError => {
            not_loopback()
        }
        other => invalid(&other.to_string()),
    })?;
    let written_v6 = || {
        written_host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
    };
    let (ip, host_header) = match parsed.host() {
        Some(Host::Domain("localhost")) if written_host.eq_ignore_ascii_case("localhost") => {
            (IpAddr::V4(Ipv4Addr::LOCALHOST), format!("localhost:{port}"))
        }
        Some(Host::Ipv4(v4)) if written_host == v4.to_string() => (IpAddr::V4(v4), format!("{v4}:{port}")),
        Some(Host::Ipv6(v6)) if written_v6() == Some(v6) => (IpAddr::V6(v6), format!("[{v6}]:{port}")),
        // Any other host, or a loopback address spelled in a way WHATWG normalizes.
        _ => return Err(not_loopback()),
    };
    if !is_loopback(ip) {
        return Err(not_loopback());
    }
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        host: host_header,
        path: parsed[Position::BeforePath..].to_owned(),
    })
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// One entry of `/json/list` that can be debugged.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The WebSocket path (`/<uuid>`), taken from `webSocketDebuggerUrl`.
    pub ws_path: String,
}

/// `GET /json/list` on `endpoint.addr` and returns the debuggable targets, `type: "node"` first.
///
/// # Errors
///
/// [`InspectorError::Connect`] when nothing listens, [`InspectorError::Http`] on a timeout, a
/// non-200 status, a response without `Content-Length` or a body that is not a JSON array,
/// [`InspectorError::NoTarget`] when no entry has a WebSocket URL.
pub(crate) async fn json_list(endpoint: &Endpoint, timeout: Duration) -> Result<Vec<Target>, InspectorError> {
    let list = Endpoint {
        path: String::from("/json/list"),
        ..endpoint.clone()
    };
    let url = list.http_url();
    let http_err = |reason: String| InspectorError::Http {
        url: url.clone(),
        reason,
    };
    let body = match tokio::time::timeout(timeout, http_get(&list)).await {
        Ok(Ok(body)) => body,
        Ok(Err(GetError::Connect(source))) => {
            return Err(InspectorError::Connect {
                url: url.clone(),
                source,
            });
        }
        Ok(Err(GetError::Other(reason))) => return Err(http_err(reason)),
        Err(_) => {
            return Err(http_err(format!(
                "no complete answer within {} ms",
                timeout.as_millis()
            )));
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| http_err(format!("body is not json: {e}")))?;
    let entries = value
        .as_array()
        .ok_or_else(|| http_err(String::from("body is not a json array")))?;
    let mut targets: Vec<(bool, Target)> = entries
        .iter()
        .filter_map(|entry| {
            let ws = entry.get("webSocketDebuggerUrl")?.as_str()?;
            let is_node = entry.get("type").and_then(|t| t.as_str()) == Some("node");
            let ws_path = ws_path_of(ws)?;
            Some((is_node, Target { ws_path }))
        })
        .collect();
    // Stable sort: node targets first, otherwise keep the inspector's order.
    targets.sort_by_key(|(is_node, _)| !is_node);
    if targets.is_empty() {
        return Err(InspectorError::NoTarget { url });
    }
    Ok(targets.into_iter().map(|(_, t)| t).collect())
}

/// Everything from the first `/` after the host of a `ws://host:port/path` URL (node's
/// `webSocketDebuggerUrl`), or `None` when there is no path. The host is ignored on purpose, so
/// it is not even parsed: we only ever connect to the address we already know is loopback.
fn ws_path_of(ws_url: &str) -> Option<String> {
    let rest = ws_url.split_once("://").map_or(ws_url, |(_, r)| r);
    let i = rest.find('/')?;
    Some(rest[i..].to_owned())
}

enum GetError {
    Connect(std::io::Error),
    Other(String),
}

/// Aborts the task driving the HTTP connection when the request is done or abandoned, which
/// closes the socket (node would keep it open).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One `GET` of `endpoint.path` over a fresh connection; the body of a 200 answer.
async fn http_get(endpoint: &Endpoint) -> Result<Vec<u8>, GetError> {
    let stream = TcpStream::connect(endpoint.addr).await.map_err(GetError::Connect)?;
    let (mut sender, connection) = http1::Builder::new()
        .max_buf_size(MAX_HEADER_BYTES)
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| GetError::Other(hyper_reason(&e)))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::get(endpoint.path.as_str())
        .header(header::HOST, endpoint.host.as_str())
        .header(header::ACCEPT, "application/json")
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| GetError::Other(format!("bad request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| {
        GetError::Other(if e.is_incomplete_message() {
            String::from("connection closed before the end of the headers")
        } else {
            hyper_reason(&e)
        })
    })?;
    if response.status() != StatusCode::OK {
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| response.status().canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let status_line = format!("{:?} {} {reason}", response.version(), response.status().as_str());
        return Err(GetError::Other(format!(
            "unexpected status line `{}`",
            shorten(status_line.trim_end(), 80)
        )));
    }
    let content_length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| GetError::Other(String::from("response has no content-length")))?;
    if content_length > MAX_BODY_BYTES {
        return Err(GetError::Other(format!(
            "response body of {content_length} bytes is too large"
        )));
    }
    let mut body = response.into_body();
    let mut bytes = Vec::with_capacity(content_length);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            GetError::Other(if e.is_incomplete_message() {
                format!("connection closed after {} of {content_length} body bytes", bytes.len())
            } else {
                hyper_reason(&e)
            })
        })?;
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

/// A hyper error as a reason: its message (e.g. `message head is too large` past
/// 16 KiB of headers), then its cause.
fn hyper_reason(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loopback_ws_urls() {
        let e = parse_url("ws://127.0.0.1:34423/abc-def", "ws").unwrap();
        assert_eq!(e.addr, "127.0.0.1:34423".parse().unwrap());
        assert_eq!(e.path, "/abc-def");
        assert_eq!(e.ws_url(), "ws://127.0.0.1:34423/abc-def");

        let e = parse_url("ws://[::1]:9230/x", "ws").unwrap();
        assert_eq!(e.addr, "[::1]:9230".parse().unwrap());
        assert_eq!(e.host, "[::1]:9230");

        let e = parse_url("WS://LocalHost:9231/x", "ws").unwrap();
        assert_eq!(e.addr, "127.0.0.1:9231".parse().unwrap());
        assert_eq!(e.host, "localhost:9231");

        let e = parse_url("http://127.0.0.1", "http").unwrap();
        assert_eq!(e.addr.port(), DEFAULT_PORT);
        assert_eq!(e.path, "/");
    }

    #[test]
    fn rejects_other_hosts() {
        for url in [
            "ws://10.0.0.1:9229/x",
            "ws://0.0.0.0:9229/x",
            "ws://example.com:9229/x",
            "ws://[::]:9229/x",
            "ws://127.0.0.1.evil.com:9229/x",
        ] {
            assert!(
                matches!(parse_url(url, "ws"), Err(InspectorError::NotLoopback { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn rejects_malformed_urls() {
        for url in [
            "",
            "127.0.0.1:9229",
            "http://127.0.0.1:9229/x",
            "ws://user@127.0.0.1:9229/x",
            "ws://127.0.0.1:0/x",
            "ws://127.0.0.1:99999/x",
            "ws://127.0.0.1:abc/x",
            "ws://[::1/x",
            "ws://:9229/x",
            "ws://ä:9/ü",
        ] {
            let r = parse_url(url, "ws");
            assert!(r.is_err(), "{url} parsed as {r:?}");
        }
    }

    #[test]
    fn keeps_what_whatwg_would_normalize_away() {
        // An explicit default port is kept, not replaced by 9229.
        assert_eq!(parse_url("ws://127.0.0.1:80/x", "ws").unwrap().addr.port(), 80);
        assert_eq!(parse_url("http://localhost:80", "http").unwrap().host, "localhost:80");
        // Query and fragment stay in the path, as written.
        assert_eq!(parse_url("ws://127.0.0.1:9229?a#b", "ws").unwrap().path, "/?a#b");
        // Surrounding whitespace is ignored.
        assert!(parse_url("  ws://127.0.0.1:9229/x \n", "ws").is_ok());
        // IPv6 as written, including IPv4-mapped loopback.
        let e = parse_url("ws://[::ffff:127.0.0.1]:9229/x", "ws").unwrap();
        assert_eq!(e.host, "[::ffff:127.0.0.1]:9229");
        // Other spellings of a loopback host are refused as before.
        for url in [
            "ws://127.1:9229/x",
            "ws://0x7f.0.0.1/x",
            "ws://2130706433/x",
            "ws://127.0.0.1./x",
            "ws://%6Cocalhost:1/x",
            "ws://127.0.0.1\\x",
            "ws://[zz]:1/x",
        ] {
            assert!(
                matches!(parse_url(url, "ws"), Err(InspectorError::NotLoopback { .. })),
                "{url}"
            );
        }
        for url in [
            "ws:127.0.0.1:9229/x",
            "ws:/127.0.0.1/x",
            "ws://127.0.0.1:/x",
            "ws://a:b:c/x",
        ] {
            assert!(
                matches!(parse_url(url, "ws"), Err(InspectorError::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    /// Serves one connection with `response` and keeps it open, as node does; returns the
    /// endpoint and the request that was received.
    async fn serve_once(response: &'static str) -> (Endpoint, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint::from_addr(listener.local_addr().unwrap(), "/");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "request not finished");
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(response.as_bytes()).await.unwrap();
            let _ = tx.send(String::from_utf8(request).unwrap());
            // Never close, like node's inspector.
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        (endpoint, rx)
    }

    #[tokio::test]
    async fn json_list_reads_by_content_length_from_a_connection_left_open() {
        let body = r#"[{"type":"other","webSocketDebuggerUrl":"ws://127.0.0.1:1/b"},{"type":"node","webSocketDebuggerUrl":"ws://0.0.0.0:1/a"},{"type":"node"}]"#;
        let response = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (endpoint, request) = serve_once(Box::leak(response.into_boxed_str())).await;
        let targets = json_list(&endpoint, Duration::from_secs(10)).await.unwrap();
        let paths: Vec<&str> = targets.iter().map(|t| t.ws_path.as_str()).collect();
        assert_eq!(paths, ["/a", "/b"]);
        let request = request.await.unwrap();
        assert_eq!(
            request,
            format!(
                "GET /json/list HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                endpoint.host
            )
        );
    }

    #[tokio::test]
    async fn json_list_reports_bad_answers() {
        let cases = [
            (
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                "unexpected status line `HTTP/1.1 404 Not Found`",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
                "response has no content-length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":1}  ",
                "body is not a json array",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
                "no debuggable node target",
            ),
        ];
        for (response, expected) in cases {
            let (endpoint, _request) = serve_once(response).await;
            let err = json_list(&endpoint, Duration::from_secs(10)).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err} for {response:?}");
        }
        let (endpoint, _request) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[]").await;
        let err = json_list(&endpoint, Duration::from_millis(300)).await.unwrap_err();
        assert!(err.to_string().contains("no complete answer within 300 ms"), "{err}");
    }

    #[test]
    fn ipv4_mapped_loopback_is_loopback() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ws_path_ignores_the_host() {
        assert_eq!(ws_path_of("ws://evil.example:1/uuid").as_deref(), Some("/uuid"));
        assert_eq!(ws_path_of("nothing"), None);
    }
}
