//! The evidence report of a capture episode: JSON fields, text and HTML from a real series
//! (the map-cache scenario's recorded snapshots) and a floor that rises; and the report of
//! an episode whose snapshots were skipped, which says why and points to the profile.

use std::path::{Path, PathBuf};

use leakhound_hunt::capture::SkipReason;
use leakhound_hunt::evidence::{EpisodeOutcome, EpisodeSnapshot, EpisodeTrigger, analyse_episode};
use leakhound_leaks::{MemorySample, analyze_floor};
use leakhound_report::episode::{EpisodeJson, write_episode_html, write_episode_text};

fn series() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/scenarios");
    (1..=3)
        .map(|i| dir.join(format!("map-cache-s{i}.heapsnapshot.gz")))
        .collect()
}

/// A heap floor rising 1 MB a minute for half an hour, a point a minute.
fn rising_floor() -> leakhound_leaks::FloorAnalysis {
    let samples: Vec<MemorySample> = (0..30)
        .map(|i| MemorySample {
            t_ms: i as f64 * 60_000.0,
            requests: 0,
            rss_bytes: 100_000_000,
            heap_total_bytes: 80_000_000,
            heap_used_bytes: 20_000_000 + i * 1_000_000 + (i % 3) * 10_000,
            external_bytes: 1_000_000,
            array_buffers_bytes: 0,
            after_full_gc: true,
            forced_gc: false,
        })
        .collect();
    analyze_floor(&samples, 0.0)
}

fn outcome(snapshots: Vec<EpisodeSnapshot>) -> EpisodeOutcome {
    let paths: Vec<PathBuf> = snapshots
        .iter()
        .filter_map(|s| match s {
            EpisodeSnapshot::Taken { file, .. } => Some(file.path.clone()),
            EpisodeSnapshot::Skipped { .. } => None,
        })
        .collect();
    EpisodeOutcome {
        dir: PathBuf::from("/var/lib/leakhound/episode-20261204T100000Z-pid4711"),
        pid: 4711,
        thread_id: None,
        app_name: Some("shop".into()),
        trigger: EpisodeTrigger::RisingFloor {
            growing: vec![leakhound_leaks::MemoryKind::JsHeap],
            rising_ms: 600_000.0,
        },
        started_unix_ms: 1_780_000_000_000,
        finished_unix_ms: 1_780_000_300_000,
        snapshots,
        profile: Some(PathBuf::from(
            "/var/lib/leakhound/episode-20261204T100000Z-pid4711/profile.heapprofile",
        )),
        floor: rising_floor(),
        leaks: analyse_episode(&paths),
        warnings: vec![],
    }
}

fn taken(path: &Path, t: u64) -> EpisodeSnapshot {
    EpisodeSnapshot::Taken {
        file: leakhound_inspector::SnapshotFile {
            path: path.to_owned(),
            bytes: std::fs::metadata(path).unwrap().len(),
            duration_ms: 100,
        },
        taken_unix_ms: t,
    }
}

#[test]
fn an_episode_with_its_series_names_the_holder_everywhere() {
    let snaps = series()
        .iter()
        .enumerate()
        .map(|(i, p)| taken(p, 1_780_000_000_000 + i as u64 * 120_000))
        .collect();
    let o = outcome(snaps);
    let r = EpisodeJson::from_outcome(&o);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "episode");
    assert_eq!(json["trigger"], "rising_floor");
    assert_eq!(json["verdict"], "leak", "{}", json["reason"]);
    assert_eq!(json["top_holder"], "quoteCache");
    assert_eq!(json["clusters"][0]["holder"], "quoteCache");
    assert_eq!(json["snapshots"].as_array().unwrap().len(), 3);
    assert!(json.get("leaks_not_run").is_none());

    let mut text = Vec::new();
    write_episode_text(&r, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with("evidence captured for shop (pid 4711): the post-GC floor of js_heap"),
        "{text}"
    );
    assert!(text.contains("\nLEAK: "), "{text}");
    assert!(text.contains("#1 unbounded_collection — quoteCache (Map)"), "{text}");

    let mut html = Vec::new();
    write_episode_html(&r, &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("quoteCache") && html.contains("id=\"cluster-1\""));
    assert!(html.contains("Growth across the snapshots"));
    for tag in ["section", "div", "table", "tr", "article"] {
        let open = html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        assert_eq!(open, html.matches(&format!("</{tag}>")).count(), "<{tag}> balanced");
    }
}

#[test]
fn skipped_snapshots_say_why_and_point_to_the_profile() {
    let first = &series()[0];
    let o = outcome(vec![
        taken(first, 1_780_000_000_000),
        EpisodeSnapshot::Skipped {
            reason: SkipReason::Disk {
                free_bytes: 10 << 20,
                file_bytes: 300 << 20,
            },
            at_unix_ms: 1_780_000_120_000,
        },
        EpisodeSnapshot::Skipped {
            reason: SkipReason::Busy,
            at_unix_ms: 1_780_000_240_000,
        },
    ]);
    let r = EpisodeJson::from_outcome(&o);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["snapshots"][1]["status"], "skipped");
    assert_eq!(json["snapshots"][1]["skip_reason"], "disk");
    assert_eq!(json["snapshots"][2]["skip_reason"], "busy");
    assert!(json["leaks_not_run"].as_str().unwrap().contains("needs three"));
    assert!(json["clusters"].as_array().unwrap().is_empty());
    // The floor still decides the verdict: the evidence is the profile.
    assert_eq!(json["verdict"], "leak");
    let mut text = Vec::new();
    write_episode_text(&r, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("snapshot skipped: not enough disk: the file needs about 300 MB"),
        "{text}"
    );
    assert!(text.contains("sampling heap profile: /var/lib/leakhound/"), "{text}");
    assert!(text.contains("leak finder not run: 1 snapshot(s) taken"), "{text}");
}
