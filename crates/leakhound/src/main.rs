//! The `leakhound` command line: flag definitions and glue. It opens files, picks output
//! formats and destinations, draws progress bars on stderr and maps results to exit
//! codes (0 no leak / success, 1 leak found, 2 error); the crates compute and render.

mod hunt_cmd;
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
    /// Worker threads for loading and analysing snapshots (default: one per core).
    /// Results do not depend on it.
    #[arg(long, global = true, env = "LEAKHOUND_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The whole leak hunt against a live server: start it under the inspector, drive
    /// HTTP load, take baseline/target/final snapshots after forced GCs, find what keeps
    /// growing, and check memory returns to baseline once the load stops. Exit code 0 no
    /// leak, 1 leak, 2 error.
    Hunt(HuntOpts),
    /// Runs `hunt` on a bundled leaky demo server (needs only node); exit code 0 when it
    /// finds the demo's leak, 2 otherwise.
    Demo(HuntOpts),
    /// The memory watch alone: `process.memoryUsage()` over time, the floor after each
    /// full GC, and a live verdict on whether it rises (exit code 1 if it does).
    Watch {
        /// Attach to a running node process instead of starting one.
        #[arg(long)]
        attach: Option<u32>,
        /// Stop after this many seconds (default: until Ctrl-C or the app exits).
        #[arg(long)]
        duration: Option<f64>,
        /// Sample interval, ms.
        #[arg(long, default_value_t = 500)]
        sample_ms: u64,
        /// Force a full GC this often for clean floor points, ms (0: only the app's own GCs).
        #[arg(long, default_value_t = 5000)]
        gc_interval_ms: u64,
        /// Seconds of warm-up left out of the statistics.
        #[arg(long, default_value_t = 5.0)]
        warmup: f64,
        /// Print JSON at the end.
        #[arg(long)]
        json: bool,
        /// The app's command, after `--`.
        #[arg(last = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// One heap snapshot of a running process, after a full GC.
    Snapshot {
        /// Attach to this pid (SIGUSR1 opens its inspector on 127.0.0.1).
        #[arg(long, conflicts_with = "inspect", required_unless_present = "inspect")]
        pid: Option<u32>,
        /// Or connect to this inspector (`ws://127.0.0.1:…` or `http://127.0.0.1:9229`).
        #[arg(long)]
        inspect: Option<String>,
        /// Output file (default Heap-<pid>-<time>.heapsnapshot).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
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
    /// The Comparison view: what was allocated and freed between two snapshots of one
    /// process, per class (DevTools' #New, #Deleted, #Delta, sizes) plus the change in
    /// retained size.
    Diff {
        /// The earlier snapshot.
        base: PathBuf,
        /// The later snapshot.
        current: PathBuf,
        /// Rows to show; 0 shows every row.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Order: size delta (what grew most, default), retained delta, alloc size (DevTools' default), count delta.
        #[arg(long, value_enum, default_value_t = DiffSort::Delta)]
        sort: DiffSort,
        /// Print the stable JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Retainer paths of a node, or of the largest instances of a class, up to GC roots.
    Retainers {
        /// A .heapsnapshot file.
        file: PathBuf,
        /// The node's id, as `@123` or `123`.
        #[arg(long, conflicts_with = "class", required_unless_present = "class")]
        id: Option<String>,
        /// A class name (Summary's Constructor column): its largest instances are shown.
        #[arg(long)]
        class: Option<String>,
        /// Levels of retainers to expand.
        #[arg(long, default_value_t = 4)]
        depth: usize,
        /// Retainers shown per node and level.
        #[arg(long, default_value_t = 5)]
        max_retainers: usize,
        /// Instances shown with --class.
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The three-snapshot leak finder: objects allocated after BASELINE, present in
    /// TARGET and still alive (and growing) in FINAL and every later snapshot, grouped by
    /// the holder that keeps them.
    Leaks {
        /// Snapshots of one process, oldest first: baseline, target, final, more...
        #[arg(required = true, num_args = 3..)]
        snapshots: Vec<PathBuf>,
        /// Units of load (requests) between consecutive snapshots, for rates per request.
        #[arg(long)]
        requests_per_step: Option<f64>,
        /// Minimum growth, in objects, from target to the last snapshot for a cluster to
        /// count as a leak.
        #[arg(long, default_value_t = 2)]
        min_growth: u64,
        /// Print the stable JSON object.
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

#[derive(clap::Args, Debug, Clone)]
struct HuntOpts {
    /// Attach to a running node process instead of starting one.
    #[arg(long)]
    attach: Option<u32>,
    /// The app's URL (default: a free port on 127.0.0.1, passed to the app as PORT).
    #[arg(long)]
    url: Option<String>,
    /// Concurrent keep-alive connections of the built-in load.
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Requests per load phase.
    #[arg(long, default_value_t = 2000)]
    requests: u64,
    /// Load phases by time instead (seconds).
    #[arg(long)]
    duration: Option<f64>,
    /// Target request rate (requests per second, all connections).
    #[arg(long)]
    rate: Option<f64>,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    body: Option<String>,
    /// Run this shell command once per load phase instead of the built-in load
    /// (it gets LEAKHOUND_URL in its environment).
    #[arg(long)]
    load: Option<String>,
    /// Units of load one run of --load makes (for per-request rates).
    #[arg(long)]
    units: Option<u64>,
    /// Warm-up requests before the baseline.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Load phases (2: target and final; more add snapshots).
    #[arg(long, default_value_t = 2)]
    phases: usize,
    /// Memory sample interval, ms.
    #[arg(long, default_value_t = 100)]
    sample_ms: u64,
    /// Force a full GC this often during load for floor points, ms (0: off).
    #[arg(long, default_value_t = 1000)]
    gc_interval_ms: u64,
    /// Wait after the load before the calm-down check, ms.
    #[arg(long, default_value_t = 1500)]
    calm_down_ms: u64,
    /// Folder for the snapshots (default ./leakhound-<time>).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Seconds to wait for the app to become ready.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
    /// Ready when this text appears in the app's output (instead of polling the URL).
    #[arg(long)]
    ready: Option<String>,
    /// Minimum growth, in objects, for a cluster to count as a leak.
    #[arg(long, default_value_t = 2)]
    min_growth: u64,
    /// Print the stable JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (memory chart, traces) to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// The app's command, after `--`: e.g. `-- node server.js`.
    #[arg(last = true)]
    command: Vec<std::ffi::OsString>,
}

impl HuntOpts {
    fn into_args(self, quiet: bool) -> Result<hunt_cmd::HuntArgs> {
        let headers = self
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| anyhow::anyhow!("--header takes `Name: value`, not {h:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        if self.phases < 2 {
            anyhow::bail!("--phases must be at least 2 (target and final)");
        }
        Ok(hunt_cmd::HuntArgs {
            command: self.command,
            attach: self.attach,
            url: self.url,
            connections: self.connections,
            requests: self.requests,
            duration: self.duration.map(std::time::Duration::from_secs_f64),
            rate: self.rate,
            method: self.method,
            headers,
            body: self.body,
            load: self.load,
            units: self.units,
            warmup: self.warmup,
            phases: self.phases,
            sample_ms: self.sample_ms,
            gc_interval_ms: self.gc_interval_ms,
            calm_down_ms: self.calm_down_ms,
            out_dir: self.out_dir,
            ready_timeout_s: self.ready_timeout,
            ready: self.ready,
            min_growth: self.min_growth,
            json: self.json,
            html: self.html,
            quiet,
        })
    }
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum DiffSort {
    Delta,
    Retained,
    Alloc,
    Count,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum SortBy {
    Retained,
    #[value(name = "self")]
    SelfSize,
    Count,
}

/// Keeps glibc's `M_MMAP_THRESHOLD` at its 128 KiB default for the whole run (called
/// before any thread exists).
///
/// glibc raises the threshold to the size of each mmap'd block freed (up to 32 MiB), so
/// once the analysis frees one per-node array, later arrays of that size come from the
/// `brk` heap, whose freed pages stay resident: on a 100 MB snapshot that kept ~7 MB
/// of dead arrays in the peak RSS. Setting the threshold explicitly turns the dynamic
/// adjustment off (mallopt(3)), so every large array is mapped and unmapped on its own.
///
/// The price is a fresh, zeroed mapping (page faults) for every array where the heap
/// would have reused freed pages: worth it where one snapshot's peak RSS is the point
/// (`summary`, `stats`, `retainers`), not in the multi-snapshot commands, whose two
/// threads load snapshots side by side and measured ~10 % slower with it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "one libc call, before any thread or allocation of note")]
fn fix_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it takes plain integers, is
    // called before any other thread exists, and a failure (0) just keeps the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Elsewhere the allocator's defaults stay.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Summary { .. } | Command::Stats { .. } | Command::Retainers { .. }
    ) {
        fix_mmap_threshold();
    }
    if let Err(e) = set_up_thread_pool(cli.threads) {
        #[allow(clippy::print_stderr, reason = "the one place errors are printed")]
        {
            eprintln!("leakhound: {e:#}");
        }
        return ExitCode::from(2);
    }
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

/// Sizes rayon's global pool, the one pool every crate's parallel work runs on:
/// `threads` workers, or one per core when `None`.
fn set_up_thread_pool(threads: Option<u16>) -> Result<()> {
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("leakhound-{i}"));
    if let Some(n) = threads {
        builder = builder.num_threads(usize::from(n));
    }
    builder
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start the thread pool: {e}"))
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
        Command::Hunt(opts) => return hunt_cmd::run_hunt(opts.into_args(cli.quiet)?),
        Command::Demo(opts) => return hunt_cmd::run_demo(opts.into_args(cli.quiet)?),
        Command::Watch {
            attach,
            duration,
            sample_ms,
            gc_interval_ms,
            warmup,
            json,
            command,
        } => {
            return hunt_cmd::run_watch(
                command,
                attach,
                duration.map(std::time::Duration::from_secs_f64),
                std::time::Duration::from_millis(sample_ms.max(10)),
                (gc_interval_ms > 0).then(|| std::time::Duration::from_millis(gc_interval_ms)),
                std::time::Duration::from_secs_f64(warmup.max(0.0)),
                json,
                cli.quiet,
            );
        }
        Command::Snapshot { pid, inspect, output } => return hunt_cmd::run_snapshot(pid, inspect, output, cli.quiet),
        Command::Summary { file, top, sort, json } => {
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
        Command::Diff {
            base,
            current,
            top,
            sort,
            json,
        } => {
            let mut loaded = open::load_many(&[base.clone(), current.clone()], ui)?;
            let cur = loaded.pop().map(|l| l.snapshot);
            let bas = loaded.pop().map(|l| l.snapshot);
            let (Some(cur), Some(bas)) = (cur, bas) else {
                anyhow::bail!("internal: snapshots missing")
            };
            check_same_process(&bas, &cur, &base, &current)?;
            let mut rows = leakhound_heap::compare(&cur, &bas);
            match sort {
                DiffSort::Alloc => {}
                DiffSort::Delta => rows.sort_by_key(|r| std::cmp::Reverse(r.size_delta_bytes)),
                DiffSort::Retained => rows.sort_by_key(|r| std::cmp::Reverse(r.retained_size_delta_bytes)),
                DiffSort::Count => rows.sort_by_key(|r| std::cmp::Reverse(r.delta_count)),
            }
            let total = rows.len();
            if top > 0 {
                rows.truncate(top);
            }
            let (b, c) = (base.display().to_string(), current.display().to_string());
            if json {
                leakhound_report::diff::write_diff_json(&b, &c, &rows, total, &mut out)?;
            } else {
                leakhound_report::diff::write_diff_text(&b, &c, &rows, total, &mut out)?;
            }
        }
        Command::Retainers {
            file,
            id,
            class,
            depth,
            max_retainers,
            instances,
            json,
        } => {
            let loaded = open::load_snapshot(&file, ui)?;
            let s = &loaded.snapshot;
            let nodes: Vec<u32> = match (id, class) {
                (Some(id), _) => {
                    let n: u32 = id
                        .trim_start_matches('@')
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--id takes a node id such as @1234, not {id:?}"))?;
                    vec![
                        s.node_by_id(n)
                            .ok_or_else(|| anyhow::anyhow!("{}: no node with id @{n}", file.display()))?,
                    ]
                }
                (None, Some(name)) => {
                    let mut v: Vec<u32> = (0..s.node_count() as u32)
                        .filter(|&o| s.class(o).name == name && s.self_size(o) > 0)
                        .collect();
                    if v.is_empty() {
                        anyhow::bail!(
                            "{}: no objects of class {name:?} (names are the Summary's Constructor column)",
                            file.display()
                        );
                    }
                    v.sort_by_key(|&o| (std::cmp::Reverse(s.retained_size(o)), o));
                    v.truncate(instances.max(1));
                    v
                }
                (None, None) => anyhow::bail!("give --id or --class"),
            };
            let index = leakhound_heap::RetainerIndex::build(s);
            let trees: Vec<leakhound_report::retainers::RetainerNode> = nodes
                .iter()
                .map(|&o| (&leakhound_leaks::retainer_tree(s, &index, o, depth, max_retainers.max(1))).into())
                .collect();
            let paths: Vec<Vec<leakhound_report::retainers::RetainerNode>> = nodes
                .iter()
                .map(|&o| {
                    leakhound_leaks::path_to_root(s, &index, o)
                        .iter()
                        .map(Into::into)
                        .collect()
                })
                .collect();
            if json {
                leakhound_report::retainers::write_retainers_json(
                    &file.display().to_string(),
                    &trees,
                    &paths,
                    &mut out,
                )?;
            } else {
                leakhound_report::retainers::write_retainers_text(&trees, &paths, &mut out)?;
            }
        }
        Command::Leaks {
            snapshots,
            requests_per_step,
            min_growth,
            json,
        } => {
            let (loaded, prepared): (Vec<_>, Vec<_>) = open::load_series_prepared(&snapshots, ui)?.into_iter().unzip();
            let snaps: Vec<&leakhound_heap::HeapSnapshot> = loaded.iter().map(|l| &l.snapshot).collect();
            let opts = leakhound_leaks::LeakOptions {
                requests_per_step,
                min_growth,
                ..Default::default()
            };
            let report = leakhound_leaks::find_leaks_prepared(&snaps, prepared, &opts)?;
            let files: Vec<String> = snapshots.iter().map(|p| p.display().to_string()).collect();
            if json {
                leakhound_report::leaks::write_leaks_json(&files, &report, requests_per_step, &mut out)?;
            } else {
                leakhound_report::leaks::write_leaks_text(&files, &report, requests_per_step, &mut out)?;
            }
            out.flush()?;
            return Ok(if report.clusters.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Command::Stats { file, json } => {
            let loaded = open::load_snapshot(&file, ui)?;
            leakhound_report::summary::write_stats(&file.display().to_string(), &loaded.snapshot, json, &mut out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses to diff snapshots of different processes (ids would not line up).
fn check_same_process(
    base: &leakhound_heap::HeapSnapshot,
    current: &leakhound_heap::HeapSnapshot,
    base_path: &std::path::Path,
    current_path: &std::path::Path,
) -> Result<()> {
    let report = leakhound_leaks::check_pair(base, current);
    if let Err(e) = report {
        anyhow::bail!(
            "cannot compare {} with {}: {e}",
            current_path.display(),
            base_path.display()
        );
    }
    Ok(())
}
