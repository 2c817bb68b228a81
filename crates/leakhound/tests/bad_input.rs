//! Bad input gets a clear error, never a panic: every malformed snapshot makes
//! `leakhound summary` exit with code 2, print nothing on stdout, and print exactly one
//! line on stderr naming the file, the section and the byte offset. Where the offending
//! byte is known the offset is checked exactly, so a regression in where errors point
//! fails here too. Invalid UTF-8 inside a string is the one non-fatal case.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(name)
}

fn run(path: &Path) -> Output {
    Command::new(BIN)
        .arg("summary")
        .arg(path)
        .output()
        .expect("run leakhound")
}

/// `leakhound summary FILE` with the address space limited to 1 GiB (`ulimit -v`), so
/// that an input able to make it allocate without bound aborts it ("memory allocation
/// of … bytes failed", exit code 134) instead of swapping the machine.
fn run_limited(path: &Path) -> Output {
    run_limited_to(path, 1 << 20)
}

/// [`run_limited`] with a limit of `kib` KiB and one worker thread (each thread adds a
/// stack and a malloc arena to the address space, and machines differ in cores).
fn run_limited_to(path: &Path, kib: u64) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(r#"ulimit -v {kib} && exec "$0" summary "$1""#))
        .arg(BIN)
        .arg(path)
        .env("LEAKHOUND_THREADS", "1")
        .output()
        .expect("run leakhound")
}

/// Writes a gzip file `dir/name` holding `head`, then `body` repeated to `body_bytes`
/// bytes, then `tail`, streamed (the file is small, its content need not fit memory).
fn write_gz(dir: &tempfile::TempDir, name: &str, head: &[u8], body: &[u8], body_bytes: usize, tail: &[u8]) -> PathBuf {
    use std::io::Write;
    let path = dir.path().join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(head).unwrap();
    let chunk: Vec<u8> = body.iter().copied().cycle().take(1 << 20).collect();
    let mut left = body_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        gz.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    gz.write_all(tail).unwrap();
    gz.finish().unwrap().flush().unwrap();
    path
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The one stderr line of a failed run, after checking exit code 2, empty stdout, a
/// single line starting `leakhound: ` with the file name, the section (as the message
/// spells it: `in <section> at byte `; any section if `section` is empty) and the byte
/// offset, which is returned.
fn expect_error(path: &Path, section: &str) -> (u64, String) {
    check_error(path, &run(path), section)
}

/// [`expect_error`] on a run whose output is already there (e.g. from [`run_limited`]).
fn check_error(path: &Path, out: &Output, section: &str) -> (u64, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let what = format!("{}: stderr {stderr:?}", path.display());
    assert_eq!(out.status.code(), Some(2), "{what}");
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{what}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}");
    assert!(stderr.ends_with('\n'), "{what}");
    let line = lines[0];
    assert!(line.starts_with("leakhound: "), "{what}");
    let file_name = path.file_name().unwrap().to_str().unwrap();
    assert!(line.contains(file_name), "{what}: no file name");
    let marker = if section.is_empty() {
        " at byte ".to_owned()
    } else {
        format!(" in {section} at byte ")
    };
    let at = line.find(&marker).unwrap_or_else(|| panic!("{what}: no {marker:?}"));
    let digits: String = line[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let offset = digits.parse().unwrap_or_else(|_| panic!("{what}: no offset"));
    (offset, line.to_owned())
}

/// `expect_error` with the exact offset and a phrase the message must contain.
fn expect_error_at(path: &Path, section: &str, offset: usize, phrase: &str) {
    let (got, line) = expect_error(path, section);
    assert_eq!(got, offset as u64, "{line}");
    assert!(line.contains(phrase), "{line:?} lacks {phrase:?}");
}

// ---------------------------------------------------------------------------------
// A small hand-written snapshot (Node 20 layout), fully reachable from the root:
//   0 root (synthetic) --element 1--> 1 Leaky (object) --property "a"--> 2 "hello"
//                      --element 2--> 2 "hello"
// Node types: 2 string, 3 object, 9 synthetic. Edge types: 1 element, 2 property.

const META: &str = r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"trace_node_fields":["id","function_info_index","count","size","children"],"sample_fields":["timestamp_us","last_assigned_id"],"location_fields":["object_index","script_id","line","column"]}"#;

struct Doc {
    node_count: String,
    edge_count: String,
    nodes: String,
    edges: String,
    strings: String,
}

impl Doc {
    fn good() -> Doc {
        Doc {
            node_count: "3".into(),
            edge_count: "3".into(),
            nodes: "9,1,1,0,2,0,0\n,3,2,3,40,1,0,0\n,2,3,5,16,0,0,0".into(),
            edges: "1,1,7\n,1,2,14\n,2,4,14".into(),
            strings: r#""<dummy>"
,""
,"Leaky"
,"hello"
,"a""#
                .into(),
        }
    }

    /// The file text, in V8's key order and Node 20's line breaks.
    fn text(&self) -> String {
        format!(
            "{{\"snapshot\":{{\"meta\":{META},\"node_count\":{},\"edge_count\":{},\"trace_function_count\":0}},\n\"nodes\":[{}],\n\"edges\":[{}],\n\"trace_function_infos\":[],\n\"trace_tree\":[],\n\"samples\":[],\n\"locations\":[],\n\"strings\":[{}]}}\n",
            self.node_count, self.edge_count, self.nodes, self.edges, self.strings
        )
    }
}

/// Offset of the first `needle` at or after the `"section":` key.
fn offset_in(text: &str, section: &str, needle: &str) -> usize {
    let start = text.find(&format!("\"{section}\":")).unwrap();
    start + text[start..].find(needle).unwrap()
}

/// End of a section's array: the offset just past its `]`.
fn section_end(text: &str, section: &str) -> usize {
    offset_in(text, section, "]") + 1
}

#[test]
fn the_hand_written_snapshot_is_good() {
    // Guards every test below: they change one thing in a snapshot that loads.
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "good.heapsnapshot", Doc::good().text().as_bytes());
    let out = run(&path);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("3 nodes, 3 edges"), "{stdout}");
    assert!(stdout.contains("Leaky"), "{stdout}");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "empty.heapsnapshot", b"");
    expect_error_at(&path, "top level", 0, "unexpected end of file");
    let path = write(&dir, "blank.heapsnapshot", b" \n\t\n");
    expect_error_at(&path, "top level", 4, "unexpected end of file");
}

#[test]
fn not_json() {
    let dir = tempfile::tempdir().unwrap();
    // Deterministic pseudo-random bytes (xorshift), first byte not '{' or whitespace.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    random[0] = 0xC3;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let cases: [(&str, &[u8], usize, &str); 6] = [
        ("random.heapsnapshot", &random, 0, "not a heap snapshot"),
        ("image.png", png, 0, "not a heap snapshot"),
        (
            "notes.txt",
            b"Heap snapshot of the server, taken at noon.\n",
            0,
            "not a heap snapshot",
        ),
        ("array.json", b"[]", 0, "not a heap snapshot"),
        ("brace-then-text.heapsnapshot", b"{snapshot: 1}", 1, "expected a string"),
        ("number.json", b"  42", 2, "not a heap snapshot"),
    ];
    for (name, bytes, offset, phrase) in cases {
        let path = write(&dir, name, bytes);
        expect_error_at(&path, "top level", offset, phrase);
    }
}

#[test]
fn json_but_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "object.json", br#"{"a":1}"#);
    expect_error_at(&path, "snapshot header", 7, "no 'snapshot' header");
    let path = write(&dir, "empty-object.json", b"{}");
    expect_error_at(&path, "top level", 1, "empty");
    let path = write(&dir, "empty-header.json", br#"{"snapshot":{}}"#);
    expect_error_at(&path, "snapshot header", 12, "no 'meta'");
    let package = br#"{"name":"app","version":"1.0.0","dependencies":{"express":"^4"}}"#;
    let path = write(&dir, "package.json", package);
    expect_error_at(&path, "snapshot header", package.len(), "no 'snapshot' header");
    // A header and nothing else.
    let header_only = format!(r#"{{"snapshot":{{"meta":{META},"node_count":0,"edge_count":0}}}}"#);
    let path = write(&dir, "header-only.json", header_only.as_bytes());
    expect_error_at(&path, "nodes", header_only.len(), "'nodes' section is missing");
}

#[test]
fn meta_that_disagrees_with_the_arrays() {
    let dir = tempfile::tempdir().unwrap();

    // node_count larger than the nodes array: found at the end of the array.
    let doc = Doc {
        node_count: "4".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "node-count-high.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "nodes", section_end(&text, "nodes"), "node_count 4");

    // node_count smaller: found at the first value past it.
    let doc = Doc {
        node_count: "2".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "node-count-low.heapsnapshot", text.as_bytes());
    let last_row = offset_in(&text, "nodes", ",2,3,5,16,0,0,0") + 1;
    expect_error_at(
        &path,
        "nodes",
        last_row + "2,3,5,16,0,0,".len(),
        "more node values than node_count 2",
    );

    // edge_count in the header disagrees with the nodes' edge counts.
    let doc = Doc {
        edge_count: "4".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "edge-count.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "nodes", section_end(&text, "nodes"), "edge_count 4");

    // Header and nodes agree, the edges array is short by one edge.
    let doc = Doc {
        edges: "1,1,7\n,1,2,14".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "edges-short.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "edges", section_end(&text, "edges"), "edge_count 3");

    // node_fields lists 6 fields, the rows have 7: 21 values where 18 are expected.
    let text = Doc::good().text().replacen(r#","detachedness""#, "", 1);
    let path = write(&dir, "six-fields.heapsnapshot", text.as_bytes());
    let (offset, line) = expect_error(&path, "nodes");
    let nodes = offset_in(&text, "nodes", "[");
    assert!(
        offset > nodes as u64 && offset <= section_end(&text, "nodes") as u64,
        "{line}"
    );

    // A meta without to_node.
    let text = Doc::good().text().replacen(r#","to_node""#, "", 1);
    let path = write(&dir, "no-to-node.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "snapshot header", "{\"snapshot\":".len(), "'to_node'");

    // A node type index beyond node_types (15 types).
    let doc = Doc {
        nodes: "9,1,1,0,2,0,0\n,15,2,3,40,1,0,0\n,2,3,5,16,0,0,0".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "node-type.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "nodes", offset_in(&text, "nodes", "15,"), "node type 15");

    // A string index beyond the strings array (5 strings), in a node and in an edge.
    let doc = Doc {
        nodes: "9,1,1,0,2,0,0\n,3,77,3,40,1,0,0\n,2,3,5,16,0,0,0".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "node-name.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "nodes", offset_in(&text, "nodes", "77"), "string 77");
    let doc = Doc {
        edges: "1,1,7\n,1,2,14\n,2,88,14".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "edge-name.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "edges", offset_in(&text, "edges", "88"), "string 88");
    // Element edges carry an index, not a string: 88 there is fine.
    let doc = Doc {
        edges: "1,1,7\n,1,88,14\n,2,4,14".into(),
        ..Doc::good()
    };
    let path = write(&dir, "element-index.heapsnapshot", doc.text().as_bytes());
    assert_eq!(run(&path).status.code(), Some(0));
}

#[test]
fn edges_pointing_outside_the_node_array() {
    let dir = tempfile::tempdir().unwrap();
    // Three nodes × 7 fields: node indices 0, 7, 14. 21 is one past the end.
    for (name, to, phrase) in [
        ("past-end.heapsnapshot", "21", "past the node array"),
        ("far-past-end.heapsnapshot", "700000", "past the node array"),
        (
            "not-multiple.heapsnapshot",
            "8",
            "not a multiple of the node field count 7",
        ),
        ("over-32-bits.heapsnapshot", "4294967296", "does not fit 32 bits"),
    ] {
        let doc = Doc {
            edges: format!("1,1,7\n,1,2,{to}\n,2,4,14"),
            ..Doc::good()
        };
        let text = doc.text();
        let path = write(&dir, name, text.as_bytes());
        let at = offset_in(&text, "edges", &format!(",{to}\n")) + 1;
        expect_error_at(&path, "edges", at, phrase);
    }
    // An edge type index beyond edge_types (7 types).
    let doc = Doc {
        edges: "1,1,7\n,7,2,14\n,2,4,14".into(),
        ..Doc::good()
    };
    let text = doc.text();
    let path = write(&dir, "edge-type.heapsnapshot", text.as_bytes());
    expect_error_at(&path, "edges", offset_in(&text, "edges", "7,2,14"), "edge type 7");
}

#[test]
fn negative_and_overflowing_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let big = "1234567890123456789012345"; // 25 digits
    let cases = [
        (
            "negative-node.heapsnapshot",
            "nodes",
            "9,1,1,0,2,0,0\n,3,2,3,-40,1,0,0\n,2,3,5,16,0,0,0",
            "-40",
            "negative",
        ),
        (
            "huge-node.heapsnapshot",
            "nodes",
            "9,1,1,0,2,0,0\n,3,2,3,1234567890123456789012345,1,0,0\n,2,3,5,16,0,0,0",
            big,
            "too large",
        ),
        (
            "fraction-node.heapsnapshot",
            "nodes",
            "9,1,1,0,2,0,0\n,3,2,3,4.5,1,0,0\n,2,3,5,16,0,0,0",
            "4.5",
            "fraction",
        ),
        (
            "id-over-32-bits.heapsnapshot",
            "nodes",
            "9,1,1,0,2,0,0\n,3,2,4294967297,40,1,0,0\n,2,3,5,16,0,0,0",
            "3,2,4294967297",
            "does not fit 32 bits",
        ),
    ];
    for (name, section, nodes, needle, phrase) in cases {
        let doc = Doc {
            nodes: nodes.into(),
            ..Doc::good()
        };
        let text = doc.text();
        let path = write(&dir, name, text.as_bytes());
        expect_error_at(&path, section, offset_in(&text, "nodes", needle), phrase);
    }
    // In the edges.
    for (name, edges, needle, phrase) in [
        (
            "negative-edge.heapsnapshot",
            "1,1,7\n,1,2,-14\n,2,4,14",
            "-14",
            "negative",
        ),
        (
            "huge-edge.heapsnapshot",
            "1,1,7\n,1,2,14\n,2,4,1234567890123456789012345",
            big,
            "too large",
        ),
    ] {
        let doc = Doc {
            edges: edges.into(),
            ..Doc::good()
        };
        let text = doc.text();
        let path = write(&dir, name, text.as_bytes());
        expect_error_at(&path, "edges", offset_in(&text, "edges", needle), phrase);
    }
    // In the header: counts are read as JS numbers (integers up to 2^53).
    let header_at = "{\"snapshot\":".len();
    for (name, node_count, phrase) in [
        ("negative-count.heapsnapshot", "-3", "found -3"),
        ("huge-count.heapsnapshot", big, "must be an integer from 0 to 2^53"),
        ("fraction-count.heapsnapshot", "2.5", "found 2.5"),
        ("string-count.heapsnapshot", "\"3\"", "found the string \"3\""),
    ] {
        let doc = Doc {
            node_count: node_count.into(),
            ..Doc::good()
        };
        let path = write(&dir, name, doc.text().as_bytes());
        expect_error_at(&path, "snapshot header", header_at, phrase);
    }
}

/// Counts a tiny file claims must not be allocated up front: with the address space
/// limited to 1 GiB, a header promising 2^32 − 1 edges (16 GiB of edge arrays) used to
/// abort the process ("memory allocation failed") instead of reporting the short array.
#[test]
fn huge_counts_in_the_header_are_not_allocated_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let max_edges = "4294967295";
    let doc = Doc {
        node_count: "1".into(),
        edge_count: max_edges.into(),
        nodes: format!("9,1,1,0,{max_edges},0,0"),
        edges: String::new(),
        ..Doc::good()
    };
    let edges_text = doc.text();
    // 2^32 / 7 nodes promised, one given.
    let doc = Doc {
        node_count: "613566756".into(),
        edge_count: "0".into(),
        nodes: "9,1,1,0,0,0,0".into(),
        edges: String::new(),
        ..Doc::good()
    };
    let nodes_text = doc.text();
    for (name, text, section) in [
        ("many-edges.heapsnapshot", &edges_text, "edges"),
        ("many-nodes.heapsnapshot", &nodes_text, "nodes"),
    ] {
        let path = write(&dir, name, text.as_bytes());
        let out = run_limited(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(" in {section} at byte {}", section_end(text, section))),
            "{name}: {stderr}"
        );
    }
}

/// Where the `snapshot` header's value starts in every file below.
const HEADER_AT: usize = "{\"snapshot\":".len();

/// The `snapshot` header is read as one JSON value, so its size is capped at 1 MiB,
/// about a thousand times the largest real one. A 64 MiB header (a small `.gz`) used to
/// grow a vector of values to gigabytes and abort the process ("memory allocation of
/// 1073741824 bytes failed", exit code 134, under a 1 GiB limit); a long string in it
/// was read to the end of the file. Now each is an error at the byte where the header
/// passes 1 MiB.
#[test]
fn an_endless_header_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let meta = br#"{"snapshot":{"meta":{"node_fields":["#;
    for (name, head, body) in [
        ("numbers.heapsnapshot.gz", &meta[..], &b"1,"[..]),
        ("empty-strings.heapsnapshot.gz", meta, br#""","#),
        ("long-title.heapsnapshot.gz", br#"{"snapshot":{"title":""#, b"a"),
    ] {
        let path = write_gz(&dir, name, head, body, 64 << 20, b"");
        let out = run_limited(&path);
        let (offset, line) = check_error(&path, &out, "snapshot header");
        assert_eq!(offset, (HEADER_AT + (1 << 20)) as u64, "{line}");
        assert!(line.contains("larger than 1 MiB"), "{line}");
    }
}

/// Top-level keys are short names; one longer than 1 KiB is an error where it passes
/// 1 KiB, not a string read to the end of the file (64 MiB here).
#[test]
fn a_huge_top_level_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_gz(&dir, "long-key.heapsnapshot.gz", b"{\"", b"k", 64 << 20, b"\":1}");
    let out = run_limited(&path);
    let (offset, line) = check_error(&path, &out, "top level");
    assert_eq!(offset, 1 + 1024, "{line}");
    assert!(line.contains("top-level key") && line.contains("1 KiB"), "{line}");
}

/// Nesting is capped where values are read (64 levels in the header, 1024 in the
/// `trace_tree`, which nests one level per stack frame while V8 keeps at most 64 frames)
/// and where they are skipped (2^20 levels). The skipped section used to be followed to
/// the end of the file whatever its depth, with a counter that a few GB of `[` would
/// overflow.
#[test]
fn deep_nesting_is_an_error_at_the_level_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let head = "{\"snapshot\":{\"meta\":";
    let text = format!("{head}{}", "[".repeat(1_000_000));
    let path = write(&dir, "deep-meta.heapsnapshot", text.as_bytes());
    // The header is level 0, `meta` level 1: the 65th '[' is level 65.
    expect_error_at(
        &path,
        "snapshot header",
        head.len() + 64,
        "nesting deeper than 64 levels",
    );

    let good = Doc::good().text();
    let key = "\"samples\":";
    let start = good.find(key).unwrap() + key.len();
    let text = format!("{}{}", &good[..start], "[".repeat((1 << 20) + 1));
    let path = write(&dir, "deep-samples.heapsnapshot", text.as_bytes());
    expect_error_at(
        &path,
        "skipped section",
        start + (1 << 20),
        "nesting deeper than 1048576 levels",
    );

    let key = "\"trace_tree\":";
    let start = good.find(key).unwrap() + key.len();
    let node = "1,0,0,0,";
    let text = format!("{}[{}", &good[..start], format!("{node}[").repeat(1025));
    let path = write(&dir, "deep-trace-tree.heapsnapshot", text.as_bytes());
    expect_error_at(
        &path,
        "trace_tree",
        start + 1 + (node.len() + 1) * 1024 + node.len(),
        "nesting deeper than 1024 levels",
    );
}

/// A number token in the header is at most 64 characters: a 100 MB one is an error at
/// its first digit, in a short line. It used to be collected whole and, when it did not
/// parse, quoted whole in the error: a 100 MB line on stderr.
#[test]
fn a_huge_number_in_the_header_is_an_error_in_a_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good().text();
    let count_at = text.find("\"node_count\":").unwrap() + "\"node_count\":".len();
    let (head, tail) = (&text[..count_at], &text[count_at + 1..]);
    for (name, body) in [("digits.heapsnapshot.gz", "9"), ("not-a-number.heapsnapshot.gz", "1-")] {
        let path = write_gz(&dir, name, head.as_bytes(), body.as_bytes(), 100 << 20, tail.as_bytes());
        let out = run_limited(&path);
        let (offset, line) = check_error(&path, &out, "snapshot header");
        assert_eq!(offset, count_at as u64, "{line}");
        assert!(line.contains("number longer than 64 characters"), "{line}");
        assert!(line.len() < 300, "{} bytes: {}…", line.len(), &line[..300]);
    }
}

/// Strings are the payload and may be big, so a string in the `strings` array has no
/// cap but the file: one with no closing quote is read to the end of the file (200 MB
/// here, within the 1 GiB limit) and is a truncation there.
#[test]
fn an_unterminated_string_fails_at_the_end_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good().text();
    let head = &text[..offset_in(&text, "strings", "\"<dummy>\"")];
    let head = format!("{head}\"<dummy>\",\"");
    let body_bytes = 200 << 20;
    let path = write_gz(
        &dir,
        "open-string.heapsnapshot.gz",
        head.as_bytes(),
        b"a",
        body_bytes,
        b"",
    );
    let out = run_limited(&path);
    let (offset, line) = check_error(&path, &out, "strings");
    assert_eq!(offset, (head.len() + body_bytes) as u64, "{line}");
    assert!(line.contains("unexpected end of file"), "{line}");
}

/// Sections the engine does not use (`samples`, `trace_tree`, ...) are skipped keeping
/// nothing: a 300 MB string in one loads within 256 MiB of address space. Skipping used
/// to collect each string whole, and this one aborted the process.
#[test]
fn a_huge_string_in_a_skipped_section_costs_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good().text();
    let at = text.find("\"samples\":[]").unwrap() + "\"samples\":[".len();
    let (head, tail) = (format!("{}\"", &text[..at]), format!("\"{}", &text[at..]));
    let path = write_gz(
        &dir,
        "long-sample.heapsnapshot.gz",
        head.as_bytes(),
        b"s",
        300 << 20,
        tail.as_bytes(),
    );
    let out = run_limited_to(&path, 256 << 10);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 nodes, 3 edges"));
}

/// V8 writes at most one location per node, so the `locations` array is bounded by the
/// header like the other arrays: a value past node_count × location_fields is an error
/// at its offset (it used to be accepted, without bound).
#[test]
fn more_locations_than_nodes_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good().text().replacen(
        "\"locations\":[]",
        "\"locations\":[0,1,2,3\n,7,1,2,3\n,14,1,2,3\n,0,1,2,4]",
        1,
    );
    let path = write(&dir, "many-locations.heapsnapshot", text.as_bytes());
    expect_error_at(
        &path,
        "locations",
        offset_in(&text, "locations", "0,1,2,4"),
        "more location values than node_count 3 × 4 location_fields",
    );
}

/// Locations pointing at something other than a node are ignored with one warning for
/// all of them (it used to be one warning line each).
#[test]
fn locations_that_are_not_nodes_give_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good()
        .text()
        .replacen("\"locations\":[]", "\"locations\":[5,1,2,3\n,7,1,2,3\n,21,1,2,3]", 1);
    let path = write(&dir, "stray-locations.heapsnapshot", text.as_bytes());
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("leakhound: warning: "), "{stderr}");
    assert!(
        lines[0].contains("2 location(s) point at node indexes that are not nodes (the first at 5); ignored"),
        "{stderr}"
    );
}

#[test]
fn duplicate_sections() {
    let dir = tempfile::tempdir().unwrap();
    let text = Doc::good().text();
    let text = text.replacen(
        "\n\"trace_function_infos\"",
        "\n\"nodes\":[9,1,1,0,0,0,0],\n\"trace_function_infos\"",
        1,
    );
    let path = write(&dir, "two-nodes.heapsnapshot", text.as_bytes());
    let second = text.rfind("\"nodes\"").unwrap();
    expect_error_at(&path, "top level", second, "duplicate 'nodes' section");
}

/// The idle corpus snapshot cut at many points: each cut is an unexpected end of file
/// exactly at the cut, in the section the cut falls in.
#[test]
fn truncated_anywhere() {
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(corpus("idle.heapsnapshot.gz")).unwrap());
    let mut full = Vec::new();
    gz.read_to_end(&mut full).unwrap();
    let text = std::str::from_utf8(&full).unwrap();

    // Where each top-level value starts (just after its ':') and ends (past its close).
    let mut sections: Vec<(usize, usize, &str)> = Vec::new();
    for (key, section) in [
        ("snapshot", "snapshot header"),
        ("nodes", "nodes"),
        ("edges", "edges"),
        ("trace_function_infos", "trace_function_infos"),
        ("trace_tree", "trace_tree"),
        ("samples", "skipped section"),
        ("locations", "locations"),
        ("strings", "strings"),
    ] {
        let key_at = text.find(&format!("\"{key}\":")).unwrap();
        let start = key_at + key.len() + 3;
        let close = if key == "snapshot" { "},\n\"nodes\"" } else { "]" };
        let end = if key == "strings" {
            text.rfind(']').unwrap() + 1
        } else {
            start + text[start..].find(close).unwrap() + 1
        };
        sections.push((start, end, section));
    }
    let section_of = |cut: usize| {
        sections
            .iter()
            .find(|&&(start, end, _)| start <= cut && cut < end)
            .map_or("top level", |s| s.2)
    };

    let mut cuts: Vec<usize> = (1..=40).map(|i| i * (full.len() - 1) / 41).collect();
    let nodes = sections[1];
    let edges = sections[2];
    let strings = sections[7];
    let within = |at: usize, needle: &str| at + text[at..].find(needle).unwrap();
    cuts.extend([
        1,                                     // after '{'
        5,                                     // inside the first key
        "{\"snapshot\"".len(),                 // before ':'
        "{\"snapshot\":".len(),                // header not started
        within(0, "node_types") + 3,           // inside a meta key
        within(0, "\"node_count\":") + 15,     // inside the node count
        sections[0].1,                         // right after the header
        nodes.0,                               // "nodes": then nothing
        nodes.0 + 1,                           // after '['
        within(nodes.0 + 1000, ",") + 1,       // after a comma in nodes
        within(nodes.0 + 2000, "\n") - 1,      // inside a number in nodes
        nodes.1 - 1,                           // before the closing ']'
        edges.0 + 7,                           // early in edges
        within(edges.0 + 50_000, ",") + 2,     // inside a number in edges
        edges.1,                               // right after the edges
        strings.0 + 2,                         // inside the first string
        within(strings.0, "\\") + 1,           // inside an escape
        within(strings.0, "\\u") + 4,          // inside a \u escape
        within(strings.0 + 200_000, "\"") + 1, // at the start of a string
        strings.1 - 1,                         // before the last ']'
        full.len() - 2,                        // before the final '}'
    ]);
    if let Some(p) = text[strings.0..].find("\\u") {
        cuts.push(strings.0 + p + 2);
    }
    cuts.sort_unstable();
    cuts.dedup();

    let dir = tempfile::tempdir().unwrap();
    for (i, &cut) in cuts.iter().enumerate() {
        let path = write(&dir, &format!("idle-cut-{i}-at-{cut}.heapsnapshot"), &full[..cut]);
        let section = section_of(cut);
        let (offset, line) = expect_error(&path, section);
        assert!(line.contains("unexpected end of file"), "{line}");
        // The end of input is the cut, after any whitespace before it.
        assert_eq!(offset, cut as u64, "{line}");
        std::fs::remove_file(&path).unwrap();
    }
    assert!(cuts.len() >= 55, "{}", cuts.len());
}

/// A truncated gzip file is a read error, still one line with section and offset.
#[test]
fn truncated_gzip() {
    let gz = std::fs::read(corpus("idle.heapsnapshot.gz")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "idle-cut.heapsnapshot.gz", &gz[..gz.len() / 2]);
    let (offset, line) = expect_error(&path, "");
    assert!(
        line.contains("read error") || line.contains("unexpected end of file"),
        "{line}"
    );
    assert!(offset > 0 && offset < 5 << 20, "{line}");
}

#[test]
fn invalid_utf8_in_a_string_is_replaced_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Doc::good().text().into_bytes();
    let at = text.windows(7).position(|w| w == b"\"Leaky\"").unwrap();
    text.splice(at + 3..at + 3, [0xFF, 0xC3]); // "Le\xFF\xC3aky": a stray byte and a cut sequence
    let path = write(&dir, "bad-utf8.heapsnapshot", &text);
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("leakhound: warning: "), "{stderr}");
    assert!(lines[0].contains("bad-utf8.heapsnapshot"), "{stderr}");
    assert!(
        lines[0].contains("invalid UTF-8") && lines[0].contains("U+FFFD"),
        "{stderr}"
    );
    assert!(lines[0].contains(&format!("byte {at}")), "{stderr}");
    assert!(stdout.contains("3 nodes, 3 edges"), "{stdout}");
    assert!(stdout.contains("Le\u{FFFD}\u{FFFD}aky"), "{stdout}");
}

/// A `\uD800`–`\uDFFF` escape without its pair (a high surrogate alone, a low one alone,
/// a high one followed by another escape) cannot be UTF-8: it becomes U+FFFD with a
/// warning counting the strings, like invalid UTF-8 bytes (it used to be silent).
#[test]
fn lone_surrogates_are_replaced_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = Doc::good();
    doc.strings = doc
        .strings
        .replace("\"Leaky\"", r#""Le\ud800aky""#)
        .replace("\"hello\"", r#""h\udc00el\ud83d\u0041lo\ud83d\ude00""#);
    let text = doc.text();
    let at = text.find(r#""Le\ud800aky""#).unwrap();
    let path = write(&dir, "lone-surrogates.heapsnapshot", text.as_bytes());
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("leakhound: warning: "), "{stderr}");
    assert!(lines[0].contains("lone-surrogates.heapsnapshot"), "{stderr}");
    assert!(
        lines[0].contains(&format!(
            "2 string(s) had lone UTF-16 surrogate escapes, replaced with U+FFFD (first at byte {at})"
        )),
        "{stderr}"
    );
    assert!(stdout.contains("3 nodes, 3 edges"), "{stdout}");
    assert!(stdout.contains("Le\u{FFFD}aky"), "{stdout}");
}

#[test]
fn control_characters_from_a_snapshot_never_reach_the_terminal() {
    // A class name that would retitle the window and clear the screen, and a C1 CSI.
    let mut doc = Doc::good();
    doc.strings = doc
        .strings
        .replace("\"Leaky\"", r#""Leaky\u001b]0;pwned\u0007\u001b[2J\u009b31m""#);
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "hostile.heapsnapshot", doc.text().as_bytes());
    let shown = "Leaky\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m";
    for args in [
        vec!["summary"],
        vec!["retainers", "--class", "Leaky\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg(&path)
            .output()
            .expect("run leakhound");
        let stdout = String::from_utf8(out.stdout).expect("UTF-8");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stdout.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{args:?}: a control character reached the terminal: {stdout:?}"
        );
        assert!(stdout.contains(shown), "{args:?}: the name is shown escaped: {stdout}");
    }
    // JSON keeps the exact name (JSON escapes control characters itself).
    let out = Command::new(BIN)
        .args(["summary", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = doc["summary"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["class_name"].as_str())
        .collect();
    assert!(
        names.contains(&"Leaky\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m"),
        "{names:?}"
    );
}

#[test]
fn json_output_gets_an_error_object_when_the_command_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.heapsnapshot");
    let not_json = write(&dir, "text.heapsnapshot", b"hello");
    let missing = missing.to_str().unwrap();
    let not_json = not_json.to_str().unwrap();
    for args in [
        vec!["summary", "--json", missing],
        vec!["stats", "--json", not_json],
        vec!["diff", "--json", missing, missing],
        vec!["leaks", "--json", missing, missing, missing],
        vec!["retainers", "--json", "--id", "@1", missing],
        // Refused by the command line itself, and by the hunt's settings.
        vec!["summary", "--json", "--top", "many", missing],
        vec!["hunt", "--json", "--phases", "1", "--", "node", "app.js"],
    ] {
        let out = Command::new(BIN).args(&args).output().expect("run leakhound");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON object ({e}): {:?}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(doc["schema_version"], 1, "{args:?}");
        assert_eq!(doc["kind"], "error", "{args:?}");
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty() && !error.starts_with("error:"), "{args:?}: {error:?}");
        assert!(
            stderr.contains(error.lines().next().unwrap_or_default()),
            "{args:?}: the same message: {stderr}"
        );
    }
}

#[test]
fn retainers_finds_a_class_in_another_case_or_names_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "small.heapsnapshot", Doc::good().text().as_bytes());
    let retainers = |args: &[&str]| {
        Command::new(BIN)
            .arg("retainers")
            .args(args)
            .arg(&path)
            .output()
            .expect("run leakhound")
    };
    let out = retainers(&["--class", "leaky"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Leaky"));
    assert!(
        stderr.contains("no class \"leaky\", showing \"Leaky\" (class names are case-sensitive)"),
        "{stderr}"
    );
    let out = retainers(&["--class", "Leeky"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no class \"Leeky\"; did you mean Leaky?"), "{stderr}");
    // Neither --id nor --class: the error names both.
    let out = retainers(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--id <ID>|--class <CLASS>"), "{stderr}");
}

#[test]
fn counts_of_one_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    // A fourth node, a Leaky nothing points to.
    let mut doc = Doc::good();
    doc.node_count = "4".into();
    doc.nodes.push_str("\n,3,2,7,8,0,0,0");
    let path = write(&dir, "one-unreachable.heapsnapshot", doc.text().as_bytes());
    let out = Command::new(BIN)
        .args(["summary", "--top", "1"])
        .arg(&path)
        .output()
        .expect("run leakhound");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("… 1 more class (--top 0 shows all)"), "{stdout}");
    assert!(stderr.contains("1 node is unreachable from the root"), "{stderr}");
}

#[test]
fn a_directory_given_as_a_snapshot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["summary"], vec!["leaks", "-", "-"]] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args[..1]).arg(dir.path());
        if args.len() > 1 {
            cmd.arg(dir.path()).arg(dir.path());
        }
        let out = cmd.output().expect("run leakhound");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot read {}", dir.path().display())) && stderr.contains("directory"),
            "the message names the path and says why: {stderr}"
        );
    }
}

#[test]
fn a_failed_attach_leaves_no_empty_folder() {
    // `sleep` is not node: the attach is refused, and the folders made for it go again.
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("snaps");
    for extra in [vec!["--out-dir".to_owned(), named.display().to_string()], vec![]] {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(["--quiet", "hunt", "--url", "http://127.0.0.1:9/", "--attach"])
            .arg(sleeper.id().to_string())
            .args(&extra)
            .output()
            .expect("run leakhound");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("is not node"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "folders left behind: {left:?}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
