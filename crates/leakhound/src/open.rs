//! Loading snapshot files: progress bars on stderr, opt-in timings, warnings (opening the
//! files, gzip included, is `leakhound_leaks::open_snapshot`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use leakhound_heap::{Loaded, Progress};
use leakhound_leaks::FileProgress;

/// How chatty loading is.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// No progress bars and no warnings on stderr.
    pub quiet: bool,
}

/// Loads and analyses a snapshot file (`.heapsnapshot`, or gzip-compressed), with a
/// progress bar on stderr when it is a terminal.
pub fn load_snapshot(path: &Path, ui: Ui) -> Result<Loaded> {
    load_snapshot_with(path, leakhound_heap::Analysis::Full, ui)
}

/// [`load_snapshot`] with a chosen amount of analysis.
pub fn load_snapshot_with(path: &Path, analysis: leakhound_heap::Analysis, ui: Ui) -> Result<Loaded> {
    let mut bar = None;
    let loaded = leakhound_leaks::open_snapshot(path, analysis, &mut |e| draw(&mut bar, path, ui, e))?;
    print_warnings(path, &loaded, ui);
    Ok(loaded)
}

/// A progress bar on stderr (hidden with `--quiet`) for one file being loaded, and the
/// opt-in `LEAKHOUND_TIMINGS` line of each step.
struct FileBar {
    bar: ProgressBar,
    size_bytes: u64,
    gzip: bool,
    timings: bool,
    /// When the current step started, and its name.
    step: (Instant, &'static str),
}

/// Draws one file's loading `event` into `slot`: a bar from `Opened` to `Finished`.
fn draw(slot: &mut Option<FileBar>, path: &Path, ui: Ui, event: FileProgress) {
    match event {
        FileProgress::Opened { size_bytes, gzip } => {
            let bar = if ui.quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(size_bytes)
            };
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(format!("reading {}", short_name(path)));
            *slot = Some(FileBar {
                bar,
                size_bytes,
                gzip,
                timings: std::env::var_os("LEAKHOUND_TIMINGS").is_some(),
                step: (Instant::now(), "reading"),
            });
        }
        FileProgress::Heap(Progress::Read { bytes }) => {
            if let Some(b) = slot
                && !b.gzip
            {
                b.bar.set_position(bytes);
            }
        }
        FileProgress::Heap(Progress::Step(step)) => {
            if let Some(b) = slot {
                if b.timings {
                    print_timing(b.step);
                    b.step = (Instant::now(), step);
                }
                b.bar.set_position(b.size_bytes);
                b.bar.set_message(step.to_string());
            }
        }
        FileProgress::Finished => {
            if let Some(b) = slot.take() {
                if b.timings {
                    print_timing(b.step);
                }
                b.bar.finish_and_clear();
            }
        }
        _ => {}
    }
}

/// The `LEAKHOUND_TIMINGS` line of a step that started at `step.0`.
fn print_timing(step: (Instant, &'static str)) {
    #[allow(clippy::print_stderr, reason = "opt-in timings")]
    {
        eprintln!(
            "timing: {:>28} {:>8.3} s {}",
            step.1,
            step.0.elapsed().as_secs_f64(),
            memory_note()
        );
    }
}

/// The engine's warnings about `path` on stderr, unless quiet.
fn print_warnings(path: &Path, loaded: &Loaded, ui: Ui) {
    if !ui.quiet {
        for w in &loaded.warnings {
            #[allow(clippy::print_stderr, reason = "warnings go to stderr, results to stdout")]
            {
                eprintln!(
                    "leakhound: warning: {}: {}",
                    path.display(),
                    leakhound_report::terminal::terminal_safe(&w.to_string())
                );
            }
        }
    }
}

/// `rss … MB, peak … MB` of this process (empty where `/proc` cannot tell), for the
/// opt-in `LEAKHOUND_TIMINGS` lines.
fn memory_note() -> String {
    match leakhound_inspector::proc::self_rss_peak() {
        Some(m) => format!(
            "rss {:>6.1} MB, peak {:>6.1} MB",
            m.rss_kib as f64 / 1e3,
            m.peak_kib as f64 / 1e3
        ),
        None => String::new(),
    }
}

/// The file name without directories, for messages.
pub fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads several snapshots side by side on the rayon pool; the results are in the order
/// of `paths`.
///
/// # Errors
/// The first file (in `paths` order) that cannot be loaded.
pub fn load_many(paths: &[PathBuf], ui: Ui) -> Result<Vec<Loaded>> {
    use rayon::prelude::*;
    paths.par_iter().map(|p| load_snapshot(p, ui)).collect()
}

/// Loads a series for the leak finder (see [`leakhound_leaks::load_series`]), with each
/// snapshot's [`leakhound_leaks::Prepared`] built as soon as it is loaded, a bar per file.
pub fn load_series_prepared(paths: &[PathBuf], ui: Ui) -> Result<Vec<(Loaded, leakhound_leaks::Prepared)>> {
    let bars: Mutex<HashMap<PathBuf, Option<FileBar>>> = Mutex::default();
    let series = leakhound_leaks::load_series(paths, &|path, event| {
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        draw(bars.entry(path.to_owned()).or_default(), path, ui, event);
    })?;
    for (path, (loaded, _)) in paths.iter().zip(&series) {
        print_warnings(path, loaded, ui);
    }
    Ok(series)
}
