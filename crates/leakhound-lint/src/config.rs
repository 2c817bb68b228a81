//! The config file, `.leakhound.json`: rule severities, paths to leave out and allowed
//! patterns. Looked up in the directory linted and its ancestors (the first one found
//! wins), or named with `--config`.
//!
//! ```json
//! {
//!   "rules": { "closure-keeps-large": "off", "max-listeners-unbounded": "error" },
//!   "ignore": ["scripts/**", "*.min.js"],
//!   "allow": [
//!     { "rule": "unbounded-collection", "name": "routeTable" },
//!     { "rule": "listener-per-call", "name": "process", "path": "src/boot/*.js" }
//!   ]
//! }
//! ```
//!
//! `rules` maps a rule id to `off`, `info`, `warning` or `error`. `ignore` holds gitignore-
//! style globs of files not to lint. An `allow` entry drops the findings of `rule` (any rule
//! when absent) whose subject (the emitter, collection, timer or variable named in the
//! message) matches `name` (`*` matches any run of characters) in files matching `path`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::rules::{RuleId, Severity};

/// The config file's name.
pub const CONFIG_FILE_NAME: &str = ".leakhound.json";

/// A parsed config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Severity per rule; `None` turns the rule off. Rules not named keep their default.
    pub severities: HashMap<RuleId, Option<Severity>>,
    /// Gitignore-style globs of files not to lint.
    pub ignore: Vec<String>,
    /// Allowed patterns.
    pub allow: Vec<Allow>,
    /// The file it was read from, `None` for the default config.
    pub source: Option<PathBuf>,
}

/// One allowed pattern of the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// The rule, or every rule.
    pub rule: Option<RuleId>,
    /// A glob over the finding's subject (`*` wildcards); `None` matches all.
    pub name: Option<String>,
    /// A glob over the file's path, `/`-separated (`*` wildcards, `**` crossing folders);
    /// `None` matches all.
    pub path: Option<String>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the JSON described in the module doc.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (the JSON error, an unknown rule or severity).
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    rules: HashMap<String, String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    rule: Option<String>,
    name: Option<String>,
    path: Option<String>,
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if let Some(v) = raw.schema_version
            && v != 1
        {
            return Err(invalid(format!("schema_version {v} is not supported (1 is)")));
        }
        let known = || RuleId::ALL.map(|r| r.as_str()).join(", ");
        let mut severities = HashMap::new();
        for (id, level) in &raw.rules {
            let rule = RuleId::parse(id).ok_or_else(|| invalid(format!("unknown rule `{id}` (rules: {})", known())))?;
            let severity = match level.as_str() {
                "off" => None,
                s => Some(
                    Severity::parse(s)
                        .ok_or_else(|| invalid(format!("rule `{id}`: `{s}` is not off, info, warning or error")))?,
                ),
            };
            severities.insert(rule, severity);
        }
        let mut allow = Vec::new();
        for a in raw.allow {
            let rule = match a.rule {
                Some(id) => Some(
                    RuleId::parse(&id)
                        .ok_or_else(|| invalid(format!("allow: unknown rule `{id}` (rules: {})", known())))?,
                ),
                None => None,
            };
            allow.push(Allow {
                rule,
                name: a.name,
                path: a.path,
            });
        }
        Ok(Config {
            severities,
            ignore: raw.ignore,
            allow,
            source: Some(path.to_owned()),
        })
    }

    /// The config file for linting `start`: `.leakhound.json` in `start` (or its folder,
    /// for a file) or the nearest ancestor that has one; the default config without one.
    pub fn discover(start: &Path) -> Result<Config, ConfigError> {
        let abs = std::path::absolute(start).unwrap_or_else(|_| start.to_owned());
        let mut dir = if abs.is_dir() {
            Some(abs.as_path())
        } else {
            abs.parent()
        };
        while let Some(d) = dir {
            let candidate = d.join(CONFIG_FILE_NAME);
            if candidate.is_file() {
                return Config::read(&candidate);
            }
            dir = d.parent();
        }
        Ok(Config::default())
    }

    /// The severity of `rule`'s findings, `None` when the rule is off.
    pub fn severity(&self, rule: RuleId) -> Option<Severity> {
        match self.severities.get(&rule) {
            Some(s) => *s,
            None => Some(rule.rule().default_severity),
        }
    }

    /// Whether an `allow` entry covers a finding of `rule` about `subject` in `path`.
    pub fn allows(&self, rule: RuleId, subject: &str, path: &Path) -> bool {
        let path = path.to_string_lossy().replace('\\', "/");
        self.allow.iter().any(|a| {
            a.rule.is_none_or(|r| r == rule)
                && a.name.as_deref().is_none_or(|g| glob_match(g, subject))
                && a.path.as_deref().is_none_or(|g| path_glob_match(g, &path))
        })
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // Iterative wildcard matching with one backtrack point (linear for one star, at most
    // quadratic in general).
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] != '*' && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// A path glob: a glob without `/` matches the file name or any trailing part of the path;
/// one with `/` matches the path or a trailing part of it (`*` crosses folders too).
fn path_glob_match(glob: &str, path: &str) -> bool {
    let glob = glob.trim_start_matches("./");
    if glob_match(glob, path) {
        return true;
    }
    path.match_indices('/').any(|(i, _)| glob_match(glob, &path[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*Cache", "quoteCache"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b", "aXXc"));
        assert!(glob_match("*", ""));
        assert!(path_glob_match("src/*.js", "/home/x/src/a.js"));
        assert!(path_glob_match("*.js", "deep/a.js"));
        assert!(!path_glob_match("lib/*.js", "src/a.js"));
    }

    #[test]
    fn parses_and_rejects() {
        let p = Path::new(".leakhound.json");
        let c = Config::parse(
            r#"{"rules":{"closure-keeps-large":"off","max-listeners-unbounded":"error"},
                "allow":[{"rule":"unbounded-collection","name":"route*"}]}"#,
            p,
        )
        .unwrap();
        assert_eq!(c.severity(RuleId::ClosureKeepsLarge), None);
        assert_eq!(c.severity(RuleId::MaxListenersUnbounded), Some(Severity::Error));
        assert_eq!(c.severity(RuleId::ListenerPerCall), Some(Severity::Warning));
        assert!(c.allows(RuleId::UnboundedCollection, "routeTable", Path::new("a.js")));
        assert!(!c.allows(RuleId::ListenerPerCall, "routeTable", Path::new("a.js")));
        let e = Config::parse(r#"{"rules":{"nope":"off"}}"#, p).unwrap_err().to_string();
        assert!(e.contains("unknown rule `nope`"), "{e}");
        let e = Config::parse(r#"{"rules":{"accidental-global":"loud"}}"#, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not off, info, warning or error"), "{e}");
        assert!(Config::parse(r#"{"allows":[]}"#, p).is_err());
    }
}
