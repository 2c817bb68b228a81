//! Loading a series of snapshots for the leak finder on both cores: the last one fully
//! analysed, the earlier ones as graphs only ([`Analysis::Graph`]: no dominators), their
//! plain objects then named with the last one's interface definitions so class keys line
//! up (as DevTools' Comparison does).

use std::path::{Path, PathBuf};

use leakhound_heap::{Analysis, Loaded};

/// Opens and loads one file with the given analysis; errors are messages naming the file.
pub type Open<'a> = dyn Fn(&Path, Analysis) -> Result<Loaded, String> + Sync + 'a;

/// Loads `paths` (oldest first) for [`leakhound_leaks::find_leaks`]: the last on one
/// thread with the full analysis, the others on another thread as graphs, then the
/// earlier ones re-named with the last one's interface definitions.
///
/// # Errors
/// The first file that cannot be loaded.
pub fn load_series(paths: &[PathBuf], open: &Open<'_>) -> Result<Vec<Loaded>, String> {
    let Some((last, earlier)) = paths.split_last() else {
        return Ok(Vec::new());
    };
    let (last, earlier): (Result<Loaded, String>, Result<Vec<Loaded>, String>) = std::thread::scope(|scope| {
        let h = scope.spawn(|| {
            earlier
                .iter()
                .map(|p| open(p, Analysis::Graph))
                .collect::<Result<Vec<_>, _>>()
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
    let mid = earlier.len() / 2;
    let (a, b) = earlier.split_at_mut(mid);
    std::thread::scope(|scope| {
        scope.spawn(|| a.iter_mut().for_each(|l| l.snapshot.reclassify(&defs)));
        b.iter_mut().for_each(|l| l.snapshot.reclassify(&defs));
    });
    earlier.push(last);
    Ok(earlier)
}
