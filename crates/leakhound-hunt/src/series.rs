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
/// the rest; for [`leakhound_leaks::Prepared`].
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
    type Earlier<P> = Result<Vec<(Loaded, P)>, String>;
    let (last, earlier): (Result<Loaded, String>, Earlier<P>) = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            earlier
                .iter()
                .map(|p| {
                    let l = open(p, Analysis::Graph)?;
                    let prepared = prepare(&l.snapshot);
                    Ok((l, prepared))
                })
                .collect::<Result<Vec<_>, String>>()
        });
        let last = open(last, Analysis::Full);
        (
            last,
            h.join().unwrap_or_else(|_| Err("a loader thread panicked".into())),
        )
    });
    let last = last?;
    let mut earlier = earlier?;
    let defs = last.snapshot.interface_definitions().to_vec();
    // Each earlier snapshot classified on its own thread, the last one prepared here.
    let last_prepared = std::thread::scope(|scope| {
        for (l, _) in earlier.iter_mut() {
            let defs = &defs;
            scope.spawn(move || l.snapshot.reclassify(defs));
        }
        prepare(&last.snapshot)
    });
    earlier.push((last, last_prepared));
    Ok(earlier)
}
