//! The self-contained HTML report of a hunt: one page with inline CSS and an inline SVG
//! chart, no scripts and no external resources, readable offline and printable.
//!
//! Every piece of text taken from the report goes through [`escape`]; the memory chart is
//! drawn with `plotters`' SVG backend (text as `<text>` elements, no font files needed).

use std::fmt;
use std::io::{self, Write};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::format;
use crate::hunt::{FloorFitJson, HuntJson, MemoryPointJson};
use crate::leaks::{ClusterJson, TraceStepJson};

/// Escapes `s` for HTML text and for quoted attribute values: `&`, `<`, `>`, `"` and `'`
/// become character references; everything else is kept as is.
pub fn escape(s: &str) -> String {
    esc(s).to_string()
}

/// Text that escapes itself when displayed.
struct Esc<'a>(&'a str);

fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Writes the hunt report as one self-contained HTML page: verdict, memory chart,
/// floor statistics, calm-down and load figures, one card per leaking cluster with its
/// retainer trace, what did not grow, warnings and the snapshot files.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_html(report: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::new(w);
    let w: &mut dyn Write = &mut w;
    let verdict = Verdict::of(&report.verdict);
    let title_app = report.app.command.as_deref().unwrap_or("pid");
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>leakhound hunt — {} — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(verdict.word),
        esc(title_app)
    )?;
    write_header(report, &verdict, w)?;
    write_memory(report, w)?;
    write_floor(report, w)?;
    write_calm_down_and_load(report, w)?;
    write_clusters(report, w)?;
    write_rest(report, w)?;
    writeln!(
        w,
        "<footer>leakhound · hunt report · schema v{} · a self-contained page: no scripts, \
         nothing loaded from elsewhere</footer>\n</main>\n</body>\n</html>",
        report.schema_version
    )?;
    w.flush()
}

/// How the verdict looks.
struct Verdict {
    class: &'static str,
    word: &'static str,
    mark: &'static str,
}

impl Verdict {
    fn of(verdict: &str) -> Verdict {
        match verdict {
            "leak" => Verdict {
                class: "leak",
                word: "Leak",
                mark: "✗",
            },
            "no_leak" => Verdict {
                class: "ok",
                word: "No leak",
                mark: "✓",
            },
            _ => Verdict {
                class: "unknown",
                word: "Inconclusive",
                mark: "?",
            },
        }
    }
}

fn write_header(r: &HuntJson, v: &Verdict, w: &mut dyn Write) -> io::Result<()> {
    let end_ms = r
        .phases
        .iter()
        .map(|p| p.end_ms)
        .chain(r.memory.iter().map(|m| m.t_ms))
        .fold(0.0, f64::max);
    write!(
        w,
        "<header class=\"verdict {}\">\n<div class=\"badge\"><span aria-hidden=\"true\">{}</span> {}</div>\n\
         <div class=\"headline\">\n<p class=\"kicker\">leakhound hunt · verdict: <b>{}</b></p>\n\
         <p class=\"reason\">{}</p>\n<dl class=\"meta\">\n",
        v.class,
        v.mark,
        v.word,
        esc(&r.verdict),
        esc(&r.reason)
    )?;
    if let Some(cmd) = &r.app.command {
        write!(w, "<div><dt>App</dt><dd><code>{}</code></dd></div>", esc(cmd))?;
    }
    write!(w, "<div><dt>PID</dt><dd>{}</dd></div>", r.app.pid)?;
    if let Some(url) = &r.app.url {
        write!(w, "<div><dt>Load sent to</dt><dd><code>{}</code></dd></div>", esc(url))?;
    }
    write!(
        w,
        "<div><dt>Requests sent</dt><dd>{} <span class=\"muted\">({} per load phase)</span></dd></div>\
         <div><dt>Duration</dt><dd>{}</dd></div>\n</dl>\n</div>\n</header>\n",
        format::count(r.requests_sent),
        format::count(r.requests_per_phase),
        format::duration_ms(end_ms)
    )
}

// ---------------------------------------------------------------------------------------
// Memory chart
// ---------------------------------------------------------------------------------------

const CHART_W: u32 = 1120;
const HEAP_H: u32 = 390;
const RSS_H: u32 = 200;

const C_HEAP: RGBColor = RGBColor(120, 164, 222);
const C_FLOOR: RGBColor = RGBColor(23, 63, 138);
const C_EXTERNAL: RGBColor = RGBColor(224, 123, 0);
const C_RSS: RGBColor = RGBColor(123, 78, 163);
const C_SNAPSHOT: RGBColor = RGBColor(55, 60, 70);
const C_TEXT: RGBColor = RGBColor(70, 78, 90);

fn write_memory(r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "<section id=\"memory\">\n<h2>Memory over time</h2>")?;
    if r.memory.is_empty() {
        return writeln!(w, "<p class=\"empty\">No memory samples were recorded.</p>\n</section>");
    }
    writeln!(
        w,
        "<div class=\"legend\">\
         <span>{}heapUsed</span>\
         <span>{}heap floor (heapUsed right after a full GC)</span>\
         <span>{}external</span>\
         <span>{}rss (lower chart)</span>\
         <span><svg width=\"26\" height=\"12\" aria-hidden=\"true\"><line x1=\"13\" y1=\"0\" x2=\"13\" y2=\"12\" \
         stroke=\"#373c46\" stroke-dasharray=\"3 2\"/></svg>heap snapshot</span>\
         <span><i class=\"band\"></i>phase</span></div>",
        swatch(C_HEAP, 1.5, false),
        swatch(C_FLOOR, 2.5, true),
        swatch(C_EXTERNAL, 2.0, false),
        swatch(C_RSS, 2.0, false),
    )?;
    match memory_svg(r) {
        Ok(svg) => w.write_all(svg.as_bytes())?,
        Err(e) => writeln!(w, "<p class=\"empty\">The chart could not be drawn: {}</p>", esc(&e))?,
    }
    writeln!(
        w,
        "<p class=\"note\">Bands are the hunt's phases, dashed lines its heap snapshots. The floor is \
         what stays after a full GC: a floor that keeps rising under steady load is a leak. Hover the \
         chart for the numbers of a sample.</p>\n</section>"
    )
}

fn swatch(c: RGBColor, width: f64, marker: bool) -> String {
    let RGBColor(r, g, b) = c;
    format!(
        "<svg width=\"26\" height=\"12\" aria-hidden=\"true\"><line x1=\"1\" y1=\"6\" x2=\"25\" y2=\"6\" \
         stroke=\"#{r:02x}{g:02x}{b:02x}\" stroke-width=\"{width}\"/>{}</svg>",
        if marker {
            format!("<circle cx=\"13\" cy=\"6\" r=\"3.5\" fill=\"#{r:02x}{g:02x}{b:02x}\"/>")
        } else {
            String::new()
        }
    )
}

/// A native tooltip area added to the SVG after plotters is done.
struct Hover {
    shape: String,
    title: String,
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

/// The memory chart as an inline `<svg>` element.
fn memory_svg(r: &HuntJson) -> Result<String, String> {
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
/// tooltip areas on top.
fn finish_svg(svg: &str, hovers: &[Hover]) -> String {
    let body_start = svg.find('>').map_or(0, |i| i + 1);
    let body_end = svg.rfind("</svg>").unwrap_or(svg.len());
    let mut out = String::with_capacity(svg.len() + hovers.len() * 200);
    out.push_str(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {}\" role=\"img\" aria-label=\"Memory over time: \
         heapUsed, its post-GC floor, external and rss, with the hunt's phases and snapshots\">",
        HEAP_H + RSS_H
    ));
    out.push_str(&svg[body_start..body_end]);
    out.push_str("<g class=\"hover\">");
    for h in hovers {
        out.push_str(&format!(
            "<{}><title>{}</title></{}>",
            h.shape,
            esc(&h.title),
            shape_tag(&h.shape)
        ));
    }
    out.push_str("</g></svg>\n");
    out
}

fn shape_tag(shape: &str) -> &str {
    shape.split_whitespace().next().unwrap_or("g")
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

fn phase_color(name: &str, load_index: usize) -> RGBAColor {
    if name.starts_with("warm") {
        RGBColor(150, 150, 150).mix(0.16)
    } else if name.starts_with("calm") {
        RGBColor(67, 160, 71).mix(0.13)
    } else if load_index.is_multiple_of(2) {
        RGBColor(66, 133, 244).mix(0.10)
    } else {
        RGBColor(66, 133, 244).mix(0.18)
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
        let is_load = !ph.name.starts_with("warm") && !ph.name.starts_with("calm");
        bands.push(Rectangle::new(
            [(ph.start_ms / p.x_ms, y0), (ph.end_ms / p.x_ms, y1)],
            phase_color(&ph.name, load_index).filled(),
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
                shape: format!(
                    "rect x=\"{left}\" y=\"{px_top}\" width=\"{}\" height=\"{}\" fill=\"#000\" fill-opacity=\"0\"",
                    right - left,
                    px_bottom - px_top
                ),
                title: sample_title(m),
            });
        }
    }

    for line in p.lines {
        let pts = thin(&line.points, 2 * CHART_W as usize);
        chart
            .draw_series(LineSeries::new(pts, line.color.stroke_width(line.width)))
            .map_err(err)?;
    }
    if !p.floor.is_empty() {
        chart
            .draw_series(LineSeries::new(p.floor.iter().copied(), C_FLOOR.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(p.floor.iter().map(|&pt| Circle::new(pt, 3, C_FLOOR.filled())))
            .map_err(err)?;
    }

    // Snapshots: dashed vertical lines.
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
            shape: format!(
                "rect x=\"{}\" y=\"{px_top}\" width=\"8\" height=\"{}\" fill=\"#000\" fill-opacity=\"0\"",
                x - 4,
                px_bottom - px_top
            ),
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
            let (x, width) = (chart.backend_coord(&(t, y1)).0, label_width(&ph.name));
            if let Some(row) = place(&mut rows, x + dx(x, width), width) {
                texts.push((
                    t,
                    dx(x, width),
                    5 + 17 * row as i32,
                    ph.name.clone(),
                    phase_font.clone(),
                ));
            }
        }
        let mut rows = [i32::MIN; 3];
        for s in &r.snapshots {
            let t = s.t_ms / p.x_ms;
            let (x, width) = (chart.backend_coord(&(t, y1)).0, label_width(&s.label) + 8);
            if let Some(row) = place(&mut rows, x + dx(x, width), width) {
                texts.push((
                    t,
                    dx(x, width),
                    42 + 17 * row as i32,
                    s.label.clone(),
                    snap_font.clone(),
                ));
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
                shape: format!("circle cx=\"{cx}\" cy=\"{cy}\" r=\"7\" fill=\"#000\" fill-opacity=\"0\""),
                title: sample_title(m),
            });
        }
    }
    Ok(())
}

fn unit_div(unit: &str) -> f64 {
    match unit {
        "GB" => 1e9,
        "MB" => 1e6,
        _ => 1e3,
    }
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

fn write_floor(r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    write!(
        w,
        "<section id=\"floor\">\n<h2>Floor statistics</h2>\n<p class=\"note\">Least-squares slope of the \
         post-GC floor over the load phases (warm-up excluded), per request and per hour, with its 95 % \
         confidence interval.</p>\n<table>\n<thead><tr><th>Metric</th><th>Floor points</th><th>First → last \
         floor</th><th>Slope per request</th><th>95 % CI</th><th>Slope per hour</th><th>95 % CI</th>\
         <th>Growing</th></tr></thead>\n<tbody>\n"
    )?;
    for (name, fit) in [
        ("heapUsed (JS heap)", &r.floor.heap_used),
        ("external", &r.floor.external),
        ("rss", &r.floor.rss),
    ] {
        write_fit_row(name, fit, w)?;
    }
    writeln!(w, "</tbody>\n</table>")?;
    write!(
        w,
        "<p>Growing over all load phases: <b>{}</b>. Still growing in the last load phase: <b>{}</b>.</p>\n</section>\n",
        memory_kinds(&r.floor.growing),
        memory_kinds(&r.floor.growing_last_phase)
    )
}

fn write_fit_row(name: &str, f: &FloorFitJson, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        f.points,
        format::bytes(f.first_bytes),
        format::bytes(f.last_bytes),
        f.bytes_per_request
            .map_or_else(|| format::DASH.to_owned(), format::byte_rate),
        f.bytes_per_request_ci95.map_or_else(
            || format::DASH.to_owned(),
            |(a, b)| format!("{} … {}", format::byte_rate(a), format::byte_rate(b))
        ),
        f.bytes_per_hour
            .map_or_else(|| format::DASH.to_owned(), format::byte_rate),
        f.bytes_per_hour_ci95.map_or_else(
            || format::DASH.to_owned(),
            |(a, b)| format!("{} … {}", format::byte_rate(a), format::byte_rate(b))
        ),
        if f.growing {
            "<span class=\"yes\">▲ yes</span>"
        } else {
            "<span class=\"no\">no</span>"
        }
    )
}

fn memory_kinds(kinds: &[String]) -> String {
    if kinds.is_empty() {
        return "nothing".into();
    }
    kinds
        .iter()
        .map(|k| match k.as_str() {
            "js_heap" => "JS heap".to_owned(),
            "external" => "external (off-heap) memory".to_owned(),
            "native" => "native memory (rss)".to_owned(),
            other => escape(other),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_calm_down_and_load(r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    let c = &r.calm_down;
    write!(
        w,
        "<div class=\"two\">\n<section id=\"calm-down\">\n<h2>Calm-down</h2>\n<p>{} after waiting {} without load.</p>\n\
         <table>\n<thead><tr><th></th><th>Baseline</th><th>After calm-down</th><th>Change</th></tr></thead>\n<tbody>\n",
        if c.returned_to_baseline {
            "<span class=\"no\">✓ Memory returned to the baseline</span>"
        } else {
            "<span class=\"yes\">✗ Memory did not return to the baseline</span>"
        },
        format::duration_ms(c.waited_ms as f64)
    )?;
    for (name, before, after) in [
        ("heapUsed", c.baseline_heap_used_bytes, c.after_heap_used_bytes),
        ("external", c.baseline_external_bytes, c.after_external_bytes),
    ] {
        writeln!(
            w,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            format::bytes(before),
            format::bytes(after),
            format::signed_bytes(after as i64 - before as i64)
        )?;
    }
    writeln!(w, "</tbody>\n</table>\n</section>")?;

    writeln!(w, "<section id=\"phases\">\n<h2>Phases</h2>")?;
    if r.phases.is_empty() {
        writeln!(w, "<p class=\"empty\">No phases recorded.</p>")?;
    } else {
        writeln!(
            w,
            "<table>\n<thead><tr><th>Phase</th><th>Start</th><th>End</th><th>Duration</th><th>Requests</th></tr></thead>\n<tbody>"
        )?;
        for p in &r.phases {
            writeln!(
                w,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                format::duration_ms(p.start_ms),
                format::duration_ms(p.end_ms),
                format::duration_ms(p.end_ms - p.start_ms),
                format::count(p.requests)
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }
    writeln!(w, "</section>\n</div>")?;

    writeln!(w, "<section id=\"load\">\n<h2>Load</h2>")?;
    if r.load.is_empty() {
        return writeln!(w, "<p class=\"empty\">No load figures.</p>\n</section>");
    }
    writeln!(
        w,
        "<table>\n<thead><tr><th>Phase</th><th>Requests</th><th>Req/s</th><th>p50</th><th>p90</th><th>p99</th>\
         <th>Max</th><th>2xx/3xx</th><th>4xx</th><th>5xx</th><th>Errors</th><th>Wall time</th></tr></thead>\n<tbody>"
    )?;
    for l in &r.load {
        let bad = |n: u64| {
            if n > 0 {
                format!("<span class=\"yes\">{}</span>", format::count(n))
            } else {
                "0".to_owned()
            }
        };
        writeln!(
            w,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.phase),
            format::count(l.requests_sent),
            format::count(l.requests_per_s.round().max(0.0) as u64),
            format::latency_ms(l.latency_p50_ms),
            format::latency_ms(l.latency_p90_ms),
            format::latency_ms(l.latency_p99_ms),
            format::latency_ms(l.latency_max_ms),
            format::count(l.responses_2xx_3xx),
            bad(l.responses_4xx),
            bad(l.responses_5xx),
            bad(l.errors),
            format::duration_ms(l.elapsed_ms)
        )?;
    }
    writeln!(w, "</tbody>\n</table>\n</section>")
}

// ---------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------

fn write_clusters(r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "<section id=\"clusters\" class=\"plain\">\n<h2>Leaking clusters <span class=\"count{}\">{}</span></h2>",
        if r.clusters.is_empty() { " zero" } else { "" },
        r.clusters.len()
    )?;
    if r.clusters.is_empty() {
        writeln!(
            w,
            "<p class=\"empty card-none\">No cluster of objects kept growing across the snapshots.</p>"
        )?;
    }
    for (i, c) in r.clusters.iter().enumerate() {
        write_cluster(i, c, r, w)?;
    }
    writeln!(w, "</section>")
}

fn pattern_words(p: &str) -> String {
    p.replace('_', " ")
}

fn write_cluster(i: usize, c: &ClusterJson, r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    write!(
        w,
        "<article class=\"card\" id=\"cluster-{}\">\n<div class=\"card-head\"><span class=\"num\">#{}</span>\
         <h3><code>{}</code> <span class=\"muted\">{}{}</span></h3><span class=\"tag\">{}</span></div>\n\
         <p class=\"summary\">holds <b>{}</b> × <code>{}</code> ({} leaked objects in all), <b>{}</b> retained</p>\n\
         <div class=\"tiles\">",
        i + 1,
        i + 1,
        esc(&c.holder),
        esc(&c.holder_class),
        if c.holder_nodes > 1 {
            format!(" · {} holders", c.holder_nodes)
        } else {
            String::new()
        },
        esc(&pattern_words(&c.pattern)),
        format::count(c.count),
        esc(&c.root_class),
        format::count(c.object_count),
        format::bytes(c.retained_size_bytes)
    )?;
    if let Some(p) = &c.per_request {
        tile(w, &format!("{:.2}", p.count), &format!("{} per request", c.root_class))?;
        tile(
            w,
            &format::bytes(p.retained_size_bytes.max(0.0) as u64),
            "retained per request",
        )?;
    }
    tile(w, &format::count(c.count), &format!("{} accumulated", c.root_class))?;
    tile(w, &format::bytes(c.retained_size_bytes), "retained size")?;
    if c.external_share > 0.05 {
        tile(w, &format!("{:.0} %", c.external_share * 100.0), "held off the JS heap")?;
    }
    if let Some(n) = c.listener_count {
        tile(w, &format::count(n), "listeners on one event")?;
    }
    writeln!(w, "</div>\n<div class=\"card-body\">\n<div class=\"facts\">")?;

    // Source and hint first: what a person acts on.
    match &c.source {
        Some(s) => write!(
            w,
            "<p class=\"source\"><span class=\"lbl\">Source</span> <code>{}</code>",
            esc(s)
        )?,
        None => write!(
            w,
            "<p class=\"source\"><span class=\"lbl\">Source</span> <span class=\"muted\">unknown (no location in the snapshot)</span>"
        )?,
    }
    if let Some(best) = c.sources.iter().find(|s| Some(&s.location) == c.source.as_ref()) {
        write!(w, " <span class=\"muted\">{}</span>", esc(&best.what))?;
    }
    writeln!(w, "</p>")?;
    let others: Vec<_> = c
        .sources
        .iter()
        .filter(|s| Some(&s.location) != c.source.as_ref())
        .collect();
    if !others.is_empty() {
        writeln!(w, "<ul class=\"sources\">")?;
        for s in others {
            writeln!(
                w,
                "<li><code>{}</code> <span class=\"muted\">{}</span></li>",
                esc(&s.location),
                esc(&s.what)
            )?;
        }
        writeln!(w, "</ul>")?;
    }
    writeln!(
        w,
        "<p class=\"hint\"><span class=\"lbl\">Fix</span> {}</p>",
        esc(&c.fix_hint)
    )?;

    // Growth across the snapshots.
    if !c.counts_per_snapshot.is_empty() {
        let max = c.counts_per_snapshot.iter().copied().max().unwrap_or(0).max(1);
        writeln!(
            w,
            "<h4>Growth across the snapshots</h4>\n<table class=\"growth\">\n<thead><tr><th>Snapshot</th><th>{}</th>\
             <th></th><th>Holder retains</th></tr></thead>\n<tbody>",
            esc(&c.root_class)
        )?;
        for (k, n) in c.counts_per_snapshot.iter().enumerate() {
            let label = r
                .snapshots
                .get(k)
                .map_or_else(|| format!("#{}", k + 1), |s| s.label.clone());
            let held = c
                .holder_retained_per_snapshot_bytes
                .get(k)
                .copied()
                .flatten()
                .map_or_else(|| format::DASH.to_owned(), format::bytes);
            writeln!(
                w,
                "<tr><td>{}</td><td>{}</td><td class=\"barcell\"><span class=\"bar\" style=\"width:{:.1}%\"></span></td><td>{}</td></tr>",
                esc(&label),
                format::count(*n),
                *n as f64 * 100.0 / max as f64,
                held
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }

    if !c.objects.is_empty() {
        writeln!(
            w,
            "<h4>Leaked objects by class</h4>\n<table>\n<thead><tr><th>Class</th><th>Count</th><th>Self size</th>\
             <th>Per request</th></tr></thead>\n<tbody>"
        )?;
        for o in c.objects.iter().take(20) {
            let per = c
                .per_request
                .as_ref()
                .and_then(|p| p.objects.iter().find(|(k, _)| *k == o.class_name))
                .map_or_else(|| format::DASH.to_owned(), |(_, v)| format!("{v:.2}"));
            writeln!(
                w,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.class_name),
                format::count(o.count),
                format::bytes(o.self_size_bytes),
                per
            )?;
        }
        if c.objects.len() > 20 {
            writeln!(
                w,
                "<tr><td colspan=\"4\" class=\"muted\">and {} more classes</td></tr>",
                c.objects.len() - 20
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }
    writeln!(
        w,
        "</div>\n<div class=\"trace-col\">\n<h4>Retainer trace <span class=\"muted\">from the GC root to one leaked object</span></h4>"
    )?;
    write_trace(&c.trace, w)?;
    writeln!(w, "</div>\n</div>\n</article>")
}

fn tile(w: &mut dyn Write, value: &str, label: &str) -> io::Result<()> {
    write!(
        w,
        "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )
}

fn write_trace(trace: &[TraceStepJson], w: &mut dyn Write) -> io::Result<()> {
    if trace.is_empty() {
        return writeln!(w, "<p class=\"empty\">No trace.</p>");
    }
    writeln!(w, "<ol class=\"trace\">")?;
    for (k, t) in trace.iter().enumerate() {
        let class = if t.is_holder {
            " holder"
        } else if t.is_leaked {
            " leaked"
        } else {
            ""
        };
        write!(w, "<li class=\"step{class}\">")?;
        if k > 0 || !t.edge.is_empty() {
            write!(
                w,
                "<div class=\"edge\"><code>{}</code>{}</div>",
                esc(&format::truncate(&t.edge, 80)),
                if t.edge_type.is_empty() {
                    String::new()
                } else {
                    format!(" <span class=\"etype\">{}</span>", esc(&t.edge_type))
                }
            )?;
        }
        let name = if k == 0 && t.node_name.is_empty() {
            "(GC roots)".to_owned()
        } else if t.node_name.is_empty() {
            format!("({})", t.node_type)
        } else {
            t.node_name.clone()
        };
        let flag = if t.is_holder {
            "<span class=\"flag\">holder</span>"
        } else if t.is_leaked {
            "<span class=\"flag\">leaked</span>"
        } else {
            ""
        };
        writeln!(
            w,
            "<div class=\"node\" title=\"{} @{}\"><span class=\"name\">{}</span> <span class=\"cls\">{}</span>{flag}\
             <span class=\"size\">{}</span></div></li>",
            esc(&t.node_name),
            t.id,
            esc(&format::truncate(&name, 90)),
            esc(if t.class_name == name { "" } else { &t.class_name }),
            format::bytes(t.retained_size_bytes)
        )?;
    }
    writeln!(w, "</ol>")
}

// ---------------------------------------------------------------------------------------
// Not growing, warnings, snapshots
// ---------------------------------------------------------------------------------------

fn write_rest(r: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    if !r.warnings.is_empty() {
        writeln!(
            w,
            "<section id=\"warnings\" class=\"warnings\">\n<h2>Warnings</h2>\n<ul>"
        )?;
        for warning in &r.warnings {
            writeln!(w, "<li><span aria-hidden=\"true\">⚠</span> {}</li>", esc(warning))?;
        }
        writeln!(w, "</ul>\n</section>")?;
    }
    writeln!(
        w,
        "<div class=\"two\">\n<section id=\"not-growing\">\n<h2>Not growing</h2>"
    )?;
    if r.not_growing.is_empty() {
        writeln!(w, "<p class=\"empty\">Nothing new survived without growing.</p>")?;
    } else {
        writeln!(
            w,
            "<p class=\"note\">New objects that survived but stopped growing (bounded caches, warm-up): \
             not leaks.</p>\n<table>\n<thead><tr><th>Holder</th><th class=\"l\">Class</th><th>Per snapshot</th></tr></thead>\n<tbody>"
        )?;
        for n in &r.not_growing {
            writeln!(
                w,
                "<tr><td><code>{}</code></td><td class=\"l\"><code>{}</code></td><td>{}</td></tr>",
                esc(&n.holder),
                esc(&n.root_class),
                format::counts_across(&n.counts_per_snapshot)
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }
    writeln!(w, "</section>\n<section id=\"snapshots\">\n<h2>Snapshots</h2>")?;
    if r.snapshots.is_empty() {
        writeln!(w, "<p class=\"empty\">No snapshots were taken.</p>")?;
    } else {
        writeln!(
            w,
            "<table>\n<thead><tr><th>Label</th><th>At</th><th>After requests</th><th>Size</th><th>Took</th></tr></thead>\n<tbody>"
        )?;
        for s in &r.snapshots {
            writeln!(
                w,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n\
                 <tr class=\"path\"><td colspan=\"5\"><code>{}</code></td></tr>",
                esc(&s.label),
                format::duration_ms(s.t_ms),
                format::count(s.requests),
                format::bytes(s.bytes),
                format::duration_ms(s.duration_ms as f64),
                esc(&s.path)
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }
    writeln!(w, "</section>\n</div>")
}

const CSS: &str = r#"
:root{--fg:#1d2430;--muted:#5f6b7a;--line:#dfe3e9;--bg:#f3f5f8;--card:#fff;--red:#c62828;--red-bg:#fdecea;--green:#2e7d32;--green-bg:#e8f5e9;--amber:#a15c00;--amber-bg:#fff3dc;--blue:#173f8a}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1220px;margin:0 auto;padding:20px 24px 32px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;word-break:break-all}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:17px;margin:0}
h3 code{font-size:16px;font-weight:700}
h4{font-size:13px;margin:16px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
h4 .muted{text-transform:none;letter-spacing:0;font-weight:400}
.muted{color:var(--muted)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:14px 0}
section.plain{background:none;border:0;padding:0}
.two{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.two>section{margin:0}
.two{margin:14px 0}
header.verdict{display:flex;gap:22px;align-items:flex-start;background:var(--card);border:1px solid var(--line);border-left:8px solid #888;border-radius:8px;padding:18px 22px}
header.leak{border-left-color:var(--red)}
header.ok{border-left-color:var(--green)}
.badge{flex:none;font-size:30px;font-weight:800;line-height:1;padding:14px 20px;border-radius:8px;background:#eceff3;color:#333;white-space:nowrap}
.leak .badge{background:var(--red);color:#fff}
.ok .badge{background:var(--green);color:#fff}
.kicker{margin:0;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.kicker b{color:var(--fg)}
.reason{font-size:17px;font-weight:600;margin:4px 0 10px}
.meta{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0}
.meta div{min-width:0}
.meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.meta dd{margin:0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;vertical-align:top}
th:first-child,td:first-child{text-align:left;padding-left:0}
th.l,td.l{text-align:left}
th{font-size:12px;font-weight:600;color:var(--muted);border-bottom-color:#c9d0d9}
tbody tr:last-child td{border-bottom:0}
tr.path td{padding-top:0;color:var(--muted);white-space:normal}
tr.path code{font-size:11.5px}
.yes{color:var(--red);font-weight:700}
.no{color:var(--green);font-weight:600}
.note{color:var(--muted);margin:6px 0 10px;font-size:13px}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.legend{display:flex;flex-wrap:wrap;gap:4px 20px;font-size:13px;margin:0 0 6px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend .band{display:inline-block;width:22px;height:12px;background:rgba(66,133,244,.18);border:1px solid rgba(66,133,244,.3)}
svg.chart{display:block;width:100%;height:auto}
.count{display:inline-block;min-width:24px;padding:0 8px;border-radius:12px;background:var(--red);color:#fff;font-size:13px;text-align:center;vertical-align:2px}
.count.zero{background:var(--green)}
.card{background:var(--card);border:1px solid var(--line);border-top:5px solid var(--red);border-radius:8px;padding:16px 20px;margin:0 0 14px}
.card-none{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px}
.card-head{display:flex;align-items:center;gap:12px}
.num{font-size:20px;font-weight:800;color:var(--red)}
.tag{margin-left:auto;background:var(--red-bg);color:var(--red);border:1px solid #f3b8b3;border-radius:12px;padding:2px 10px;font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.03em}
.summary{margin:6px 0 12px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px;background:#fafbfc}
.tile b{display:block;font-size:20px}
.tile span{font-size:12px;color:var(--muted)}
.card-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:28px;margin-top:12px}
.lbl{display:inline-block;font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);min-width:52px}
.source{margin:4px 0}
.sources{margin:2px 0 6px 52px;padding:0;list-style:none;font-size:13px}
.hint{background:var(--amber-bg);border-left:4px solid #e0a030;padding:8px 12px;border-radius:4px;margin:10px 0}
.hint .lbl{color:var(--amber);min-width:0;margin-right:6px}
.growth .barcell{width:40%;text-align:left}
.bar{display:inline-block;height:10px;background:#e57373;border-radius:2px;vertical-align:middle}
.trace{list-style:none;margin:0;padding:0}
.trace li{position:relative}
.trace li::before{content:"";position:absolute;left:9px;top:0;bottom:0;border-left:2px solid #c3cbd6}
.trace li:first-child::before{top:50%}
.trace li:last-child::before{bottom:auto;height:calc(100% - 15px)}
.trace li:only-child::before{display:none}
.trace .edge{padding:3px 0 3px 28px;color:var(--muted);font-size:12px}
.trace .edge code{font-size:12px;color:#3d4654}
.etype{font-size:11px;color:#8a94a3}
.trace .node{position:relative;display:flex;align-items:baseline;gap:6px;padding:4px 10px 4px 28px;border-radius:6px;border:1px solid transparent}
.trace .node::before{content:"";position:absolute;left:3px;top:50%;margin-top:-7px;width:14px;height:14px;border-radius:50%;background:#fff;border:2px solid #8e99a8;box-sizing:border-box}
.trace .name{font-weight:600;overflow-wrap:anywhere}
.trace .cls{color:var(--muted);font-size:12px}
.trace .size{margin-left:auto;font-size:12px;color:var(--muted);white-space:nowrap;font-variant-numeric:tabular-nums}
.trace .flag{font-size:10.5px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;padding:1px 7px;border-radius:10px;white-space:nowrap}
.trace .holder .node{background:var(--amber-bg);border-color:#f0c987}
.trace .holder .node::before{background:#e0a030;border-color:#a15c00}
.trace .holder .flag{background:#e0a030;color:#fff}
.trace .leaked .node{background:var(--red-bg);border-color:#f3b8b3}
.trace .leaked .node::before{background:var(--red);border-color:#8e1c1c}
.trace .leaked .flag{background:var(--red);color:#fff}
.warnings{border-left:5px solid #e0a030}
.warnings ul{margin:0;padding-left:4px;list-style:none}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:18px}
@media (max-width:900px){.two,.card-body{grid-template-columns:1fr}header.verdict{flex-direction:column}}
@media print{html{background:#fff}section,.card,header.verdict{break-inside:avoid}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ünïcode → ok"), "plain ünïcode → ok");
        assert_eq!(escape(""), "");
    }

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
    fn labels_move_down_when_they_would_touch() {
        let mut rows = [i32::MIN; 2];
        assert_eq!(place(&mut rows, 0, 50), Some(0));
        assert_eq!(place(&mut rows, 30, 50), Some(1));
        assert_eq!(place(&mut rows, 40, 50), None);
        assert_eq!(place(&mut rows, 100, 50), Some(0));
    }
}
