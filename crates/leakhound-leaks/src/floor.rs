//! The memory watch's statistics: the floor after each full GC, its slope per request and
//! per hour with a 95 % confidence interval (ordinary least squares, Student's t quantile
//! from `statrs`), and which memory grows: the JS heap, external memory (Buffers,
//! ArrayBuffers), or only RSS (native memory outside V8's view).

use std::fmt;

use statrs::distribution::{ContinuousCDF, StudentsT};

/// One reading of `process.memoryUsage()` (bytes) during a hunt.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemorySample {
    /// Milliseconds since the hunt started.
    pub t_ms: f64,
    /// Requests (units of load) sent so far.
    pub requests: u64,
    /// `rss`: the resident set size of the whole process.
    pub rss_bytes: u64,
    /// `heapTotal`: the V8 heap's reserved size.
    pub heap_total_bytes: u64,
    /// `heapUsed`: the V8 heap's live objects.
    pub heap_used_bytes: u64,
    /// `external`: memory of C++ objects bound to JS objects (includes `arrayBuffers`).
    pub external_bytes: u64,
    /// `arrayBuffers`: ArrayBuffer and SharedArrayBuffer backing stores (Buffers too).
    pub array_buffers_bytes: u64,
    /// Read right after a full (mark-compact) GC: a floor point.
    pub after_full_gc: bool,
    /// That GC was forced (by leakhound), not the app's own.
    pub forced_gc: bool,
}

/// A reading of `process.memoryUsage()` whose floor is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloorMetric {
    /// `heapUsed`: live objects on the JS heap.
    HeapUsed,
    /// `external`: memory of C++ objects bound to JS objects (Buffers, ArrayBuffers).
    External,
    /// `rss`: the process' resident set.
    Rss,
}

impl FloorMetric {
    /// The snake_case name in JSON and text: `heap_used`, `external`, `rss`.
    pub fn as_str(self) -> &'static str {
        match self {
            FloorMetric::HeapUsed => "heap_used",
            FloorMetric::External => "external",
            FloorMetric::Rss => "rss",
        }
    }
}

/// [`FloorMetric::as_str`], padded as the formatter asks.
impl fmt::Display for FloorMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which memory grows, as [`FloorAnalysis::growing`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// The JS heap: the `heapUsed` floor rises.
    JsHeap,
    /// External memory: the `external` floor rises.
    External,
    /// Native memory outside V8's view: the `rss` floor rises while the other two do not.
    Native,
}

impl MemoryKind {
    /// The snake_case name in JSON and text: `js_heap`, `external`, `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::JsHeap => "js_heap",
            MemoryKind::External => "external",
            MemoryKind::Native => "native",
        }
    }
}

/// [`MemoryKind::as_str`], padded as the formatter asks.
impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A least-squares line through the floor of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorFit {
    /// The memory reading fitted.
    pub metric: FloorMetric,
    /// Floor points used (samples right after a full GC, from the end of the warm-up).
    pub points: usize,
    /// Floor at the first point, bytes.
    pub first_bytes: u64,
    /// Floor at the last point, bytes.
    pub last_bytes: u64,
    /// Slope in bytes per request (None without load or with < 3 points).
    pub bytes_per_request: Option<f64>,
    /// 95 % confidence interval of `bytes_per_request`.
    pub bytes_per_request_ci95: Option<(f64, f64)>,
    /// Slope in bytes per hour.
    pub bytes_per_hour: Option<f64>,
    /// 95 % confidence interval of `bytes_per_hour`.
    pub bytes_per_hour_ci95: Option<(f64, f64)>,
    /// The slope is positive with 95 % confidence and the floor rose by a meaningful
    /// amount (at least 1 % of the first floor and 256 KiB — for RSS 5 % and 4 MiB — or 64
    /// bytes per request).
    pub growing: bool,
}

/// The floor analysis of a memory series.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorAnalysis {
    /// Fit of the `heapUsed` floors.
    pub heap_used: FloorFit,
    /// Fit of the `external` floors.
    pub external: FloorFit,
    /// Fit of the `rss` floors.
    pub rss: FloorFit,
    /// Which memory grows, in this order: the JS heap, external memory, or native memory
    /// (only when RSS grows while the heap and external memory do not); empty when
    /// nothing does.
    pub growing: Vec<MemoryKind>,
}

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom (its inverse CDF at
/// 0.975); infinite for 0.
fn t95(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map_or(f64::INFINITY, |t| t.inverse_cdf(0.975))
}

/// Ordinary least squares of y on x: (slope, half-width of its 95 % confidence interval,
/// from the slope's standard error and Student's t with n - 2 degrees of freedom). `None`
/// with fewer than 3 points, unequal lengths, or all x equal.
fn ols(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len();
    if n < 3 || n != ys.len() {
        return None;
    }
    let nf = n as f64;
    let mx = xs.iter().sum::<f64>() / nf;
    let my = ys.iter().sum::<f64>() / nf;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    let se = (sse / (nf - 2.0) / sxx).sqrt();
    Some((slope, t95(n - 2) * se))
}

/// The fit of `metric`'s floors, read from each sample by `value`, against requests and
/// against time, and whether it grows.
fn fit(metric: FloorMetric, floors: &[MemorySample], value: impl Fn(&MemorySample) -> u64) -> FloorFit {
    let ys: Vec<f64> = floors.iter().map(|s| value(s) as f64).collect();
    let req: Vec<f64> = floors.iter().map(|s| s.requests as f64).collect();
    let hours: Vec<f64> = floors.iter().map(|s| s.t_ms / 3_600_000.0).collect();
    let per_request = ols(&req, &ys);
    let per_hour = ols(&hours, &ys);
    let first = floors.first().map(&value).unwrap_or(0);
    let last = floors.last().map(&value).unwrap_or(0);
    // A meaningful rise: at least 1 % of the first floor and 256 KiB over the series,
    // or 64 bytes per request.
    // RSS is noisier (allocator arenas, code pages warming up): it must rise by 5 % and
    // 4 MiB; the heap and external memory by 1 % and 256 KiB.
    let min_rise = if metric == FloorMetric::Rss {
        (first as f64 * 0.05).max(4.0 * 1024.0 * 1024.0)
    } else {
        (first as f64 * 0.01).max(256.0 * 1024.0)
    };
    let span = |xs: &[f64]| xs.last().copied().unwrap_or(0.0) - xs.first().copied().unwrap_or(0.0);
    let growing = match (per_request, per_hour) {
        (Some((slope, half)), _) if span(&req) > 0.0 => {
            slope - half > 0.0 && (slope * span(&req) >= min_rise || (metric != FloorMetric::Rss && slope >= 64.0))
        }
        (_, Some((slope, half))) => slope - half > 0.0 && slope * span(&hours) >= min_rise,
        _ => false,
    };
    FloorFit {
        metric,
        points: floors.len(),
        first_bytes: first,
        last_bytes: last,
        bytes_per_request: per_request.map(|p| p.0),
        bytes_per_request_ci95: per_request.map(|(s, h)| (s - h, s + h)),
        bytes_per_hour: per_hour.map(|p| p.0),
        bytes_per_hour_ci95: per_hour.map(|(s, h)| (s - h, s + h)),
        growing,
    }
}

/// Floor points a "flat" answer needs at the least: with fewer, a 95 % interval says too
/// little (Student's t alone is 3.18 at 3 points, 2.78 at 4, 2.57 at 5).
pub const MIN_FLAT_POINTS: usize = 5;

/// The slope per request below which a floor counts as flat: 256 bytes. A healthy app's
/// interval always contains zero, so "the interval contains zero" cannot be the test (every
/// healthy app would stay undecided); instead the whole interval must lie below a margin
/// that matters. 256 B per request is 1 MB over the 4,000 requests of a default hunt, within
/// the noise of a full GC's floor, while any leak of whole objects per request is seen by
/// the snapshots' leak finder regardless of this margin.
pub const FLAT_BYTES_PER_REQUEST: f64 = 256.0;

/// The slope per hour below which a floor of `metric` at `level_bytes` counts as flat: for
/// the JS heap and external memory the larger of 1 MiB/h and 1 % of the level per hour (a
/// floor that needs more than 100 h to double is not what kills a service between
/// deploys); for RSS, which moves with the allocator, 4 MiB/h or 2 %/h.
pub fn flat_bytes_per_hour(metric: FloorMetric, level_bytes: u64) -> f64 {
    let level = level_bytes as f64;
    match metric {
        FloorMetric::Rss => (4.0 * 1024.0 * 1024.0_f64).max(0.02 * level),
        _ => (1024.0 * 1024.0_f64).max(0.01 * level),
    }
}

/// What one floor fit shows on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// It rises: the lower 95 % bound of the slope is above zero, by more than the noise
    /// ([`FloorFit::growing`]).
    Rising,
    /// It is flat: at least [`MIN_FLAT_POINTS`] points and the upper 95 % bound of the slope
    /// below the margin.
    Flat,
    /// Neither yet: about this many more floor points would decide, at the rate points came
    /// so far (a rough figure: the interval narrows as n^-1.5 when the run goes on at the
    /// same pace, points and time span growing together).
    Undecided {
        /// More floor points needed (at least 1).
        more_points: usize,
    },
}

impl Evidence {
    /// The most floor points any of `evidence` still needs (None when none is undecided).
    pub fn more_points_needed(evidence: &[Evidence]) -> Option<usize> {
        evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Undecided { more_points } => Some(*more_points),
                _ => None,
            })
            .max()
    }
}

impl FloorFit {
    /// Whether the floor rises by more than the flat margin per request with 95 %
    /// confidence: the lower bound of the slope per request above
    /// [`FLAT_BYTES_PER_REQUEST`] (4× that for RSS, which the allocator moves). The mirror
    /// of a flat floor: what lies between the two is too small to tell from warm-up (code
    /// compiled on first use, inline caches and pools filling) without more load, and a
    /// leak of whole objects per request is the snapshots' to find whatever its size.
    pub fn rises_beyond_margin_per_request(&self) -> bool {
        let margin = match self.metric {
            FloorMetric::Rss => 4.0 * FLAT_BYTES_PER_REQUEST,
            _ => FLAT_BYTES_PER_REQUEST,
        };
        self.growing && self.bytes_per_request_ci95.is_some_and(|(lo, _)| lo > margin)
    }

    /// The fit's evidence per request, against [`FLAT_BYTES_PER_REQUEST`] both ways:
    /// rising when the whole 95 % interval lies above it
    /// ([`FloorFit::rises_beyond_margin_per_request`]), flat when it lies below, else
    /// undecided. A short hunt cannot tell a rise smaller than that from warm-up.
    pub fn evidence_per_request(&self) -> Evidence {
        self.evidence(
            self.bytes_per_request,
            self.bytes_per_request_ci95,
            FLAT_BYTES_PER_REQUEST,
            self.rises_beyond_margin_per_request(),
        )
    }

    /// The fit's evidence per hour, against [`flat_bytes_per_hour`] at its last floor:
    /// rising when [`FloorFit::growing`] (a watch runs long enough for any steady rise to
    /// matter), flat when the upper bound is below the margin.
    pub fn evidence_per_hour(&self) -> Evidence {
        let margin = flat_bytes_per_hour(self.metric, self.last_bytes);
        self.evidence(self.bytes_per_hour, self.bytes_per_hour_ci95, margin, self.growing)
    }

    fn evidence(&self, slope: Option<f64>, ci: Option<(f64, f64)>, margin: f64, rising: bool) -> Evidence {
        if rising {
            return Evidence::Rising;
        }
        let n = self.points;
        let (Some(slope), Some((lo, hi))) = (slope, ci) else {
            return Evidence::Undecided {
                more_points: MIN_FLAT_POINTS.saturating_sub(n).max(1),
            };
        };
        if n >= MIN_FLAT_POINTS && hi < margin {
            return Evidence::Flat;
        }
        // The half-width the interval must shrink to: below the margin if the slope is
        // under it, else clear of zero.
        let half = (hi - lo) / 2.0;
        let target = if slope < margin { margin - slope } else { slope };
        let target = if target > 0.0 { target } else { margin / 2.0 };
        let factor = if half > target {
            (half / target).powf(2.0 / 3.0)
        } else {
            1.0
        };
        let needed = ((n as f64) * factor).ceil() as usize;
        Evidence::Undecided {
            more_points: needed.max(MIN_FLAT_POINTS).saturating_sub(n).max(1),
        }
    }
}

/// Fits the floors (samples taken right after a full GC) from `from_ms` on (the end of
/// the warm-up), and says which memory grows.
pub fn analyze_floor(samples: &[MemorySample], from_ms: f64) -> FloorAnalysis {
    let floors: Vec<MemorySample> = samples
        .iter()
        .copied()
        .filter(|s| s.after_full_gc && s.t_ms >= from_ms)
        .collect();
    let heap_used = fit(FloorMetric::HeapUsed, &floors, |s| s.heap_used_bytes);
    let external = fit(FloorMetric::External, &floors, |s| s.external_bytes);
    let rss = fit(FloorMetric::Rss, &floors, |s| s.rss_bytes);
    let mut growing = Vec::new();
    if heap_used.growing {
        growing.push(MemoryKind::JsHeap);
    }
    if external.growing {
        growing.push(MemoryKind::External);
    }
    if rss.growing && !heap_used.growing && !external.growing {
        growing.push(MemoryKind::Native);
    }
    FloorAnalysis {
        heap_used,
        external,
        rss,
        growing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_points_decide_nothing_and_enough_flat_ones_are_flat() {
        let flat = |n: u64| -> Vec<MemorySample> {
            (0..n)
                .map(|i| floor(i as f64 * 10_000.0, i * 1000, (10 << 20) + (i % 2) * 2000))
                .collect()
        };
        let three = analyze_floor(&flat(3), 0.0);
        assert!(
            matches!(three.heap_used.evidence_per_request(), Evidence::Undecided { more_points } if more_points >= 2),
            "{:?}",
            three.heap_used
        );
        let twelve = analyze_floor(&flat(12), 0.0);
        assert_eq!(
            twelve.heap_used.evidence_per_request(),
            Evidence::Flat,
            "{:?}",
            twelve.heap_used
        );
        // Per hour: floors jumping by 4 MB over 110 s cannot bound the slope below 1 MiB/h.
        let noisy: Vec<MemorySample> = (0..12)
            .map(|i| floor(i as f64 * 10_000.0, 0, (10 << 20) + (i % 2) * (4 << 20)))
            .collect();
        let noisy = analyze_floor(&noisy, 0.0);
        assert!(
            matches!(noisy.heap_used.evidence_per_hour(), Evidence::Undecided { more_points } if more_points > 0),
            "{:?}",
            noisy.heap_used
        );
        let none = analyze_floor(&[], 0.0);
        assert_eq!(
            none.heap_used.evidence_per_hour(),
            Evidence::Undecided { more_points: 5 }
        );
    }

    fn floor(t: f64, requests: u64, heap: u64) -> MemorySample {
        MemorySample {
            t_ms: t,
            requests,
            heap_used_bytes: heap,
            rss_bytes: 50 << 20,
            external_bytes: 1 << 20,
            after_full_gc: true,
            ..Default::default()
        }
    }

    #[test]
    fn ols_recovers_an_exact_line_with_a_zero_width_interval() {
        let xs = [0.0, 1.0, 2.0, 3.0];
        let ys = [1.0, 3.0, 5.0, 7.0];
        let (slope, half) = ols(&xs, &ys).unwrap();
        assert!((slope - 2.0).abs() < 1e-9);
        assert!(half.abs() < 1e-6);
        assert!(ols(&xs[..2], &ys[..2]).is_none());
    }

    #[test]
    fn t95_is_students_t_quantile() {
        // Textbook values, to the table's three decimals.
        for (df, t) in [
            (1, 12.706),
            (2, 4.303),
            (5, 2.571),
            (10, 2.228),
            (30, 2.042),
            (120, 1.980),
        ] {
            assert!((t95(df) - t).abs() < 5e-4, "{df}: {}", t95(df));
        }
        assert!((t95(100_000) - 1.960).abs() < 5e-4);
        assert_eq!(t95(0), f64::INFINITY);
    }

    #[test]
    fn a_rising_floor_is_growing_js_heap() {
        let s: Vec<MemorySample> = (0..10)
            .map(|i| {
                floor(
                    i as f64 * 1000.0,
                    i * 1000,
                    (10 << 20) + i * 1000 * 400 + (i % 2) * 5000,
                )
            })
            .collect();
        let a = analyze_floor(&s, 0.0);
        assert!(a.heap_used.growing, "{:?}", a.heap_used);
        let per = a.heap_used.bytes_per_request.unwrap();
        assert!((per - 400.0).abs() < 20.0, "{per}");
        assert_eq!(a.growing, vec![MemoryKind::JsHeap]);
        assert_eq!(a.heap_used.metric.to_string(), "heap_used");
        assert_eq!(format!("{:<9}|", a.rss.metric), "rss      |");
    }

    #[test]
    fn a_flat_noisy_floor_is_not_growing() {
        let s: Vec<MemorySample> = (0..12)
            .map(|i| {
                floor(
                    i as f64 * 1000.0,
                    i * 1000,
                    (10 << 20) + [0, 90_000, 10_000, 70_000][i as usize % 4],
                )
            })
            .collect();
        let a = analyze_floor(&s, 0.0);
        assert!(!a.heap_used.growing, "{:?}", a.heap_used);
        assert!(a.growing.is_empty());
    }

    #[test]
    fn samples_before_the_warm_up_and_non_floor_samples_are_ignored() {
        let mut s: Vec<MemorySample> = (0..6)
            .map(|i| floor(1000.0 + i as f64 * 1000.0, i * 100, 10 << 20))
            .collect();
        s.push(MemorySample {
            after_full_gc: false,
            heap_used_bytes: 900 << 20,
            t_ms: 3500.0,
            ..floor(0.0, 0, 0)
        });
        s.push(floor(0.0, 0, 1 << 20));
        let a = analyze_floor(&s, 500.0);
        assert_eq!(a.heap_used.points, 6);
        assert!(!a.heap_used.growing);
    }
}
