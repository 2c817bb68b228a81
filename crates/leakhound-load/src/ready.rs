//! [`wait_ready`]: poll a URL until the server answers.

use std::time::Duration;

use http_body_util::Full;
use hyper::Request;
use hyper::body::Bytes;
use hyper::header;
use tokio::time::Instant;

use crate::LoadError;
use crate::target::{Target, connect, parse_url, resolve};

/// Pause between two attempts of [`wait_ready`].
pub const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `url` with `GET` requests until the server answers with any HTTP status (a 404 or a
/// 500 counts as ready: something is listening and speaking HTTP), and returns that status.
///
/// An attempt resolves the host, connects, sends `GET` with `connection: close` and waits for
/// the response head; attempts are [`READY_POLL_INTERVAL`] (50 ms) apart. At least one attempt
/// is made, even with a zero `timeout`.
///
/// # Errors
///
/// - [`LoadError::InvalidSpec`] (field `url`) if `url` is not a valid `http://` URL.
/// - [`LoadError::NotReady`] if nothing answered within `timeout`; it names the URL, the
///   timeout and the last attempt's error (e.g. `connection refused`).
///
/// # Cancel safety
///
/// Safe to drop at any point: the attempt in progress is abandoned and its connection
/// closed.
pub async fn wait_ready(url: &str, timeout: Duration) -> Result<u16, LoadError> {
    let target = parse_url(url)?;
    let deadline = Instant::now().checked_add(timeout);
    let remaining = || deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
    let mut last_error: Option<String> = None;
    loop {
        match tokio::time::timeout(remaining(), probe(&target)).await {
            Ok(Ok(status)) => return Ok(status),
            Ok(Err(e)) => last_error = Some(e),
            // An attempt cut short by the deadline says less than the error before it.
            Err(_) => {
                last_error.get_or_insert_with(|| format!("no HTTP answer within {} ms", timeout.as_millis()));
            }
        }
        let left = remaining();
        if !left.is_zero() {
            tokio::time::sleep(left.min(READY_POLL_INTERVAL)).await;
        }
        if remaining().is_zero() {
            return Err(LoadError::NotReady {
                url: target.url,
                timeout,
                last_error: last_error.unwrap_or_else(|| String::from("no attempt finished")),
            });
        }
    }
}

/// One attempt: the response status, or why there was none.
async fn probe(target: &Target) -> Result<u16, String> {
    let addrs = resolve(target).await.map_err(|e| e.to_string())?;
    // The caller's timeout bounds the whole attempt; this one only has to be finite.
    let (mut conn, _) = connect(&addrs, 0, Duration::from_secs(3600))
        .await
        .map_err(|e| e.to_string())?;
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = target.path.clone();
    req.headers_mut().insert(header::HOST, target.host_header.clone());
    req.headers_mut()
        .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    let response = conn
        .sender
        .send_request(req)
        .await
        .map_err(|e| format!("no valid HTTP response: {e}"))?;
    Ok(response.status().as_u16())
}
