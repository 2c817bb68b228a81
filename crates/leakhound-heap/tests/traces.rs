//! Allocation stacks (`trace_function_infos`, `trace_tree`, `trace_node_id`): read as
//! DevTools reads them, bounded, and every malformed section an error naming the section
//! and the byte offset. The corpus' `*-tracked` snapshots (real node 20 and 26 heaps
//! taken with allocation tracking on) keep DevTools' numbers in `parity.rs`, and their
//! every allocation stack equals the DevTools engine's here.

use leakhound_heap::{AllocationFrame, Section, SnapshotError, load};

const META: &str = r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"trace_node_fields":["id","function_info_index","count","size","children"],"sample_fields":["timestamp_us","last_assigned_id"],"location_fields":["object_index","script_id","line","column"]}"#;

// Strings: 0 "", 1 "(root)", 2 "Thing", 3 "makeThing", 4 "/app/a.js", 5 "handler", 6 "b".
const STRINGS: &str = r#"["","(root)","Thing","makeThing","/app/a.js","handler","b"]"#;
/// Three functions: the root's, `makeThing` at a.js:3:20, `handler` at a.js:9:1.
const FUNCTIONS: &str = "0,1,0,0,0,0,1,3,4,7,3,20,2,5,4,7,9,1";
/// root 1 → handler 2 → makeThing 3; root → makeThing 4 (another stack).
const TREE: &str = "[1,0,0,0,[2,2,1,16,[3,1,2,32,[]],4,1,1,16,[]]]";

/// A snapshot with a synthetic root (trace 0) and three objects allocated at traces 3,
/// 4 and 9 (an id not in the tree).
fn doc(function_count: usize, functions: &str, tree: &str) -> String {
    format!(
        "{{\"snapshot\":{{\"meta\":{META},\"node_count\":4,\"edge_count\":3,\"trace_function_count\":{function_count}}},\n\
         \"nodes\":[9,1,1,0,3,0,0\n,3,2,3,16,0,3,0\n,3,2,5,16,0,4,0\n,3,6,7,16,0,9,0],\n\
         \"edges\":[1,0,7\n,1,1,14\n,1,2,21],\n\
         \"trace_function_infos\":[{functions}],\n\
         \"trace_tree\":{tree},\n\
         \"samples\":[],\n\"locations\":[],\n\"strings\":{STRINGS}}}\n"
    )
}

fn error_of(text: &str) -> SnapshotError {
    load(text.as_bytes(), &mut |_| {}).expect_err("should fail")
}

#[test]
fn stacks_are_read_innermost_frame_first_without_the_root() {
    let loaded = load(doc(3, FUNCTIONS, TREE).as_bytes(), &mut |_| {}).unwrap();
    let s = &loaded.snapshot;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(s.has_allocation_traces());
    assert_eq!(s.trace_node_id(1), 3);
    let make = AllocationFrame {
        function_name: "makeThing",
        script_name: "/app/a.js",
        script_id: 7,
        line: 3,
        column: 20,
    };
    let handler = AllocationFrame {
        function_name: "handler",
        script_name: "/app/a.js",
        script_id: 7,
        line: 9,
        column: 1,
    };
    assert_eq!(s.allocation_stack(1), vec![make, handler]);
    assert_eq!(s.allocation_stack(2), vec![make]);
    // An id the tree does not have, and the root: no stack.
    assert!(s.allocation_stack(3).is_empty());
    assert!(s.allocation_stack(0).is_empty());
    assert!(s.trace_stack(1).is_empty());
}

#[test]
fn no_recorded_stack_keeps_no_column() {
    // Node 20 without tracking: trace_node_id fields are 0, both sections empty.
    let text = doc(0, "", "[]")
        .replace(",3,0\n", ",0,0\n")
        .replace(",4,0\n", ",0,0\n")
        .replace(",9,0]", ",0,0]");
    let s = load(text.as_bytes(), &mut |_| {}).unwrap().snapshot;
    assert!(!s.has_allocation_traces());
    assert_eq!(s.trace_node_id(1), 0);
    // Functions but a tree of the root alone: nothing to keep either.
    let s = load(doc(3, FUNCTIONS, "[1,0,0,0,[]]").as_bytes(), &mut |_| {})
        .unwrap()
        .snapshot;
    assert!(!s.has_allocation_traces());
    assert!(s.allocation_stack(1).is_empty());
}

fn assert_invalid(e: &SnapshotError, section: Section, offset: usize, message: &str) {
    match e {
        SnapshotError::Invalid {
            section: s,
            offset: o,
            message: m,
        }
        | SnapshotError::Syntax {
            section: s,
            offset: o,
            message: m,
        } => {
            assert_eq!(*s, section, "{e}");
            assert_eq!(*o, offset as u64, "{e}");
            assert!(m.contains(message), "{e}");
        }
        _ => panic!("{e}"),
    }
}

#[test]
fn malformed_trace_sections_are_errors_at_their_offset() {
    let text = doc(2, FUNCTIONS, TREE);
    let at = text.find(",2,5,4,7,9,1").unwrap() + 1;
    assert_invalid(
        &error_of(&text),
        Section::TraceFunctionInfos,
        at,
        "more values than trace_function_count 2",
    );

    let text = doc(4, FUNCTIONS, TREE);
    let e = error_of(&text);
    assert_invalid(
        &e,
        Section::TraceFunctionInfos,
        text.find("],\n\"trace_tree\"").unwrap() + 1,
        "18 values",
    );

    // A function naming a string past the table.
    let text = doc(3, &FUNCTIONS.replace("1,3,4,7,3,20", "1,3,40,7,3,20"), TREE);
    let at = text.find(",40,").unwrap() + 1;
    assert_invalid(&error_of(&text), Section::TraceFunctionInfos, at, "names string 40");

    // A trace node naming a function past the infos.
    let text = doc(3, FUNCTIONS, &TREE.replace("[3,1,2,32", "[3,5,2,32"));
    let at = text.find("[3,5,").unwrap() + 3;
    assert_invalid(&error_of(&text), Section::TraceTree, at, "names function 5");

    // Not a tree of 5-tuples.
    let text = doc(3, FUNCTIONS, "[1,0,0,0,[2,2,1,[]]]");
    let at = text.find("[2,2,1,[").unwrap() + 7;
    assert_invalid(&error_of(&text), Section::TraceTree, at, "expected an unsigned integer");
    let text = doc(3, FUNCTIONS, "[1,0,0,0,5]");
    let at = text.find("0,5]").unwrap() + 2;
    assert_invalid(&error_of(&text), Section::TraceTree, at, "expected '['");
    let text = doc(3, FUNCTIONS, "[1,0,0,-1,[]]");
    let at = text.find("-1").unwrap();
    assert_invalid(&error_of(&text), Section::TraceTree, at, "negative number");

    // Cut inside the tree: truncated there, in that section.
    let text = doc(3, FUNCTIONS, TREE);
    let cut = text.find("[3,1,2").unwrap() + 4;
    match error_of(&text[..cut]) {
        SnapshotError::Truncated { section, offset } => {
            assert_eq!(section, Section::TraceTree);
            assert_eq!(offset, cut as u64);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn trace_fields_are_found_by_name() {
    // children must come last; the others may move.
    let text = doc(3, FUNCTIONS, TREE).replace(
        r#""trace_node_fields":["id","function_info_index","count","size","children"]"#,
        r#""trace_node_fields":["size","function_info_index","id","children"]"#,
    );
    let text = text.replace(TREE, "[0,0,1,[16,2,2,[32,1,3,[]],16,1,4,[]]]");
    let s = load(text.as_bytes(), &mut |_| {}).unwrap().snapshot;
    assert_eq!(s.allocation_stack(1).len(), 2);
    assert_eq!(s.allocation_stack(1)[0].function_name, "makeThing");

    let text = doc(3, FUNCTIONS, TREE).replace(r#""count","size","children""#, r#""children","count","size""#);
    let e = error_of(&text);
    assert!(e.to_string().contains("must end with 'children'"), "{e}");
}

/// The corpus' tracked snapshots (node 20 and node 26, `tests/corpus/make-tracked.js`):
/// every leaked `Visit` was made by `recordVisit`, called from the request handler.
#[test]
fn corpus_tracked_snapshots_name_the_allocating_function() {
    use std::io::Read;
    for name in ["node20-tracked", "node26-tracked"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/corpus")
            .join(format!("{name}.heapsnapshot.gz"));
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let s = load(&bytes[..], &mut |_| {}).unwrap().snapshot;
        assert!(s.has_allocation_traces(), "{name}");
        let visits: Vec<u32> = (0..s.node_count() as u32)
            .filter(|&n| s.class(n).name == "Visit" && s.raw_name(n) == "Visit" && s.self_size(n) > 0)
            .filter(|&n| s.node_type(n) == leakhound_heap::NodeType::Object)
            .collect();
        assert_eq!(visits.len(), 100, "{name}");
        for n in visits {
            let stack = s.allocation_stack(n);
            assert!(stack.len() >= 2, "{name}: {stack:?}");
            assert_eq!(stack[0].function_name, "recordVisit", "{name}: {stack:?}");
            assert_eq!(stack[0].script_name, "[eval]", "{name}: {stack:?}");
            assert!(stack[0].line >= 1 && stack[0].column >= 1, "{name}: {stack:?}");
        }
    }
}

/// Every allocation stack of the corpus' tracked snapshots equals the real DevTools
/// engine's (`JSHeapSnapshot.allocationStack`, recorded by `tests/corpus/stacks.sh` as
/// `*-tracked.stacks.json.gz`), node by node, but for the tree's `(root)`, which DevTools
/// lists last and the engine leaves out; and the nodes with a stack are the same.
#[test]
fn corpus_stacks_match_devtools() {
    use std::io::Read;
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus");
    let gunzip = |name: &str| {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(corpus.join(name)).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    for name in ["node20-tracked", "node26-tracked"] {
        let s = load(&gunzip(&format!("{name}.heapsnapshot.gz"))[..], &mut |_| {})
            .unwrap()
            .snapshot;
        let golden: serde_json::Value = serde_json::from_slice(&gunzip(&format!("{name}.stacks.json.gz"))).unwrap();
        assert_eq!(golden["schema"], "leakhound-devtools-stacks/1");
        let nodes = golden["nodes"].as_array().unwrap();
        let ours_with = (0..s.node_count() as u32).filter(|&n| s.trace_node_id(n) != 0).count();
        assert_eq!(ours_with, nodes.len(), "{name}: nodes with a trace_node_id");
        let mut mismatches = Vec::new();
        for entry in nodes {
            let ordinal = entry[0].as_u64().unwrap() as u32;
            let mut theirs: Vec<(String, String, u32, u32, u32)> = entry[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f[0].as_str().unwrap().to_owned(),
                        f[1].as_str().unwrap().to_owned(),
                        f[2].as_u64().unwrap() as u32,
                        f[3].as_u64().unwrap() as u32,
                        f[4].as_u64().unwrap() as u32,
                    )
                })
                .collect();
            if theirs.last().is_some_and(|f| f.0 == "(root)") {
                theirs.pop();
            }
            let ours: Vec<(String, String, u32, u32, u32)> = s
                .allocation_stack(ordinal)
                .iter()
                .map(|f| {
                    (
                        f.function_name.to_owned(),
                        f.script_name.to_owned(),
                        f.script_id,
                        f.line,
                        f.column,
                    )
                })
                .collect();
            if ours != theirs && mismatches.len() < 5 {
                mismatches.push(format!("node {ordinal}: ours {ours:?}\n  devtools {theirs:?}"));
            }
        }
        assert!(mismatches.is_empty(), "{name}:\n{}", mismatches.join("\n"));
    }
}
