//! Parsing of `http://` URLs, name resolution and opening one HTTP/1.1 connection.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::{Uri, http::uri::Scheme};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::LoadError;

/// A parsed `http://` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as the user wrote it (for messages).
    pub url: String,
    /// Host to resolve (IPv6 brackets removed).
    pub host: String,
    /// Port (80 if the URL has none).
    pub port: u16,
    /// Value of the `Host` header (`host[:port]` as written in the URL).
    pub host_header: HeaderValue,
    /// The origin-form request target (`/path?query`).
    pub path: Uri,
}

/// Parses `url`; errors name the field `url`.
pub(crate) fn parse_url(url: &str) -> Result<Target, LoadError> {
    let bad = |reason: String| LoadError::invalid("url", reason);
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad("the url is empty".into()));
    }
    let uri: Uri = trimmed
        .parse()
        .map_err(|e| bad(format!("`{trimmed}` is not a valid url: {e}")))?;
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => {}
        Some(s) if *s == Scheme::HTTPS => {
            return Err(bad(format!(
                "`{trimmed}`: https is not supported, use an http:// url (the load driver speaks plain HTTP/1.1 only)"
            )));
        }
        Some(s) => {
            return Err(bad(format!(
                "`{trimmed}`: unsupported scheme `{s}`, only http:// is supported"
            )));
        }
        None => {
            return Err(bad(format!(
                "`{trimmed}` has no scheme, write it as http://host:port/path"
            )));
        }
    }
    let authority = uri.authority().ok_or_else(|| bad(format!("`{trimmed}` has no host")))?;
    if authority.as_str().contains('@') {
        return Err(bad(format!(
            "`{trimmed}`: credentials in the url are not supported, send an authorization header instead"
        )));
    }
    let raw_host = authority.host();
    if raw_host.is_empty() {
        return Err(bad(format!("`{trimmed}` has no host")));
    }
    let host = raw_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(raw_host)
        .to_owned();
    // `Authority::port()` hides an out-of-range port; read it from the text.
    let port_text = authority.as_str().strip_prefix(raw_host).unwrap_or_default();
    let port = if port_text.is_empty() {
        80
    } else {
        port_text
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| bad(format!("`{trimmed}`: bad port `{}`", port_text.trim_start_matches(':'))))?
    };
    if port == 0 {
        return Err(bad(format!("`{trimmed}`: port 0 cannot be connected to")));
    }
    let host_header =
        HeaderValue::from_str(authority.as_str()).map_err(|e| bad(format!("`{trimmed}`: bad host: {e}")))?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let path_and_query = if path_and_query.is_empty() { "/" } else { path_and_query };
    let path: Uri = path_and_query
        .parse()
        .map_err(|e| bad(format!("`{trimmed}`: bad path: {e}")))?;
    Ok(Target {
        url: trimmed.to_owned(),
        host,
        port,
        host_header,
        path,
    })
}

/// Resolves the target's host; never returns an empty list.
pub(crate) async fn resolve(target: &Target) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve `{}`: {e}", target.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{}` resolved to no addresses", target.host),
        ));
    }
    Ok(addrs)
}

/// Aborts the wrapped task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One open HTTP/1.1 connection: the request handle and the task driving the socket.
#[derive(Debug)]
pub(crate) struct Conn {
    pub sender: SendRequest<Full<Bytes>>,
    /// When its last response ended (or it was opened): how long it has been idle.
    pub idle_since: tokio::time::Instant,
    _driver: AbortOnDrop,
}

/// Connects to the first address of `addrs` that accepts, starting at `first` (the address
/// that worked last time), within `timeout` overall. Returns the index of the address used.
pub(crate) async fn connect(addrs: &[SocketAddr], first: usize, timeout: Duration) -> io::Result<(Conn, usize)> {
    let attempt = async {
        let mut last_err = None;
        for k in 0..addrs.len() {
            let i = (first + k) % addrs.len();
            match TcpStream::connect(addrs[i]).await {
                Ok(stream) => return Ok((stream, i)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    };
    let (stream, index) = tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect timed out after {} ms", timeout.as_millis()),
        )
    })??;
    // Latency matters more than packet count for a load driver.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    let driver = tokio::spawn(async move {
        // Errors surface on the request futures; nothing to do here.
        let _ = connection.await;
    });
    Ok((
        Conn {
            sender,
            idle_since: tokio::time::Instant::now(),
            _driver: AbortOnDrop(driver),
        },
        index,
    ))
}
