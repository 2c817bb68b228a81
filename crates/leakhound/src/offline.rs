//! The commands on snapshot files: `summary`, `stats`, `diff`, `retainers`, `leaks`.
//! Each opens its files (with progress bars), calls the engine or the analyses, and hands
//! the typed result to a renderer of `leakhound-report`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use leakhound_leaks::{ClassPick, pick_class};

use crate::cli::{DiffSort, SortBy};
use crate::open::{self, Ui};
use leakhound_report::terminal::terminal_safe;

/// `summary FILE`: DevTools' Summary view.
pub fn summary(file: &Path, top: usize, sort: SortBy, json: bool, ui: Ui, out: &mut dyn Write) -> Result<()> {
    let loaded = open::load_snapshot(file, ui)?;
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
        leakhound_report::summary::write_summary_json(&view, out)?;
    } else {
        leakhound_report::summary::write_summary_text(&view, out)?;
    }
    Ok(())
}

/// `stats FILE`: DevTools' Statistics breakdown.
pub fn stats(file: &Path, json: bool, ui: Ui, out: &mut dyn Write) -> Result<()> {
    let loaded = open::load_snapshot(file, ui)?;
    leakhound_report::summary::write_stats(&file.display().to_string(), &loaded.snapshot, json, out)?;
    Ok(())
}

/// `diff BASE CURRENT`: DevTools' Comparison view, after checking that both snapshots
/// come from one process, in order.
pub fn diff(
    base: &Path,
    current: &Path,
    top: usize,
    sort: DiffSort,
    json: bool,
    ui: Ui,
    out: &mut dyn Write,
) -> Result<()> {
    let mut loaded = open::load_many(&[base.to_owned(), current.to_owned()], ui)?;
    let (Some(cur), Some(bas)) = (loaded.pop(), loaded.pop()) else {
        bail!("internal: snapshots missing")
    };
    let (bas, cur) = (bas.snapshot, cur.snapshot);
    if let Err(e) = leakhound_leaks::check_pair(&bas, &cur) {
        bail!("cannot compare {} with {}: {e}", current.display(), base.display());
    }
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
        leakhound_report::diff::write_diff_json(&b, &c, &rows, total, out)?;
    } else {
        leakhound_report::diff::write_diff_text(&b, &c, &rows, total, out)?;
    }
    Ok(())
}

/// Which objects `retainers` shows.
pub enum Pick {
    /// One node, by its snapshot id (`@123` or `123` as given).
    Id(String),
    /// The largest instances of a class.
    Class {
        /// The class (Summary's Constructor column).
        name: String,
        /// How many instances, largest retained size first (`--instances`; 0 counts as 1).
        instances: usize,
    },
}

/// `retainers FILE`: the retainer tree and the shortest path to a GC root of each picked
/// object.
pub fn retainers(
    file: &Path,
    pick: Pick,
    depth: usize,
    max_retainers: usize,
    json: bool,
    ui: Ui,
    out: &mut dyn Write,
) -> Result<()> {
    let loaded = open::load_snapshot(file, ui)?;
    let s = &loaded.snapshot;
    let nodes: Vec<u32> = match pick {
        Pick::Id(id) => {
            let n: u32 = id
                .trim_start_matches('@')
                .parse()
                .map_err(|_| anyhow::anyhow!("--id takes a node id such as @1234, not {id:?}"))?;
            vec![
                s.node_by_id(n)
                    .ok_or_else(|| anyhow::anyhow!("{}: no node with id @{n}", file.display()))?,
            ]
        }
        Pick::Class { name, instances } => {
            let names = s.classes().iter().map(|c| c.name.as_str());
            let name = match pick_class(names, &name) {
                ClassPick::Exact => name,
                ClassPick::OtherCase(found) => {
                    if !ui.quiet {
                        #[allow(clippy::print_stderr, reason = "a note on the class shown instead")]
                        {
                            eprintln!(
                                "leakhound: no class {}, showing {} (class names are case-sensitive)",
                                terminal_safe(&format!("{name:?}")),
                                terminal_safe(&format!("{found:?}"))
                            );
                        }
                    }
                    found
                }
                ClassPick::Ambiguous(all) => bail!(
                    "{}: no class {name:?}; in another case: {}",
                    file.display(),
                    all.join(", ")
                ),
                ClassPick::None(near) if !near.is_empty() => bail!(
                    "{}: no class {name:?}; did you mean {}? (names are the Summary's Constructor column)",
                    file.display(),
                    near.join(", ")
                ),
                ClassPick::None(_) => bail!(
                    "{}: no objects of class {name:?} (names are the Summary's Constructor column)",
                    file.display()
                ),
            };
            let v = leakhound_leaks::largest_instances(s, &name, instances.max(1));
            if v.is_empty() {
                bail!(
                    "{}: no objects of class {name:?} (names are the Summary's Constructor column)",
                    file.display()
                );
            }
            v
        }
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
        leakhound_report::retainers::write_retainers_json(&file.display().to_string(), &trees, &paths, out)?;
    } else {
        leakhound_report::retainers::write_retainers_text(&trees, &paths, out)?;
    }
    Ok(())
}

/// `leaks BASELINE TARGET FINAL…`: the three-snapshot leak finder. Exit code 1 when it
/// finds a growing cluster, 3 (inconclusive) when none grew but the ArrayBuffer backing
/// stores did, 0 otherwise.
pub fn leaks(
    snapshots: &[PathBuf],
    requests_per_step: Option<f64>,
    min_growth: u64,
    json: bool,
    ui: Ui,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let (loaded, prepared): (Vec<_>, Vec<_>) = open::load_series_prepared(snapshots, ui)?.into_iter().unzip();
    let snaps: Vec<&leakhound_heap::HeapSnapshot> = loaded.iter().map(|l| &l.snapshot).collect();
    let opts = leakhound_leaks::LeakOptions {
        requests_per_step,
        min_growth,
        ..Default::default()
    };
    let report = leakhound_leaks::find_leaks_prepared(&snaps, prepared, &opts)?;
    let files: Vec<String> = snapshots.iter().map(|p| p.display().to_string()).collect();
    // The lint findings inside the functions the clusters' sources name (files that exist).
    let mut doc = leakhound_report::leaks::leaks_json(&files, &report, requests_per_step);
    crate::lint_cmd::attach_to_clusters(&mut doc.clusters);
    // No cluster: did memory grow inside objects the snapshots already had?
    if report.clusters.is_empty() {
        let bytes: Vec<u64> = snaps.iter().map(|s| leakhound_leaks::backing_store_bytes(s)).collect();
        if let Some(grown) = leakhound_report::leaks::off_heap_growth(&bytes) {
            doc.set_off_heap_growth(grown);
        }
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        let lint: Vec<_> = doc.clusters.iter().map(|c| c.lint_findings.clone()).collect();
        leakhound_report::leaks::write_leaks_text_linked(
            &files,
            &report,
            requests_per_step,
            &lint,
            doc.backing_store_bytes_per_snapshot.as_deref(),
            out,
        )?;
    }
    Ok(match doc.verdict {
        "leak" => ExitCode::from(1),
        "inconclusive" => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    })
}
