//! `leakhound lint`: find the config, lint the paths on the global rayon pool, mark what a
//! hunt report confirmed, render, and map the result to an exit code (1 when a finding is
//! at or above `--level`, 2 when a file could not be linted, else 0).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use leakhound_lint::link::{HeapLocation, Linked};
use leakhound_lint::{Config, LintOptions, LintRun, RuleId, Severity};

use crate::cli::{LintArgs, LintFormat, LintLevel};

/// Runs `leakhound lint`.
pub(crate) fn run_lint(args: &LintArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(p) => Config::read(p)?,
        None => Config::discover(args.paths.first().map_or(Path::new("."), PathBuf::as_path))?,
    };
    let options = LintOptions {
        paths: args.paths.clone(),
        include_deps: args.include_deps,
        config,
    };
    let run = leakhound_lint::lint(&options)?;
    let confirmed = match &args.report {
        Some(report) => confirmed_by(&run, report, &options.config)?,
        None => Vec::new(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        LintFormat::Stylish => leakhound_report::lint::write_lint_stylish(&run, &confirmed, &mut out)?,
        LintFormat::Json => leakhound_report::lint::write_lint_json(&run, &options.config, &confirmed, &mut out)?,
        LintFormat::Sarif => leakhound_report::lint::write_lint_sarif(&run, &confirmed, &mut out)?,
    }
    out.flush()?;
    Ok(exit_code(&run, args.level))
}

/// 2 with file errors, 1 with a finding at or above `level`, else 0.
fn exit_code(run: &LintRun, level: LintLevel) -> ExitCode {
    let level = match level {
        LintLevel::Info => Severity::Info,
        LintLevel::Warning => Severity::Warning,
        LintLevel::Error => Severity::Error,
    };
    if !run.errors.is_empty() {
        ExitCode::from(2)
    } else if run.max_severity().is_some_and(|s| s >= level) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Which findings of `run` a hunt or leaks report's clusters point at: a finding is
/// confirmed when it lies in (or adds) a function one of their source locations names.
fn confirmed_by(run: &LintRun, report: &Path, config: &Config) -> Result<Vec<bool>> {
    let text = std::fs::read_to_string(report).with_context(|| format!("cannot read {}", report.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a hunt or leaks JSON report", report.display()))?;
    let clusters = json.get("clusters").and_then(|c| c.as_array()).with_context(|| {
        format!(
            "{} has no `clusters` (not a `hunt --json` or `leaks --json` report)",
            report.display()
        )
    })?;
    let locations: Vec<HeapLocation> = clusters
        .iter()
        .flat_map(|c| c.get("sources").and_then(|s| s.as_array()).into_iter().flatten())
        .filter_map(|s| s.get("location").and_then(|l| l.as_str()))
        .filter_map(parse_location)
        .collect();
    let linked = Linked::lint(&locations, config);
    let mut confirmed = vec![false; run.findings.len()];
    for loc in &locations {
        for hit in linked.at(loc) {
            for (i, f) in run.findings.iter().enumerate() {
                if f.rule == hit.rule && f.byte_range == hit.byte_range && same_file(&f.path, &hit.path) {
                    confirmed[i] = true;
                }
            }
        }
    }
    Ok(confirmed)
}

/// `path:line:column` (the path may hold colons) as a heap location.
pub(crate) fn parse_location(s: &str) -> Option<HeapLocation> {
    let s = s.strip_prefix("file://").unwrap_or(s);
    let mut it = s.rsplitn(3, ':');
    let column = it.next()?.parse().ok()?;
    let line = it.next()?.parse().ok()?;
    let path = PathBuf::from(it.next()?);
    Some(HeapLocation { path, line, column })
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Attaches to each cluster the lint findings that lie in (or add) the functions its
/// sources and the app frames of its allocation stacks name, marked confirmed at runtime: the files that exist on disk are linted
/// with the config found beside the first of them. Clusters whose files are missing get
/// nothing, so reports of snapshots from elsewhere stay as they were. `LEAKHOUND_NO_LINT`
/// (set and not empty) turns this off.
pub(crate) fn attach_to_clusters(clusters: &mut [leakhound_report::leaks::ClusterJson]) {
    if std::env::var_os("LEAKHOUND_NO_LINT").is_some_and(|v| !v.is_empty()) {
        return;
    }
    lint_rule_sources(clusters);
    // The sources the snapshot suggests, and the app's frames of the allocation stacks
    // (snapshots taken with --track-allocations): where the leaking objects were made.
    let per_cluster: Vec<Vec<HeapLocation>> = clusters
        .iter()
        .map(|c| {
            let frames = c
                .allocation_stacks
                .iter()
                .flat_map(|st| st.frames.iter())
                .filter(|f| f.origin == "user" && f.line > 0)
                .map(|f| HeapLocation {
                    path: PathBuf::from(f.url.strip_prefix("file://").unwrap_or(&f.url)),
                    line: f.line,
                    column: f.column.max(1),
                });
            c.sources
                .iter()
                .filter_map(|s| parse_location(&s.location))
                .chain(frames)
                .collect()
        })
        .collect();
    let all: Vec<HeapLocation> = per_cluster
        .iter()
        .flatten()
        .filter(|l| leakhound_lint::link::is_lintable_file(&l.path))
        .cloned()
        .collect();
    if all.is_empty() {
        return;
    }
    let config = Config::discover(&all[0].path).unwrap_or_default();
    let linked = Linked::lint(&all, &config);
    for (cluster, locations) in clusters.iter_mut().zip(&per_cluster) {
        let mut seen = std::collections::HashSet::new();
        for loc in locations {
            for f in linked.at(loc) {
                let known = cluster
                    .lint_findings
                    .iter()
                    .any(|x| x.rule == f.rule.as_str() && x.line == f.start.line && x.column == f.start.column);
                if seen.insert((f.rule, f.byte_range)) && !known {
                    cluster
                        .lint_findings
                        .push(leakhound_report::lint::finding_json(f, Some(true)));
                }
            }
        }
    }
}

/// The lint rules whose findings say where a cluster of `pattern` is made in the source,
/// when the heap names no code of the app's.
fn rules_for(pattern: &str) -> &'static [RuleId] {
    match pattern {
        "agent_sockets" => &[RuleId::AgentPerCall],
        "unconsumed_stream" => &[RuleId::StreamNotConsumed],
        "global_variable" => &[RuleId::AccidentalGlobal, RuleId::UnboundedCollection],
        _ => &[],
    }
}

/// Sources found in the app's code for the clusters whose sources the heap could not
/// find there (`source_unknown_why`): the app's scripts the snapshot has code of (those on
/// disk) are linted, and the findings of the rules of the cluster's pattern
/// ([`rules_for`]; for a global, only those about that global) become its first sources,
/// `source_confidence: "lint_rule"`, and its `lint_findings`. A snapshot records where
/// functions are defined, not who called them; a rule reads the code that makes what the
/// heap shows accumulating (a keep-alive Agent per call, a stream never read).
fn lint_rule_sources(clusters: &mut [leakhound_report::leaks::ClusterJson]) {
    let wanted = |c: &leakhound_report::leaks::ClusterJson| {
        c.source_unknown_why.is_some() && !rules_for(&c.pattern).is_empty() && !c.app_scripts.is_empty()
    };
    let mut files: Vec<PathBuf> = clusters
        .iter()
        .filter(|c| wanted(c))
        .flat_map(|c| c.app_scripts.iter().map(PathBuf::from))
        .filter(|p| leakhound_lint::link::is_lintable_file(p))
        .collect();
    files.sort();
    files.dedup();
    let Some(first) = files.first() else { return };
    let config = Config::discover(first).unwrap_or_default();
    let run = leakhound_lint::lint_files(&files, &config);
    for c in clusters.iter_mut().filter(|c| wanted(c)) {
        let rules = rules_for(&c.pattern);
        // A global's findings are those about that global (`auditTrail`, `globalThis.x`).
        let name = c.holder.split(['.', '[']).next().unwrap_or("").to_owned();
        let found: Vec<&leakhound_lint::Finding> = run
            .findings
            .iter()
            .filter(|f| rules.contains(&f.rule))
            .filter(|f| {
                c.pattern != "global_variable"
                    || f.subject == name
                    || f.subject.ends_with(&format!(".{name}"))
                    || f.message.contains(&format!("`{name}`"))
            })
            .take(3)
            .collect();
        if found.is_empty() {
            continue;
        }
        let sources: Vec<leakhound_report::leaks::SourceJson> = found
            .iter()
            .map(|f| leakhound_report::leaks::SourceJson {
                location: format!("{}:{}:{}", f.path.display(), f.start.line, f.start.column),
                what: format!(
                    "{} ({}: {})",
                    f.function
                        .as_ref()
                        .map_or_else(|| "module scope".to_owned(), |fun| format!("function {}", fun.name)),
                    f.rule.as_str(),
                    f.message
                ),
                kind: "lint_rule".to_owned(),
                in_dependency: false,
                dependency: None,
            })
            .collect();
        c.source = sources.first().map(|x| x.location.clone());
        c.source_confidence = "lint_rule".to_owned();
        c.sources.splice(0..0, sources);
        for f in found {
            c.lint_findings
                .push(leakhound_report::lint::finding_json(f, Some(true)));
        }
    }
}
