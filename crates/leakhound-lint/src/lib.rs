//! Leak patterns in JavaScript and TypeScript source: `leakhound lint`'s engine.
//!
//! Files are found with the `ignore` crate (`.gitignore` respected, `node_modules` skipped
//! unless asked), parsed with oxc (CommonJS and ESM, `.js .cjs .mjs .jsx .ts .cts .mts
//! .tsx`), and analysed on oxc's semantic model (scopes, symbols, references, the node
//! tree) by the rules in [`rules::RULES`]. Files run in parallel on the current rayon pool
//! (the binary's global one). A file that cannot be parsed is a [`FileError`], never a
//! panic. `// leakhound-disable-next-line RULE` comments and the config file
//! ([`config`]) drop findings. [`link`] ties findings to the functions a heap snapshot
//! names.

pub mod config;
pub mod link;
pub mod model;
pub mod rules;

mod analyze;
mod walk;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use config::{Allow, Config, ConfigError};
pub use model::{FileError, Finding, FunctionSpan, LintRun, Position};
pub use rules::{RULES, Rule, RuleId, Severity};
pub use walk::WalkError;

/// Files larger than this are reported as errors rather than read (minified bundles of
/// this size are not what the rules are for, and memory stays bounded).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// What to lint and how.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Files or folders (the current folder when empty).
    pub paths: Vec<PathBuf>,
    /// Lint inside `node_modules` folders too.
    pub include_deps: bool,
    /// Severities, ignored paths and allowed patterns.
    pub config: Config,
}

/// Why a lint run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A path given does not exist or the walk failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// One file's findings and functions, before the cross-file listener check.
#[derive(Debug)]
pub struct FileLint {
    /// The file.
    pub path: PathBuf,
    /// Its findings after comments and config, before the cross-file check.
    findings: Vec<(Finding, Option<analyze::ListenerKey>)>,
    /// Every function in the file, in source order.
    pub functions: Vec<FunctionSpan>,
    removed_listeners: HashSet<String>,
    removed_all: HashSet<String>,
    lines: u64,
    bytes: u64,
    suppressed: usize,
}

/// Lints every JavaScript/TypeScript file under `options.paths`.
pub fn lint(options: &LintOptions) -> Result<LintRun, LintError> {
    let files = walk::files(&options.paths, options.include_deps, &options.config.ignore)?;
    Ok(lint_files(&files, &options.config))
}

/// Lints the given files (no walk); listeners removed in any of them count for all.
pub fn lint_files(files: &[PathBuf], config: &Config) -> LintRun {
    let results: Vec<Result<FileLint, FileError>> = files.par_iter().map(|p| lint_file(p, config)).collect();
    settle(results)
}

/// Settles per-file results into a run: drops `listener-per-call` findings whose listener
/// some linted file removes, and sorts.
pub fn settle(results: Vec<Result<FileLint, FileError>>) -> LintRun {
    let mut run = LintRun::default();
    let mut removed = HashSet::new();
    let mut removed_all = HashSet::new();
    for r in results.iter().flatten() {
        removed.extend(r.removed_listeners.iter().cloned());
        removed_all.extend(r.removed_all.iter().cloned());
    }
    for r in results {
        match r {
            Ok(f) => {
                run.files += 1;
                run.lines += f.lines;
                run.bytes += f.bytes;
                run.suppressed += f.suppressed;
                for (finding, listener) in f.findings {
                    if let Some((names, emitter)) = &listener
                        && (names.iter().any(|n| removed.contains(n)) || removed_all.contains(emitter))
                    {
                        continue;
                    }
                    run.findings.push(finding);
                }
            }
            Err(e) => run.errors.push(e),
        }
    }
    run.findings
        .sort_by(|a, b| (&a.path, a.start, a.rule).cmp(&(&b.path, b.start, b.rule)));
    run.errors.sort_by(|a, b| a.path.cmp(&b.path));
    run
}

/// Reads and lints one file.
pub fn lint_file(path: &Path, config: &Config) -> Result<FileLint, FileError> {
    let err = |message: String| FileError {
        path: path.to_owned(),
        position: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes: larger than the {} MiB leakhound lints",
            meta.len(),
            MAX_FILE_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))?;
    lint_source(path, &text, config)
}

/// Lints source text as if it were the file at `path` (the extension picks the dialect).
pub fn lint_source(path: &Path, text: &str, config: &Config) -> Result<FileLint, FileError> {
    let a = analyze::analyze(path, text)?;
    let disabled = disabled_lines(text);
    let mut findings = Vec::new();
    let mut suppressed = 0;
    let mut seen = HashSet::new();
    let by_range: std::collections::HashMap<(u32, u32), usize> =
        a.functions.iter().enumerate().map(|(i, f)| (f.byte_range, i)).collect();
    for raw in a.findings {
        let Some(mut severity) = config.severity(raw.rule) else {
            continue;
        };
        // A softer variant (info) stays below the rule's configured severity.
        if let Some(s) = raw.severity {
            severity = severity.min(s);
        }
        let start = a.lines.position(text, raw.span.start);
        if !seen.insert((raw.rule, raw.span.start)) {
            continue;
        }
        let off = disabled.iter().any(|(line, rules)| {
            *line == start.line && (rules.is_empty() || rules.iter().any(|r| r == raw.rule.as_str()))
        });
        if off || config.allows(raw.rule, &raw.subject, path) {
            suppressed += 1;
            continue;
        }
        let function = raw
            .function
            .and_then(|s| by_range.get(&(s.start, s.end)).map(|&i| a.functions[i].clone()));
        let finding = Finding {
            rule: raw.rule,
            severity,
            path: path.to_owned(),
            start,
            end: a.lines.position(text, raw.span.end),
            byte_range: (raw.span.start, raw.span.end),
            message: raw.message,
            subject: raw.subject,
            function,
            source_line: a.lines.line_text(text, start.line).to_owned(),
        };
        findings.push((finding, raw.listener));
    }
    Ok(FileLint {
        path: path.to_owned(),
        findings,
        functions: a.functions,
        removed_listeners: a.removed_listeners,
        removed_all: a.removed_all,
        lines: a.lines.count() as u64,
        bytes: text.len() as u64,
        suppressed,
    })
}

/// Lines a `leakhound-disable-next-line [RULE[, RULE…]]` comment turns rules off on
/// (no rule named: all), as (1-based line, rule ids).
fn disabled_lines(text: &str) -> Vec<(u32, Vec<String>)> {
    const MARK: &str = "leakhound-disable-next-line";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(at) = line.find(MARK) {
            let rest = line[at + MARK.len()..].trim_end_matches("*/");
            let rest = rest.split("--").next().unwrap_or("");
            let rules = rest
                .split([',', ' ', '\t'])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            out.push((i as u32 + 2, rules));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_comment_parses_rules() {
        let d = disabled_lines("a\n// leakhound-disable-next-line listener-per-call, unbounded-collection -- why\nb\n");
        assert_eq!(
            d,
            vec![(
                3,
                vec!["listener-per-call".to_owned(), "unbounded-collection".to_owned()]
            )]
        );
        assert_eq!(disabled_lines("/* leakhound-disable-next-line */"), vec![(2, vec![])]);
    }
}
