//! Regression tests for bugs found by fuzzing the parser (`fuzz/`) or while reviewing it
//! for the fuzz target, one test per bug, each named after it. Every input here used to
//! panic, hang, misparse or be accepted silently.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use leakhound_heap::{Section, SnapshotError, load};

const META: &str = r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}"#;

fn header(node_count: usize, edge_count: usize, extra: &str) -> String {
    format!(r#"{{"meta":{META},"node_count":{node_count},"edge_count":{edge_count}{extra}}}"#)
}

/// A Node 20 style snapshot (7 node fields) from rows of nodes and edges.
fn snapshot(nodes: &[[u64; 7]], edges: &[[u64; 3]], strings: &[&str]) -> String {
    let join = |rows: Vec<String>| rows.join(",");
    format!(
        r#"{{"snapshot":{},"nodes":[{}],"edges":[{}],"strings":{}}}"#,
        header(nodes.len(), edges.len(), ""),
        join(
            nodes
                .iter()
                .map(|r| join(r.iter().map(u64::to_string).collect()))
                .collect()
        ),
        join(
            edges
                .iter()
                .map(|r| join(r.iter().map(u64::to_string).collect()))
                .collect()
        ),
        serde_json::to_string(strings).unwrap()
    )
}

/// Runs `f` on another thread and fails the test if it does not finish in time.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} did not finish within 30 s"))
}

// Node types: 2 string, 3 object, 9 synthetic, 10 concatenated string.
// Edge types: 1 element, 3 internal.

/// A concatenated string whose `first`/`second` edges point back at itself made
/// `display_name` loop forever, growing its stack (fuzzer timeout).
#[test]
fn cons_string_cycle_display_name_terminates() {
    let strings = ["<dummy>", "", "(concatenated string)", "first", "second", "ab"];
    let text = snapshot(
        &[
            [9, 1, 1, 0, 2, 0, 0],
            [10, 2, 3, 32, 2, 0, 0],
            [10, 2, 5, 32, 2, 0, 0],
            [2, 5, 7, 16, 0, 0, 0],
        ],
        &[
            [1, 1, 7],
            [1, 2, 14],
            // node 1: first -> itself, second -> itself
            [3, 3, 7],
            [3, 4, 7],
            // node 2: first -> "ab", second -> node 2
            [3, 3, 21],
            [3, 4, 14],
        ],
        &strings,
    );
    let (a, b) = within("display_name of a cyclic cons string", move || {
        let loaded = load(text.as_bytes(), &mut |_| {}).expect("loads");
        let s = &loaded.snapshot;
        (leakhound_heap::display_name(s, 1), leakhound_heap::display_name(s, 2))
    });
    assert_eq!(a, "");
    assert!(b.starts_with("abab"), "{b:?}");
    assert!(b.len() <= 1026, "{}", b.len());
}

/// The root (node 0) as a cons string without parts: DevTools pushes node 0 for each
/// missing part, i.e. itself, forever.
#[test]
fn cons_string_root_without_parts_display_name_terminates() {
    let text = snapshot(&[[10, 1, 1, 0, 0, 0, 0]], &[], &["<dummy>", "(concatenated string)"]);
    let name = within("display_name of a partless cons root", move || {
        let loaded = load(text.as_bytes(), &mut |_| {}).expect("loads");
        leakhound_heap::display_name(&loaded.snapshot, 0)
    });
    assert_eq!(name, "");
}

/// A second `snapshot` header after `edges` replaced the layout, so the edges read
/// against the first one pointed past the nodes read against the second (index panic
/// in the analysis). Duplicate top-level sections are now an error.
#[test]
fn duplicate_snapshot_header_is_an_error() {
    let strings = r#"["<dummy>",""]"#;
    let text = format!(
        r#"{{"snapshot":{},"nodes":[9,1,1,0,1,0,0,3,1,3,8,0,0,0],"edges":[1,1,7],"snapshot":{},"nodes":[9,1,1,0,1,0,0],"strings":{strings}}}"#,
        header(2, 1, ""),
        header(1, 1, "")
    );
    let err = load(text.as_bytes(), &mut |_| {}).expect_err("duplicate header");
    assert_eq!(err.section(), Section::TopLevel, "{err}");
    assert!(err.to_string().contains("'snapshot'"), "{err}");
    // The offset is the second "snapshot" key.
    let second = text.rfind(r#""snapshot""#).unwrap() as u64;
    assert_eq!(err.offset(), second, "{err}");
}

/// `nodes` again after `edges` (same layout, fewer nodes) left edges pointing past the
/// node array.
#[test]
fn duplicate_nodes_section_is_an_error() {
    let text = format!(
        r#"{{"snapshot":{},"nodes":[9,1,1,0,1,0,0,3,1,3,8,0,0,0],"edges":[1,1,7],"nodes":[9,1,1,0,1,0,0],"strings":["<dummy>",""]}}"#,
        header(2, 1, "")
    );
    let err = load(text.as_bytes(), &mut |_| {}).expect_err("duplicate nodes");
    assert!(err.to_string().contains("'nodes'"), "{err}");
    for key in ["edges", "strings", "locations"] {
        let text = snapshot(&[[9, 1, 1, 0, 0, 0, 0]], &[], &["<dummy>", ""]);
        let base = text.strip_suffix('}').unwrap();
        // `snapshot()` writes no `locations`: give that one twice.
        let times = if key == "locations" { 2 } else { 1 };
        let dup = format!("{base}{}}}", format!(r#","{key}":[]"#).repeat(times));
        let err = load(dup.as_bytes(), &mut |_| {}).expect_err(key);
        assert!(err.to_string().contains(&format!("duplicate '{key}' section")), "{err}");
        assert_eq!(err.offset(), dup.rfind(&format!(r#""{key}""#)).unwrap() as u64, "{err}");
    }
}

/// `extra_native_bytes` that was negative, fractional, a string or at least 1.8e19 was
/// silently read as 0, and values just below 1.8e19 were taken at face value (a total
/// size one add away from overflowing). Header numbers that are present but not byte
/// counts (integers from 0 to 2^53, as DevTools reads them) are now an error naming the
/// header.
#[test]
fn bad_extra_native_bytes_is_an_error() {
    for (value, bad) in [
        ("17000000000000000000", true),
        ("-1", true),
        ("1.5", true),
        ("\"12\"", true),
        ("9007199254740992", false),
        ("4096", false),
    ] {
        let text = format!(
            r#"{{"snapshot":{},"nodes":[9,1,1,0,0,0,0],"edges":[],"strings":["<dummy>",""]}}"#,
            header(1, 0, &format!(r#","extra_native_bytes":{value}"#))
        );
        let result = load(text.as_bytes(), &mut |_| {});
        if bad {
            let err = result.expect_err(value);
            assert_eq!(err.section(), Section::Header, "{err}");
            assert!(err.to_string().contains("extra_native_bytes"), "{err}");
        } else {
            let loaded = result.unwrap_or_else(|e| panic!("{value}: {e}"));
            let s = &loaded.snapshot;
            assert_eq!(s.total_size_bytes(), value.parse::<u64>().unwrap());
        }
    }
}

/// `root_index` that is not a node index used to be ignored silently when it was not
/// an unsigned integer (the root fell back to node 0).
#[test]
fn bad_root_index_is_an_error() {
    for value in ["-7", "7.5", "1e30", "\"7\"", "14"] {
        let text = format!(
            r#"{{"snapshot":{},"nodes":[9,1,1,0,0,0,0,9,1,3,0,0,0,0],"edges":[],"strings":["<dummy>",""]}}"#,
            header(2, 0, &format!(r#","root_index":{value}"#))
        );
        let err = load(text.as_bytes(), &mut |_| {}).expect_err(value);
        assert_eq!(err.section(), Section::Header, "{value}: {err}");
        assert!(err.to_string().contains("root_index"), "{err}");
        assert!(err.offset() > 0, "{err}");
    }
}

/// Serves bytes in reads of at most `chunk` bytes, as a gzip decoder or a pipe may.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The look-ahead for a `\uDC00` low surrogate after a high one read only once: with
/// short reads a valid pair decoded as two U+FFFD, and a high surrogate followed by a
/// non-surrogate escape rewound to a stale buffer position (misparsing what followed).
#[test]
fn surrogate_pair_split_across_short_reads() {
    let names = [r"\ud83d\ude00", r"\ud800\u0041xyz", r"a\ud800", r"\udc00\ud83d\ude00b"];
    let want = ["\u{1F600}", "\u{FFFD}Axyz", "a\u{FFFD}", "\u{FFFD}\u{1F600}b"];
    let strings = format!(r#"["<dummy>","{}"]"#, names.join(r#"",""#));
    let text = format!(
        r#"{{"snapshot":{},"nodes":[9,1,1,0,0,0,0,3,2,3,8,0,0,0,3,3,5,8,0,0,0,3,4,7,8,0,0,0],"edges":[],"strings":{strings}}}"#,
        header(4, 0, "")
    );
    for chunk in [1, 2, 3, 4, 5, 6, 7, 8, 13, 64, usize::MAX] {
        let loaded = load(
            Chunked {
                data: text.as_bytes(),
                chunk,
            },
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("reads of {chunk}: {e}"));
        let s = &loaded.snapshot;
        for (k, w) in want.iter().enumerate() {
            assert_eq!(s.raw_name(k as u32), *w, "reads of {chunk}, string {k}");
        }
    }
}

/// Errors keep their section and offset whatever the read size.
#[test]
fn truncation_offsets_do_not_depend_on_read_size() {
    let text = snapshot(
        &[[9, 1, 1, 0, 1, 0, 0], [3, 1, 3, 8, 0, 0, 0]],
        &[[1, 1, 7]],
        &["<dummy>", ""],
    );
    for cut in [1, 10, text.len() / 2, text.len() - 1] {
        let bytes = &text.as_bytes()[..cut];
        let whole = load(bytes, &mut |_| {}).expect_err("truncated");
        for chunk in [1, 2, 3, 7] {
            let err = load(Chunked { data: bytes, chunk }, &mut |_| {}).expect_err("truncated");
            assert!(matches!(err, SnapshotError::Truncated { .. }), "{err}");
            assert_eq!(err.to_string(), whole.to_string(), "cut {cut}, reads of {chunk}");
        }
    }
}

/// A file cut inside (or right after) the last number of an array took the digits
/// before the cut as the value, so a cut `to_node` 14 became 1 and the error was "not a
/// multiple of the node field count" instead of the truncation it is.
#[test]
fn number_cut_by_the_end_of_input_is_truncation() {
    let text = snapshot(
        &[[9, 1, 1, 0, 1, 0, 0], [3, 1, 3, 8, 0, 0, 0], [3, 1, 5, 8, 0, 0, 0]],
        &[[1, 1, 14]],
        &["<dummy>", ""],
    );
    let edges = text.find(r#""edges":["#).unwrap() + r#""edges":["#.len();
    for cut in [edges + "1,1,1".len(), edges + "1,1,14".len(), edges + "1,".len()] {
        for chunk in [1, 2, usize::MAX] {
            let bytes = &text.as_bytes()[..cut];
            let err = load(Chunked { data: bytes, chunk }, &mut |_| {}).expect_err("cut");
            assert!(
                matches!(err, SnapshotError::Truncated { section: Section::Edges, offset } if offset == cut as u64),
                "cut at {cut}, reads of {chunk}: {err}"
            );
        }
    }
    // The same in the header: a cut `node_count`.
    let header_cut = text.find(r#""node_count":"#).unwrap() + r#""node_count":"#.len() + 1;
    let err = load(&text.as_bytes()[..header_cut], &mut |_| {}).expect_err("cut");
    assert!(
        matches!(err, SnapshotError::Truncated { section: Section::Header, offset } if offset == header_cut as u64),
        "{err}"
    );
}
