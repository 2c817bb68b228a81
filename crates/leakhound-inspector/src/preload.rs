//! The one line leakhound preloads into an app it starts (`--require`, or `NODE_OPTIONS`
//! for launchers): node's `cluster` gives each worker `--inspect-port=<primary's port +
//! n>`, a port node guesses and another process may hold (then that worker has no
//! inspector); setting `cluster.settings.inspectPort = 0` before the first `fork()` gives
//! each worker a free port of its own instead, which leakhound then reads from `/proc`
//! (`children.rs`). An `inspectPort` the app sets itself (`cluster.setupPrimary`) wins.
//! Nothing else is changed.
//!
//! The file lives in a private folder (mode 0700, the file 0600, created exclusively under
//! a random name) that is removed when the app is stopped.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What the preloaded file runs.
const SCRIPT: &str = "// leakhound: each cluster worker's inspector on a free loopback port (not the primary's + n).\n\
try { const c = require('node:cluster'); if (c.isPrimary && c.settings && c.settings.inspectPort === undefined) c.settings.inspectPort = 0; } catch {}\n";

/// The preload file and its private folder, removed on drop.
#[derive(Debug)]
pub(crate) struct Preload {
    dir: PathBuf,
    file: PathBuf,
}

impl Preload {
    /// Writes the file into a new private folder under the system's temporary folder.
    /// None when it cannot be written (the app then runs without it: cluster workers get
    /// node's guessed ports).
    pub(crate) fn write() -> Option<Preload> {
        let base = std::env::temp_dir();
        for attempt in 0..8u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = base.join(format!("leakhound-preload-{}-{nanos:08x}{attempt}", std::process::id()));
            if std::fs::DirBuilder::new().mode(0o700).create(&dir).is_err() {
                continue;
            }
            let file = dir.join("cluster-ports.cjs");
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .and_then(|mut f| f.write_all(SCRIPT.as_bytes()));
            let preload = Preload { dir, file };
            return written.is_ok().then_some(preload);
        }
        None
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for Preload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let p = Preload::write().unwrap();
        let path = p.path().to_owned();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(p);
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }
}
