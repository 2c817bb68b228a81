//! The report of a production watch's capture episode (`watch --capture-dir`): why it
//! started, the snapshots taken or skipped (and why), the sampling profile, the floor, and
//! what the leak finder named. Written beside the episode's files as `report.json`,
//! `report.txt` and `report.html`, so the evidence comes with its answer.

use std::io::{self, Write};

use leakhound_hunt::evidence::{EpisodeOutcome, EpisodeSnapshot};
use maud::{DOCTYPE, html};
use serde::Serialize;

use crate::format;
use crate::hunt::{FloorFitJson, VerdictJson};
use crate::leaks::{ClusterJson, NotGrowingJson};

/// An episode report on the wire (`schema_version` 1, `kind: "episode"`).
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeJson {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// Always `"episode"`.
    pub kind: &'static str,
    /// `--app-name`, when given.
    pub app: Option<String>,
    /// The process.
    pub pid: u32,
    /// The worker thread's `threadId`; absent for a main thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
    /// What started the episode: `rising_floor`, `near_limit` or `restart`.
    pub trigger: &'static str,
    /// The same in a sentence.
    pub trigger_text: String,
    /// When it started and finished, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// See `started_unix_ms`.
    pub finished_unix_ms: u64,
    /// The watch's verdict on the floor when the episode finished.
    pub verdict: VerdictJson,
    /// Why, in one sentence.
    pub reason: String,
    /// The snapshots in order, taken or skipped.
    pub snapshots: Vec<EpisodeSnapshotJson>,
    /// The sampling heap profile (`.heapprofile`, opens in DevTools' Memory tab), when one
    /// was written.
    pub profile: Option<String>,
    /// The floor fits when the episode finished.
    pub floor: Vec<FloorFitJson>,
    /// The leak finder's top holder, when it named one.
    pub top_holder: Option<String>,
    /// The leak finder's clusters, most important first.
    pub clusters: Vec<ClusterJson>,
    /// Surviving new objects that did not grow.
    pub not_growing: Vec<NotGrowingJson>,
    /// Why the leak finder did not run (fewer than three snapshots taken, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaks_not_run: Option<String>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// One snapshot of an episode on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeSnapshotJson {
    /// `taken` or `skipped`.
    pub status: &'static str,
    /// The file, when taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Its size, bytes, when taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// When skipped: `headroom`, `disk` or `busy` (the metric's `reason` label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<&'static str>,
    /// When skipped: the reason in a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_text: Option<String>,
}

impl EpisodeJson {
    /// The wire form of `o`.
    pub fn from_outcome(o: &EpisodeOutcome) -> EpisodeJson {
        use leakhound_hunt::evidence::EpisodeTrigger;
        let (verdict, reason) = o.verdict();
        let snapshots = o
            .snapshots
            .iter()
            .map(|s| match s {
                EpisodeSnapshot::Taken { file, taken_unix_ms } => EpisodeSnapshotJson {
                    status: "taken",
                    path: Some(file.path.display().to_string()),
                    bytes: Some(file.bytes),
                    at_unix_ms: *taken_unix_ms,
                    skip_reason: None,
                    skip_text: None,
                },
                EpisodeSnapshot::Skipped { reason, at_unix_ms } => EpisodeSnapshotJson {
                    status: "skipped",
                    path: None,
                    bytes: None,
                    at_unix_ms: *at_unix_ms,
                    skip_reason: Some(reason.label()),
                    skip_text: Some(reason.to_string()),
                },
            })
            .collect();
        let files: Vec<String> = o.taken_paths().iter().map(|p| p.display().to_string()).collect();
        let (clusters, not_growing, leaks_not_run) = match &o.leaks {
            Ok(report) => {
                let j = crate::leaks::leaks_json(&files, report, None);
                (j.clusters, j.not_growing, None)
            }
            Err(why) => (Vec::new(), Vec::new(), Some(why.clone())),
        };
        EpisodeJson {
            schema_version: 1,
            kind: "episode",
            app: o.app_name.clone(),
            pid: o.pid,
            thread_id: o.thread_id,
            trigger: match o.trigger {
                EpisodeTrigger::RisingFloor { .. } => "rising_floor",
                EpisodeTrigger::NearLimit { .. } => "near_limit",
                EpisodeTrigger::Restart { .. } => "restart",
            },
            trigger_text: o.trigger.to_string(),
            started_unix_ms: o.started_unix_ms,
            finished_unix_ms: o.finished_unix_ms,
            verdict: verdict.into(),
            reason,
            snapshots,
            profile: o.profile.as_ref().map(|p| p.display().to_string()),
            floor: [&o.floor.heap_used, &o.floor.external, &o.floor.rss]
                .into_iter()
                .map(FloorFitJson::from_fit)
                .collect(),
            top_holder: o.top_holder().map(str::to_owned),
            clusters,
            not_growing,
            leaks_not_run,
            warnings: o.warnings.clone(),
        }
    }

    /// The labels of the taken snapshots, for the growth tables: `1`, `2`, `3`, ….
    fn labels(&self) -> Vec<String> {
        (1..=self.snapshots.iter().filter(|s| s.status == "taken").count())
            .map(|i| format!("#{i}"))
            .collect()
    }
}

/// Writes the episode report for a person: why it started, the answer, each snapshot and
/// the top clusters.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_episode_text(r: &EpisodeJson, w: &mut dyn Write) -> io::Result<()> {
    let who = match (r.app.as_deref(), r.thread_id) {
        (Some(app), Some(t)) => format!("{app} (pid {}, worker thread {t})", r.pid),
        (Some(app), None) => format!("{app} (pid {})", r.pid),
        (None, Some(t)) => format!("pid {}, worker thread {t}", r.pid),
        (None, None) => format!("pid {}", r.pid),
    };
    writeln!(w, "evidence captured for {who}: {}", r.trigger_text)?;
    let headline = match r.verdict {
        VerdictJson::Leak => "LEAK",
        VerdictJson::NoLeak => "NO LEAK",
        VerdictJson::Inconclusive => "INCONCLUSIVE",
    };
    writeln!(w, "{headline}: {}", r.reason)?;
    for s in &r.snapshots {
        match (s.status, &s.path) {
            ("taken", Some(path)) => writeln!(w, "   snapshot {path} ({})", format::bytes(s.bytes.unwrap_or(0)))?,
            _ => writeln!(
                w,
                "   snapshot skipped: {}",
                s.skip_text.as_deref().unwrap_or("no reason recorded")
            )?,
        }
    }
    if let Some(p) = &r.profile {
        writeln!(w, "   sampling heap profile: {p} (open it in DevTools' Memory tab)")?;
    }
    if let Some(why) = &r.leaks_not_run {
        writeln!(w, "   leak finder not run: {why}")?;
    }
    for (i, c) in r.clusters.iter().enumerate().take(3) {
        writeln!(
            w,
            "#{} {} — {} ({}) holds {} {}; {} retained",
            i + 1,
            c.pattern,
            c.holder,
            c.holder_class,
            format::count(c.count),
            c.unit_text(c.count as f64),
            format::bytes(c.retained_size_bytes)
        )?;
        if let Some(source) = &c.source {
            writeln!(w, "   source (guessed from the snapshot): {source}{}", c.source_note())?;
        }
        writeln!(w, "   fix: {}", c.fix_hint)?;
    }
    for warning in &r.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(())
}

/// Writes the episode report as one self-contained HTML page (the hunt report's style and
/// cluster cards).
///
/// # Errors
/// Any error writing to `w`.
pub fn write_episode_html(r: &EpisodeJson, w: &mut dyn Write) -> io::Result<()> {
    let labels = r.labels();
    let (class, word) = match r.verdict {
        VerdictJson::Leak => ("leak", "Leak"),
        VerdictJson::NoLeak => ("ok", "No leak"),
        VerdictJson::Inconclusive => ("unknown", "Inconclusive"),
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "leakhound evidence — pid " (r.pid) " — " (word) }
                style { (maud::PreEscaped(crate::html::CSS)) }
            }
            body {
                main {
                    header.verdict.(class) {
                        div.badge { (word) }
                        div.headline {
                            p.kicker { "leakhound watch · evidence captured · " (r.trigger) }
                            p.reason { (r.trigger_text) }
                            p { (r.reason) }
                            dl.meta {
                                @if let Some(app) = &r.app { div { dt { "App" } dd { (app) } } }
                                div { dt { "PID" } dd { (r.pid) } }
                                @if let Some(t) = r.thread_id { div { dt { "Worker thread" } dd { (t) } } }
                                @if let Some(h) = &r.top_holder { div { dt { "Top holder" } dd { code { (h) } } } }
                            }
                        }
                    }
                    section #snapshots {
                        h2 { "Evidence" }
                        table {
                            thead { tr { th { "#" } th { "Status" } th.l { "File or reason" } th { "Size" } } }
                            tbody {
                                @for (i, s) in r.snapshots.iter().enumerate() {
                                    tr {
                                        td { (i + 1) }
                                        td { (s.status) }
                                        td.l {
                                            @match (&s.path, &s.skip_text) {
                                                (Some(p), _) => code { (p) },
                                                (None, Some(t)) => (t),
                                                (None, None) => "",
                                            }
                                        }
                                        td { (s.bytes.map(format::bytes).unwrap_or_default()) }
                                    }
                                }
                            }
                        }
                        @if let Some(p) = &r.profile {
                            p { "Sampling heap profile: " code { (p) } " — open it in DevTools' Memory tab \
                                 to see where the memory that survived was allocated." }
                        }
                        @if let Some(why) = &r.leaks_not_run {
                            p.note { "Leak finder not run: " (why) }
                        }
                    }
                    section id="clusters" class="plain" {
                        h2 { "Leaking clusters " span.count { (r.clusters.len()) } }
                        @for (i, c) in r.clusters.iter().enumerate() {
                            (crate::html::cluster(i, c, &labels))
                        }
                    }
                    @if !r.warnings.is_empty() {
                        section.warnings {
                            h2 { "Warnings" }
                            ul { @for w in &r.warnings { li { (w) } } }
                        }
                    }
                    footer { "leakhound · evidence report · schema v" (r.schema_version) }
                }
            }
        }
    };
    w.write_all(page.into_string().as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()
}
