//! The self-contained HTML report of a hunt: one page with inline CSS and an inline SVG
//! chart, no scripts and no external resources, readable offline and printable.
//!
//! The page is a `maud` template over the wire type [`HuntJson`]: every value spliced
//! into it is escaped unless marked otherwise, and only two things are: the stylesheet
//! (`html/report.css`, compiled in) and the chart, whose SVG `plotters` writes with its
//! text escaped (the `chart` submodule).

mod chart;
mod flame;

use std::io::{self, Write};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::format;
use crate::hunt::{FloorFitJson, HuntJson, LoadJson, VerdictJson};
use crate::leaks::{ClusterJson, TraceStepJson};

/// The page's stylesheet, inlined into `<style>`.
pub(crate) const CSS: &str = include_str!("html/report.css");

/// Writes the hunt report as one self-contained HTML page: verdict, memory chart,
/// floor statistics, calm-down and load figures, one card per leaking cluster with its
/// retainer trace, what did not grow, warnings and the snapshot files.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_html(report: &HuntJson, w: &mut dyn Write) -> io::Result<()> {
    w.write_all(page(report).into_string().as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()
}

fn page(r: &HuntJson) -> Markup {
    let verdict = Verdict::of(r.verdict);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "leakhound hunt — " (verdict.word) " — " (r.app.command.as_deref().unwrap_or("pid")) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    (header(r, &verdict))
                    (memory(r))
                    @if r.processes.len() > 1 {
                        (isolates(r))
                    }
                    (floor(r))
                    (calm_down_and_phases(r))
                    @if let Some(settle) = &r.settle {
                        (settle_section(settle))
                    }
                    (load(r))
                    (clusters(r))
                    (allocations(r))
                    (warnings(r))
                    div.two {
                        (not_growing(r))
                        (snapshots(r))
                    }
                    footer {
                        "leakhound · hunt report · schema v" (r.schema_version)
                        " · a self-contained page: no scripts, nothing loaded from elsewhere"
                    }
                }
            }
        }
    }
}

/// How the verdict looks.
struct Verdict {
    class: &'static str,
    word: &'static str,
    mark: &'static str,
}

impl Verdict {
    fn of(verdict: VerdictJson) -> Verdict {
        match verdict {
            VerdictJson::Leak => Verdict {
                class: "leak",
                word: "Leak",
                mark: "✗",
            },
            VerdictJson::NoLeak => Verdict {
                class: "ok",
                word: "No leak",
                mark: "✓",
            },
            VerdictJson::Inconclusive => Verdict {
                class: "unknown",
                word: "Inconclusive",
                mark: "?",
            },
        }
    }
}

fn header(r: &HuntJson, v: &Verdict) -> Markup {
    let end_ms = r
        .phases
        .iter()
        .map(|p| p.end_ms)
        .chain(r.memory.iter().map(|m| m.t_ms))
        .fold(0.0, f64::max);
    html! {
        header.verdict.(v.class) {
            div.badge { span aria-hidden="true" { (v.mark) } " " (v.word) }
            div.headline {
                p.kicker { "leakhound hunt · verdict: " b { (r.verdict.as_str()) } }
                p.reason { (r.reason) }
                @if let Some(next) = &r.what_would_decide {
                    p.hint { b { "To decide: " } (next) }
                }
                @for nw in &r.node_warnings {
                    p.hint { b { "Node warned: " } (nw.text.strip_prefix("node warned: ").unwrap_or(&nw.text)) }
                }
                @if let Some(h) = r.active_resources.as_ref().filter(|h| h.growing) {
                    p.hint { b { "Handles grow: " } "active handles " (h.first) " → " (h.last) " (" (format!("{:+.2}", h.per_request)) " per request), still open after the load stopped" }
                }
                dl.meta {
                    @if let Some(cmd) = &r.app.command {
                        div { dt { "App" } dd { code { (cmd) } } }
                    }
                    div { dt { "PID" } dd { (r.app.pid) } }
                    @if let Some(url) = &r.app.url {
                        div { dt { "Load sent to" } dd { code { (url) } } }
                    }
                    div {
                        dt { "Requests sent" }
                        dd {
                            (format::count(r.requests_sent)) " "
                            span.muted { "(" (r.per_phase_text()) ")" }
                        }
                    }
                    div { dt { "Duration" } dd { (format::duration_ms(end_ms)) } }
                    @if let Some(c) = &r.connections {
                        div { dt { "Connections" } dd { (c.text()) } }
                    }
                }
            }
        }
    }
}

fn memory(r: &HuntJson) -> Markup {
    html! {
        section #memory {
            h2 { "Memory over time" }
            @if r.memory.is_empty() {
                p.empty { "No memory samples were recorded." }
            } @else {
                (chart::legend())
                @match chart::memory_svg(r) {
                    Ok(svg) => (svg),
                    Err(e) => p.empty { "The chart could not be drawn: " (e) },
                }
                p.note {
                    "Coloured bands are the hunt's phases. A dashed line starts each heap snapshot; the \
                     grey band after it is the time the file was written (the app is paused then, \
                     so no samples are drawn). The floor is what \
                     stays after a full GC: a floor that keeps rising under steady load is a leak. \
                     Hover the chart for the numbers of a sample."
                }
            }
        }
    }
}

/// One memory chart per isolate of the app (small multiples), the leaking ones first:
/// each isolate's own samples and snapshots over the hunt's phases.
fn isolates(r: &HuntJson) -> Markup {
    let mut order: Vec<&crate::hunt::ProcessJson> = r.processes.iter().collect();
    order.sort_by_key(|p| match p.verdict {
        VerdictJson::Leak => 0,
        VerdictJson::Inconclusive => 1,
        VerdictJson::NoLeak => 2,
    });
    html! {
        section #isolates {
            h2 { "Memory per isolate" }
            p.note {
                "Each process and worker thread of the app has a heap of its own: the main \
                 chart above is the main process's. Leaking isolates first."
            }
            @for p in order {
                @let v = Verdict::of(p.verdict);
                div.isolate {
                    h3 {
                        span.(v.class) { (v.mark) " " (v.word) } " — " (p.name)
                    }
                    p.reason {
                        (p.reason)
                        @if let Some(n) = p.requests_served {
                            " · " (format::count(n)) " requests served"
                        }
                        " · rates per " (if p.requests_method == "http_server_requests_counted" {
                            "request it served"
                        } else {
                            "request sent"
                        })
                        @if !p.floor.growing.is_empty() {
                            " · growing: " (p.floor.growing.join(", "))
                        }
                    }
                    @if let Some(note) = &p.note {
                        p.hint { (note) }
                    }
                    @if p.memory.is_empty() {
                        p.empty { "No memory samples were recorded." }
                    } @else {
                        @match chart::memory_svg(&of_isolate(r, p)) {
                            Ok(svg) => (svg),
                            Err(e) => p.empty { "The chart could not be drawn: " (e) },
                        }
                    }
                }
            }
        }
    }
}

/// The report as the chart of one isolate sees it: its samples and snapshots, the hunt's
/// phases.
fn of_isolate(r: &HuntJson, p: &crate::hunt::ProcessJson) -> HuntJson {
    HuntJson {
        memory: p.memory.clone(),
        snapshots: p.snapshots.clone(),
        clusters: Vec::new(),
        not_growing: Vec::new(),
        processes: Vec::new(),
        warnings: Vec::new(),
        ..r.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

fn floor(r: &HuntJson) -> Markup {
    let per_hour = r.shows_per_hour();
    html! {
        section #floor {
            h2 { "Floor statistics" }
            p.note {
                "Least-squares slope of the post-GC floor over the load phases (warm-up excluded), \
                 per request"
                @if per_hour { " and per hour" }
                ", with its 95 % confidence interval."
                @if !per_hour {
                    " Per-hour figures are shown when the load lasts "
                    (format::duration_ms(crate::hunt::PER_HOUR_MIN_LOAD_MS))
                    " or more; this hunt's lasted " (format::duration_ms(r.load_ms()))
                    ", too short to say what an hour would do (the JSON report has them)."
                }
            }
            table {
                thead {
                    tr {
                        th { "Metric" } th { "Floor points" } th { "First → last floor" }
                        th { "Slope per request" } th { "95 % CI" }
                        @if per_hour { th { "Slope per hour" } th { "95 % CI" } }
                        th { "Growing" }
                    }
                }
                tbody {
                    (fit_row("heapUsed (JS heap)", &r.floor.heap_used, per_hour))
                    (fit_row("external", &r.floor.external, per_hour))
                    (fit_row("rss", &r.floor.rss, per_hour))
                }
            }
            p {
                "Growing over all load phases: " b { (memory_kinds(&r.floor.growing)) }
                ". Still growing in the last load phase: " b { (memory_kinds(&r.floor.growing_last_phase)) } "."
            }
            @if r.verdict != VerdictJson::Leak {
                @if let Some(note) = r.floor_note() {
                    p.note { "What that means here: " (note) "." }
                }
            }
        }
    }
}

fn fit_row(name: &str, f: &FloorFitJson, per_hour: bool) -> Markup {
    let rate = |x: Option<f64>| x.map_or_else(|| format::DASH.to_owned(), format::byte_rate);
    let ci = |x: Option<(f64, f64)>| {
        x.map_or_else(
            || format::DASH.to_owned(),
            |(a, b)| format!("{} … {}", format::byte_rate(a), format::byte_rate(b)),
        )
    };
    html! {
        tr {
            td { (name) }
            td { (f.points) }
            td { (format::bytes(f.first_bytes)) " → " (format::bytes(f.last_bytes)) }
            td { (rate(f.bytes_per_request)) }
            td { (ci(f.bytes_per_request_ci95)) }
            @if per_hour {
                td { (rate(f.bytes_per_hour)) }
                td { (ci(f.bytes_per_hour_ci95)) }
            }
            td {
                @if f.growing { span.yes { "▲ yes" } } @else { span.no { "no" } }
            }
        }
    }
}

/// The floor's memory kinds in words.
fn memory_kinds(kinds: &[String]) -> String {
    if kinds.is_empty() {
        return "nothing".into();
    }
    kinds
        .iter()
        .map(|k| match k.as_str() {
            "js_heap" => "JS heap",
            "external" => "external (off-heap) memory",
            "native" => "native memory (rss)",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn calm_down_and_phases(r: &HuntJson) -> Markup {
    let c = &r.calm_down;
    html! {
        div.two {
            section #calm-down {
                h2 { "Calm-down" }
                p {
                    @if c.returned_to_baseline {
                        span.no { "✓ Memory returned to the baseline" }
                    } @else {
                        span.yes { "✗ Memory did not return to the baseline" }
                    }
                    " after waiting " (format::duration_ms(c.waited_ms as f64)) " without load."
                }
                table {
                    thead { tr { th {} th { "Baseline" } th { "After calm-down" } th { "Change" } } }
                    tbody {
                        @for (name, before, after) in [
                            ("heapUsed", c.baseline_heap_used_bytes, c.after_heap_used_bytes),
                            ("external", c.baseline_external_bytes, c.after_external_bytes),
                        ] {
                            tr {
                                td { (name) }
                                td { (format::bytes(before)) }
                                td { (format::bytes(after)) }
                                td { (format::signed_bytes(after as i64 - before as i64)) }
                            }
                        }
                    }
                }
            }
            section #phases {
                h2 { "Phases" }
                @if r.phases.is_empty() {
                    p.empty { "No phases recorded." }
                } @else {
                    table {
                        thead {
                            tr { th { "Phase" } th { "Start" } th { "End" } th { "Duration" } th { "Requests" } }
                        }
                        tbody {
                            @for p in &r.phases {
                                tr {
                                    td { (p.name.to_string()) }
                                    td { (format::duration_ms(p.start_ms)) }
                                    td { (format::duration_ms(p.end_ms)) }
                                    td { (format::duration_ms(p.end_ms - p.start_ms)) }
                                    td { (format::count(p.requests)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The settle step: the timer lists that called for it, the settled snapshot and the
/// clusters it dropped or kept (or why there was none, and what would decide it).
fn settle_section(s: &crate::hunt::SettleJson) -> Markup {
    html! {
        section #settle {
            h2 { "Pending timers: the settled snapshot" }
            p {
                @match s.status.as_str() {
                    "settled" => { span.no { "✓ Settled" } }
                    "repeating" => { span.yes { "↻ Repeating timers" } }
                    _ => { span.yes { "? Not settled" } }
                }
                " " (s.summary) "."
            }
            table {
                thead { tr { th { "Timer list" } th { "Duration" } th { "One-shot pending" } th { "Repeating pending" } } }
                tbody {
                    @for t in &s.timers {
                        tr {
                            td { code { (t.holder) } }
                            td { (format::duration_ms(t.duration_ms as f64)) }
                            td { (t.one_shot.map_or_else(|| "not counted".to_owned(), format::count)) }
                            td { (t.repeating.map_or_else(|| "not counted".to_owned(), format::count)) }
                        }
                    }
                }
            }
            @if !s.dropped_clusters.is_empty() {
                h3 { "Dropped: grew only until the final snapshot" }
                table {
                    thead { tr { th { "Holder" } th { "Pattern" } th { "Counts (baseline → final)" } th { "Settled" } th { "Why" } } }
                    tbody {
                        @for d in &s.dropped_clusters {
                            tr {
                                td { code { (d.holder) } " " span.muted { "(" (d.holder_class) ")" } }
                                td { (d.pattern) }
                                td { (format::counts_across(&d.counts_per_snapshot)) }
                                td { (d.settled_count.map_or_else(|| "gone".to_owned(), format::count)) }
                                td { (d.why) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &s.what_would_decide {
                p.hint { b { "To decide: " } (next) }
            }
            @if let Some(path) = &s.snapshot {
                p.note { "Settled snapshot: " code { (path) } }
            }
        }
    }
}

fn load(r: &HuntJson) -> Markup {
    html! {
        section #load {
            h2 { "Load" }
            @if r.load.is_empty() {
                p.empty { "No load figures." }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Phase" } th { "Requests" } th { "Req/s" } th { "p50" } th { "p90" }
                            th { "p99" } th { "Max" } th { "2xx/3xx" } th { "4xx" } th { "5xx" }
                            th { "Errors" } th { "Wall time" }
                        }
                    }
                    tbody {
                        @for l in &r.load { (load_row(l)) }
                    }
                }
            }
        }
    }
}

fn load_row(l: &LoadJson) -> Markup {
    // Failures stand out; zero reads plain.
    let bad = |n: u64| {
        html! {
            @if n > 0 { span.yes { (format::count(n)) } } @else { "0" }
        }
    };
    html! {
        tr {
            td { (l.phase.to_string()) }
            td { (format::count(l.requests_sent)) }
            td { (format::count(l.requests_per_s.round().max(0.0) as u64)) }
            td { (format::latency_ms(l.latency_p50_ms)) }
            td { (format::latency_ms(l.latency_p90_ms)) }
            td { (format::latency_ms(l.latency_p99_ms)) }
            td { (format::latency_ms(l.latency_max_ms)) }
            td { (format::count(l.responses_2xx_3xx)) }
            td { (bad(l.responses_4xx)) }
            td { (bad(l.responses_5xx)) }
            td { (bad(l.errors)) }
            td { (format::duration_ms(l.elapsed_ms)) }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------

fn clusters(r: &HuntJson) -> Markup {
    html! {
        section id="clusters" class="plain" {
            h2 { "Leaking clusters " span.count.zero[r.clusters.is_empty() && r.verdict == VerdictJson::NoLeak] { (r.clusters.len()) } }
            @if let Some(note) = crate::no_cluster::no_cluster_note(r) {
                div.card-none.floor-only {
                    p { b { (note.headline) } }
                    h4 { "What was measured" }
                    ul { @for m in &note.measured { li { (m) } } }
                    h4 { "What to try next" }
                    ul { @for n in &note.next { li { (n) } } }
                }
            } @else if r.clusters.is_empty() {
                p.empty.card-none { "No cluster of objects kept growing across the snapshots." }
            }
            @for (i, c) in r.clusters.iter().enumerate() {
                (cluster(i, c, &snapshot_labels(r)))
            }
        }
    }
}

/// The snapshots' labels, oldest first, for the growth tables.
fn snapshot_labels(r: &HuntJson) -> Vec<String> {
    r.snapshots.iter().map(|s| s.label.to_string()).collect()
}

/// One leaking cluster's card; `labels` name the snapshots its counts were taken in.
pub(crate) fn cluster(i: usize, c: &ClusterJson, labels: &[String]) -> Markup {
    let best = c.sources.iter().find(|s| Some(&s.location) == c.source.as_ref());
    let others: Vec<_> = c
        .sources
        .iter()
        .filter(|s| Some(&s.location) != c.source.as_ref())
        .collect();
    html! {
        article.card id=(format_args!("cluster-{}", i + 1)) {
            div.card-head {
                span.num { "#" (i + 1) }
                h3 {
                    code { (c.holder) } " "
                    span.muted {
                        (c.holder_class)
                        @if c.holder_nodes > 1 { " · " (c.holder_nodes) " holders" }
                    }
                }
                span.tag { (c.pattern.replace('_', " ")) }
            }
            p.summary {
                "holds " b { (format::count(c.count)) }
                @if c.unit == "byte" {
                    // A growing Buffer's bytes: no objects to count.
                    " " (c.unit_text(c.count as f64)) ", "
                } @else {
                    @if c.unit.is_empty() || c.unit == c.root_class {
                        " × " code { (c.root_class) }
                    } @else {
                        " " (c.unit_text(c.count as f64)) " " code { (c.root_class) }
                    }
                    " (" (format::count(c.object_count)) " leaked objects in all"
                    @if c.other_objects_per_root > 0.0 {
                        ", " (format!("{:.1}", c.other_objects_per_root)) " brought along by each"
                    }
                    "), "
                }
                b { (format::bytes(c.retained_size_bytes)) } " retained"
            }
            div.tiles {
                @if let Some(p) = &c.per_request {
                    (tile(&format!("{:.2}", p.count), &format!("{} per request", c.unit_text((p.count * 100.0).round() / 100.0))))
                    (tile(&format::bytes(p.retained_size_bytes.max(0.0) as u64), "retained per request"))
                }
                (tile(&format::count(c.count), &format!("{} accumulated", c.unit_text(c.count as f64))))
                (tile(&format::bytes(c.retained_size_bytes), "retained size"))
                @if c.external_share > 0.05 {
                    (tile(&format!("{:.0} %", c.external_share * 100.0), "held off the JS heap"))
                }
                @if let Some(n) = c.listener_count {
                    (tile(&format::count(n), "listeners on one event"))
                }
            }
            div.card-body {
                div.facts {
                    // Source and hint first: what a person acts on.
                    p.source {
                        span.lbl { "Source" } " "
                        @match &c.source {
                            Some(s) => code { (s) },
                            None => span.muted { "unknown (no location in the snapshot)" },
                        }
                        @if let Some(best) = best {
                            " " span.muted { (best.what) (c.source_note()) }
                        }
                        @if c.source.is_some() && !matches!(c.source_confidence.as_str(), "allocation_stack" | "lint_rule") {
                            " " span.muted { "(guessed from the snapshot)" }
                        }
                        @if c.source_confidence == "allocation_stack" {
                            " " span.muted { "(from the allocation stacks)" }
                        }
                        @if c.source_confidence == "lint_rule" {
                            " " span.muted { "(found in the app's code by leakhound lint)" }
                        }
                    }
                    @if let Some(why) = &c.source_unknown_why {
                        p.source-why { span.lbl { "Not in the heap" } " " span.muted { (why) } }
                    }
                    @if let Some(text) = crate::leaks::string_growth_text(
                        &c.string_bytes_per_snapshot,
                        c.per_request.as_ref().and_then(|p| p.string_bytes),
                    ) {
                        p.string-size { span.lbl { "String" } " " (text) }
                    }
                    @if !others.is_empty() {
                        ul.sources {
                            @for s in others {
                                li {
                                    code { (s.location) } " "
                                    span.muted {
                                        (s.what)
                                        @if let Some(d) = &s.dependency { (crate::leaks::dependency_note(d)) }
                                    }
                                }
                            }
                        }
                    }
                    @if !c.allocation_stacks.is_empty() { (allocation_stacks(c)) }
                    p.hint { span.lbl { "Fix" } " " (c.fix_hint) }
                    @if !c.lint_findings.is_empty() {
                        div.lint {
                            span.lbl { "Lint" } " " span.muted { "confirmed at runtime: the pattern in the function this cluster grows from" }
                            @for f in &c.lint_findings {
                                p.lint-finding {
                                    code { (f.path) ":" (f.line) ":" (f.column) } " "
                                    span.rule { (f.rule) } " " (f.message)
                                }
                                pre.lint-line { (format!("{:>5} | {}", f.line, f.source_line.trim_end())) }
                            }
                        }
                    }
                    @if !c.counts_per_snapshot.is_empty() { (growth(c, labels)) }
                    @if !c.objects.is_empty() { (objects(c)) }
                }
                div.trace-col {
                    h4 { "Retainer trace " span.muted { "from the GC root to one leaked object" } }
                    (trace(&c.trace))
                }
            }
        }
    }
}

/// The sampling heap profile (`--sample-allocations`): its top surviving sites and its
/// flame graph, the frames of the clusters' stacks and sources in red. Nothing without it.
fn allocations(r: &HuntJson) -> Markup {
    let Some(sites) = &r.surviving_allocations else {
        return html! {};
    };
    let flame = flame::flame_svg(&r.allocation_flame, &r.clusters);
    html! {
        section id="allocations" {
            h2 { "Surviving allocations " span.muted { "sampling heap profile over the load phases" } }
            @if let Some(p) = &r.heap_profile {
                p.muted { "Profile: " code { (p) } " (open it in DevTools: Memory → Load profile)." }
            }
            @if sites.is_empty() {
                p.empty { "No sampled allocation survived." }
            } @else {
                table.sites {
                    thead { tr { th.right { "share" } th.right { "bytes" } th { "function" } th { "where it starts" } } }
                    tbody {
                        @for s in sites.iter().take(10) {
                            tr {
                                td.right { (format!("{:.1} %", s.share * 100.0)) }
                                td.right { (format::bytes(s.bytes)) }
                                td { code { (s.function) } }
                                td { code { (s.url.strip_prefix("file://").unwrap_or(&s.url)) ":" (s.line) } }
                            }
                        }
                    }
                }
            }
            @if let Some((svg, highlighted)) = flame {
                p.muted {
                    "Flame graph: each box is a function, as wide as the surviving bytes allocated under it. "
                    @if highlighted > 0 {
                        (highlighted) " frame" @if highlighted != 1 { "s" } " in red also appear in a leak cluster's allocation stacks or source."
                    } @else {
                        "No frame matches a leak cluster's stacks or source."
                    }
                }
                div.flame { (PreEscaped(svg)) }
            }
        }
    }
}

/// The cluster's allocation stacks: each with its count, the app's frames first, a
/// dependency's or Node's frames marked and dimmed.
fn allocation_stacks(c: &ClusterJson) -> Markup {
    html! {
        div.stacks {
            h4 { "Allocated by " span.muted { "V8 records where each function starts, not the line inside it" } }
            @for st in &c.allocation_stacks {
                p.stack-count { b { (format::count(st.count)) } " object" @if st.count != 1 { "s" } }
                ol.stack {
                    @for f in &st.frames {
                        li class=(format_args!("frame {}", f.origin)) {
                            code { (f.function) } " "
                            span.muted {
                                (f.url)
                                @if f.line > 0 { ":" (f.line) ":" (f.column) }
                                @match (f.origin.as_str(), &f.dependency) {
                                    ("dependency", Some(d)) => (crate::leaks::dependency_note(d)),
                                    ("node_internal", _) => " (node internals)",
                                    _ => "",
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn tile(value: &str, label: &str) -> Markup {
    html! { div.tile { b { (value) } span { (label) } } }
}

/// The root class's count under the holder in each snapshot, with a bar.
fn growth(c: &ClusterJson, labels: &[String]) -> Markup {
    let max = c.counts_per_snapshot.iter().copied().max().unwrap_or(0).max(1);
    html! {
        h4 { "Growth across the snapshots" }
        table.growth {
            thead { tr { th { "Snapshot" } th { (c.root_class) } th {} th { "Holder retains" } } }
            tbody {
                @for (k, n) in c.counts_per_snapshot.iter().enumerate() {
                    tr {
                        td {
                            @match labels.get(k) {
                                Some(label) => (label),
                                None => { "#" (k + 1) }
                            }
                        }
                        td { (format::count(*n)) }
                        td.barcell {
                            span.bar style=(format_args!("width:{:.1}%", *n as f64 * 100.0 / max as f64)) {}
                        }
                        td {
                            @match c.holder_retained_per_snapshot_bytes.get(k).copied().flatten() {
                                Some(b) => (format::bytes(b)),
                                None => (format::DASH),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The leaked objects by class, the first 20.
fn objects(c: &ClusterJson) -> Markup {
    let per_request = |class: &str| {
        c.per_request
            .as_ref()
            .and_then(|p| p.objects.iter().find(|(k, _)| k == class))
            .map_or_else(|| format::DASH.to_owned(), |(_, v)| format!("{v:.2}"))
    };
    html! {
        h4 { "Leaked objects by class" }
        table {
            thead { tr { th { "Class" } th { "Count" } th { "Self size" } th { "Per request" } } }
            tbody {
                @for o in c.objects.iter().take(20) {
                    tr {
                        td { code { (o.class_name) } }
                        td { (format::count(o.count)) }
                        td { (format::bytes(o.self_size_bytes)) }
                        td { (per_request(&o.class_name)) }
                    }
                }
                @if c.objects.len() > 20 {
                    tr { td colspan="4" class="muted" { "and " (c.objects.len() - 20) " more classes" } }
                }
            }
        }
    }
}

fn trace(trace: &[TraceStepJson]) -> Markup {
    if trace.is_empty() {
        return html! { p.empty { "No trace." } };
    }
    html! {
        ol.trace {
            @for (k, t) in trace.iter().enumerate() {
                @let name = if k == 0 && t.node_name.is_empty() {
                    "(GC roots)".to_owned()
                } else if t.node_name.is_empty() {
                    format!("({})", t.node_type)
                } else {
                    t.node_name.clone()
                };
                li.step.holder[t.is_holder].leaked[!t.is_holder && t.is_leaked] {
                    @if k > 0 || !t.edge.is_empty() {
                        div.edge {
                            code { (format::truncate(&t.edge, 80)) }
                            @if !t.edge_type.is_empty() { " " span.etype { (t.edge_type) } }
                        }
                    }
                    div.node title={ (t.node_name) " @" (t.id) } {
                        span.name { (format::truncate(&name, 90)) } " "
                        span.cls { @if t.class_name != name { (t.class_name) } }
                        @if t.is_holder {
                            span.flag { "holder" }
                        } @else if t.is_leaked {
                            span.flag { "leaked" }
                        }
                        span.size { (format::bytes(t.retained_size_bytes)) }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Warnings, not growing, snapshots
// ---------------------------------------------------------------------------------------

fn warnings(r: &HuntJson) -> Markup {
    html! {
        @if !r.warnings.is_empty() {
            section id="warnings" class="warnings" {
                h2 { "Warnings" }
                ul {
                    @for warning in &r.warnings {
                        li { span aria-hidden="true" { "⚠" } " " (warning) }
                    }
                }
            }
        }
    }
}

fn not_growing(r: &HuntJson) -> Markup {
    html! {
        section #not-growing {
            h2 { "Not growing" }
            @if r.not_growing.is_empty() {
                p.empty { "Nothing new survived without growing." }
            } @else {
                p.note {
                    "New objects that survived but stopped growing (bounded caches, warm-up): not leaks."
                }
                table {
                    thead { tr { th { "Holder" } th.l { "Class" } th { "Per snapshot" } } }
                    tbody {
                        @for n in &r.not_growing {
                            tr {
                                td { code { (n.holder) } }
                                td.l { code { (n.root_class) } }
                                td { (format::counts_across(&n.counts_per_snapshot)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn snapshots(r: &HuntJson) -> Markup {
    html! {
        section #snapshots {
            h2 { "Snapshots" }
            @if r.snapshots.is_empty() {
                p.empty { "No snapshots were taken." }
            } @else {
                table {
                    thead {
                        tr { th { "Label" } th { "At" } th { "After requests" } th { "Size" } th { "Took" } }
                    }
                    tbody {
                        @for s in &r.snapshots {
                            tr {
                                td { (s.label.to_string()) }
                                td { (format::duration_ms(s.t_ms)) }
                                td { (format::count(s.requests)) }
                                td { (format::bytes(s.bytes)) }
                                td { (format::duration_ms(s.duration_ms as f64)) }
                            }
                            tr.path { td colspan="5" { code { (s.path) } } }
                        }
                    }
                }
            }
        }
    }
}
