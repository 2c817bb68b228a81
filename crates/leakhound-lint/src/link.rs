//! Findings tied to what a heap snapshot proved. A snapshot knows where functions are
//! defined (a closure's script, line and column), not where a call was made, so a finding
//! belongs to a heap location when the function defined there contains it, or when the
//! finding's expression contains that function (the listener or callback it adds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::model::{FileError, Finding, FunctionSpan, LintRun};
use crate::{FileLint, lint_file, settle};

/// A place a heap snapshot names: a script path and a 1-based line and column where a
/// function is defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeapLocation {
    /// The script's path (`file://` stripped).
    pub path: PathBuf,
    /// Line, counted from 1.
    pub line: u32,
    /// Column, counted from 1.
    pub column: u32,
}

/// Lints the files some heap locations name (those that exist on disk and are
/// JavaScript/TypeScript), once each.
#[derive(Debug, Default)]
pub struct Linked {
    run: LintRun,
    functions: HashMap<PathBuf, Vec<FunctionSpan>>,
}

impl Linked {
    /// Lints every file among `locations` that exists.
    pub fn lint(locations: &[HeapLocation], config: &Config) -> Linked {
        let mut files: Vec<PathBuf> = locations
            .iter()
            .map(|l| l.path.clone())
            .filter(|p| p.is_file() && crate::walk::is_lintable(p))
            .collect();
        files.sort();
        files.dedup();
        let results: Vec<Result<FileLint, FileError>> = files.iter().map(|p| lint_file(p, config)).collect();
        let mut functions = HashMap::new();
        for r in results.iter().flatten() {
            functions.insert(r.path.clone(), r.functions.clone());
        }
        Linked {
            run: settle(results),
            functions,
        }
    }

    /// The findings (and file errors) of the files linted.
    pub fn run(&self) -> &LintRun {
        &self.run
    }

    /// The findings that lie in the function defined at `loc` (or that add that function
    /// as a callback), in source order.
    pub fn at(&self, loc: &HeapLocation) -> Vec<&Finding> {
        let Some(functions) = self.functions.get(&loc.path) else {
            return Vec::new();
        };
        let Some(f) = function_at(functions, loc.line, loc.column) else {
            return Vec::new();
        };
        self.run
            .findings
            .iter()
            .filter(|x| x.path == loc.path && belongs(x, f))
            .collect()
    }
}

/// The function a heap location names: the innermost function starting on that line
/// (V8 places a function at its name or parameters, oxc at its keyword: the line agrees),
/// else the innermost one containing the position.
pub fn function_at(functions: &[FunctionSpan], line: u32, column: u32) -> Option<&FunctionSpan> {
    let on_line = functions
        .iter()
        .filter(|f| f.start.line == line)
        .min_by_key(|f| (f.start.column.abs_diff(column), f.byte_range.1 - f.byte_range.0));
    on_line.or_else(|| {
        functions
            .iter()
            .filter(|f| (f.start.line, f.start.column) <= (line, column) && (line, column) < (f.end.line, f.end.column))
            .min_by_key(|f| f.byte_range.1 - f.byte_range.0)
    })
}

/// Whether a finding lies in `f` or its expression contains `f`.
pub fn belongs(finding: &Finding, f: &FunctionSpan) -> bool {
    let (fs, fe) = f.byte_range;
    let (s, e) = finding.byte_range;
    (fs <= s && e <= fe) || (s <= fs && fe <= e)
}

/// Whether `path` exists as a file to lint.
pub fn is_lintable_file(path: &Path) -> bool {
    path.is_file() && crate::walk::is_lintable(path)
}
