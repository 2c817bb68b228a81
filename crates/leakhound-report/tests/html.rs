//! The HTML hunt report: renders the sample, stays self-contained, escapes hostile text,
//! and copes with reports that have no clusters or no memory samples.

use leakhound_report::html::{escape, write_html};
use leakhound_report::hunt::{HuntJson, MemoryPointJson};

fn sample() -> HuntJson {
    serde_json::from_str(include_str!("data/hunt-sample.json")).expect("the sample parses")
}

fn render(r: &HuntJson) -> String {
    let mut out = Vec::new();
    write_html(r, &mut out).expect("renders");
    String::from_utf8(out).expect("UTF-8")
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
        rest = rest.replace(&escape(t), "");
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
    assert!(html.contains(&escape(&r.reason)));
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
    assert!(html.contains("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"));
    assert!(html.contains("/tmp/a&amp;b/"));
    assert_balanced(&html);
    assert_self_contained(&html, &[r.app.url.as_deref().unwrap(), evil, evil2]);
}

#[test]
fn escape_handles_hostile_input() {
    assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
    assert_eq!(escape(r#""quoted" 'single'"#), "&quot;quoted&quot; &#39;single&#39;");
    assert_eq!(escape("&lt;"), "&amp;lt;", "already escaped text is escaped again");
    assert_eq!(escape("日本語 ✓ <"), "日本語 ✓ &lt;");
    assert_eq!(escape("\u{0}\n\t"), "\u{0}\n\t");
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
