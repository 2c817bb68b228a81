//! The node, edge and location arrays take the row path when the file has V8's one row
//! per line: each buffer split in two halves, converted by the two sides of a
//! `rayon::join`. These tests build snapshots large enough for that path (several 4 MiB
//! buffers), load them in a one-thread and a two-thread rayon pool (the halves one after
//! the other, and side by side), and check both against the exact one-value loop, which
//! reads the same bytes with every line break turned into a space (same offsets, no rows
//! to split at): equal graphs, equal warnings, and equal errors at equal offsets wherever
//! a defect sits.

use leakhound_heap::{Analysis, HeapSnapshot, load_with};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// A V8-style snapshot: a root with `n - 1` children in a chain of objects, 7 node
/// fields, 3 edge fields, one row per line (`\n,` between rows).
fn snapshot_text(n: usize) -> String {
    let mut s = String::with_capacity(n * 60);
    s.push_str(
        r#"{"snapshot":{"meta":{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":["object_index","script_id","line","column"]},"#,
    );
    s.push_str(&format!(
        "\"node_count\":{n},\"edge_count\":{},\"trace_function_count\":0}},\n",
        2 * n - 3
    ));
    s.push_str("\"nodes\":[");
    for i in 0..n {
        if i > 0 {
            s.push_str("\n,");
        }
        let (ty, name, edges) = if i == 0 {
            (9, 0, n - 1)
        } else {
            (3, 1 + i % 5, if i + 1 < n { 1 } else { 0 })
        };
        s.push_str(&format!(
            "{ty},{name},{},{},{edges},0,{}",
            2 * i + 1,
            16 + i % 97,
            i % 3
        ));
    }
    s.push_str("],\n\"edges\":[");
    let mut first = true;
    let mut row = |s: &mut String, t: u32, name: usize, to: usize| {
        if !first {
            s.push_str("\n,");
        }
        first = false;
        s.push_str(&format!("{t},{name},{}", to * 7));
    };
    // The root's edges (element indexes; some past 2^28, which do not fit the packed
    // edge word), then each object's edge to the next.
    for i in 1..n {
        row(&mut s, 1, huge_index(i), i);
    }
    for i in 1..n - 1 {
        row(&mut s, 2, 6, i + 1);
    }
    // Locations of every third object, one row per line as V8 writes them.
    s.push_str("],\n\"locations\":[");
    let rows: Vec<String> = (1..n)
        .step_by(3)
        .map(|i| format!("{},{},{},{}", 7 * i, i % 50, i % 1000, i % 80))
        .collect();
    s.push_str(&rows.join("\n,"));
    s.push_str("],\n\"strings\":[\"\",\"A\",\"B\",\"C\",\"D\",\"E\",\"next\"]}");
    s
}

/// The element index of the root's edge to node `i`.
fn huge_index(i: usize) -> usize {
    if i.is_multiple_of(1009) { 4_000_000_000 + i } else { i }
}

fn load(text: &str) -> Result<(HeapSnapshot, Vec<String>), String> {
    load_with(text.as_bytes(), Analysis::Full, &mut |_| {})
        .map(|l| (l.snapshot, l.warnings.iter().map(|w| w.to_string()).collect()))
        .map_err(|e| e.to_string())
}

/// A local pool of `threads` workers: `install` runs a load's joins in it.
fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

/// One pool of one thread and one of two: each load in both.
fn pools() -> [(usize, ThreadPool); 2] {
    [(1, pool(1)), (2, pool(2))]
}

fn flat(text: &str) -> String {
    text.replace('\n', " ")
}

fn assert_same_graph(a: &HeapSnapshot, b: &HeapSnapshot) {
    assert_eq!(a.node_count(), b.node_count());
    assert_eq!(a.edge_count(), b.edge_count());
    for o in 0..a.node_count() as u32 {
        assert_eq!(a.id(o), b.id(o));
        assert_eq!(a.raw_name(o), b.raw_name(o));
        assert_eq!(a.self_size(o), b.self_size(o));
        assert_eq!(a.node_type(o), b.node_type(o));
        assert_eq!(a.detachedness(o), b.detachedness(o));
        assert_eq!(a.edges(o), b.edges(o));
        assert_eq!(a.retained_size(o), b.retained_size(o));
        assert_eq!(a.dominator(o), b.dominator(o));
        assert_eq!(a.location(o), b.location(o));
    }
    for e in 0..a.edge_count() as u32 {
        assert_eq!(a.edge_type(e), b.edge_type(e));
        assert_eq!(a.edge_name_or_index(e), b.edge_name_or_index(e));
        assert_eq!(a.edge_target(e), b.edge_target(e));
    }
}

const NODES: usize = 400_000;

#[test]
fn rows_on_one_and_two_threads_equal_the_exact_values() {
    let text = snapshot_text(NODES);
    assert!(text.len() > 16 << 20, "large enough for several buffers");
    let (b, wb) = load(&flat(&text)).expect("parses");
    for (threads, pool) in pools() {
        let (a, wa) = pool
            .install(|| load(&text))
            .unwrap_or_else(|e| panic!("{threads} threads: {e}"));
        assert_eq!(a.node_count(), NODES);
        assert_eq!(a.retained_size(a.root()), b.retained_size(b.root()));
        assert_same_graph(&a, &b);
        assert_eq!(wa, wb);
        let located = (0..a.node_count() as u32).filter(|&o| a.location(o).is_some()).count();
        assert_eq!(located, (NODES - 1).div_ceil(3), "every planted location read");
        let l = a.location(3001).expect("node 3001 has a location");
        assert_eq!((l.script_id, l.line, l.column), (1, 1, 41));
        // Element indexes past the packed edge word come back whole, on both paths.
        for e in [0u32, 1007, 1008, 2017, 400_000 - 2] {
            let want = huge_index(e as usize + 1);
            assert_eq!(a.edge_name_or_index(e) as usize, want, "edge {e}");
            assert_eq!(a.edge_label(e), format!("[{want}]"));
            assert_eq!(a.edge_type_name(e), "element");
        }
    }
}

/// Replaces the first occurrence of `from` after byte `after` with `to`.
fn patch(text: &str, after: usize, from: &str, to: &str) -> String {
    let at = after + text[after..].find(from).expect("pattern present");
    format!("{}{}{}", &text[..at], to, &text[at + from.len()..])
}

#[test]
fn defects_deep_in_the_arrays_give_the_same_error_at_the_same_offset() {
    let text = snapshot_text(NODES);
    let nodes = text.find("\"nodes\"").expect("nodes");
    let edges = text.find("\"edges\"").expect("edges");
    let mid_nodes = nodes + (edges - nodes) * 3 / 5;
    let mid_edges = edges + (text.len() - edges) * 2 / 3;
    let cases = [
        // A node type out of range, an edge type out of range.
        patch(&text, mid_nodes, "\n,3,", "\n,99"),
        patch(&text, mid_edges, "\n,2,", "\n,9,"),
        // An edge pointing past the node array (to_node is 7 × ordinal).
        patch(&text, mid_edges, "\n,2,6,", "\n,2,6,9999999"),
        // A negative number, a fraction, a stray letter.
        patch(&text, mid_nodes, ",0,", ",-0"),
        patch(&text, mid_edges, ",6,", ",6."),
        patch(&text, mid_nodes, ",0,", ",x,"),
        // A location value past 32 bits.
        patch(
            &text,
            text.find("\"locations\"").expect("locations") + 40_000,
            "\n,",
            "\n,99999999999",
        ),
        // A row split across lines (still valid JSON: the layout check must fall back).
        patch(&text, mid_nodes, "\n,", ",\n"),
    ];
    let pools = pools();
    for (k, bad) in cases.iter().enumerate() {
        let slow = load(&flat(bad)).map(|(s, w)| (s.node_count(), s.edge_count(), w));
        if k < 7 {
            assert!(slow.is_err(), "case {k} must be an error");
        } else {
            assert!(slow.is_ok(), "case {k} is a valid file");
        }
        for (threads, pool) in &pools {
            let fast = pool
                .install(|| load(bad))
                .map(|(s, w)| (s.node_count(), s.edge_count(), w));
            assert_eq!(fast, slow, "case {k}, {threads} threads");
        }
    }
}

#[test]
fn truncation_inside_the_arrays_is_reported_like_the_one_thread_path() {
    let text = snapshot_text(NODES);
    let pools = pools();
    for cut in [text.len() / 3, text.len() / 2, text.len() * 4 / 5] {
        let slow = load(&flat(&text[..cut])).map(|_| ());
        assert!(slow.is_err());
        for (threads, pool) in &pools {
            let fast = pool.install(|| load(&text[..cut])).map(|_| ());
            assert_eq!(fast, slow, "cut at {cut}, {threads} threads");
        }
    }
}

#[test]
fn loads_side_by_side_give_the_same_results() {
    // Two loads at once, in one two-thread pool (their joins share its workers) and on
    // two threads outside any pool (their joins go to the global pool): rounds run
    // whole on one thread or split, as the workers happen to be free.
    let text = snapshot_text(NODES);
    let nodes = text.find("\"nodes\"").expect("nodes");
    let edges = text.find("\"edges\"").expect("edges");
    let bad_edges = patch(&text, edges + (text.len() - edges) / 2, "\n,2,6,", "\n,2,6,9999999");
    let bad_nodes = patch(&text, nodes + (edges - nodes) / 2, "\n,3,", "\n,99");
    let (slow, _) = load(&flat(&text)).expect("parses");
    let two = pool(2);
    for bad in [&text, &bad_edges, &bad_nodes] {
        let expected = load(&flat(bad)).map(|(s, w)| (s.node_count(), s.edge_count(), w));
        let in_pool = two.install(|| rayon::join(|| load(bad), || load(bad)));
        let outside = std::thread::scope(|scope| {
            let h = scope.spawn(|| load(bad));
            let a = load(bad);
            (a, h.join().expect("no panic"))
        });
        for got in [in_pool.0, in_pool.1, outside.0, outside.1] {
            match got {
                Ok((s, w)) => {
                    assert_same_graph(&s, &slow);
                    assert_eq!(Ok((s.node_count(), s.edge_count(), w)), expected);
                }
                Err(e) => assert_eq!(Err(e), expected),
            }
        }
    }
}
