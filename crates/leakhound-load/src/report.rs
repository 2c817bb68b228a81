//! [`LoadReport`]: the outcome of one load phase.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Latency of the responses of one phase, in milliseconds, from sending a request to the end
/// of its response body (failed requests are not included). All zero when there was no
/// response. Recorded with microsecond resolution and 3 significant digits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Arithmetic mean, ms.
    pub mean: f64,
    /// Median (50th percentile), ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Slowest response, ms.
    pub max: f64,
}

impl Latency {
    /// Reads the statistics out of a histogram of microseconds.
    pub(crate) fn from_histogram_us(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// The outcome of one [`run`](crate::run).
///
/// Every request sent is counted exactly once, either by the class of its response status or
/// as an error: `requests_sent == responses_2xx_3xx + responses_4xx + responses_5xx + errors`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    /// Requests attempted in this phase (each counted once, whatever its outcome). Equals
    /// [`LoadSpec::requests`](crate::LoadSpec::requests) when that was set and the duration
    /// did not end the phase first.
    pub requests_sent: u64,
    /// Responses with a status below 400.
    pub responses_2xx_3xx: u64,
    /// Responses with a status in 400..=499.
    pub responses_4xx: u64,
    /// Responses with a status of 500 or more.
    pub responses_5xx: u64,
    /// Requests that got no complete response: connect error, I/O error (including the
    /// server closing the connection mid-response) or timeout.
    pub errors: u64,
    /// Wall-clock length of the phase, in milliseconds, from the moment the first
    /// connections were open until the last response or error.
    pub elapsed_ms: f64,
    /// `requests_sent` divided by the elapsed time, in requests per second.
    pub requests_per_s: f64,
    /// Response latency statistics.
    pub latency_ms: Latency,
    /// Number of responses per HTTP status code.
    pub status_counts: BTreeMap<u16, u64>,
}

impl LoadReport {
    /// One line for humans, in the spirit of autocannon, e.g.
    /// `2000 requests in 1.23 s, 1626 req/s, latency p50 4.1 ms p90 7.9 ms p99 12.0 ms, 0 errors`.
    ///
    /// Latencies below 1 ms get two or three decimals (`p50 0.042 ms`). When some responses
    /// were 4xx or 5xx, `, N 4xx` / `, N 5xx` follow the error count.
    pub fn summary_line(&self) -> String {
        let plural = |n: u64, one: &str, many: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let mut line = format!(
            "{} in {:.2} s, {:.0} req/s, latency p50 {} ms p90 {} ms p99 {} ms, {}",
            plural(self.requests_sent, "request", "requests"),
            self.elapsed_ms / 1000.0,
            self.requests_per_s,
            format_ms(self.latency_ms.p50),
            format_ms(self.latency_ms.p90),
            format_ms(self.latency_ms.p99),
            plural(self.errors, "error", "errors"),
        );
        if self.responses_4xx > 0 {
            let _ = write!(line, ", {} 4xx", self.responses_4xx);
        }
        if self.responses_5xx > 0 {
            let _ = write!(line, ", {} 5xx", self.responses_5xx);
        }
        line
    }
}

/// Milliseconds with one decimal, or more below 1 ms so that fast local responses do not all
/// read `0.0`: `12.0`, `0.25`, `0.042`.
fn format_ms(ms: f64) -> String {
    if ms == 0.0 || ms >= 1.0 {
        format!("{ms:.1}")
    } else if ms >= 0.1 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_matches_the_documented_shape() {
        let report = LoadReport {
            requests_sent: 2000,
            responses_2xx_3xx: 2000,
            elapsed_ms: 1230.0,
            requests_per_s: 1626.0,
            latency_ms: Latency {
                mean: 5.0,
                p50: 4.1,
                p90: 7.9,
                p99: 12.0,
                max: 20.0,
            },
            ..LoadReport::default()
        };
        assert_eq!(
            report.summary_line(),
            "2000 requests in 1.23 s, 1626 req/s, latency p50 4.1 ms p90 7.9 ms p99 12.0 ms, 0 errors"
        );
    }

    #[test]
    fn summary_line_mentions_error_classes() {
        let report = LoadReport {
            requests_sent: 1,
            errors: 1,
            responses_4xx: 3,
            responses_5xx: 2,
            ..LoadReport::default()
        };
        let line = report.summary_line();
        assert!(line.starts_with("1 request in 0.00 s"), "{line}");
        assert!(line.ends_with("1 error, 3 4xx, 2 5xx"), "{line}");
    }

    #[test]
    fn sub_millisecond_latencies_keep_their_digits() {
        assert_eq!(format_ms(0.0), "0.0");
        assert_eq!(format_ms(0.042), "0.042");
        assert_eq!(format_ms(0.25), "0.25");
        assert_eq!(format_ms(1.0), "1.0");
        assert_eq!(format_ms(1234.56), "1234.6");
    }

    #[test]
    fn latency_of_an_empty_histogram_is_zero() {
        let h = Histogram::<u64>::new_with_bounds(1, 1000, 3).expect("valid bounds");
        assert_eq!(Latency::from_histogram_us(&h), Latency::default());
    }

    #[test]
    fn latency_converts_microseconds_to_milliseconds() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("valid bounds");
        for us in [1000, 2000, 3000, 4000] {
            h.record(us).expect("in range");
        }
        let l = Latency::from_histogram_us(&h);
        assert!((l.mean - 2.5).abs() < 0.01, "{l:?}");
        assert!((l.max - 4.0).abs() < 0.01, "{l:?}");
        assert!((l.p50 - 2.0).abs() < 0.01, "{l:?}");
    }
}
