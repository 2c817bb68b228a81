//! The memory headroom check of `leakhound snapshot --pid`: a snapshot that would not fit
//! the memory free for the process is refused before anything is written, whether the
//! shortage is pretended (`LEAKHOUND_AVAILABLE_BYTES`) or real (the process in a memory
//! cgroup of 300 MiB); `--ignore-headroom` takes it anyway, with a warning. The process is
//! attached to, never stopped. (The hunt's side is in `hunt.rs`.)
//!
//! The cgroup test needs root and a writable cgroup file system with the memory controller
//! (v2, or v1 as on hybrid machines); CI runs as root. A machine where the group cannot be
//! made fails it with the reason rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const OVERRIDE: &str = "LEAKHOUND_AVAILABLE_BYTES";

/// A node process that idles, killed on drop. Its inspector (when SIGUSR1 opens it) takes a
/// free port, so tests running side by side do not meet on 9229.
struct App(Child);

impl App {
    fn start() -> App {
        let child = Command::new("node")
            .args([
                "--inspect-port=127.0.0.1:0",
                "-e",
                "const keep = []; for (let i = 0; i < 1e5; i++) keep.push({ i }); setInterval(() => keep.length, 1000)",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("start node");
        // Let node install its SIGUSR1 handler.
        std::thread::sleep(Duration::from_millis(700));
        App(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn is_running(&mut self) -> bool {
        self.0.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `leakhound snapshot --pid PID -o DIR/app.heapsnapshot [extra]` with `env` (the override
/// removed unless given).
fn snapshot(pid: u32, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["snapshot", "--pid", &pid.to_string(), "-o"])
        .arg(dir.join("app.heapsnapshot"))
        .args(extra)
        .env_remove(OVERRIDE)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run leakhound")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Exit 2, a one-line refusal with each of `needles`, no file (not even a partial one), and
/// the process still running.
fn assert_refused(out: &Output, dir: &Path, app: &mut App, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "expected exit 2\n{stderr}");
    let msg = stderr
        .lines()
        .rfind(|l| l.starts_with("leakhound: "))
        .unwrap_or_else(|| panic!("no `leakhound: …` line:\n{stderr}"))
        .to_owned();
    for n in needles {
        assert!(msg.contains(n), "the message should mention {n:?}:\n{msg}");
    }
    assert_eq!(files_in(dir), Vec::<String>::new(), "nothing is written\n{stderr}");
    assert!(app.is_running(), "an attached process is never stopped");
    msg
}

#[test]
fn snapshot_pid_refuses_when_less_is_free_than_writing_needs() {
    let mut app = App::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = snapshot(app.pid(), dir.path(), &[], &[(OVERRIDE, "1M")]);
    assert_refused(
        &out,
        dir.path(),
        &mut app,
        &[
            "writing the snapshot would need about",
            "1 MB are free (LEAKHOUND_AVAILABLE_BYTES)",
            "no snapshot taken",
            "--ignore-headroom",
        ],
    );
}

#[test]
fn snapshot_pid_with_ignore_headroom_takes_it_and_warns() {
    let mut app = App::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = snapshot(app.pid(), dir.path(), &["--ignore-headroom"], &[(OVERRIDE, "1M")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("leakhound: warning: taken with --ignore-headroom: writing the snapshot would need about"),
        "{stderr}"
    );
    assert_eq!(files_in(dir.path()), ["app.heapsnapshot"]);
    assert!(app.is_running());
    // A bad override is an error, not a silent default.
    let out = snapshot(app.pid(), dir.path(), &[], &[(OVERRIDE, "plenty")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: memory headroom not checked: LEAKHOUND_AVAILABLE_BYTES=\"plenty\" is not a size"),
        "{stderr}"
    );
}

/// A memory cgroup of our own with a limit, at the top of the memory controller's
/// hierarchy (v1 or v2); removed on drop, once its processes are gone.
struct MemoryCgroup(PathBuf);

impl MemoryCgroup {
    fn create(name: &str, limit: u64) -> Result<MemoryCgroup, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let mut found = None;
        for line in mountinfo.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let Some(dash) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            let supers = f.get(dash + 3).copied().unwrap_or("");
            if f[dash + 1] == "cgroup" && supers.split(',').any(|o| o == "memory") {
                found = Some((PathBuf::from(f[4]), "memory.limit_in_bytes"));
                break;
            }
            if f[dash + 1] == "cgroup2"
                && std::fs::read_to_string(Path::new(f[4]).join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
            {
                let control = Path::new(f[4]).join("cgroup.subtree_control");
                if !std::fs::read_to_string(&control).is_ok_and(|c| c.split_whitespace().any(|w| w == "memory")) {
                    std::fs::write(&control, "+memory")
                        .map_err(|e| format!("cannot enable the memory controller in {}: {e}", control.display()))?;
                }
                found = Some((PathBuf::from(f[4]), "memory.max"));
            }
        }
        let (top, limit_file) = found.ok_or("no cgroup file system with the memory controller is mounted")?;
        let dir = top.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let group = MemoryCgroup(dir);
        std::fs::write(group.0.join(limit_file), limit.to_string())
            .map_err(|e| format!("cannot set {limit_file}: {e}"))?;
        Ok(group)
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("cannot move pid {pid} into {}: {e}", self.0.display()));
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn snapshot_pid_refuses_in_a_cgroup_whose_limit_is_too_small() {
    let group = MemoryCgroup::create("leakhound-headroom-cli-test", 300 << 20).unwrap_or_else(|why| {
        panic!("cannot make a memory cgroup ({why}): this test needs root and the cgroup file system (CI runs as root)")
    });
    let mut app = App::start();
    group.add(app.pid());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = snapshot(app.pid(), dir.path(), &[], &[]);
    // 300 MiB = 315 MB; a fresh node heap needs about 150 MB plus a 256 MiB margin.
    let msg = assert_refused(
        &out,
        dir.path(),
        &mut app,
        &["would need about", "cgroup limit 315 MB in", "no snapshot taken"],
    );
    assert!(
        msg.contains(&group.0.display().to_string()),
        "the group is named:\n{msg}"
    );
    drop(app);
}
