//! The caps that keep any input from exhausting memory (issue 11): the `snapshot`
//! header read whole is at most 1 MiB, a top-level key at most 1 KiB, a number in the
//! header at most 64 characters; skipped sections nest at most 2^20 levels. Each cap is
//! an error at a byte offset that does not depend on how the input is split into reads
//! (the fuzz target checks `load` on short reads against `load_with` on one read), and
//! each boundary is exact. The CLI side (exit code 2, memory limits) is in
//! `crates/leakhound/tests/bad_input.rs`.

use leakhound_heap::{Section, SnapshotError, load};

/// Serves `data` in reads of at most `chunk` bytes, as a gzip decoder or a pipe may.
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

/// The error `text` gives, checked to be the same for reads of 1, 3, 7 and 4096 bytes
/// and for one read.
fn error_of(text: &[u8]) -> SnapshotError {
    let whole = load(text, &mut |_| {}).expect_err("an error");
    for chunk in [1, 3, 7, 4096] {
        let chunked = load(Chunked { data: text, chunk }, &mut |_| {}).expect_err("an error");
        assert_eq!(chunked.to_string(), whole.to_string(), "reads of {chunk} bytes");
    }
    whole
}

const HEADER_AT: usize = "{\"snapshot\":".len();
const HEADER_CAP: usize = 1 << 20;

/// A header `{"title":"aaa…"}` of exactly `bytes` bytes.
fn header_of(bytes: usize) -> String {
    let frame = "{\"title\":\"\"}".len();
    format!("{{\"snapshot\":{{\"title\":\"{}\"}}}}", "a".repeat(bytes - frame))
}

#[test]
fn a_header_of_exactly_the_cap_is_read() {
    let e = error_of(header_of(HEADER_CAP).as_bytes());
    assert!(e.to_string().contains("no 'meta'"), "{e}");
}

#[test]
fn a_header_one_byte_over_the_cap_is_an_error_at_the_cap() {
    let e = error_of(header_of(HEADER_CAP + 1).as_bytes());
    assert!(
        matches!(
            e,
            SnapshotError::Invalid {
                section: Section::Header,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset(), (HEADER_AT + HEADER_CAP) as u64, "{e}");
    assert!(
        e.to_string().contains("the snapshot header is larger than 1 MiB"),
        "{e}"
    );
}

/// Past the cap in a string, in a run of values, in an unfinished string: the same
/// error at the same byte, however the reads fall.
#[test]
fn a_header_past_the_cap_is_an_error_at_the_cap_whatever_is_there() {
    let long = 2 * HEADER_CAP;
    for text in [
        format!("{{\"snapshot\":{{\"title\":\"{}\"}}}}", "a".repeat(long)),
        format!("{{\"snapshot\":{{\"title\":\"{}", "\\u00e9".repeat(long / 6)),
        format!("{{\"snapshot\":{{\"meta\":[{}1]}}}}", "1,".repeat(long / 2)),
        format!("{{\"snapshot\":{{\"meta\":[{}", "[],".repeat(long / 3)),
        format!(
            "{{\"snapshot\":{{\"meta\":{{{}\"\":0}}}}}}",
            "\"k\":{\"\":null},".repeat(long / 14)
        ),
    ] {
        let e = error_of(text.as_bytes());
        assert_eq!(e.offset(), (HEADER_AT + HEADER_CAP) as u64, "{e}");
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
    }
}

#[test]
fn a_top_level_key_past_1_kib_is_an_error_at_1_kib() {
    let ok = format!("{{\"{}\":0}}", "k".repeat(1022));
    let e = error_of(ok.as_bytes());
    assert!(e.to_string().contains("no 'snapshot' header"), "{e}");
    let long = format!("{{\"{}\":0}}", "k".repeat(1023));
    let e = error_of(long.as_bytes());
    assert!(
        matches!(
            e,
            SnapshotError::Invalid {
                section: Section::TopLevel,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset(), 1 + 1024, "{e}");
    assert!(e.to_string().contains("a top-level key is larger than 1 KiB"), "{e}");
}

#[test]
fn a_number_in_the_header_is_at_most_64_characters() {
    let number = |digits: usize| format!("{{\"snapshot\":{{\"node_count\":{}}}}}", "1".repeat(digits));
    let e = error_of(number(64).as_bytes());
    assert!(e.to_string().contains("no 'meta'"), "{e}");
    let e = error_of(number(65).as_bytes());
    assert_eq!(e.offset(), "{\"snapshot\":{\"node_count\":".len() as u64, "{e}");
    assert!(e.to_string().contains("a number longer than 64 characters"), "{e}");
}

#[test]
fn a_skipped_section_nests_at_most_2_20_levels() {
    let deep = |levels: usize| format!("{{\"samples\":{}{}}}", "[".repeat(levels), "]".repeat(levels));
    let e = error_of(deep(1 << 20).as_bytes());
    assert!(e.to_string().contains("no 'snapshot' header"), "{e}");
    let e = error_of(deep((1 << 20) + 1).as_bytes());
    assert!(
        matches!(
            e,
            SnapshotError::Invalid {
                section: Section::Other,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset(), "{\"samples\":".len() as u64 + (1 << 20), "{e}");
    assert!(e.to_string().contains("nesting deeper than 1048576 levels"), "{e}");
}

const META: &str = r#"{"node_fields":["type","name","id","self_size","edge_count"],"node_types":[["hidden","synthetic"],"string","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["element"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}"#;

/// `nodes` synthetic nodes without edges, then `rows` location rows (one per line, as V8
/// writes them, so that big arrays take the row path), each naming node `k % nodes`.
fn with_locations(nodes: usize, rows: usize) -> String {
    let node_rows: Vec<String> = (0..nodes).map(|k| format!("1,0,{},0,0", 2 * k + 1)).collect();
    let loc_rows: Vec<String> = (0..rows).map(|k| format!("{},1,{k},2", 5 * (k % nodes))).collect();
    format!(
        "{{\"snapshot\":{{\"meta\":{META},\"node_count\":{nodes},\"edge_count\":0}},\n\"nodes\":[{}],\n\"edges\":[],\n\"locations\":[{}],\n\"strings\":[\"\"]}}",
        node_rows.join("\n,"),
        loc_rows.join("\n,")
    )
}

/// The `locations` array holds at most a row per node: one value more is an error at
/// that value, found the same way by the exact loop and the row path (a 1 MB array:
/// its halves are converted on two threads, and the half over the bound is re-read).
#[test]
fn locations_are_bounded_by_the_node_count() {
    let nodes = 40_000;
    let text = with_locations(nodes, nodes);
    let loaded = load(text.as_bytes(), &mut |_| {}).expect("one location per node loads");
    assert!(
        !loaded.warnings.iter().any(|w| w.section == Section::Locations),
        "{:?}",
        loaded.warnings
    );
    let text = with_locations(nodes, nodes + 1);
    let e = error_of(text.as_bytes());
    let last_row = text.rfind("\n,").unwrap() + 2;
    assert!(
        matches!(
            e,
            SnapshotError::Invalid {
                section: Section::Locations,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset(), last_row as u64, "{e}");
    assert!(
        e.to_string()
            .contains("more location values than node_count 40000 × 4 location_fields"),
        "{e}"
    );
}
