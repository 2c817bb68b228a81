//! [`LoadSpec`]: what load to drive, and its validation.

use std::time::Duration;

use hyper::Method;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::LoadError;
use crate::target::{Target, parse_url};

/// Default number of concurrent connections ([`LoadSpec::connections`]).
pub const DEFAULT_CONNECTIONS: usize = 10;

/// Default per-request timeout ([`LoadSpec::request_timeout`]): 10 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound accepted for [`LoadSpec::connections`] (each connection is a socket and a task).
pub const MAX_CONNECTIONS: usize = 10_000;

/// One phase of HTTP load against a single URL.
///
/// Build it with [`LoadSpec::new`] (which fills in the defaults) and adjust the public fields;
/// [`run`](crate::run) validates it first. The phase ends when `requests` have been sent or
/// `duration` has passed, whichever comes first; at least one of the two must be set.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Target URL, `http://host[:port][/path][?query]`. `https://` is rejected: the driver
    /// speaks plain HTTP/1.1 only.
    pub url: String,
    /// HTTP method, default `GET`. Case-insensitive: it is sent upper-cased.
    pub method: String,
    /// Extra request headers `(name, value)`, sent in this order. A `host` header replaces the
    /// one derived from the URL; `content-length` and `transfer-encoding` are rejected (they
    /// are set from `body`).
    pub headers: Vec<(String, String)>,
    /// Request body, sent with every request (with a `content-length`), or `None` for none.
    pub body: Option<Vec<u8>>,
    /// Number of concurrent keep-alive connections (one worker task each), default 10.
    /// Must be in `1..=`[`MAX_CONNECTIONS`]. When `requests` is smaller, only that many
    /// connections are opened.
    pub connections: usize,
    /// Total number of requests in this phase, across all connections (sent exactly).
    pub requests: Option<u64>,
    /// Wall-clock length of this phase. Requests in flight when it ends still complete
    /// (each within `request_timeout`).
    pub duration: Option<Duration>,
    /// Target total request rate across all connections, in requests per second; `None`
    /// sends as fast as the connections allow. The n-th request (from 0) is due at
    /// `start + n / rate_per_s` on a schedule shared by all connections, so the rate does not
    /// drift; a late connection catches up without waiting.
    pub rate_per_s: Option<f64>,
    /// Limit for one request, from sending it to the end of its response body (also used as
    /// the connect timeout), default 10 s. A request that hits it counts as an error.
    pub request_timeout: Duration,
}

impl Default for LoadSpec {
    /// The defaults with an empty `url` (which [`LoadSpec::validate`] rejects).
    fn default() -> Self {
        LoadSpec {
            url: String::new(),
            method: String::from("GET"),
            headers: Vec::new(),
            body: None,
            connections: DEFAULT_CONNECTIONS,
            requests: None,
            duration: None,
            rate_per_s: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// A validated [`LoadSpec`], ready to build requests.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub target: Target,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub connections: usize,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub rate_per_s: Option<f64>,
    pub request_timeout: Duration,
}

impl LoadSpec {
    /// A spec for `url` with the defaults: `GET`, no headers, no body, 10 connections, a 10 s
    /// request timeout, no rate limit, and neither `requests` nor `duration` (set one).
    pub fn new(url: impl Into<String>) -> Self {
        LoadSpec {
            url: url.into(),
            ..LoadSpec::default()
        }
    }

    /// Checks every field without touching the network.
    ///
    /// # Errors
    ///
    /// [`LoadError::InvalidSpec`] naming the first bad field: `url` (empty, unparsable, not
    /// `http://`, no host, credentials), `method`, `headers` (bad name or value, or a
    /// framing header), `connections` (0 or above [`MAX_CONNECTIONS`]), `requests` (0, or
    /// neither `requests` nor `duration` set), `duration` (zero), `rate_per_s` (not a finite
    /// positive number) or `request_timeout` (zero).
    pub fn validate(&self) -> Result<(), LoadError> {
        self.prepare().map(|_| ())
    }

    pub(crate) fn prepare(&self) -> Result<Prepared, LoadError> {
        let target = parse_url(&self.url)?;

        let method_text = self.method.trim();
        if method_text.is_empty() {
            return Err(LoadError::invalid("method", "the method is empty"));
        }
        let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .map_err(|_| LoadError::invalid("method", format!("`{method_text}` is not a valid HTTP method")))?;

        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, target.host_header.clone());
        for (name, value) in &self.headers {
            let name_parsed = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| LoadError::invalid("headers", format!("`{name}` is not a valid header name")))?;
            if name_parsed == header::CONTENT_LENGTH || name_parsed == header::TRANSFER_ENCODING {
                return Err(LoadError::invalid(
                    "headers",
                    format!("`{name}` cannot be set: it is derived from the body"),
                ));
            }
            let value_parsed = HeaderValue::from_str(value.trim()).map_err(|_| {
                LoadError::invalid(
                    "headers",
                    format!("the value of `{name}` contains characters not allowed in a header"),
                )
            })?;
            if name_parsed == header::HOST {
                // Replaces the one derived from the URL (a request has exactly one host).
                headers.insert(name_parsed, value_parsed);
            } else {
                headers.append(name_parsed, value_parsed);
            }
        }

        if self.connections == 0 {
            return Err(LoadError::invalid("connections", "must be at least 1"));
        }
        if self.connections > MAX_CONNECTIONS {
            return Err(LoadError::invalid(
                "connections",
                format!("{} is more than the maximum of {MAX_CONNECTIONS}", self.connections),
            ));
        }
        if self.requests.is_none() && self.duration.is_none() {
            return Err(LoadError::invalid(
                "requests",
                "set a number of requests or a duration (or both)",
            ));
        }
        if self.requests == Some(0) {
            return Err(LoadError::invalid("requests", "must be at least 1"));
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(LoadError::invalid("duration", "must be longer than zero"));
        }
        if let Some(rate) = self.rate_per_s
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(LoadError::invalid(
                "rate_per_s",
                format!("{rate} is not a positive number of requests per second"),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(LoadError::invalid("request_timeout", "must be longer than zero"));
        }

        Ok(Prepared {
            target,
            method,
            headers,
            body: Bytes::from(self.body.clone().unwrap_or_default()),
            connections: self.connections,
            requests: self.requests,
            duration: self.duration,
            rate_per_s: self.rate_per_s,
            request_timeout: self.request_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_spec() -> LoadSpec {
        let mut spec = LoadSpec::new("http://127.0.0.1:3000/a?b=c");
        spec.requests = Some(10);
        spec
    }

    fn field_of(spec: &LoadSpec) -> &'static str {
        match spec.validate() {
            Err(LoadError::InvalidSpec { field, .. }) => field,
            other => panic!("expected an invalid spec, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let spec = LoadSpec::new("http://x/");
        assert_eq!(spec.method, "GET");
        assert_eq!(spec.connections, DEFAULT_CONNECTIONS);
        assert_eq!(spec.request_timeout, Duration::from_secs(10));
        assert_eq!((spec.requests, spec.duration, spec.rate_per_s), (None, None, None));
        assert!(ok_spec().validate().is_ok());
    }

    #[test]
    fn prepared_request_parts() {
        let mut spec = ok_spec();
        spec.method = "post".into();
        spec.headers = vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())];
        let p = spec.prepare().expect("valid");
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.target.path, "/a?b=c");
        assert_eq!(p.target.port, 3000);
        assert_eq!(p.headers[header::HOST], "127.0.0.1:3000");
        assert_eq!(p.headers.get_all("x-a").iter().count(), 2);

        spec.headers = vec![("Host".into(), "example.test".into())];
        let p = spec.prepare().expect("valid");
        assert_eq!(p.headers.get_all(header::HOST).iter().count(), 1);
        assert_eq!(p.headers[header::HOST], "example.test");
    }

    #[test]
    fn url_forms() {
        let p = |url: &str| parse_url(url).expect(url);
        let t = p("http://localhost");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.to_string().as_str()),
            ("localhost", 80, "/")
        );
        let t = p("HTTP://[::1]:8080");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.host_header, "[::1]:8080");
        for bad in [
            "",
            "   ",
            "https://127.0.0.1/",
            "ftp://127.0.0.1/",
            "127.0.0.1:3000",
            "/just/a/path",
            "http://user:pw@127.0.0.1/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:/",
            "http:// bad/",
            "http://",
        ] {
            let mut spec = ok_spec();
            spec.url = bad.into();
            assert!(
                matches!(spec.validate(), Err(LoadError::InvalidSpec { field: "url", .. })),
                "{bad:?} was accepted: {:?}",
                spec.prepare().map(|p| p.target)
            );
        }
        let mut spec = ok_spec();
        spec.url = "https://127.0.0.1/".into();
        let text = spec.validate().expect_err("https").to_string();
        assert!(
            text.starts_with("invalid url: ") && text.contains("https is not supported"),
            "{text}"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        type Change = Box<dyn Fn(&mut LoadSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            ("method", Box::new(|s| s.method = String::new())),
            ("method", Box::new(|s| s.method = "GE T".into())),
            (
                "headers",
                Box::new(|s| s.headers = vec![("bad name".into(), "v".into())]),
            ),
            ("headers", Box::new(|s| s.headers = vec![("x".into(), "a\nb".into())])),
            (
                "headers",
                Box::new(|s| s.headers = vec![("Content-Length".into(), "3".into())]),
            ),
            (
                "headers",
                Box::new(|s| s.headers = vec![("transfer-encoding".into(), "chunked".into())]),
            ),
            ("connections", Box::new(|s| s.connections = 0)),
            ("connections", Box::new(|s| s.connections = MAX_CONNECTIONS + 1)),
            ("requests", Box::new(|s| s.requests = None)),
            ("requests", Box::new(|s| s.requests = Some(0))),
            ("duration", Box::new(|s| s.duration = Some(Duration::ZERO))),
            ("rate_per_s", Box::new(|s| s.rate_per_s = Some(0.0))),
            ("rate_per_s", Box::new(|s| s.rate_per_s = Some(-1.0))),
            ("rate_per_s", Box::new(|s| s.rate_per_s = Some(f64::NAN))),
            ("rate_per_s", Box::new(|s| s.rate_per_s = Some(f64::INFINITY))),
            ("request_timeout", Box::new(|s| s.request_timeout = Duration::ZERO)),
        ];
        for (field, change) in cases {
            let mut spec = ok_spec();
            change(&mut spec);
            assert_eq!(field_of(&spec), field, "{spec:?}");
            let text = spec.validate().expect_err("invalid").to_string();
            assert!(text.starts_with(&format!("invalid {field}: ")), "{text}");
        }
    }

    #[test]
    fn extreme_but_valid_values() {
        let mut spec = ok_spec();
        spec.requests = Some(u64::MAX);
        spec.duration = Some(Duration::MAX);
        spec.rate_per_s = Some(f64::MIN_POSITIVE);
        spec.request_timeout = Duration::MAX;
        spec.connections = MAX_CONNECTIONS;
        assert!(spec.validate().is_ok());
        spec.requests = None;
        spec.duration = Some(Duration::from_nanos(1));
        assert!(spec.validate().is_ok());
    }
}
