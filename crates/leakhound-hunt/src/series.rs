//! Loading a series of snapshots for the leak finder on both cores: the last one with
//! dominators, retained sizes and classes ([`Analysis::Retained`]), the earlier ones as graphs only ([`Analysis::Graph`]: no dominators, no
//! classes), then classified once, their plain objects named with the last one's
//! interface definitions so class keys line up (as DevTools' Comparison does).

use std::path::{Path, PathBuf};

use leakhound_heap::{Analysis, Loaded};

/// Opens and loads one file with the given analysis; errors are messages naming the file.
pub type Open<'a> = dyn Fn(&Path, Analysis) -> Result<Loaded, String> + Sync + 'a;

/// Loads `paths` (oldest first) for [`leakhound_leaks::find_leaks`]: the last on one
/// thread with the full analysis, the others on another thread as graphs, then the
/// earlier ones classified with the last one's interface definitions.
///
/// # Errors
/// The first file that cannot be loaded.
pub fn load_series(paths: &[PathBuf], open: &Open<'_>) -> Result<Vec<Loaded>, String> {
    Ok(load_series_prepared(paths, open, &|_| ())?
        .into_iter()
        .map(|(l, ())| l)
        .collect())
}

/// [`load_series`], also running `prepare` on each snapshot as soon as it is loaded
/// (before classes: it may read only the graph), so that work overlaps with loading
/// the rest; for [`leakhound_leaks::Prepared`].
///
/// One thread loads the earlier snapshots and prepares each right after it is read;
/// the other loads the last one (the long pole: it alone gets dominators and retained
/// sizes), sends its interface definitions over and prepares it. The earlier snapshots
/// then wait in a queue for their classes, which whichever thread is free takes on, so
/// neither core idles while the other still classifies.
///
/// # Errors
/// The first file that cannot be loaded.
pub fn load_series_prepared<P: Send>(
    paths: &[PathBuf],
    open: &Open<'_>,
    prepare: &(dyn Fn(&leakhound_heap::HeapSnapshot) -> P + Sync),
) -> Result<Vec<(Loaded, P)>, String> {
    use std::sync::{Condvar, Mutex};
    let Some((last, earlier)) = paths.split_last() else {
        return Ok(Vec::new());
    };
    /// Earlier snapshots waiting for their classes, those done, and whether the loader
    /// has stopped adding.
    struct Queue<P> {
        waiting: Vec<(usize, Loaded, P)>,
        done: Vec<(usize, Loaded, P)>,
        loaded_all: bool,
    }
    let queue = Mutex::new(Queue {
        waiting: Vec::new(),
        done: Vec::new(),
        loaded_all: false,
    });
    let changed = Condvar::new();
    let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
    // Classifies queued snapshots until none is left; with `wait`, also waits for the
    // loader to finish adding.
    let classify_queued = |defs: &[leakhound_heap::InterfaceDefinition], wait: bool| {
        let mut q = lock();
        loop {
            if let Some((i, mut l, p)) = q.waiting.pop() {
                drop(q);
                l.snapshot.reclassify(defs);
                q = lock();
                q.done.push((i, l, p));
            } else if q.loaded_all || !wait {
                return;
            } else {
                q = changed.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
    };
    let (defs_tx, defs_rx) = std::sync::mpsc::channel::<Vec<leakhound_heap::InterfaceDefinition>>();
    let (lock, changed, classify_queued) = (&lock, &changed, &classify_queued);
    let (last, loaded) = std::thread::scope(|scope| {
        let loader = scope.spawn(move || -> Result<(), String> {
            let result = (|| {
                for (i, p) in earlier.iter().enumerate() {
                    let l = open(p, Analysis::Graph)?;
                    let prepared = prepare(&l.snapshot);
                    lock().waiting.push((i, l, prepared));
                    changed.notify_all();
                }
                Ok(())
            })();
            lock().loaded_all = true;
            changed.notify_all();
            // Without definitions the last load failed: its error is reported.
            if result.is_ok()
                && let Ok(defs) = defs_rx.recv()
            {
                classify_queued(&defs, false);
            }
            result
        });
        let last = open(last, Analysis::Retained).map(|l| {
            let _ = defs_tx.send(l.snapshot.interface_definitions().to_vec());
            let prepared = prepare(&l.snapshot);
            (l, prepared)
        });
        drop(defs_tx);
        if let Ok((l, _)) = &last {
            classify_queued(l.snapshot.interface_definitions(), true);
        }
        let loaded = match loader.join() {
            Ok(r) => r,
            Err(_) => Err("a loader thread panicked".into()),
        };
        (last, loaded)
    });
    let last = last?;
    loaded?;
    let mut earlier = queue.into_inner().unwrap_or_else(|e| e.into_inner()).done;
    earlier.sort_by_key(|&(i, _, _)| i);
    let mut out: Vec<(Loaded, P)> = earlier.into_iter().map(|(_, l, p)| (l, p)).collect();
    out.push(last);
    Ok(out)
}
