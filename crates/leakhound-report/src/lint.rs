//! `leakhound lint`'s outputs: ESLint's "stylish" text, the stable JSON object
//! (`schema_version` 1, `kind: "lint"`) and SARIF 2.1.0 for code-scanning services; and
//! the findings attached to a leak cluster (`lint_findings`, "confirmed at runtime").
//!
//! JSON (`--format json`), fields never removed or renamed:
//!
//! ```text
//! { "schema_version": 1, "kind": "lint",
//!   "files": 12, "lines": 3400,
//!   "summary": { "errors": 0, "warnings": 2, "infos": 1, "file_errors": 0, "suppressed": 0, "confirmed": 1 },
//!   "findings": [ { "rule": "listener-per-call", "severity": "warning",
//!                   "path": "src/server.js", "line": 14, "column": 3, "end_line": 17, "end_column": 5,
//!                   "message": "…", "fix_hint": "…", "subject": "lifecycle",
//!                   "function": { "name": "handler", "line": 11, "column": 1 } | null,
//!                   "source_line": "  lifecycle.on('shutdown', function abortInFlight() {",
//!                   "confirmed_at_runtime": true } ],   // only with --report
//!   "file_errors": [ { "path": "…", "line": 3, "column": 7, "message": "syntax error: …" } ],
//!   "rules": [ { "id": "…", "severity": "warning", "description": "…", "fix_hint": "…", "heap_pattern": "…" } ] }
//! ```
//!
//! Lines and columns are 1-based; columns count characters.

use std::io::{self, Write};

use leakhound_lint::config::Config;
use leakhound_lint::{FileError, Finding, LintRun, RuleId, Severity};
use serde::{Deserialize, Serialize};

use crate::terminal::terminal_safe;

/// The stable JSON of a lint run.
#[derive(Debug, Serialize)]
pub struct LintJson {
    /// Layout version: 1.
    pub schema_version: u32,
    /// Always `"lint"`.
    pub kind: &'static str,
    /// Files parsed.
    pub files: usize,
    /// Lines in them.
    pub lines: u64,
    /// Counts.
    pub summary: LintSummaryJson,
    /// The findings, by path, line, column and rule.
    pub findings: Vec<LintFindingJson>,
    /// Files that could not be linted.
    pub file_errors: Vec<FileErrorJson>,
    /// The rules in force, with their severity (`off` when turned off).
    pub rules: Vec<RuleJson>,
}

/// Counts of a lint run.
#[derive(Debug, Serialize)]
pub struct LintSummaryJson {
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings of severity info.
    pub infos: usize,
    /// Files that could not be linted.
    pub file_errors: usize,
    /// Findings dropped by disable comments or the config's `allow`.
    pub suppressed: usize,
    /// Findings a hunt report confirmed (0 without `--report`).
    pub confirmed: usize,
}

/// One finding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LintFindingJson {
    /// The rule id.
    pub rule: String,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// The file.
    pub path: String,
    /// 1-based line of the flagged expression.
    pub line: u32,
    /// 1-based column (characters).
    pub column: u32,
    /// Where the expression ends.
    pub end_line: u32,
    /// Where the expression ends.
    pub end_column: u32,
    /// What is wrong.
    pub message: String,
    /// What to do (the leak finder's words).
    pub fix_hint: String,
    /// The emitter, collection, timer or variable.
    pub subject: String,
    /// The function around it.
    pub function: Option<FunctionJson>,
    /// The flagged line's text.
    pub source_line: String,
    /// Whether a hunt's heap evidence points at this finding's function (only with
    /// `--report`, and on a cluster's `lint_findings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at_runtime: Option<bool>,
}

/// A function's name and where it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionJson {
    /// Its name, or `<anonymous>`.
    pub name: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// A file that could not be linted.
#[derive(Debug, Serialize)]
pub struct FileErrorJson {
    /// The file.
    pub path: String,
    /// Where, when known.
    pub line: Option<u32>,
    /// Where, when known.
    pub column: Option<u32>,
    /// What is wrong.
    pub message: String,
}

/// A rule as run.
#[derive(Debug, Serialize)]
pub struct RuleJson {
    /// Stable id.
    pub id: &'static str,
    /// Severity in force, or `off`.
    pub severity: &'static str,
    /// What it looks for.
    pub description: &'static str,
    /// What to do about a finding.
    pub fix_hint: &'static str,
    /// The leak finder's pattern name.
    pub heap_pattern: &'static str,
}

/// The JSON of one finding; `confirmed` is `Some` when a hunt report was read.
pub fn finding_json(f: &Finding, confirmed: Option<bool>) -> LintFindingJson {
    LintFindingJson {
        rule: f.rule.as_str().to_owned(),
        severity: f.severity.as_str().to_owned(),
        path: f.path.to_string_lossy().into_owned(),
        line: f.start.line,
        column: f.start.column,
        end_line: f.end.line,
        end_column: f.end.column,
        message: f.message.clone(),
        fix_hint: f.fix_hint().to_owned(),
        subject: f.subject.clone(),
        function: f.function.as_ref().map(|x| FunctionJson {
            name: x.name.clone(),
            line: x.start.line,
            column: x.start.column,
        }),
        source_line: f.source_line.clone(),
        confirmed_at_runtime: confirmed,
    }
}

fn file_error_json(e: &FileError) -> FileErrorJson {
    FileErrorJson {
        path: e.path.to_string_lossy().into_owned(),
        line: e.position.map(|p| p.line),
        column: e.position.map(|p| p.column),
        message: e.message.clone(),
    }
}

/// The JSON of a run; `confirmed[i]` says whether finding `i` was confirmed (empty: no
/// hunt report read).
pub fn lint_json(run: &LintRun, config: &Config, confirmed: &[bool]) -> LintJson {
    let count = |s: Severity| run.findings.iter().filter(|f| f.severity == s).count();
    LintJson {
        schema_version: 1,
        kind: "lint",
        files: run.files,
        lines: run.lines,
        summary: LintSummaryJson {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
            file_errors: run.errors.len(),
            suppressed: run.suppressed,
            confirmed: confirmed.iter().filter(|c| **c).count(),
        },
        findings: run
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| {
                finding_json(
                    f,
                    (!confirmed.is_empty()).then(|| confirmed.get(i).copied().unwrap_or(false)),
                )
            })
            .collect(),
        file_errors: run.errors.iter().map(file_error_json).collect(),
        rules: RuleId::ALL
            .into_iter()
            .map(|r| {
                let rule = r.rule();
                RuleJson {
                    id: rule.id,
                    severity: config.severity(r).map_or("off", Severity::as_str),
                    description: rule.description,
                    fix_hint: rule.fix_hint,
                    heap_pattern: rule.heap_pattern,
                }
            })
            .collect(),
    }
}

/// Writes the JSON of a run (pretty, one object).
///
/// # Errors
/// Any error writing to `w`.
pub fn write_lint_json(run: &LintRun, config: &Config, confirmed: &[bool], w: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &lint_json(run, config, confirmed))?;
    writeln!(w)
}

/// Writes ESLint's "stylish" format: per file a header, then `line:col  severity  message
/// rule` rows, a fix hint under each, and a summary line (`✖ 3 problems (0 errors, 2
/// warnings, 1 info)`). Confirmed findings say `confirmed at runtime`. Terminal-safe.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_lint_stylish(run: &LintRun, confirmed: &[bool], w: &mut dyn Write) -> io::Result<()> {
    let mut last_path = None;
    for (i, f) in run.findings.iter().enumerate() {
        if last_path != Some(&f.path) {
            if last_path.is_some() {
                writeln!(w)?;
            }
            writeln!(w, "{}", terminal_safe(&f.path.to_string_lossy()))?;
            last_path = Some(&f.path);
        }
        let pos = format!("{}:{}", f.start.line, f.start.column);
        let confirmed = if confirmed.get(i).copied().unwrap_or(false) {
            "  [confirmed at runtime]"
        } else {
            ""
        };
        writeln!(
            w,
            "  {pos:<7}  {:<7}  {}  {}{confirmed}",
            f.severity.as_str(),
            terminal_safe(&f.message),
            f.rule.as_str()
        )?;
        writeln!(w, "  {:<7}  {:<7}  fix: {}", "", "", f.fix_hint())?;
    }
    for e in &run.errors {
        if last_path.is_some() {
            writeln!(w)?;
        }
        writeln!(w, "{}", terminal_safe(&e.path.to_string_lossy()))?;
        let pos = e
            .position
            .map_or_else(|| "0:0".to_owned(), |p| format!("{}:{}", p.line, p.column));
        writeln!(w, "  {pos:<7}  {:<7}  {}", "error", terminal_safe(&e.message))?;
        last_path = Some(&e.path);
    }
    let count = |s: Severity| run.findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, infos) = (count(Severity::Error), count(Severity::Warning), count(Severity::Info));
    let problems = run.findings.len() + run.errors.len();
    if last_path.is_some() {
        writeln!(w)?;
    }
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mark = if problems == 0 { "✔" } else { "✖" };
    write!(
        w,
        "{mark} {} ({}, {}, {}",
        plural(problems, "problem", "problems"),
        plural(errors + run.errors.len(), "error", "errors"),
        plural(warnings, "warning", "warnings"),
        plural(infos, "info", "infos"),
    )?;
    let n_confirmed = confirmed.iter().filter(|c| **c).count();
    if n_confirmed > 0 {
        write!(w, "; {n_confirmed} confirmed at runtime")?;
    }
    writeln!(
        w,
        ") in {} linted in {} lines",
        plural(run.files, "file", "files"),
        run.lines
    )?;
    Ok(())
}

/// SARIF 2.1.0: one run whose `tool.driver.rules` are leakhound's rules and whose results
/// are the findings (`note` for info). File errors are `toolExecutionNotifications` of the
/// run's invocation, which says `executionSuccessful: false` when there are any.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_lint_sarif(run: &LintRun, confirmed: &[bool], w: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<serde_json::Value> = RuleId::ALL
        .into_iter()
        .map(|r| {
            let rule = r.rule();
            serde_json::json!({
                "id": rule.id,
                "name": rule.id,
                "shortDescription": { "text": rule.description },
                "fullDescription": { "text": rule.description },
                "help": { "text": rule.fix_hint },
                "defaultConfiguration": { "level": sarif_level(rule.default_severity) },
                "properties": { "heap_pattern": rule.heap_pattern },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = run
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut result = serde_json::json!({
                "ruleId": f.rule.as_str(),
                "ruleIndex": f.rule as usize,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{} — fix: {}", f.message, f.fix_hint()) },
                "locations": [ {
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.path) },
                        "region": {
                            "startLine": f.start.line, "startColumn": f.start.column,
                            "endLine": f.end.line, "endColumn": f.end.column,
                            "snippet": { "text": f.source_line },
                        }
                    }
                } ],
                "partialFingerprints": { "leakhound/subject": format!("{}:{}", f.rule.as_str(), f.subject) },
            });
            if confirmed.get(i).copied().unwrap_or(false) {
                result["properties"] = serde_json::json!({ "confirmed_at_runtime": true });
            }
            result
        })
        .collect();
    let notifications: Vec<serde_json::Value> = run
        .errors
        .iter()
        .map(|e| {
            let mut loc = serde_json::json!({ "physicalLocation": { "artifactLocation": { "uri": uri(&e.path) } } });
            if let Some(p) = e.position {
                loc["physicalLocation"]["region"] = serde_json::json!({ "startLine": p.line, "startColumn": p.column });
            }
            serde_json::json!({ "level": "error", "message": { "text": e.message }, "locations": [loc] })
        })
        .collect();
    let doc = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [ {
            "tool": { "driver": {
                "name": "leakhound",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/leakhound",
                "rules": rules,
            } },
            "invocations": [ {
                "executionSuccessful": run.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            } ],
            "columnKind": "unicodeCodePoints",
            "results": results,
        } ],
    });
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Info => "note",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// A relative path as a `/`-separated URI reference; an absolute one as `file://`.
fn uri(p: &std::path::Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    let s = s.strip_prefix("./").unwrap_or(&s).to_owned();
    let escaped: String = s
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_owned(),
            '%' => "%25".to_owned(),
            '#' => "%23".to_owned(),
            '?' => "%3F".to_owned(),
            c => c.to_string(),
        })
        .collect();
    if escaped.starts_with('/') {
        format!("file://{escaped}")
    } else {
        escaped
    }
}

/// Writes the lint findings attached to a cluster, under it: each with its place, rule
/// and message, then the source line itself (`confirmed at runtime`: the heap grew in the
/// function that holds it). Nothing when there are none.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_confirmed_findings(found: &[LintFindingJson], w: &mut dyn Write) -> io::Result<()> {
    for f in found {
        writeln!(
            w,
            "   lint (confirmed at runtime): {}:{}:{}  {}  {}",
            terminal_safe(&f.path),
            f.line,
            f.column,
            f.rule,
            terminal_safe(&f.message)
        )?;
        writeln!(w, "      {:>5} | {}", f.line, terminal_safe(f.source_line.trim_end()))?;
    }
    Ok(())
}
