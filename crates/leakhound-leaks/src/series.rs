//! Snapshot files in, snapshots out: opening one file (plain or gzip-compressed, told by
//! its first two bytes) and streaming it into the engine ([`open_snapshot`]), and loading a
//! series for the leak finder ([`load_series`]): the last snapshot with dominators,
//! retained sizes and classes ([`Analysis::Retained`]), the earlier ones as graphs only
//! ([`Analysis::Graph`]: no dominators, no classes), each [`Prepared`] as soon as it is
//! loaded, then the earlier ones classified with the last one's interface definitions so
//! class keys line up (as DevTools' Comparison does). Progress is reported to a callback;
//! nothing is drawn or printed here.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use leakhound_heap::{Analysis, HeapSnapshot, Loaded, Progress, SnapshotError};
use rayon::prelude::*;

use crate::finder::Prepared;

/// What loading one file reports, in this order: `Opened` once, `Heap` any number of
/// times, `Finished` once (also after an error, when the file was opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProgress {
    /// The file is open.
    Opened {
        /// Its size on disk in bytes (0 when unknown).
        size_bytes: u64,
        /// It is gzip-compressed: then [`Progress::Read`] counts decompressed bytes,
        /// which `size_bytes` does not bound.
        gzip: bool,
    },
    /// The engine's progress: bytes read, then each analysis step.
    Heap(Progress),
    /// Loading the file ended, with a snapshot or an error.
    Finished,
}

/// Why a snapshot file could not be loaded. Each variant names the file; its message
/// includes the cause (which is therefore not repeated as [`std::error::Error::source`]),
/// so `{}` and anyhow's `{:#}` both print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFileError {
    /// The file could not be opened.
    #[error("cannot open {}: {error}", path.display())]
    Open {
        /// The snapshot file, as the caller named it.
        path: PathBuf,
        /// The I/O error the OS gave.
        error: io::Error,
    },
    /// The file's first bytes could not be read (e.g. it is a directory).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The snapshot file, as the caller named it.
        path: PathBuf,
        /// The I/O error the OS gave.
        error: io::Error,
    },
    /// The engine could not read the snapshot (it names the section and byte offset).
    #[error("{}: {error}", path.display())]
    Snapshot {
        /// The snapshot file, as the caller named it.
        path: PathBuf,
        /// The engine's error, with the section and byte offset.
        error: SnapshotError,
    },
}

/// Opens `path` (a `.heapsnapshot`, or one compressed with gzip: the magic bytes `1f 8b`
/// decide, not the name) and loads it with `analysis`, reporting to `progress`.
///
/// # Errors
/// [`SnapshotFileError`] naming `path`: it cannot be opened or read, or the engine's
/// [`SnapshotError`].
pub fn open_snapshot(
    path: &Path,
    analysis: Analysis,
    progress: &mut dyn FnMut(FileProgress),
) -> Result<Loaded, SnapshotFileError> {
    let file = File::open(path).map_err(|error| SnapshotFileError::Open {
        path: path.to_owned(),
        error,
    })?;
    let size_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gzip = reader
        .fill_buf()
        .map_err(|error| SnapshotFileError::Read {
            path: path.to_owned(),
            error,
        })?
        .starts_with(&[0x1f, 0x8b]);
    let input: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    progress(FileProgress::Opened { size_bytes, gzip });
    let loaded = leakhound_heap::load_with(input, analysis, &mut |p| progress(FileProgress::Heap(p)));
    progress(FileProgress::Finished);
    loaded.map_err(|error| SnapshotFileError::Snapshot {
        path: path.to_owned(),
        error,
    })
}

/// Loads the snapshot files `paths` (oldest first) for
/// [`find_leaks_prepared`](crate::find_leaks_prepared), each with its [`Prepared`]: the
/// last with [`Analysis::Retained`], the earlier ones as graphs classified with the last
/// one's interface definitions. Loads run in parallel on the rayon pool (see
/// `load_series_with`); `progress` hears from each file, from several threads at once.
///
/// # Errors
/// The first file that cannot be loaded, as [`open_snapshot`] says.
pub fn load_series(
    paths: &[PathBuf],
    progress: &(dyn Fn(&Path, FileProgress) + Sync),
) -> Result<Vec<(Loaded, Prepared)>, SnapshotFileError> {
    let open = |p: &Path, analysis: Analysis| open_snapshot(p, analysis, &mut |e| progress(p, e));
    load_series_with(paths, &open, &Prepared::new)
}

/// [`load_series`] with the opener and the preparation as parameters (`prepare` runs on
/// each snapshot as soon as it is loaded, before its classes: it may read only the
/// graph), so that tests can give their own.
///
/// On the rayon pool: the last snapshot (the long pole: it alone gets dominators and
/// retained sizes) loads beside the earlier ones, which load and are prepared in parallel
/// with each other; a thread done with its load takes the next waiting one. Then the last
/// one is prepared beside the earlier ones' classification with its interface
/// definitions (which only its load gives). Results do not depend on the number of
/// threads.
///
/// # Errors
/// The last file's error if it cannot be loaded, else the first earlier file's (in
/// `paths` order). A panic while loading is resumed on the caller.
pub(crate) fn load_series_with<P: Send>(
    paths: &[PathBuf],
    open: &(dyn Fn(&Path, Analysis) -> Result<Loaded, SnapshotFileError> + Sync),
    prepare: &(dyn Fn(&HeapSnapshot) -> P + Sync),
) -> Result<Vec<(Loaded, P)>, SnapshotFileError> {
    let Some((last, earlier)) = paths.split_last() else {
        return Ok(Vec::new());
    };
    let (last, earlier) = rayon::join(
        || open(last, Analysis::Retained),
        || {
            earlier
                .par_iter()
                .map(|path| {
                    open(path, Analysis::Graph).map(|l| {
                        let prepared = prepare(&l.snapshot);
                        (l, prepared)
                    })
                })
                .collect::<Vec<_>>()
        },
    );
    let last = last?;
    let mut series = earlier.into_iter().collect::<Result<Vec<_>, _>>()?;
    let defs = last.snapshot.interface_definitions();
    let ((), prepared) = rayon::join(
        || series.par_iter_mut().for_each(|(l, _)| l.snapshot.reclassify(defs)),
        || prepare(&last.snapshot),
    );
    series.push((last, prepared));
    Ok(series)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::mpsc;
    use std::time::Duration;

    use leakhound_heap::{Analysis, Loaded};

    use super::{FileProgress, SnapshotFileError, load_series, load_series_with, open_snapshot};

    /// A snapshot of a root and `n - 1` objects it holds by element edges, as JSON text.
    fn snapshot_text(n: usize) -> String {
        let mut nodes = vec![format!("9,0,1,0,{},0", n - 1)];
        nodes.extend((1..n).map(|i| format!("3,1,{},16,0,0", 2 * i + 1)));
        let edges: Vec<String> = (1..n).map(|i| format!("1,{i},{}", i * 6)).collect();
        format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":{n},"edge_count":{}}},"nodes":[{}],"edges":[{}],"locations":[],"strings":["","A"]}}"#,
            n - 1,
            nodes.join(","),
            edges.join(",")
        )
    }

    /// [`snapshot_text`] loaded; `n` names it.
    fn snapshot(n: usize, analysis: Analysis) -> Loaded {
        leakhound_heap::load_with(snapshot_text(n).as_bytes(), analysis, &mut |_| {}).expect("a valid snapshot")
    }

    /// Node count from a path named after it (`/s/5` → 5).
    fn size_of(p: &Path) -> usize {
        p.file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.parse().ok())
            .unwrap_or(2)
    }

    /// Runs the loader on another thread and fails the test if it does not return; `None`
    /// if it panicked.
    fn run(
        paths: Vec<PathBuf>,
        open: fn(&Path, Analysis) -> Result<Loaded, SnapshotFileError>,
    ) -> Option<Result<Vec<usize>, String>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = load_series_with(&paths, &open, &|s| s.node_count());
            let _ = tx.send(
                r.map(|v| {
                    v.iter()
                        .map(|(l, prepared)| {
                            assert_eq!(l.snapshot.node_count(), *prepared, "prepared with its own snapshot");
                            *prepared
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
            );
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the series loader did not return (deadlock?)"),
        }
    }

    fn paths(sizes: &[usize]) -> Vec<PathBuf> {
        sizes.iter().map(|n| PathBuf::from(format!("/s/{n}"))).collect()
    }

    #[test]
    fn keeps_the_order_and_classifies_every_snapshot() {
        fn open(p: &Path, a: Analysis) -> Result<Loaded, SnapshotFileError> {
            Ok(snapshot(size_of(p), a))
        }
        for sizes in [&[7][..], &[3, 9], &[4, 6, 8], &[5, 2, 11, 3, 6, 4]] {
            assert_eq!(run(paths(sizes), open), Some(Ok(sizes.to_vec())));
        }
        assert_eq!(run(Vec::new(), open), Some(Ok(Vec::new())));
    }

    #[test]
    fn a_failing_load_is_an_error_and_a_panicking_one_a_panic_not_a_hang() {
        fn fails(p: &Path, a: Analysis) -> Result<Loaded, SnapshotFileError> {
            match size_of(p) {
                6 => Err(SnapshotFileError::Open {
                    path: p.to_owned(),
                    error: std::io::ErrorKind::NotFound.into(),
                }),
                n => Ok(snapshot(n, a)),
            }
        }
        fn panics(p: &Path, a: Analysis) -> Result<Loaded, SnapshotFileError> {
            match size_of(p) {
                6 => panic!("a bug while loading /s/6"),
                n => Ok(snapshot(n, a)),
            }
        }
        let not_found = Some(Err("cannot open /s/6: entity not found".to_owned()));
        assert_eq!(run(paths(&[4, 6, 8]), fails), not_found);
        // The last snapshot failing too: its error is the one reported.
        assert_eq!(run(paths(&[4, 6]), fails), not_found);
        assert_eq!(run(paths(&[6, 4, 8]), panics), None);
        assert_eq!(run(paths(&[4, 8, 6]), panics), None);
    }

    #[test]
    fn files_open_plain_or_gzipped_and_report_their_progress() {
        let dir = std::env::temp_dir().join(format!("leakhound-leaks-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let text = snapshot_text(5);
        let plain = dir.join("plain.heapsnapshot");
        std::fs::write(&plain, &text).expect("write");
        let gz = dir.join("compressed.heapsnapshot");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gzip");
        std::fs::write(&gz, enc.finish().expect("gzip")).expect("write");

        for (path, gzip) in [(&plain, false), (&gz, true)] {
            let mut events = Vec::new();
            let loaded = open_snapshot(path, Analysis::Full, &mut |e| events.push(e)).expect("loads");
            assert_eq!(loaded.snapshot.node_count(), 5);
            let size_bytes = std::fs::metadata(path).expect("size").len();
            assert_eq!(events.first(), Some(&FileProgress::Opened { size_bytes, gzip }));
            assert_eq!(events.last(), Some(&FileProgress::Finished));
            assert!(events.iter().any(|e| matches!(e, FileProgress::Heap(_))));
        }

        let events = std::sync::Mutex::new(Vec::new());
        let series = load_series(&[gz.clone(), plain.clone(), gz.clone()], &|p, e| {
            events.lock().expect("lock").push((p.to_owned(), e));
        })
        .expect("loads");
        assert_eq!(series.len(), 3);
        let events = events.into_inner().expect("lock");
        assert_eq!(events.iter().filter(|(_, e)| *e == FileProgress::Finished).count(), 3);
        assert!(events.iter().any(|(p, _)| p == &plain));

        let missing = dir.join("missing.heapsnapshot");
        let Err(err) = load_series(&[plain.clone(), missing.clone(), gz.clone()], &|_, _| {}) else {
            panic!("a missing file loaded");
        };
        assert!(
            matches!(&err, SnapshotFileError::Open { path, .. } if *path == missing),
            "{err}"
        );
        let err = open_snapshot(&dir, Analysis::Full, &mut |_| {}).expect_err("a directory");
        assert!(matches!(err, SnapshotFileError::Read { .. }), "{err}");
        std::fs::write(&plain, &text[..text.len() / 2]).expect("write");
        let err = open_snapshot(&plain, Analysis::Full, &mut |_| {}).expect_err("truncated");
        assert!(matches!(err, SnapshotFileError::Snapshot { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!("{}: ", plain.display())), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
