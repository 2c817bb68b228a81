//! The flame graph of a hunt's sampling heap profile (`--sample-allocations`), drawn by
//! `inferno` as an SVG without scripts: one box per frame, as wide as the surviving bytes
//! allocated under it. Frames that also appear in a cluster's allocation stacks or sources
//! are drawn red (the rest in the memory palette's greens), so the code that allocated
//! what leaks stands out.

use std::collections::HashSet;

use inferno::flamegraph::color::{BasicPalette, Color, PaletteMap};
use inferno::flamegraph::{self, Options, Palette};

use crate::leaks::ClusterJson;

/// The colour of a highlighted frame.
const HIGHLIGHT: Color = Color { r: 214, g: 40, b: 40 };

/// `url:line` of every frame of the clusters' stacks outside Node's internals, and of
/// their sources (`path:line` without the column).
fn cluster_places(clusters: &[ClusterJson]) -> HashSet<String> {
    let mut places = HashSet::new();
    for c in clusters {
        for st in &c.allocation_stacks {
            for f in st.frames.iter().filter(|f| f.origin != "node_internal") {
                places.insert(format!(
                    "{}:{}",
                    f.url.strip_prefix("file://").unwrap_or(&f.url),
                    f.line
                ));
            }
        }
        for s in &c.sources {
            if let Some((place, _column)) = s.location.rsplit_once(':') {
                places.insert(place.to_owned());
            }
        }
    }
    places
}

/// The `url:line` inside a frame label `function (url:line)`.
fn place_of(label: &str) -> Option<&str> {
    let open = label.rfind(" (")?;
    label[open + 2..].strip_suffix(')')
}

/// The flame graph of `folded` (`frame;frame bytes` stacks), its frames found in
/// `clusters` highlighted, as an SVG document; `None` when there is nothing to draw or
/// inferno fails.
pub(crate) fn flame_svg(folded: &[(String, u64)], clusters: &[ClusterJson]) -> Option<(String, usize)> {
    if folded.is_empty() {
        return None;
    }
    let places = cluster_places(clusters);
    let mut palette = PaletteMap::default();
    let mut highlighted = HashSet::new();
    for (stack, _) in folded {
        for frame in stack.split(';') {
            if place_of(frame).is_some_and(|p| places.contains(p)) && highlighted.insert(frame.to_owned()) {
                palette.insert(frame, HIGHLIGHT);
            }
        }
    }
    let lines: Vec<String> = folded.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let mut options = Options::default();
    options.colors = Palette::Basic(BasicPalette::Mem);
    options.palette_map = Some(&mut palette);
    options.title = "Surviving allocations (sampling heap profile)".to_owned();
    options.count_name = "bytes".to_owned();
    options.name_type = "Function:".to_owned();
    options.no_javascript = true;
    options.deterministic = true;
    options.image_width = Some(1160);
    options.min_width = 0.5;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg).ok()?;
    // The XML prologue and doctype do not belong inside an HTML page, nor inferno's
    // script (its variables and `onload` remain with `no_javascript`) and its global
    // stylesheet (the page styles `.flame` itself).
    let text = String::from_utf8(svg).ok()?;
    let start = text.find("<svg")?;
    let mut svg = text[start..].replace(" onload=\"init(evt)\"", "");
    for tag in ["script", "style"] {
        if let (Some(a), Some(b)) = (svg.find(&format!("<{tag}")), svg.find(&format!("</{tag}>"))) {
            svg.replace_range(a..b + tag.len() + 3, "");
        }
    }
    Some((svg, highlighted.len()))
}
