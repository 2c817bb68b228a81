//! End-to-end tests of `leakhound hunt` against small Node.js servers of our own
//! (`tests/apps/`): one server per leak pattern, a control that does not leak, and the
//! ways a hunt can go wrong (the app crashes, never starts, never becomes ready, closes
//! its inspector, the disk fills up, the user presses Ctrl-C), plus `--html`.
//!
//! Every hunt is small (100 warm-up requests, 2 phases of 300) and bounded: it is killed
//! and the test fails if it runs longer than [`HUNT_LIMIT`]. At most two hunts run at once
//! ([`Slot`]) so parallel tests on a 2-core machine do not starve each other. Each app
//! writes its pid to `$PID_FILE`, and every test checks the app is gone afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Slot, read_all};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const WARMUP: u64 = 100;
const REQUESTS: u64 = 300;
const PHASES: u64 = 2;
/// A hunt that runs longer than this is killed and fails its test.
const HUNT_LIMIT: Duration = Duration::from_secs(90);

fn app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps").join(name)
}

/// The small, fast hunt every test uses (`requests` per phase), with `--out-dir`.
fn hunt_args(out_dir: &Path, requests: u64) -> Vec<String> {
    [
        "hunt",
        "--json",
        "--requests",
        &requests.to_string(),
        "--warmup",
        &WARMUP.to_string(),
        "--phases",
        &PHASES.to_string(),
        "--calm-down-ms",
        "300",
        "--gc-interval-ms",
        "200",
        "--out-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out_dir.display().to_string()])
    .collect()
}

/// A leakhound run in progress, its output read by two threads.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    started: Instant,
    pid_file: PathBuf,
}

/// A finished run.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// The app's pid, from `$PID_FILE` (None if the app never got to write it).
    app_pid: Option<u32>,
}

impl Finished {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {:?}\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            )
        })
    }

    /// The `leakhound: …` error message: the first line of the last message that starts
    /// with `leakhound: `, and the lines after it.
    fn error_message(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let i = lines
            .iter()
            .rposition(|l| l.starts_with("leakhound: "))
            .unwrap_or_else(|| panic!("no `leakhound: …` line on stderr:\n{}", self.stderr));
        lines[i..].join("\n")
    }

    fn context(&self) -> String {
        format!(
            "exit {:?} after {:.1} s\n--- stderr ---\n{}\n--- stdout (first 2000 chars) ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stderr,
            self.stdout.chars().take(2000).collect::<String>()
        )
    }
}

/// Starts `leakhound ARGS -- node APP` with `PID_FILE` (in `dir`) and `env` set.
fn start(dir: &Path, args: &[String], app_file: &str, env: &[(&str, &str)]) -> Running {
    let pid_file = dir.join(format!("{app_file}.pid"));
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .arg("--")
        .arg("node")
        .arg(app(app_file))
        .env("PID_FILE", &pid_file)
        // The free memory leakhound sees is the machine's unless a test pretends otherwise.
        .env_remove("LEAKHOUND_AVAILABLE_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start leakhound");
    let stdout = read_all(child.stdout.take().expect("stdout"));
    let stderr = read_all(child.stderr.take().expect("stderr"));
    Running {
        child,
        stdout,
        stderr,
        started: Instant::now(),
        pid_file,
    }
}

fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

impl Running {
    /// Waits for leakhound to exit; kills it (and the app) and fails past [`HUNT_LIMIT`].
    fn finish(mut self) -> Finished {
        let status = loop {
            match self.child.try_wait().expect("wait for leakhound") {
                Some(s) => break s,
                None if self.started.elapsed() > HUNT_LIMIT => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    if let Some(pid) = read_pid(&self.pid_file) {
                        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                    }
                    let err = self.stderr.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                    panic!(
                        "leakhound did not finish within {} s; killed it\n--- stderr ---\n{err}",
                        HUNT_LIMIT.as_secs()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let elapsed = self.started.elapsed();
        // The pipes close when leakhound and everything it started are gone: a process that
        // kept them open was left behind.
        let pipe = |rx: &mpsc::Receiver<String>, name: &str| {
            rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
                panic!("leakhound exited ({status}) but its {name} stayed open: a process it started is still running")
            })
        };
        let stdout = pipe(&self.stdout, "stdout");
        let stderr = pipe(&self.stderr, "stderr");
        Finished {
            code: status.code(),
            stdout,
            stderr,
            elapsed,
            app_pid: read_pid(&self.pid_file),
        }
    }
}

/// Runs one hunt of `app_file` (holding a slot) with extra args and environment.
fn hunt(app_file: &str, extra: &[&str], env: &[(&str, &str)]) -> (Finished, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("snapshots");
    let mut args = hunt_args(&out, REQUESTS);
    args.extend(extra.iter().map(|s| s.to_string()));
    let _slot = Slot::take();
    let run = start(dir.path(), &args, app_file, env).finish();
    (run, dir)
}

/// Whether `pid` is gone (or a zombie, or reused by something that is not node).
fn is_gone(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // `pid (comm) STATE …`; comm may contain spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if state == Some("Z") {
        return true;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !String::from_utf8_lossy(&cmdline).contains("node")
}

/// Asserts the app (pid from its pid file) is no longer running, within a few seconds.
fn assert_app_gone(run: &Finished) {
    let pid = run
        .app_pid
        .unwrap_or_else(|| panic!("the app never wrote its pid file\n{}", run.context()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!(
                "the app (pid {pid}) is still running after leakhound exited\n{}",
                run.context()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid leakhound reports on stderr (`leakhound: app started, pid N`).
fn reported_pid(run: &Finished) -> Option<u32> {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("leakhound: app started, pid "))
        .and_then(|p| p.trim().parse().ok())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Leak patterns
// ---------------------------------------------------------------------------------------

/// What a leaky app must be reported as.
struct Expect {
    app: &'static str,
    holder: &'static str,
    patterns: &'static [&'static str],
    /// Accumulating objects the app adds per request.
    per_request: f64,
}

fn assert_leak_found(e: &Expect) {
    let (run, dir) = hunt(e.app, &[], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{}: expected exit code 1 (leak)\n{ctx}", e.app);
    let doc = run.json();
    assert_eq!(doc["verdict"], "leak", "{}\n{ctx}", e.app);
    assert_same_shape_as_recorded(&doc);
    assert_eq!(
        doc["requests_sent"].as_u64(),
        Some(WARMUP + PHASES * REQUESTS),
        "{}: requests_sent should be warm-up + phases × requests",
        e.app
    );
    let top = &doc["clusters"][0];
    let summary = format!(
        "{}: top cluster holder={} pattern={} per_request={} source={} counts={}",
        e.app, top["holder"], top["pattern"], top["per_request"]["count"], top["source"], top["counts_per_snapshot"]
    );
    assert_eq!(top["holder"].as_str(), Some(e.holder), "{summary}");
    let pattern = top["pattern"].as_str().unwrap_or("");
    assert!(
        e.patterns.contains(&pattern),
        "expected one of {:?}; {summary}",
        e.patterns
    );
    let source = top["source"].as_str().unwrap_or("");
    assert!(
        source.contains(&format!("/tests/apps/{}:", e.app)),
        "source should point into the app file; {summary}"
    );
    let rate = top["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (rate - e.per_request).abs() <= 0.1 * e.per_request,
        "per_request.count should be {} ±10 %; {summary}",
        e.per_request
    );
    // The snapshots stay, and leakhound named the app's pid.
    let snaps = files_in(&dir.path().join("snapshots"));
    assert_eq!(
        snaps,
        [
            "01-baseline.heapsnapshot",
            "02-target.heapsnapshot",
            "03-final.heapsnapshot"
        ],
        "{ctx}"
    );
    // Snapshots hold every string of the app: readable by the user alone, in a private folder.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        for s in &snaps {
            assert_eq!(mode(&dir.path().join("snapshots").join(s)), 0o600, "{s}\n{ctx}");
        }
        assert_eq!(mode(&dir.path().join("snapshots")), 0o700, "the folder\n{ctx}");
    }
    assert_eq!(reported_pid(&run), run.app_pid, "pid on stderr vs the app's own\n{ctx}");
    assert_eq!(doc["app"]["pid"].as_u64(), run.app_pid.map(u64::from));
    assert_app_gone(&run);
}

/// The shape of a JSON value: every path (array elements collapsed to `[]`) with the set of
/// types seen there (`null` among them).
fn shape(
    v: &Value,
    path: String,
    out: &mut std::collections::BTreeMap<String, std::collections::BTreeSet<&'static str>>,
) {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(a) => {
            for x in a {
                shape(x, format!("{path}[]"), out);
            }
            "array"
        }
        Value::Object(o) => {
            for (k, x) in o {
                shape(x, format!("{path}.{k}"), out);
            }
            "object"
        }
    };
    out.entry(path).or_default().insert(kind);
}

/// `hunt --json` keeps the field names, types and nesting of a recorded run
/// (`tests/golden/hunt-demo.json`, a hunt of the demo server): live numbers differ from
/// run to run, the structure must not. Paths only one side has are listed; a path that
/// is in the recording but absent here is allowed only where the recording's own value
/// list could be empty in another run (per-cluster extras such as `listeners`).
fn assert_same_shape_as_recorded(doc: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/hunt-demo.json");
    let recorded: Value = serde_json::from_slice(&std::fs::read(&path).expect("hunt-demo.json")).expect("JSON");
    let (mut want, mut got) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
    shape(&recorded, String::new(), &mut want);
    shape(doc, String::new(), &mut got);
    let mut problems = Vec::new();
    type Kinds = std::collections::BTreeSet<&'static str>;
    // An optional field may be null in one run and set in another: null matches any type.
    fn compatible(a: &Kinds, b: &Kinds) -> bool {
        let strip = |s: &Kinds| {
            s.iter()
                .filter(|k| **k != "null")
                .copied()
                .collect::<Vec<&'static str>>()
        };
        let (a, b) = (strip(a), strip(b));
        a.is_empty() || b.is_empty() || a == b
    }
    // A path under a field that was null or an empty list in the recording is not in it:
    // its nearest ancestor in the recording must be one of those.
    let under_empty = |p: &str| {
        let mut cut = p;
        while let Some(i) = cut.rfind(['.', '[']) {
            cut = &cut[..i];
            if let Some(k) = want.get(cut) {
                let k: &Kinds = k;
                let empty_list = k.contains("array") && !want.keys().any(|w| w.starts_with(&format!("{cut}[]")));
                return k.contains("null") || empty_list;
            }
        }
        false
    };
    for (p, kinds) in &want {
        match got.get(p) {
            Some(k) if compatible(k, kinds) => {}
            Some(k) => problems.push(format!("{p}: recorded {kinds:?}, now {k:?}")),
            None if p.starts_with(".clusters[]") || p.starts_with(".processes[].clusters[]") => {}
            None => problems.push(format!("{p}: missing")),
        }
    }
    for p in got.keys() {
        // `settle` is there only when a cluster is a list of timers (not in the demo's).
        if !want.contains_key(p)
            && !p.starts_with(".clusters[]")
            && !p.starts_with(".processes[].clusters[]")
            && !p.starts_with(".settle")
            && !p.starts_with(".processes[].settle")
            && !under_empty(p)
        {
            problems.push(format!("{p}: new, not in the recording"));
        }
    }
    assert!(
        problems.is_empty(),
        "hunt --json changed shape:\n{}",
        problems.join("\n")
    );
}

#[test]
fn finds_listeners_added_per_request_and_never_removed() {
    assert_leak_found(&Expect {
        app: "listener_leak.js",
        holder: "configHub._events.reload",
        patterns: &["listener_accumulation"],
        per_request: 1.0,
    });
}

#[test]
fn finds_listeners_piling_up_on_process() {
    assert_leak_found(&Expect {
        app: "process_listener_leak.js",
        holder: "process._events.SIGUSR2",
        patterns: &["listener_accumulation"],
        per_request: 1.0,
    });
}

#[test]
fn finds_a_map_cache_keyed_per_request() {
    assert_leak_found(&Expect {
        app: "cache_leak.js",
        holder: "quoteCache",
        patterns: &["unbounded_collection"],
        per_request: 2.0,
    });
}

#[test]
fn finds_intervals_started_per_request_and_never_cleared() {
    assert_leak_found(&Expect {
        app: "interval_leak.js",
        holder: "timerListMap[60000]",
        patterns: &["uncleared_timer"],
        per_request: 1.0,
    });
}

#[test]
fn finds_a_debug_array_grown_by_middleware() {
    assert_leak_found(&Expect {
        app: "middleware_leak.js",
        holder: "requestLog",
        patterns: &["unbounded_collection"],
        per_request: 1.0,
    });
}

#[test]
fn finds_closures_whose_context_keeps_a_buffer() {
    assert_leak_found(&Expect {
        app: "closure_leak.js",
        holder: "describers",
        patterns: &["closure_retention", "external_memory"],
        per_request: 1.0,
    });
}

#[test]
fn reports_no_leak_for_garbage_and_a_bounded_ring_buffer() {
    let (run, _dir) = hunt("no_leak.js", &[], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "expected exit code 0 (no leak)\n{ctx}");
    let doc = run.json();
    assert_eq!(doc["verdict"], "no_leak", "{ctx}");
    assert_eq!(
        doc["clusters"].as_array().map(Vec::len),
        Some(0),
        "clusters: {:#}",
        doc["clusters"]
    );
    assert_eq!(doc["requests_sent"].as_u64(), Some(WARMUP + PHASES * REQUESTS));
    assert!(
        !run.stderr.contains("Debugger ending on"),
        "node's inspector notices are not the app's output\n{ctx}"
    );
    assert_app_gone(&run);
}

// ---------------------------------------------------------------------------------------
// Faults: exit code 2, one clear message, snapshots kept and named, nothing left running
// ---------------------------------------------------------------------------------------

/// Asserts an error run: exit 2, a `leakhound: …` message containing every `needles`, the
/// snapshots named in it are exactly `kept` (by file name) and on disk, no half-written
/// snapshot is left, and the app is gone.
fn assert_failed_cleanly(run: &Finished, out_dir: &Path, needles: &[&str], kept: &[&str]) -> String {
    let ctx = run.context();
    assert_eq!(run.code, Some(2), "expected exit code 2 (error)\n{ctx}");
    let msg = run.error_message();
    let first = msg.lines().next().unwrap_or("");
    for n in needles {
        assert!(msg.contains(n), "the message should mention {n:?}:\n{msg}\n\n{ctx}");
    }
    assert!(
        msg.lines().count() <= 4 && first.len() < 400,
        "the message should be short (one line plus a few of the app's last output):\n{msg}"
    );
    // The snapshots named on the message's first line, and those on disk.
    let named: Vec<&str> = first
        .split_once("snapshots kept: ")
        .map(|(_, list)| list.trim_end_matches(')').split(", ").collect())
        .unwrap_or_default();
    assert_eq!(
        named.len(),
        kept.len(),
        "snapshots named: {named:?}, expected {kept:?}\n{msg}"
    );
    for (path, name) in named.iter().zip(kept) {
        assert!(path.ends_with(name), "named {path}, expected …/{name}\n{msg}");
        assert!(
            Path::new(path).is_file() || out_dir.join(name).is_file(),
            "{path} is named but not on disk"
        );
    }
    let on_disk = files_in(out_dir);
    assert_eq!(on_disk, kept, "files left in the snapshot folder\n{ctx}");
    assert_app_gone(run);
    msg
}

#[test]
fn app_crashing_during_the_last_load_phase_is_reported_with_its_exit_status() {
    // Request 1 is the readiness probe; the warm-up and load-1 end at request 401, so the
    // crash falls in load-2, after the baseline and target snapshots.
    let (run, dir) = hunt("faulty.js", &[], &[("FAULT", "crash"), ("FAULT_AFTER", "550")]);
    let msg = assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &["load-2", "the app exited", "exit status: 3", "crashing on purpose"],
        &["01-baseline.heapsnapshot", "02-target.heapsnapshot"],
    );
    assert!(
        !msg.contains("Waiting for the debugger"),
        "node's debugger notice is noise:\n{msg}"
    );
}

#[test]
fn app_exiting_before_it_is_ready_is_reported_with_its_output() {
    let (run, dir) = hunt("exits_early.js", &[], &[]);
    assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &["starting the app", "exit status: 4", "DATABASE_URL is not set"],
        &[],
    );
}

#[test]
fn app_that_never_listens_times_out_after_the_ready_timeout() {
    let (run, dir) = hunt("never_ready.js", &["--ready-timeout", "3"], &[]);
    let msg = assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &["waiting for the app to become ready", "did not answer within 3000 ms"],
        &[],
    );
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?} for a 3 s ready timeout:\n{msg}",
        run.elapsed
    );
}

#[test]
fn app_closing_its_inspector_is_reported_and_stopped() {
    let (run, dir) = hunt(
        "faulty.js",
        &[],
        &[("FAULT", "close_inspector"), ("FAULT_AFTER", "550")],
    );
    assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &["load-2", "inspector connection closed", "still running"],
        &["01-baseline.heapsnapshot", "02-target.heapsnapshot"],
    );
}

#[test]
fn a_snapshot_that_does_not_fit_the_free_memory_ends_the_hunt_before_it_is_written() {
    // Pretend 1 MB is free: even the baseline of a small app needs ~150 MB more.
    let (run, dir) = hunt("cache_leak.js", &[], &[("LEAKHOUND_AVAILABLE_BYTES", "1M")]);
    assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &[
            "taking the baseline snapshot: writing the snapshot would need about",
            "1 MB are free (LEAKHOUND_AVAILABLE_BYTES)",
            "not taken",
            "--ignore-headroom",
        ],
        &[],
    );
}

#[test]
fn ignore_headroom_takes_every_snapshot_and_warns_with_the_numbers() {
    let (run, _dir) = hunt(
        "no_leak.js",
        &["--ignore-headroom"],
        &[("LEAKHOUND_AVAILABLE_BYTES", "1M")],
    );
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "expected exit code 0 (no leak)\n{ctx}");
    let doc = run.json();
    let warnings: Vec<&str> = doc["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for label in ["baseline", "target", "final"] {
        let prefix = format!("{label} snapshot taken with --ignore-headroom: writing the snapshot would need about");
        assert!(
            warnings.iter().any(|w| w.starts_with(&prefix)),
            "no warning {prefix:?} in {warnings:#?}\n{ctx}"
        );
    }
    // After the first, the estimate starts from what the last snapshot cost the app.
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("final snapshot") && w.contains("(the last snapshot took ")),
        "{warnings:#?}"
    );
    assert_app_gone(&run);
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs(at.to_owned()))
        } else {
            Err(format!("mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn disk_full_while_writing_a_snapshot_keeps_the_earlier_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("tiny");
    // One snapshot of these apps is about 5 MB: the baseline fits, the target does not.
    let _fs = Tmpfs::mount(&mnt, "8m")
        .unwrap_or_else(|why| panic!("cannot mount a tmpfs ({why}): this test needs root (CI runs as root)"));
    let out = mnt.join("snapshots");
    let args = hunt_args(&out, REQUESTS);
    let run = {
        let _slot = Slot::take();
        start(dir.path(), &args, "cache_leak.js", &[]).finish()
    };
    assert_failed_cleanly(
        &run,
        &out,
        &["target snapshot", "No space left on device"],
        &["01-baseline.heapsnapshot"],
    );
}

/// Runs `script` with sh as the unprivileged user `nobody` (through `setpriv`).
fn as_nobody(script: &str) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run setpriv ({e}): this test needs util-linux's setpriv and root"));
    assert!(
        out.status.success(),
        "as nobody: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_shared_directory_cannot_redirect_the_snapshots() {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    assert!(
        root,
        "this test plays another user against a root hunt: it needs root (CI runs as root)"
    );
    // A world-writable, sticky folder, as /tmp is.
    let shared = std::env::temp_dir().join(format!("leakhound-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shared);
    std::fs::create_dir(&shared).unwrap();
    let ok = Command::new("chmod")
        .arg("1777")
        .arg(&shared)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let victim = shared.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // Another user plants a folder of its own with a symlink where the baseline goes, and
    // every default folder name of the next minute.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    as_nobody(&format!(
        "cd {d} && mkdir planted && ln -s {v} planted/01-baseline.heapsnapshot && for i in $(seq {a} {b}); do mkdir leakhound-$i; ln -s {v} leakhound-$i/01-baseline.heapsnapshot; done",
        d = shared.display(),
        v = victim.display(),
        a = now,
        b = now + 60
    ));
    // A named folder of another user is refused.
    let mut args = hunt_args(&shared.join("planted"), REQUESTS);
    let run = {
        let _slot = Slot::take();
        start(&shared, &args, "no_leak.js", &[]).finish()
    };
    assert_eq!(run.code, Some(2), "{}", run.context());
    assert!(run.stderr.contains("belongs to uid 65534"), "{}", run.context());
    assert!(run.app_pid.is_none(), "the app is not started into a refused folder");
    // The default folder is a new one of ours, whatever names were taken.
    args.truncate(args.len() - 2); // drop `--out-dir DIR`
    let run = {
        let _slot = Slot::take();
        start(&shared, &args, "no_leak.js", &[]).finish()
    };
    assert_eq!(run.code, Some(0), "{}", run.context());
    let baseline = run.json()["snapshots"][0]["path"].as_str().unwrap().to_owned();
    let folder = shared.join(&baseline).parent().unwrap().to_owned();
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::symlink_metadata(&folder).unwrap();
        assert!(
            meta.is_dir() && meta.uid() == 0,
            "{} is root's own folder",
            folder.display()
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{}", folder.display());
        assert!(
            !std::fs::symlink_metadata(shared.join(&baseline))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the victim file is untouched"
    );
    assert_app_gone(&run);
    let _ = std::fs::remove_dir_all(&shared);
}

#[test]
fn stale_partial_snapshots_are_removed_unless_still_being_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("snapshots");
    std::fs::create_dir(&out).unwrap();
    // What a killed run leaves: node's half-written file, and one that a live process (an
    // attached node, say) still has open.
    let stale = out.join("02-target.heapsnapshot.partial-4242");
    let busy = out.join("01-baseline.heapsnapshot.partial-4343");
    std::fs::write(&stale, b"{\"snapshot\":").unwrap();
    std::fs::write(&busy, b"{\"snapshot\":").unwrap();
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 3<'{}'; sleep 60", busy.display()))
        .spawn()
        .expect("sh");
    std::thread::sleep(Duration::from_millis(300));
    let run = {
        let _slot = Slot::take();
        start(dir.path(), &hunt_args(&out, REQUESTS), "no_leak.js", &[]).finish()
    };
    let _ = holder.kill();
    let _ = holder.wait();
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert!(!stale.exists(), "the stale partial file is removed\n{ctx}");
    assert!(busy.exists(), "a partial file still open is left alone\n{ctx}");
    let warnings = run.json()["warnings"].to_string();
    assert!(
        warnings.contains("removed") && warnings.contains("02-target.heapsnapshot.partial-4242"),
        "the user is told: {warnings}"
    );
    assert!(warnings.contains("still being written"), "{warnings}");
    assert_app_gone(&run);
}

#[test]
fn a_reset_of_v8_object_ids_starts_the_series_again() {
    // The reset happens at request 250: inside load-1 (the warm-up is 100, phases 300).
    let (run, _dir) = hunt("ids_reset.js", &[], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the leak is still found\n{ctx}");
    let doc = run.json();
    assert!(
        doc["warnings"]
            .to_string()
            .contains("object ids were reset before the target snapshot"),
        "the user is told the series started again\n{ctx}"
    );
    assert_eq!(doc["clusters"][0]["root_class"], "Order", "{ctx}");
    let rate = doc["clusters"][0]["per_request"]["count"].as_f64().unwrap_or(0.0);
    assert!(
        (rate - 1.0).abs() < 0.1,
        "1 Order per request, not a diff across the reset: {rate}\n{ctx}"
    );
    let labels: Vec<&str> = doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["label"].as_str())
        .collect();
    assert_eq!(labels, ["baseline", "target", "final"], "{ctx}");
    assert_app_gone(&run);
}

#[test]
fn a_full_disk_for_the_html_report_keeps_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("tiny");
    // The page of a hunt is some 100 kB: 16 kB cannot hold it.
    let _fs = Tmpfs::mount(&mnt, "16k")
        .unwrap_or_else(|why| panic!("cannot mount a tmpfs ({why}): this test needs root (CI runs as root)"));
    let out = dir.path().join("snapshots");
    let mut args = hunt_args(&out, REQUESTS);
    args.extend(["--html".into(), mnt.join("report.html").display().to_string()]);
    let run = {
        let _slot = Slot::take();
        start(dir.path(), &args, "cache_leak.js", &[]).finish()
    };
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the leak verdict's exit code stands\n{ctx}");
    assert_eq!(run.json()["verdict"], "leak", "{ctx}");
    assert!(
        run.stderr.contains("no HTML report") && run.stderr.contains("No space left on device"),
        "the lost HTML report is a warning that says why\n{ctx}"
    );
    assert!(!mnt.join("report.html").exists(), "no partial report");
    let leftovers: Vec<_> = std::fs::read_dir(&mnt).expect("read tmpfs").collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    assert_app_gone(&run);
}

/// A hunt with long, slow load phases (10 s each), in its first load phase once its
/// baseline is written: `(running hunt, output folder, baseline path, temp dir)`, with one
/// of the two hunt slots held.
fn hunt_in_its_first_load_phase() -> (Running, PathBuf, PathBuf, tempfile::TempDir, Slot) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("snapshots");
    let mut args = hunt_args(&out, 5000);
    args.extend(["--rate".into(), "500".into()]);
    let slot = Slot::take();
    let running = start(dir.path(), &args, "no_leak.js", &[]);
    let baseline = out.join("01-baseline.heapsnapshot");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !baseline.is_file() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    (running, out, baseline, dir, slot)
}

/// Sends `signal` (a `kill -SIG` name) to leakhound during the first load phase; it must
/// stop the app, keep the baseline snapshot, say it was interrupted by that signal and
/// exit 2, within seconds.
fn signal_stops_the_app_and_keeps_the_snapshots(signal: &str, said: &str) {
    let (running, out, baseline, _dir, _slot) = hunt_in_its_first_load_phase();
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
    let run = running.finish();
    assert!(
        sent.is_ok_and(|s| s.success()),
        "could not send SIG{signal}\n{}",
        run.context()
    );
    assert!(
        baseline.is_file(),
        "no baseline snapshot within 60 s\n{}",
        run.context()
    );
    assert!(
        run.elapsed < Duration::from_secs(40),
        "leakhound took {:?} to stop after SIG{signal}",
        run.elapsed
    );
    assert_failed_cleanly(
        &run,
        &out,
        &[&format!("interrupted ({said})")],
        &["01-baseline.heapsnapshot"],
    );
}

#[test]
fn sigkill_of_leakhound_takes_the_app_with_it() {
    let (running, _out, _baseline, _dir, _slot) = hunt_in_its_first_load_phase();
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args(["-KILL", &pid]).status();
    let run = running.finish();
    assert!(
        sent.is_ok_and(|s| s.success()),
        "could not send SIGKILL\n{}",
        run.context()
    );
    let app = run
        .app_pid
        .unwrap_or_else(|| panic!("the app never started\n{}", run.context()));
    // The app's group goes within moments, though leakhound ran no code at all.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(app) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        is_gone(app),
        "the app (pid {app}) outlived a SIGKILLed leakhound\n{}",
        run.context()
    );
}

#[test]
fn ctrl_c_stops_the_app_and_keeps_the_snapshots() {
    signal_stops_the_app_and_keeps_the_snapshots("INT", "Ctrl-C");
}

#[test]
fn sigterm_stops_the_app_and_keeps_the_snapshots() {
    signal_stops_the_app_and_keeps_the_snapshots("TERM", "SIGTERM");
}

#[test]
fn sighup_stops_the_app_and_keeps_the_snapshots() {
    signal_stops_the_app_and_keeps_the_snapshots("HUP", "SIGHUP");
}

// ---------------------------------------------------------------------------------------
// --html
// ---------------------------------------------------------------------------------------

#[test]
fn html_report_is_written_atomically_and_self_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report_dir = dir.path().join("report");
    std::fs::create_dir(&report_dir).expect("mkdir");
    let html_path = report_dir.join("hunt.html");
    let mut args = hunt_args(&dir.path().join("snapshots"), REQUESTS);
    args.extend(["--html".into(), html_path.display().to_string()]);
    let run = {
        let _slot = Slot::take();
        start(dir.path(), &args, "middleware_leak.js", &[]).finish()
    };
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    assert_eq!(
        files_in(&report_dir),
        ["hunt.html"],
        "only the report, no temporary file"
    );
    let html = std::fs::read_to_string(&html_path).expect("read the HTML report");
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
    assert!(html.trim_end().ends_with("</html>"), "the report is complete");
    assert!(html.contains("verdict: <b>leak</b>"), "the verdict is shown");
    assert!(html.contains("requestLog"), "the holder is shown");
    assert!(html.contains("unbounded_collection"), "the pattern is shown");
    let doc = run.json();
    let url = doc["app"]["url"].as_str().expect("app.url");
    let rest = html.replace(url, "");
    for scheme in ["http://", "https://"] {
        if let Some(at) = rest.find(scheme) {
            let what: String = rest[at..].chars().take(60).collect();
            panic!("the report refers to {what}…");
        }
    }
    for tag in ["<script src", "<link", "<img src=\"", "@import"] {
        assert!(!html.contains(tag), "the report loads something: {tag}");
    }
    assert_app_gone(&run);
}

#[test]
fn finds_an_array_of_numbers_that_only_grows() {
    // No object per request: only the element store grows, so the rate is an estimate
    // from its bytes (capacity included): between 0.5 and 2 slots per request.
    let (run, _dir) = hunt("number_array_leak.js", &[], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "expected exit code 1 (leak)\n{ctx}");
    let doc = run.json();
    let top = &doc["clusters"][0];
    assert_eq!(top["holder"], "latencySamples", "{ctx}");
    assert_eq!(top["pattern"], "unbounded_collection", "{ctx}");
    assert!(
        top["source"]
            .as_str()
            .unwrap_or("")
            .contains("/tests/apps/number_array_leak.js:"),
        "{ctx}"
    );
    let rate = top["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((0.5..=2.0).contains(&rate), "per_request.count {rate}\n{ctx}");
}

// ---------------------------------------------------------------------------------------
// No silent wrong runs
// ---------------------------------------------------------------------------------------

#[test]
fn a_load_command_gets_the_apps_url_and_runs_once_per_phase() {
    let runs = tempfile::tempdir().expect("tempdir");
    let runs_file = runs.path().join("runs.txt");
    let load = format!("node {} 300", app("load_client.js").display());
    let (run, _dir) = hunt(
        "cache_leak.js",
        &["--load", &load, "--units", "300"],
        &[("RUNS_FILE", runs_file.to_str().expect("UTF-8 path"))],
    );
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "the leak is found through the load command\n{ctx}");
    let doc = run.json();
    let url = doc["app"]["url"].as_str().unwrap_or_else(|| panic!("app.url\n{ctx}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let lines = std::fs::read_to_string(&runs_file).unwrap_or_default();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [format!("{url} 300"), format!("{url} 300")],
        "once per load phase, no warm-up run, with the app's URL\n{ctx}"
    );
    let rate = doc["clusters"][0]["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!((rate - 2.0).abs() <= 0.2, "2 entries per request: {rate}\n{ctx}");
    assert_app_gone(&run);
}

#[test]
fn a_load_answered_404_throughout_is_a_loud_warning() {
    let (run, _dir) = hunt("faulty.js", &[], &[("FAULT", "status"), ("FAULT_AFTER", "0")]);
    let ctx = run.context();
    assert!(matches!(run.code, Some(0 | 1)), "a verdict, with a warning\n{ctx}");
    let warnings = run.json()["warnings"].to_string();
    for phase in ["warmup", "load-1", "load-2"] {
        assert!(
            warnings.contains(&format!(
                "{phase}: 300 of 300 requests were not answered 2xx/3xx (300 × 404)"
            )) || (phase == "warmup"
                && warnings.contains("warmup: 100 of 100 requests were not answered 2xx/3xx (100 × 404)")),
            "{phase} is named in the warnings: {warnings}\n{ctx}"
        );
    }
    assert!(warnings.contains("--expect-status 2xx"), "{warnings}");
    assert!(
        run.stderr
            .contains("leakhound: warning: load-1: 300 of 300 requests were not answered 2xx/3xx"),
        "said on stderr too, beside the JSON\n{ctx}"
    );
    assert_app_gone(&run);
}

#[test]
fn an_unexpected_status_fails_the_hunt_and_keeps_the_snapshots() {
    // Request 1 is the readiness probe; the warm-up and load-1 end at request 401: the
    // 500s start in load-2, at request 551 (151 of its 300).
    let (run, dir) = hunt(
        "faulty.js",
        &["--expect-status", "2xx,3xx"],
        &[("FAULT", "status"), ("FAULT_AFTER", "550"), ("FAULT_STATUS", "500")],
    );
    assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &[
            "load phase load-2",
            "151 of 300 requests did not get the expected status (2xx,3xx): 151 × 500",
        ],
        &["01-baseline.heapsnapshot", "02-target.heapsnapshot"],
    );
}

#[test]
fn an_app_that_ignores_port_is_told_where_it_listens() {
    let (run, dir) = hunt("ignores_port.js", &["--ready-timeout", "3"], &[]);
    let port = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("app| ignores-port: listening on http://localhost:"))
        .unwrap_or_else(|| panic!("the app said where it listens\n{}", run.context()))
        .trim()
        .to_owned();
    let msg = assert_failed_cleanly(
        &run,
        &dir.path().join("snapshots"),
        &[
            "waiting for the app to become ready",
            "did not answer at http://127.0.0.1:",
            &format!("it listens on 127.0.0.1:{port} (its output: "),
            "does it ignore PORT?",
            &format!("--url http://127.0.0.1:{port}/"),
        ],
        &[],
    );
    assert!(run.elapsed < Duration::from_secs(20), "{:?}: {msg}", run.elapsed);
}

#[test]
fn rates_per_request_use_the_requests_each_phase_delivered() {
    // Load by time, one connection: load-1 gets some 40 slow answers, load-2 about 20 slow
    // ones and then many fast ones. The rate divides each step's growth by its own count.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("snapshots");
    let args: Vec<String> = [
        "hunt",
        "--json",
        "--duration",
        "1",
        "--connections",
        "1",
        "--warmup",
        "0",
        "--calm-down-ms",
        "300",
        "--gc-interval-ms",
        "200",
        "--out-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect();
    let run = {
        let _slot = Slot::take();
        start(dir.path(), &args, "slow_start_leak.js", &[]).finish()
    };
    let ctx = run.context();
    assert_eq!(run.code, Some(1), "{ctx}");
    let doc = run.json();
    let sent: Vec<u64> = doc["load"]
        .as_array()
        .unwrap_or_else(|| panic!("load\n{ctx}"))
        .iter()
        .filter_map(|l| l["requests_sent"].as_u64())
        .collect();
    assert!(
        sent.len() == 2 && sent[1] as f64 > 1.5 * sent[0] as f64,
        "the phases differ: {sent:?}\n{ctx}"
    );
    let top = &doc["clusters"][0];
    assert_eq!(top["root_class"], "Order", "{ctx}");
    let rate = top["per_request"]["count"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (rate - 1.0).abs() <= 0.05,
        "1 Order per request, measured per phase: {rate} (phases {sent:?})\n{ctx}"
    );
    assert_app_gone(&run);
}

#[test]
fn the_demo_keeps_its_server_beside_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = {
        let _slot = Slot::take();
        Command::new(BIN)
            .current_dir(dir.path())
            .args([
                "demo",
                "--json",
                "--requests",
                "300",
                "--warmup",
                "100",
                "--calm-down-ms",
                "300",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run leakhound demo")
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the demo finds its leak\n{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let server = std::fs::canonicalize(dir.path().join("leakhound-demo/shop-server.js"))
        .unwrap_or_else(|e| panic!("the server file stays beside the report: {e}\n{stderr}"));
    assert!(dir.path().join("leakhound-demo.html").is_file(), "{stderr}");
    let source = doc["clusters"][0]["source"].as_str().unwrap_or("");
    assert!(
        source.starts_with(&format!("{}:", server.display())),
        "the report's source points to a file that exists: {source}"
    );
}

#[test]
fn the_apps_output_can_go_to_a_file_or_be_shown_under_quiet() {
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("app.log");
    let to_file = format!("file:{}", log.display());
    let (run, _dir) = hunt("no_leak.js", &["--app-output", &to_file], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert!(!run.stderr.contains("app| "), "nothing of the app on stderr\n{ctx}");
    assert!(
        run.stderr.contains("leakhound: baseline snapshot"),
        "progress still shown\n{ctx}"
    );
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(written.contains("no-leak listening on"), "the file has it: {written:?}");
    // --quiet hides the progress; the app's output stays when asked for.
    let (run, _dir) = hunt("no_leak.js", &["--quiet", "--app-output", "show"], &[]);
    let ctx = run.context();
    assert_eq!(run.code, Some(0), "{ctx}");
    assert!(run.stderr.contains("app| no-leak listening on"), "{ctx}");
    assert!(!run.stderr.contains("leakhound: baseline snapshot"), "{ctx}");
}
