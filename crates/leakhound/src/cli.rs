//! The command line: clap definitions only. Option groups that several subcommands share
//! (`AppArgs`, `LoadArgs`, `HuntRunArgs`, `ReportArgs`) are flattened into each, and turn
//! into the library's plain option structs (`leakhound_hunt::HuntOptions`,
//! `WatchOptions`), which check them: the first of ripgrep's two stages.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Find memory leaks in Node.js applications.
#[derive(Parser, Debug)]
#[command(name = "leakhound", version, about, propagate_version = true)]
pub struct Cli {
    /// No progress bars or warnings on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Worker threads for loading and analysing snapshots (default: one per core).
    /// Results do not depend on it.
    #[arg(long, global = true, env = "LEAKHOUND_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Colour in text reports: `auto` colours a terminal unless NO_COLOR is set (to
    /// anything but an empty value) or TERM is `dumb`; `always` and `never` decide.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// What to do: hunt a live app, watch it, or read snapshot files.
    #[command(subcommand)]
    pub command: Command,
}

/// When text reports are coloured (`--color`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR or TERM=dumb.
    Auto,
    /// Always, NO_COLOR or not.
    Always,
    /// Never.
    Never,
}

impl From<ColorWhen> for leakhound_report::terminal::ColorChoice {
    fn from(c: ColorWhen) -> Self {
        match c {
            ColorWhen::Auto => Self::Auto,
            ColorWhen::Always => Self::Always,
            ColorWhen::Never => Self::Never,
        }
    }
}

/// The subcommands: `hunt`, `demo`, `watch` and `snapshot` work on a live process, the
/// others on snapshot files.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole leak hunt against a live server: start it under the inspector, drive
    /// HTTP load, take baseline/target/final snapshots after forced GCs, find what keeps
    /// growing, and check memory returns to baseline once the load stops.
    ///
    /// Three answers. LEAK (exit 1): a cluster of objects grew through every snapshot, or
    /// the post-GC floor rose through the last load phase (lower 95 % bound above zero,
    /// beyond the noise) and stayed up. NO LEAK (exit 0): no growing cluster, and memory
    /// came back to the baseline or the floor under load is flat (at least 5 floor points,
    /// upper 95 % bound below 256 B per request). INCONCLUSIVE (exit 3): neither; the report
    /// says what would decide it (more load, more phases). Exit 2: an error.
    Hunt(HuntArgs),
    /// Runs `hunt` on a bundled leaky demo server (needs only node); exit code 0 when it
    /// finds the demo's leak, 2 otherwise.
    Demo(DemoArgs),
    /// The memory watch alone: `process.memoryUsage()` over time, the floor after each
    /// full GC, and a live verdict on whether it rises.
    ///
    /// Three answers. LEAK (exit 1): a floor rises (lower 95 % bound of its slope per hour
    /// above zero, beyond the noise). NO LEAK (exit 0): the floors of the JS heap, external
    /// memory and RSS are flat per hour (at least 5 floor points each, upper 95 % bound
    /// below 1 MiB/h or 1 %/h; RSS 4 MiB/h or 2 %/h). INCONCLUSIVE (exit 3): neither yet;
    /// it says about how many more floor points, and how long, would decide it. Exit 2: an
    /// error.
    Watch(WatchArgs),
    /// Heap snapshots of a running process, each after a full GC: one, or a series in one
    /// inspector session (`--count N --interval 60s`) for `diff` and `leaks`.
    Snapshot(SnapshotArgs),
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
    #[command(group(ArgGroup::new("pick").required(true).args(["id", "class"])))]
    Retainers {
        /// A .heapsnapshot file.
        file: PathBuf,
        /// The node's id, as `@123` or `123`.
        #[arg(long)]
        id: Option<String>,
        /// A class name (Summary's Constructor column): its largest instances are shown.
        /// Matched exactly, else in another case; else the closest names are suggested.
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
        /// Print the trees and paths as a JSON object instead of text.
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
    /// Leak patterns in JavaScript/TypeScript source: listeners added per call and never
    /// removed, intervals never cleared, collections that only grow, accidental globals,
    /// closures sharing a context with a large value, streams never consumed, agents per
    /// call, setMaxListeners(0).
    ///
    /// Exit 1 when a finding is at or above --level, 0 otherwise, 2 when a file could not
    /// be linted. `// leakhound-disable-next-line RULE` silences a line; `.leakhound.json`
    /// (see the README) sets severities and allowed patterns.
    Lint(LintArgs),
    /// The Statistics breakdown of a heap snapshot (code, strings, arrays, native...).
    Stats {
        /// A .heapsnapshot file (or gzip of one).
        file: PathBuf,
        /// Print the totals and breakdown as a JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// Whether `--json` was asked for: then an error is a JSON object on stdout too.
    pub fn json(&self) -> bool {
        match self {
            Command::Hunt(a) => a.report.json,
            Command::Demo(a) => a.report.json,
            Command::Watch(a) => a.json,
            Command::Snapshot(_) => false,
            Command::Lint(a) => a.format == LintFormat::Json,
            Command::Summary { json, .. }
            | Command::Diff { json, .. }
            | Command::Retainers { json, .. }
            | Command::Leaks { json, .. }
            | Command::Stats { json, .. } => *json,
        }
    }
}

/// `leakhound lint`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct LintArgs {
    /// Files or folders to lint (default: the current folder). `.gitignore` is respected.
    pub paths: Vec<PathBuf>,
    /// Output: ESLint-like text, the stable JSON object, or SARIF 2.1.0.
    #[arg(long, value_enum, default_value_t = LintFormat::Stylish)]
    pub format: LintFormat,
    /// The least severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = LintLevel::Warning)]
    pub level: LintLevel,
    /// Lint `node_modules` folders too (ignore files are then not read).
    #[arg(long)]
    pub include_deps: bool,
    /// The config file (default: `.leakhound.json` in the first path or its ancestors).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A `hunt --json` or `leaks --json` report: mark the findings its clusters confirm.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `lint --format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LintFormat {
    /// ESLint's stylish text.
    Stylish,
    /// The stable JSON object (`schema_version` 1).
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// `lint --level`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LintLevel {
    /// Any finding fails.
    Info,
    /// Warnings and errors fail.
    Warning,
    /// Only errors fail.
    Error,
}

/// Which app: a command to start, or a running process.
#[derive(Args, Debug, Clone)]
pub struct AppArgs {
    /// Attach to a running node process instead of starting one.
    #[arg(long)]
    pub attach: Option<u32>,
    /// The app's command, after `--`: e.g. `-- node server.js`.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

/// The load `hunt` drives at the app.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The app's URL (default: a free port on 127.0.0.1, passed to the app as PORT). A
    /// path alone (`/api/orders`) is that path on such a port; a loopback URL with a port
    /// gives the app that PORT (unless PORT is set in the environment).
    #[arg(long)]
    pub url: Option<String>,
    /// Concurrent keep-alive connections of the built-in load.
    #[arg(long, default_value_t = 10)]
    pub connections: usize,
    /// Requests per load phase.
    #[arg(long, default_value_t = 2000)]
    pub requests: u64,
    /// Load phases by time instead: seconds, or with a unit (`500ms`, `90s`, `10m`, `1h`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Target request rate (requests per second, all connections).
    #[arg(long)]
    pub rate: Option<f64>,
    /// HTTP method of the built-in load's requests.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Body sent with every request of the built-in load (default: none).
    #[arg(long)]
    pub body: Option<String>,
    /// Statuses every response must have, e.g. `2xx`, `2xx,3xx`, `200,204`: any other
    /// status, or no response, fails the hunt (exit 2). Without it, a phase whose
    /// responses are mostly not 2xx/3xx is a warning, and makes a "no leak" inconclusive.
    #[arg(long, value_name = "STATUSES", value_parser = parse_expect_status)]
    pub expect_status: Option<leakhound_hunt::ExpectStatus>,
    /// Run this shell command once per load phase instead of the built-in load
    /// (it gets the app's URL as LEAKHOUND_URL, and the app its PORT, as with the built-in
    /// load). No warm-up then, unless --warmup-load.
    #[arg(long)]
    pub load: Option<String>,
    /// Units of load one run of --load makes (for per-request rates).
    #[arg(long)]
    pub units: Option<u64>,
    /// Warm-up requests before the baseline (0: no warm-up). The default, 1000, lets V8
    /// compile the hot paths and fill its caches first: with 200, healthy express and
    /// fastify apps on a busy machine still grew 0.3-0.6 MB of code and feedback in the
    /// first load phase, enough to blur the floor.
    #[arg(long, default_value_t = 1000)]
    pub warmup: u64,
    /// Run this shell command once as the warm-up instead (with LEAKHOUND_URL).
    #[arg(long, value_name = "CMD")]
    pub warmup_load: Option<String>,
    /// Open the built-in load's connections anew for each phase and close them at its
    /// end. By default they are kept open from before the baseline to the end of the
    /// calm-down, as browsers, load balancers and proxies keep theirs, so that what the
    /// app piles on a connection per request (a listener on `req.socket`) is in every
    /// snapshot; between phases each connection idle for a second gets one request
    /// marked `x-leakhound-keep-warm: 1` (left out of the request counts) so that the
    /// app's keep-alive timeout does not close it.
    #[arg(long)]
    pub fresh_connections: bool,
}

/// How a hunt runs: phases, sampling, snapshots, the leak finder's threshold.
#[derive(Args, Debug, Clone)]
pub struct HuntRunArgs {
    /// Load phases (2: target and final; more add snapshots).
    #[arg(long, default_value_t = 2)]
    pub phases: usize,
    /// Memory sample interval, ms.
    #[arg(long, default_value_t = 100)]
    pub sample_ms: u64,
    /// Force a full GC this often during load for floor points, ms (0: off).
    #[arg(long, default_value_t = 1000)]
    pub gc_interval_ms: u64,
    /// Wait after the load before the calm-down check, ms.
    #[arg(long, default_value_t = 1500)]
    pub calm_down_ms: u64,
    /// Folder for the snapshots (default ./leakhound-<time>).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Seconds to wait for the app to become ready.
    #[arg(long, default_value_t = 30)]
    pub ready_timeout: u64,
    /// Ready when this text appears in the app's output (instead of polling the URL).
    #[arg(long)]
    pub ready: Option<String>,
    /// Minimum growth, in objects, for a cluster to count as a leak.
    #[arg(long, default_value_t = 2)]
    pub min_growth: u64,
    /// The app's output: `show` (on stderr, `app| …`; the default), `hide` (the default
    /// with --quiet), or `file:PATH` (written there).
    #[arg(long, value_name = "show|hide|file:PATH", value_parser = parse_app_output)]
    pub app_output: Option<AppOutput>,
    /// Take each snapshot even when writing it seems not to fit the memory free for the app.
    /// By default, before each snapshot, leakhound estimates what writing it costs the app
    /// (6-10× heapUsed for heaps of small objects, more with big arrays or Maps) and
    /// compares it with the machine's MemAvailable and the app's cgroup memory limit: one
    /// that does not fit ends the hunt (exit 2, snapshots so far kept) before the kernel
    /// kills the app mid-snapshot. LEAKHOUND_AVAILABLE_BYTES=SIZE (e.g. 300M, 2G) pretends
    /// SIZE is free instead.
    #[arg(long)]
    pub ignore_headroom: bool,
    /// Hunt in the main process's main thread only. By default every isolate of the app is
    /// followed: the cluster workers and other node processes it forks (each through the
    /// inspector it inherits, found in /proc, or opened with SIGUSR1) and the worker_threads
    /// Workers of each, with a memory series, snapshots and a verdict of its own.
    #[arg(long)]
    pub main_only: bool,
    /// Record which code allocates: V8's allocation tracking is turned on before the
    /// baseline (HeapProfiler.startTrackingHeapObjects, trackAllocations), so each leak
    /// cluster gets its allocation stacks (the most common stacks of its objects, the app's
    /// own frames first) and its source becomes the first frame of the app's code. A frame
    /// names its function and where that function starts (V8 does not record the line of
    /// the call inside it). Off by default: tracking records a stack on every allocation,
    /// which costs the app dearly: measured on a small server, 0.06x its requests/s (783
    /// vs 12,050 req/s, p99 76 ms vs 7.5 ms) and +8 % RSS (bench/alloc_cost.py,
    /// bench/RESULTS.md). Use it on a test instance, not a live service.
    #[arg(long)]
    pub track_allocations: bool,
    /// Run V8's sampling heap profiler from the baseline to the last snapshot, keeping only
    /// what survives (objects the GC collected are dropped), and write it as
    /// allocations.heapprofile in the output folder (DevTools: Memory → Load profile). The
    /// report shows the top surviving allocation sites (JSON: surviving_allocations) and
    /// the HTML a flame graph, frames of the leak clusters in red. Cheap (one sample per
    /// 32 KiB allocated): on the same server 0.82x the requests/s, within the noise of the
    /// measurement (rounds from 0.5x to 1.1x), and no more RSS (bench/RESULTS.md).
    #[arg(long)]
    pub sample_allocations: bool,
    /// The longest timers a hunt waits for. When a cluster is a list of Node's timers of
    /// duration d (a TTL cache's `setTimeout(() => cache.delete(key), d)` per request)
    /// that are not all intervals, and d is at most this, the hunt waits until d and a
    /// margin (1 s + 5 %) have passed since the load stopped, takes a `settled` snapshot
    /// and keeps only the clusters still growing with it in the final's place; the
    /// clusters it drops are reported. Longer timers leave the clusters as they are, with
    /// what would decide them. 0: never wait.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub settle_max_wait: Duration,
}

/// Where the app's output goes (`--app-output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppOutput {
    /// On stderr, each line after `app| `.
    Show,
    /// Dropped: the app's output is read (so it never blocks) and not shown.
    Hide,
    /// Into this file (created or truncated, mode 0600), as the app wrote it.
    File(PathBuf),
}

/// `show`, `hide` or `file:PATH`.
fn parse_app_output(text: &str) -> Result<AppOutput, String> {
    match text {
        "show" => Ok(AppOutput::Show),
        "hide" => Ok(AppOutput::Hide),
        _ => match text.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(AppOutput::File(PathBuf::from(path))),
            _ => Err(format!("{text:?}: give show, hide or file:PATH")),
        },
    }
}

/// Where a hunt's report goes.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Print the stable JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (memory chart, traces) to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// The flags of `leakhound hunt`, turned into `leakhound_hunt::HuntOptions` by
/// [`HuntArgs::options`].
#[derive(Args, Debug, Clone)]
pub struct HuntArgs {
    /// Which app to hunt: the command after `--`, or `--attach PID`.
    #[command(flatten)]
    pub app: AppArgs,
    /// Where the load goes and how it is made (built-in HTTP load or `--load`).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Phases and sampling.
    #[command(flatten)]
    pub run: HuntRunArgs,
    /// Where the report goes: text or `--json` on stdout, and an `--html` file.
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `leakhound demo`: a hunt whose app is the bundled demo server.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How the load is made, as for `hunt` (the URL is the demo server's).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Phases and sampling.
    #[command(flatten)]
    pub run: HuntRunArgs,
    /// The report (default HTML file: leakhound-demo.html).
    #[command(flatten)]
    pub report: ReportArgs,
}

/// The flags of `leakhound watch`: which app, how long, and how often to sample and GC.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Attach to this running node process (repeatable: one agent watches several). Its
    /// inspector is opened on 127.0.0.1 only and closed again when leakhound leaves;
    /// Ctrl-C or SIGTERM never stops it.
    #[arg(long = "attach", value_name = "PID")]
    pub attach: Vec<u32>,
    /// The app's command, after `--`: e.g. `-- node server.js` (started and supervised:
    /// stopped when the watch ends).
    #[arg(last = true)]
    pub command: Vec<OsString>,
    /// Stop after this long: seconds, or with a unit (`90s`, `10m`, `1h`) (default: until
    /// Ctrl-C or every app exits).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Sample interval, ms (default: 5000 with --attach, 500 for an app leakhound starts).
    #[arg(long)]
    pub sample_ms: Option<u64>,
    /// Force a full GC this often for clean floor points, ms (0: only the app's own GCs;
    /// default: never with --attach, where floor points come from the app's own full GCs,
    /// and 5000 for an app leakhound starts).
    #[arg(long)]
    pub gc_interval_ms: Option<u64>,
    /// Warm-up left out of the statistics: seconds, or with a unit (`30s`, `2m`).
    #[arg(long, default_value = "5", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Print JSON at the end.
    #[arg(long)]
    pub json: bool,
    /// Watch each app's own process only. By default every isolate of each app is
    /// watched, as `hunt` follows them: the cluster workers and other node processes it
    /// forks (each through the inspector it inherits, found in /proc, or opened with
    /// SIGUSR1 and closed again when leakhound leaves) and the worker_threads Workers of
    /// each, with a series, floor and verdict of its own; workers that exit are reported
    /// ended and their replacements watched.
    #[arg(long)]
    pub main_only: bool,
    /// Serve Prometheus metrics (`/metrics`, OpenMetrics text) and a health check
    /// (`/health`, JSON) on this address while watching: HOST:PORT with an IP address, or a
    /// port alone for 127.0.0.1; the flag alone means 127.0.0.1:9464. Loopback unless you
    /// name another address. A taken port is an error at once (exit 2).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9464", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The `app` label of every metric and of /health (default: the app's script name).
    #[arg(long, value_name = "NAME")]
    pub app_name: Option<String>,
    /// /health says `warning` when heapUsed reaches this: a size (`450M`, `1G`) or a
    /// percentage of V8's heap limit (`80%`).
    #[arg(long, value_name = "SIZE|N%", default_value = "80%")]
    pub warn_heap: leakhound_agent::HeapThreshold,
    /// /health says `critical` (HTTP 503) when heapUsed reaches this: a size or a
    /// percentage of the heap limit.
    #[arg(long, value_name = "SIZE|N%", default_value = "90%")]
    pub critical_heap: leakhound_agent::HeapThreshold,
    /// Evidence capture and restarts.
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// Evidence capture in production (`watch`): snapshots when the floor rises or the heap
/// nears its limit, and restarts with the evidence kept. Each snapshot first passes the
/// memory headroom check for the app (its cgroup and the machine), a free-disk check and a
/// machine-wide one-capture-at-a-time lock; one that does not fit is skipped and a sampling
/// heap profile (`profile.heapprofile`, started with the episode) stands in for it.
#[derive(Args, Debug, Clone, Default)]
pub struct CaptureArgs {
    /// Capture evidence into this folder (off by default): when the floor has risen for
    /// --capture-after, --captures snapshots --capture-interval apart, each after a full
    /// GC, then the leak finder's report (report.txt, report.json, report.html) beside them.
    #[arg(long, value_name = "DIR")]
    pub capture_dir: Option<PathBuf>,
    /// How long the floor must keep rising before an episode (default 10m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub capture_after: Option<Duration>,
    /// Snapshots per episode (default 3: the leak finder compares three).
    #[arg(long, value_name = "N")]
    pub captures: Option<u32>,
    /// Time between an episode's snapshots (default 2m).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub capture_interval: Option<Duration>,
    /// Quiet time after an episode (default 1h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub capture_cooldown: Option<Duration>,
    /// Most disk the episodes may take (`10G`, the default); the oldest go first.
    #[arg(long, value_name = "SIZE")]
    pub capture_max_bytes: Option<String>,
    /// One snapshot when heapUsed passes this share of V8's heap limit (`90%`).
    #[arg(long, value_name = "PERCENT")]
    pub capture_near_limit: Option<String>,
    /// Restart the app leakhound started when its RSS passes SIZE (`450M`, `1G`), or
    /// heapUsed with `heap:SIZE`; checked at every sample (500 ms by default). Evidence is
    /// taken first (with --capture-dir); restarts in a crash loop back off (1 s doubling to
    /// 5 min).
    #[arg(long, value_name = "SIZE|heap:SIZE")]
    pub restart_above: Option<String>,
    /// Between SIGTERM and SIGKILL when restarting (default 5s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub kill_timeout: Option<Duration>,
}

impl CaptureArgs {
    /// The plain options, `attached` telling whether the watch attaches to processes.
    pub fn options(&self, attached: bool) -> leakhound_hunt::evidence::CaptureOptions {
        leakhound_hunt::evidence::CaptureOptions {
            dir: self.capture_dir.clone(),
            after: self.capture_after,
            captures: self.captures,
            interval: self.capture_interval,
            cooldown: self.capture_cooldown,
            max_bytes: self.capture_max_bytes.clone(),
            near_limit: self.capture_near_limit.clone(),
            restart_above: self.restart_above.clone(),
            kill_timeout: self.kill_timeout,
            attached,
        }
    }
}

/// `--metrics-addr`: `HOST:PORT` (an IP address; `localhost` is 127.0.0.1), `:PORT` or
/// `PORT` (127.0.0.1).
pub fn parse_metrics_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = t.strip_prefix("localhost:").and_then(|p| p.parse::<u16>().ok()) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    t.parse().map_err(|_| {
        format!("{text:?}: give HOST:PORT with an IP address (127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464) or a port")
    })
}

/// The flags of `leakhound snapshot`: which process (by pid or inspector URL) and where
/// the file goes.
#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// Attach to this pid (SIGUSR1 opens its inspector on 127.0.0.1).
    #[arg(long, conflicts_with = "inspect", required_unless_present = "inspect")]
    pub pid: Option<u32>,
    /// Or connect to this inspector (`ws://127.0.0.1:…` or `http://127.0.0.1:9229`).
    #[arg(long)]
    pub inspect: Option<String>,
    /// Snapshot the worker_threads Worker with this threadId in the process instead of its
    /// main thread (reached through the process's inspector, NodeWorker).
    #[arg(long, value_name = "N")]
    pub thread: Option<u32>,
    /// Output file (default Heap-<pid>-<time>.heapsnapshot). With --count, a folder (an
    /// existing one, or a path ending in `/`) for Heap-<pid>-<time>-<n>.heapsnapshot, or a
    /// prefix: `-o shop` writes shop-1.heapsnapshot, shop-2.heapsnapshot, …
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Snapshots to take, in one inspector session: V8 keeps its object ids for the
    /// session, so `diff` and `leaks` can compare them (separate runs cannot be compared).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Time between the snapshots of a series: seconds, or with a unit (`90s`, `10m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Take the snapshot even when writing it seems not to fit the memory free for the
    /// process. By default leakhound estimates what writing it costs the process (6-10×
    /// heapUsed for heaps of small objects, more with big arrays or Maps) and compares it
    /// with the machine's MemAvailable and, with --pid, the process's cgroup memory limit:
    /// one that does not fit is refused (exit 2) before the kernel kills the process
    /// mid-snapshot. LEAKHOUND_AVAILABLE_BYTES=SIZE (e.g. 300M, 2G) pretends SIZE is free
    /// instead.
    #[arg(long)]
    pub ignore_headroom: bool,
}

/// The row order of `diff` (`--sort`); every order puts the largest value first.
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum DiffSort {
    /// Size delta, largest first.
    Delta,
    /// Retained-size delta, largest first.
    Retained,
    /// DevTools' order (allocated size).
    Alloc,
    /// Count delta, largest first.
    Count,
}

/// The row order of `summary` (`--sort`); every order puts the largest value first.
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum SortBy {
    /// Retained size, largest first (DevTools' order).
    Retained,
    /// Self size, largest first.
    #[value(name = "self")]
    SelfSize,
    /// Object count, largest first.
    Count,
}

impl HuntArgs {
    /// The library's options for this hunt.
    pub fn options(self) -> leakhound_hunt::HuntOptions {
        hunt_options(self.app, self.load, self.run)
    }
}

impl DemoArgs {
    /// The library's options for a hunt of `command` (the demo server).
    pub fn options(self, command: Vec<OsString>) -> leakhound_hunt::HuntOptions {
        let app = AppArgs { attach: None, command };
        hunt_options(app, self.load, self.run)
    }
}

fn hunt_options(app: AppArgs, load: LoadArgs, run: HuntRunArgs) -> leakhound_hunt::HuntOptions {
    leakhound_hunt::HuntOptions {
        command: app.command,
        attach: app.attach,
        url: load.url,
        connections: load.connections,
        requests: load.requests,
        duration: load.duration,
        rate: load.rate,
        method: load.method,
        headers: load.headers,
        body: load.body,
        expect_status: load.expect_status,
        load_command: load.load,
        units: load.units,
        warmup: load.warmup,
        warmup_load: load.warmup_load,
        phases: run.phases,
        sample_ms: run.sample_ms,
        gc_interval_ms: run.gc_interval_ms,
        calm_down_ms: run.calm_down_ms,
        out_dir: run.out_dir,
        ready_timeout_s: run.ready_timeout,
        ready: run.ready,
        min_growth: run.min_growth,
        ignore_headroom: run.ignore_headroom,
        main_only: run.main_only,
        track_allocations: run.track_allocations,
        sample_allocations: run.sample_allocations,
        fresh_connections: load.fresh_connections,
        settle_max_wait_ms: run.settle_max_wait.as_millis() as u64,
    }
}

impl WatchArgs {
    /// The library's options for this watch.
    pub fn options(&self) -> leakhound_hunt::WatchOptions {
        leakhound_hunt::WatchOptions {
            command: self.command.clone(),
            attach: self.attach.clone(),
            duration: self.duration,
            sample_ms: self.sample_ms,
            gc_interval_ms: self.gc_interval_ms,
            warmup: self.warmup,
            main_only: self.main_only,
        }
    }
}

/// `--expect-status`: classes and codes, comma-separated (`2xx,3xx`, `200,204`).
fn parse_expect_status(text: &str) -> Result<leakhound_hunt::ExpectStatus, String> {
    text.parse()
}

/// A duration: a plain number of seconds (`2.5`), or a number with a unit `ms`, `s`, `m`
/// or `h` (`500ms`, `90s`, `10m`, `1h`). Negative, infinite or NaN values are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s, m or h)")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30, 90s, 10m, 1h)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{text:?} is not a duration of zero or more"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_output_is_shown_hidden_or_written_to_a_file() {
        assert_eq!(parse_app_output("show"), Ok(AppOutput::Show));
        assert_eq!(parse_app_output("hide"), Ok(AppOutput::Hide));
        assert_eq!(
            parse_app_output("file:logs/app.log"),
            Ok(AppOutput::File(PathBuf::from("logs/app.log")))
        );
        for bad in ["", "file:", "Show", "stderr"] {
            assert!(parse_app_output(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metrics_addresses_default_to_loopback() {
        let lo = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        assert_eq!(parse_metrics_addr("9464"), Ok(lo(9464)));
        assert_eq!(parse_metrics_addr(":9100"), Ok(lo(9100)));
        assert_eq!(parse_metrics_addr("localhost:0"), Ok(lo(0)));
        assert_eq!(parse_metrics_addr("0.0.0.0:9464").unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(parse_metrics_addr("[::1]:9464").unwrap().to_string(), "[::1]:9464");
        for bad in ["", "host:9464", "127.0.0.1", "70000"] {
            assert!(parse_metrics_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["-1", "NaN", "inf", "1d", "", "s", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
