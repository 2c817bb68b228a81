//! `headroom::available_for` on a real process in a real memory cgroup: a sleeping process
//! moved into a group of our own with a 300 MiB limit is reported with that limit.
//!
//! Needs root and a writable cgroup file system with the memory controller (v2, or v1 as on
//! hybrid machines); CI runs as root. A machine where the group cannot be made fails the
//! test with the reason rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use leakhound_inspector::headroom::{self, CgroupVersion};

const LIMIT: u64 = 300 << 20;

/// A memory cgroup of our own, with a limit, at the top of the memory controller's
/// hierarchy; removed on drop (its processes must be gone by then).
struct MemoryCgroup {
    dir: PathBuf,
    version: CgroupVersion,
}

impl MemoryCgroup {
    fn create(name: &str, limit: u64) -> Result<MemoryCgroup, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let mut found = None;
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (fstype, mount_point) = (fields[dash + 1], fields[4]);
            let supers = fields.get(dash + 3).copied().unwrap_or("");
            if fstype == "cgroup" && supers.split(',').any(|o| o == "memory") {
                found = Some((CgroupVersion::V1, PathBuf::from(mount_point)));
                break;
            }
            if fstype == "cgroup2"
                && std::fs::read_to_string(Path::new(mount_point).join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
            {
                found = Some((CgroupVersion::V2, PathBuf::from(mount_point)));
            }
        }
        let (version, top) = found.ok_or("no cgroup file system with the memory controller is mounted")?;
        if version == CgroupVersion::V2 {
            let control = top.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control).unwrap_or_default();
            if !enabled.split_whitespace().any(|w| w == "memory") {
                std::fs::write(&control, "+memory")
                    .map_err(|e| format!("cannot enable the memory controller in {}: {e}", control.display()))?;
            }
        }
        let dir = top.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let group = MemoryCgroup { dir, version };
        let file = match version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "memory.max",
        };
        std::fs::write(group.dir.join(file), limit.to_string())
            .map_err(|e| format!("cannot set {}: {e}", group.dir.join(file).display()))?;
        Ok(group)
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("cannot move pid {pid} into {}: {e}", self.dir.display()));
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Kills the child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_process_in_a_cgroup_with_memory_max_300m_is_reported_with_that_limit() {
    let group = MemoryCgroup::create("leakhound-headroom-test", LIMIT).unwrap_or_else(|why| {
        panic!("cannot make a memory cgroup ({why}): this test needs root and the cgroup file system (CI runs as root)")
    });
    let sleeper = Killed(
        Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep"),
    );
    let pid = sleeper.0.id();
    group.add(pid);

    let available = headroom::available_for(pid).expect("available_for");
    let cgroup = available
        .cgroup
        .as_ref()
        .unwrap_or_else(|| panic!("no cgroup limit found: {available:?}"));
    assert_eq!(cgroup.version, group.version, "{available:?}");
    assert_eq!(cgroup.path, group.dir, "{available:?}");
    assert_eq!(available.cgroup_limit_bytes(), Some(LIMIT), "{available:?}");
    assert!(cgroup.current_bytes < LIMIT, "{available:?}");
    if available.override_bytes.is_none() {
        assert!(available.free_bytes() <= LIMIT, "{available:?}");
        assert!(
            available.free_bytes() > LIMIT / 2,
            "a sleeping process uses little: {available:?}"
        );
    }
    drop(sleeper);
}
