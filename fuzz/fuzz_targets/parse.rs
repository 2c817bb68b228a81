//! Arbitrary bytes into the snapshot parser; whatever loads is run through the views
//! (Summary, Comparison, Retainers, display names) so the analysis is fuzzed too. The
//! same bytes also go through `load_with(Analysis::Graph)` (the light mode the leak
//! finder uses for earlier snapshots), which must accept exactly what `load` accepts,
//! and that graph is reclassified and compared against the full one.
//!
//! The input length picks how the bytes are served (all at once, or in reads of 1, 2,
//! 3, 5, 7, 64 or 4096 bytes, as a gzip decoder or a pipe may), so the reader's buffer
//! boundaries are fuzzed without changing what the seeds mean.
//!
//! A crash here is a bug in `leakhound-heap`: bad input must give a `SnapshotError`.
#![no_main]

use leakhound_heap::Analysis;
use libfuzzer_sys::fuzz_target;

/// Serves `data` in reads of at most `chunk` bytes.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    const CHUNKS: [usize; 8] = [usize::MAX, 1, 2, 3, 5, 7, 64, 4096];
    let chunk = CHUNKS[data.len() % CHUNKS.len()];
    let full = leakhound_heap::load(Chunked { data, chunk }, &mut |_| {});
    let graph = leakhound_heap::load_with(data, Analysis::Graph, &mut |_| {});
    assert_eq!(
        full.as_ref().err().map(ToString::to_string),
        graph.as_ref().err().map(ToString::to_string),
        "load and load_with(Graph) disagree"
    );
    let (Ok(loaded), Ok(graph)) = (full, graph) else {
        return;
    };
    let s = &loaded.snapshot;
    let mut g = graph.snapshot;
    g.reclassify(s.interface_definitions());
    let _ = leakhound_heap::summary(&g);
    let _ = leakhound_heap::compare(s, &g);
    let _ = leakhound_heap::compare(&g, s);
    let _ = leakhound_heap::retainers(&g, g.root(), None);
    let _ = leakhound_heap::display_name(&g, g.node_count() as u32 - 1);
    for w in &loaded.warnings {
        let _ = w.to_string();
    }
    let rows = leakhound_heap::summary(s);
    for r in rows.iter().take(8) {
        let _ = (r.class_key.len(), r.retained_size_bytes);
    }
    let _ = leakhound_heap::compare(s, s);
    let _ = s.statistics();
    let _ = s.total_size_bytes();
    let n = s.node_count() as u32;
    let _ = leakhound_heap::retainers(s, 0, None);
    let index = leakhound_heap::RetainerIndex::build(s);
    // A few nodes spread over the graph: first, last, root, and some in between.
    let mut picks = vec![0, n - 1, s.root(), n / 2, n / 3];
    picks.dedup();
    for node in picks {
        let _ = leakhound_heap::display_name(s, node);
        let _ = leakhound_heap::retainers(s, node, Some(&index));
        let _ = s.class(node).key();
        let _ = (s.retained_size(node), s.distance(node), s.dominated(node).len());
        let _ = s.node_type_name(node);
        let _ = s.location(node);
        for e in s.edges(node).take(8) {
            let _ = s.edge_label(e);
            let _ = s.edge_type_name(e);
        }
    }
    let _ = s.max_js_object_id();
});
