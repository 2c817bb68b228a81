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
    match claim(&path) {
        Ok(lock) => Ok(lock),
        Err(Claim::Held(holder)) => Err(LockError::Held { pid, holder }),
        Err(Claim::Io(source)) => Err(LockError::Io { path, source }),
    }
}

/// Claims the machine's one capture slot (`capture.lock` in the runtime folder): evidence
/// capture writes a heap snapshot, which costs the target several times its heap, so only
/// one runs at a time on a machine, across every leakhound process. `Ok(None)` when
/// another capture holds it (try again later); the slot is free again when the returned
/// lock is dropped or leakhound exits.
///
/// # Errors
/// [`LockError::Io`] when the runtime folder or the file cannot be used.
pub fn try_lock_capture() -> Result<Option<TargetLock>, LockError> {
    let path = runtime_dir()?.join("capture.lock");
    match claim(&path) {
        Ok(lock) => Ok(Some(lock)),
        Err(Claim::Held(_)) => Ok(None),
        Err(Claim::Io(source)) => Err(LockError::Io { path, source }),
    }
}

/// Why [`claim`] failed.
enum Claim {
    /// Another process holds the lock; what it wrote into the file.
    Held(String),
    /// The file cannot be opened or locked.
    Io(std::io::Error),
}

/// Takes an exclusive `flock` on `path` (created 0600, never through a symlink) without
/// waiting, and writes `pid <own pid>: <own command line>` into it.
fn claim(path: &std::path::Path) -> Result<TargetLock, Claim> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(nix::libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(Claim::Io)?;
    #[cfg(unix)]
    {
        use nix::fcntl::{Flock, FlockArg};
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let me: Vec<String> = std::env::args().collect();
                lock.set_len(0).map_err(Claim::Io)?;
                lock.rewind().map_err(Claim::Io)?;
                write!(lock, "pid {}: {}", std::process::id(), me.join(" ")).map_err(Claim::Io)?;
                lock.flush().map_err(Claim::Io)?;
                Ok(TargetLock {
                    _lock: lock,
                    path: path.to_owned(),
                })
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(Claim::Held(if holder.trim().is_empty() {
                    "its pid is unknown".to_owned()
                } else {
                    holder.trim().to_owned()
                }))
            }
            Err((_, errno)) => Err(Claim::Io(std::io::Error::from(errno))),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(TargetLock { path: path.to_owned() })
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

    #[test]
    fn one_capture_at_a_time_across_processes() {
        // Another process (python3, holding flock(2) on the file) has the slot: this one
        // is told to wait.
        let path = runtime_dir().unwrap().join("capture.lock");
        let mut holder = std::process::Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "held");
        assert!(try_lock_capture().unwrap().is_none(), "the slot is another process's");
        holder.kill().unwrap();
        holder.wait().unwrap();
        let mine = try_lock_capture().unwrap().expect("free once it exits");
        // Within one process too: a second claim waits for the first.
        assert!(try_lock_capture().unwrap().is_none());
        drop(mine);
        assert!(try_lock_capture().unwrap().is_some());
    }
}
