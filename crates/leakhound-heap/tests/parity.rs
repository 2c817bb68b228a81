//! Parity with the real DevTools engine: every snapshot of the corpus (`tests/corpus`,
//! made by `tests/corpus/make.js`, golden JSON from `../shared/oracle/devtools/golden.sh
//! --nodes`) must give, node by node, the class, adjusted self size, retained size,
//! distance and immediate dominator DevTools gives, and the same Summary, Comparison,
//! Retainers, totals, statistics and interface definitions.
//!
//! Extra snapshots can be checked with `LEAKHOUND_PARITY_EXTRA=snap.heapsnapshot:golden.json`.

use std::io::Read;
use std::path::{Path, PathBuf};

use leakhound_heap::{HeapSnapshot, compare, display_name, load, retainers, summary};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

fn read_maybe_gz(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

fn load_snapshot(path: &Path) -> HeapSnapshot {
    let bytes = read_maybe_gz(path);
    load(&bytes[..], &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .snapshot
}

struct Mismatches {
    what: String,
    lines: Vec<String>,
    total: usize,
}

impl Mismatches {
    fn new(what: &str) -> Self {
        Mismatches {
            what: what.to_owned(),
            lines: Vec::new(),
            total: 0,
        }
    }
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, label: impl FnOnce() -> String, ours: T, theirs: T) {
        if ours != theirs {
            self.total += 1;
            if self.lines.len() < 15 {
                self.lines
                    .push(format!("{}: ours {:?} devtools {:?}", label(), ours, theirs));
            }
        }
    }
    fn finish(self) -> Result<(), String> {
        if self.total == 0 {
            Ok(())
        } else {
            Err(format!(
                "{}: {} mismatches\n  {}",
                self.what,
                self.total,
                self.lines.join("\n  ")
            ))
        }
    }
}

fn check_one(snapshot_path: &Path, golden_path: &Path, base_path: Option<&Path>) -> Result<(), String> {
    let s = load_snapshot(snapshot_path);
    let golden: Value = serde_json::from_slice(&read_maybe_gz(golden_path)).expect("golden json");
    let name = snapshot_path.file_name().unwrap().to_string_lossy().to_string();
    let mut m = Mismatches::new(&name);

    // Totals and statistics.
    let g = &golden["snapshot"];
    m.check(
        || "node_count".into(),
        s.node_count() as u64,
        g["node_count"].as_u64().unwrap(),
    );
    m.check(
        || "edge_count".into(),
        s.edge_count() as u64,
        g["edge_count"].as_u64().unwrap(),
    );
    m.check(
        || "root_ordinal".into(),
        s.root() as u64,
        g["root_ordinal"].as_u64().unwrap(),
    );
    m.check(
        || "total_size".into(),
        s.total_size_bytes(),
        g["total_size_bytes"].as_u64().unwrap(),
    );
    m.check(
        || "max_js_object_id".into(),
        s.max_js_object_id() as u64,
        g["max_js_object_id"].as_u64().unwrap(),
    );
    let st = s.statistics();
    let gs = &g["statistics"];
    for (k, v) in [
        ("total_bytes", st.total_bytes),
        ("v8heap_bytes", st.v8heap_bytes),
        ("code_bytes", st.code_bytes),
        ("strings_bytes", st.strings_bytes),
        ("js_arrays_bytes", st.js_arrays_bytes),
        ("system_bytes", st.system_bytes),
        ("native_bytes", st.native_bytes),
        ("typed_arrays_bytes", st.typed_arrays_bytes),
    ] {
        m.check(|| format!("statistics.{k}"), v, gs[k].as_u64().unwrap());
    }
    let defs: Vec<(String, Vec<String>)> = s
        .interface_definitions()
        .iter()
        .map(|d| (d.name.clone(), d.properties.clone()))
        .collect();
    let gdefs: Vec<(String, Vec<String>)> = g["interface_definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["properties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    m.check(|| "interface_definitions".into(), defs, gdefs);

    // Per node.
    if let Some(nodes) = golden.get("nodes") {
        let table: Vec<(String, String)> = nodes["class_table"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_str().unwrap().to_owned()))
            .collect();
        let arr = |k: &str| -> Vec<i64> {
            nodes[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        };
        let (ids, class, selfs, rets, dists, doms) = (
            arr("id"),
            arr("class"),
            arr("self_size_bytes"),
            arr("retained_size_bytes"),
            arr("distance"),
            arr("dominator"),
        );
        for o in 0..s.node_count() {
            let n = o as u32;
            m.check(|| format!("node {o} id"), s.id(n) as i64, ids[o]);
            let c = s.class(n);
            let (gname, gkey) = &table[class[o] as usize];
            m.check(
                || format!("node {o} (@{}) class", s.id(n)),
                (c.name.clone(), c.key()),
                (gname.clone(), gkey.clone()),
            );
            m.check(
                || format!("node {o} (@{}) self", s.id(n)),
                s.self_size(n) as i64,
                selfs[o],
            );
            m.check(
                || format!("node {o} (@{}) retained", s.id(n)),
                s.retained_size(n) as i64,
                rets[o],
            );
            m.check(
                || format!("node {o} (@{}) distance", s.id(n)),
                s.distance(n) as i64,
                dists[o],
            );
            m.check(
                || format!("node {o} (@{}) dominator", s.id(n)),
                s.dominator(n) as i64,
                doms[o],
            );
        }
    }

    // Summary rows, in order.
    let ours: Vec<Value> = summary(&s)
        .iter()
        .map(|r| {
            serde_json::json!({"class_name": r.class_name, "class_key": r.class_key, "count": r.count,
            "self_size_bytes": r.self_size_bytes, "retained_size_bytes": r.retained_size_bytes, "distance": r.distance})
        })
        .collect();
    let theirs = golden["summary"].as_array().unwrap();
    m.check(|| "summary row count".into(), ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        m.check(|| format!("summary row {i}"), a, b);
    }

    // Retainers lists.
    for entry in golden["retainers"].as_array().unwrap() {
        let o = entry["ordinal"].as_u64().unwrap() as u32;
        m.check(
            || format!("retainers of {o}: name"),
            display_name(&s, o),
            entry["name"].as_str().unwrap().to_owned(),
        );
        let ours: Vec<Value> = retainers(&s, o, None)
            .iter()
            .map(|r| {
                serde_json::json!({"ordinal": r.from, "id": s.id(r.from), "name": display_name(&s, r.from),
                "node_type": s.node_type_name(r.from), "edge_type": s.edge_type_name(r.edge),
                "edge_name": s.edge_name(r.edge), "distance": r.distance})
            })
            .collect();
        let theirs = entry["retainers"].as_array().unwrap();
        m.check(|| format!("retainers of {o}: count"), ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            m.check(|| format!("retainers of {o}: row {i}"), a, b);
        }
    }

    // Comparison rows, in order.
    if let (Some(base_path), Some(rows)) = (base_path, golden["comparison"].as_array()) {
        let base = load_snapshot(base_path);
        let ours: Vec<Value> = compare(&s, &base)
            .iter()
            .map(|r| {
                serde_json::json!({"class_name": r.class_name, "class_key": r.class_key, "new_count": r.new_count,
                "deleted_count": r.deleted_count, "delta_count": r.delta_count, "alloc_size_bytes": r.alloc_size_bytes,
                "freed_size_bytes": r.freed_size_bytes, "size_delta_bytes": r.size_delta_bytes})
            })
            .collect();
        m.check(|| "comparison row count".into(), ours.len(), rows.len());
        for (i, (a, b)) in ours.iter().zip(rows).enumerate() {
            m.check(|| format!("comparison row {i}"), a, b);
        }
    }
    m.finish()
}

#[test]
fn corpus_matches_devtools_bit_for_bit() {
    let dir = corpus_dir();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("tests/corpus/manifest.json")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in manifest.as_array().expect("manifest is a list") {
        let golden = entry["golden"].as_str();
        let snapshot = entry["snapshot"].as_str();
        let (Some(golden), Some(snapshot)) = (golden, snapshot) else {
            continue;
        };
        let base = entry["base"].as_str().map(|b| dir.join(b));
        if let Err(e) = check_one(&dir.join(snapshot), &dir.join(golden), base.as_deref()) {
            failures.push(e);
        }
        checked += 1;
    }
    if let Ok(extra) = std::env::var("LEAKHOUND_PARITY_EXTRA") {
        for pair in extra.split(',') {
            let (snap, golden) = pair.split_once(':').expect("snap:golden");
            if let Err(e) = check_one(Path::new(snap), Path::new(golden), None) {
                failures.push(e);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "the corpus should hold several snapshots, found {checked}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
