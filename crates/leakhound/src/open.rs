//! Opening snapshot files: gzip detection, progress bars on stderr, warnings.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use leakhound_heap::{Loaded, Progress};

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
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut magic = [0u8; 2];
    let n = peek(&mut reader, &mut magic)?;
    let gz = n == 2 && magic == [0x1f, 0x8b];
    let input: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };

    let bar = if ui.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("reading {}", short_name(path)));
    let timings = std::env::var_os("LEAKHOUND_TIMINGS").is_some();
    let started = std::time::Instant::now();
    let mut last = (started, "reading");
    let mut on_progress = |p: Progress| match p {
        Progress::Read { bytes } if !gz => bar.set_position(bytes),
        Progress::Step(step) => {
            if timings {
                #[allow(clippy::print_stderr, reason = "opt-in timings")]
                {
                    eprintln!(
                        "timing: {:>28} {:>8.3} s {}",
                        last.1,
                        last.0.elapsed().as_secs_f64(),
                        memory_note()
                    );
                }
                last = (std::time::Instant::now(), step);
            }
            bar.set_position(size);
            bar.set_message(step.to_string());
        }
        _ => {}
    };
    let loaded = leakhound_heap::load_with(input, analysis, &mut on_progress);
    if timings {
        #[allow(clippy::print_stderr, reason = "opt-in timings")]
        {
            eprintln!(
                "timing: {:>28} {:>8.3} s {}",
                last.1,
                last.0.elapsed().as_secs_f64(),
                memory_note()
            );
        }
    }
    bar.finish_and_clear();
    let loaded = loaded.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
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
    Ok(loaded)
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

fn peek(reader: &mut BufReader<File>, out: &mut [u8; 2]) -> Result<usize> {
    use std::io::BufRead;
    let buf = reader.fill_buf().context("cannot read")?;
    let n = buf.len().min(2);
    out[..n].copy_from_slice(&buf[..n]);
    Ok(n)
}

/// The file name without directories, for messages.
pub fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads several snapshots, two at a time (this is I/O and CPU bound; two threads
/// keep both cores busy), in the given order.
pub fn load_many(paths: &[PathBuf], ui: Ui) -> Result<Vec<Loaded>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Loaded>>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..paths.len().min(2) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= paths.len() {
                        break;
                    }
                    let r = load_snapshot(&paths[i], ui);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(paths.len());
    for (i, slot) in results.into_iter().enumerate() {
        let r = slot
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(anyhow::anyhow!("{}: loading did not finish", paths[i].display())));
        out.push(r?);
    }
    Ok(out)
}

/// Loads a series for the leak finder (see [`leakhound_hunt::load_series_prepared`]),
/// with each snapshot's [`leakhound_leaks::Prepared`] built as soon as it is loaded.
pub fn load_series_prepared(paths: &[PathBuf], ui: Ui) -> Result<Vec<(Loaded, leakhound_leaks::Prepared)>> {
    let open = |p: &Path, a: leakhound_heap::Analysis| load_snapshot_with(p, a, ui).map_err(|e| format!("{e:#}"));
    leakhound_hunt::load_series_prepared(paths, &open, &leakhound_leaks::Prepared::new).map_err(|e| anyhow::anyhow!(e))
}
