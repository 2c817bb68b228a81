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
            /// Marks the loader done when it returns or unwinds, so the other thread
            /// never waits for snapshots that will not come.
            struct Done<'q, F: Fn()>(&'q F);
            impl<F: Fn()> Drop for Done<'_, F> {
                fn drop(&mut self) {
                    (self.0)();
                }
            }
            let mark_done = || {
                lock().loaded_all = true;
                changed.notify_all();
            };
            let done = Done(&mark_done);
            let result = (|| {
                for (i, p) in earlier.iter().enumerate() {
                    let l = open(p, Analysis::Graph)?;
                    let prepared = prepare(&l.snapshot);
                    lock().waiting.push((i, l, prepared));
                    changed.notify_all();
                }
                Ok(())
            })();
            drop(done);
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc;
    use std::time::Duration;

    use leakhound_heap::{Analysis, Loaded};

    use super::load_series_prepared;

    /// A snapshot of a root and `n - 1` objects it holds by element edges; `n` names it.
    fn snapshot(n: usize, analysis: Analysis) -> Loaded {
        let mut nodes = vec![format!("9,0,1,0,{},0", n - 1)];
        nodes.extend((1..n).map(|i| format!("3,1,{},16,0,0", 2 * i + 1)));
        let edges: Vec<String> = (1..n).map(|i| format!("1,{i},{}", i * 6)).collect();
        let text = format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic"],"string","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":{n},"edge_count":{}}},"nodes":[{}],"edges":[{}],"locations":[],"strings":["","A"]}}"#,
            n - 1,
            nodes.join(","),
            edges.join(",")
        );
        leakhound_heap::load_with(text.as_bytes(), analysis, &mut |_| {}).expect("a valid snapshot")
    }

    /// Node count from a path named after it (`/s/5` → 5).
    fn size_of(p: &Path) -> usize {
        p.file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.parse().ok())
            .unwrap_or(2)
    }

    /// Runs the loader on another thread and fails the test if it does not return.
    fn run(paths: Vec<PathBuf>, open: fn(&Path, Analysis) -> Result<Loaded, String>) -> Result<Vec<usize>, String> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = load_series_prepared(&paths, &open, &|s| s.node_count());
            let _ = tx.send(r.map(|v| {
                v.iter()
                    .map(|(l, prepared)| {
                        assert_eq!(l.snapshot.node_count(), *prepared, "prepared with its own snapshot");
                        *prepared
                    })
                    .collect()
            }));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the series loader returned (no deadlock)")
    }

    fn paths(sizes: &[usize]) -> Vec<PathBuf> {
        sizes.iter().map(|n| PathBuf::from(format!("/s/{n}"))).collect()
    }

    #[test]
    fn keeps_the_order_and_classifies_every_snapshot() {
        fn open(p: &Path, a: Analysis) -> Result<Loaded, String> {
            Ok(snapshot(size_of(p), a))
        }
        for sizes in [&[7][..], &[3, 9], &[4, 6, 8], &[5, 2, 11, 3, 6, 4]] {
            assert_eq!(run(paths(sizes), open), Ok(sizes.to_vec()));
        }
        assert_eq!(run(Vec::new(), open), Ok(Vec::new()));
    }

    #[test]
    fn a_failing_or_panicking_earlier_load_is_an_error_not_a_hang() {
        fn fails(p: &Path, a: Analysis) -> Result<Loaded, String> {
            match size_of(p) {
                6 => Err("cannot read /s/6".into()),
                n => Ok(snapshot(n, a)),
            }
        }
        fn panics(p: &Path, a: Analysis) -> Result<Loaded, String> {
            match size_of(p) {
                6 => panic!("a bug while loading /s/6"),
                n => Ok(snapshot(n, a)),
            }
        }
        assert_eq!(run(paths(&[4, 6, 8]), fails), Err("cannot read /s/6".into()));
        assert_eq!(run(paths(&[6, 4, 8]), panics), Err("a loader thread panicked".into()));
        // The last snapshot failing too: its error is the one reported.
        assert_eq!(run(paths(&[4, 6]), fails), Err("cannot read /s/6".into()));
    }
}
