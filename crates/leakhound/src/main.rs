//! The `leakhound` command line: flag definitions and glue. It opens files, picks output
//! formats and destinations, draws progress bars on stderr and maps results to exit
//! codes (0 no leak / success, 1 leak found, 2 error); the crates compute and render.

mod open;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

/// Find memory leaks in Node.js applications.
#[derive(Parser, Debug)]
#[command(name = "leakhound", version, about, propagate_version = true)]
struct Cli {
    /// No progress bars or warnings on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The Summary view of a heap snapshot: objects grouped by class with count,
    /// distance, shallow and retained size (DevTools' numbers).
    Summary {
        /// A .heapsnapshot file (or gzip of one).
        file: PathBuf,
        /// Rows to show; 0 shows every row.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Sort by retained size (default, as DevTools), self size or count.
        #[arg(long, value_enum, default_value_t = SortBy::Retained)]
        sort: SortBy,
        /// Print the stable JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The Statistics breakdown of a heap snapshot (code, strings, arrays, native...).
    Stats {
        /// A .heapsnapshot file (or gzip of one).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum SortBy {
    Retained,
    #[value(name = "self")]
    SelfSize,
    Count,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr, reason = "the one place errors are printed")]
            {
                eprintln!("leakhound: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    let ui = open::Ui { quiet: cli.quiet };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::Summary {
            file,
            top,
            sort,
            json,
        } => {
            let loaded = open::load_snapshot(&file, ui)?;
            let mut rows = leakhound_heap::summary(&loaded.snapshot);
            match sort {
                SortBy::Retained => {}
                SortBy::SelfSize => rows.sort_by_key(|r| std::cmp::Reverse(r.self_size_bytes)),
                SortBy::Count => rows.sort_by_key(|r| std::cmp::Reverse(r.count)),
            }
            let total_rows = rows.len();
            if top > 0 {
                rows.truncate(top);
            }
            let name = file.display().to_string();
            let view = leakhound_report::summary::SummaryView {
                file: &name,
                snapshot: &loaded.snapshot,
                rows: &rows,
                total_rows,
                warnings: &loaded.warnings,
            };
            if json {
                leakhound_report::summary::write_summary_json(&view, &mut out)?;
            } else {
                leakhound_report::summary::write_summary_text(&view, &mut out)?;
            }
        }
        Command::Stats { file, json } => {
            let loaded = open::load_snapshot(&file, ui)?;
            leakhound_report::summary::write_stats(
                &file.display().to_string(),
                &loaded.snapshot,
                json,
                &mut out,
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
