//! When a production watch takes evidence: the policy of capture episodes, one
//! [`CaptureScheduler`] per watched isolate. It is pure (times in, steps out), so the
//! watch loop does the I/O (a sampling profile, a forced GC and a snapshot, the leak
//! finder) and the rules can be tested without a clock.
//!
//! The rules, after the guides' advice ("confirm the leak before spending time on
//! snapshots", "take snapshots under load, a few minutes apart"):
//! - an **episode** starts when the floor has been rising without a break for
//!   [`CapturePolicy::capture_after`] (rising: the lower 95 % bound of its slope above
//!   zero, beyond the noise, as the watch's verdict decides it);
//! - it takes [`CapturePolicy::captures`] snapshots, the first at once and the next ones
//!   [`CapturePolicy::capture_interval`] apart (a snapshot that is skipped, for want of
//!   memory headroom or disk, counts as taken: the caller writes a sampling profile
//!   instead), then asks for the analysis ([`CaptureStep::Finish`]);
//! - after an episode, nothing new starts for [`CapturePolicy::cooldown`], and the floor
//!   must rise for `capture_after` again;
//! - **near the limit**: when `heapUsed` passes [`CapturePolicy::near_limit`] of V8's heap
//!   limit, one snapshot, once; it is armed again only after `heapUsed` fell 5 points of
//!   the limit below that share (a restarted process, a freed cache).
//!
//! A series must not be diffed across an object-id reset (another inspector client's
//! session ended): [`CaptureScheduler::restart_series`] starts the episode's series again.

use std::time::Duration;

/// Settings of evidence capture (`watch --capture-dir …`).
#[derive(Debug, Clone, PartialEq)]
pub struct CapturePolicy {
    /// How long the floor must keep rising before an episode starts (`--capture-after`,
    /// default 10 min).
    pub capture_after: Duration,
    /// Snapshots per episode (`--captures`, default 3: baseline, target, final for the
    /// leak finder).
    pub captures: u32,
    /// Time between an episode's snapshots (`--capture-interval`, default 2 min).
    pub capture_interval: Duration,
    /// Quiet time after an episode (`--capture-cooldown`, default 1 h).
    pub cooldown: Duration,
    /// Share of V8's heap limit (0–1) whose crossing by `heapUsed` takes one snapshot
    /// (`--capture-near-limit 90%`); `None`: off.
    pub near_limit: Option<f64>,
}

impl Default for CapturePolicy {
    fn default() -> Self {
        CapturePolicy {
            capture_after: Duration::from_secs(600),
            captures: 3,
            capture_interval: Duration::from_secs(120),
            cooldown: Duration::from_secs(3600),
            near_limit: None,
        }
    }
}

/// The re-arming margin of the near-limit capture, as a share of the heap limit.
const NEAR_LIMIT_REARM: f64 = 0.05;

/// What the watch should do now for one isolate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CaptureStep {
    /// Nothing.
    Idle,
    /// An episode starts: start a sampling heap profile (it sees only allocations made
    /// from now on), then take snapshot 0.
    StartEpisode,
    /// Take the episode's snapshot `index` (forced full GC first), or, when it does not
    /// fit, skip it and keep the sampling profile.
    Snapshot {
        /// 0-based index in the episode's series.
        index: u32,
    },
    /// The episode's snapshots are done: stop the profile, run the leak finder on the
    /// series and write its report beside them.
    Finish,
    /// `heapUsed` passed the near-limit share: take one snapshot now.
    NearLimit {
        /// `heapUsed` at the crossing, bytes.
        heap_used_bytes: u64,
        /// V8's heap limit, bytes.
        limit_bytes: u64,
    },
}

/// Where an episode is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Episode {
    /// Snapshots taken (or skipped) so far.
    taken: u32,
    /// When the next one is due, ms.
    next_at_ms: f64,
}

/// The capture policy's state for one isolate. Call [`CaptureScheduler::step`] after each
/// memory sample and [`CaptureScheduler::taken`] after each snapshot it asked for.
#[derive(Debug, Clone)]
pub struct CaptureScheduler {
    policy: CapturePolicy,
    rising_since_ms: Option<f64>,
    episode: Option<Episode>,
    /// A snapshot was asked for and not yet reported taken.
    waiting: bool,
    cooldown_until_ms: f64,
    near_limit_armed: bool,
    episodes: u32,
}

impl CaptureScheduler {
    /// A scheduler with no episode yet.
    pub fn new(policy: CapturePolicy) -> Self {
        CaptureScheduler {
            policy,
            rising_since_ms: None,
            episode: None,
            waiting: false,
            cooldown_until_ms: f64::NEG_INFINITY,
            near_limit_armed: true,
            episodes: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &CapturePolicy {
        &self.policy
    }

    /// Whether an episode is under way.
    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// Episodes started so far.
    pub fn episodes(&self) -> u32 {
        self.episodes
    }

    /// The next step at `now_ms` (ms on the watch's clock), given whether the floor rises
    /// now, `heapUsed` and V8's heap limit (bytes; `None` when unknown).
    pub fn step(
        &mut self,
        now_ms: f64,
        rising: bool,
        heap_used_bytes: u64,
        heap_limit_bytes: Option<u64>,
    ) -> CaptureStep {
        if self.waiting {
            return CaptureStep::Idle;
        }
        // Near the limit comes first: it is the last chance before an OOM.
        if let (Some(share), Some(limit)) = (self.policy.near_limit, heap_limit_bytes.filter(|l| *l > 0)) {
            let used = heap_used_bytes as f64 / limit as f64;
            if self.near_limit_armed && used >= share {
                self.near_limit_armed = false;
                self.waiting = true;
                return CaptureStep::NearLimit {
                    heap_used_bytes,
                    limit_bytes: limit,
                };
            }
            if !self.near_limit_armed && used < share - NEAR_LIMIT_REARM {
                self.near_limit_armed = true;
            }
        }
        if let Some(ep) = self.episode {
            if ep.taken >= self.policy.captures {
                self.episode = None;
                self.rising_since_ms = None;
                self.cooldown_until_ms = now_ms + self.policy.cooldown.as_secs_f64() * 1000.0;
                return CaptureStep::Finish;
            }
            if now_ms >= ep.next_at_ms {
                self.waiting = true;
                return CaptureStep::Snapshot { index: ep.taken };
            }
            return CaptureStep::Idle;
        }
        if !rising {
            self.rising_since_ms = None;
            return CaptureStep::Idle;
        }
        let since = *self.rising_since_ms.get_or_insert(now_ms);
        let after_ms = self.policy.capture_after.as_secs_f64() * 1000.0;
        if now_ms - since >= after_ms && now_ms >= self.cooldown_until_ms && self.policy.captures > 0 {
            self.episode = Some(Episode {
                taken: 0,
                next_at_ms: now_ms,
            });
            self.episodes += 1;
            self.waiting = true;
            return CaptureStep::StartEpisode;
        }
        CaptureStep::Idle
    }

    /// Reports that the snapshot asked for (by [`CaptureStep::StartEpisode`],
    /// [`CaptureStep::Snapshot`] or [`CaptureStep::NearLimit`]) was taken or skipped at
    /// `now_ms`; the next one of the episode is due `capture_interval` later.
    pub fn taken(&mut self, now_ms: f64) {
        self.waiting = false;
        if let Some(ep) = &mut self.episode {
            ep.taken += 1;
            ep.next_at_ms = now_ms + self.policy.capture_interval.as_secs_f64() * 1000.0;
        }
    }

    /// The episode's series can no longer be compared (V8 reset its object ids): start it
    /// again from its first snapshot, due now.
    pub fn restart_series(&mut self, now_ms: f64) {
        self.waiting = false;
        if let Some(ep) = &mut self.episode {
            ep.taken = 0;
            ep.next_at_ms = now_ms;
        }
    }
}

/// Snapshot 0 of an episode is the one [`CaptureStep::StartEpisode`] asks for.
impl CaptureStep {
    /// Whether this step asks for a snapshot (report it with [`CaptureScheduler::taken`]).
    pub fn wants_snapshot(&self) -> bool {
        matches!(
            self,
            CaptureStep::StartEpisode | CaptureStep::Snapshot { .. } | CaptureStep::NearLimit { .. }
        )
    }
}

/// What `--restart-above` compares with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMetric {
    /// The process's resident set (`rss`), as PM2's `max_memory_restart` does.
    Rss,
    /// V8's `heapUsed`.
    HeapUsed,
}

/// `--restart-above`: restart a supervised app whose memory passes `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartThreshold {
    /// What is compared.
    pub metric: RestartMetric,
    /// The limit, bytes.
    pub bytes: u64,
}

impl std::str::FromStr for RestartThreshold {
    type Err = String;

    /// `450M`, `1.5G`, `rss:1G` (the resident set) or `heap:800M` (`heapUsed`); sizes as
    /// PM2 writes them, in powers of 1024 (`K`, `M`, `G`, `T`, optionally `B`/`iB`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (metric, size) = match text.split_once(':') {
            Some(("heap", size)) => (RestartMetric::HeapUsed, size),
            Some(("rss", size)) => (RestartMetric::Rss, size),
            Some((other, _)) => return Err(format!("unknown memory {other:?} (use rss:SIZE or heap:SIZE)")),
            None => (RestartMetric::Rss, text),
        };
        match leakhound_inspector::headroom::parse_size(size) {
            Some(bytes) if bytes > 0 => Ok(RestartThreshold { metric, bytes }),
            _ => Err(format!("{text:?} is not a size (e.g. 450M, 1G, heap:800M)")),
        }
    }
}

impl RestartThreshold {
    /// The figure this threshold compares, of a process with these figures, bytes.
    pub fn value(&self, rss_bytes: u64, heap_used_bytes: u64) -> u64 {
        match self.metric {
            RestartMetric::Rss => rss_bytes,
            RestartMetric::HeapUsed => heap_used_bytes,
        }
    }

    /// Whether a process with these figures is above the threshold.
    pub fn crossed(&self, rss_bytes: u64, heap_used_bytes: u64) -> bool {
        self.value(rss_bytes, heap_used_bytes) > self.bytes
    }
}

/// The back-off of restarts in a crash loop: a process restarted after running less than
/// [`RestartBackoff::STABLE`] waits before its next restart, 1 s, then twice as long each
/// time (at most [`RestartBackoff::MAX`]); one that ran longer is restarted at once and
/// resets the back-off. PM2 does the same with `exp_backoff_restart_delay`.
#[derive(Debug, Clone, Default)]
pub struct RestartBackoff {
    delay: Duration,
    restarts: u32,
}

impl RestartBackoff {
    /// A process that ran this long was not in a crash loop.
    pub const STABLE: Duration = Duration::from_secs(60);
    /// The first wait in a crash loop.
    pub const FIRST: Duration = Duration::from_secs(1);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(300);

    /// How long to wait before restarting a process that ran for `ran`; counts the
    /// restart.
    pub fn next_delay(&mut self, ran: Duration) -> Duration {
        self.restarts += 1;
        self.delay = if ran >= Self::STABLE {
            Duration::ZERO
        } else if self.delay.is_zero() {
            Self::FIRST
        } else {
            (self.delay * 2).min(Self::MAX)
        };
        self.delay
    }

    /// Restarts so far (`leakhound_restarts_total`).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}

/// The evidence-capture flags of `watch` as given (`--capture-dir` …), before they are
/// checked; defaults are the command line's.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// `--capture-dir`: where episodes go (None: capture is off).
    pub dir: Option<std::path::PathBuf>,
    /// `--capture-after`.
    pub after: Option<Duration>,
    /// `--captures`.
    pub captures: Option<u32>,
    /// `--capture-interval`.
    pub interval: Option<Duration>,
    /// `--capture-cooldown`.
    pub cooldown: Option<Duration>,
    /// `--capture-max-bytes`, as written (`10G`).
    pub max_bytes: Option<String>,
    /// `--capture-near-limit`, as written (`90%`).
    pub near_limit: Option<String>,
    /// `--restart-above`, as written (`450M`, `heap:1G`).
    pub restart_above: Option<String>,
    /// `--kill-timeout`.
    pub kill_timeout: Option<Duration>,
    /// Whether the watched app is attached to (restarting needs an app leakhound started).
    pub attached: bool,
}

/// Evidence capture, checked (see [`CaptureConfig::from_options`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Where episodes go (created 0700 when missing); None: no snapshots are captured
    /// (restarts may still be asked for).
    pub dir: Option<std::path::PathBuf>,
    /// When and how often.
    pub policy: CapturePolicy,
    /// The most disk the episodes may take, bytes; the oldest are removed first.
    pub max_bytes: u64,
    /// `--restart-above`, for an app leakhound started.
    pub restart: Option<RestartThreshold>,
    /// How long a restarted app gets between SIGTERM and SIGKILL.
    pub kill_timeout: Duration,
}

/// Default cap on the disk the episodes take: 10 GiB.
pub const DEFAULT_CAPTURE_MAX_BYTES: u64 = 10 << 30;
/// Default time between SIGTERM and SIGKILL when restarting: 5 s.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A capture setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureConfigError {
    /// A size that does not read as one.
    #[error("{flag} takes a size such as 450M or 10G, not {value:?}")]
    BadSize {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// `--capture-near-limit` outside (0, 100] %.
    #[error("--capture-near-limit takes a share of V8's heap limit such as 90%, not {0:?}")]
    BadShare(String),
    /// `--restart-above` that does not parse.
    #[error("--restart-above: {0}")]
    BadRestart(String),
    /// Restarting a process leakhound did not start.
    #[error(
        "--restart-above restarts an app leakhound started (`watch -- node app.js`); an attached process is never stopped"
    )]
    RestartNeedsSupervisedApp,
    /// `--captures 0`.
    #[error("--captures must be at least 1 (3 let the leak finder compare them)")]
    NoCaptures,
    /// Capture flags without `--capture-dir`.
    #[error("{0} needs --capture-dir DIR (where the evidence goes)")]
    NeedsDir(&'static str),
}

/// `90%`, `90` or `0.9` as a share in (0, 1].
fn parse_share(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, percent) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    let v: f64 = number.parse().ok()?;
    let share = if percent || v > 1.0 { v / 100.0 } else { v };
    (share > 0.0 && share <= 1.0).then_some(share)
}

impl CaptureConfig {
    /// Checks `o`: `None` when neither capture nor restart is asked for.
    ///
    /// # Errors
    /// A [`CaptureConfigError`] naming the flag.
    pub fn from_options(o: &CaptureOptions) -> Result<Option<CaptureConfig>, CaptureConfigError> {
        let defaults = CapturePolicy::default();
        if o.dir.is_none() {
            for (given, flag) in [
                (o.after.is_some(), "--capture-after"),
                (o.captures.is_some(), "--captures"),
                (o.interval.is_some(), "--capture-interval"),
                (o.cooldown.is_some(), "--capture-cooldown"),
                (o.max_bytes.is_some(), "--capture-max-bytes"),
                (o.near_limit.is_some(), "--capture-near-limit"),
            ] {
                if given {
                    return Err(CaptureConfigError::NeedsDir(flag));
                }
            }
        }
        let restart = match &o.restart_above {
            None => None,
            Some(_) if o.attached => return Err(CaptureConfigError::RestartNeedsSupervisedApp),
            Some(text) => Some(
                text.parse::<RestartThreshold>()
                    .map_err(CaptureConfigError::BadRestart)?,
            ),
        };
        if o.dir.is_none() && restart.is_none() {
            return Ok(None);
        }
        let captures = o.captures.unwrap_or(defaults.captures);
        if captures == 0 {
            return Err(CaptureConfigError::NoCaptures);
        }
        let near_limit = match &o.near_limit {
            None => None,
            Some(text) => Some(parse_share(text).ok_or_else(|| CaptureConfigError::BadShare(text.clone()))?),
        };
        let max_bytes = match &o.max_bytes {
            None => DEFAULT_CAPTURE_MAX_BYTES,
            Some(text) => leakhound_inspector::headroom::parse_size(text)
                .filter(|b| *b > 0)
                .ok_or_else(|| CaptureConfigError::BadSize {
                    flag: "--capture-max-bytes",
                    value: text.clone(),
                })?,
        };
        Ok(Some(CaptureConfig {
            dir: o.dir.clone(),
            policy: CapturePolicy {
                capture_after: o.after.unwrap_or(defaults.capture_after),
                captures,
                capture_interval: o.interval.unwrap_or(defaults.capture_interval),
                cooldown: o.cooldown.unwrap_or(defaults.cooldown),
                near_limit,
            },
            max_bytes,
            restart,
            kill_timeout: o.kill_timeout.unwrap_or(DEFAULT_KILL_TIMEOUT),
        }))
    }
}

/// What started an episode.
#[derive(Debug, Clone, PartialEq)]
pub enum EpisodeTrigger {
    /// The floor kept rising for `--capture-after`.
    RisingFloor {
        /// Which memory rises.
        growing: Vec<leakhound_leaks::MemoryKind>,
        /// How long it had been rising when the episode started, ms.
        rising_ms: f64,
    },
    /// `heapUsed` passed the near-limit share of V8's heap limit.
    NearLimit {
        /// `heapUsed` then, bytes.
        heap_used_bytes: u64,
        /// V8's heap limit, bytes.
        limit_bytes: u64,
    },
    /// `--restart-above` was crossed: evidence before the restart.
    Restart {
        /// The threshold crossed.
        threshold: RestartThreshold,
        /// The value that crossed it, bytes.
        value_bytes: u64,
    },
}

impl std::fmt::Display for EpisodeTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        match self {
            EpisodeTrigger::RisingFloor { growing, rising_ms } => {
                let what: Vec<&str> = growing.iter().map(|k| k.as_str()).collect();
                let what = if what.is_empty() {
                    "memory".to_owned()
                } else {
                    what.join(" and ")
                };
                if *rising_ms < 120_000.0 {
                    write!(
                        f,
                        "the post-GC floor of {what} had been rising for {:.0} s",
                        rising_ms / 1000.0
                    )
                } else {
                    write!(
                        f,
                        "the post-GC floor of {what} had been rising for {:.0} min",
                        rising_ms / 60_000.0
                    )
                }
            }
            EpisodeTrigger::NearLimit {
                heap_used_bytes,
                limit_bytes,
            } => write!(
                f,
                "heapUsed reached {:.1} MB, {:.0} % of V8's heap limit of {:.1} MB",
                mb(*heap_used_bytes),
                *heap_used_bytes as f64 * 100.0 / (*limit_bytes).max(1) as f64,
                mb(*limit_bytes)
            ),
            EpisodeTrigger::Restart { threshold, value_bytes } => write!(
                f,
                "{} reached {:.1} MB, above --restart-above {:.1} MB: evidence before the restart",
                match threshold.metric {
                    RestartMetric::Rss => "rss",
                    RestartMetric::HeapUsed => "heapUsed",
                },
                mb(*value_bytes),
                mb(threshold.bytes)
            ),
        }
    }
}

/// One snapshot of an episode: taken, or skipped with its reason.
#[derive(Debug, Clone)]
pub enum EpisodeSnapshot {
    /// Written, complete.
    Taken {
        /// The file.
        file: leakhound_inspector::SnapshotFile,
        /// When, ms since the Unix epoch.
        taken_unix_ms: u64,
    },
    /// Not written; the sampling profile stands in for it.
    Skipped {
        /// Why.
        reason: crate::capture::SkipReason,
        /// When, ms since the Unix epoch.
        at_unix_ms: u64,
    },
}

/// What one capture episode gathered and concluded: the report written beside its files.
#[derive(Debug, Clone)]
pub struct EpisodeOutcome {
    /// The episode's folder.
    pub dir: std::path::PathBuf,
    /// The process.
    pub pid: u32,
    /// The worker thread's `threadId`, None for a main thread.
    pub thread_id: Option<u64>,
    /// `--app-name`, when given.
    pub app_name: Option<String>,
    /// What started it.
    pub trigger: EpisodeTrigger,
    /// When it started and finished, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// See `started_unix_ms`.
    pub finished_unix_ms: u64,
    /// Its snapshots in order.
    pub snapshots: Vec<EpisodeSnapshot>,
    /// The sampling heap profile written, when one was (`.heapprofile`).
    pub profile: Option<std::path::PathBuf>,
    /// The floor analysis when the episode finished.
    pub floor: leakhound_leaks::FloorAnalysis,
    /// The leak finder on the taken snapshots (three or more), or why it did not run.
    pub leaks: Result<leakhound_leaks::LeakReport, String>,
    /// Warnings gathered on the way.
    pub warnings: Vec<String>,
}

impl EpisodeOutcome {
    /// The files of the snapshots taken, in order.
    pub fn taken_paths(&self) -> Vec<std::path::PathBuf> {
        self.snapshots
            .iter()
            .filter_map(|s| match s {
                EpisodeSnapshot::Taken { file, .. } => Some(file.path.clone()),
                EpisodeSnapshot::Skipped { .. } => None,
            })
            .collect()
    }

    /// The episode's verdict and why: `Leak` when the leak finder named a holder,
    /// otherwise the watch's verdict on the floor when the episode finished. The report,
    /// the metrics and `/health` all say this one.
    pub fn verdict(&self) -> (crate::Verdict, String) {
        if let Some(holder) = self.top_holder() {
            return (
                crate::Verdict::Leak,
                format!("the leak finder names {holder} as what keeps growing"),
            );
        }
        let watched = std::time::Duration::from_millis(self.finished_unix_ms.saturating_sub(self.started_unix_ms));
        let (verdict, reason, _) = crate::judge_watch(&self.floor, watched);
        (verdict, reason)
    }

    /// The leak finder's top holder, when it found one: what `/health` and the metrics name.
    pub fn top_holder(&self) -> Option<&str> {
        self.leaks.as_ref().ok()?.clusters.first().map(|c| c.holder.as_str())
    }
}

/// Runs the leak finder on an episode's snapshots (blocking: call it on a blocking
/// thread): `Err` with the reason when fewer than three were taken or they cannot be
/// compared (an object-id reset between them is caught by the finder's checks).
pub fn analyse_episode(paths: &[std::path::PathBuf]) -> Result<leakhound_leaks::LeakReport, String> {
    if paths.len() < 3 {
        return Err(format!(
            "{} snapshot(s) taken: the leak finder needs three (the sampling profile shows where the surviving memory was allocated)",
            paths.len()
        ));
    }
    let opts = leakhound_leaks::LeakOptions::default();
    let (loaded, prepared): (Vec<_>, Vec<_>) = leakhound_leaks::load_series(paths, &|_, _| {})
        .map_err(|e| e.to_string())?
        .into_iter()
        .unzip();
    let snaps: Vec<&leakhound_heap::HeapSnapshot> = loaded.iter().map(|l| &l.snapshot).collect();
    leakhound_leaks::find_leaks_prepared(&snaps, prepared, &opts).map_err(|e| e.to_string())
}

/// Removes the oldest episode folders under `dir` (folders whose names start with
/// `episode-`, oldest by name: they start with a UTC time) until the folders' files take at
/// most `max_bytes`, never removing `keep` (the episode being written). Returns the folders
/// removed.
///
/// # Errors
/// Reading `dir` or removing a folder failed.
pub fn prune_episodes(
    dir: &std::path::Path,
    max_bytes: u64,
    keep: Option<&std::path::Path>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut episodes: Vec<(std::path::PathBuf, u64)> = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if !e.file_type()?.is_dir() || !name.to_string_lossy().starts_with("episode-") {
            continue;
        }
        let path = e.path();
        let mut bytes = 0;
        for f in std::fs::read_dir(&path)? {
            let f = f?;
            if f.file_type()?.is_file() {
                bytes += f.metadata()?.len();
            }
        }
        episodes.push((path, bytes));
    }
    episodes.sort();
    let mut total: u64 = episodes.iter().map(|(_, b)| b).sum();
    let mut removed = Vec::new();
    for (path, bytes) in episodes {
        if total <= max_bytes {
            break;
        }
        if keep.is_some_and(|k| k == path) {
            continue;
        }
        std::fs::remove_dir_all(&path)?;
        total -= bytes;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = 60_000.0;

    fn policy() -> CapturePolicy {
        CapturePolicy {
            capture_after: Duration::from_secs(600),
            captures: 3,
            capture_interval: Duration::from_secs(120),
            cooldown: Duration::from_secs(3600),
            near_limit: Some(0.9),
        }
    }

    /// Runs the scheduler every 5 s from `from` to `to` minutes with a constant `rising`,
    /// taking each snapshot at once; the steps that were not Idle, with their minute.
    fn run(s: &mut CaptureScheduler, from: f64, to: f64, rising: bool) -> Vec<(f64, CaptureStep)> {
        let mut out = Vec::new();
        let mut t = from * MIN;
        while t <= to * MIN {
            let step = s.step(t, rising, 100, Some(1000));
            if step != CaptureStep::Idle {
                out.push((t / MIN, step));
            }
            if step.wants_snapshot() {
                s.taken(t);
            }
            t += 5_000.0;
        }
        out
    }

    #[test]
    fn an_episode_needs_the_floor_to_rise_for_capture_after() {
        let mut s = CaptureScheduler::new(policy());
        assert!(run(&mut s, 0.0, 9.9, true).is_empty(), "too early");
        // A break in the rise starts the count again.
        assert!(run(&mut s, 9.95, 10.5, false).is_empty());
        assert!(run(&mut s, 10.6, 20.5, true).is_empty(), "only 9.9 min since the break");
        let steps = run(&mut s, 20.6, 30.0, true);
        assert_eq!(steps[0], (20.6, CaptureStep::StartEpisode), "{steps:?}");
        // Snapshot 0 comes with the start; 1 and 2 two minutes apart; then the analysis.
        let kinds: Vec<CaptureStep> = steps.iter().map(|s| s.1).collect();
        assert_eq!(
            kinds,
            [
                CaptureStep::StartEpisode,
                CaptureStep::Snapshot { index: 1 },
                CaptureStep::Snapshot { index: 2 },
                CaptureStep::Finish
            ]
        );
        assert!(
            (steps[1].0 - 22.6).abs() < 0.01 && (steps[2].0 - 24.6).abs() < 0.01,
            "{steps:?}"
        );
        assert_eq!(s.episodes(), 1);
    }

    #[test]
    fn a_cooldown_follows_each_episode() {
        let mut s = CaptureScheduler::new(policy());
        let first = run(&mut s, 0.0, 40.0, true);
        assert_eq!(first.iter().filter(|s| s.1 == CaptureStep::StartEpisode).count(), 1);
        let finish = first.iter().find(|s| s.1 == CaptureStep::Finish).unwrap().0;
        // Still rising, but the next episode waits for the hour of cooldown.
        let later = run(&mut s, 40.0 + 1.0 / 12.0, finish + 59.0, true);
        assert!(later.is_empty(), "{later:?}");
        let after = run(&mut s, finish + 59.0 + 1.0 / 12.0, finish + 61.0, true);
        assert_eq!(after.first().map(|s| s.1), Some(CaptureStep::StartEpisode));
        assert_eq!(s.episodes(), 2);
    }

    #[test]
    fn nothing_new_is_asked_while_a_snapshot_is_being_taken() {
        let mut s = CaptureScheduler::new(CapturePolicy {
            capture_after: Duration::ZERO,
            ..policy()
        });
        assert_eq!(s.step(0.0, true, 1, None), CaptureStep::StartEpisode);
        // The snapshot takes five minutes: the scheduler waits for it.
        assert_eq!(s.step(60_000.0, true, 1, None), CaptureStep::Idle);
        assert_eq!(s.step(300_000.0, true, 1, None), CaptureStep::Idle);
        s.taken(300_000.0);
        assert_eq!(s.step(300_000.0 + 119_000.0, true, 1, None), CaptureStep::Idle);
        assert_eq!(
            s.step(300_000.0 + 120_000.0, true, 1, None),
            CaptureStep::Snapshot { index: 1 }
        );
    }

    #[test]
    fn an_id_reset_restarts_the_series() {
        let mut s = CaptureScheduler::new(CapturePolicy {
            capture_after: Duration::ZERO,
            ..policy()
        });
        assert_eq!(s.step(0.0, true, 1, None), CaptureStep::StartEpisode);
        s.taken(0.0);
        assert_eq!(s.step(120_000.0, true, 1, None), CaptureStep::Snapshot { index: 1 });
        s.restart_series(130_000.0);
        assert_eq!(s.step(130_000.0, true, 1, None), CaptureStep::Snapshot { index: 0 });
    }

    #[test]
    fn near_the_limit_once_until_memory_falls_back() {
        let mut s = CaptureScheduler::new(policy());
        let limit = Some(1_000);
        assert_eq!(s.step(0.0, false, 899, limit), CaptureStep::Idle);
        assert_eq!(
            s.step(1.0, false, 900, limit),
            CaptureStep::NearLimit {
                heap_used_bytes: 900,
                limit_bytes: 1_000
            }
        );
        s.taken(2.0);
        assert_eq!(s.step(3.0, false, 990, limit), CaptureStep::Idle, "once");
        assert_eq!(
            s.step(4.0, false, 860, limit),
            CaptureStep::Idle,
            "not re-armed at 86 %"
        );
        assert_eq!(s.step(5.0, false, 849, limit), CaptureStep::Idle, "re-armed below 85 %");
        assert!(matches!(s.step(6.0, false, 905, limit), CaptureStep::NearLimit { .. }));
        // Unknown limit or off: never.
        let mut off = CaptureScheduler::new(CapturePolicy {
            near_limit: None,
            ..policy()
        });
        assert_eq!(off.step(0.0, false, 999, limit), CaptureStep::Idle);
        assert_eq!(s.step(7.0, false, 999, None), CaptureStep::Idle);
    }

    #[test]
    fn restart_thresholds_read_like_pm2_sizes() {
        let t: RestartThreshold = "450M".parse().unwrap();
        assert_eq!((t.metric, t.bytes), (RestartMetric::Rss, 450 << 20));
        let t: RestartThreshold = "heap:1.5G".parse().unwrap();
        assert_eq!((t.metric, t.bytes), (RestartMetric::HeapUsed, 3 << 29));
        assert!(t.crossed(0, (3 << 29) + 1) && !t.crossed(u64::MAX, 3 << 29));
        assert_eq!("rss:1G".parse::<RestartThreshold>().unwrap().bytes, 1 << 30);
        for bad in ["", "0", "heap:", "disk:1G", "12X", "-5M"] {
            assert!(bad.parse::<RestartThreshold>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_crash_loop_backs_off_and_a_stable_run_resets_it() {
        let mut b = RestartBackoff::default();
        let quick = Duration::from_secs(5);
        let waits: Vec<u64> = (0..12).map(|_| b.next_delay(quick).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.next_delay(Duration::from_secs(3600)), Duration::ZERO);
        assert_eq!(b.next_delay(quick), RestartBackoff::FIRST);
        assert_eq!(b.restarts(), 14);
    }

    #[test]
    fn an_episode_series_goes_through_the_leak_finder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/scenarios");
        let paths: Vec<std::path::PathBuf> = (1..=3)
            .map(|i| dir.join(format!("map-cache-s{i}.heapsnapshot.gz")))
            .collect();
        let report = analyse_episode(&paths).expect("the finder runs");
        assert_eq!(report.clusters.first().map(|c| c.holder.as_str()), Some("quoteCache"));
        let short = analyse_episode(&paths[..2]).expect_err("two are not a series");
        assert!(short.contains("needs three"), "{short}");
    }

    #[test]
    fn triggers_read_as_sentences() {
        let t = EpisodeTrigger::NearLimit {
            heap_used_bytes: 1_900_000_000,
            limit_bytes: 2_000_000_000,
        };
        assert_eq!(
            t.to_string(),
            "heapUsed reached 1900.0 MB, 95 % of V8's heap limit of 2000.0 MB"
        );
        let r = EpisodeTrigger::RisingFloor {
            growing: vec![leakhound_leaks::MemoryKind::JsHeap],
            rising_ms: 600_000.0,
        };
        assert_eq!(r.to_string(), "the post-GC floor of js_heap had been rising for 10 min");
        let short = EpisodeTrigger::RisingFloor {
            growing: vec![],
            rising_ms: 2_000.0,
        };
        assert_eq!(short.to_string(), "the post-GC floor of memory had been rising for 2 s");
    }

    #[test]
    fn capture_flags_are_checked_with_the_flag_named() {
        let dir = Some(std::path::PathBuf::from("/var/lib/leakhound"));
        assert_eq!(CaptureConfig::from_options(&CaptureOptions::default()), Ok(None));
        let c = CaptureConfig::from_options(&CaptureOptions {
            dir: dir.clone(),
            near_limit: Some("90%".into()),
            max_bytes: Some("2G".into()),
            ..CaptureOptions::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(c.policy.near_limit, Some(0.9));
        assert_eq!(c.max_bytes, 2 << 30);
        assert_eq!(c.policy.captures, 3);
        assert_eq!(c.policy.capture_after, Duration::from_secs(600));
        for (share, want) in [
            ("85", Some(0.85)),
            ("0.5", Some(0.5)),
            ("100%", Some(1.0)),
            ("0%", None),
            ("120%", None),
            ("x", None),
        ] {
            assert_eq!(parse_share(share), want, "{share}");
        }
        let err = |o: CaptureOptions| CaptureConfig::from_options(&o).unwrap_err().to_string();
        assert!(
            err(CaptureOptions {
                captures: Some(2),
                ..CaptureOptions::default()
            })
            .contains("--captures needs --capture-dir")
        );
        assert!(
            err(CaptureOptions {
                restart_above: Some("1G".into()),
                attached: true,
                ..CaptureOptions::default()
            })
            .contains("never stopped")
        );
        assert!(
            err(CaptureOptions {
                dir: dir.clone(),
                max_bytes: Some("lots".into()),
                ..CaptureOptions::default()
            })
            .contains("--capture-max-bytes takes a size")
        );
        assert!(
            err(CaptureOptions {
                dir,
                captures: Some(0),
                ..CaptureOptions::default()
            })
            .contains("at least 1")
        );
        // A restart alone needs no folder.
        let r = CaptureConfig::from_options(&CaptureOptions {
            restart_above: Some("heap:800M".into()),
            ..CaptureOptions::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(r.restart.map(|t| t.metric), Some(RestartMetric::HeapUsed));
        assert!(r.dir.is_none());
    }

    #[test]
    fn the_oldest_episodes_go_first_when_the_disk_cap_is_passed() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("episode-20261204T100000Z-pid1", 400),
            ("episode-20261204T110000Z-pid1", 400),
            ("episode-20261204T120000Z-pid1", 400),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("01.heapsnapshot"), vec![0u8; bytes]).unwrap();
        }
        std::fs::create_dir(dir.path().join("not-an-episode")).unwrap();
        std::fs::write(dir.path().join("not-an-episode/big"), vec![0u8; 5000]).unwrap();
        let keep = dir.path().join("episode-20261204T100000Z-pid1");
        let removed = prune_episodes(dir.path(), 500, Some(&keep)).unwrap();
        // The oldest is being written: the next two go, oldest first.
        let names: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["episode-20261204T110000Z-pid1", "episode-20261204T120000Z-pid1"]
        );
        assert!(keep.is_dir() && dir.path().join("not-an-episode/big").is_file());
        assert!(
            prune_episodes(dir.path(), 500, None).unwrap().is_empty(),
            "under the cap"
        );
    }
}
