#!/usr/bin/env python3
"""Writes the fuzz seeds in this directory: small hand-built heap snapshots covering the
meta variants (Node 20's 7 node fields, newest V8's 6 without trace_node_id, no
detachedness, 5-field location rows, reordered fields, root_index), plus a minimised
cut of the real `tests/corpus/idle.heapsnapshot.gz` (its first 160 nodes in BFS order
from the root, with the edges among them), and seeds just inside the caps on what the
parser reads (header size, skipped nesting, locations per node).

Run from anywhere: `python3 fuzz/seeds/make_seeds.py`. Output is deterministic.
The files are named *.json because the repository ignores *.heapsnapshot.
"""

import gzip
import json
import os
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NODE_TYPES = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number",
              "native", "synthetic", "concatenated string", "sliced string", "symbol",
              "bigint", "object shape"]
EDGE_TYPES = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
INDEX_EDGES = {"element", "hidden"}

WEAKMAP = "1 / part of key (Object @9) -> value (Leaky @15) pair in WeakMap (table @11)"

# A small Node-like heap: (type, name, id, self_size, detachedness, [(edge type, name, to)]).
# Edge names are strings, or ints for element/hidden edges; `to` is a node ordinal.
GRAPH = [
    ("synthetic", "", 1, 0, 0, [("element", 1, 1), ("shortcut", "2", 3)]),
    ("synthetic", "(GC roots)", 3, 0, 0, [("element", 1, 2)]),
    ("synthetic", "(Strong roots)", 5, 0, 0, [("internal", "x", 3), ("hidden", 0, 13)]),
    ("object", "global", 7, 40, 0, [("property", "a", 4), ("property", "b", 5),
                                     ("property", "fn", 8), ("property", "x", 9),
                                     ("property", "y", 15), ("internal", "map", 13),
                                     ("property", "__proto__", 4)]),
    ("object", "Object", 9, 24, 0, [("property", "a", 6), ("property", "b", 7),
                                     ("weak", "2", 12)]),
    ("object", "Array", 11, 32, 0, [("internal", "elements", 10), ("internal", WEAKMAP, 7)]),
    ("string", "hello", 13, 16, 0, []),
    ("object", "Leaky", 15, 20, 0, [("property", "a", 12), ("weak", "x", 4)]),
    ("closure", "fn", 17, 32, 0, [("internal", "context", 11), ("internal", "shared", 13)]),
    ("concatenated string", "(concatenated string)", 19, 32, 0,
     [("internal", "first", 6), ("internal", "second", 14)]),
    ("array", "(object elements)", 21, 64, 0, [("element", 0, 4), ("hidden", 1, 6),
                                                ("element", 2, 9)]),
    ("hidden", "system / Context", 23, 48, 0, [("context", "x", 4), ("context", "y", 11)]),
    ("native", "<div class=\"a\">", 24, 100, 2, [("internal", "child", 16)]),
    ("array", "(map descriptors)", 25, 8, 0, [("internal", "0", 6), ("internal", "1", 14),
                                               ("internal", "2", 7)]),
    ("string", "world \u00e9\u4e16 \U0001F600", 27, 16, 0, []),
    ("object", "Object", 29, 24, 0, [("property", "a", 6), ("property", "b", 14)]),
    ("native", "Node / BindingData", 26, 12, 1, []),
    # Unreachable, in a cycle with itself and a neighbour.
    ("object", "Orphan", 31, 8, 0, [("property", "next", 18), ("property", "self", 17)]),
    ("object", "Orphan", 33, 8, 0, [("property", "prev", 17)]),
]

LOCATIONS = [(7, 3, 0, 25), (8, 3, 4, 2), (17, 4, 1, 0), (7, 3, 0, 26)]


class Strings:
    def __init__(self):
        self.list = ["<dummy>"]
        self.index = {"<dummy>": 0}

    def __call__(self, s):
        if s not in self.index:
            self.index[s] = len(self.list)
            self.list.append(s)
        return self.index[s]


def dump(path, header, nodes, node_stride, edges, locations, loc_stride, strings,
         extra_sections=None, key_order=None):
    def rows(values, stride):
        return "\n,".join(",".join(str(v) for v in values[i:i + stride])
                          for i in range(0, len(values), stride))
    parts = {
        "snapshot": json.dumps(header, separators=(",", ":")),
        "nodes": "[" + rows(nodes, node_stride) + "]",
        "edges": "[" + rows(edges, 3) + "]",
        "trace_function_infos": "[]",
        "trace_tree": "[]",
        "samples": "[]",
        "locations": "[" + rows(locations, max(loc_stride, 1)) + "]",
        "strings": "[" + "\n,".join(json.dumps(s, ensure_ascii=True) for s in strings) + "]",
    }
    if extra_sections:
        parts.update(extra_sections)
    order = key_order or ["snapshot", "nodes", "edges", "trace_function_infos", "trace_tree",
                          "samples", "locations", "strings"]
    text = "{" + ",\n".join('"%s":%s' % (k, parts[k]) for k in order if k in parts) + "}\n"
    with open(os.path.join(HERE, path), "w") as f:
        f.write(text)


def build(path, node_fields, location_fields, graph=GRAPH, locations=LOCATIONS,
          extra_header=None, root_index=None, key_order=None, node_types=NODE_TYPES):
    st = Strings()
    stride = len(node_fields)
    nodes, edges = [], []
    for (t, name, nid, size, det, out) in graph:
        vals = {"type": node_types.index(t), "name": st(name), "id": nid, "self_size": size,
                "edge_count": len(out), "trace_node_id": 0, "detachedness": det}
        nodes += [vals[f] for f in node_fields]
        for (et, en, to) in out:
            e = {"type": EDGE_TYPES.index(et),
                 "name_or_index": en if et in INDEX_EDGES else st(en),
                 "to_node": to * stride}
            edges += [e["type"], e["name_or_index"], e["to_node"]]
    locs = []
    for (obj, script, line, col) in locations:
        row = {"object_index": obj * stride, "script_id": script, "script_object_index": 0,
               "line": line, "column": col}
        locs += [row[f] for f in location_fields]
    meta = {
        "node_fields": node_fields,
        "node_types": [node_types if f == "type" else "string" if f == "name" else "number"
                       for f in node_fields],
        "edge_fields": ["type", "name_or_index", "to_node"],
        "edge_types": [EDGE_TYPES, "string_or_number", "node"],
        "trace_function_info_fields": ["function_id", "name", "script_name", "script_id",
                                       "line", "column"],
        "trace_node_fields": ["id", "function_info_index", "count", "size", "children"],
        "sample_fields": ["timestamp_us", "last_assigned_id"],
        "location_fields": location_fields,
    }
    header = {"meta": meta, "node_count": len(graph), "edge_count": len(edges) // 3,
              "trace_function_count": 0}
    if root_index is not None:
        header["root_index"] = root_index * stride
    if extra_header:
        header.update(extra_header)
    dump(path, header, nodes, stride, edges, locs, len(location_fields), st.list,
         key_order=key_order)


NODE20 = ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"]
NEWEST = ["type", "name", "id", "self_size", "edge_count", "detachedness"]
NO_DETACH = ["type", "name", "id", "self_size", "edge_count", "trace_node_id"]
LOC4 = ["object_index", "script_id", "line", "column"]
LOC5 = ["object_index", "script_id", "script_object_index", "line", "column"]


def minimised_real(path, keep=160):
    with gzip.open(os.path.join(ROOT, "tests/corpus/idle.heapsnapshot.gz")) as f:
        snap = json.load(f)
    meta = snap["snapshot"]["meta"]
    nf = meta["node_fields"]
    stride = len(nf)
    nodes, edges, strings = snap["nodes"], snap["edges"], snap["strings"]
    n = len(nodes) // stride
    ec = nf.index("edge_count")
    first = [0]
    for k in range(n):
        first.append(first[-1] + nodes[k * stride + ec])
    etypes = meta["edge_types"][0]
    # BFS from the root, keeping the first `keep` nodes.
    order, seen, q = [], {0}, deque([0])
    while q and len(order) < keep:
        k = q.popleft()
        order.append(k)
        for e in range(first[k], first[k + 1]):
            t = edges[e * 3 + 2] // stride
            if t not in seen:
                seen.add(t)
                q.append(t)
    new_of = {k: i for i, k in enumerate(order)}
    st = Strings()

    def short(s):
        return s[:40]
    out_nodes, out_edges = [], []
    for k in order:
        row = nodes[k * stride:(k + 1) * stride]
        kept = [e for e in range(first[k], first[k + 1])
                if edges[e * 3 + 2] // stride in new_of]
        row = list(row)
        row[nf.index("name")] = st(short(strings[row[nf.index("name")]]))
        row[ec] = len(kept)
        out_nodes += row
        for e in kept:
            t, name, to = edges[e * 3:e * 3 + 3]
            if etypes[t] not in INDEX_EDGES:
                name = st(short(strings[name]))
            out_edges += [t, name, new_of[to // stride] * stride]
    header = dict(snap["snapshot"])
    header["node_count"] = len(order)
    header["edge_count"] = len(out_edges) // 3
    dump(path, header, out_nodes, stride, out_edges, [], len(meta["location_fields"]), st.list)


def main():
    build("node20.json", NODE20, LOC4)
    build("newest-v8-6-fields.json", NEWEST, LOC5, extra_header={"extra_native_bytes": 4096})
    build("no-detachedness.json", NO_DETACH, LOC4,
          graph=[g if g[1] != "<div class=\"a\">" else
                 ("native", "Detached <div>", 24, 100, 0, g[5]) for g in GRAPH])
    # Fields in another order, and a root that is not node 0 (ordinals 0 and 1 swapped).
    swapped = []
    for (t, name, nid, size, det, out) in [GRAPH[1], GRAPH[0]] + GRAPH[2:]:
        swapped.append((t, name, nid, size, det,
                        [(et, en, {0: 1, 1: 0}.get(to, to)) for (et, en, to) in out]))
    build("reordered-fields-root-index.json",
          ["name", "edge_count", "self_size", "id", "type"],
          ["line", "column", "object_index", "script_id"],
          graph=swapped, locations=[(8, 1, 2, 3)], root_index=1)
    build("tiny-root-only.json", NODE20, LOC4,
          graph=[("synthetic", "", 1, 0, 0, [])], locations=[])
    build("no-locations-section.json", NEWEST, LOC4, locations=[],
          key_order=["snapshot", "nodes", "edges", "strings"])
    build("unknown-types.json", NODE20, LOC4, locations=[],
          node_types=NODE_TYPES + ["wasm object", "future type"],
          graph=[("synthetic", "", 1, 0, 0, [("shortcut", "2", 1), ("element", 1, 2)]),
                 ("future type", "global", 7, 40, 0, [("property", "a", 3)]),
                 ("wasm object", "(GC roots)", 3, 0, 0, [("internal", "x", 1)]),
                 ("object", "Object", 9, 24, 0, [("property", "self", 3)])])
    minimised_real("idle-minimised.json")
    # Invalid UTF-8 inside a string: bytes the parser must replace with U+FFFD.
    with open(os.path.join(HERE, "node20.json"), "rb") as f:
        data = f.read()
    data = data.replace(b'"hello"', b'"hel\xff\xfelo"', 1)
    with open(os.path.join(HERE, "invalid-utf8.json"), "wb") as f:
        f.write(data)
    bounds_seeds()


def nested_trace_tree(levels):
    """A trace_tree of `levels` nodes, each the only child of the one before:
    [id, function_info_index, count, size, [children]] nests one level per node."""
    text = "[]"
    for level in range(levels, 0, -1):
        text = "[%d,%d,1,16,%s]" % (level, level % 2, text)
    return text


def bounds_seeds():
    """Seeds just inside the caps that keep input from exhausting memory (smaller under
    --cfg fuzzing: a 4 KiB header, 256 levels of skipped nesting), so mutations cross
    them; and lone surrogate escapes (replaced with U+FFFD, with a warning)."""
    with open(os.path.join(HERE, "node20.json"), "rb") as f:
        node20 = f.read()
    # Lone surrogates: a high one alone, a low one alone, a high one before another
    # escape; and a valid pair.
    data = node20.replace(b'"hello"', b'"h\\ud800el\\udc00lo\\ud83d\\u0041\\ud83d\\ude00"', 1)
    with open(os.path.join(HERE, "lone-surrogates.json"), "wb") as f:
        f.write(data)
    # Skipped sections with everything a skip must step over, nested 200 levels deep.
    data = node20.replace(b'"trace_tree":[]', b'"trace_tree":' + nested_trace_tree(200).encode(), 1)
    data = data.replace(b'"trace_function_infos":[]',
                        b'"trace_function_infos":[1,2,3,0,10,5,2,4,3,0,11,1]', 1)
    data = data.replace(b'"samples":[]', b'"samples":[0,1,150,19]', 1)
    data = data.replace(b'"locations"', b'"future_section":{"k":"a\\"b\\u00e9\\ud800",'
                        b'"n":[1.5e3,-2,true,false,null,{}]},\n"locations"', 1)
    with open(os.path.join(HERE, "deep-skipped-sections.json"), "wb") as f:
        f.write(data)
    # A header of about 3.5 KB (an extra list and a title), under the fuzzing cap of 4 KiB.
    build("long-header.json", NODE20, LOC4,
          extra_header={"title": "a snapshot title \u00e9 " * 8, "future_list": list(range(640))})
    # One location per node: the most the locations array may hold.
    build("locations-every-node.json", NODE20, LOC4,
          locations=[(k, 3, k, 2 * k) for k in range(len(GRAPH))])


if __name__ == "__main__":
    main()
