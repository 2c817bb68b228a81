#!/usr/bin/env python3
"""bench/run.py: side-by-side benchmark of leakhound and its peers on large V8 heap snapshots.

Usage:
  bench/run.py [--sizes LABEL:UNITS,...] [--runs N] [--timeout S] [--tools T,...]
               [--leakhound PATH] [--build] [--work DIR] [--out FILE] [--json FILE]
  bench/run.py --leaks [--leaks-size LABEL:UNITS] [same options]

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

Each run is timed (wall clock) and its peak RSS read from os.wait4's rusage (ru_maxrss of the child,
which covers the descendants it waited for: the largest single process of the tree). A run that
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


def measure(cmd, timeout, env=None, cwd=None, stdout_to_null=False, ok_codes=(0,)):
    """Runs cmd once. Returns dict(ok, wall, rss_kb, reason, out) using os.wait4's rusage.
    An exit code in ok_codes counts as success (leakhound leaks exits 1 when it finds a leak)."""
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
    sig = -code if code < 0 else 0
    ok = code in ok_codes and not timed_out.is_set()
    last_out = [ln for ln in stdout_text.splitlines() if ln.strip()]
    res = {"ok": ok, "wall_s": round(wall, 3), "rss_kb": usage.ru_maxrss, "exit": code,
           "out": last_out[-1][-300:] if last_out else ""}
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
    ap.add_argument("--out", help="write the Markdown report (table + machine facts + command) to this file")
    ap.add_argument("--json", dest="json_out", help="write the raw measurements as JSON to this file")
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
            for tool in tools:
                if tool == "leakhound" and not lh_ok:
                    row["results"][tool] = {"skipped": "binary missing: skipped"}
                    continue
                cmd, env, to_null = runner.summary_cmd(tool, path)
                runs = []
                for i in range(args.runs):
                    log(f"{label} {tool} run {i + 1}/{args.runs}: {shlex.join(cmd)}")
                    r = measure(cmd, args.timeout, env=env, stdout_to_null=to_null)
                    log(f"  -> {'ok' if r['ok'] else 'FAILS (' + r['reason'] + ')'} {r['wall_s']:.2f} s, "
                        f"{mb(r['rss_kb']):,.0f} MB peak RSS  {r['out'][:160]}")
                    runs.append(r)
                    if not r["ok"]:
                        break  # a failure is deterministic enough; don't burn N timeouts
                row["results"][tool] = summarize(runs)
                row["results"][tool]["command"] = shlex.join(cmd)
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
        for tool in tools:
            if tool == "leakhound" and not lh_ok:
                row["results"][tool] = {"skipped": "binary missing: skipped"}
                continue
            runs = []
            for i in range(args.runs):
                mwork = tempfile.mkdtemp(prefix="memlab-work-", dir=work)
                cmd, env, to_null = runner.leaks_cmd(tool, b, t, f, mwork)
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
                runs.append(r)
                if not r["ok"]:
                    break
            row["results"][tool] = summarize(runs)
            row["results"][tool]["command"] = shlex.join(cmd)
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
    report.append("Peak RSS: `ru_maxrss` from `wait4` (largest process of the tree); it cannot go below the "
                  f"harness's own RSS, which the child inherits at fork/exec (floor here: {mb(floor):.0f} MB, "
                  "measured on `true`). RSS / input: peak RSS over the input size. Speed-up: peer wall / leakhound wall.")
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
        with open(args.out, "w") as fh:
            fh.write("\n".join(md))
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
