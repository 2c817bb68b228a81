//! The memory chart of the HTML report: plotters draws the samples, phases and snapshots
//! as SVG (text as `<text>` elements, no font files needed); tooltips are added on top as
//! transparent shapes with a `<title>`.

use std::fmt;

use maud::{Markup, PreEscaped, html};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::format;
use leakhound_hunt::PhaseKind;

use crate::hunt::{HuntJson, MemoryPointJson};

const CHART_W: u32 = 1120;
const HEAP_H: u32 = 390;
const RSS_H: u32 = 200;

/// What the chart shows, for screen readers.
const CHART_LABEL: &str =
    "Memory over time: heapUsed, its post-GC floor, external and rss, with the hunt's phases and snapshots";

const C_HEAP: RGBColor = RGBColor(120, 164, 222);
const C_FLOOR: RGBColor = RGBColor(23, 63, 138);
const C_EXTERNAL: RGBColor = RGBColor(224, 123, 0);
const C_RSS: RGBColor = RGBColor(123, 78, 163);
const C_SNAPSHOT: RGBColor = RGBColor(55, 60, 70);
const C_TEXT: RGBColor = RGBColor(70, 78, 90);

/// The chart's key: one swatch per line, the snapshot marker and the phase band.
pub(super) fn legend() -> Markup {
    html! {
        div.legend {
            span { (swatch(C_HEAP, 1.5, false)) "heapUsed" }
            span { (swatch(C_FLOOR, 2.5, true)) "heap floor (heapUsed right after a full GC)" }
            span { (swatch(C_EXTERNAL, 2.0, false)) "external" }
            span { (swatch(C_RSS, 2.0, false)) "rss (lower chart)" }
            span {
                svg width="26" height="12" aria-hidden="true" {
                    line x1="13" y1="0" x2="13" y2="12" stroke=(hex(C_SNAPSHOT)) stroke-dasharray="3 2" {}
                }
                "heap snapshot"
            }
            span { i.band.snapshot-band {} "writing a snapshot (app paused, no samples)" }
            span { i.band {} "phase" }
        }
    }
}

/// The colour as a CSS hex string, `#rrggbb`.
fn hex(RGBColor(r, g, b): RGBColor) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A short line of colour `c` (a dot on it for a series drawn with markers). SVG
/// elements get a closing tag (`{}`): an HTML parser closes `<line …>` only at `</line>`
/// or `/>`, and maud writes void-style tags without the slash.
fn swatch(c: RGBColor, width: f64, marker: bool) -> Markup {
    html! {
        svg width="26" height="12" aria-hidden="true" {
            line x1="1" y1="6" x2="25" y2="6" stroke=(hex(c)) stroke-width=(width) {}
            @if marker {
                circle cx="13" cy="6" r="3.5" fill=(hex(c)) {}
            }
        }
    }
}

/// A native tooltip area added to the SVG after plotters is done: a transparent shape
/// with a `<title>`.
struct Hover {
    shape: Shape,
    title: String,
}

/// Where a tooltip answers, in the SVG's pixels.
enum Shape {
    /// A sample's strip or a snapshot's line.
    Rect { x: i32, y: i32, width: i32, height: i32 },
    /// A floor point.
    Circle { cx: i32, cy: i32, r: i32 },
}

/// The unit that makes the largest value read well.
fn unit_for(max_bytes: f64) -> (&'static str, f64) {
    if max_bytes >= 2e9 {
        ("GB", 1e9)
    } else if max_bytes >= 2e6 {
        ("MB", 1e6)
    } else {
        ("kB", 1e3)
    }
}

/// The smallest 1, 2 or 5 × 10^k at or above `x` (for axis ends).
fn nice_ceil(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= x * 0.999_999 {
            return m * p;
        }
    }
    10.0 * p
}

/// Keeps at most about `max` points: the first, lowest, highest and last of each bucket.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max / 4);
    let mut out = Vec::with_capacity(max + 4);
    for chunk in points.chunks(per) {
        let lo = chunk
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        let hi = chunk
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        let mut keep = vec![0, chunk.len() - 1];
        keep.extend(lo);
        keep.extend(hi);
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|i| chunk[i]));
    }
    out
}

/// Picks the first label row where a label from `x` to `x + width` does not touch the
/// previous one; `rows` holds each row's right end.
fn place(rows: &mut [i32], x: i32, width: i32) -> Option<usize> {
    let row = rows.iter().position(|end| x > *end + 6)?;
    rows[row] = x + width;
    Some(row)
}

/// Rough width of a label drawn at plotters size 15 (about 12 px) in pixels.
fn label_width(s: &str) -> i32 {
    (s.chars().count() as i32) * 7 + 4
}

fn series(r: &HuntJson, x_ms: f64, div: f64, f: impl Fn(&MemoryPointJson) -> u64) -> Vec<(f64, f64)> {
    r.memory.iter().map(|m| (m.t_ms / x_ms, f(m) as f64 / div)).collect()
}

fn sample_title(m: &MemoryPointJson) -> String {
    format!(
        "{} · {} requests{}\nheapUsed {} of heapTotal {}\nexternal {} (arrayBuffers {})\nrss {}",
        format::duration_ms(m.t_ms),
        format::count(m.requests),
        if m.after_full_gc {
            " · after a full GC (floor)"
        } else {
            ""
        },
        format::bytes(m.heap_used_bytes),
        format::bytes(m.heap_total_bytes),
        format::bytes(m.external_bytes),
        format::bytes(m.array_buffers_bytes),
        format::bytes(m.rss_bytes),
    )
}

fn axis_label(v: f64, unit: &str, span: f64) -> String {
    if span < 5.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

fn x_label(v: f64, unit: &str) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// The memory chart of the hunt's samples, phases and snapshots, as an inline `<svg>`
/// element that scales to its container. An error is plotters' message.
pub(super) fn memory_svg(r: &HuntJson) -> Result<Markup, String> {
    let mut svg = String::new();
    let mut hovers = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_W, HEAP_H + RSS_H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(HEAP_H);
        let x_min = r.memory.iter().map(|m| m.t_ms).fold(0.0, f64::min) / 1000.0;
        let x_end = r
            .memory
            .iter()
            .map(|m| m.t_ms)
            .chain(r.phases.iter().map(|p| p.end_ms))
            .chain(r.snapshots.iter().map(|s| s.t_ms))
            .fold(0.0, f64::max)
            / 1000.0;
        let x_max = if x_end > x_min { x_end } else { x_min + 1.0 };
        // Seconds on the x axis, minutes for hunts longer than a quarter of an hour.
        let (x_ms, x_unit, x_desc) = if x_max > 900.0 {
            (60_000.0, "min", "minutes since the hunt started")
        } else {
            (1000.0, "s", "seconds since the hunt started")
        };
        let x = x_min * 1000.0 / x_ms..x_max * 1000.0 / x_ms;

        // Upper panel: the JS heap and external memory, from zero.
        let heap_max = r
            .memory
            .iter()
            .map(|m| m.heap_used_bytes.max(m.external_bytes))
            .max()
            .unwrap_or(0) as f64;
        let (unit, div) = unit_for(heap_max);
        let y_hi = nice_ceil(heap_max * 1.25 / div);
        let lines = [
            Line {
                points: series(r, x_ms, div, |m| m.heap_used_bytes),
                color: C_HEAP,
                width: 1,
            },
            Line {
                points: series(r, x_ms, div, |m| m.external_bytes),
                color: C_EXTERNAL,
                width: 2,
            },
        ];
        let floor: Vec<(f64, f64)> = r
            .memory
            .iter()
            .filter(|m| m.after_full_gc)
            .map(|m| (m.t_ms / x_ms, m.heap_used_bytes as f64 / div))
            .collect();
        let panel = Panel {
            x: x.clone(),
            y: 0.0..y_hi,
            unit,
            y_desc: "JS heap",
            x_ms,
            x_unit,
            x_desc: None,
            labels: true,
            lines: &lines,
            floor: &floor,
        };
        draw_panel(&top, r, &panel, &mut hovers)?;

        // Lower panel: the process's resident set, zoomed on its range.
        let rss_min = r.memory.iter().map(|m| m.rss_bytes).min().unwrap_or(0) as f64;
        let rss_max = r.memory.iter().map(|m| m.rss_bytes).max().unwrap_or(0) as f64;
        let (unit, div) = unit_for(rss_max);
        let lo = (rss_min * 0.9 / div).floor().max(0.0);
        let hi = rss_max / div + ((rss_max / div - lo) * 0.15).max(1.0);
        let lines = [Line {
            points: series(r, x_ms, div, |m| m.rss_bytes),
            color: C_RSS,
            width: 2,
        }];
        let panel = Panel {
            x,
            y: lo..hi,
            unit,
            y_desc: "process RSS",
            x_ms,
            x_unit,
            x_desc: Some(x_desc),
            labels: false,
            lines: &lines,
            floor: &[],
        };
        draw_panel(&bottom, r, &panel, &mut hovers)?;
        root.present().map_err(err)?;
    }
    Ok(finish_svg(&svg, &hovers))
}

/// Replaces plotters' fixed-size `<svg>` opening tag with a scalable one and adds the
/// tooltip areas on top. Plotters escapes the text it draws (phase and snapshot labels).
fn finish_svg(svg: &str, hovers: &[Hover]) -> Markup {
    let body_start = svg.find('>').map_or(0, |i| i + 1);
    let body_end = svg.rfind("</svg>").unwrap_or(svg.len());
    html! {
        svg.chart viewBox=(format_args!("0 0 {CHART_W} {}", HEAP_H + RSS_H)) role="img" aria-label=(CHART_LABEL) {
            (PreEscaped(&svg[body_start..body_end]))
            g.hover {
                @for h in hovers {
                    @match h.shape {
                        Shape::Rect { x, y, width, height } => {
                            rect x=(x) y=(y) width=(width) height=(height) fill="#000" fill-opacity="0" {
                                title { (h.title) }
                            }
                        }
                        Shape::Circle { cx, cy, r } => {
                            circle cx=(cx) cy=(cy) r=(r) fill="#000" fill-opacity="0" {
                                title { (h.title) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn err(e: impl fmt::Display) -> String {
    e.to_string()
}

struct Line {
    points: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
}

struct Panel<'a> {
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    unit: &'static str,
    y_desc: &'static str,
    /// Milliseconds per unit of the x axis.
    x_ms: f64,
    x_unit: &'static str,
    x_desc: Option<&'static str>,
    labels: bool,
    lines: &'a [Line],
    floor: &'a [(f64, f64)],
}

fn phase_color(phase: PhaseKind, load_index: usize) -> RGBAColor {
    match phase {
        PhaseKind::Warmup => RGBColor(150, 150, 150).mix(0.16),
        PhaseKind::CalmDown => RGBColor(67, 160, 71).mix(0.13),
        PhaseKind::Load(_) if load_index.is_multiple_of(2) => RGBColor(66, 133, 244).mix(0.10),
        PhaseKind::Load(_) => RGBColor(66, 133, 244).mix(0.18),
    }
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    r: &HuntJson,
    p: &Panel<'_>,
    hovers: &mut Vec<Hover>,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(if p.labels { 8 } else { 4 })
        .margin_right(18)
        .margin_left(6)
        .x_label_area_size(if p.x_desc.is_some() { 44 } else { 24 })
        .y_label_area_size(84)
        .build_cartesian_2d(p.x.clone(), p.y.clone())
        .map_err(err)?;
    let (y0, y1) = (p.y.start, p.y.end);

    // Phase bands first, under everything.
    let mut load_index = 0;
    let mut bands = Vec::new();
    for ph in &r.phases {
        let is_load = ph.name.is_load();
        bands.push(Rectangle::new(
            [(ph.start_ms / p.x_ms, y0), (ph.end_ms / p.x_ms, y1)],
            phase_color(ph.name, load_index).filled(),
        ));
        if is_load {
            load_index += 1;
        }
    }
    chart.draw_series(bands).map_err(err)?;

    let span = y1 - y0;
    let unit = p.unit;
    let y_fmt = move |v: &f64| axis_label(*v, unit, span);
    let x_unit = p.x_unit;
    let x_fmt = move |v: &f64| x_label(*v, x_unit);
    let label_font = ("sans-serif", 15).into_font().color(&C_TEXT);
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.07))
        .axis_style(RGBColor(150, 156, 165))
        .label_style(label_font.clone())
        .axis_desc_style(("sans-serif", 15).into_font().color(&C_TEXT))
        .x_labels(12)
        .y_labels(if p.labels { 8 } else { 5 })
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&x_fmt)
        .y_desc(p.y_desc);
    if let Some(d) = p.x_desc {
        mesh.x_desc(d);
    }
    mesh.draw().map_err(err)?;

    // Hover strips, one per sample (thinned), under the floor markers.
    let (px_top, px_bottom) = (
        chart.backend_coord(&(p.x.start, y1)).1,
        chart.backend_coord(&(p.x.start, y0)).1,
    );
    if p.labels {
        let step = r.memory.len().div_ceil(400).max(1);
        let picked: Vec<&MemoryPointJson> = r.memory.iter().step_by(step).collect();
        for (i, m) in picked.iter().enumerate() {
            let x = chart.backend_coord(&(m.t_ms / p.x_ms, y0)).0;
            let left = i
                .checked_sub(1)
                .map_or(x, |j| (x + chart.backend_coord(&(picked[j].t_ms / p.x_ms, y0)).0) / 2);
            let right = picked
                .get(i + 1)
                .map_or(x, |n| (x + chart.backend_coord(&(n.t_ms / p.x_ms, y0)).0) / 2);
            let (left, right) = (left.min(x - 2), right.max(x + 2));
            hovers.push(Hover {
                shape: Shape::Rect {
                    x: left,
                    y: px_top,
                    width: right - left,
                    height: px_bottom - px_top,
                },
                title: sample_title(m),
            });
        }
    }

    // The lines break where a snapshot was written: the app was paused and no sample was
    // taken, so nothing is drawn there rather than a straight line of made-up values.
    let gaps: Vec<(f64, f64)> = snapshot_windows(r).map(|(a, b)| (a / p.x_ms, b / p.x_ms)).collect();
    for line in p.lines {
        for segment in split_at_gaps(&line.points, &gaps) {
            let pts = thin(segment, 2 * CHART_W as usize);
            chart
                .draw_series(LineSeries::new(pts, line.color.stroke_width(line.width)))
                .map_err(err)?;
        }
    }
    if !p.floor.is_empty() {
        chart
            .draw_series(LineSeries::new(p.floor.iter().copied(), C_FLOOR.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(p.floor.iter().map(|&pt| Circle::new(pt, 3, C_FLOOR.filled())))
            .map_err(err)?;
    }

    // Snapshots: a hatched band over the time the file was being written (no samples
    // then), and a dashed line where it started.
    let bands: Vec<_> = snapshot_windows(r)
        .map(|(a, b)| Rectangle::new([(a / p.x_ms, y0), (b / p.x_ms, y1)], C_SNAPSHOT.mix(0.14).filled()))
        .collect();
    chart.draw_series(bands).map_err(err)?;
    for s in &r.snapshots {
        let t = s.t_ms / p.x_ms;
        chart
            .draw_series(DashedLineSeries::new(
                [(t, y0), (t, y1)],
                5,
                4,
                C_SNAPSHOT.mix(0.8).stroke_width(1),
            ))
            .map_err(err)?;
        let x = chart.backend_coord(&(t, y0)).0;
        hovers.push(Hover {
            shape: Shape::Rect {
                x: x - 4,
                y: px_top,
                width: 8,
                height: px_bottom - px_top,
            },
            title: format!(
                "{} snapshot at {}, after {} requests\n{} file, took {}",
                s.label,
                format::duration_ms(s.t_ms),
                format::count(s.requests),
                format::bytes(s.bytes),
                format::duration_ms(s.duration_ms as f64)
            ),
        });
    }

    if p.labels {
        // Phase names on the top rows, snapshot labels below them; a label that would touch
        // its neighbour moves down a row.
        let phase_font = ("sans-serif", 15).into_font().color(&C_TEXT);
        let snap_font = ("sans-serif", 15).into_font().style(FontStyle::Bold).color(&C_SNAPSHOT);
        let right = chart.backend_coord(&(p.x.end, y1)).0;
        // Left of the point when the label would run past the plot's right edge.
        let dx = |x: i32, width: i32| 4.min(right - 2 - width - x);
        let mut texts = Vec::new();
        let mut rows = [i32::MIN; 2];
        for ph in &r.phases {
            let t = ph.start_ms / p.x_ms;
            let name = ph.name.to_string();
            let (x, width) = (chart.backend_coord(&(t, y1)).0, label_width(&name));
            if let Some(row) = place(&mut rows, x + dx(x, width), width) {
                texts.push((t, dx(x, width), 5 + 17 * row as i32, name, phase_font.clone()));
            }
        }
        let mut rows = [i32::MIN; 3];
        for s in &r.snapshots {
            let t = s.t_ms / p.x_ms;
            let label = s.label.to_string();
            let (x, width) = (chart.backend_coord(&(t, y1)).0, label_width(&label) + 8);
            if let Some(row) = place(&mut rows, x + dx(x, width), width) {
                texts.push((t, dx(x, width), 42 + 17 * row as i32, label, snap_font.clone()));
            }
        }
        chart
            .draw_series(
                texts
                    .into_iter()
                    .map(|(t, dx, dy, s, font)| EmptyElement::at((t, y1)) + Text::new(s, (dx, dy), font)),
            )
            .map_err(err)?;
        for m in r.memory.iter().filter(|m| m.after_full_gc) {
            let (cx, cy) = chart.backend_coord(&(m.t_ms / p.x_ms, m.heap_used_bytes as f64 / unit_div(unit)));
            hovers.push(Hover {
                shape: Shape::Circle { cx, cy, r: 7 },
                title: sample_title(m),
            });
        }
    }
    Ok(())
}

/// When each snapshot was being written: from its start to its end, ms since the hunt
/// started.
fn snapshot_windows(r: &HuntJson) -> impl Iterator<Item = (f64, f64)> + '_ {
    r.snapshots.iter().map(|s| (s.t_ms, s.t_ms + s.duration_ms as f64))
}

/// `points` (sorted by x) cut into runs that no gap interrupts: two neighbours fall in
/// different runs when a gap `(start, end)` overlaps the stretch between them.
fn split_at_gaps<'a>(points: &'a [(f64, f64)], gaps: &[(f64, f64)]) -> Vec<&'a [(f64, f64)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        let (a, b) = (points[i - 1].0, points[i].0);
        if gaps.iter().any(|&(s, e)| s < b && e > a) {
            runs.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        runs.push(&points[start..]);
    }
    runs
}

fn unit_div(unit: &str) -> f64 {
    match unit {
        "GB" => 1e9,
        "MB" => 1e6,
        _ => 1e3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceil_rounds_up_to_round_numbers() {
        assert_eq!(nice_ceil(12.4), 15.0);
        assert_eq!(nice_ceil(2.0), 2.0);
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(230.0), 250.0);
    }

    #[test]
    fn thin_keeps_extremes_and_ends() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 5_000 { 99.0 } else { 1.0 }))
            .collect();
        let out = thin(&pts, 400);
        assert!(out.len() <= 420, "{}", out.len());
        assert_eq!(out.first(), pts.first());
        assert_eq!(out.last(), pts.last());
        assert!(out.iter().any(|p| p.1 == 99.0));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn lines_break_where_a_snapshot_was_written() {
        let pts = [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (5.0, 2.0), (6.0, 2.0)];
        // A snapshot from 2.5 to 4.5: the stretch from 2 to 5 is not drawn.
        let runs = split_at_gaps(&pts, &[(2.5, 4.5)]);
        assert_eq!(runs, vec![&pts[..3], &pts[3..]]);
        // One that ended before the next sample still breaks that stretch only.
        assert_eq!(split_at_gaps(&pts, &[(0.2, 0.4)]).len(), 2);
        // No gaps, or gaps outside the samples: one run.
        assert_eq!(split_at_gaps(&pts, &[]), vec![&pts[..]]);
        assert_eq!(split_at_gaps(&pts, &[(7.0, 9.0)]), vec![&pts[..]]);
        assert!(split_at_gaps(&[], &[(0.0, 1.0)]).is_empty());
    }

    #[test]
    fn labels_move_down_when_they_would_touch() {
        let mut rows = [i32::MIN; 2];
        assert_eq!(place(&mut rows, 0, 50), Some(0));
        assert_eq!(place(&mut rows, 30, 50), Some(1));
        assert_eq!(place(&mut rows, 40, 50), None);
        assert_eq!(place(&mut rows, 100, 50), Some(0));
    }
}
