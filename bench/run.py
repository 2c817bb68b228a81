#!/usr/bin/env python3
"""bench/run.py: side-by-side benchmark of leakhound and its peers on large V8 heap snapshots.

Usage:
  bench/run.py [--sizes LABEL:UNITS,...] [--runs N] [--timeout S] [--tools T,...]
               [--leakhound PATH] [--build] [--work DIR] [--out FILE] [--json FILE]
  bench/run.py --leaks [--leaks-size LABEL:UNITS] [same options]
  bench/run.py --capture [--capture-units 25000,100000] [--runs N] [--capture-diagnose] [--out FILE]
  bench/run.py --compare NAME=CMD --compare NAME=CMD [...] [--sizes ... | --leaks [--leaks-size ...]]
               [--runs N] [--json FILE]

Default mode (one snapshot at a time): makes the inputs with ../shared/bench/make-big.sh (default
100mb:25000,500mb:122000,1500mb:360000 into $TMPDIR/leakhound-bench, kept between runs), installs
the peers with npm (exact versions in bench/peers/package.json, cached in
$TMPDIR/leakhound-bench/peers), then runs every tool on every file:
  leakhound  LEAKHOUND summary FILE --json > /dev/null
  memlab     bench/peers/memlab.js: @memlab/heap-analysis getFullHeapFromFile (parse, shortest
             paths, dominators, retained sizes) + class aggregation
  devtools   bench/peers/devtools.js: npm heap-snapshot-toolkit (the DevTools engine: parse,
             dominators, retained sizes, statistics) + Summary aggregation with retained sizes
  oracle     ../shared/oracle/devtools/golden.sh --out /dev/null FILE (current DevTools engine +
             Summary + top-20 Retainers, as JSON; no per-node arrays)
  vscode     bench/peers/vscode.js: @vscode/v8-heap-parser parse + class groups with retained sizes
--leaks mode: bench/gen-series.js writes baseline/target/final from ONE process (default
500mb:122000, each ≈ 500 MB) and the tools are
  leakhound  LEAKHOUND leaks B T F --json (exit 1 = leaks found counts as success; JSON kept for the verdict)
  memlab     memlab find-leaks --baseline B --target T --final F (npm memlab)

--compare mode: leakhound against leakhound (two builds, or one build with different options):
each NAME=CMD is a leakhound binary with optional arguments before the subcommand (shell words,
e.g. 'base=/tmp/leakhound-old' or 't1=target/release/leakhound --threads 1'), run as
`CMD summary FILE --json > /dev/null` on every --sizes file, round robin (each round starts one
variant later), and reported per round as the ratio wall(variant) / wall(first variant), with
the median, the range, CPU time and peak RSS. With --leaks: `CMD leaks B T F --json` on the
--leaks-size series instead. Peers are not run.

--capture mode: for each size, ONE node process (bench/capture-app.js UNITS, the gen-heap.js world,
--expose-gc, inspector on 127.0.0.1 only) and, alternating N times in it (same heap): the app's own
gc() x2 + v8.writeHeapSnapshot(FILE), timed in the app, vs `LEAKHOUND snapshot --pid PID -o FILE`,
timed whole and by its own "(… ms)". Files deleted after each run, the app killed at the end.
The section "Snapshot capture overhead" of --out (default bench/RESULTS.md) is replaced or appended.
Each run is timed (wall clock) and its peak RSS read from rusage: ru_maxrss of the child, which covers
the descendants it waited for (the largest single process of the tree). The command runs under GNU
time (/usr/bin/time, when present), which reports it from its own wait4: a child forked from this
Python harness would otherwise start with the harness's RSS as its high-water mark. The inputs are
read once before every run (page cache warm for every tool alike). With --runs N the runs go round
robin over the tools, so a machine that speeds up or slows down meanwhile affects all alike. A run that
fails (out of memory, string too long, wasm memory, timeout, …) is recorded as `fails (reason)`.
With --runs N the table shows the median (and the range). Prints a Markdown table; --out writes it
with the machine facts and the exact command. LEAKHOUND defaults to target/release/leakhound (env
LEAKHOUND or --leakhound); --build runs `cargo build --release -p leakhound` first; a missing
binary is reported and skipped. The shared folder is $LEAKHOUND_SHARED or ../shared beside the repo.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("LEAKHOUND_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
PEER_DRIVERS = os.path.join(HERE, "peers")

DEFAULT_SIZES = "100mb:25000,500mb:122000,1500mb:360000"
SUMMARY_TOOLS = ["leakhound", "memlab", "devtools", "oracle", "vscode"]
LEAKS_TOOLS = ["leakhound", "memlab"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ram_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def heap_mb():
    """V8 old-space limit given to every node peer: 3/4 of RAM, like the oracle's default."""
    return ram_bytes() * 3 // 4 // (1 << 20)


def header_counts(path):
    with open(path, "rb") as f:
        head = f.read(4096).decode("latin-1")
    n = re.search(r'"node_count":(\d+)', head)
    e = re.search(r'"edge_count":(\d+)', head)
    return (int(n.group(1)) if n else None, int(e.group(1)) if e else None)


def parse_specs(text):
    specs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        label, sep, units = part.partition(":")
        if not sep or not units.isdigit() or not re.fullmatch(r"[A-Za-z0-9_.-]+", label):
            raise SystemExit(f"run.py: bad size spec {part!r} (want LABEL:UNITS, e.g. 100mb:25000)")
        specs.append((label, int(units)))
    return specs


# ------------------------------------------------------------------------------------------------
# Inputs and peers


def make_inputs(work, specs):
    script = os.path.join(SHARED, "bench", "make-big.sh")
    if not os.path.exists(script):
        raise SystemExit(f"run.py: {script} not found (set LEAKHOUND_SHARED)")
    files = []
    for label, units in specs:
        path = os.path.join(work, label + ".heapsnapshot")
        if not (os.path.exists(path) and os.path.getsize(path) > 0):
            log(f"making {path} ({units} units) with make-big.sh ...")
            subprocess.run(["bash", script, work, f"{label}:{units}"], check=True)
        files.append(path)
    return files


def make_series(work, label, units):
    out = os.path.join(work, "series-" + label)
    names = ["baseline", "target", "final"]
    paths = [os.path.join(out, n + ".heapsnapshot") for n in names]
    done = os.path.join(out, ".complete")
    if not os.path.exists(done):
        log(f"making {out}/{{baseline,target,final}}.heapsnapshot ({units} units) with gen-series.js ...")
        for p in paths:
            if os.path.exists(p):
                os.unlink(p)
        subprocess.run(["node", f"--max-old-space-size={min(heap_mb(), 16384)}", "--expose-gc",
                        os.path.join(HERE, "gen-series.js"), str(units), out], check=True)
        with open(done, "w") as f:
            f.write(f"{units}\n")
    return paths


def install_peers(work):
    """npm ci (or install) bench/peers/package.json into WORK/peers; skipped when unchanged."""
    dest = os.path.join(work, "peers")
    os.makedirs(dest, exist_ok=True)
    inputs = [f for f in ("package.json", "package-lock.json") if os.path.exists(os.path.join(PEER_DRIVERS, f))]
    digest = hashlib.sha256()
    for f in inputs:
        with open(os.path.join(PEER_DRIVERS, f), "rb") as fh:
            digest.update(f.encode() + b"\0" + fh.read())
    stamp = os.path.join(dest, ".installed")
    want = digest.hexdigest()
    if os.path.exists(stamp) and open(stamp).read().strip() == want and os.path.isdir(os.path.join(dest, "node_modules")):
        return dest
    log(f"installing peers into {dest} with npm ...")
    for f in ("package.json", "package-lock.json"):
        if os.path.exists(os.path.join(dest, f)):
            os.unlink(os.path.join(dest, f))
    for f in inputs:
        shutil.copy(os.path.join(PEER_DRIVERS, f), os.path.join(dest, f))
    env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1", PUPPETEER_SKIP_CHROMIUM_DOWNLOAD="1")
    # --ignore-scripts: memlab pulls in puppeteer, whose install script downloads a browser.
    cmd = ["npm", "ci" if "package-lock.json" in inputs else "install", "--ignore-scripts", "--no-audit", "--no-fund"]
    subprocess.run(cmd, cwd=dest, env=env, check=True)
    with open(stamp, "w") as f:
        f.write(want + "\n")
    return dest


def peer_versions(peers):
    out = {}
    for name in ("@memlab/heap-analysis", "memlab", "heap-snapshot-toolkit", "@vscode/v8-heap-parser"):
        try:
            with open(os.path.join(peers, "node_modules", name, "package.json")) as f:
                out[name] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
    try:
        with open(os.path.join(SHARED, "oracle", "devtools", "package.json")) as f:
            out["chrome-devtools-frontend (oracle)"] = json.load(f)["dependencies"]["chrome-devtools-frontend"]
    except (OSError, ValueError, KeyError):
        pass
    return out


# ------------------------------------------------------------------------------------------------
# Measuring one run


def failure_reason(stderr_text, code, sig, timed_out, timeout):
    if timed_out:
        return f"timeout after {timeout:g} s"
    t = stderr_text
    checks = [
        (r"heap out of memory|Allocation failed|out of memory|Cannot allocate memory|std::bad_alloc", "out of memory"),
        (r"Invalid string length|Cannot create a string longer|ERR_STRING_TOO_LONG|String too long", "string too long"),
        (r"WebAssembly\.Memory|memory access out of bounds|RuntimeError: unreachable|wasm", "wasm memory"),
        (r"Array buffer allocation failed|Invalid typed array length|Invalid array length", "array too large"),
    ]
    for pattern, reason in checks:
        if re.search(pattern, t, re.I):
            return reason
    if sig:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"killed by {name}" + (" (OOM killer?)" if sig == signal.SIGKILL else "")
    lines = [ln.strip() for ln in t.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"\berror\b", ln, re.I)]
    tail = (errors[0] if errors else lines[-1] if lines else "")[:100]
    return f"exit {code}" + (f": {tail}" if tail else "")


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_MARK = "LEAKHOUND_BENCH_MAXRSS_KB="


def warm(paths):
    """Reads the files once (not timed), so every tool starts from a warm page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


def measure(cmd, timeout, env=None, cwd=None, stdout_to_null=False, ok_codes=(0,)):
    """Runs cmd once. Returns dict(ok, wall, rss_kb, reason, out) using the rusage of the command
    (through GNU time when present, else os.wait4's). An exit code in ok_codes counts as success
    (leakhound leaks exits 1 when it finds a leak)."""
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", RSS_MARK + "%M", *cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL if stdout_to_null else out, stderr=err,
                                env=env, cwd=cwd, start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        try:  # leftovers of the process group (e.g. a worker that outlived its parent)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        out.seek(0)
        err.seek(0)
        stdout_text = out.read().decode("utf-8", "replace")
        stderr_text = err.read().decode("utf-8", "replace")
    code = proc.returncode
    rss_kb = usage.ru_maxrss
    if GNU_TIME:
        marks = re.findall(re.escape(RSS_MARK) + r"(\d+)", stderr_text)
        if marks:
            rss_kb = int(marks[-1])
        killed = re.search(r"Command terminated by signal (\d+)", stderr_text)
        if killed:  # GNU time itself exits 128 + signal
            code = -int(killed.group(1))
        stderr_text = re.sub(r"(Command (exited with non-zero status|terminated by signal) \d+\n)?"
                             + re.escape(RSS_MARK) + r"\d+\n?", "", stderr_text)
    sig = -code if code < 0 else 0
    ok = code in ok_codes and not timed_out.is_set()
    last_out = [ln for ln in stdout_text.splitlines() if ln.strip()]
    res = {"ok": ok, "wall_s": round(wall, 3), "rss_kb": rss_kb, "exit": code,
           "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "out": last_out[-1][-300:] if last_out else ""}
    if not ok:
        res["reason"] = failure_reason(stderr_text, code, sig, timed_out.is_set(), timeout)
        res["stderr_tail"] = stderr_text[-2000:]
    res["text_tail"] = stdout_text[-20000:] + "\n" + stderr_text[-20000:]
    res["stdout_text"] = stdout_text
    return res


def leakhound_leaks_note(text):
    try:
        rep = json.loads(text)
    except ValueError:
        return "leakhound: stdout is not JSON"
    clusters = rep.get("clusters") or []
    top = clusters[0] if clusters else {}
    return (f"leakhound verdict={rep.get('verdict')} leaked_objects={rep.get('leaked_object_count')} "
            f"clusters={len(clusters)} top={top.get('root_class')} held by {top.get('holder')} "
            f"count={top.get('count')}")


def summarize(runs):
    s = summarize_runs(runs)
    s["each_run"] = [{k: r[k] for k in ("ok", "wall_s", "rss_kb", "exit") if k in r} for r in runs]
    return s


def summarize_runs(runs):
    ok = [r for r in runs if r["ok"]]
    if len(ok) < len(runs):
        bad = next(r for r in runs if not r["ok"])
        return {"ok": False, "reason": bad["reason"], "runs": len(runs), "failed_runs": len(runs) - len(ok),
                "wall_s": bad["wall_s"], "rss_kb": bad["rss_kb"], "stderr_tail": bad.get("stderr_tail", "")[-1500:]}
    walls = [r["wall_s"] for r in ok]
    rss = [r["rss_kb"] for r in ok]
    return {"ok": True, "runs": len(ok), "wall_s": statistics.median(walls), "wall_min": min(walls),
            "wall_max": max(walls), "rss_kb": statistics.median(rss), "rss_max_kb": max(rss), "out": ok[-1]["out"]}


# ------------------------------------------------------------------------------------------------
# Tools


class Tools:
    def __init__(self, args, peers):
        self.args = args
        self.peers = peers
        self.heap = heap_mb()
        self.node = shutil.which("node") or "node"
        self.golden = os.path.join(SHARED, "oracle", "devtools", "golden.sh")

    def node_cmd(self, driver, file, extra=()):
        return [self.node, f"--max-old-space-size={self.heap}", *extra,
                os.path.join(PEER_DRIVERS, driver), self.peers, file]

    def summary_cmd(self, tool, file):
        """(cmd, env, stdout_to_null) for one snapshot."""
        if tool == "leakhound":
            return [self.args.leakhound, "summary", file, "--json"], None, True
        if tool == "memlab":
            return self.node_cmd("memlab.js", file, ("--expose-gc",)), None, False
        if tool == "devtools":
            return self.node_cmd("devtools.js", file), None, False
        if tool == "vscode":
            return self.node_cmd("vscode.js", file), None, False
        if tool == "oracle":
            env = dict(os.environ, LEAKHOUND_ORACLE_HEAP_MB=str(self.heap))
            return ["bash", self.golden, "--out", "/dev/null", file], env, False
        raise ValueError(tool)

    def leaks_cmd(self, tool, b, t, f, memlab_work):
        if tool == "leakhound":
            # stdout kept (a few KB of JSON) to show the verdict; exit 1 = leaks found, 2 = error
            return [self.args.leakhound, "leaks", b, t, f, "--json"], None, False
        if tool == "memlab":
            cli = os.path.join(self.peers, "node_modules", "memlab", "bin", "memlab")
            # run memlab's own bin under node ourselves: its shebang passes flags to env without -S
            return [self.node, "--expose-gc", f"--max-old-space-size={self.heap}", cli, "find-leaks",
                    "--baseline", b, "--target", t, "--final", f, "--work-dir", memlab_work], None, False
        raise ValueError(tool)

    def warm_oracle(self, work):
        """First golden.sh run installs and bundles the engine: do it before timing anything."""
        small = os.path.join(work, "oracle-warmup.heapsnapshot")
        if not os.path.exists(small):
            subprocess.run([self.node, "--expose-gc", "-e", f"gc(); require('v8').writeHeapSnapshot({json.dumps(small)})"],
                           check=True)
        subprocess.run(["bash", self.golden, "--out", "/dev/null", small], check=True,
                       stdout=subprocess.DEVNULL)


def leakhound_status(args):
    if args.build:
        log("building leakhound: cargo build --release -p leakhound")
        subprocess.run(["cargo", "build", "--release", "-p", "leakhound"], cwd=REPO, check=True)
    if os.path.isfile(args.leakhound) and os.access(args.leakhound, os.X_OK):
        try:
            v = subprocess.run([args.leakhound, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            v = ""
        return True, v or "unknown version"
    log(f"leakhound: binary not found at {args.leakhound}: skipped (build it, or pass --build / --leakhound / LEAKHOUND)")
    return False, None


# ------------------------------------------------------------------------------------------------
# Report


def fmt_wall(s):
    if not s["ok"]:
        return f"fails ({s['reason']})"
    w = f"{s['wall_s']:.2f}"
    if s["runs"] > 1:
        w += f" ({s['wall_min']:.2f}–{s['wall_max']:.2f})"
    return w


def mb(kb):
    return kb * 1024 / 1e6


def table(rows, size_label):
    """rows: list of dict(input, size_bytes, nodes, results: {tool: summary})."""
    lines = [f"| input | {size_label} | nodes | tool | wall s | peak RSS MB | RSS / input | leakhound speed-up |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        lh = row["results"].get("leakhound")
        for i, (tool, s) in enumerate(row["results"].items()):
            first = i == 0
            cells = [row["input"] if first else "", f"{row['size_bytes'] / 1e6:,.1f}" if first else "",
                     (f"{row['nodes'] / 1e6:.2f} M" if row["nodes"] else "?") if first else "", tool]
            if s.get("skipped"):
                cells += [s["skipped"], "", "", ""]
            else:
                ratio = mb(s["rss_kb"]) * 1e6 / row["size_bytes"] if row["size_bytes"] else 0
                speed = "–"
                if tool == "leakhound":
                    speed = "1×" if s["ok"] else "–"
                elif lh and not lh.get("skipped") and lh["ok"] and s["ok"] and lh["wall_s"] > 0:
                    speed = f"{s['wall_s'] / lh['wall_s']:.1f}×"
                elif lh and not lh.get("skipped") and lh["ok"] and not s["ok"]:
                    speed = "∞ (peer fails)"
                rss = f"{mb(s['rss_kb']):,.0f}" + ("" if s["ok"] else " (at failure)")
                cells += [fmt_wall(s), rss, f"{ratio:.2f}", speed]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_facts(peers, lh_version):
    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": f"{ram_bytes() / (1 << 30):.1f} GiB",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "node": cmd(["node", "--version"]),
        "npm": cmd(["npm", "--version"]),
        "python": sys.version.split()[0],
        "leakhound": lh_version or "not run (binary missing)",
        "repo commit": cmd(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
        "node heap limit given to peers": f"--max-old-space-size={heap_mb()}",
    }
    for k, v in peer_versions(peers).items():
        facts[k] = v
    return facts


# ------------------------------------------------------------------------------------------------
# --capture: snapshot capture overhead, leakhound snapshot --pid vs the app's own writeHeapSnapshot

CAPTURE_APP = os.path.join(HERE, "capture-app.js")
CAPTURE_CLIENT = os.path.join(HERE, "capture-client.js")
# --capture-diagnose: bench/capture-client.js MODE, a minimal inspector client (no GC requested)
DIAG_VARIANTS = {"ws-progress": "progress", "ws-noprogress": "noprogress", "ws-eval": "eval"}
VARIANT_NAMES = {
    "inprocess": "in-process gc() ×2 + writeHeapSnapshot",
    "leakhound": "leakhound snapshot --pid (HeapProfiler.collectGarbage + takeHeapSnapshot with progress)",
    "ws-progress": "minimal inspector client: takeHeapSnapshot with reportProgress (leakhound's request), no GC",
    "ws-noprogress": "minimal inspector client: takeHeapSnapshot without reportProgress, no GC",
    "ws-eval": "minimal inspector client: Runtime.evaluate require('v8').writeHeapSnapshot(FILE), no GC",
}
CAPTURE_HEADING = "## Snapshot capture overhead"
# Written by hand from bench/headroom.py; kept, like the capture section, when --out rewrites.
HEADROOM_HEADING = "## Snapshot capture cost (headroom model)"
# Written by bench/agent_overhead.py and bench/gc-floor-lag.js; kept too.
AGENT_HEADINGS = (
    "## Agent overhead (`leakhound watch --attach`, default sampling)",
    "## GC observer: its post-GC reading against the true post-GC heap",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """(main thread CPU s, other threads CPU s) of pid from /proc/PID/task/*/stat. The main
    thread (tid = pid) runs JS, the heap snapshot generator and its serializer; the others are
    V8's GC helpers, libuv's pool and the inspector's I/O thread (the WebSocket)."""
    main = other = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # the thread ended meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)
        if tid == str(pid):
            main += cpu
        else:
            other += cpu
    return main, other


def cpu_delta(before, after):
    if not before or not after:
        return None
    return {"main_s": round(after[0] - before[0], 2), "other_s": round(after[1] - before[1], 2)}


class CaptureApp:
    """bench/capture-app.js UNITS under node, driven by one-line commands on its stdin."""

    def __init__(self, units, work, timeout):
        import queue
        self.units = units
        self.timeout = timeout
        self.err_path = os.path.join(work, f"capture-app-{units}.stderr")
        self.err = open(self.err_path, "w")
        self.lines = queue.Queue()
        # --inspect-port=127.0.0.1:0: the inspector SIGUSR1 opens listens on loopback only, on
        # a free port (9229 may belong to someone else on a shared machine).
        self.cmd = [shutil.which("node") or "node", "--expose-gc", f"--max-old-space-size={min(heap_mb(), 16384)}",
                    "--inspect-port=127.0.0.1:0", CAPTURE_APP, str(units)]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.reply(timeout)
        if not self.ready.get("ready"):
            raise RuntimeError(f"capture-app did not start: {self.ready}")
        self.pid = self.ready["pid"]

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def reply(self, timeout):
        import queue
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"capture-app: no reply within {timeout:g} s") from None
            if line is None:
                raise RuntimeError(f"capture-app exited (status {self.proc.poll()}): {self.stderr_tail()}")
            try:
                return json.loads(line)
            except ValueError:
                log(f"capture-app: {line.rstrip()}")

    def call(self, command, timeout=None):
        """Sends one command; returns (reply, wall seconds from the request to the reply)."""
        t0 = time.monotonic()
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        r = self.reply(timeout or self.timeout)
        wall = time.monotonic() - t0
        if r.get("error"):
            raise RuntimeError(f"capture-app {command!r}: {r['error']}")
        return r, wall

    def stderr_tail(self):
        try:
            with open(self.err_path) as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def inspector_url(self):
        """The WebSocket URL node printed when SIGUSR1 opened its inspector (None before)."""
        found = re.findall(r"Debugger listening on (ws://127\.0\.0\.1:\d+/[0-9a-f-]+)", self.stderr_tail_all())
        return found[-1] if found else None

    def stderr_tail_all(self):
        try:
            with open(self.err_path) as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.err.close()


def remove_snapshot(path):
    import glob
    for p in [path] + glob.glob(glob.escape(path) + ".partial-*"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def fsync_ms(path):
    """Time to fsync a file just written without fsync (leakhound's capture includes its own
    sync_all + directory sync; writeHeapSnapshot does neither)."""
    t0 = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return round((time.monotonic() - t0) * 1000, 1)


def capture_inprocess(app, path):
    app.call("gcstats")
    before = thread_cpu(app.pid)
    r, wall = app.call(f"snap {path}")
    after = thread_cpu(app.pid)
    gcs = app.call("gcstats")[0]["gcs"]
    rec = {"ok": True, "gc_ms": r["gc_ms"], "write_ms": r["write_ms"], "total_ms": round(r["gc_ms"] + r["write_ms"], 1),
           "wall_ms": round(wall * 1000, 1), "bytes": os.path.getsize(path), "app_cpu": cpu_delta(before, after),
           "gcs": gcs, "heap_used": r["heap_used"]}
    rec["fsync_ms"] = fsync_ms(path)
    return rec


def capture_client(app, args, path, mode):
    url = app.inspector_url()
    if not url:
        return {"ok": False, "reason": "the app's inspector is not open (leakhound attaches first)"}
    app.call("gcstats")
    cmd = [shutil.which("node") or "node", "--no-warnings", "--experimental-websocket", CAPTURE_CLIENT, url, path, mode]
    before = thread_cpu(app.pid)
    r = measure(cmd, args.timeout)
    after = thread_cpu(app.pid)
    gcs = app.call("gcstats")[0]["gcs"]
    rec = {"ok": r["ok"], "wall_ms": round(r["wall_s"] * 1000, 1), "client_cpu_s": r["cpu_s"],
           "app_cpu": cpu_delta(before, after), "gcs": gcs}
    if r["ok"]:
        try:
            out = json.loads(r["out"])
            rec["write_ms"], rec["bytes"] = out["ms"], out["bytes"]
        except (ValueError, KeyError):
            rec["ok"], rec["reason"] = False, f"bad output {r['out'][-200:]!r}"
    else:
        rec["reason"] = r["reason"]
    return rec


def capture_leakhound(app, args, path):
    app.call("gcstats")
    cmd = [args.lh_run, "snapshot", "--pid", str(app.pid), "-o", path]
    before = thread_cpu(app.pid)
    r = measure(cmd, args.timeout)
    after = thread_cpu(app.pid)
    gcs = app.call("gcstats")[0]["gcs"]
    rec = {"ok": r["ok"], "wall_ms": round(r["wall_s"] * 1000, 1), "lh_cpu_s": r["cpu_s"],
           "app_cpu": cpu_delta(before, after), "gcs": gcs, "command": shlex.join(cmd)}
    m = re.search(r"\((\d+) bytes, (\d+) ms\)", r["stdout_text"])
    if r["ok"] and m:
        rec["bytes"] = int(m.group(1))
        rec["capture_ms"] = int(m.group(2))
        if os.path.exists(path) and os.path.getsize(path) != rec["bytes"]:
            rec["ok"], rec["reason"] = False, f"file has {os.path.getsize(path)} bytes, leakhound said {rec['bytes']}"
    elif r["ok"]:
        rec["ok"], rec["reason"] = False, f"no '(N bytes, M ms)' in its output: {r['stdout_text'][-200:]!r}"
    else:
        rec["reason"] = r["reason"]
        rec["stderr_tail"] = r.get("stderr_tail", "")[-1000:]
    return rec


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def capture_one_size(args, units, work):
    """One node process, one heap; the variants alternate in the same process, run after run."""
    variants = ["inprocess", "leakhound"] + (list(DIAG_VARIANTS) if args.capture_diagnose else [])
    res = {"units": units, "runs": {v: [] for v in variants}, "errors": []}
    app = None
    try:
        log(f"capture: starting {CAPTURE_APP} {units} ...")
        app = CaptureApp(units, work, args.timeout)
        res["app_command"] = shlex.join(app.cmd)
        res["build_ms"] = app.ready.get("build_ms")
        res["heap_used_start"] = app.ready.get("heap_used")
        log(f"capture: app pid {app.pid} ready (built in {app.ready.get('build_ms')} ms, "
            f"heap used {app.ready.get('heap_used', 0) / 1e6:.0f} MB)")
        for i in range(args.runs):
            for v in variants:
                path = os.path.join(work, f"capture-{units}-{v}-{i + 1}.heapsnapshot")
                remove_snapshot(path)
                try:
                    if v == "inprocess":
                        rec = capture_inprocess(app, path)
                    elif v in DIAG_VARIANTS:
                        rec = capture_client(app, args, path, DIAG_VARIANTS[v])
                    else:
                        rec = capture_leakhound(app, args, path)
                        if i == 0:
                            rec["note"] = "first attach: SIGUSR1 opens the inspector"
                except RuntimeError as e:
                    # the app's replies may now be out of step with our requests: stop this size
                    res["runs"][v].append({"ok": False, "reason": str(e)[:300], "run": i + 1})
                    raise
                finally:
                    remove_snapshot(path)
                rec["run"] = i + 1
                res["runs"][v].append(rec)
                log(f"  {units} {v} run {i + 1}/{args.runs}: " + ("ok " if rec["ok"] else f"FAILS ({rec.get('reason')}) ") +
                    " ".join(f"{k}={rec[k]}" for k in ("gc_ms", "write_ms", "wall_ms", "capture_ms", "bytes", "fsync_ms",
                                                       "lh_cpu_s", "client_cpu_s", "app_cpu", "gcs") if k in rec))
                if not app.alive():
                    raise RuntimeError(f"capture-app died: {app.stderr_tail()}")
    except RuntimeError as e:
        res["errors"].append(str(e)[:500])
        log(f"capture: {e}")
    finally:
        if app:
            app.kill()
    return res


def fmt_ms(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = statistics.median(values)
    s = f"{m:,.0f}"
    if len(values) > 1:
        s += f" ({min(values):,.0f}–{max(values):,.0f})"
    return s


def fmt_ratio(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    s = f"{statistics.median(values):.2f}×"
    if len(values) > 1:
        s += f" ({min(values):.2f}–{max(values):.2f})"
    return s


def capture_rounds(res):
    """Pairs of (in-process, leakhound) records of the same round, both ok."""
    ins, lhs = res["runs"]["inprocess"], res["runs"]["leakhound"]
    return [(a, b) for a, b in zip(ins, lhs) if a.get("ok") and b.get("ok")]


def capture_report(results, args):
    lines = ["| heap (units) | snapshot MB | in-process writeHeapSnapshot ms, with gc() ×2 | … without GC | "
             "leakhound capture ms (its `(… ms)`) | leakhound whole command ms | ratio whole command / in-process with GC | "
             "ratio capture / writeHeapSnapshot | ratio app main-thread CPU, leakhound / in-process | verdict (≤ 1.1×) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    details = []
    for res in results:
        rounds = capture_rounds(res)
        ins = [r for r in res["runs"]["inprocess"] if r.get("ok")]
        lhs = [r for r in res["runs"]["leakhound"] if r.get("ok")]
        mb_in = med([r["bytes"] for r in ins])
        mb_lh = med([r["bytes"] for r in lhs])
        size = "–" if mb_in is None else f"{mb_in / 1e6:,.1f}" + ("" if mb_lh is None else f" / {mb_lh / 1e6:,.1f}")
        heap = f"~{(mb_in or 0) / 1e6:,.0f} MB ({res['units']:,})"
        whole = [b["wall_ms"] / a["total_ms"] for a, b in rounds]
        cap = [b["capture_ms"] / a["write_ms"] for a, b in rounds]
        cpu = [b["app_cpu"]["main_s"] / a["app_cpu"]["main_s"] for a, b in rounds
               if a.get("app_cpu") and b.get("app_cpu") and a["app_cpu"]["main_s"] > 0]
        verdict = "–"
        if whole:
            verdict = "meets" if statistics.median(whole) <= 1.1 else "exceeds"
        fails = [f"{v} run {r['run']}: {r.get('reason')}" for v, rs in res["runs"].items() for r in rs if not r.get("ok")]
        if res["errors"] or fails:
            verdict += " (" + "; ".join(res["errors"] + fails)[:200] + ")"
        lines.append("| " + " | ".join([
            heap, size, fmt_ms([r["total_ms"] for r in ins]), fmt_ms([r["write_ms"] for r in ins]),
            fmt_ms([r["capture_ms"] for r in lhs]), fmt_ms([r["wall_ms"] for r in lhs]),
            fmt_ratio(whole), fmt_ratio(cap), fmt_ratio(cpu), verdict]) + " |")

        # Per size: every measure, per run, and where the CPU went.
        d = [f"### ~{(mb_in or 0) / 1e6:,.0f} MB heap ({res['units']:,} units)", ""]
        if res.get("heap_used_start"):
            d.append(f"App: `{res.get('app_command', '')}`; world built in {res.get('build_ms')} ms; "
                     f"V8 heap used after gc() {res['heap_used_start'] / 1e6:,.0f} MB.")
            d.append("")
        d += ["| measure | median (min–max) | per run |", "|---|---:|---|"]

        def row(name, recs, key, fmt=lambda x: f"{x:,.0f}"):
            vals = [r.get(key) for r in recs]
            d.append(f"| {name} | {fmt_ms(vals)} | " + ", ".join("fail" if v is None else fmt(v) for v in vals) + " |")

        allin, alllh = res["runs"]["inprocess"], res["runs"]["leakhound"]
        row("in-process: `gc()` ×2, ms", allin, "gc_ms")
        row("in-process: `v8.writeHeapSnapshot()`, ms", allin, "write_ms")
        row("in-process: both, ms (timed in the app)", allin, "total_ms")
        row("in-process: wall from the request to the reply, ms", allin, "wall_ms")
        row("in-process: then `fsync` of that file (by the harness), ms", allin, "fsync_ms")
        row("leakhound: capture alone (its `(… ms)`: discardConsoleEntries … fsync + rename), ms", alllh, "capture_ms")
        row("leakhound: whole command (spawn → exit: attach, GC, capture, close), ms", alllh, "wall_ms")
        for r in alllh:
            if r.get("ok"):
                r["outside_capture_ms"] = round(r["wall_ms"] - r["capture_ms"], 1)
        row("leakhound: whole − capture (attach, HeapProfiler.collectGarbage, close), ms", alllh, "outside_capture_ms")
        for v in DIAG_VARIANTS:
            if v in res["runs"]:
                row(f"diagnostic, {VARIANT_NAMES[v]}: request → reply, ms", res["runs"][v], "write_ms")
        row("snapshot bytes, in-process", allin, "bytes")
        row("snapshot bytes, leakhound", alllh, "bytes")
        d.append("| ratio whole command / in-process with GC, per round | " + fmt_ratio(whole) + " | " +
                 ", ".join(f"{x:.2f}" for x in whole) + " |")
        d.append("| ratio capture / writeHeapSnapshot, per round | " + fmt_ratio(cap) + " | " +
                 ", ".join(f"{x:.2f}" for x in cap) + " |")
        d.append("| ratio app main-thread CPU, leakhound / in-process, per round | " + fmt_ratio(cpu) + " | " +
                 ", ".join(f"{x:.2f}" for x in cpu) + " |")
        for v in DIAG_VARIANTS:
            if v in res["runs"]:
                dr = [b["write_ms"] / a["write_ms"] for a, b in zip(allin, res["runs"][v]) if a.get("ok") and b.get("ok")]
                d.append(f"| ratio {v} request → reply / `writeHeapSnapshot()` (both without GC), per round | "
                         + fmt_ratio(dr) + " | " + ", ".join(f"{x:.2f}" for x in dr) + " |")
        d += ["", "CPU seconds during each variant (median; app threads from `/proc/PID/task/*/stat`: main = the JS "
              "thread that generates and serializes the snapshot; other = GC helpers, libuv pool, the inspector's "
              "I/O thread) and the GCs the app's PerformanceObserver saw:", "",
              "| variant | app main thread s | app other threads s | client process s | major GCs (count, ms) |",
              "|---|---:|---:|---:|---:|"]
        for v, recs in res["runs"].items():
            ok = [r for r in recs if r.get("ok")]
            if not ok:
                continue
            main = med([(r.get("app_cpu") or {}).get("main_s") for r in ok])
            other = med([(r.get("app_cpu") or {}).get("other_s") for r in ok])
            lhcpu = med([r.get("lh_cpu_s", r.get("client_cpu_s")) for r in ok])
            majc = med([(r.get("gcs") or {}).get("major", {}).get("count", 0) for r in ok])
            majm = med([(r.get("gcs") or {}).get("major", {}).get("ms", 0) for r in ok])
            name = VARIANT_NAMES[v]
            f2 = lambda x: "–" if x is None else f"{x:.2f}"
            d.append(f"| {name} | {f2(main)} | {f2(other)} | {f2(lhcpu)} | {majc:g}, {majm:,.0f} |")
        d.append("")
        sizes = [abs(b["bytes"] - a["bytes"]) / a["bytes"] for a, b in rounds]
        if sizes:
            d.append(f"Same heap: the two files of a round differ by at most {max(sizes) * 100:.2f} % in size.")
        details += d + [""]
    head = [CAPTURE_HEADING, "",
            f"Command: `{args.command}` (from the repository root); {args.runs} run(s) of each variant, alternating "
            "in ONE node process per heap (same heap): (a) the app runs `global.gc()` twice then "
            "`v8.writeHeapSnapshot(file)`, timed inside the app with `process.hrtime`; (b) `leakhound snapshot --pid "
            "PID -o FILE`, timed from spawn to exit (whole command) and by its own `(… ms)` (capture alone). "
            "Ratios are the median of the per-round ratios (range in parentheses); the requirement is "
            "whole command / in-process with GC ≤ 1.1×. Files are deleted after each run.", ""]
    facts = capture_facts(args)
    head += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()] + [""]
    return "\n".join(head + lines + [""] + details).rstrip() + "\n"


def file_sha256(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "?"
    return h.hexdigest()[:12]


def capture_facts(args):
    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    try:
        st = os.stat(args.leakhound)
        built = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except OSError:
        built = "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "ram": f"{ram_bytes() / (1 << 30):.1f} GiB",
        "load average at start": args.load_at_start,
        "node": cmd(["node", "--version"]),
        "leakhound": f"{args.lh_version} (`{os.path.relpath(args.leakhound, REPO)}` modified {built}, sha256 {args.lh_sha}; "
                     "a copy of it ran, so a rebuild during the run cannot mix binaries)",
        "repo commit": cmd(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
        "snapshot folder": f"`{args.capture_dir}` ({(cmd(['df', '--output=fstype', args.capture_dir]).splitlines() or ['?'])[-1].strip()})",
    }


def capture_section_of(path, heading=CAPTURE_HEADING):
    """The section of path under heading, "Snapshot capture overhead" by default ("" if none)."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return ""
    start = old.find(heading + "\n")
    if start < 0:
        return ""
    nxt = re.search(r"^## ", old[start + len(heading):], re.M)
    return old[start:start + len(heading) + nxt.start()] if nxt else old[start:]


def write_capture_section(path, text):
    """Replaces an existing "Snapshot capture overhead" section of path, or appends one."""
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    start = old.find(CAPTURE_HEADING + "\n")
    if start >= 0:
        nxt = re.search(r"^## ", old[start + len(CAPTURE_HEADING):], re.M)
        end = start + len(CAPTURE_HEADING) + nxt.start() if nxt else len(old)
        new = old[:start] + text + ("\n" + old[end:] if end < len(old) else "")
    else:
        new = old.rstrip("\n") + ("\n\n" if old.strip() else "") + text
    with open(path, "w") as f:
        f.write(new)


def capture_main(args):
    lh_ok, lh_version = leakhound_status(args)
    if not lh_ok:
        raise SystemExit("run.py --capture: no leakhound binary to measure")
    if not os.path.isfile(CAPTURE_APP):
        raise SystemExit(f"run.py: {CAPTURE_APP} not found")
    args.lh_version = lh_version
    args.lh_sha = file_sha256(args.leakhound)
    args.load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    units = []
    for part in args.capture_units.split(","):
        part = part.strip().rpartition(":")[2]  # LABEL:UNITS is accepted too
        if not part.isdigit() or int(part) < 1:
            raise SystemExit(f"run.py: bad --capture-units {args.capture_units!r} (want e.g. 25000,100000)")
        units.append(int(part))
    args.capture_dir = os.path.join(os.path.abspath(args.work), "capture")
    os.makedirs(args.capture_dir, exist_ok=True)
    # Pin the binary: others may rebuild target/release/leakhound while this runs.
    args.lh_run = os.path.join(args.capture_dir, f"leakhound-{args.lh_sha}")
    if not os.path.exists(args.lh_run):
        shutil.copy2(args.leakhound, args.lh_run + ".tmp")
        os.replace(args.lh_run + ".tmp", args.lh_run)
    results = [capture_one_size(args, u, args.capture_dir) for u in units]
    text = capture_report(results, args)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"command": args.command, "results": results}, fh, indent=1)
    out = args.out or os.path.join(HERE, "RESULTS.md")
    write_capture_section(out, text)
    log(f"wrote the '{CAPTURE_HEADING[3:]}' section of {out}")
    failed = any(res["errors"] or any(not r.get("ok") for rs in res["runs"].values() for r in rs) for res in results)
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------------
# --compare: leakhound against leakhound


def parse_variants(specs):
    """[(name, argv)] from NAME=CMD strings (CMD: shell words, a binary and its global options)."""
    variants = []
    for spec in specs:
        name, sep, cmd = spec.partition("=")
        words = shlex.split(cmd)
        if not sep or not name or not words:
            raise SystemExit(f"run.py: bad --compare {spec!r} (want NAME=CMD, e.g. base=/tmp/leakhound-old)")
        if any(name == n for n, _ in variants):
            raise SystemExit(f"run.py: --compare name {name!r} given twice")
        words[0] = os.path.abspath(words[0]) if os.path.exists(words[0]) else words[0]
        variants.append((name, words))
    if len(variants) < 2:
        raise SystemExit("run.py: --compare needs at least two NAME=CMD variants")
    return variants


def compare_main(args):
    variants = parse_variants(args.compare)
    for name, argv in variants:
        if not (os.path.isfile(argv[0]) and os.access(argv[0], os.X_OK)):
            raise SystemExit(f"run.py: {name}: {argv[0]} is not an executable file")
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    if args.leaks:  # one series: `CMD leaks B T F --json` (exit 1 = leaks found counts as success)
        (label, units), = parse_specs(args.leaks_size)
        series = make_series(work, label, units)
        inputs = [(f"series {label}", series, lambda argv: [*argv, "leaks", *series, "--json"])]
    else:
        specs = parse_specs(args.sizes)
        inputs = [(label, [path], lambda argv, path=path: [*argv, "summary", path, "--json"])
                  for (label, _), path in zip(specs, make_inputs(work, specs))]
    first = variants[0][0]
    out_rows = []
    lines = [f"| input | {'3 files' if args.leaks else 'file'} MB | variant | wall s, median (min–max) | CPU s, median "
             f"| peak RSS MB, median (max) | RSS / input | wall / {first}, per round | median ratio |",
             "|---|---:|---|---:|---:|---:|---:|---|---:|"]
    for label, paths, make_cmd in inputs:
        size = sum(os.path.getsize(p) for p in paths)
        runs = {name: [] for name, _ in variants}
        for i in range(args.runs):
            k = i % len(variants)
            for name, argv in variants[k:] + variants[:k]:  # each round starts one variant later
                cmd = make_cmd(argv)
                warm(paths)
                log(f"{label} {name} round {i + 1}/{args.runs}: {shlex.join(cmd)}")
                r = measure(cmd, args.timeout, stdout_to_null=True, ok_codes=(0, 1) if args.leaks else (0,))
                if not r["ok"]:
                    raise SystemExit(f"run.py: {name} failed on {label}: {r['reason']}\n{r.get('stderr_tail', '')}")
                log(f"  -> {r['wall_s']:.2f} s, {r['cpu_s']:.2f} s CPU, {mb(r['rss_kb']):,.0f} MB peak RSS")
                runs[name].append(r)
        base = runs[first]
        for j, (name, argv) in enumerate(variants):
            rs = runs[name]
            walls = [r["wall_s"] for r in rs]
            rss = [r["rss_kb"] for r in rs]
            ratios = [r["wall_s"] / b["wall_s"] for r, b in zip(rs, base)]
            shown = label if args.leaks else f"{label} (`{os.path.basename(paths[0])}`)"
            cells = [shown if j == 0 else "",
                     f"{size / 1e6:,.1f}" if j == 0 else "", f"{name}: `{shlex.join(argv)}`",
                     f"{statistics.median(walls):.2f} ({min(walls):.2f}–{max(walls):.2f})",
                     f"{statistics.median(r['cpu_s'] for r in rs):.2f}",
                     f"{mb(statistics.median(rss)):,.0f} ({mb(max(rss)):,.0f})",
                     f"{statistics.median(rss) * 1024 / size:.2f}",
                     "–" if j == 0 else ", ".join(f"{x:.2f}" for x in ratios),
                     "1" if j == 0 else f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"]
            lines.append("| " + " | ".join(cells) + " |")
            out_rows.append({"input": label, "files": paths, "size_bytes": size, "variant": name, "argv": argv,
                             "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "rss_kb")} for r in rs],
                             "ratios_to_first": ratios})
    text = "\n".join(lines) + "\n"
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"command": args.command, "rows": out_rows}, fh, indent=1)
    return 0


# ------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"LABEL:UNITS,... for make-big.sh (default {DEFAULT_SIZES})")
    ap.add_argument("--runs", type=int, default=1, help="runs per tool and input; the median is reported (default 1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    ap.add_argument("--tools", help="comma-separated subset (default: all of " + ",".join(SUMMARY_TOOLS) +
                    "; with --leaks: " + ",".join(LEAKS_TOOLS) + ")")
    ap.add_argument("--leakhound", default=os.environ.get("LEAKHOUND") or os.path.join(REPO, "target", "release", "leakhound"),
                    help="leakhound binary (default $LEAKHOUND or target/release/leakhound)")
    ap.add_argument("--build", action="store_true", help="cargo build --release -p leakhound first")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "leakhound-bench"),
                    help="inputs and peers cache (default $TMPDIR/leakhound-bench)")
    ap.add_argument("--leaks", action="store_true", help="three-snapshot leak mode: leakhound leaks vs memlab find-leaks")
    ap.add_argument("--leaks-size", default="500mb:122000", help="LABEL:UNITS for gen-series.js (default 500mb:122000)")
    ap.add_argument("--capture", action="store_true",
                    help="snapshot capture overhead: leakhound snapshot --pid vs the app's own v8.writeHeapSnapshot")
    ap.add_argument("--capture-units", default="25000,100000",
                    help="heap sizes for --capture, in units of capture-app.js (≈ 4 KB of snapshot each; default 25000,100000)")
    ap.add_argument("--capture-diagnose", action="store_true",
                    help="--capture also runs bench/capture-client.js (a minimal inspector client) with and without "
                         "reportProgress and via Runtime.evaluate writeHeapSnapshot, to split leakhound's overhead")
    ap.add_argument("--out", help="write the Markdown report (table + machine facts + command) to this file; "
                    "with --capture: replace or append its 'Snapshot capture overhead' section (default bench/RESULTS.md)")
    ap.add_argument("--json", dest="json_out", help="write the raw measurements as JSON to this file")
    ap.add_argument("--compare", action="append", metavar="NAME=CMD",
                    help="leakhound vs leakhound: a variant (a binary and its global options, shell words); "
                         "give two or more; runs `CMD summary FILE --json` (with --leaks: `CMD leaks B T F --json`) "
                         "round robin, no peers")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    all_tools = LEAKS_TOOLS if args.leaks else SUMMARY_TOOLS
    tools = all_tools if not args.tools else [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in all_tools]
    if unknown:
        ap.error(f"unknown tool(s) {unknown}; choose from {all_tools}")
    tools = [t for t in all_tools if t in tools]  # canonical order: leakhound first
    args.leakhound = os.path.abspath(args.leakhound)
    command = shlex.join([os.path.relpath(sys.argv[0], REPO) if os.path.exists(sys.argv[0]) else sys.argv[0], *sys.argv[1:]])
    if args.compare:
        args.command = command
        sys.exit(compare_main(args))
    if args.capture:
        args.command = command
        # SIGTERM/SIGHUP -> SystemExit, so the finally blocks kill the app and delete the files
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
        sys.exit(capture_main(args))

    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    peers = install_peers(work) if any(t != "leakhound" for t in tools) else os.path.join(work, "peers")
    lh_ok, lh_version = (leakhound_status(args) if "leakhound" in tools else (False, "not run (not in --tools)"))
    runner = Tools(args, peers)
    if "oracle" in tools and not args.leaks:
        log("warming the oracle's cache (install + bundle, not timed) ...")
        runner.warm_oracle(work)

    rows = []
    if not args.leaks:
        specs = parse_specs(args.sizes)
        files = make_inputs(work, specs)
        for (label, _), path in zip(specs, files):
            size = os.path.getsize(path)
            nodes, edges = header_counts(path)
            row = {"input": f"{label} (`{os.path.basename(path)}`)", "file": path, "size_bytes": size,
                   "nodes": nodes, "edges": edges, "results": {}}
            runs = {t: [] for t in tools if t != "leakhound" or lh_ok}
            if "leakhound" in tools and not lh_ok:
                row["results"]["leakhound"] = {"skipped": "binary missing: skipped"}
            cmds = {t: runner.summary_cmd(t, path) for t in runs}
            for i in range(args.runs):
                for tool in runs:  # round robin: drift in machine speed hits every tool alike
                    if runs[tool] and not runs[tool][-1]["ok"]:
                        continue  # a failure is deterministic enough; don't burn N timeouts
                    cmd, env, to_null = cmds[tool]
                    warm([path])
                    log(f"{label} {tool} run {i + 1}/{args.runs}: {shlex.join(cmd)}")
                    r = measure(cmd, args.timeout, env=env, stdout_to_null=to_null)
                    log(f"  -> {'ok' if r['ok'] else 'FAILS (' + r['reason'] + ')'} {r['wall_s']:.2f} s, "
                        f"{mb(r['rss_kb']):,.0f} MB peak RSS  {r['out'][:160]}")
                    runs[tool].append(r)
            for tool in tools:
                if tool in runs:
                    row["results"][tool] = summarize(runs[tool])
                    row["results"][tool]["command"] = shlex.join(cmds[tool][0])
            rows.append(row)
        title = "One snapshot: `leakhound summary FILE --json` vs peers (parse + dominators + retained sizes + class aggregation)"
        body = table(rows, "file MB")
    else:
        (label, units), = parse_specs(args.leaks_size)
        b, t, f = make_series(work, label, units)
        size = sum(os.path.getsize(p) for p in (b, t, f))
        nodes = sum((header_counts(p)[0] or 0) for p in (b, t, f))
        row = {"input": f"series {label} (baseline + target + final)", "files": [b, t, f], "size_bytes": size,
               "nodes": nodes, "results": {}}
        runs = {t: [] for t in tools if t != "leakhound" or lh_ok}
        if "leakhound" in tools and not lh_ok:
            row["results"]["leakhound"] = {"skipped": "binary missing: skipped"}
        shown = {}
        for i in range(args.runs):
            for tool in runs:  # round robin, as for one snapshot
                if runs[tool] and not runs[tool][-1]["ok"]:
                    continue
                mwork = tempfile.mkdtemp(prefix="memlab-work-", dir=work)
                cmd, env, to_null = runner.leaks_cmd(tool, b, t, f, mwork)
                shown[tool] = cmd
                warm([b, t, f])
                log(f"leaks {tool} run {i + 1}/{args.runs}: {shlex.join(cmd)}")
                r = measure(cmd, args.timeout, env=env, stdout_to_null=to_null,
                            ok_codes=(0, 1) if tool == "leakhound" else (0,))
                shutil.rmtree(mwork, ignore_errors=True)
                if tool == "leakhound" and r["ok"]:
                    r["out"] = leakhound_leaks_note(r["stdout_text"])
                found = re.search(r"MemLab found (\d+) leak", r.get("text_tail", ""))
                if found:
                    r["out"] = f"memlab found {found.group(1)} leak(s)"
                log(f"  -> {'ok' if r['ok'] else 'FAILS (' + r['reason'] + ')'} {r['wall_s']:.2f} s, "
                    f"{mb(r['rss_kb']):,.0f} MB peak RSS  {r['out'][:160]}")
                runs[tool].append(r)
        for tool in tools:
            if tool in runs:
                row["results"][tool] = summarize(runs[tool])
                row["results"][tool]["command"] = shlex.join(shown[tool])
        rows.append(row)
        title = "Three snapshots: `leakhound leaks B T F --json` vs `memlab find-leaks --baseline B --target T --final F`"
        body = table(rows, "3 files MB")

    notes = []
    for row in rows:
        for tool, s in row["results"].items():
            if s.get("ok") and s.get("out"):
                notes.append(f"* {row['input'].split(' ')[0]} {tool}: `{s['out'][:200]}`")
    report = [f"## {title}", "", body, ""]
    if args.runs > 1:
        report.append(f"Wall: median of {args.runs} runs (range in parentheses); peak RSS: median.")
    floor = measure(["true"], 30)["rss_kb"]
    via = ("GNU time's report for the command (it forks the command itself, so the harness's RSS does "
           "not count)") if GNU_TIME else "`wait4` on the command (it starts from the harness's RSS)"
    report.append(f"Peak RSS: `ru_maxrss` from {via}; the largest process of the tree; floor (measured on "
                  f"`true`): {mb(floor):.1f} MB. Every input is read once before each run (warm page cache "
                  "for all). RSS / input: peak RSS over the input size. Speed-up: peer wall / leakhound wall.")
    if notes:
        report += ["", "What each tool printed (proof of work):", ""] + notes
    text = "\n".join(report) + "\n"
    print(text)

    for row in rows:
        for s in row["results"].values():
            s.pop("text_tail", None)
            s.pop("stdout_text", None)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"command": command, "rows": rows}, fh, indent=1)
    if args.out:
        facts = machine_facts(peers, lh_version)
        md = ["# leakhound benchmark results", "",
              f"Command: `{command}` (from the repository root)", "",
              "| machine | |", "|---|---|"]
        md += [f"| {k} | {v} |" for k, v in facts.items()]
        md += ["", text]
        # The --capture, headroom and agent sections there survive the rewrite.
        kept = "".join(capture_section_of(args.out, h) for h in (CAPTURE_HEADING, HEADROOM_HEADING, *AGENT_HEADINGS))
        with open(args.out, "w") as fh:
            fh.write("\n".join(md) + ("\n" + kept if kept else ""))
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
