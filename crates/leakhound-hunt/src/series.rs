//! Loading a series of snapshots for the leak finder on both cores: the last one fully
//! analysed, the earlier ones as graphs only ([`Analysis::Graph`]: no dominators, no
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
/// the rest; for [`leakhound_leaks::Prepared`]. One thread loads the earlier snapshots
/// and hands all but its last over; the other loads the last snapshot, sends its
/// interface definitions back, then prepares and classifies what it was handed. The
/// first thread prepares and classifies its last one itself, so both end together.
///
/// # Errors
/// The first file that cannot be loaded.
pub fn load_series_prepared<P: Send>(
    paths: &[PathBuf],
    open: &Open<'_>,
    prepare: &(dyn Fn(&leakhound_heap::HeapSnapshot) -> P + Sync),
) -> Result<Vec<(Loaded, P)>, String> {
    let Some((last, earlier)) = paths.split_last() else {
        return Ok(Vec::new());
    };
    type Series<P> = Vec<(usize, Loaded, P)>;
    let (hand_tx, handed) = std::sync::mpsc::channel::<(usize, Loaded)>();
    let (defs_tx, defs_rx) = std::sync::mpsc::channel::<Vec<leakhound_heap::InterfaceDefinition>>();
    let (last, mut earlier): (Result<(Loaded, P), String>, Series<P>) = std::thread::scope(|scope| {
        let loader = scope.spawn(move || -> Result<Series<P>, String> {
            let mut kept = Vec::new();
            for (i, p) in earlier.iter().enumerate() {
                let mut l = open(p, Analysis::Graph)?;
                if i + 1 < earlier.len() {
                    // Handed over: prepared and classified by the other thread.
                    let _ = hand_tx.send((i, l));
                } else {
                    let prepared = prepare(&l.snapshot);
                    // Without definitions the last load failed: its error is reported.
                    if let Ok(defs) = defs_rx.recv() {
                        l.snapshot.reclassify(&defs);
                    }
                    kept.push((i, l, prepared));
                }
            }
            Ok(kept)
        });
        let last = open(last, Analysis::Full).map(|l| {
            let _ = defs_tx.send(l.snapshot.interface_definitions().to_vec());
            let prepared = prepare(&l.snapshot);
            (l, prepared)
        });
        drop(defs_tx);
        let defs = last
            .as_ref()
            .map_or(&[][..], |(l, _)| l.snapshot.interface_definitions());
        let mut earlier: Series<P> = handed
            .iter()
            .map(|(i, mut l)| {
                let prepared = prepare(&l.snapshot);
                l.snapshot.reclassify(defs);
                (i, l, prepared)
            })
            .collect();
        match loader.join() {
            Ok(Ok(kept)) => {
                earlier.extend(kept);
                (last, earlier)
            }
            Ok(Err(e)) => (last.and(Err(e)), Vec::new()),
            Err(_) => (last.and(Err("a loader thread panicked".into())), Vec::new()),
        }
    });
    let last = last?;
    earlier.sort_by_key(|&(i, _, _)| i);
    let mut out: Vec<(Loaded, P)> = earlier.into_iter().map(|(_, l, p)| (l, p)).collect();
    out.push(last);
    Ok(out)
}
