//! The memory limit of a process's cgroup, read from the cgroup file system: the process's
//! group in the memory controller's hierarchy (`/proc/PID/cgroup`), where that hierarchy is
//! mounted in ours (`/proc/self/mountinfo`), then each level from the group up to the top of
//! the mount: its limit, what is charged to it, and what of that the kernel can drop.
//!
//! cgroup v2 (`0::/path`; `memory.max` and `memory.high`, `memory.current`, `inactive_file`
//! of `memory.stat`) and cgroup v1 (`N:memory:/path`; `memory.limit_in_bytes`,
//! `memory.usage_in_bytes`, `total_inactive_file`; a parent with `memory.use_hierarchy` 0
//! does not count its children, so the walk stops below it) are both read. Swap limits are
//! not: a snapshot that fits only by swapping is taken as not fitting.

use std::path::{Component, Path, PathBuf};

use procfs::ProcessCGroup;
use procfs::process::MountInfo;

/// Values of `memory.limit_in_bytes` at or above this mean "no limit" in cgroup v1 (the
/// kernel writes `PAGE_COUNTER_MAX` pages: 9223372036854771712 with 4 KiB pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// The cgroup interface a limit was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1: the memory controller has a hierarchy of its own
    /// (`/sys/fs/cgroup/memory/…`).
    V1,
    /// cgroup v2: the unified hierarchy (`/sys/fs/cgroup/…`).
    V2,
}

/// The cgroup level that leaves a process the least memory: the process's own group or one
/// of its ancestors, with a limit. Figures in bytes, read from the cgroup file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMemory {
    /// Which interface the figures come from.
    pub version: CgroupVersion,
    /// The group's directory, e.g. `/sys/fs/cgroup/system.slice/app.service`.
    pub path: PathBuf,
    /// The file the limit is read from: `memory.max` or `memory.high` (v2; the lower of the
    /// two: past `memory.high` the kernel throttles the group hard), or
    /// `memory.limit_in_bytes` (v1).
    pub limit_file: &'static str,
    /// The limit, in bytes.
    pub limit_bytes: u64,
    /// What is charged to the group now, page cache included (`memory.current`, v1
    /// `memory.usage_in_bytes`), in bytes.
    pub current_bytes: u64,
    /// The part of `current_bytes` the kernel can drop without writing anything first: the
    /// inactive file pages (`inactive_file` in `memory.stat`, v1 `total_inactive_file`), in
    /// bytes. 0 when `memory.stat` cannot be read.
    pub reclaimable_bytes: u64,
}

impl CgroupMemory {
    /// What the group can still take before its limit, in bytes: the limit minus what is
    /// charged, the inactive file pages counted as free (as `docker stats` and the kubelet
    /// count a container's working set). 0 when the group is at or over its limit.
    pub fn free_bytes(&self) -> u64 {
        let working_set = self.current_bytes.saturating_sub(self.reclaimable_bytes);
        self.limit_bytes.saturating_sub(working_set)
    }
}

/// Where a process's group in the memory controller's hierarchy is in our file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// Which interface.
    pub(crate) version: CgroupVersion,
    /// The process's group.
    pub(crate) leaf: PathBuf,
    /// The top of the mount (the walk goes no higher).
    pub(crate) top: PathBuf,
}

/// Finds the process's memory cgroup: `cgroups` are the lines of its `/proc/PID/cgroup`,
/// `mounts` those of our `/proc/self/mountinfo`. A v1 hierarchy with the memory controller
/// is preferred (when memory is bound to v1, the v2 tree has no memory files); a v2 mount
/// counts when its `cgroup.controllers` lists `memory` (`controllers_of` reads that file).
///
/// # Errors
///
/// Why no group can be found, in words: no memory controller mounted, or the process's group
/// outside what our mount shows (another cgroup namespace).
pub(crate) fn locate(
    cgroups: &[ProcessCGroup],
    mounts: &[MountInfo],
    controllers_of: impl Fn(&Path) -> Option<String>,
) -> Result<Hierarchy, String> {
    let v1 = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.contains_key("memory"))
        .map(|m| (CgroupVersion::V1, m));
    let v2 = || {
        mounts
            .iter()
            .find(|m| {
                m.fs_type == "cgroup2"
                    && controllers_of(&m.mount_point.join("cgroup.controllers"))
                        .is_some_and(|c| c.split_whitespace().any(|w| w == "memory"))
            })
            .map(|m| (CgroupVersion::V2, m))
    };
    let Some((version, mount)) = v1.or_else(v2) else {
        return Err(String::from(
            "no cgroup file system with the memory controller is mounted",
        ));
    };
    let group = cgroups.iter().find(|g| match version {
        CgroupVersion::V1 => g.controllers.iter().any(|c| c == "memory"),
        CgroupVersion::V2 => g.hierarchy == 0 && g.controllers.is_empty(),
    });
    let Some(group) = group else {
        return Err(format!(
            "the process is in no group of the memory controller's hierarchy (mounted at {})",
            mount.mount_point.display()
        ));
    };
    let inside = if mount.root == "/" {
        Some(group.pathname.as_str())
    } else {
        group
            .pathname
            .strip_prefix(mount.root.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let relative = inside.map(Path::new).filter(|p| {
        p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    });
    let Some(relative) = relative else {
        return Err(format!(
            "the process's cgroup {} is outside the cgroup file system mounted at {} (another cgroup namespace)",
            group.pathname,
            mount.mount_point.display()
        ));
    };
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    Ok(Hierarchy {
        version,
        leaf: mount.mount_point.join(relative),
        top: mount.mount_point.clone(),
    })
}

/// Reads a limit file: `max` (v2) or a v1 value at or above 2^62 is no limit (`None`).
///
/// # Errors
///
/// The text is not a number of bytes.
pub(crate) fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    let n: u64 = t.parse().map_err(|_| format!("{t:?} is not a number of bytes"))?;
    Ok((n < V1_UNLIMITED).then_some(n))
}

/// The value of `key` in a `memory.stat` file (`key value` lines).
pub(crate) fn parse_stat(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// One level's limit: `Ok(None)` when it has none (or no limit file: the top of a v2
/// hierarchy, a group without the memory controller enabled).
fn level(dir: &Path, version: CgroupVersion) -> Result<Option<CgroupMemory>, String> {
    let read = |name: &str| -> Result<Option<String>, String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    };
    let limit_of = |name: &'static str| -> Result<Option<(u64, &'static str)>, String> {
        match read(name)? {
            Some(text) => Ok(parse_limit(&text)
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))?
                .map(|n| (n, name))),
            None => Ok(None),
        }
    };
    let (limit, current, stat_key) = match version {
        CgroupVersion::V2 => {
            let max = limit_of("memory.max")?;
            let high = limit_of("memory.high")?;
            let limit = match (max, high) {
                (Some(m), Some(h)) => Some(if h.0 < m.0 { h } else { m }),
                (m, h) => m.or(h),
            };
            (limit, "memory.current", "inactive_file")
        }
        CgroupVersion::V1 => (
            limit_of("memory.limit_in_bytes")?,
            "memory.usage_in_bytes",
            "total_inactive_file",
        ),
    };
    let Some((limit_bytes, limit_file)) = limit else {
        return Ok(None);
    };
    let current_text = read(current)?.ok_or_else(|| format!("{} has a limit but no {current}", dir.display()))?;
    let current_bytes = current_text.trim().parse().map_err(|_| {
        format!(
            "{}: {:?} is not a number of bytes",
            dir.join(current).display(),
            current_text.trim()
        )
    })?;
    let reclaimable_bytes = read("memory.stat")
        .ok()
        .flatten()
        .and_then(|s| parse_stat(&s, stat_key))
        .unwrap_or(0)
        .min(current_bytes);
    Ok(Some(CgroupMemory {
        version,
        path: dir.to_owned(),
        limit_file,
        limit_bytes,
        current_bytes,
        reclaimable_bytes,
    }))
}

/// The level of the hierarchy, from the process's group up to the top, that leaves the
/// least free memory ([`CgroupMemory::free_bytes`]); `Ok(None)` when no level has a limit.
///
/// # Errors
///
/// A limit file that cannot be read or parsed, or a level with a limit but no usage figure,
/// in words.
pub(crate) fn tightest(h: &Hierarchy) -> Result<Option<CgroupMemory>, String> {
    let mut best: Option<CgroupMemory> = None;
    let mut dir = h.leaf.clone();
    loop {
        if let Some(m) = level(&dir, h.version)?
            && best.as_ref().is_none_or(|b| m.free_bytes() < b.free_bytes())
        {
            best = Some(m);
        }
        if dir == h.top || !dir.starts_with(&h.top) {
            break;
        }
        let Some(parent) = dir.parent() else { break };
        // v1: a parent that does not use the hierarchy neither counts nor limits its children.
        if h.version == CgroupVersion::V1
            && std::fs::read_to_string(parent.join("memory.use_hierarchy")).is_ok_and(|t| t.trim() == "0")
        {
            break;
        }
        dir = parent.to_owned();
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufRead;
    use procfs::ProcessCGroups;
    use procfs::process::MountInfos;

    fn cgroups(text: &str) -> Vec<ProcessCGroup> {
        ProcessCGroups::from_buf_read(text.as_bytes()).unwrap().0
    }

    fn mounts(text: &str) -> Vec<MountInfo> {
        MountInfos::from_buf_read(text.as_bytes()).unwrap().0
    }

    /// A hybrid machine (this one's layout): memory on v1, a v2 tree without it.
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/f9ad8b35
1:cpu:/
0::/
";

    #[test]
    fn finds_the_v1_memory_hierarchy() {
        let h = locate(&cgroups(HYBRID_CGROUP), &mounts(HYBRID_MOUNTS), |_| {
            Some("hugetlb".into())
        })
        .unwrap();
        assert_eq!(
            h,
            Hierarchy {
                version: CgroupVersion::V1,
                leaf: PathBuf::from("/sys/fs/cgroup/memory/process_api/f9ad8b35"),
                top: PathBuf::from("/sys/fs/cgroup/memory"),
            }
        );
    }

    #[test]
    fn finds_the_v2_group() {
        let m =
            "25 20 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let controllers = |p: &Path| {
            assert_eq!(p, Path::new("/sys/fs/cgroup/cgroup.controllers"));
            Some(String::from("cpuset cpu io memory pids\n"))
        };
        let h = locate(&cgroups("0::/system.slice/app.service\n"), &mounts(m), controllers).unwrap();
        assert_eq!(h.version, CgroupVersion::V2);
        assert_eq!(h.leaf, Path::new("/sys/fs/cgroup/system.slice/app.service"));
        assert_eq!(h.top, Path::new("/sys/fs/cgroup"));
        // The root group.
        let h = locate(&cgroups("0::/\n"), &mounts(m), controllers).unwrap();
        assert_eq!(h.leaf, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn a_mount_of_a_subtree_is_followed_or_refused() {
        // v1 in a container without a cgroup namespace: the mount shows /docker/abc only.
        let m = "40 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory\n";
        let h = locate(&cgroups("4:memory:/docker/abc/sub\n"), &mounts(m), |_| None).unwrap();
        assert_eq!(h.leaf, Path::new("/sys/fs/cgroup/memory/sub"));
        let e = locate(&cgroups("4:memory:/docker/other\n"), &mounts(m), |_| None).unwrap_err();
        assert!(e.contains("outside the cgroup file system"), "{e}");
        // Another cgroup namespace shows the group as a path climbing out.
        let m2 = "25 20 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let e = locate(&cgroups("0::/../../user.slice\n"), &mounts(m2), |_| {
            Some("memory".into())
        })
        .unwrap_err();
        assert!(e.contains("another cgroup namespace"), "{e}");
    }

    #[test]
    fn no_memory_controller_is_said() {
        let m = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let e = locate(&cgroups("0::/\n"), &mounts(m), |_| Some("hugetlb".into())).unwrap_err();
        assert!(e.contains("no cgroup file system with the memory controller"), "{e}");
    }

    #[test]
    fn limits_and_stats_parse() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("314572800\n"), Ok(Some(314_572_800)));
        assert_eq!(parse_limit("9223372036854771712\n"), Ok(None));
        assert!(parse_limit("lots").is_err());
        let stat = "anon 1000\nfile 5000\nactive_file 3000\ninactive_file 2000\n";
        assert_eq!(parse_stat(stat, "inactive_file"), Some(2000));
        assert_eq!(parse_stat(stat, "active_file"), Some(3000));
        assert_eq!(parse_stat(stat, "shmem"), None);
        let v1 = "cache 4096\nrss 8192\ntotal_inactive_file 1024\ninactive_file 512\n";
        assert_eq!(parse_stat(v1, "total_inactive_file"), Some(1024));
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn the_tightest_ancestor_counts() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path();
        // The top of a v2 tree has no memory.max.
        write(top, &[("memory.current", "0\n")]);
        let a = top.join("a");
        write(
            &a,
            &[
                ("memory.max", "2000000000\n"),
                ("memory.high", "max\n"),
                ("memory.current", "1500000000\n"),
                ("memory.stat", "anon 1000000000\ninactive_file 500000000\n"),
            ],
        );
        let b = a.join("b");
        write(
            &b,
            &[
                ("memory.max", "max\n"),
                ("memory.high", "max\n"),
                ("memory.current", "900000000\n"),
            ],
        );
        let h = Hierarchy {
            version: CgroupVersion::V2,
            leaf: b.clone(),
            top: top.to_owned(),
        };
        let m = tightest(&h).unwrap().unwrap();
        assert_eq!(m.path, a);
        assert_eq!(
            (m.limit_bytes, m.current_bytes, m.reclaimable_bytes),
            (2_000_000_000, 1_500_000_000, 500_000_000)
        );
        assert_eq!(m.free_bytes(), 1_000_000_000);
        assert_eq!(m.limit_file, "memory.max");
        // A tighter memory.high below wins.
        write(&b, &[("memory.high", "1200000000\n")]);
        let m = tightest(&h).unwrap().unwrap();
        assert_eq!(
            (m.path.as_path(), m.limit_file, m.free_bytes()),
            (b.as_path(), "memory.high", 300_000_000)
        );
        // No limit anywhere.
        let h = Hierarchy {
            version: CgroupVersion::V2,
            leaf: top.to_owned(),
            top: top.to_owned(),
        };
        assert_eq!(tightest(&h).unwrap(), None);
    }

    #[test]
    fn v1_limits_and_use_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path();
        let none = "9223372036854771712\n";
        write(
            top,
            &[("memory.limit_in_bytes", none), ("memory.usage_in_bytes", "5000\n")],
        );
        let p = top.join("p");
        write(
            &p,
            &[
                ("memory.limit_in_bytes", "1000000\n"),
                ("memory.usage_in_bytes", "900000\n"),
                ("memory.stat", "cache 1\ntotal_inactive_file 100000\n"),
                ("memory.use_hierarchy", "1\n"),
            ],
        );
        let c = p.join("c");
        write(
            &c,
            &[
                ("memory.limit_in_bytes", "314572800\n"),
                ("memory.usage_in_bytes", "1000\n"),
                ("memory.use_hierarchy", "1\n"),
            ],
        );
        let h = Hierarchy {
            version: CgroupVersion::V1,
            leaf: c.clone(),
            top: top.to_owned(),
        };
        let m = tightest(&h).unwrap().unwrap();
        assert_eq!(
            (m.path.as_path(), m.limit_file, m.free_bytes()),
            (p.as_path(), "memory.limit_in_bytes", 200_000)
        );
        // A parent that does not use the hierarchy does not limit its children.
        write(&p, &[("memory.use_hierarchy", "0\n")]);
        let m = tightest(&h).unwrap().unwrap();
        assert_eq!((m.path.as_path(), m.limit_bytes), (c.as_path(), 314_572_800));
        // A limit without a usage figure is an error, not a guess.
        std::fs::remove_file(c.join("memory.usage_in_bytes")).unwrap();
        assert!(tightest(&h).unwrap_err().contains("no memory.usage_in_bytes"));
    }
}
