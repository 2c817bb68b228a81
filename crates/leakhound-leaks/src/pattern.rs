//! The leak patterns as one ordered table, [`PATTERNS`]: an entry is one pattern, with its
//! wire name, its one-line fix hint and its detector, a function over [`ClusterFacts`]
//! (what a cluster's holder, representative root and sizes look like). Adding a pattern
//! is adding an entry; its place in the table is its priority. Plain data: this module
//! imports nothing from the crate (the facts are gathered in `cluster.rs`).

use std::fmt;

/// What kind of leak a cluster is: one entry of the crate's pattern table, which gives it
/// a snake_case name ([`Pattern::as_str`], the `pattern` value in JSON, such as
/// `listener_accumulation` or `uncleared_timer`) and a fix hint. Patterns compare by name.
#[derive(Clone, Copy)]
pub struct Pattern(&'static PatternRule);

impl Pattern {
    /// An EventEmitter's listener array keeps growing.
    pub(crate) const LISTENER_ACCUMULATION: Pattern = Pattern::builtin("listener_accumulation");
    /// A Map, Set, Array or plain object whose size only grows.
    pub(crate) const UNBOUNDED_COLLECTION: Pattern = Pattern::builtin("unbounded_collection");
    /// Buffers, ArrayBuffers and typed arrays growing off the JS heap.
    pub(crate) const EXTERNAL_MEMORY: Pattern = Pattern::builtin("external_memory");
    /// None of the others: what a table without a catch-all entry falls back to.
    pub(crate) const OTHER: Pattern = Pattern::builtin("other");
    /// `growing_string`.
    pub(crate) const GROWING_STRING: Pattern = Pattern::builtin("growing_string");

    /// The snake_case name used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// A one-line fix hint, addressed to the app's author.
    pub fn fix_hint(self) -> &'static str {
        self.0.fix_hint
    }

    /// The entry of [`PATTERNS`] named `name`. Evaluated at compile time where used in a
    /// constant, so a name missing from the table is a build error, not a runtime one.
    const fn builtin(name: &str) -> Pattern {
        let mut i = 0;
        while i < PATTERNS.len() {
            if same_str(PATTERNS[i].name, name) {
                return Pattern(&PATTERNS[i]);
            }
            i += 1;
        }
        panic!("no pattern of that name in PATTERNS");
    }
}

/// `a == b`, usable in a `const fn`.
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Patterns are the same when their names are.
impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the pattern table: everything about one pattern.
pub(crate) struct PatternRule {
    /// The snake_case wire name ([`Pattern::as_str`]).
    pub(crate) name: &'static str,
    /// The one-line fix hint ([`Pattern::fix_hint`]).
    pub(crate) fix_hint: &'static str,
    /// How well a cluster fits the pattern.
    pub(crate) detect: fn(&ClusterFacts<'_>) -> Fit,
}

/// How well a cluster fits a pattern, worst first; see [`PATTERNS`] for how fits are
/// ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fit {
    /// Not this pattern.
    No,
    /// Where the growth hangs says this pattern, nothing more specific does.
    Weak,
    /// What accumulates, or the Node mechanism that keeps it, says this pattern.
    Strong,
}

/// What the detectors read of a cluster: its holder, its representative root (the root
/// with the largest retained size) and its sizes, all in the last snapshot.
#[derive(Debug, Clone)]
pub(crate) struct ClusterFacts<'a> {
    /// The holder's label (`lifecycle._events.shutdown`, `agent.freeSockets`).
    pub(crate) label: &'a str,
    /// DevTools class of the holder (`Map`, `Array`, `TimersList`, `{a, b}` for an object
    /// literal's shape).
    pub(crate) holder_class: &'a str,
    /// DevTools class of the representative root (`Timeout`, `Socket`, a function name).
    pub(crate) root_class: &'a str,
    /// The representative root is a closure.
    pub(crate) root_is_closure: bool,
    /// Name of the edge into the holder on its retainer trace (empty at the top).
    pub(crate) holder_edge: String,
    /// Name of the edge into the holder's parent on the trace (empty at the top).
    pub(crate) holder_parent_edge: String,
    /// DevTools classes of the holder and of up to 7 nodes above it on its trace, holder
    /// first.
    pub(crate) holder_chain: Vec<&'a str>,
    /// Within 6 steps up its trace, and before any closure-context edge, the holder hangs
    /// off the global object.
    pub(crate) anchored_global: bool,
    /// Retained bytes per leak root (the cluster's retained size, no double counting,
    /// over its number of roots; 0 without roots).
    pub(crate) retained_per_root: u64,
    /// Share of the retained size that is ArrayBuffer backing stores, 0 to 1.
    pub(crate) external_share: f64,
    /// The shape of the leak when no collection grows ([`Shape::Plain`] when one does).
    pub(crate) shape: Shape,
    /// Classes of the leaked objects in the cluster, most first (set for objects kept by
    /// native handles only).
    pub(crate) kept_classes: Vec<&'a str>,
}

/// The shape of a leak whose holder keeps no growing collection, as the finder saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A holder whose direct elements grow (a Map, an array, a listener list).
    Plain,
    /// A chain of closure contexts, each keeping the one before through a variable.
    ContextChain,
    /// A chain of promises, each kept by the reactions of the one before.
    PromiseChain,
    /// Another chain of repeated links.
    LinkChain,
    /// Objects kept only by native handles (each handle its own GC root).
    NativeHandle,
}

impl ClusterFacts<'_> {
    /// The holder or one of the 7 nodes above it is of class `class`.
    fn chain_has(&self, class: &str) -> bool {
        self.holder_chain.contains(&class)
    }

    /// The cluster's leaked objects include objects of class `class`.
    fn keeps(&self, class: &str) -> bool {
        self.kept_classes.contains(&class)
    }

    /// The holder is an EventEmitter's `_events` object or a listener array in it, or an
    /// EventTarget's (an AbortSignal's) listener list, under its `kEvents` Map.
    fn under_events(&self) -> bool {
        self.holder_parent_edge == "_events"
            || self.label.contains("._events.")
            || self.holder_edge == "_events"
            || self.label.contains("[Symbol(kEvents)]")
    }

    /// The representative root is a listener: a closure, or the `Listener` record Node's
    /// EventTarget keeps per `addEventListener` under `kEvents`.
    fn root_is_listener(&self) -> bool {
        self.root_is_closure || (self.root_class == "Listener" && self.label.contains("[Symbol(kEvents)]"))
    }
}

/// The leak patterns, in priority order. A cluster gets the pattern that fits it best
/// ([`Fit::Strong`] before [`Fit::Weak`]), the earliest in the table among equal fits;
/// `other`, last, fits everything weakly. Written out, the order is:
///
/// 1. strong: `listener_accumulation` (a closure under `_events`, an EventTarget's
///    `Listener` under `kEvents`), `uncleared_timer`,
///    `agent_sockets` (also Agents kept by native handles), `unconsumed_stream` (also
///    sockets kept by their handles with buffered data), `promise_chain`,
///    `growing_string` (a string variable's string), `closure_retention` (a chain of
///    closure contexts, a closure keeping mostly backing stores, or at least 4 KiB per
///    root), `external_memory` (more than half of the retained size is backing stores);
/// 2. weak: `listener_accumulation` (anything under `_events`), `open_handles` (objects
///    kept only by native handles), `global_variable`, `unbounded_collection`,
///    `closure_retention` (a closure keeping at least 1 KiB per root), `other`.
///
/// So a listener closure is a listener leak before anything else, a collection hanging off
/// a global is a global variable, and a closure keeping a large buffer is closure
/// retention even when it sits in a collection.
pub(crate) const PATTERNS: &[PatternRule] = &[
    // An EventEmitter's listener array keeps growing.
    PatternRule {
        name: "listener_accumulation",
        fix_hint: "remove the listener when its work is done (emitter.off / removeListener, e.g. on 'close'), or register it once",
        detect: |f| match (f.under_events(), f.root_is_listener()) {
            (true, true) => Fit::Strong,
            (true, false) => Fit::Weak,
            (false, _) => Fit::No,
        },
    },
    // `Timeout` objects kept by the timer lists (intervals never cleared).
    PatternRule {
        name: "uncleared_timer",
        fix_hint: "keep the timer handle and clearInterval/clearTimeout it when its owner is done (or unref() short-lived ones)",
        detect: |f| {
            strong_if(
                f.root_class == "Timeout"
                    || f.root_class == "Immediate"
                    || f.holder_class == "TimersList"
                    || f.chain_has("TimersList"),
            )
        },
    },
    // Sockets kept by an http Agent.
    PatternRule {
        name: "agent_sockets",
        fix_hint: "sockets pile up in an http.Agent: share one Agent instead of one per request (or destroy it when done), consume or destroy every response, and set maxSockets / maxFreeSockets / timeouts",
        detect: |f| {
            // A handle group's label names sockets too (`… handles (client sockets)`):
            // only what its sockets keep decides.
            if f.shape == Shape::NativeHandle {
                return strong_if(f.keeps("Agent"));
            }
            strong_if(
                f.label.contains("sockets")
                    || f.label.contains("freeSockets")
                    || (f.chain_has("Agent") && f.root_class.contains("Socket")),
            )
        },
    },
    // Buffered data of streams nobody reads.
    PatternRule {
        name: "unconsumed_stream",
        fix_hint: "a stream buffers data nobody reads: consume it (pipe, resume, for await) or destroy it",
        detect: |f| {
            strong_if(
                f.holder_class == "BufferList"
                    || f.label.contains("_readableState.buffer")
                    || f.label.contains("_writableState")
                    || (f.shape == Shape::NativeHandle && f.keeps("ReadableState") && f.external_share > 0.25),
            )
        },
    },
    // A chain of promises that never settles, each link kept by the one before.
    PatternRule {
        name: "promise_chain",
        fix_hint: "a promise chain never settles and each link keeps the next: settle (or time out) the promise it waits on, and do not chain every request onto one long-lived promise",
        detect: |f| strong_if(f.shape == Shape::PromiseChain),
    },
    // A string grown with `+=` and kept by one variable.
    PatternRule {
        name: "growing_string",
        fix_hint: "a string grows at every request (`+=`): write it out (a stream, a logger) or keep a bounded buffer",
        detect: |f| {
            let string = |c: &str| matches!(c, "(string)" | "(concatenated string)" | "(sliced string)");
            strong_if(string(f.holder_class) && string(f.root_class))
        },
    },
    // Handles opened and never closed (each one its own GC root).
    PatternRule {
        name: "open_handles",
        fix_hint: "native handles (sockets, watchers, file handles) are opened and never closed: close or destroy each one when its work is done",
        detect: |f| {
            if f.shape == Shape::NativeHandle {
                Fit::Weak
            } else {
                Fit::No
            }
        },
    },
    // Growth hanging off the global object.
    PatternRule {
        name: "global_variable",
        fix_hint: "growth hangs off a global: scope it to a module or request, bound it, or clear it",
        detect: |f| if f.anchored_global { Fit::Weak } else { Fit::No },
    },
    // A Map, Set, Array or plain object whose size only grows.
    PatternRule {
        name: "unbounded_collection",
        fix_hint: "bound the collection: evict old entries (an LRU with a max size, or a TTL) or delete each entry when it is no longer needed",
        detect: |f| {
            if matches!(f.holder_class, "Map" | "Set" | "Array" | "Object" | "WeakMap")
                || f.holder_class.starts_with('{')
            {
                Fit::Weak
            } else {
                Fit::No
            }
        },
    },
    // A closure or its shared context keeps a large object alive.
    PatternRule {
        name: "closure_retention",
        fix_hint: "the closure's context keeps a large value alive: set that variable to null after use, or create the closure in a scope that does not hold it",
        detect: |f| {
            if f.shape == Shape::ContextChain {
                Fit::Strong
            } else if !f.root_is_closure {
                Fit::No
            } else if f.external_share > 0.5 || f.retained_per_root >= 4096 {
                Fit::Strong
            } else if f.retained_per_root >= 1024 {
                Fit::Weak
            } else {
                Fit::No
            }
        },
    },
    // Buffers, ArrayBuffers and typed arrays growing off the JS heap.
    PatternRule {
        name: "external_memory",
        fix_hint: "Buffers/ArrayBuffers stay alive through a JS reference: drop the reference, or copy out only the bytes you need",
        detect: |f| strong_if(f.external_share > 0.5),
    },
    // None of the above.
    PatternRule {
        name: "other",
        fix_hint: "follow the retainer trace to the first object your code owns and release the reference there",
        detect: |_| Fit::Weak,
    },
];

/// [`PATTERNS`] with `rule` inserted at position `at`, for tests that add a pattern.
#[cfg(test)]
pub(crate) fn extended_table(at: usize, rule: PatternRule) -> &'static [PatternRule] {
    let mut table: Vec<PatternRule> = PATTERNS
        .iter()
        .map(|r| PatternRule {
            name: r.name,
            fix_hint: r.fix_hint,
            detect: r.detect,
        })
        .collect();
    table.insert(at, rule);
    Vec::leak(table)
}

/// [`Fit::Strong`] when `fits`, else [`Fit::No`]: for patterns with only a strong form.
fn strong_if(fits: bool) -> Fit {
    if fits { Fit::Strong } else { Fit::No }
}

/// The pattern of a cluster with `facts` by `table` (ranked as [`PATTERNS`] is): the best
/// fit, the earliest among equals; [`Pattern::OTHER`] when nothing fits.
pub(crate) fn classify(table: &'static [PatternRule], facts: &ClusterFacts<'_>) -> Pattern {
    let mut best: Option<(Fit, &'static PatternRule)> = None;
    for rule in table {
        let fit = (rule.detect)(facts);
        if fit > best.map_or(Fit::No, |(b, _)| b) {
            best = Some((fit, rule));
        }
    }
    best.map_or(Pattern::OTHER, |(_, rule)| Pattern(rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Facts of a cluster no detector but `other` fits.
    fn plain() -> ClusterFacts<'static> {
        ClusterFacts {
            label: "server.stats",
            holder_class: "Stats",
            root_class: "Entry",
            root_is_closure: false,
            holder_edge: "stats".into(),
            holder_parent_edge: "server".into(),
            holder_chain: vec!["Stats", "Server"],
            anchored_global: false,
            retained_per_root: 100,
            external_share: 0.0,
            shape: Shape::Plain,
            kept_classes: Vec::new(),
        }
    }

    fn check(facts: ClusterFacts<'static>, want: &str) {
        assert_eq!(classify(PATTERNS, &facts).as_str(), want, "{facts:?}");
    }

    #[test]
    fn every_pattern_has_an_entry_a_hint_and_a_unique_name() {
        for (i, rule) in PATTERNS.iter().enumerate() {
            assert!(!rule.fix_hint.is_empty(), "{}", rule.name);
            assert!(PATTERNS[..i].iter().all(|r| r.name != rule.name), "{} twice", rule.name);
        }
        assert_eq!(Pattern::LISTENER_ACCUMULATION.as_str(), "listener_accumulation");
        assert_eq!(Pattern::UNBOUNDED_COLLECTION.as_str(), "unbounded_collection");
        assert_eq!(Pattern::OTHER.to_string(), "other");
        assert_eq!(PATTERNS.last().map(|r| r.name), Some("other"));
    }

    #[test]
    fn an_event_targets_listeners_are_a_listener_leak() {
        // `signal.addEventListener('abort', fn)` per request: Node keeps a `Listener`
        // record per call in the list under the EventTarget's `kEvents` Map.
        let abort = ClusterFacts {
            label: "shutdown.#signal[Symbol(kEvents)]",
            holder_class: "Object",
            root_class: "Listener",
            holder_edge: "6".into(),
            holder_parent_edge: "table".into(),
            ..plain()
        };
        check(abort.clone(), "listener_accumulation");
        // An app's own class named `Listener` in an ordinary collection is not one.
        check(
            ClusterFacts {
                label: "registry.listeners",
                holder_class: "Map",
                ..abort
            },
            "unbounded_collection",
        );
    }

    #[test]
    fn strong_fits_come_before_weak_ones_whatever_their_place() {
        // A listener closure in a Map hanging off a global: the strong listener fit wins.
        let listener = ClusterFacts {
            holder_edge: "_events".into(),
            root_is_closure: true,
            holder_class: "Map",
            anchored_global: true,
            ..plain()
        };
        check(listener.clone(), "listener_accumulation");
        // Not a closure: a timer under `_events` is a timer (strong) before a listener (weak).
        let timer = ClusterFacts {
            root_is_closure: false,
            root_class: "Timeout",
            ..listener.clone()
        };
        check(timer, "uncleared_timer");
        // A closure keeping 2 KiB in a global Map: global (weak) before closure (weak).
        let small_closure = ClusterFacts {
            root_is_closure: true,
            holder_class: "Map",
            anchored_global: true,
            retained_per_root: 2048,
            ..plain()
        };
        check(small_closure.clone(), "global_variable");
        check(
            ClusterFacts {
                anchored_global: false,
                ..small_closure.clone()
            },
            "unbounded_collection",
        );
        check(
            ClusterFacts {
                anchored_global: false,
                holder_class: "Stats",
                ..small_closure.clone()
            },
            "closure_retention",
        );
        // 4 KiB per root makes it strong: closure retention before global and collection.
        check(
            ClusterFacts {
                retained_per_root: 4096,
                ..small_closure
            },
            "closure_retention",
        );
        check(
            ClusterFacts {
                external_share: 0.6,
                holder_class: "Array",
                ..plain()
            },
            "external_memory",
        );
        check(plain(), "other");
    }
}
