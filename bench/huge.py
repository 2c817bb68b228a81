#!/usr/bin/env python3
"""Checks that leakhound reads snapshots past 4 GiB with more than 2^31 bytes of strings.

    python3 bench/huge.py [--dir /tmp/leakhound-bench] [--gib 4.5] [--keep]

Writes a V8-layout snapshot (Node 20 meta) whose `strings` section holds `--gib` GiB of
1 MiB strings, followed by the two class names its objects use, so those names sit past
4 GiB both in the file and in leakhound's string arena. Then:

1. `leakhound summary FILE --json --top 0` must show exactly the planted classes, counts
   and sizes (a 32-bit string offset anywhere would misname them);
2. the same file cut one byte short must fail with exit code 2 and a one-line error
   naming a byte offset past 2^32.

Prints one line per check and exits non-zero on the first failure. Not part of the test
suite: it writes ~2 × 4.5 GB and needs ~5 GB of RAM.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20

META = {
    "node_fields": ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"],
    "node_types": [
        ["hidden", "array", "string", "object", "code", "closure", "regexp", "number", "native",
         "synthetic", "concatenated string", "sliced string", "symbol", "bigint", "object shape"],
        "string", "number", "number", "number", "number", "number",
    ],
    "edge_fields": ["type", "name_or_index", "to_node"],
    "edge_types": [["context", "element", "property", "internal", "hidden", "shortcut", "weak"],
                   "string_or_number", "node"],
    "trace_function_info_fields": [], "trace_node_fields": [], "sample_fields": [],
    "location_fields": ["object_index", "script_id", "line", "column"],
}


def write_snapshot(path, gib, a_count, b_count):
    big = int(gib * 1024)  # number of 1 MiB strings
    n = 1 + a_count + b_count
    name_a = 1 + big          # string indexes: "" then the big ones, then the names
    name_b = 2 + big
    with open(path, "wb") as f:
        head = {"meta": META, "node_count": n, "edge_count": n - 1, "trace_function_count": 0}
        f.write(b'{"snapshot":' + json.dumps(head).encode() + b',\n"nodes":[')
        rows = ["9,0,1,0,%d,0,0" % (n - 1)]
        for i in range(1, n):
            name, size = (name_a, 32) if i <= a_count else (name_b, 48)
            rows.append("3,%d,%d,%d,0,0,0" % (name, 2 * i + 1, size))
        f.write("\n,".join(rows).encode())
        f.write(b'],\n"edges":[')
        f.write("\n,".join("1,%d,%d" % (i - 1, 7 * i) for i in range(1, n)).encode())
        f.write(b'],\n"trace_function_infos":[],\n"trace_tree":[],\n"samples":[],\n"locations":[],\n"strings":[""')
        chunk = b',\n"' + b"x" * (MIB - 2) + b'\\u00e9"'  # 1 MiB - 2 bytes + é (2 UTF-8 bytes)
        for _ in range(big):
            f.write(chunk)
        f.write(b',\n"HugeClassA",\n"HugeClassB"]}')
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/tmp") + "/leakhound-bench")
    ap.add_argument("--gib", type=float, default=4.5)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--leakhound", default=os.path.join(ROOT, "target", "release", "leakhound"))
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, "huge.heapsnapshot")
    a_count, b_count = 1000, 500
    t = time.time()
    size = write_snapshot(path, args.gib, a_count, b_count)
    print("wrote %s: %.2f GiB (%d bytes) in %.1f s" % (path, size / 2**30, size, time.time() - t))
    ok = True
    try:
        t = time.time()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", args.leakhound, "--quiet", "summary", path, "--json", "--top", "0"],
                           capture_output=True, text=True)
        wall = time.time() - t
        rss_kb = int(p.stderr.strip().splitlines()[-1]) if p.stderr.strip() else 0
        if p.returncode != 0:
            print("FAIL summary exit %d: %s" % (p.returncode, p.stderr.strip()[:500]))
            return 1
        rows = {r["class_name"]: r for r in json.loads(p.stdout)["summary"]}
        want = {"HugeClassA": (a_count, 32 * a_count), "HugeClassB": (b_count, 48 * b_count)}
        got = {k: (rows[k]["count"], rows[k]["self_size_bytes"]) for k in want if k in rows}
        extra = sorted(set(rows) - set(want))
        good = got == want and not extra
        ok &= good
        print("%s summary: %s, other classes %s; %.1f s, peak RSS %.2f GiB" %
              ("ok  " if good else "FAIL", got, extra, wall, rss_kb / 2**20))
        # Cut one byte short: the error names a byte offset past 2^32.
        with open(path, "r+b") as f:
            f.truncate(size - 1)
        p = subprocess.run([args.leakhound, "--quiet", "summary", path], capture_output=True, text=True)
        msg = p.stderr.strip()
        offsets = [int(w.rstrip(",:)")) for w in msg.replace("offset", " ").split() if w.rstrip(",:)").isdigit()]
        good = p.returncode == 2 and any(o > 2**32 for o in offsets) and "\n" not in msg
        ok &= good
        print("%s truncated: exit %d, %r" % ("ok  " if good else "FAIL", p.returncode, msg[:300]))
    finally:
        if not args.keep:
            os.remove(path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
