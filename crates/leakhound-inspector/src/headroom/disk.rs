//! Free disk space where a snapshot or a profile is about to be written: a snapshot that
//! fills the disk leaves a truncated file and can starve the app's own writes (logs), so
//! writers check first, against the file size of the headroom model
//! ([`super::SnapshotCost::file_bytes`]: 3 bytes per byte of small objects and 6 per byte
//! of the large-object spaces before a first snapshot, the measured file after).

use std::path::Path;

/// What is always left free on the disk: the file's estimate plus this, 64 MiB.
pub const DISK_RESERVE_BYTES: u64 = 64 << 20;

/// Free space for an unprivileged writer on the file system of `dir`, bytes
/// (`statvfs`: available blocks times the fragment size).
///
/// # Errors
/// `statvfs` failed (no such folder, …).
pub fn free_disk_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    #[allow(clippy::useless_conversion, reason = "the field types differ between platforms")]
    Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
}

/// Whether a file of `needed_bytes` fits on `dir`'s disk with [`DISK_RESERVE_BYTES`] to
/// spare: `Ok(free)` when it does, `Err(free)` when not.
///
/// # Errors
/// The outer error is `statvfs`'s.
pub fn disk_fits(dir: &Path, needed_bytes: u64) -> std::io::Result<Result<u64, u64>> {
    let free = free_disk_bytes(dir)?;
    Ok(if free >= needed_bytes.saturating_add(DISK_RESERVE_BYTES) {
        Ok(free)
    } else {
        Err(free)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_disk_bytes(dir.path()).unwrap();
        assert!(free > 0);
        // df(1) agrees within what other writers change meanwhile (1 %, or 64 MiB).
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(dir.path())
            .output()
            .unwrap();
        let df: u64 = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            free.abs_diff(df) <= (df / 100).max(64 << 20),
            "statvfs {free} vs df {df}"
        );
        assert!(free_disk_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_file_larger_than_the_disk_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        assert!(disk_fits(dir.path(), 1 << 20).unwrap().is_ok());
        let free = free_disk_bytes(dir.path()).unwrap();
        assert_eq!(
            disk_fits(dir.path(), free).unwrap().map_err(|_| ()),
            Err(()),
            "the reserve is kept"
        );
    }
}
