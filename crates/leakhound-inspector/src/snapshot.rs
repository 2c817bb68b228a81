//! Heap snapshots written to a file: by the target itself (`v8.writeHeapSnapshot`) when it
//! can, otherwise streamed from `HeapProfiler.takeHeapSnapshot`.
//!
//! Streamed chunks (`HeapProfiler.addHeapSnapshotChunk`, about 100 KB each) are written in
//! wire order through a buffered writer to `<path>.partial-<our pid>`; node sends the reply to
//! `takeHeapSnapshot` after the last chunk. Only then is the file synced and renamed to `path`.
//! On any failure the partial file is deleted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedMutexGuard, mpsc, oneshot};

use crate::error::{InspectorError, duration_ms};
use crate::session::{Session, exception_text};
use crate::transport::{Event, Reply, RouteGuard};

const METHOD: &str = "HeapProfiler.takeHeapSnapshot";
const CHUNK: &str = "HeapProfiler.addHeapSnapshotChunk";
const PROGRESS: &str = "HeapProfiler.reportHeapSnapshotProgress";
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// A heap snapshot written to disk by [`Session::take_heap_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Where the snapshot is (the `path` given to `take_heap_snapshot`).
    pub path: PathBuf,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Wall-clock time from the request to the renamed file, in milliseconds. The target is
    /// paused for most of it.
    pub duration_ms: u64,
}

/// Deletes the partial file unless disarmed.
struct PartialFile {
    path: Option<PathBuf>,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Keeps other event consumers out until node has finished sending an abandoned snapshot:
/// if the snapshot future is dropped or fails before the reply, a background task holds the
/// event lock until the reply (or the end of the connection), so the chunks still in flight
/// cannot end up in the next snapshot's file.
struct InFlight {
    reply: Option<oneshot::Receiver<Reply>>,
    exclusive: Option<OwnedMutexGuard<()>>,
    route: Option<RouteGuard>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Unrouted events are dropped by the reader.
        drop(self.route.take());
        if let (Some(reply), Some(exclusive)) = (self.reply.take(), self.exclusive.take())
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = reply.await;
                drop(exclusive);
            });
        }
    }
}

/// The name of the temporary file next to `path`: `<path>.partial-<our pid>`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

impl Session {
    /// Takes a heap snapshot (`HeapProfiler.takeHeapSnapshot` with `reportProgress: false`,
    /// `captureNumericValue: false`) and streams it to `path`. Progress is not asked of V8:
    /// to report a total, V8 first walks the whole heap once more while the app is paused
    /// (measured: +20–25 % of the capture time; `bench/run.py --capture --capture-diagnose`). Console messages retained for
    /// debuggers are discarded first ([`Session::discard_console_entries`]), so objects the
    /// app only logged do not look leaked.
    ///
    /// Chunks go, in wire order and through a 1 MiB buffer, to `<path>.partial-<pid>` in the
    /// same directory (`pid` is this process's id); the file is synced and renamed to `path`
    /// once the reply arrives, replacing any file there. Memory use does not depend on the
    /// snapshot size. `progress(bytes_written, 0)` is called for each chunk (the total is not
    /// known in advance).
    ///
    /// There is no timeout: V8 needs about 70–100 s per GB of snapshot, and the target is
    /// paused meanwhile. A target that dies or a connection that breaks ends the wait.
    /// Snapshots (and [`Session::script_urls`]) run one at a time per session.
    ///
    /// # Errors
    ///
    /// [`InspectorError::Snapshot`] naming `path`, whose source is the cause:
    /// [`InspectorError::SnapshotIo`] (cannot create, write, sync or rename; disk full),
    /// [`InspectorError::Closed`] (the target exited or was killed mid-snapshot),
    /// [`InspectorError::Protocol`] (the inspector refused) or
    /// [`InspectorError::UnexpectedReply`] (no data came). The partial file is deleted in
    /// every error case.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future deletes the partial file; the rest of the snapshot
    /// still sent by node is discarded in the background before another snapshot may start.
    pub async fn take_heap_snapshot(
        &self,
        path: &Path,
        progress: impl FnMut(u64, u64),
    ) -> Result<SnapshotFile, InspectorError> {
        let mut progress = progress;
        let wrap = |source| InspectorError::Snapshot {
            path: path.to_owned(),
            source: Box::new(source),
        };
        // First ask node to write the file itself (no JSON-over-WebSocket re-encoding on
        // its main thread: measured 1.01-1.03x of the app calling v8.writeHeapSnapshot, vs
        // 1.2-1.3x streamed); fall back to streaming when that is not possible (no
        // v8 module, another file system, an old node) unless the target went away.
        match self.snapshot_in_process(path, &mut progress).await {
            Ok(file) => return Ok(file),
            Err(e) if self.is_closed() => return Err(wrap(e)),
            Err(_) => {}
        }
        self.snapshot_to(path, progress).await.map_err(wrap)
    }

    /// Asks the target to write the snapshot itself (`v8.writeHeapSnapshot`) to
    /// `<path>.partial-<pid>` (absolute), polling its size for progress, then syncs and
    /// renames it.
    async fn snapshot_in_process(
        &self,
        path: &Path,
        progress: &mut impl FnMut(u64, u64),
    ) -> Result<SnapshotFile, InspectorError> {
        let started = Instant::now();
        let _exclusive = std::sync::Arc::clone(&self.transport.event_lock).lock_owned().await;
        self.discard_console_entries().await?;
        let partial = partial_path(path);
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| InspectorError::SnapshotIo { path: p, source }
        };
        let partial = if partial.is_absolute() {
            partial
        } else {
            std::env::current_dir().map_err(io_err(&partial))?.join(&partial)
        };
        let mut cleanup = PartialFile {
            path: Some(partial.clone()),
        };
        let target = Value::String(partial.to_string_lossy().into_owned()).to_string();
        let expression = format!(
            "(() => {{ const v8 = (typeof process === 'object' && typeof process.getBuiltinModule === 'function') \
             ? process.getBuiltinModule('v8') : require('v8'); return v8.writeHeapSnapshot({target}); }})()"
        );
        let call = self.call_with_timeout(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "includeCommandLineAPI": true }),
            std::time::Duration::from_secs(7 * 24 * 3600),
        );
        tokio::pin!(call);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        let reply = loop {
            tokio::select! {
                reply = &mut call => break reply?,
                _ = tick.tick() => {
                    if let Ok(meta) = tokio::fs::metadata(&partial).await {
                        progress(meta.len(), 0);
                    }
                }
            }
        };
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(InspectorError::Exception {
                expression: String::from("v8.writeHeapSnapshot"),
                text: exception_text(details),
            });
        }
        let file = tokio::fs::File::open(&partial).await.map_err(io_err(&partial))?;
        file.sync_all().await.map_err(io_err(&partial))?;
        let bytes = file.metadata().await.map_err(io_err(&partial))?.len();
        drop(file);
        if bytes == 0 {
            return Err(InspectorError::UnexpectedReply {
                method: String::from("Runtime.evaluate"),
                reason: String::from("v8.writeHeapSnapshot wrote an empty file"),
            });
        }
        // node creates it 0600 itself; make sure whatever node version wrote it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(io_err(&partial))?;
        }
        tokio::fs::rename(&partial, path).await.map_err(io_err(path))?;
        cleanup.path = None;
        sync_parent_dir(path).await;
        progress(bytes, 0);
        Ok(SnapshotFile {
            path: path.to_owned(),
            bytes,
            duration_ms: duration_ms(started.elapsed()),
        })
    }

    async fn snapshot_to(
        &self,
        path: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<SnapshotFile, InspectorError> {
        let started = Instant::now();
        let exclusive = std::sync::Arc::clone(&self.transport.event_lock).lock_owned().await;
        self.discard_console_entries().await?;
        self.ensure_heap_profiler().await?;

        let partial = partial_path(path);
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| InspectorError::SnapshotIo { path, source }
        };
        // A new file of our own (never an existing file, never through a symlink), readable
        // by the user alone: snapshots hold every string of the app, secrets included.
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600).custom_flags(nix::libc::O_NOFOLLOW);
        let file = options.open(&partial).await.map_err(io_err(&partial))?;
        let mut cleanup = PartialFile {
            path: Some(partial.clone()),
        };
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);

        let (tx, mut events) = mpsc::unbounded_channel();
        let route = self.transport.route_events(&[CHUNK, PROGRESS], tx);
        let reply = self
            .transport
            .send_untimed(METHOD, json!({ "reportProgress": false, "captureNumericValue": false }))?;
        let mut in_flight = InFlight {
            reply: Some(reply),
            exclusive: Some(exclusive),
            route: Some(route),
        };

        let mut bytes: u64 = 0;
        let reply = loop {
            let Some(reply_rx) = in_flight.reply.as_mut() else {
                return Err(self.closed_error(METHOD));
            };
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => {
                        handle_event(event, &mut out, &mut bytes, &mut progress, &partial).await?;
                    }
                    // The reader stopped: the reply receiver resolves (with an error) at once.
                    None => break None,
                },
                reply = reply_rx => {
                    in_flight.reply = None;
                    break Some(reply);
                }
            }
        };
        let reply = match reply {
            Some(reply) => reply,
            None => match in_flight.reply.take() {
                Some(reply_rx) => reply_rx.await,
                None => return Err(self.closed_error(METHOD)),
            },
        };
        self.transport.reply_result(METHOD, reply)?;
        // The reply follows the last chunk on the wire, so every chunk is already queued.
        while let Ok(event) = events.try_recv() {
            handle_event(event, &mut out, &mut bytes, &mut progress, &partial).await?;
        }
        drop(in_flight);
        if bytes == 0 {
            return Err(InspectorError::UnexpectedReply {
                method: String::from(METHOD),
                reason: String::from("the reply came without any snapshot chunk"),
            });
        }

        out.flush().await.map_err(io_err(&partial))?;
        let file = out.into_inner();
        file.sync_all().await.map_err(io_err(&partial))?;
        drop(file);
        tokio::fs::rename(&partial, path).await.map_err(io_err(path))?;
        cleanup.path = None;
        sync_parent_dir(path).await;
        Ok(SnapshotFile {
            path: path.to_owned(),
            bytes,
            duration_ms: duration_ms(started.elapsed()),
        })
    }
}

async fn handle_event(
    event: Event,
    out: &mut BufWriter<tokio::fs::File>,
    bytes: &mut u64,
    progress: &mut impl FnMut(u64, u64),
    partial: &Path,
) -> Result<(), InspectorError> {
    match event.method.as_str() {
        CHUNK => {
            if let Some(chunk) = event.params.get("chunk").and_then(Value::as_str) {
                out.write_all(chunk.as_bytes())
                    .await
                    .map_err(|source| InspectorError::SnapshotIo {
                        path: partial.to_owned(),
                        source,
                    })?;
                *bytes = bytes.saturating_add(chunk.len() as u64);
                progress(*bytes, 0);
            }
        }
        PROGRESS => {
            let done = event.params.get("done").and_then(Value::as_u64);
            let total = event.params.get("total").and_then(Value::as_u64);
            if let (Some(done), Some(total)) = (done, total) {
                progress(done, total);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Makes the rename durable; best effort (some file systems refuse to sync directories).
async fn sync_parent_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let _ = tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_sits_next_to_the_target() {
        let p = partial_path(Path::new("/tmp/dir/a.heapsnapshot"));
        assert_eq!(p.parent(), Some(Path::new("/tmp/dir")));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("a.heapsnapshot.partial-{}", std::process::id()));
    }
}
