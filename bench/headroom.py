#!/usr/bin/env python3
"""What writing a heap snapshot costs the app in resident memory (the headroom model).

For each CASE (KIND:MB), starts `node --expose-gc bench/headroom-app.js KIND MB` in a fresh
memory cgroup of its own (a safety net: the app is OOM-killed past --limit-gb instead of
pressing the machine), waits for its ready line, then ROUNDS times:

  1. resets the app's peak RSS (`echo 5 > /proc/PID/clear_refs`) and the cgroup's peak
     (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`, when writable);
  2. reads VmRSS (before) from /proc/PID/status;
  3. runs `leakhound snapshot --pid PID -o FILE` (attach, GC, the snapshot the way a hunt
     takes it: node writes it itself with v8.writeHeapSnapshot), with --ignore-headroom when
     the binary has it (the check this feeds must not refuse the measurement);
  4. reads VmHWM (the peak) and VmRSS (after), and the cgroup's peak;
  5. reads node_count and edge_count from the snapshot's header, and its size; deletes it.

Extra RSS while writing = VmHWM - VmRSS before. The table also shows the first-snapshot
estimate of crates/leakhound-inspector/src/headroom.rs for the heap (its constants are
copied below: keep them in step). Needs root (cgroup, clear_refs), Linux, node.

    python3 bench/headroom.py                                  # the default cases, 2 rounds
    python3 bench/headroom.py --cases small:50,world:200 --rounds 1
    python3 bench/headroom.py --json /tmp/headroom.json        # raw numbers too
    python3 bench/headroom.py --stream --cases world:200       # leakhound's streamed fallback

The table goes to stdout as Markdown (bench/RESULTS.md, "Snapshot capture cost").
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

IGNORE_HEADROOM = []
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CASES = ("small:5,small:50,small:200,small:800,small-str:50,small-str:200,small-str:600,"
                 "world:50,world:200,world:800,array1:50,array1:100,map:50,map:100,dict:50,sameref:10,"
                 "large-str:50,large-str:200,large-str:800,large-arr:50,large-arr:200,large-arr:800,"
                 "buffer:200,buffer:800")


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def memory_cgroup():
    """(version, directory of the harness's own memory cgroup)."""
    with open("/proc/self/mountinfo") as f:
        mounts = [l.split() for l in f]
    with open("/proc/self/cgroup") as f:
        groups = [l.rstrip("\n").split(":", 2) for l in f]
    for m in mounts:
        sep = m.index("-")
        fstype, opts = m[sep + 1], m[sep + 3].split(",")
        if fstype == "cgroup" and "memory" in opts:
            path = next(g[2] for g in groups if "memory" in g[1].split(","))
            return 1, m[4] + path[len(m[3]):] if path.startswith(m[3]) and m[3] != "/" else m[4] + path
        if fstype == "cgroup2":
            try:
                controllers = open(os.path.join(m[4], "cgroup.controllers")).read().split()
            except OSError:
                continue
            if "memory" in controllers:
                path = next(g[2] for g in groups if g[0] == "0")
                return 2, m[4] + path
    sys.exit("no memory cgroup controller found")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def header_counts(path):
    with open(path, "rb") as f:
        head = f.read(8192).decode("latin1")
    n = re.search(r'"node_count":(\d+)', head)
    e = re.search(r'"edge_count":(\d+)', head)
    return int(n.group(1)) if n else None, int(e.group(1)) if e else None


def run_case(kind, mb, rounds, leakhound, limit, workdir, stream=False):
    version, parent = memory_cgroup()
    group = os.path.join(parent, f"headroom-{os.getpid()}-{kind}-{mb}")
    os.mkdir(group)
    if version == 1:
        write(os.path.join(group, "memory.limit_in_bytes"), str(limit))
        peak_file, usage_file = "memory.max_usage_in_bytes", "memory.usage_in_bytes"
    else:
        write(os.path.join(group, "memory.max"), str(limit))
        peak_file, usage_file = "memory.peak", "memory.current"
    app = None
    try:
        # --inspect-port=…:0: the inspector SIGUSR1 opens takes a free port, not 9229, where
        # other inspectors on this machine may be.
        node = ["node", "--expose-gc", "--max-old-space-size=16384", "--inspect-port=127.0.0.1:0", os.path.join(HERE, "headroom-app.js"), kind, str(mb)]
        if stream:
            # The app sees the snapshot folder read-only (its own mount namespace): its
            # v8.writeHeapSnapshot fails, and leakhound falls back to streaming the snapshot
            # over the inspector (HeapProfiler.takeHeapSnapshot) into the same folder.
            node = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f'mount --bind "{workdir}" "{workdir}" && mount -o remount,bind,ro "{workdir}" && exec "$@"',
                    "sh"] + node
        app = subprocess.Popen(
            node,
            stdout=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=lambda: write(os.path.join(group, "cgroup.procs"), str(os.getpid())))
        line = app.stdout.readline()
        if not line:
            return {"kind": kind, "mb": mb, "error": f"app exited ({app.wait()}) before ready"}
        ready = json.loads(line)
        pid = ready["pid"]
        result = {"kind": kind, "mb": mb, "ready": ready, "rounds": []}
        for r in range(rounds):
            out = os.path.join(workdir, f"{kind}-{mb}-{r}.heapsnapshot")
            if app.poll() is not None:
                result["rounds"].append({"round": r + 1, "exit": None, "died": app.returncode})
                break
            write(f"/proc/{pid}/clear_refs", "5")
            try:
                write(os.path.join(group, peak_file), "0")
                cg_reset = True
            except OSError:
                cg_reset = False
            try:
                before = status(pid)
                before["VmRSS"]
            except (OSError, KeyError):
                app.wait()
                result["rounds"].append({"round": r + 1, "exit": None, "died": app.returncode})
                break
            cg_before = int(open(os.path.join(group, usage_file)).read())
            samples = []
            stop = threading.Event()

            def sample():
                while not stop.wait(0.05):
                    try:
                        samples.append((time.monotonic(), status(pid)["VmRSS"]))
                    except (OSError, KeyError):
                        return
            t = threading.Thread(target=sample)
            t.start()
            t0 = time.monotonic()
            cmd = [leakhound, "--quiet", "snapshot", "--pid", str(pid), "-o", out] + IGNORE_HEADROOM
            p = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.monotonic() - t0
            stop.set()
            t.join()
            try:
                after = status(pid)
            except OSError:
                after = {}
            if app.poll() is not None:
                # The app died (see dmesg for the cgroup's OOM killer): no peak.
                after = {}
            cg_peak = int(open(os.path.join(group, peak_file)).read()) if cg_reset else None
            rnd = {
                "round": r + 1, "exit": p.returncode, "died": app.returncode, "stderr": p.stderr.strip()[-400:], "wall_s": round(wall, 1),
                "rss_before": before["VmRSS"], "rss_peak": after.get("VmHWM"), "rss_after": after.get("VmRSS"),
                "rss_peak_sampled": max((s[1] for s in samples), default=None),
                "cgroup_before": cg_before, "cgroup_peak": cg_peak,
            }
            if p.returncode == 0 and os.path.exists(out):
                rnd["snapshot_bytes"] = os.path.getsize(out)
                rnd["node_count"], rnd["edge_count"] = header_counts(out)
            if os.path.exists(out):
                os.remove(out)
            if "VmHWM" not in after:
                app.wait()
                rnd["died"] = app.returncode
            result["rounds"].append(rnd)
            print(json.dumps({k: v for k, v in rnd.items() if k != "stderr"}), file=sys.stderr)
            if p.returncode != 0 or "VmHWM" not in after:
                break
        return result
    finally:
        if app is not None:
            try:
                os.killpg(app.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            app.wait()
        for _ in range(50):
            try:
                os.rmdir(group)
                break
            except OSError:
                time.sleep(0.1)


def mb(x):
    return "–" if x is None else f"{x / 1e6:,.0f}"


# The first-snapshot formula of crates/leakhound-inspector/src/headroom.rs (keep in step).
BASE, PER_SMALL_BYTE, PER_LARGE_BYTE = 64 << 20, 10, 150


def estimate(heap_used, large):
    return BASE + PER_SMALL_BYTE * max(heap_used - large, 0) + PER_LARGE_BYTE * large


def table(results):
    rows = ["| heap | heapUsed MB | in large-object spaces MB | snapshot nodes | edges | snapshot MB "
            "| RSS before MB | extra RSS while writing MB, 1st (2nd) | extra / heapUsed | extra per node B "
            "| model's estimate MB (× measured) | RSS after 1st MB | cgroup charge, peak − before MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        name = f"{res['kind']} {res['mb']} MB"
        if "error" in res:
            rows.append(f"| {name} | {res['error']} |" + " |" * 11)
            continue
        m = res["ready"]["memory"]
        lo = sum(v for k, v in res["ready"]["spaces"].items() if "large_object" in k)

        def extra_of(r):
            """(bytes, text): VmHWM − VmRSS before; the 50 ms samples when the app died after."""
            if r.get("exit") == 0 and r.get("rss_peak"):
                return r["rss_peak"] - r["rss_before"], mb(r["rss_peak"] - r["rss_before"])
            if r.get("exit") == 0 and r.get("rss_peak_sampled"):
                e = r["rss_peak_sampled"] - r["rss_before"]
                return e, f"≥ {mb(e)}¹"
            if r.get("died") is not None:
                return None, f"app died ({r['died']})²"
            return None, f"fails (exit {r.get('exit')})"
        rs = res["rounds"]
        first = rs[0]
        e1, text = extra_of(first)
        extras = text + "".join(f" ({extra_of(r)[1]})" for r in rs[1:])
        nodes = first.get("node_count")
        cg = first["cgroup_peak"] - first["cgroup_before"] if first.get("cgroup_peak") else None
        est = estimate(m["heapUsed"], lo)
        cells = [name, mb(m["heapUsed"]), mb(lo),
                 f"{nodes:,}" if nodes else "–", f"{first['edge_count']:,}" if first.get("edge_count") else "–",
                 mb(first.get("snapshot_bytes")), mb(first.get("rss_before")), extras,
                 f"{e1 / m['heapUsed']:.1f}×" if e1 else "–", f"{e1 / nodes:,.0f}" if e1 and nodes else "–",
                 f"{mb(est)} ({est / e1:.1f}×)" if e1 else mb(est),
                 mb(first.get("rss_after")), mb(cg)]
        rows.append("| " + " | ".join(cells) + " |")
    rows += ["", "¹ the app died right after the snapshot: the peak is the highest of the 50 ms VmRSS samples.",
             "² the app died between two rounds, after leakhound had left (its exit status)."]
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=DEFAULT_CASES, help="KIND:MB,… (kinds: see headroom-app.js)")
    ap.add_argument("--rounds", type=int, default=2, help="snapshots per app (the 2nd sees V8's id map of the 1st)")
    ap.add_argument("--leakhound", default=os.environ.get("LEAKHOUND", os.path.join(ROOT, "target/release/leakhound")))
    ap.add_argument("--limit-gb", type=float, default=10.0, help="the app's cgroup memory limit")
    ap.add_argument("--json", help="write the raw measurements here")
    ap.add_argument("--stream", action="store_true",
                    help="make leakhound stream the snapshot over the inspector (its fallback) instead of "
                         "node writing it itself: the app sees the snapshot folder read-only (needs unshare)")
    a = ap.parse_args()
    # The measurement must not be refused by the check it feeds (builds before it have no flag).
    helptext = subprocess.run([a.leakhound, "snapshot", "--help"], capture_output=True, text=True).stdout
    IGNORE_HEADROOM[:] = ["--ignore-headroom"] if "--ignore-headroom" in helptext else []
    results = []
    with tempfile.TemporaryDirectory(prefix="headroom-", dir=os.environ.get("TMPDIR", "/tmp")) as work:
        for case in a.cases.split(","):
            kind, size = case.split(":")
            print(f"== {kind} {size} MB", file=sys.stderr)
            results.append(run_case(kind, int(size), a.rounds, a.leakhound, int(a.limit_gb * 2**30), work, a.stream))
            if a.json:
                with open(a.json, "w") as f:
                    json.dump(results, f, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
