//! Inspector addresses: URL parsing restricted to the loopback interface, and the `/json/list`
//! HTTP endpoint read over a raw TCP stream.
//!
//! Node keeps `/json/list` connections open after answering (even for HTTP/1.0 or
//! `Connection: close`), so the body is read by `Content-Length` under a timeout, never to EOF
//! (`../shared/reference/crates.md` §5, gotcha 1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::InspectorError;

/// Default inspector port when a URL gives none.
pub(crate) const DEFAULT_PORT: u16 = 9229;

/// Largest `/json/list` header block we accept, in bytes.
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

/// Parses `scheme://host[:port][/path]` where `scheme` is `expected_scheme` and `host` is a
/// loopback IP literal or `localhost` (mapped to 127.0.0.1 without consulting DNS or
/// `/etc/hosts`).
///
/// # Errors
///
/// [`InspectorError::InvalidUrl`] for malformed input or another scheme,
/// [`InspectorError::NotLoopback`] for any other host.
pub(crate) fn parse_url(url: &str, expected_scheme: &str) -> Result<Endpoint, InspectorError> {
    let invalid = |reason: &str| InspectorError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = url.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| invalid("expected scheme://host:port/path"))?;
    if !scheme.eq_ignore_ascii_case(expected_scheme) {
        return Err(invalid(&format!("expected a {expected_scheme}:// url")));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if authority.contains('@') {
        return Err(invalid("user information is not supported"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| invalid("bad host or port"))?;
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("bad port"))?,
    };
    let (ip, host_header) = if host.eq_ignore_ascii_case("localhost") {
        (IpAddr::V4(Ipv4Addr::LOCALHOST), format!("localhost:{port}"))
    } else {
        let ip: IpAddr = host.parse().map_err(|_| {
            if host.is_empty() {
                invalid("missing host")
            } else {
                InspectorError::NotLoopback { url: url.to_owned() }
            }
        })?;
        let header = match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        (ip, header)
    };
    if !is_loopback(ip) {
        return Err(InspectorError::NotLoopback { url: url.to_owned() });
    }
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        host: host_header,
        path,
    })
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        if after.is_empty() {
            Some((host, None))
        } else {
            Some((host, Some(after.strip_prefix(':')?)))
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) if !p.contains(':') => Some((h, Some(p))),
            Some(_) => None,
            None => Some((authority, None)),
        }
    }
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
/// non-200 status or a body that is not a JSON array.
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

/// The path part of a `ws://host:port/path` URL. The host is ignored on purpose: we only
/// ever connect to the address we already know is loopback.
fn ws_path_of(ws_url: &str) -> Option<String> {
    let rest = ws_url.split_once("://").map_or(ws_url, |(_, r)| r);
    let i = rest.find('/')?;
    Some(rest[i..].to_owned())
}

enum GetError {
    Connect(std::io::Error),
    Other(String),
}

async fn http_get(endpoint: &Endpoint) -> Result<Vec<u8>, GetError> {
    let mut stream = TcpStream::connect(endpoint.addr).await.map_err(GetError::Connect)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        endpoint.path, endpoint.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| GetError::Other(format!("write failed: {e}")))?;

    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let header_end = loop {
        if let Some(i) = find_subslice(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(GetError::Other(String::from("response headers too large")));
        }
        let n = read_some(&mut stream, &mut buf).await?;
        if n == 0 {
            return Err(GetError::Other(String::from(
                "connection closed before the end of the headers",
            )));
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(GetError::Other(format!(
            "unexpected status line `{}`",
            crate::error::shorten(status_line, 80)
        )));
    }
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or_else(|| GetError::Other(String::from("response has no content-length")))?;
    if content_length > MAX_BODY_BYTES {
        return Err(GetError::Other(format!(
            "response body of {content_length} bytes is too large"
        )));
    }
    let mut body = buf.split_off(header_end);
    while body.len() < content_length {
        let n = read_some(&mut stream, &mut body).await?;
        if n == 0 {
            return Err(GetError::Other(format!(
                "connection closed after {} of {content_length} body bytes",
                body.len()
            )));
        }
    }
    body.truncate(content_length);
    Ok(body)
}

async fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, GetError> {
    let mut chunk = [0u8; 8192];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|e| GetError::Other(format!("read failed: {e}")))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
