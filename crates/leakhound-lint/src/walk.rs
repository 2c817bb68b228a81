//! Finding the files to lint: ripgrep's walker (the `ignore` crate), so `.gitignore`,
//! `.ignore` and hidden files are handled as there (a `.gitignore` counts outside a git
//! repository too); `node_modules` folders are skipped unless deps are included, and then
//! ignore files are not read (they usually list `node_modules`). Declaration files
//! (`.d.ts`) hold no code and minified bundles (`.min.js`) are generated: both are skipped. A file named on the command line is linted
//! whatever its extension or ignore status.

use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;

/// Extensions linted.
pub const EXTENSIONS: &[&str] = &["js", "cjs", "mjs", "jsx", "ts", "cts", "mts", "tsx"];

/// Why the walk failed.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A path on the command line does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// A config `ignore` glob is invalid.
    #[error("ignore glob `{glob}`: {message}")]
    Glob {
        /// The glob.
        glob: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading a folder failed.
    #[error("{0}")]
    Walk(String),
}

/// Whether a path has a linted extension (and is not a `.d.ts`).
pub fn is_lintable(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".d.ts") || name.ends_with(".d.mts") || name.ends_with(".d.cts") {
        return false;
    }
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// Whether a file is a minified bundle (`.min.js`): generated code, skipped by the walk.
pub fn is_minified(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    EXTENSIONS.iter().any(|e| name.ends_with(&format!(".min.{e}")))
}

/// The files to lint under `paths` (`.` when empty), sorted, without duplicates.
pub fn files(paths: &[PathBuf], include_deps: bool, ignore_globs: &[String]) -> Result<Vec<PathBuf>, WalkError> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let mut out = Vec::new();
    for root in paths {
        if !root.exists() {
            return Err(WalkError::Missing(root.clone()));
        }
        if root.is_file() {
            out.push(root.clone());
            continue;
        }
        let mut ob = OverrideBuilder::new(root);
        for g in ignore_globs {
            ob.add(&format!("!{g}")).map_err(|e| WalkError::Glob {
                glob: g.clone(),
                message: e.to_string(),
            })?;
        }
        let overrides = ob.build().map_err(|e| WalkError::Glob {
            glob: ignore_globs.join(" "),
            message: e.to_string(),
        })?;
        let mut wb = WalkBuilder::new(root);
        wb.overrides(overrides)
            .require_git(false)
            .sort_by_file_path(|a, b| a.cmp(b));
        if include_deps {
            wb.git_ignore(false).git_exclude(false).git_global(false).ignore(false);
        } else {
            wb.filter_entry(|e| e.file_name() != "node_modules");
        }
        for entry in wb.build() {
            let entry = entry.map_err(|e| WalkError::Walk(e.to_string()))?;
            if entry.file_type().is_some_and(|t| t.is_file()) && is_lintable(entry.path()) && !is_minified(entry.path())
            {
                out.push(entry.into_path());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
