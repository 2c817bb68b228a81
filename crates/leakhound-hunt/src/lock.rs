//! One leakhound per process: two sessions on one target disturb each other (both force
//! GCs, snapshots interleave, and V8 clears its object ids when either session ends, so a
//! series would compare unrelated ids). Before attaching to a running process, leakhound
//! takes an exclusive lock on `pid-<PID>.lock` in its runtime folder; a second leakhound
//! finds it held and is refused with the first one's pid and command.
//!
//! The runtime folder is `$XDG_RUNTIME_DIR/leakhound`, else `/run/leakhound` for root,
//! else `<temp dir>/leakhound-<uid>`; it is created with mode 0700 and must belong to the
//! user. The lock is an `flock(2)` lock: the kernel drops it when leakhound exits, however
//! it exits, so a stale file never blocks a later run.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// An exclusive claim on a target process, held until dropped (or leakhound exits).
#[derive(Debug)]
pub struct TargetLock {
    #[cfg(unix)]
    _lock: nix::fcntl::Flock<std::fs::File>,
    path: PathBuf,
}

impl TargetLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Why a target cannot be claimed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another leakhound holds it.
    #[error(
        "pid {pid} is already attached to by another leakhound ({holder}); two sessions on one process corrupt each other's results: wait for it to finish, or stop it"
    )]
    Held {
        /// The target process, as given to `--attach` or `--pid`.
        pid: u32,
        /// Who holds it: `pid N: command line`, as it wrote into the lock file.
        holder: String,
    },
    /// The runtime folder or the lock file cannot be used.
    #[error("cannot take the lock {}: {source}", path.display())]
    Io {
        /// The runtime folder or the lock file that failed.
        path: PathBuf,
        /// The OS error (no permission, a folder of another user, …).
        source: std::io::Error,
    },
}

/// leakhound's runtime folder (see the module doc), created 0700 when missing.
fn runtime_dir() -> Result<PathBuf, LockError> {
    #[cfg(unix)]
    let uid = nix::unistd::geteuid().as_raw();
    #[cfg(not(unix))]
    let uid = 0u32;
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("leakhound"),
        None if uid == 0 && std::path::Path::new("/run").is_dir() => PathBuf::from("/run/leakhound"),
        None => std::env::temp_dir().join(format!("leakhound-{uid}")),
    };
    let io = |source| LockError::Io {
        path: dir.clone(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() || meta.uid() != uid {
            return Err(io(std::io::Error::other("not a folder of this user")));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(dir)
}

/// Claims `pid` for this leakhound, writing `pid <own pid>: <own command line>` into the
/// lock file for a refused second one to show.
///
/// # Errors
/// [`LockError::Held`] when another leakhound has it; [`LockError::Io`] when the runtime
/// folder or the file cannot be used.
pub fn lock_target(pid: u32) -> Result<TargetLock, LockError> {
    let path = runtime_dir()?.join(format!("pid-{pid}.lock"));
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(nix::libc::O_NOFOLLOW);
    }
    let file = options.open(&path).map_err(io)?;
    #[cfg(unix)]
    {
        use nix::fcntl::{Flock, FlockArg};
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let me: Vec<String> = std::env::args().collect();
                lock.set_len(0).map_err(io)?;
                lock.rewind().map_err(io)?;
                write!(lock, "pid {}: {}", std::process::id(), me.join(" ")).map_err(io)?;
                lock.flush().map_err(io)?;
                Ok(TargetLock { _lock: lock, path })
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "its pid is unknown".to_owned()
                } else {
                    holder.trim().to_owned()
                };
                Err(LockError::Held { pid, holder })
            }
            Err((_, errno)) => Err(io(std::io::Error::from(errno))),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(TargetLock { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_until_the_first_is_dropped() {
        // A pid that is no process: the lock is only about the file.
        let pid = 4_000_000_000 - std::process::id();
        let first = lock_target(pid).expect("first claim");
        let e = lock_target(pid).expect_err("second claim");
        let text = e.to_string();
        assert!(text.contains(&format!("pid {pid} is already attached")), "{text}");
        assert!(
            text.contains(&format!("pid {}:", std::process::id())),
            "names the holder: {text}"
        );
        drop(first);
        let again = lock_target(pid).expect("free again");
        let _ = std::fs::remove_file(again.path());
    }
}
