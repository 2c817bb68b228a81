//! What linting returns: findings, per-file errors and the run's totals. Plain values; the
//! report crate renders them (stylish text, JSON, SARIF).

use std::path::PathBuf;

use crate::rules::{RuleId, Severity};

/// A place in a file: 1-based line and column (columns count characters, as ESLint's do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, counted from 1.
    pub line: u32,
    /// Column, counted from 1 in characters.
    pub column: u32,
}

/// A function in a file, as a heap snapshot names it: where it is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpan {
    /// Its name (`handler`, `abortInFlight`), or `<anonymous>`.
    pub name: String,
    /// Where the function starts (the `function` keyword, the method name or the arrow's
    /// parameters).
    pub start: Position,
    /// Where it ends (just past its last character).
    pub end: Position,
    /// Byte offsets of start and end in the file.
    pub byte_range: (u32, u32),
}

/// One finding of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Which rule.
    pub rule: RuleId,
    /// Its severity after the config file.
    pub severity: Severity,
    /// The file, as found by the walk (relative to where the walk started when the path
    /// given was relative).
    pub path: PathBuf,
    /// Where the flagged expression starts.
    pub start: Position,
    /// Where it ends.
    pub end: Position,
    /// Byte offsets of the flagged expression.
    pub byte_range: (u32, u32),
    /// One line saying what is wrong here (names the emitter, collection, variable).
    pub message: String,
    /// The name the finding is about (emitter, collection, variable, timer), matched by
    /// the config file's `allow` entries.
    pub subject: String,
    /// The innermost function around the flagged expression; `None` at module level.
    pub function: Option<FunctionSpan>,
    /// The text of the flagged line (for reports that show the source line).
    pub source_line: String,
}

impl Finding {
    /// The fix hint of the finding's rule.
    pub fn fix_hint(&self) -> &'static str {
        self.rule.rule().fix_hint
    }
}

/// A file that could not be linted: unreadable, not UTF-8, too large, or with syntax
/// errors. Its other findings are not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// Where the first error is, when it is a syntax error.
    pub position: Option<Position>,
    /// What is wrong.
    pub message: String,
}

/// The result of linting a set of paths.
#[derive(Debug, Clone, Default)]
pub struct LintRun {
    /// Findings in path order, then position, then rule.
    pub findings: Vec<Finding>,
    /// Files that could not be linted, in path order.
    pub errors: Vec<FileError>,
    /// How many files were parsed (with or without findings).
    pub files: usize,
    /// How many lines they hold.
    pub lines: u64,
    /// How many bytes they hold.
    pub bytes: u64,
    /// Findings left out by `leakhound-disable-next-line` comments or the config's `allow`.
    pub suppressed: usize,
}

impl LintRun {
    /// The most severe finding's severity, `None` without findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
