//! Memory headroom before a heap snapshot: what writing one will cost the target, what is
//! free for it, and whether the one fits the other.
//!
//! Writing a snapshot makes V8 build the whole graph in the target's own memory before a
//! byte is written: an entry per object, an edge per reference, a copy of every name, an id
//! map it keeps afterwards, and, for every distinct index of a big array, Map, Set or
//! dictionary that holds objects, a 1 KiB name buffer (V8's `StringsStorage::GetFormatted`
//! keeps the whole buffer). So the cost follows the **objects and the size of the biggest
//! collections**, not the heap's bytes: 800 MB of 512 KiB strings cost the app 16 MB, 800
//! MB of small objects in arrays of 100,000 cost 5.0 GB, and 1.2 M objects in one array
//! cost 1.7 GB for 52 MB of heap (33×). An app near its machine's or its container's limit
//! is killed by the kernel's OOM killer mid-snapshot, so leakhound checks before each
//! snapshot.
//!
//! - [`HeapFigures`]: what is known before the snapshot: `heapUsed`, how much of it is in
//!   V8's large-object spaces ([`Session::heap_figures`]), and what the previous snapshot
//!   of the process cost, when there is one ([`PreviousSnapshot`], from [`rss_of`]).
//! - [`estimate_snapshot_cost`] → [`SnapshotCost`]: extra resident memory of the target
//!   while it writes, and the file's size (charged to its cgroup as page cache).
//! - [`available_for`] → [`Available`]: the machine's `MemAvailable` (`/proc/meminfo`)
//!   and the tightest memory limit of the target's cgroup or its ancestors
//!   ([`CgroupMemory`], v2 or v1), or the override [`AVAILABLE_OVERRIDE_ENV`].
//! - [`check`] / [`judge`] → [`Check`]: [`Fit::Fits`], [`Fit::Tight`] or
//!   [`Fit::DoesNotFit`], with the numbers and a sentence for people.
//!
//! # The model (measured: `bench/RESULTS.md`, "Snapshot capture cost (headroom model)")
//!
//! Extra resident memory of a node 20 process while it writes a snapshot of itself
//! (`v8.writeHeapSnapshot`, the path leakhound uses; `VmHWM` after minus `VmRSS` before) on
//! heaps of 5 to 800 MB of many shapes. Object and edge counts are not known before a
//! snapshot (and the array sizes not even after one, short of reading the file), so the
//! estimate is an upper bound from what is:
//!
//! ```text
//! first snapshot:  extra RSS = BASE + PER_SMALL_BYTE × small + PER_LARGE_BYTE × large
//!                  file      = FILE_PER_SMALL_BYTE × small + FILE_PER_LARGE_BYTE × large
//! ```
//!
//! `large` is the bytes in V8's large-object spaces (`v8.getHeapSpaceStatistics()`: objects
//! over 128 KiB, so every array, Map, Set or dictionary of more than 16,384 slots) and
//! `small = heapUsed − large`. `PER_SMALL_BYTE` is the worst cost per byte measured on heaps
//! of small objects (objects with strings of their own: 9.5, index names aside);
//! `PER_LARGE_BYTE` is the cost of a full big array: 1.2 KB per 8-byte slot that holds an
//! object (the slot's index name and edge). Measured on 24 heaps, the estimate is 1.2× to
//! 5.8× the real cost for heaps of objects (tightest: objects in one array; loosest: many
//! arrays of 100,000, whose index names are shared). Big strings and arrays of numbers, also
//! large objects, cost nearly nothing: heaps of them are over-estimated by far (300× to
//! 7,000×: the price of not knowing what is in the large-object space before a snapshot).
//! `external` memory (Buffers) is not in the snapshot. Arrays of up to 16,384 slots cost at
//! most 20 MB of names, in `BASE`.
//!
//! After a snapshot of the process its real cost is known: the target's `VmHWM` after it
//! minus its `VmRSS` before the series' first snapshot (memory an earlier snapshot left in
//! the RSS, which the app may reuse meanwhile, counts again). Then
//!
//! ```text
//! later snapshots: extra RSS = measured + (first-snapshot formula, without BASE, on the growth
//!                              of small and large since), at most the first-snapshot formula
//!                              on the whole heap, at least the measured cost
//!                  file      = previous file + the file formula on the growth
//! ```
//!
//! Most of the cost stays in the app's RSS after the snapshot (V8 keeps its id map, the
//! allocator its freed pages): a second snapshot of the same heap measured 20–60 % of the
//! first. The streamed fallback (`HeapProfiler.takeHeapSnapshot`, when the target cannot
//! write the file itself) measured within 3 % of the same extra RSS; its file is written by
//! leakhound, outside the target's cgroup.
//!
//! # What is free, and the verdict
//!
//! Free for the target is the smaller of the machine's `MemAvailable` and, when its cgroup
//! or an ancestor has a limit, that group's limit minus its working set (charged memory
//! minus inactive file pages); against a cgroup the snapshot's file counts too, since its
//! page cache is charged to the writer's group. With `margin = max(MIN_MARGIN, need / 4)`:
//! `need + margin > free` does not fit, `need + 2 × margin > free` is tight, else it fits.

mod cgroup;
pub mod disk;

use std::fmt;
use std::path::{Path, PathBuf};

use procfs::process::Process;
use procfs::{Current, Meminfo, ProcError};
use serde_json::{Value, json};

pub use cgroup::{CgroupMemory, CgroupVersion};

use crate::error::{HeadroomError, InspectorError, shorten};
use crate::session::{Session, exception_text};

/// The environment variable that overrides the free memory: a size in bytes (`1073741824`)
/// or with a unit (`300M`, `1.5G`; K, M, G and T are powers of 1024). leakhound then
/// pretends this much is free for the target, whatever the machine and its cgroup say: for
/// tests, and for users who know better.
pub const AVAILABLE_OVERRIDE_ENV: &str = "LEAKHOUND_AVAILABLE_BYTES";

/// Fixed part of the extra RSS, in bytes: a snapshot of an idle node process costs it
/// ~30 MB, and arrays of up to 16,384 slots add up to ~20 MB of index names.
pub const BASE: u64 = 64 << 20;
/// Extra RSS per byte of `heapUsed` outside the large-object spaces: the worst measured
/// was 9.5 (small objects, each with a string of its own), rounded up.
pub const PER_SMALL_BYTE: u64 = 10;
/// Extra RSS per byte in the large-object spaces: a slot (8 bytes) of a big array, Map or
/// dictionary holding an object costs its index's 1 KiB name buffer and its edge
/// (measured: 1.25 M slots holding one object cost 1.17 GB, 0.93 KB a slot); 150 a byte is
/// 1.2 KB a slot.
pub const PER_LARGE_BYTE: u64 = 150;
/// Snapshot file bytes per byte of `heapUsed` outside the large-object spaces: the worst
/// measured was 2.1, rounded up.
pub const FILE_PER_SMALL_BYTE: u64 = 3;
/// Snapshot file bytes per byte in the large-object spaces (an edge and an index name per
/// slot: 5.6 measured), rounded up.
pub const FILE_PER_LARGE_BYTE: u64 = 6;
/// Smallest margin kept free on top of the estimate, in bytes.
pub const MIN_MARGIN: u64 = 256 << 20;

/// What is known about the target's heap right before a snapshot (after the forced GC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapFigures {
    /// V8 heap in use (`process.memoryUsage().heapUsed`), in bytes.
    pub heap_used_bytes: u64,
    /// Of it, the bytes in V8's large-object spaces (`large_object_space`,
    /// `new_large_object_space`, `code_large_object_space`, … of
    /// `v8.getHeapSpaceStatistics()`): objects over 128 KiB. 0 when the target cannot say
    /// (all of `heapUsed` is then counted as small objects).
    pub large_object_bytes: u64,
    /// The previous snapshot of the same process and what it cost, when there is one.
    pub previous: Option<PreviousSnapshot>,
}

impl HeapFigures {
    /// `heapUsed` outside the large-object spaces, in bytes.
    pub fn small_object_bytes(&self) -> u64 {
        self.heap_used_bytes.saturating_sub(self.large_object_bytes)
    }
}

/// A snapshot already taken of the process: the heap it was taken of and what writing it
/// cost, read from the target's `/proc/PID/status` ([`rss_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSnapshot {
    /// `heapUsed` right before it ([`HeapFigures::heap_used_bytes`]), in bytes.
    pub heap_used_bytes: u64,
    /// Of it, the bytes in the large-object spaces ([`HeapFigures::large_object_bytes`]).
    pub large_object_bytes: u64,
    /// The target's resident set (`VmRSS`) right before the first snapshot of the series
    /// (this one, when it was the first), in bytes.
    pub rss_before_bytes: u64,
    /// The target's peak resident set (`VmHWM`) right after this snapshot, in bytes.
    pub peak_rss_bytes: u64,
    /// Its file's size, in bytes.
    pub file_bytes: u64,
}

impl PreviousSnapshot {
    /// What the snapshot cost the target: its peak after the snapshot minus its resident
    /// set before the series' first snapshot, in bytes (an upper bound: the peak may be
    /// older, the RSS may have grown with the app).
    pub fn measured_rss_bytes(&self) -> u64 {
        self.peak_rss_bytes.saturating_sub(self.rss_before_bytes)
    }
}

/// A process's resident set now and at its peak, in bytes (`VmRSS` and `VmHWM` of
/// `/proc/PID/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRss {
    /// Resident set now (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// Highest resident set so far (`VmHWM`), in bytes.
    pub peak_bytes: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid` (in KiB in the file; bytes here).
///
/// # Errors
///
/// [`HeadroomError::NoSuchProcess`], or [`HeadroomError::Read`] (unreadable, or no such
/// fields: a kernel thread, a zombie).
pub fn rss_of(pid: u32) -> Result<ProcessRss, HeadroomError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let raw = i32::try_from(pid).map_err(|_| HeadroomError::NoSuchProcess { pid })?;
    let status = Process::new(raw).and_then(|p| p.status()).map_err(|e| match e {
        ProcError::NotFound(_) => HeadroomError::NoSuchProcess { pid },
        e => read_error(&path, e),
    })?;
    match (status.vmrss, status.vmhwm) {
        (Some(rss), Some(peak)) => Ok(ProcessRss {
            rss_bytes: rss.saturating_mul(1024),
            peak_bytes: peak.saturating_mul(1024),
        }),
        _ => Err(HeadroomError::Read {
            path,
            source: std::io::Error::other("no VmRSS or VmHWM"),
        }),
    }
}

/// What the estimate was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostBasis {
    /// `heapUsed` and the large-object spaces alone, at the worst rates measured.
    HeapUsed,
    /// What the previous snapshot of the process cost, plus the heap's growth since at the
    /// worst rates.
    PreviousSnapshot {
        /// [`PreviousSnapshot::measured_rss_bytes`].
        measured_rss_bytes: u64,
    },
}

/// What writing the next snapshot is estimated to cost the target (an upper bound; see the
/// module's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotCost {
    /// Extra resident memory of the target while it writes (peak minus before), in bytes.
    pub rss_bytes: u64,
    /// Size of the snapshot file, in bytes: its page cache is charged to the writer's cgroup.
    pub file_bytes: u64,
    /// Where the numbers come from.
    pub basis: CostBasis,
}

/// The first-snapshot formula without [`BASE`]: (extra RSS, file) for `small` and `large`
/// bytes.
fn worst_case(small: u64, large: u64) -> (u64, u64) {
    (
        small
            .saturating_mul(PER_SMALL_BYTE)
            .saturating_add(large.saturating_mul(PER_LARGE_BYTE)),
        small
            .saturating_mul(FILE_PER_SMALL_BYTE)
            .saturating_add(large.saturating_mul(FILE_PER_LARGE_BYTE)),
    )
}

/// Estimates what writing a snapshot of a heap with these figures costs the target, by the
/// module's model (constants [`BASE`], [`PER_SMALL_BYTE`], [`PER_LARGE_BYTE`],
/// [`FILE_PER_SMALL_BYTE`], [`FILE_PER_LARGE_BYTE`]). Saturates instead of overflowing.
pub fn estimate_snapshot_cost(f: &HeapFigures) -> SnapshotCost {
    let (rss, file) = worst_case(f.small_object_bytes(), f.large_object_bytes);
    let whole = SnapshotCost {
        rss_bytes: BASE.saturating_add(rss),
        file_bytes: file,
        basis: CostBasis::HeapUsed,
    };
    let Some(prev) = f.previous else { return whole };
    let measured = prev.measured_rss_bytes();
    let prev_small = prev.heap_used_bytes.saturating_sub(prev.large_object_bytes);
    let (grown_rss, grown_file) = worst_case(
        f.small_object_bytes().saturating_sub(prev_small),
        f.large_object_bytes.saturating_sub(prev.large_object_bytes),
    );
    SnapshotCost {
        rss_bytes: measured.saturating_add(grown_rss).min(whole.rss_bytes).max(measured),
        file_bytes: prev
            .file_bytes
            .saturating_add(grown_file)
            .min(whole.file_bytes.max(prev.file_bytes)),
        basis: CostBasis::PreviousSnapshot {
            measured_rss_bytes: measured,
        },
    }
}

/// Memory free for a target process, in bytes, and where the figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// The machine's `MemAvailable` (`/proc/meminfo`: free memory plus what the kernel can
    /// reclaim without swapping), in bytes.
    pub machine_available_bytes: u64,
    /// The target's cgroup level with the least room, when it or an ancestor has a memory
    /// limit (None: no limit, or unknown: see `cgroup_note`).
    pub cgroup: Option<CgroupMemory>,
    /// Why the cgroup's limit is not known, when it is not (no memory controller mounted,
    /// the target in another cgroup namespace, a file that cannot be read).
    pub cgroup_note: Option<String>,
    /// The value of [`AVAILABLE_OVERRIDE_ENV`], when set: it replaces the figures above.
    pub override_bytes: Option<u64>,
}

impl Available {
    /// The cgroup's limit, in bytes, when one applies.
    pub fn cgroup_limit_bytes(&self) -> Option<u64> {
        self.cgroup.as_ref().map(|c| c.limit_bytes)
    }

    /// What is charged to the limiting cgroup now, in bytes, when one applies.
    pub fn cgroup_current_bytes(&self) -> Option<u64> {
        self.cgroup.as_ref().map(|c| c.current_bytes)
    }

    /// The free figure: the override when set, else the smaller of the machine's and the
    /// cgroup's, in bytes.
    pub fn free_bytes(&self) -> u64 {
        match (self.override_bytes, &self.cgroup) {
            (Some(n), _) => n,
            (None, Some(c)) => c.free_bytes().min(self.machine_available_bytes),
            (None, None) => self.machine_available_bytes,
        }
    }

    /// The constraint that sets [`Available::free_bytes`] and what the snapshot needs
    /// against it: the cgroup's when it has less room than the machine (the file's page
    /// cache then counts), else the machine's (or the override's).
    fn need_and_free(&self, cost: &SnapshotCost) -> (u64, u64, Limit) {
        let machine = (cost.rss_bytes, self.machine_available_bytes, Limit::Machine);
        match (self.override_bytes, &self.cgroup) {
            (Some(n), _) => (cost.rss_bytes, n, Limit::Override),
            (None, Some(c)) => {
                let in_group = (
                    cost.rss_bytes.saturating_add(cost.file_bytes),
                    c.free_bytes(),
                    Limit::Cgroup,
                );
                let room = |(need, free, _): (u64, u64, Limit)| free as i128 - need as i128;
                if room(in_group) < room(machine) {
                    in_group
                } else {
                    machine
                }
            }
            (None, None) => machine,
        }
    }
}

/// Which figure limits a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The machine's `MemAvailable`.
    Machine,
    /// The target's cgroup (or an ancestor's) memory limit.
    Cgroup,
    /// [`AVAILABLE_OVERRIDE_ENV`].
    Override,
}

/// Whether a snapshot fits the free memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The estimate plus twice the margin fits.
    Fits,
    /// The estimate plus the margin fits, but not plus twice the margin: take it, and warn.
    Tight,
    /// The estimate plus the margin does not fit: do not take it (the kernel could kill
    /// the app while it writes).
    DoesNotFit,
}

/// The outcome of the check before a snapshot, with its numbers. Its `Display` is a
/// sentence for people: "writing the snapshot would need about 4.1 GB more for the app;
/// 1.2 GB are free (cgroup limit 2.0 GB at /sys/fs/cgroup/app, 0.8 GB in use)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The verdict.
    pub fit: Fit,
    /// The estimate.
    pub cost: SnapshotCost,
    /// The free figures.
    pub available: Available,
    /// Which figure limits.
    pub limit: Limit,
    /// What the snapshot needs against that figure, in bytes: the extra RSS, plus the file
    /// when the limit is a cgroup's.
    pub need_bytes: u64,
    /// The free memory against which `need_bytes` is judged, in bytes.
    pub free_bytes: u64,
    /// The margin kept on top of the need, in bytes.
    pub margin_bytes: u64,
}

/// Judges `cost` against `available` (pure; see the module's rule).
pub fn judge(cost: SnapshotCost, available: Available) -> Check {
    let (need_bytes, free_bytes, limit) = available.need_and_free(&cost);
    let margin_bytes = MIN_MARGIN.max(need_bytes / 4);
    let fit = if need_bytes.saturating_add(margin_bytes) > free_bytes {
        Fit::DoesNotFit
    } else if need_bytes.saturating_add(margin_bytes.saturating_mul(2)) > free_bytes {
        Fit::Tight
    } else {
        Fit::Fits
    };
    Check {
        fit,
        cost,
        available,
        limit,
        need_bytes,
        free_bytes,
        margin_bytes,
    }
}

/// Estimates the snapshot of a heap with `figures` and judges it against what is free for
/// process `pid` ([`available_for`]).
///
/// # Errors
///
/// As [`available_for`].
pub fn check(pid: u32, figures: &HeapFigures) -> Result<Check, HeadroomError> {
    Ok(judge(estimate_snapshot_cost(figures), available_for(pid)?))
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "writing the snapshot would need about {} more for the app",
            human(self.need_bytes)
        )?;
        match (self.limit == Limit::Cgroup, self.cost.basis) {
            (true, _) => write!(
                f,
                " (with its {} file, charged to its cgroup)",
                human(self.cost.file_bytes)
            )?,
            (false, CostBasis::PreviousSnapshot { measured_rss_bytes }) => {
                write!(f, " (the last snapshot took {})", human(measured_rss_bytes))?;
            }
            (false, CostBasis::HeapUsed) => {}
        }
        write!(
            f,
            "; {} {} free (",
            human(self.free_bytes),
            if self.free_bytes == 1 { "is" } else { "are" }
        )?;
        match (self.limit, &self.available.cgroup) {
            (Limit::Override, _) => write!(f, "{AVAILABLE_OVERRIDE_ENV}")?,
            (Limit::Cgroup, Some(c)) => write!(
                f,
                "cgroup limit {} in {}, {} in use",
                human(c.limit_bytes),
                c.path.join(c.limit_file).display(),
                human(c.current_bytes.saturating_sub(c.reclaimable_bytes))
            )?,
            _ => {
                write!(f, "the machine's MemAvailable")?;
                if let Some(c) = &self.available.cgroup {
                    write!(
                        f,
                        "; cgroup limit {} leaves {}",
                        human(c.limit_bytes),
                        human(c.free_bytes())
                    )?;
                } else if let Some(note) = &self.available.cgroup_note {
                    write!(f, "; cgroup limit unknown: {note}")?;
                }
            }
        }
        write!(f, ")")?;
        if self.fit != Fit::Fits {
            write!(f, ", with a margin of {}", human(self.margin_bytes))?;
        }
        Ok(())
    }
}

/// `n` bytes for people, in the report's decimal units: `950 MB`, `4.1 GB`.
fn human(n: u64) -> String {
    let f = n as f64;
    if f < 1e6 {
        format!("{:.0} kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.0} MB", f / 1e6)
    } else {
        format!("{:.1} GB", f / 1e9)
    }
}

/// What is free for process `pid`: the machine's `MemAvailable`, and the tightest memory
/// limit of its cgroup or an ancestor (cgroup v2 or v1, through `/proc/PID/cgroup`, our
/// `/proc/self/mountinfo` and the cgroup files). [`AVAILABLE_OVERRIDE_ENV`], when set,
/// replaces both in [`Available::free_bytes`].
///
/// A cgroup that cannot be read is not an error: [`Available::cgroup_note`] says why.
///
/// # Errors
///
/// [`HeadroomError::NoSuchProcess`], [`HeadroomError::Read`] (`/proc/meminfo`, or the
/// process's `/proc/PID/cgroup` or our mountinfo), or [`HeadroomError::BadOverride`].
pub fn available_for(pid: u32) -> Result<Available, HeadroomError> {
    let override_bytes = override_from_env()?;
    let machine_available_bytes = machine_available()?;
    let (cgroup, cgroup_note) = match cgroup_of(pid)? {
        Ok(c) => (c, None),
        Err(note) => (None, Some(note)),
    };
    Ok(Available {
        machine_available_bytes,
        cgroup,
        cgroup_note,
        override_bytes,
    })
}

/// The machine's free memory only (for a target whose process is not known for sure, such
/// as one reached by an inspector URL): `MemAvailable`, and [`AVAILABLE_OVERRIDE_ENV`].
///
/// # Errors
///
/// [`HeadroomError::Read`] (`/proc/meminfo`) or [`HeadroomError::BadOverride`].
pub fn available_on_machine() -> Result<Available, HeadroomError> {
    Ok(Available {
        machine_available_bytes: machine_available()?,
        cgroup: None,
        cgroup_note: Some(String::from("the target's process is not known")),
        override_bytes: override_from_env()?,
    })
}

fn override_from_env() -> Result<Option<u64>, HeadroomError> {
    match std::env::var(AVAILABLE_OVERRIDE_ENV) {
        Ok(v) => parse_size(&v).map(Some).ok_or(HeadroomError::BadOverride {
            name: AVAILABLE_OVERRIDE_ENV,
            value: v,
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(HeadroomError::BadOverride {
            name: AVAILABLE_OVERRIDE_ENV,
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

/// A size: bytes (`1073741824`), or a number with `K`, `M`, `G` or `T` (powers of 1024,
/// optionally followed by `B` or `iB`, any case): `300M`, `1.5G`, `2GiB`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    let number = number.trim();
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(scale);
    }
    let f: f64 = number.parse().ok()?;
    let bytes = f * scale as f64;
    // Deliberate truncation of a finite, non-negative size below 2^64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (f.is_finite() && f >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (kernels before 3.14 lack it: `MemFree`
/// plus `Cached` there).
fn machine_available() -> Result<u64, HeadroomError> {
    let m = Meminfo::current().map_err(|e| read_error(Path::new("/proc/meminfo"), e))?;
    Ok(mem_available(&m))
}

fn mem_available(m: &Meminfo) -> u64 {
    m.mem_available.unwrap_or(m.mem_free.saturating_add(m.cached))
}

/// The cgroup figure of `pid`: `Ok(Ok(None))` no limit, `Ok(Err(why))` unknown.
fn cgroup_of(pid: u32) -> Result<Result<Option<CgroupMemory>, String>, HeadroomError> {
    let raw = i32::try_from(pid).map_err(|_| HeadroomError::NoSuchProcess { pid })?;
    let process = Process::new(raw).map_err(|e| match e {
        ProcError::NotFound(_) => HeadroomError::NoSuchProcess { pid },
        e => read_error(&PathBuf::from(format!("/proc/{pid}")), e),
    })?;
    let groups = process.cgroups().map_err(|e| match e {
        ProcError::NotFound(_) => HeadroomError::NoSuchProcess { pid },
        e => read_error(&PathBuf::from(format!("/proc/{pid}/cgroup")), e),
    })?;
    let mounts = Process::myself()
        .and_then(|me| me.mountinfo())
        .map_err(|e| read_error(Path::new("/proc/self/mountinfo"), e))?;
    let hierarchy = match cgroup::locate(&groups.0, &mounts.0, |p| std::fs::read_to_string(p).ok()) {
        Ok(h) => h,
        Err(why) => return Ok(Err(why)),
    };
    Ok(cgroup::tightest(&hierarchy))
}

fn read_error(path: &Path, e: ProcError) -> HeadroomError {
    let source = match e {
        ProcError::Io(source, _) => source,
        ProcError::PermissionDenied(_) => std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        other => std::io::Error::other(other.to_string()),
    };
    HeadroomError::Read {
        path: path.to_owned(),
        source,
    }
}

/// The target's side of the figures: `process.memoryUsage().heapUsed` and the used bytes
/// of V8's large-object spaces (`v8.getHeapSpaceStatistics()`; 0 when the `v8` module is
/// not reachable).
fn figures_script() -> &'static str {
    "(() => { const heapUsed = process.memoryUsage().heapUsed; let large = 0; \
     try { const v8 = (typeof process.getBuiltinModule === 'function') ? process.getBuiltinModule('v8') : require('v8'); \
     for (const s of v8.getHeapSpaceStatistics()) if (s.space_name.includes('large_object')) large += s.space_used_size; \
     } catch (e) { large = 0; } return { heapUsed, large }; })()"
}

impl Session {
    /// Reads the target's [`HeapFigures`] (no previous snapshot): `heapUsed` and the bytes
    /// in V8's large-object spaces, in one `Runtime.evaluate` (with the command-line API,
    /// for `require` in CommonJS-less targets).
    ///
    /// # Errors
    ///
    /// As [`Session::call`], [`InspectorError::Exception`] when the expression throws, and
    /// [`InspectorError::UnexpectedReply`] when the value lacks the numbers.
    ///
    /// # Cancel safety
    ///
    /// As [`Session::call`].
    pub async fn heap_figures(&self) -> Result<HeapFigures, InspectorError> {
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": figures_script(), "returnByValue": true, "includeCommandLineAPI": true }),
            )
            .await?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(InspectorError::Exception {
                expression: String::from("heap figures"),
                text: exception_text(details),
            });
        }
        let value = reply.pointer("/result/value").cloned().unwrap_or(Value::Null);
        figures_from_js(&value).ok_or_else(|| InspectorError::UnexpectedReply {
            method: String::from("heap figures"),
            reason: format!("unexpected value {}", shorten(&value.to_string(), 200)),
        })
    }
}

fn figures_from_js(v: &Value) -> Option<HeapFigures> {
    let n = |key: &str| -> Option<u64> {
        let f = v.get(key)?.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
        // Deliberate truncation: byte counts JSON carried as floats.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f as u64)
    };
    let heap_used_bytes = n("heapUsed")?;
    Some(HeapFigures {
        heap_used_bytes,
        large_object_bytes: n("large")?.min(heap_used_bytes),
        previous: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromBufRead;

    /// A real `/proc/meminfo` (Linux 6.18, 24 GB), cut to the fields procfs requires.
    const MEMINFO: &str = "\
MemTotal:       24683792 kB
MemFree:         6593144 kB
MemAvailable:   23764860 kB
Buffers:           52680 kB
Cached:         16638584 kB
SwapCached:            0 kB
Active:          5093000 kB
Inactive:       12000000 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Dirty:               100 kB
Writeback:             0 kB
AnonPages:        400000 kB
Mapped:           100000 kB
Shmem:              5000 kB
Slab:             900000 kB
Committed_AS:    2000000 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       30000 kB
VmallocChunk:          0 kB
";

    #[test]
    fn meminfo_available_is_read_in_bytes() {
        let m = Meminfo::from_buf_read(MEMINFO.as_bytes()).unwrap();
        assert_eq!(mem_available(&m), 23_764_860 * 1024);
        // Before Linux 3.14: free plus page cache.
        let old = MEMINFO.replace("MemAvailable:   23764860 kB\n", "");
        let m = Meminfo::from_buf_read(old.as_bytes()).unwrap();
        assert_eq!(mem_available(&m), (6_593_144 + 16_638_584) * 1024);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1073741824"), Some(1 << 30));
        assert_eq!(parse_size("300M"), Some(300 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size(" 64kb "), Some(64 << 10));
        assert_eq!(parse_size("0"), Some(0));
        for bad in ["", "-1", "1X", "G", "1e400", "NaN", "99999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn figures_parse() {
        let f = figures_from_js(&json!({"heapUsed": 5.0e7, "large": 1.0e7})).unwrap();
        assert_eq!(
            (f.heap_used_bytes, f.large_object_bytes, f.small_object_bytes()),
            (50_000_000, 10_000_000, 40_000_000)
        );
        assert_eq!(figures_from_js(&json!({"heapUsed": -1, "large": 0})), None);
        assert_eq!(figures_from_js(&json!(null)), None);
    }

    fn machine(free: u64) -> Available {
        Available {
            machine_available_bytes: free,
            cgroup: None,
            cgroup_note: None,
            override_bytes: None,
        }
    }

    #[test]
    fn the_estimate_counts_big_collections_and_then_what_was_measured() {
        let small = HeapFigures {
            heap_used_bytes: 800_000_000,
            large_object_bytes: 0,
            previous: None,
        };
        let c = estimate_snapshot_cost(&small);
        assert_eq!(c.basis, CostBasis::HeapUsed);
        assert_eq!(c.rss_bytes, BASE + 800_000_000 * PER_SMALL_BYTE);
        assert_eq!(c.file_bytes, 800_000_000 * FILE_PER_SMALL_BYTE);
        // One array of 10^6 objects: 8 MB of slots in the large-object space.
        let array = HeapFigures {
            heap_used_bytes: 43_000_000,
            large_object_bytes: 8_000_000,
            previous: None,
        };
        assert_eq!(
            estimate_snapshot_cost(&array).rss_bytes,
            BASE + 35_000_000 * PER_SMALL_BYTE + 8_000_000 * PER_LARGE_BYTE
        );
        // Later: what the previous one cost, plus the growth at the worst rates.
        let prev = PreviousSnapshot {
            heap_used_bytes: 50_000_000,
            large_object_bytes: 1_000_000,
            rss_before_bytes: 100_000_000,
            peak_rss_bytes: 500_000_000,
            file_bytes: 90_000_000,
        };
        assert_eq!(prev.measured_rss_bytes(), 400_000_000);
        let later = HeapFigures {
            heap_used_bytes: 61_000_000,
            large_object_bytes: 2_000_000,
            previous: Some(prev),
        };
        let c = estimate_snapshot_cost(&later);
        assert_eq!(
            c.basis,
            CostBasis::PreviousSnapshot {
                measured_rss_bytes: 400_000_000
            }
        );
        assert_eq!(
            c.rss_bytes,
            400_000_000 + 10_000_000 * PER_SMALL_BYTE + 1_000_000 * PER_LARGE_BYTE
        );
        assert_eq!(
            c.file_bytes,
            90_000_000 + 10_000_000 * FILE_PER_SMALL_BYTE + 1_000_000 * FILE_PER_LARGE_BYTE
        );
        // Never more than the whole heap's worst case, never less than what was measured.
        let shrunk = HeapFigures {
            heap_used_bytes: 10_000_000,
            large_object_bytes: 0,
            previous: Some(prev),
        };
        assert_eq!(estimate_snapshot_cost(&shrunk).rss_bytes, 400_000_000);
        let big_prev = PreviousSnapshot {
            peak_rss_bytes: 10_000_000_000,
            ..prev
        };
        let capped = HeapFigures {
            previous: Some(big_prev),
            ..later
        };
        assert_eq!(estimate_snapshot_cost(&capped).rss_bytes, 9_900_000_000);
    }

    #[test]
    fn the_rss_of_this_process_is_read() {
        let me = rss_of(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0 && me.peak_bytes >= me.rss_bytes, "{me:?}");
        assert!(matches!(rss_of(u32::MAX), Err(HeadroomError::NoSuchProcess { .. })));
    }

    #[test]
    fn verdicts_and_messages() {
        let cost = SnapshotCost {
            rss_bytes: 4_100_000_000,
            file_bytes: 500_000_000,
            basis: CostBasis::HeapUsed,
        };
        let c = judge(cost, machine(20_000_000_000));
        assert_eq!(
            (c.fit, c.limit, c.need_bytes),
            (Fit::Fits, Limit::Machine, 4_100_000_000)
        );
        assert_eq!(c.margin_bytes, 1_025_000_000);
        assert_eq!(judge(cost, machine(6_000_000_000)).fit, Fit::Tight);
        let refused = judge(cost, machine(1_200_000_000));
        assert_eq!(refused.fit, Fit::DoesNotFit);
        assert_eq!(
            refused.to_string(),
            "writing the snapshot would need about 4.1 GB more for the app; 1.2 GB are free \
             (the machine's MemAvailable), with a margin of 1.0 GB"
        );
        // A cgroup with less room than the machine limits, and the file counts against it.
        let group = CgroupMemory {
            version: CgroupVersion::V2,
            path: PathBuf::from("/sys/fs/cgroup/app"),
            limit_file: "memory.max",
            limit_bytes: 2_000_000_000,
            current_bytes: 900_000_000,
            reclaimable_bytes: 100_000_000,
        };
        let mut avail = machine(20_000_000_000);
        avail.cgroup = Some(group);
        let c = judge(cost, avail.clone());
        assert_eq!(
            (c.fit, c.limit, c.need_bytes, c.free_bytes),
            (Fit::DoesNotFit, Limit::Cgroup, 4_600_000_000, 1_200_000_000)
        );
        assert_eq!(
            c.to_string(),
            "writing the snapshot would need about 4.6 GB more for the app (with its 500 MB file, \
             charged to its cgroup); 1.2 GB are free (cgroup limit 2.0 GB in \
             /sys/fs/cgroup/app/memory.max, 800 MB in use), with a margin of 1.1 GB"
        );
        assert_eq!(
            (avail.cgroup_limit_bytes(), avail.cgroup_current_bytes()),
            (Some(2_000_000_000), Some(900_000_000))
        );
        assert_eq!(avail.free_bytes(), 1_200_000_000);
        // The override replaces both.
        avail.override_bytes = Some(10_000_000_000);
        let c = judge(cost, avail);
        assert_eq!(
            (c.fit, c.limit, c.free_bytes),
            (Fit::Fits, Limit::Override, 10_000_000_000)
        );
        // A small estimate keeps the minimum margin.
        let tiny = SnapshotCost {
            rss_bytes: 100_000_000,
            file_bytes: 0,
            basis: CostBasis::HeapUsed,
        };
        assert_eq!(judge(tiny, machine(400_000_000)).fit, Fit::Tight);
        assert_eq!(judge(tiny, machine(300_000_000)).fit, Fit::DoesNotFit);
    }

    /// The reading of this machine's own figures works wherever the tests run.
    #[test]
    fn this_process_has_figures() {
        let a = available_for(std::process::id()).unwrap();
        assert!(a.machine_available_bytes > 0);
        assert!(a.free_bytes() > 0 || a.override_bytes == Some(0));
        assert!(matches!(
            available_for(u32::MAX),
            Err(HeadroomError::NoSuchProcess { .. })
        ));
    }
}
