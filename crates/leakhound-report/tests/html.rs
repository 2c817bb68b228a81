//! The HTML hunt report: renders the sample, stays self-contained, escapes hostile text,
//! and copes with reports that have no clusters or no memory samples.

use leakhound_report::html::write_html;
use leakhound_report::hunt::{HuntJson, MemoryPointJson};

fn sample() -> HuntJson {
    serde_json::from_str(include_str!("data/hunt-sample.json")).expect("the sample parses")
}

fn render(r: &HuntJson) -> String {
    let mut out = Vec::new();
    write_html(r, &mut out).expect("renders");
    String::from_utf8(out).expect("UTF-8")
}

/// `s` as the page shows it: escaped the way the page's template escapes text.
fn escaped(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

/// Every opening tag of these kinds has its closing tag.
fn assert_balanced(html: &str) {
    for tag in [
        "section", "div", "table", "tr", "ol", "ul", "li", "svg", "article", "header", "code", "p",
    ] {
        let open = html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close} times");
    }
}

/// No script, stylesheet, font, image or frame comes from anywhere: once the escaped
/// texts taken from the report are removed, no URL is left.
fn assert_self_contained(html: &str, texts: &[&str]) {
    let mut rest = html.to_owned();
    for t in texts {
        rest = rest.replace(&escaped(t), "");
    }
    for bad in [
        "http://", "https://", "//cdn", "<script", "<link", "<img", "<iframe", "@import", "url(", "src=",
    ] {
        assert!(!rest.contains(bad), "found {bad:?} in the page");
    }
}

#[test]
fn the_sample_renders_with_every_part() {
    let r = sample();
    let html = render(&r);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // The verdict reads without colour.
    assert!(html.contains("</span> Leak</div>"), "verdict word");
    assert!(html.contains(&escaped(&r.reason)));
    assert!(html.contains("node server.js"));
    assert!(html.contains("12345"));
    // The chart: inline SVG with the phases, the snapshots and tooltips.
    assert!(html.contains("<svg class=\"chart\""));
    for name in ["warmup", "load-1", "load-2", "calm-down", "baseline", "target", "final"] {
        assert!(
            html.contains(&format!("{name}\n</text>")),
            "{name} labelled on the chart"
        );
    }
    assert!(html.contains("<title>"));
    // Tables and the cluster card.
    assert!(html.contains("Floor statistics"));
    assert!(html.contains("+400 B"));
    assert!(html.contains("Memory did not return to the baseline"));
    assert!(html.contains("5\u{202f}400"), "requests per second");
    assert!(html.contains("id=\"cluster-1\""));
    assert!(html.contains("quoteCache"));
    assert!(html.contains("/tmp/leakhound-scenarios/map-cache/server.js:8:14"));
    assert!(html.contains("class=\"step holder\""));
    assert!(html.contains("class=\"step leaked\""));
    assert!(html.contains("timerListMap"));
    assert!(html.contains("/tmp/x/03-final.heapsnapshot"));
    assert_balanced(&html);
    assert_self_contained(&html, &[r.app.url.as_deref().unwrap()]);
    assert!(html.len() < 300_000, "{} bytes", html.len());
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let mut r = sample();
    let evil = r#"<script>alert("x&y")</script>'"#;
    let evil2 = r#"</li><img src=x onerror=alert(1)>"#;
    r.reason = evil.into();
    r.app.command = Some(format!("node -e '{evil}'"));
    r.app.url = Some(format!("https://evil.invalid/?q={evil2}"));
    // Phase names and snapshot labels are typed (`load-1`, `final`): nothing hostile fits.
    r.snapshots[0].path = format!("/tmp/a&b/{evil}.heapsnapshot");
    r.warnings = vec![evil.into(), evil2.into()];
    r.not_growing[0].holder = evil2.into();
    r.floor.growing.push(evil.into());
    let c = &mut r.clusters[0];
    c.holder = evil.into();
    c.holder_class = evil2.into();
    c.root_class = evil.into();
    c.pattern = evil2.into();
    c.fix_hint = evil.into();
    c.source = Some(format!("{evil2}:1:2"));
    c.sources[0].what = evil.into();
    c.objects[0].class_name = evil2.into();
    for t in &mut c.trace {
        t.edge = evil.into();
        t.node_name = evil2.into();
        t.class_name = evil.into();
        t.edge_type = evil2.into();
    }
    let html = render(&r);
    assert!(!html.contains("<script"), "a script tag got through");
    assert!(!html.contains("<img"), "an img tag got through");
    assert!(!html.contains("alert(\"x"), "a raw quote got through");
    // `'` needs no escaping: every attribute value on the page is double-quoted.
    assert!(html.contains("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;'"));
    assert!(html.contains("/tmp/a&amp;b/"));
    assert_balanced(&html);
    assert_self_contained(&html, &[r.app.url.as_deref().unwrap(), evil, evil2]);
}

#[test]
fn a_no_leak_report_renders() {
    let mut r = sample();
    r.verdict = leakhound_report::hunt::VerdictJson::NoLeak;
    r.reason = "the heap floor is flat and no cluster grows".into();
    r.clusters.clear();
    r.not_growing.clear();
    r.floor.growing.clear();
    r.floor.growing_last_phase.clear();
    r.floor.heap_used.growing = false;
    r.floor.heap_used.bytes_per_request = None;
    r.floor.heap_used.bytes_per_request_ci95 = None;
    r.calm_down.returned_to_baseline = true;
    let html = render(&r);
    assert!(html.contains("</span> No leak</div>"));
    assert!(html.contains("class=\"verdict ok\""));
    assert!(html.contains("No cluster of objects kept growing"));
    assert!(!html.contains("id=\"cluster-1\""));
    assert!(html.contains("Growing over all load phases: <b>nothing</b>"));
    assert_balanced(&html);
}

#[test]
fn an_empty_report_renders() {
    let mut r = sample();
    r.memory.clear();
    r.phases.clear();
    r.snapshots.clear();
    r.load.clear();
    r.clusters.clear();
    r.not_growing.clear();
    r.app.command = None;
    r.app.url = None;
    let html = render(&r);
    assert!(html.contains("No memory samples were recorded."));
    assert!(!html.contains("<svg class=\"chart\""));
    assert_balanced(&html);
    assert_self_contained(&html, &[]);
}

/// A memory sample built from the sample's first one, so fields added to the type later
/// need no change here.
fn point(r: &HuntJson, t_ms: f64, heap: u64, gc: bool) -> MemoryPointJson {
    let mut p = r.memory[0].clone();
    p.t_ms = t_ms;
    p.requests = (t_ms / 10.0) as u64;
    p.rss_bytes = 50_000_000 + heap;
    p.heap_total_bytes = heap * 2;
    p.heap_used_bytes = heap;
    p.external_bytes = 1_000_000;
    p.array_buffers_bytes = 0;
    p.after_full_gc = gc;
    p
}

#[test]
fn odd_memory_series_render() {
    // One sample, all zeros, a cluster trace of one step, snapshots but no phases.
    let mut r = sample();
    let mut zero = point(&r, 0.0, 0, true);
    zero.rss_bytes = 0;
    zero.external_bytes = 0;
    r.memory = vec![zero];
    r.phases.clear();
    r.clusters[0].trace.truncate(1);
    r.clusters[0].counts_per_snapshot = vec![0, 0, 0];
    let html = render(&r);
    assert!(html.contains("<svg class=\"chart\""));
    assert_balanced(&html);

    // Samples at a single instant.
    r.memory = vec![point(&r, 500.0, 1_000, false), point(&r, 500.0, 2_000, true)];
    r.snapshots.clear();
    assert_balanced(&render(&r));
}

#[test]
fn a_long_hunt_stays_small() {
    let mut r = sample();
    r.memory = (0..30_000)
        .map(|i| {
            point(
                &r,
                i as f64 * 100.0,
                5_000_000 + (i * 37 % 1000) * 1000 + i * 10,
                i % 50 == 0,
            )
        })
        .collect();
    let html = render(&r);
    assert!(html.len() < 1_000_000, "{} bytes", html.len());
    assert_balanced(&html);
}

// ---------------------------------------------------------------------------------------
// The recorded demo hunt: same sections, same content
// ---------------------------------------------------------------------------------------

/// `tests/golden/hunt-demo.json` (repository root): a real `hunt --json` of the demo server.
fn demo() -> HuntJson {
    serde_json::from_str(include_str!("../../../tests/golden/hunt-demo.json")).expect("the demo hunt parses")
}

/// The text a fragment of markup reads as: each tag made a space, the character references
/// the page uses decoded, runs of ASCII whitespace made one space (the narrow spaces in numbers stay).
fn text_of(markup: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// The texts of every element that `open` starts (e.g. `<h2` or `<span class="name"`),
/// up to its closing tag `close`, in page order.
fn texts(html: &str, open: &str, close: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(open) {
        let after = &rest[at + open.len()..];
        // `open` must end the tag's name: `<h2` is not `<header`.
        if !after.starts_with([' ', '>']) {
            rest = after;
            continue;
        }
        let body = &after[after.find('>').expect("tag ends") + 1..];
        let end = body.find(close).expect("element closes");
        out.push(text_of(&body[..end]));
        rest = &body[end..];
    }
    out
}

/// Every heading of the page (h1 to h4), in order, as text.
fn headings(html: &str) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for level in 1..=4 {
        let (open, close) = (format!("<h{level}"), format!("</h{level}>"));
        let mut from = 0;
        for text in texts(html, &open, &close) {
            // Page order: find each one's position again.
            let at = html[from..]
                .match_indices(&open)
                .map(|(i, _)| from + i)
                .find(|&i| html[i + open.len()..].starts_with([' ', '>']))
                .expect("heading found twice");
            found.push((at, text));
            from = at + open.len();
        }
    }
    found.sort();
    found.into_iter().map(|(_, t)| t).collect()
}

/// Recorded from the renderer before it moved to templates (issue 9): the new one must
/// show the same sections with the same content.
#[test]
fn the_demo_hunt_shows_the_same_sections_and_content() {
    let r = demo();
    let html = render(&r);
    assert_eq!(
        headings(&html),
        [
            "Memory over time",
            "Floor statistics",
            "Calm-down",
            "Phases",
            "Load",
            "Leaking clusters 1",
            "sessions Map",
            "Growth across the snapshots",
            "Leaked objects by class",
            "Retainer trace from the GC root to one leaked object",
            "Not growing",
            "Snapshots",
        ]
    );
    assert_eq!(
        texts(&html, "<title", "</title>")[0],
        "leakhound hunt — Leak — node ./demo-server.js"
    );
    // The verdict banner.
    assert_eq!(texts(&html, "<div class=\"badge\"", "</div>"), ["✗ Leak"]);
    assert_eq!(
        texts(&html, "<p class=\"kicker\"", "</p>"),
        ["leakhound hunt · verdict: leak"]
    );
    assert_eq!(texts(&html, "<p class=\"reason\"", "</p>"), [r.reason.as_str()]);
    assert_eq!(
        texts(&html, "<dl class=\"meta\"", "</dl>"),
        [
            "App node ./demo-server.js PID 13022 Load sent to http://127.0.0.1:45163/ \
          Requests sent 650 (300 per phase) Duration 2.7 s Connections 10 connections kept \
          open from before the baseline to the calm-down (0 closed by the app; 10 keep-warm \
          requests between phases)"
        ]
    );
    // Tables: floor, calm-down, phases, load, snapshots (first data row of each).
    let cells = texts(&html, "<tr", "</tr>");
    for row in [
        "heapUsed (JS heap) 6 4.6 MB → 4.5 MB −357 B −497 B … −216 B no",
        "rss 6 92.7 MB → 96.5 MB +6.6 kB −1.1 kB … +14.3 kB no",
        "heapUsed 4.0 MB 4.5 MB +438.6 kB",
        "load-2 794 ms 858 ms 64 ms 300",
        "load-1 300 6\u{202f}676 0.96 ms 3.12 ms 8.00 ms 8.16 ms 300 0 0 0 45 ms",
        "final 651 256.2 kB",
        "Date 300 28.8 kB 1.00",
        "baseline 253 ms 50 5.4 MB 239 ms",
        "leakhound-demo-snaps/03-final.heapsnapshot",
    ] {
        assert!(cells.iter().any(|c| c == row), "no table row {row:?} in {cells:#?}");
    }
    assert!(html.contains(
        "<p>Growing over all load phases: <b>nothing</b>. Still growing in the last load phase: <b>nothing</b>.</p>"
    ));
    assert_eq!(
        texts(&html, "<section id=\"calm-down\"", "</table>"),
        [
            "Calm-down ✓ Memory returned to the baseline after waiting 1.6 s without load. \
          Baseline After calm-down Change heapUsed 4.0 MB 4.5 MB +438.6 kB external 1.9 MB 1.9 MB +19.1 kB"
        ]
    );
    // The cluster: holder, pattern, per-request figures, source, fix, trace.
    assert_eq!(texts(&html, "<span class=\"tag\"", "</span>"), ["unbounded collection"]);
    assert_eq!(
        texts(&html, "<p class=\"summary\"", "</p>"),
        ["holds 300 × Session (1\u{202f}500 leaked objects in all), 86.4 kB retained"]
    );
    assert_eq!(
        texts(&html, "<div class=\"tile\"", "</div>"),
        [
            "1.00 Session per request",
            "288 B retained per request",
            "300 Session accumulated",
            "86.4 kB retained size"
        ]
    );
    assert_eq!(
        texts(&html, "<p class=\"source\"", "</p>"),
        ["Source ./demo-server.js:9:14 constructor of Session (guessed from the snapshot)"]
    );
    assert_eq!(
        texts(&html, "<ul class=\"sources\"", "</ul>"),
        ["./demo-server.js:19:17 function handler (holds `sessions`)"]
    );
    assert_eq!(
        texts(&html, "<p class=\"hint\"", "</p>"),
        [format!("Fix {}", r.clusters[0].fix_hint)]
    );
    let steps = texts(&html, "<span class=\"name\"", "</span>");
    assert_eq!(
        steps,
        [
            "(GC roots)",
            "Node / TCPServerWrap",
            "TCP",
            "Server",
            "{listening, request, connection}",
            "handler",
            "system / Context",
            "Map",
            "(array)",
            "Session"
        ]
    );
    assert_eq!(
        texts(&html, "<div class=\"edge\"", "</div>"),
        [
            "[8] element",
            "{native_to_javascript} internal",
            "[\"<symbol owner_symbol>\"] property",
            "._events property",
            ".request property",
            "{context} internal",
            "->sessions context",
            "{table} internal",
            "{708} internal"
        ]
    );
    assert_eq!(texts(&html, "<span class=\"flag\"", "</span>"), ["holder", "leaked"]);
    assert!(html.contains("<li class=\"step holder\">") && html.contains("<li class=\"step leaked\">"));
    assert_eq!(
        texts(&html, "<p class=\"empty\"", "</p>"),
        ["Nothing new survived without growing."]
    );
    assert!(html.contains("<svg class=\"chart\""));
    // The page's title and the chart's tooltips: 27 samples, 12 floor points, 3 snapshots
    // on each of the two panels.
    assert_eq!(html.matches("<title>").count(), 1 + 27 + 12 + 2 * 3);
    assert_balanced(&html);
    assert_self_contained(&html, &[r.app.url.as_deref().unwrap()]);
}

/// Text taken from a snapshot (a class name can be anything a program names a class) is
/// shown as text, never as markup.
#[test]
fn a_hostile_class_name_in_the_demo_is_escaped() {
    let mut r = demo();
    let evil = "<script>alert(1)</script>";
    let c = &mut r.clusters[0];
    c.root_class = evil.into();
    c.objects[0].class_name = evil.into();
    c.trace[9].class_name = evil.into();
    c.trace[9].node_name = evil.into();
    let html = render(&r);
    assert!(!html.contains("<script"), "a script tag got through");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(texts(&html, "<span class=\"name\"", "</span>")[9], evil);
    assert_eq!(
        texts(&html, "<div class=\"tile\"", "</div>")[0],
        format!("1.00 {evil} per request")
    );
    assert_balanced(&html);
}

/// An app of several isolates gets one memory chart per isolate, the leaking one first,
/// each under its name; a single process gets none (its chart is the main one).
#[test]
fn each_isolate_has_its_own_chart_leaking_first() {
    let single = demo();
    assert_eq!(single.processes.len(), 1);
    // (The legend draws small svgs too: count the difference.)
    assert!(!headings(&render(&single)).iter().any(|h| h == "Memory per isolate"));
    let mut r = demo();
    let mut worker = r.processes[0].clone();
    worker.kind = "cluster_worker".into();
    worker.pid += 1;
    worker.worker_id = Some(2);
    worker.name = format!("cluster worker 2, pid {}", worker.pid);
    r.processes[0].verdict = leakhound_report::hunt::VerdictJson::NoLeak;
    r.processes.push(worker);
    let html = render(&r);
    let h = headings(&html);
    let at = |want: &str| {
        h.iter()
            .position(|x| x.contains(want))
            .unwrap_or_else(|| panic!("{want} in {h:?}"))
    };
    assert!(at("Memory per isolate") < at("cluster worker 2"));
    assert!(at("cluster worker 2") < at("main process"), "{h:?}");
    let one = render(&single).matches("<svg").count();
    assert_eq!(html.matches("<svg").count(), one + 2, "one more chart per isolate");
    assert_balanced(&html);
}

// ---------------------------------------------------------------------------------------
// Issue 10's report points: floor-only leaks, per-hour slopes, phases, snapshot gaps
// ---------------------------------------------------------------------------------------

/// The sample with its clusters removed: the floor rose but nothing grew under a holder.
fn floor_only(r: &mut HuntJson) {
    r.clusters.clear();
    r.floor.growing = vec!["js_heap".into()];
    r.floor.heap_used.growing = true;
}

#[test]
fn a_floor_only_leak_explains_what_was_measured() {
    let mut r = sample();
    assert_eq!(r.verdict, leakhound_report::hunt::VerdictJson::Leak);
    floor_only(&mut r);
    let html = render(&r);
    // Not the green "nothing grew" of a healthy app.
    assert!(
        !html.contains("No cluster of objects kept growing"),
        "a green all-clear"
    );
    assert!(!html.contains("count zero"), "a green zero");
    assert!(html.contains("card-none floor-only"));
    assert!(html.contains("What was measured") && html.contains("What to try next"));
    assert!(html.contains("JS heap (heapUsed): floor"), "the heap floor's figures");
    assert!(html.contains("--requests"), "a next step");
    assert_balanced(&html);

    // Only the RSS grew: the advice is about native memory, not collections.
    r.floor.growing = vec!["native".into()];
    let html = render(&r);
    assert!(html.contains("process RSS: floor"));
    assert!(html.contains("heap snapshots cannot show it"));
    assert!(!html.contains("--phases"), "snapshot advice for a native leak");

    // A no-leak report keeps the short all-clear.
    r.verdict = leakhound_report::hunt::VerdictJson::NoLeak;
    let html = render(&r);
    assert!(html.contains("No cluster of objects kept growing"));
    assert!(!html.contains("card-none floor-only"));
}

#[test]
fn a_floor_only_leak_explains_itself_in_text_too() {
    let mut r = sample();
    floor_only(&mut r);
    let mut out = Vec::new();
    leakhound_report::hunt::write_hunt_text(&r, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\nno cluster: The memory floor rose"), "{text}");
    assert!(text.contains("   measured: JS heap (heapUsed): floor"), "{text}");
    assert!(text.contains("   try: "), "{text}");
}

#[test]
fn per_hour_slopes_only_for_long_runs() {
    let mut r = sample();
    assert!(r.load_ms() < leakhound_report::hunt::PER_HOUR_MIN_LOAD_MS);
    let html = render(&r);
    assert!(!html.contains("Slope per hour"), "a short hunt extrapolated to an hour");
    assert!(html.contains("Per-hour figures are shown when the load lasts 10 min 00 s or more"));
    // Stretch the load phases to 20 minutes each: now an hour is worth stating.
    let mut t = 0.0;
    for p in &mut r.phases {
        let len = if p.name.is_load() {
            1_200_000.0
        } else {
            p.end_ms - p.start_ms
        };
        p.start_ms = t;
        p.end_ms = t + len;
        t += len;
    }
    assert!(r.shows_per_hour());
    let html = render(&r);
    assert!(html.contains("Slope per hour"));
    assert!(!html.contains("Per-hour figures are shown"));
}

#[test]
fn phases_that_completed_different_counts_are_shown_as_such() {
    let mut r = sample();
    let mut n = 835;
    for p in r.phases.iter_mut().filter(|p| p.name.is_load()) {
        p.requests = n;
        n += 45;
    }
    assert_eq!(r.per_phase_text(), "835, 880 per phase");
    assert!(render(&r).contains("(835, 880 per phase)"));
    for p in r.phases.iter_mut().filter(|p| p.name.is_load()) {
        p.requests = 1_000;
    }
    assert_eq!(r.per_phase_text(), "1\u{202f}000 per phase");
    r.phases.clear();
    r.requests_per_phase = 300;
    assert_eq!(r.per_phase_text(), "300 per phase");
}

#[test]
fn the_time_spent_writing_snapshots_is_a_band_not_a_line() {
    let mut r = sample();
    // Samples every 100 ms for 10 s; one snapshot from 4 s to 6 s with no samples in it.
    r.memory = (0..100)
        .map(|i| i as f64 * 100.0)
        .filter(|t| !(4_000.0..6_000.0).contains(t))
        .map(|t| point(&r, t, 5_000_000 + t as u64 * 100, false))
        .collect();
    r.snapshots.truncate(1);
    r.snapshots[0].t_ms = 4_000.0;
    r.snapshots[0].duration_ms = 2_000;
    let html = render(&r);
    assert!(
        html.contains("writing a snapshot (app paused, no samples)"),
        "the legend"
    );
    // Each line (heapUsed, external, rss) is drawn in two pieces, before and after.
    let heap = "stroke=\"#78A4DE\"";
    let polylines = html.matches("<polyline").count();
    assert!(html.contains(heap), "the heap line's colour");
    let heap_lines = html.split("<polyline").filter(|p| p.contains(heap)).count();
    assert_eq!(
        heap_lines, 2,
        "the heap line is cut at the snapshot ({polylines} polylines)"
    );
}

#[test]
fn a_rise_below_the_margin_reads_as_such_in_a_no_leak_report() {
    let mut r = sample();
    r.clusters.clear();
    r.verdict = leakhound_report::hunt::VerdictJson::NoLeak;
    r.floor.growing = vec!["js_heap".into()];
    r.floor.growing_last_phase = vec!["js_heap".into()];
    r.floor.heap_used.bytes_per_request_ci95 = Some((12.0, 124.0));
    let note = r.floor_note().unwrap();
    assert!(
        note.starts_with(
            "the floor of js_heap rose slightly (heapUsed +12…+124 B/request at 95 %), less than the 256 B/request"
        ),
        "{note}"
    );
    let mut out = Vec::new();
    leakhound_report::hunt::write_hunt_text(&r, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("growing memory"), "one message per result: {text}");
    assert!(text.contains("rose slightly"), "{text}");
    assert!(render(&r).contains("What that means here: the floor of js_heap rose slightly"));
    // Not in the last phase: settling.
    r.floor.growing_last_phase.clear();
    assert!(r.floor_note().unwrap().starts_with("settling after the warm-up"));
    // A leak says it grows.
    r.verdict = leakhound_report::hunt::VerdictJson::Leak;
    assert_eq!(r.floor_note().as_deref(), Some("growing memory: js_heap"));
}

/// A cluster's confirmed lint findings show with their source line, escaped.
#[test]
fn lint_findings_show_with_their_source_line() {
    let mut r = demo();
    let finding: leakhound_report::lint::LintFindingJson = serde_json::from_value(serde_json::json!({
        "rule": "unbounded-collection", "severity": "warning", "path": "./demo-server.js",
        "line": 25, "column": 3, "end_line": 25, "end_column": 30,
        "message": "`sessions` gains an entry on every call", "fix_hint": "bound it", "subject": "sessions",
        "function": { "name": "handler", "line": 19, "column": 1 },
        "source_line": "  sessions.set(id, '<b>' + x);", "confirmed_at_runtime": true
    }))
    .unwrap();
    r.clusters[0].lint_findings.push(finding);
    let html = render(&r);
    assert_balanced(&html);
    assert!(html.contains("confirmed at runtime"));
    assert!(html.contains("unbounded-collection"));
    assert!(
        html.contains(&escaped("   25 |   sessions.set(id, '<b>' + x);")),
        "the line, escaped"
    );
    assert!(!html.contains("'<b>'"));
    assert!(
        !render(&demo()).contains("confirmed at runtime"),
        "nothing without findings"
    );
}

#[test]
fn handles_that_grow_are_explained_even_when_the_heap_is_flat() {
    let mut r = sample();
    r.clusters.clear();
    r.verdict = leakhound_report::hunt::VerdictJson::NoLeak;
    r.floor.growing.clear();
    r.active_resources = Some(leakhound_report::hunt::ActiveResourcesJson {
        first: 12,
        last: 612,
        max: 612,
        per_request: 1.0,
        growing: true,
    });
    let note = leakhound_report::no_cluster::no_cluster_note(&r).expect("a note");
    assert!(note.headline.contains("active handles grew"), "{note:?}");
    assert!(note.measured[0].contains("12 → 612 (+1.00 per request)"), "{note:?}");
    assert!(note.next[0].contains("getActiveResourcesInfo"), "{note:?}");
    let paragraph = note.paragraph();
    assert!(
        paragraph.contains("Measured: active handles") && paragraph.contains("To try: "),
        "{paragraph}"
    );
    let html = render(&r);
    assert!(html.contains("card-none floor-only") && html.contains("Handles grow: "));
    // Without growing handles, a no-leak report has nothing to explain.
    r.active_resources.as_mut().unwrap().growing = false;
    assert!(leakhound_report::no_cluster::no_cluster_note(&r).is_none());
    // A floor-only leak of external memory points at Buffers.
    r.verdict = leakhound_report::hunt::VerdictJson::Leak;
    r.floor.growing = vec!["external".into()];
    let note = leakhound_report::no_cluster::no_cluster_note(&r).unwrap();
    assert!(
        note.next
            .iter()
            .any(|n| n.contains("Buffers, ArrayBuffers or a WebAssembly.Memory")),
        "{note:?}"
    );
}

/// A cluster whose source the heap cannot know says why on the page; a growing string's
/// size shows in bytes.
#[test]
fn an_unknown_source_says_why_and_a_string_shows_its_bytes() {
    let mut r = demo();
    r.clusters[0].source_unknown_why = Some("each native handle keeps only Node's own objects <x>".into());
    r.clusters[0].string_bytes_per_snapshot = vec![Some(12_000), None, Some(50_000)];
    if let Some(p) = r.clusters[0].per_request.as_mut() {
        p.string_bytes = Some(64.0);
    }
    let html = render(&r);
    assert_balanced(&html);
    assert!(html.contains("Not in the heap"), "the why is shown");
    assert!(html.contains(&escaped("only Node's own objects <x>")), "escaped");
    assert!(
        html.contains("12.0 kB → – → 50.0 kB across the snapshots"),
        "{}",
        text_of(&html)
    );
    let plain = render(&demo());
    assert!(!plain.contains("Not in the heap") && !plain.contains("across the snapshots, "));
}
