//! Settings of a hunt and a watch, built in two stages as in ripgrep: the command line
//! gives plain [`HuntOptions`] / [`WatchOptions`] (what the user typed, parsed but not
//! yet checked against each other), and [`HuntConfig::from_options`] /
//! [`WatchConfig::from_options`] check them and decide the rest (a free port for the
//! app, the load's URL, the output folder).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use leakhound_leaks::LeakOptions;
use leakhound_load::{ExternalLoad, LoadSpec};

use crate::out_dir::OutDir;

/// What to hunt or watch.
#[derive(Debug, Clone)]
pub enum AppTarget {
    /// Start this command under `--inspect=127.0.0.1:0` (node) or `NODE_OPTIONS` (npm…).
    Spawn {
        /// The program (`node`, `npm`, …), looked up in `PATH`.
        program: OsString,
        /// The arguments after the program (`server.js`, …), passed as they are.
        args: Vec<OsString>,
        /// Its working directory (None: leakhound's).
        cwd: Option<PathBuf>,
        /// Variables added to leakhound's environment (e.g. `PORT`).
        env: Vec<(OsString, OsString)>,
    },
    /// Attach to a running node process: SIGUSR1 opens its inspector on 127.0.0.1.
    Attach {
        /// The process id.
        pid: u32,
    },
}

impl AppTarget {
    /// The target of `leakhound VERB [--attach PID] [-- COMMAND…]`: the running process
    /// when `attach` is given, else `command` started with `env` added.
    ///
    /// # Errors
    /// [`ConfigError::NoApp`] when neither is given.
    pub fn new(
        verb: &'static str,
        command: &[OsString],
        attach: Option<u32>,
        env: Vec<(OsString, OsString)>,
    ) -> Result<AppTarget, ConfigError> {
        match (attach, command.split_first()) {
            (Some(pid), _) => Ok(AppTarget::Attach { pid }),
            (None, Some((program, _))) if is_bun(program) => Err(ConfigError::Bun),
            (None, Some((program, rest))) => Ok(AppTarget::Spawn {
                program: program.clone(),
                args: rest.to_vec(),
                cwd: None,
                env,
            }),
            (None, None) => Err(ConfigError::NoApp { verb }),
        }
    }
}

/// True for Bun's programs (`bun`, `bunx`), whose inspector is not V8's.
fn is_bun(program: &OsString) -> bool {
    std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| matches!(n, "bun" | "bunx" | "bun.exe"))
}

/// How load is made.
#[derive(Debug, Clone)]
pub enum LoadKind {
    /// leakhound's own HTTP/1.1 keep-alive load; `requests`/`duration` of the template are
    /// replaced per phase.
    Builtin(LoadSpec),
    /// An external command run once per load phase, making `units` units of load.
    External(ExternalLoad),
}

/// The response statuses every request of a built-in load phase must get
/// (`--expect-status`): classes (`2xx`, `3xx`, …) and exact codes (`200`, `204`), any mix,
/// comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStatus {
    /// Accepted classes, by their first digit (2 for `2xx`).
    classes: Vec<u16>,
    /// Accepted exact codes.
    codes: Vec<u16>,
}

impl ExpectStatus {
    /// Whether a response with status `code` is expected.
    pub fn accepts(&self, code: u16) -> bool {
        self.codes.contains(&code) || self.classes.contains(&(code / 100))
    }
}

impl std::str::FromStr for ExpectStatus {
    type Err = String;

    /// `2xx`, `3xx`, `2xx,3xx`, `200,204`, `2xx,404`: classes 1xx to 5xx (any case) and
    /// codes 100 to 599.
    fn from_str(text: &str) -> Result<ExpectStatus, String> {
        let mut e = ExpectStatus {
            classes: Vec::new(),
            codes: Vec::new(),
        };
        for word in text.split(',').map(str::trim) {
            let lower = word.to_ascii_lowercase();
            let class = lower
                .strip_suffix("xx")
                .and_then(|d| d.parse::<u16>().ok())
                .filter(|d| (1..=5).contains(d) && lower.len() == 3);
            match (class, word.parse::<u16>()) {
                (Some(c), _) => e.classes.push(c),
                (None, Ok(code)) if (100..=599).contains(&code) => e.codes.push(code),
                _ => {
                    return Err(format!(
                        "{word:?} is not a status: give classes such as 2xx or 3xx, or codes such as 200,204"
                    ));
                }
            }
        }
        Ok(e)
    }
}

impl std::fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("{c}xx"))
            .chain(self.codes.iter().map(u16::to_string))
            .collect();
        f.write_str(&words.join(","))
    }
}

/// A setting that cannot be used, or settings that do not fit together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a command nor `--attach`.
    #[error("give the app's command after `--` (e.g. `leakhound {verb} -- node server.js`) or --attach PID")]
    NoApp {
        /// The subcommand, for the example.
        verb: &'static str,
    },
    /// The app runs on Bun.
    #[error(
        "Bun is not supported: its inspector speaks WebKit's protocol, not V8's, and its heap snapshots give the same object another id in each snapshot, so a series cannot be compared. Write a V8 heap snapshot from the app instead, `await Bun.write(\"app.heapsnapshot\", Bun.generateHeapSnapshot(\"v8\"))`, and read it with `leakhound summary app.heapsnapshot`"
    )]
    Bun,
    /// `--attach` with the built-in load needs to know where to send it.
    #[error("with --attach, give the app's address with --url")]
    AttachNeedsUrl,
    /// A `-H` value without a colon.
    #[error("--header takes `Name: value`, not {0:?}")]
    BadHeader(String),
    /// Fewer than two load phases.
    #[error("--phases must be at least 2 (target and final)")]
    TooFewPhases,
    /// `--expect-status` checks the built-in load's responses; a load command's are not seen.
    #[error("--expect-status checks the built-in load's responses: leakhound cannot see those of --load")]
    ExpectStatusNeedsBuiltinLoad,
    /// No free port on 127.0.0.1 for the app.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
    /// The built-in load's settings.
    #[error("{0}")]
    Load(#[from] leakhound_load::LoadError),
    /// `watch` takes either a command or `--attach` pids, not both.
    #[error("give either the app's command after `--` or --attach PID, not both")]
    CommandAndAttach,
    /// The same pid given twice to `--attach`.
    #[error("--attach {0} is given twice")]
    DuplicateAttach(u32),
}

/// The options of `leakhound hunt` as given, before they are checked: one field per flag.
/// Defaults are the command line's.
#[derive(Debug, Clone)]
pub struct HuntOptions {
    /// The app's command (empty with `attach`).
    pub command: Vec<OsString>,
    /// Attach to this running process instead.
    pub attach: Option<u32>,
    /// The app's URL (None: a free port on 127.0.0.1, given to the app as `PORT`).
    pub url: Option<String>,
    /// Concurrent keep-alive connections of the built-in load.
    pub connections: usize,
    /// Requests per load phase.
    pub requests: u64,
    /// Load phases by time instead of count.
    pub duration: Option<Duration>,
    /// Target rate, requests per second over all connections.
    pub rate: Option<f64>,
    /// HTTP method of the built-in load's requests (`GET` by default; any case).
    pub method: String,
    /// Request headers, each `Name: value`.
    pub headers: Vec<String>,
    /// Body sent with every request of the built-in load (None: no body).
    pub body: Option<String>,
    /// Statuses every response of the built-in load must have (None: any, with a warning
    /// when most are not 2xx/3xx).
    pub expect_status: Option<ExpectStatus>,
    /// A shell command run once per load phase instead of the built-in load.
    pub load_command: Option<String>,
    /// Units of load one run of `load_command` makes.
    pub units: Option<u64>,
    /// Warm-up units before the baseline (built-in load; 0: no warm-up at all).
    pub warmup: u64,
    /// A shell command run once as the warm-up instead. With `load_command` and no
    /// `warmup_load` there is no warm-up: the whole load command is not run again.
    pub warmup_load: Option<String>,
    /// Load phases (at least 2).
    pub phases: usize,
    /// Memory sample interval, ms (at least 10 is used).
    pub sample_ms: u64,
    /// Forced GC interval during load, ms (0: off).
    pub gc_interval_ms: u64,
    /// Wait after the load before the calm-down check, ms.
    pub calm_down_ms: u64,
    /// Folder for the snapshots (None: a new `./leakhound-<unix seconds>`).
    pub out_dir: Option<PathBuf>,
    /// Seconds to wait for the app to become ready.
    pub ready_timeout_s: u64,
    /// Ready when this text appears in the app's output.
    pub ready: Option<String>,
    /// Minimum growth, in objects, for a cluster to count as a leak.
    pub min_growth: u64,
    /// Take every snapshot even when the memory headroom check says it does not fit
    /// (`--ignore-headroom`; a warning is recorded instead).
    pub ignore_headroom: bool,
    /// Watch only the main process's main thread (`--main-only`): no cluster workers,
    /// child processes or worker threads.
    pub main_only: bool,
    /// Turn on V8's allocation tracking before the baseline (`--track-allocations`), so
    /// the snapshots carry allocation stacks.
    pub track_allocations: bool,
    /// Take a sampling heap profile over the load phases (`--sample-allocations`).
    pub sample_allocations: bool,
    /// Open the built-in load's connections anew for each phase and close them at its
    /// end (`--fresh-connections`), instead of keeping them open from the warm-up to the
    /// calm-down.
    pub fresh_connections: bool,
    /// The longest timers (their duration, ms) the hunt waits for before a `settled`
    /// snapshot (`--settle-max-wait`); 0: never waits.
    pub settle_max_wait_ms: u64,
}

/// Settings of a hunt.
#[derive(Debug, Clone)]
pub struct HuntConfig {
    /// The app to start (with `PORT` set when leakhound picked the port) or to attach to.
    pub target: AppTarget,
    /// The app's command line as one string, when leakhound starts it (for reports).
    pub command_line: Option<String>,
    /// The app's URL: readiness is checked there (any HTTP status) unless `ready_pattern`.
    pub url: Option<String>,
    /// How each phase's load is made: the built-in HTTP load or the user's command.
    pub load: LoadKind,
    /// Statuses every response of the built-in load must have: another one fails the hunt
    /// at the end of its phase. None: a phase whose responses are mostly not 2xx/3xx is a
    /// warning.
    pub expect_status: Option<ExpectStatus>,
    /// Units of load per load phase (built-in load: requests; ignored with `duration`).
    pub requests_per_phase: u64,
    /// Built-in load by time instead of count.
    pub duration_per_phase: Option<Duration>,
    /// Units of warm-up load before the baseline (0 for none).
    pub warmup_requests: u64,
    /// The warm-up's own command (`--warmup-load`), run once instead of the phases' load.
    pub warmup_load: Option<ExternalLoad>,
    /// Load phases (at least 2: target and final; more add snapshots).
    pub phases: usize,
    /// Interval between `process.memoryUsage()` samples.
    pub sample_interval: Duration,
    /// Force a full GC this often during load, for floor points (None: only the app's
    /// own GCs and those before snapshots).
    pub gc_interval: Option<Duration>,
    /// How long to wait after the load before the calm-down GC.
    pub calm_down: Duration,
    /// Where snapshots are written: a new private folder, or the one named (see
    /// [`OutDir`]).
    pub out_dir: OutDir,
    /// How long to wait for the app to become ready.
    pub ready_timeout: Duration,
    /// A substring of the app's output that means ready (instead of polling `url`).
    pub ready_pattern: Option<String>,
    /// Leak-finder options (`requests_per_step` is set from the load).
    pub leak_options: LeakOptions,
    /// Before each snapshot, the memory it will cost the app is checked against what is
    /// free for it (`leakhound_inspector::headroom`): a snapshot that does not fit ends the
    /// hunt, unless this is set, which makes it a warning.
    pub ignore_headroom: bool,
    /// Follow every isolate of the app (cluster workers, child processes, worker threads),
    /// each with its own series, snapshots and verdict; false with `--main-only`.
    pub follow_isolates: bool,
    /// Turn on allocation tracking (`HeapProfiler.startTrackingHeapObjects` with
    /// `trackAllocations: true`) before the baseline, so every later snapshot records
    /// which stack allocated each new object and each leak cluster gets its allocation
    /// stacks. It slows the app while it runs (`bench/RESULTS.md`).
    pub track_allocations: bool,
    /// Run V8's sampling heap profiler (survivors only) from the baseline to the last
    /// snapshot and write it as `allocations.heapprofile` in the output folder.
    pub sample_allocations: bool,
    /// Keep the built-in load's keep-alive connections open from before the baseline to
    /// the end of the calm-down (one pool handed from phase to phase, kept from idling
    /// out between phases by one marked request per connection idle for a second), so
    /// that what the app piles on a connection per request is alive in every snapshot.
    /// False with `--fresh-connections` or a load command.
    pub keep_connections: bool,
    /// When the leak finder's clusters include one-shot timers (a timer list of duration
    /// `d`) and `d` is at most this, the hunt waits until `d` plus a margin after the load
    /// stopped and takes a `settled` snapshot (`settle`); zero: never.
    pub settle_max_wait: Duration,
}

fn free_port() -> Result<u16, ConfigError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(ConfigError::NoFreePort)?;
    Ok(l.local_addr().map_err(ConfigError::NoFreePort)?.port())
}

impl HuntConfig {
    /// Checks `o` and decides the rest: without `--url` a started app gets a free port on
    /// 127.0.0.1 as `PORT`, and the load goes to it (the built-in load, or a load command
    /// as `LEAKHOUND_URL`); a `--url` that is a path alone (`/api/orders`) is that path on
    /// such a port; a loopback `--url` with a port gives that port as `PORT` (unless the
    /// environment has one); the output folder defaults to `./leakhound-<unix seconds>`.
    /// With a load command the warm-up is `warmup_load` alone (none without it).
    ///
    /// # Errors
    /// [`ConfigError`] for a bad header, fewer than two phases, no app, `--attach`
    /// without `--url`, no free port, or built-in load settings out of range.
    pub fn from_options(o: HuntOptions) -> Result<HuntConfig, ConfigError> {
        let headers = o
            .headers
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| ConfigError::BadHeader(h.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if o.phases < 2 {
            return Err(ConfigError::TooFewPhases);
        }
        if o.expect_status.is_some() && o.load_command.is_some() {
            return Err(ConfigError::ExpectStatusNeedsBuiltinLoad);
        }
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        // A load command gets the same port and URL as the built-in load: without them it
        // would load nothing (an empty LEAKHOUND_URL) and the hunt would say NO LEAK.
        let url = match (&o.url, o.attach) {
            // A path alone (`--url /api/orders`): that path on the free port given as PORT.
            (Some(u), None) if u.starts_with('/') => {
                let port = free_port()?;
                env.push(("PORT".into(), port.to_string().into()));
                Some(format!("http://127.0.0.1:{port}{u}"))
            }
            (Some(u), None) => {
                // An app started for a loopback URL listens where the load goes when it
                // reads PORT (unless the user's environment sets PORT already).
                if let Some(port) = crate::listening::loopback_port_of(u)
                    && std::env::var_os("PORT").is_none()
                {
                    env.push(("PORT".into(), port.to_string().into()));
                }
                Some(u.clone())
            }
            (Some(u), Some(_)) => Some(u.clone()),
            (None, None) => {
                let port = free_port()?;
                env.push(("PORT".into(), port.to_string().into()));
                Some(format!("http://127.0.0.1:{port}/"))
            }
            (None, Some(_)) if o.load_command.is_none() => return Err(ConfigError::AttachNeedsUrl),
            // An attached app's address is the user's load command's business.
            (None, Some(_)) => None,
        };
        let target = AppTarget::new("hunt", &o.command, o.attach, env)?;
        let external = |command: &String, units: u64| ExternalLoad {
            command: command.clone(),
            units,
            env: url.iter().map(|u| ("LEAKHOUND_URL".to_owned(), u.clone())).collect(),
        };
        let load = match &o.load_command {
            Some(cmd) => LoadKind::External(external(cmd, o.units.unwrap_or(1))),
            None => {
                let mut spec = LoadSpec::new(url.clone().unwrap_or_default());
                spec.connections = o.connections;
                spec.rate_per_s = o.rate;
                spec.method = o.method.clone();
                spec.headers = headers;
                spec.body = o.body.clone().map(String::into_bytes);
                spec.requests = Some(o.requests);
                spec.validate()?;
                LoadKind::Builtin(spec)
            }
        };
        // Its units are not known: it counts for none.
        let warmup_load = o.warmup_load.as_ref().map(|cmd| external(cmd, 0));
        let command_line = (!o.command.is_empty()).then(|| {
            o.command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(HuntConfig {
            target,
            command_line,
            url,
            load,
            expect_status: o.expect_status,
            requests_per_phase: o.units.filter(|_| o.load_command.is_some()).unwrap_or(o.requests),
            duration_per_phase: o.duration,
            // With a load command the warm-up runs only when asked for (`--warmup-load`):
            // running the whole command once more would double the hunt.
            warmup_requests: if o.load_command.is_some() && o.warmup_load.is_none() {
                0
            } else {
                o.warmup
            },
            warmup_load,
            phases: o.phases,
            sample_interval: Duration::from_millis(o.sample_ms.max(10)),
            gc_interval: (o.gc_interval_ms > 0).then(|| Duration::from_millis(o.gc_interval_ms)),
            calm_down: Duration::from_millis(o.calm_down_ms),
            out_dir: o.out_dir.map_or(OutDir::Fresh, OutDir::Named),
            ready_timeout: Duration::from_secs(o.ready_timeout_s),
            ready_pattern: o.ready,
            leak_options: LeakOptions {
                min_growth: o.min_growth,
                ..Default::default()
            },
            ignore_headroom: o.ignore_headroom,
            follow_isolates: !o.main_only,
            track_allocations: o.track_allocations,
            sample_allocations: o.sample_allocations,
            keep_connections: o.load_command.is_none() && !o.fresh_connections,
            settle_max_wait: Duration::from_millis(o.settle_max_wait_ms),
        })
    }
}

/// The options of `leakhound watch` as given: one field per flag.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The app's command (empty with `attach`).
    pub command: Vec<OsString>,
    /// Attach to these running processes instead (one agent, several targets).
    pub attach: Vec<u32>,
    /// Stop after this long (None: until Ctrl-C or every app exits).
    pub duration: Option<Duration>,
    /// Sample interval, ms (at least 10 is used; None: [`WATCH_SAMPLE_MS_ATTACHED`] when
    /// attached, [`WATCH_SAMPLE_MS_STARTED`] for an app leakhound starts).
    pub sample_ms: Option<u64>,
    /// Forced GC interval, ms (0: only the app's own GCs; None: none when attached,
    /// [`WATCH_GC_INTERVAL_MS_STARTED`] for an app leakhound starts).
    pub gc_interval_ms: Option<u64>,
    /// Warm-up left out of the statistics.
    pub warmup: Duration,
    /// Watch each target's own process only (`--main-only`): no cluster workers, other node
    /// children or worker threads.
    pub main_only: bool,
}

/// Default sample interval of a watch on running processes (`--attach`), ms: one
/// `Runtime.evaluate` every 5 s.
pub const WATCH_SAMPLE_MS_ATTACHED: u64 = 5000;
/// Default sample interval of a watch on an app leakhound starts, ms.
pub const WATCH_SAMPLE_MS_STARTED: u64 = 500;
/// Default forced-GC interval of a watch on an app leakhound starts, ms (an attached app
/// gets no forced GC unless `--gc-interval-ms` asks for it).
pub const WATCH_GC_INTERVAL_MS_STARTED: u64 = 5000;

/// Settings of a watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The apps to start or to attach to: one command, or one or more running processes.
    pub targets: Vec<AppTarget>,
    /// Time between two samples of each target (at least 10 ms).
    pub sample_interval: Duration,
    /// Force a full GC this often (floor points); None: only the app's own GCs.
    pub gc_interval: Option<Duration>,
    /// Stop after this long (None: until every app exits or `stop` is set).
    pub duration: Option<Duration>,
    /// Floor points before this are warm-up and left out of the statistics.
    pub warmup: Duration,
    /// Set to stop the watch (e.g. on Ctrl-C); the outcome is still returned.
    pub stop: Arc<AtomicBool>,
    /// How long to wait for the app's inspector.
    pub ready_timeout: Duration,
    /// Called after every sample of every target (None: nothing is).
    pub hook: Option<Arc<dyn crate::watch::TargetHook>>,
    /// Find and watch every isolate below each target (cluster workers, other node
    /// children, worker threads), as `hunt` does; false with `--main-only`.
    pub follow_isolates: bool,
}

impl WatchConfig {
    /// Checks `o`; the watch stops when the returned config's `stop` flag is set. Attached
    /// apps get no forced GC unless `gc_interval_ms` asks for one, and are sampled every
    /// [`WATCH_SAMPLE_MS_ATTACHED`] ms by default.
    ///
    /// # Errors
    /// [`ConfigError::NoApp`] when neither a command nor `--attach` is given,
    /// [`ConfigError::CommandAndAttach`] when both are, [`ConfigError::DuplicateAttach`].
    pub fn from_options(o: WatchOptions) -> Result<WatchConfig, ConfigError> {
        let attached = !o.attach.is_empty();
        let targets = if attached {
            if !o.command.is_empty() {
                return Err(ConfigError::CommandAndAttach);
            }
            let mut seen = std::collections::BTreeSet::new();
            for pid in &o.attach {
                if !seen.insert(*pid) {
                    return Err(ConfigError::DuplicateAttach(*pid));
                }
            }
            o.attach.iter().map(|&pid| AppTarget::Attach { pid }).collect()
        } else {
            vec![AppTarget::new("watch", &o.command, None, Vec::new())?]
        };
        let sample_ms = o.sample_ms.unwrap_or(if attached {
            WATCH_SAMPLE_MS_ATTACHED
        } else {
            WATCH_SAMPLE_MS_STARTED
        });
        let gc_ms = o
            .gc_interval_ms
            .unwrap_or(if attached { 0 } else { WATCH_GC_INTERVAL_MS_STARTED });
        Ok(WatchConfig {
            targets,
            sample_interval: Duration::from_millis(sample_ms.max(10)),
            gc_interval: (gc_ms > 0).then(|| Duration::from_millis(gc_ms)),
            duration: o.duration,
            warmup: o.warmup,
            stop: Arc::new(AtomicBool::new(false)),
            ready_timeout: Duration::from_secs(30),
            hook: None,
            follow_isolates: !o.main_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line's defaults for `hunt -- node app.js`.
    fn options() -> HuntOptions {
        HuntOptions {
            command: vec!["node".into(), "app.js".into()],
            attach: None,
            url: None,
            connections: 10,
            requests: 2000,
            duration: None,
            rate: None,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            expect_status: None,
            load_command: None,
            units: None,
            warmup: 1000,
            warmup_load: None,
            phases: 2,
            sample_ms: 100,
            gc_interval_ms: 1000,
            calm_down_ms: 1500,
            out_dir: None,
            ready_timeout_s: 30,
            ready: None,
            min_growth: 2,
            ignore_headroom: false,
            main_only: false,
            track_allocations: false,
            sample_allocations: false,
            fresh_connections: false,
            settle_max_wait_ms: 60_000,
        }
    }

    fn port_given(cfg: &HuntConfig) -> Option<String> {
        match &cfg.target {
            AppTarget::Spawn { env, .. } => env
                .iter()
                .find(|(k, _)| k == "PORT")
                .map(|(_, v)| v.to_string_lossy().into_owned()),
            AppTarget::Attach { .. } => None,
        }
    }

    #[test]
    fn bun_is_refused_with_what_to_do_instead() {
        for program in ["bun", "/usr/local/bin/bun", "bunx"] {
            let e = AppTarget::new("hunt", &[program.into(), "server.ts".into()], None, Vec::new()).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("Bun.generateHeapSnapshot(\"v8\")") && text.contains("leakhound summary"),
                "{text}"
            );
        }
        assert!(AppTarget::new("hunt", &["deno".into(), "run".into()], None, Vec::new()).is_ok());
    }

    #[test]
    fn a_load_command_gets_the_port_and_url_the_built_in_load_would() {
        let cfg = HuntConfig::from_options(HuntOptions {
            load_command: Some("k6 run load.js".into()),
            units: Some(500),
            ..options()
        })
        .unwrap();
        let port = port_given(&cfg).expect("the app gets a PORT");
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(cfg.url.as_deref(), Some(url.as_str()), "readiness is polled there");
        let LoadKind::External(ext) = &cfg.load else {
            panic!("an external load")
        };
        assert_eq!(ext.env, [("LEAKHOUND_URL".to_owned(), url)]);
        assert_eq!(ext.units, 500);
    }

    #[test]
    fn a_url_that_is_a_path_goes_to_the_free_port_given_as_port() {
        let cfg = HuntConfig::from_options(HuntOptions {
            url: Some("/api/orders?x=1".into()),
            ..options()
        })
        .unwrap();
        let port = port_given(&cfg).expect("the app gets a PORT");
        let url = format!("http://127.0.0.1:{port}/api/orders?x=1");
        assert_eq!(cfg.url.as_deref(), Some(url.as_str()));
        let LoadKind::Builtin(spec) = &cfg.load else {
            panic!("the built-in load")
        };
        assert_eq!(spec.url, url);
    }

    #[test]
    fn a_loopback_url_gives_its_port_to_the_app() {
        if std::env::var_os("PORT").is_some() {
            return; // the user's own PORT wins; nothing to check here
        }
        for (url, port) in [
            ("http://127.0.0.1:8088/api/x", Some("8088")),
            ("http://localhost:8089/", Some("8089")),
            ("http://[::1]:8090", Some("8090")),
            ("http://127.0.0.1/", None),
            ("http://10.1.2.3:8088/", None),
        ] {
            let cfg = HuntConfig::from_options(HuntOptions {
                url: Some(url.into()),
                ..options()
            })
            .unwrap();
            assert_eq!(port_given(&cfg).as_deref(), port, "{url}");
            assert_eq!(cfg.url.as_deref(), Some(url));
        }
    }

    #[test]
    fn a_load_command_is_not_run_again_as_the_warm_up_unless_asked() {
        let cfg = HuntConfig::from_options(HuntOptions {
            load_command: Some("k6 run load.js".into()),
            ..options()
        })
        .unwrap();
        assert_eq!(cfg.warmup_requests, 0, "no warm-up");
        assert!(cfg.warmup_load.is_none());
        let cfg = HuntConfig::from_options(HuntOptions {
            load_command: Some("k6 run load.js".into()),
            warmup_load: Some("k6 run --iterations 50 load.js".into()),
            ..options()
        })
        .unwrap();
        assert_eq!(cfg.warmup_requests, 1000);
        let w = cfg.warmup_load.expect("the warm-up command");
        assert_eq!(w.command, "k6 run --iterations 50 load.js");
        assert_eq!(w.env[0].0, "LEAKHOUND_URL");
        // The built-in load keeps its warm-up.
        let cfg = HuntConfig::from_options(options()).unwrap();
        assert_eq!(cfg.warmup_requests, 1000);
        assert!(port_given(&cfg).is_some());
    }

    #[test]
    fn an_attached_app_with_a_load_command_needs_no_url() {
        let cfg = HuntConfig::from_options(HuntOptions {
            command: Vec::new(),
            attach: Some(42),
            load_command: Some("./load.sh".into()),
            ..options()
        })
        .unwrap();
        assert_eq!(cfg.url, None);
        let e = HuntConfig::from_options(HuntOptions {
            command: Vec::new(),
            attach: Some(42),
            ..options()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::AttachNeedsUrl), "{e}");
    }

    #[test]
    fn expected_statuses_are_classes_or_codes() {
        let e: ExpectStatus = "2xx".parse().unwrap();
        assert!(e.accepts(200) && e.accepts(299) && !e.accepts(301) && !e.accepts(404));
        let e: ExpectStatus = "2xx, 3XX".parse().unwrap();
        assert!(e.accepts(204) && e.accepts(302) && !e.accepts(404));
        assert_eq!(e.to_string(), "2xx,3xx");
        let e: ExpectStatus = "200,204".parse().unwrap();
        assert!(e.accepts(200) && e.accepts(204) && !e.accepts(201));
        let e: ExpectStatus = "2xx,404".parse().unwrap();
        assert!(e.accepts(404) && e.accepts(201) && !e.accepts(500));
        for bad in ["", "2x", "6xx", "20", "99", "600", "ok", "2xx,"] {
            assert!(bad.parse::<ExpectStatus>().is_err(), "{bad:?}");
        }
    }

    fn watch_options() -> WatchOptions {
        WatchOptions {
            command: Vec::new(),
            attach: Vec::new(),
            duration: None,
            sample_ms: None,
            gc_interval_ms: None,
            warmup: Duration::from_secs(5),
            main_only: false,
        }
    }

    #[test]
    fn an_attached_watch_forces_no_gc_unless_asked_and_samples_every_5_s() {
        let cfg = WatchConfig::from_options(WatchOptions {
            attach: vec![10, 11],
            ..watch_options()
        })
        .unwrap();
        assert_eq!(cfg.targets.len(), 2);
        assert!(cfg.follow_isolates, "every isolate of each target, as hunt does");
        assert_eq!(cfg.gc_interval, None);
        assert_eq!(cfg.sample_interval, Duration::from_secs(5));
        let cfg = WatchConfig::from_options(WatchOptions {
            attach: vec![10],
            gc_interval_ms: Some(250),
            ..watch_options()
        })
        .unwrap();
        assert_eq!(cfg.gc_interval, Some(Duration::from_millis(250)));
        let main_only = WatchConfig::from_options(WatchOptions {
            attach: vec![10],
            main_only: true,
            ..watch_options()
        })
        .unwrap();
        assert!(!main_only.follow_isolates);
        let started = WatchConfig::from_options(WatchOptions {
            command: vec!["node".into(), "app.js".into()],
            ..watch_options()
        })
        .unwrap();
        assert_eq!(started.gc_interval, Some(Duration::from_secs(5)));
        assert_eq!(started.sample_interval, Duration::from_millis(500));
        let e = WatchConfig::from_options(WatchOptions {
            attach: vec![10, 10],
            ..watch_options()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::DuplicateAttach(10)), "{e}");
        let e = WatchConfig::from_options(WatchOptions {
            attach: vec![10],
            command: vec!["node".into()],
            ..watch_options()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::CommandAndAttach), "{e}");
        let e = WatchConfig::from_options(watch_options()).unwrap_err();
        assert!(matches!(e, ConfigError::NoApp { .. }), "{e}");
    }

    #[test]
    fn expected_statuses_need_the_built_in_load() {
        let e = HuntConfig::from_options(HuntOptions {
            load_command: Some("./load.sh".into()),
            expect_status: Some("2xx".parse().unwrap()),
            ..options()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::ExpectStatusNeedsBuiltinLoad), "{e}");
    }
}
