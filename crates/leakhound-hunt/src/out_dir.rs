//! The folder a hunt writes its snapshots into, made safe for shared directories.
//!
//! node writes each snapshot itself, truncating and following symlinks, so flags on
//! leakhound's own opens cannot protect the files: the folder must be one nobody else
//! can write into. The default folder is always new (`leakhound-<unix seconds>`, with
//! `-2`, `-3`, … when that name is taken), created with mode 0700; a folder named with
//! `--out-dir` is created 0700 when missing and used when it exists only if it is a real
//! directory (not a symlink) owned by the user leakhound runs as. A folder the hunt
//! created and left empty (it failed before the first snapshot) is removed again.

use std::path::{Path, PathBuf};

/// Where a hunt's snapshots go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutDir {
    /// A new folder `leakhound-<unix seconds>` in the current directory (a suffix `-N`
    /// when that name exists).
    Fresh,
    /// This folder: created (mode 0700) when missing; an existing one must be a directory
    /// owned by the current user, not a symlink.
    Named(PathBuf),
}

/// An output folder ready for snapshots.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The folder snapshots are written into.
    pub(crate) path: PathBuf,
    /// Whether this hunt created it (and so may remove it when it stays empty).
    pub(crate) created: bool,
}

/// Why a folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    /// Creating it failed.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The folder that could not be created.
        path: PathBuf,
        /// The OS error (no permission, disk full, 100 taken names in a row…).
        source: std::io::Error,
    },
    /// It exists but is a symlink, not a directory, or owned by another user.
    #[error(
        "{} {why}: another user could replace the snapshots written there; give a folder of your own with --out-dir",
        path.display()
    )]
    NotOurs {
        /// The folder given with `--out-dir`.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates `path` with mode 0700 (parents as needed, with the default mode); fails when
/// it already exists.
fn create_private(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Checks that an existing `path` is a directory of the current user, not a symlink.
fn check_ours(path: &Path) -> Result<(), OutDirError> {
    let not_ours = |why: String| OutDirError::NotOurs {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|source| OutDirError::Create {
        path: path.to_owned(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(not_ours("is a symlink".into()));
    }
    if !meta.is_dir() {
        return Err(not_ours("is not a directory".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(not_ours(format!(
                "belongs to uid {}, not to you (uid {me})",
                meta.uid()
            )));
        }
    }
    Ok(())
}

/// Makes the folder ready: see the module doc.
pub(crate) fn prepare(dir: &OutDir) -> Result<Prepared, OutDirError> {
    match dir {
        OutDir::Named(path) => match create_private(path) {
            Ok(()) => Ok(Prepared {
                path: path.clone(),
                created: true,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                check_ours(path)?;
                Ok(Prepared {
                    path: path.clone(),
                    created: false,
                })
            }
            Err(source) => Err(OutDirError::Create {
                path: path.clone(),
                source,
            }),
        },
        OutDir::Fresh => {
            let base = format!("leakhound-{}", unix_seconds());
            let mut last = None;
            for n in 1..=100 {
                let path = PathBuf::from(if n == 1 { base.clone() } else { format!("{base}-{n}") });
                match create_private(&path) {
                    Ok(()) => return Ok(Prepared { path, created: true }),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((path, e)),
                    Err(source) => return Err(OutDirError::Create { path, source }),
                }
            }
            let (path, source) =
                last.unwrap_or_else(|| (PathBuf::from(base), std::io::ErrorKind::AlreadyExists.into()));
            Err(OutDirError::Create { path, source })
        }
    }
}

/// Removes the half-written snapshots an earlier run left in `dir`
/// (`*.heapsnapshot.partial-<pid>`: leakhound was killed while node wrote one), unless a
/// process still has the file open (an attached node may still be writing it). Returns a
/// note for the user per file, removed or left.
pub(crate) fn remove_stale_partials(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some((_, pid)) = name.rsplit_once(".heapsnapshot.partial-") else {
            continue;
        };
        if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let path = entry.path();
        if leakhound_inspector::proc::file_is_open(&path) {
            notes.push(format!(
                "{} is a snapshot still being written by another process; left in place",
                path.display()
            ));
        } else if std::fs::remove_file(&path).is_ok() {
            notes.push(format!(
                "removed {}, a half-written snapshot of an interrupted run",
                path.display()
            ));
        }
    }
    notes.sort();
    notes
}

/// Removes the folder when this hunt created it and nothing was written into it.
pub(crate) fn remove_if_empty(p: &Prepared) {
    if p.created {
        // Fails, and so keeps the folder, unless it is empty.
        let _ = std::fs::remove_dir(&p.path);
    }
}

/// Calls [`remove_if_empty`] when dropped, on every way out of a hunt.
pub(crate) struct RemoveIfEmpty<'a>(pub(crate) &'a Prepared);

impl Drop for RemoveIfEmpty<'_> {
    fn drop(&mut self) {
        remove_if_empty(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_folder_is_created_private_and_reused_when_ours() {
        let tmp = tempfile_dir();
        let dir = tmp.join("snaps");
        let p = prepare(&OutDir::Named(dir.clone())).unwrap();
        assert!(p.created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let again = prepare(&OutDir::Named(dir.clone())).unwrap();
        assert!(!again.created, "an existing folder of ours is reused, not created");
        remove_if_empty(&again);
        assert!(dir.is_dir(), "a folder we did not create stays");
        remove_if_empty(&p);
        assert!(!dir.exists(), "an empty folder we created goes");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_a_file_is_refused() {
        let tmp = tempfile_dir();
        let target = tmp.join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = tmp.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = prepare(&OutDir::Named(link)).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        let file = tmp.join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = prepare(&OutDir::Named(file)).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "leakhound-out-dir-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
