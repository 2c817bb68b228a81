#!/usr/bin/env python3
"""What `hunt --track-allocations` and `--sample-allocations` cost the app: the same hunt of the
same server with neither, with tracking, and with sampling, round robin (each round starts one
variant later), reading from each hunt's JSON the load phases' requests/s and p99 latency (both
phases are under tracking / sampling: they start at the baseline) and the app's peak RSS and
heapUsed over the load phases (the memory samples before the calm-down).

    python3 bench/alloc_cost.py [--leakhound BIN] [--rounds 3] [--requests 5000] [--app FILE]

Default app: crates/leakhound/tests/apps/no_leak.js (50 small objects of garbage per request,
a bounded ring buffer), default load: leakhound's built-in HTTP load, 10 connections.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VARIANTS = [("neither", []), ("track", ["--track-allocations"]), ("sample", ["--sample-allocations"])]


def hunt(binary, app, requests, flags):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [binary, "hunt", "--json", "--requests", str(requests), "--warmup", "500", "--phases", "2",
               "--gc-interval-ms", "0", "--calm-down-ms", "200", "--app-output", "hide",
               "--out-dir", os.path.join(tmp, "out"), *flags, "--", "node", app]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode not in (0, 1, 3):
            sys.exit(f"hunt failed ({p.returncode}): {p.stderr[-2000:]}")
        doc = json.loads(p.stdout)
    loads = [l for l in doc["load"] if l["phase"].startswith("load")]
    calm = next((ph["start_ms"] for ph in doc["phases"] if ph["name"] == "calm-down"), float("inf"))
    first = next(ph["start_ms"] for ph in doc["phases"] if ph["name"].startswith("load"))
    mem = [m for m in doc["memory"] if first <= m["t_ms"] < calm]
    return {
        "rps": statistics.mean(l["requests_per_s"] for l in loads),
        "p99": statistics.mean(l["latency_p99_ms"] for l in loads),
        "rss": max(m["rss_bytes"] for m in mem) / 2**20,
        "heap": max(m["heap_used_bytes"] for m in mem) / 2**20,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--leakhound", default=os.path.join(ROOT, "target/release/leakhound"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--app", default=os.path.join(ROOT, "crates/leakhound/tests/apps/no_leak.js"))
    a = ap.parse_args()
    results = {name: [] for name, _ in VARIANTS}
    for r in range(a.rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for name, flags in order:
            m = hunt(a.leakhound, a.app, a.requests, flags)
            results[name].append(m)
            print(f"round {r + 1} {name:8} {m['rps']:8.0f} req/s  p99 {m['p99']:6.1f} ms  "
                  f"peak rss {m['rss']:6.1f} MiB  heapUsed {m['heap']:6.1f} MiB", flush=True)
    base = {k: statistics.median(x[k] for x in results["neither"]) for k in ("rps", "p99", "rss", "heap")}
    print("\n| variant | req/s (median) | vs neither | p99 ms | peak RSS MiB | vs neither | peak heapUsed MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in VARIANTS:
        med = {k: statistics.median(x[k] for x in results[name]) for k in ("rps", "p99", "rss", "heap")}
        print(f"| {name} | {med['rps']:.0f} | {med['rps'] / base['rps']:.2f}× | {med['p99']:.1f} | "
              f"{med['rss']:.1f} | {med['rss'] / base['rss']:.2f}× | {med['heap']:.1f} |")


if __name__ == "__main__":
    main()
