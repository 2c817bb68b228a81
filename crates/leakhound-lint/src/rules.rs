//! The rules as one table, [`RULES`]: each has a stable id (the `ruleId` in SARIF and JSON,
//! the name in `leakhound-disable-next-line` comments and in the config file), a one-line
//! description, a fix hint in the words of the leak finder's (`leakhound_leaks::Pattern`
//! hints, so a finding and a confirmed heap cluster say the same thing), the heap pattern
//! it corresponds to, and a default severity. Plain data: imports nothing from the crate.

use std::fmt;

/// How serious a finding is, least first (ESLint's and SARIF's `note` / `warning` /
/// `error` scale; `info` is SARIF's `note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A shape worth knowing about that leaks only in some programs.
    Info,
    /// A pattern that leaks when the code runs per request or per call.
    Warning,
    /// Raised to error by the config file.
    Error,
}

impl Severity {
    /// The wire name: `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The severity named `s` (`info`, `note`, `warning`, `warn`, `error`), if any.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" | "note" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule: an entry of [`RULES`].
#[derive(Debug)]
pub struct Rule {
    /// The stable kebab-case id (`listener-per-call`).
    pub id: &'static str,
    /// What the rule looks for, in one line (SARIF `shortDescription`).
    pub description: &'static str,
    /// What to do about a finding, in the leak finder's words.
    pub fix_hint: &'static str,
    /// The leak finder's pattern this rule finds in the source (`listener_accumulation`).
    pub heap_pattern: &'static str,
    /// Severity unless the config file says otherwise.
    pub default_severity: Severity,
}

/// Stable identifier of a rule. The discriminant is its index in [`RULES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    /// `on`/`once`/`addListener` per call on an emitter that outlives the call, never removed.
    ListenerPerCall = 0,
    /// `setInterval` never cleared; a long `setTimeout` kept per call in a collection.
    IntervalNotCleared = 1,
    /// A long-lived Map/Set/Array/object that gains entries per call and never loses them.
    UnboundedCollection = 2,
    /// Assignment to an undeclared identifier in sloppy-mode code.
    AccidentalGlobal = 3,
    /// A long-lived callback sharing its closure context with a large value.
    ClosureKeepsLarge = 4,
    /// A stream created and stored, never read, piped, resumed or destroyed.
    StreamNotConsumed = 5,
    /// A keep-alive HTTP agent or pool created per call.
    AgentPerCall = 6,
    /// `setMaxListeners(0)` or `Infinity`.
    MaxListenersUnbounded = 7,
}

impl RuleId {
    /// Every rule, in table order.
    pub const ALL: [RuleId; 8] = [
        RuleId::ListenerPerCall,
        RuleId::IntervalNotCleared,
        RuleId::UnboundedCollection,
        RuleId::AccidentalGlobal,
        RuleId::ClosureKeepsLarge,
        RuleId::StreamNotConsumed,
        RuleId::AgentPerCall,
        RuleId::MaxListenersUnbounded,
    ];

    /// The rule's table entry.
    pub fn rule(self) -> &'static Rule {
        &RULES[self as usize]
    }

    /// The stable id (`listener-per-call`).
    pub fn as_str(self) -> &'static str {
        self.rule().id
    }

    /// The rule whose id is `id`, if any.
    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules, indexed by [`RuleId`]. Fix hints follow the leak finder's pattern table
/// (`crates/leakhound-leaks/src/pattern.rs`) word for word where a pattern matches.
pub static RULES: [Rule; 8] = [
    Rule {
        id: "listener-per-call",
        description: "a listener added per call to an emitter that outlives the call, and never removed",
        fix_hint: "remove the listener when its work is done (emitter.off / removeListener, e.g. on 'close'), or register it once",
        heap_pattern: "listener_accumulation",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "interval-not-cleared",
        description: "a setInterval whose handle is dropped or never cleared, or a long setTimeout kept per call",
        fix_hint: "keep the timer handle and clearInterval/clearTimeout it when its owner is done (or unref() short-lived ones)",
        heap_pattern: "uncleared_timer",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "unbounded-collection",
        description: "a long-lived Map, Set, array or object that gains entries per call and never loses them",
        fix_hint: "bound the collection: evict old entries (an LRU with a max size, or a TTL) or delete each entry when it is no longer needed",
        heap_pattern: "unbounded_collection",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "accidental-global",
        description: "assignment to an undeclared variable in sloppy-mode code creates a global",
        fix_hint: "growth hangs off a global: scope it to a module or request, bound it, or clear it (declare it with let/const, or add 'use strict')",
        heap_pattern: "global_variable",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "closure-keeps-large",
        description: "a long-lived callback shares its closure context with a large value another closure captures",
        fix_hint: "the closure's context keeps a large value alive: set that variable to null after use, or create the closure in a scope that does not hold it",
        heap_pattern: "closure_retention",
        default_severity: Severity::Info,
    },
    Rule {
        id: "stream-not-consumed",
        description: "a stream created and stored, never read, piped, resumed or destroyed",
        fix_hint: "a stream buffers data nobody reads: consume it (pipe, resume, for await) or destroy it",
        heap_pattern: "unconsumed_stream",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "agent-per-call",
        description: "a keep-alive HTTP agent or connection pool created per call",
        fix_hint: "sockets pile up in an http.Agent: create one agent per process and share it, consume or destroy every response, and set maxSockets / maxFreeSockets / timeouts",
        heap_pattern: "agent_sockets",
        default_severity: Severity::Warning,
    },
    Rule {
        id: "max-listeners-unbounded",
        description: "setMaxListeners(0) or Infinity turns off Node's MaxListenersExceededWarning, the only sign of a listener leak",
        fix_hint: "keep the default limit, or set a real bound; remove the listener when its work is done (emitter.off / removeListener, e.g. on 'close'), or register it once",
        heap_pattern: "listener_accumulation",
        default_severity: Severity::Warning,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_indexed() {
        for (i, r) in RuleId::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
            assert_eq!(RuleId::parse(r.as_str()), Some(r));
            assert!(!r.rule().fix_hint.is_empty());
        }
        assert_eq!(RuleId::parse("no-such-rule"), None);
    }
}
