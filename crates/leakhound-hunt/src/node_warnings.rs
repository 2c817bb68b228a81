//! Node's own word on a listener leak: the `MaxListenersExceededWarning` it prints when an
//! emitter gets more listeners for one event than its limit (10 by default), read from the
//! app's output lines as the hunt relays them.
//!
//! The line shapes, from node's `lib/events.js` (`_addListener`) and
//! `lib/internal/event_target.js`, as `process.emitWarning` prints them on stderr:
//!
//! ```text
//! (node:4711) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit
//! (node:4711) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. Use emitter.setMaxListeners() to increase limit
//! (node:4711) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]. MaxListeners is 10. Use events.setMaxListeners() to increase limit
//! ```
//!
//! (node 20 and later name the limit; node 16-18 do not; node 14 and older print no
//! `added to [CLASS]`). With `--trace-warnings` the stack follows, one `    at …` line per
//! frame; its first frame outside node's own code is where the listener was added.
//! Node warns once per emitter and event, so the number of warnings of one event and
//! class is the number of emitters that went over their limit (one per kept
//! connection for a listener added to each request's socket).

use std::fmt;

/// The warning's name as node prints it.
pub const MAX_LISTENERS_WARNING: &str = "MaxListenersExceededWarning";

/// How many distinct (class, event) warnings are kept; more are counted, not stored.
const MAX_KINDS: usize = 32;

/// How many stack frames of a `--trace-warnings` stack are kept.
const MAX_FRAMES: usize = 16;

/// Node's warning of listeners piling up on one emitter's event, grouped over every
/// emitter of one class that warned for that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerWarning {
    /// `EventEmitter` or `EventTarget` (which of node's two warned).
    pub emitter_kind: String,
    /// The emitter's class as node inspects it (`Socket`, `Server`, `AbortSignal`), when
    /// the line names it (node ≥ 16).
    pub emitter_class: Option<String>,
    /// The event (`close`, `error`, `Symbol(kFoo)`).
    pub event: String,
    /// The listener count node reported (the highest, over the emitters that warned).
    pub listener_count: u64,
    /// The limit node reported (`MaxListeners is 10`), when the line names it (node ≥ 20).
    pub max_listeners: Option<u64>,
    /// How many warnings of this class and event node printed: one per emitter.
    pub emitters_warned: u64,
    /// The pid in the line's `(node:PID)` prefix, of the first warning.
    pub pid: Option<u32>,
    /// The first warning's line, as node printed it.
    pub message: String,
    /// With `--trace-warnings`: the first warning's stack frames (`at …`, without the
    /// indentation), at most 16.
    pub stack: Vec<String>,
}

impl ListenerWarning {
    /// Where the listener was added: the first frame of the stack outside node's own code
    /// (`node:…`, `internal/…`), e.g. `Server.<anonymous> (/srv/app.js:12:17)`.
    pub fn added_at(&self) -> Option<&str> {
        self.stack.iter().map(String::as_str).find(|f| {
            let place = f.rsplit_once('(').map_or(*f, |(_, p)| p.trim_end_matches(')'));
            !(place.starts_with("node:")
                || place.starts_with("internal/")
                || place.starts_with("events.js")
                || place == "<anonymous>"
                || place.is_empty())
        })
    }

    /// Whether the emitter is a network socket (a `Socket`, `TLSSocket`): one per
    /// connection, so its listeners pile up only on a connection kept open.
    pub fn on_socket(&self) -> bool {
        matches!(self.emitter_class.as_deref(), Some("Socket" | "TLSSocket"))
    }

    /// `11 close listeners added to [Socket]` (with `(on 10 emitters)` when several
    /// warned): the warning in node's own words, short.
    pub fn headline(&self) -> String {
        let mut s = format!("{} {} listeners added", self.listener_count, self.event);
        if let Some(c) = &self.emitter_class {
            s.push_str(&format!(" to [{c}]"));
        }
        if self.emitters_warned > 1 {
            s.push_str(&format!(" (on {} emitters)", self.emitters_warned));
        }
        s
    }
}

impl fmt::Display for ListenerWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node warned: {}", self.headline())?;
        if let Some(at) = self.added_at() {
            write!(f, ", added at {at}")?;
        }
        Ok(())
    }
}

/// One `MaxListenersExceededWarning` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    emitter_kind: String,
    emitter_class: Option<String>,
    event: String,
    listener_count: u64,
    max_listeners: Option<u64>,
    pid: Option<u32>,
}

/// Parses one line of the app's output as node's listener warning; `None` for any other
/// line (including a warning of another name).
fn parse_line(line: &str) -> Option<Parsed> {
    let at = line.find(MAX_LISTENERS_WARNING)?;
    let pid = line[..at].rfind("(node:").and_then(|p| {
        let digits: String = line[p + 6..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    let rest = line[at + MAX_LISTENERS_WARNING.len()..].strip_prefix(": ")?;
    let rest = rest.strip_prefix("Possible ")?;
    let (emitter_kind, rest) = rest.split_once(" memory leak detected. ")?;
    if emitter_kind.is_empty() || emitter_kind.contains(' ') {
        return None;
    }
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let listener_count: u64 = rest[..digits_end].parse().ok()?;
    let rest = rest[digits_end..].strip_prefix(' ')?;
    let (event, rest) = rest.split_once(" listeners added")?;
    let emitter_class = rest.strip_prefix(" to ").and_then(|r| {
        let r = r.strip_prefix('[')?;
        // `[Socket]`, `[Object: null prototype]`: up to the first `]`.
        let end = r.find(']')?;
        Some(r[..end].to_owned()).filter(|c| !c.is_empty())
    });
    let max_listeners = rest.split_once("MaxListeners is ").and_then(|(_, r)| {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    Some(Parsed {
        emitter_kind: emitter_kind.to_owned(),
        emitter_class,
        event: event.to_owned(),
        listener_count,
        max_listeners,
        pid,
    })
}

/// Reads an app's output lines, one at a time, and keeps node's listener warnings among
/// them, grouped by emitter class and event (at most 32 groups, each with its first
/// warning's stack of at most 16 frames: bounded whatever the app prints).
#[derive(Debug, Default, Clone)]
pub struct NodeWarnings {
    warnings: Vec<ListenerWarning>,
    /// The group the last warning line went to, while its `--trace-warnings` stack may
    /// follow (and whether that stack is the group's first).
    open: Option<(usize, bool)>,
    /// Warnings of groups beyond the first 32.
    dropped: u64,
}

impl NodeWarnings {
    /// An empty reader.
    pub fn new() -> NodeWarnings {
        NodeWarnings::default()
    }

    /// Reads one line of the app's output (stdout or stderr, without its line break).
    pub fn feed(&mut self, line: &str) {
        if let Some(p) = parse_line(line) {
            self.open = None;
            let group = self.warnings.iter().position(|w| {
                w.emitter_class == p.emitter_class && w.event == p.event && w.emitter_kind == p.emitter_kind
            });
            match group {
                Some(i) => {
                    let w = &mut self.warnings[i];
                    w.emitters_warned += 1;
                    w.listener_count = w.listener_count.max(p.listener_count);
                    self.open = Some((i, w.stack.is_empty()));
                }
                None if self.warnings.len() < MAX_KINDS => {
                    self.warnings.push(ListenerWarning {
                        emitter_kind: p.emitter_kind,
                        emitter_class: p.emitter_class,
                        event: p.event,
                        listener_count: p.listener_count,
                        max_listeners: p.max_listeners,
                        emitters_warned: 1,
                        pid: p.pid,
                        message: line.chars().take(400).collect(),
                        stack: Vec::new(),
                    });
                    self.open = Some((self.warnings.len() - 1, true));
                }
                None => self.dropped += 1,
            }
            return;
        }
        let Some((i, first)) = self.open else { return };
        match line.strip_prefix("    at ") {
            Some(frame) => {
                let stack = &mut self.warnings[i].stack;
                if first && stack.len() < MAX_FRAMES {
                    stack.push(frame.chars().take(300).collect());
                }
            }
            None => self.open = None,
        }
    }

    /// The warnings read so far, in the order node first printed each.
    pub fn warnings(&self) -> &[ListenerWarning] {
        &self.warnings
    }

    /// Warnings of kinds beyond the 32 kept (counted only).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether no listener warning was read.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// A hunt that found nothing growing while node warned of a listener leak cannot say
/// `no_leak`: the reason (naming the first warning) and what would decide it, or None
/// when node did not warn. `kept`: whether the load kept its connections open across the
/// phases (the sockets' listeners were then in every snapshot).
pub(crate) fn undecided(warnings: &[ListenerWarning], kept: bool) -> Option<(String, String)> {
    let w = warnings.first()?;
    let more = match warnings.len() {
        1 => String::new(),
        2 => " (and 1 more warning)".to_owned(),
        n => format!(" (and {} more warnings)", n - 1),
    };
    let reason = format!(
        "no object cluster keeps growing in the snapshots, but {w}{more}: more listeners than its limit were added to one event of an emitter, the sign of a listener added per request and never removed"
    );
    let trace = match w.added_at() {
        Some(at) => format!(
            "check that the listener added at {at} is removed when its request ends (off / removeListener, or once)"
        ),
        None => "run the app with NODE_OPTIONS=--trace-warnings to see where the listeners are added".to_owned(),
    };
    let next = if w.on_socket() && !kept {
        format!(
            "a hunt whose load keeps its connections open across the phases (the built-in load without --fresh-connections), so the listeners piled on each connection's socket are in every snapshot; {trace}"
        )
    } else if w.on_socket() {
        format!(
            "{trace}; the connections were kept open, so if the listeners did not grow through the snapshots the app bounds them (a limit above 10 is set with setMaxListeners()), else a longer hunt (--phases 4) shows them growing"
        )
    } else {
        format!(
            "{trace}; a longer hunt (--phases 4) shows whether they keep growing, and an emitter that needs more than 10 listeners says so with setMaxListeners()"
        )
    };
    Some((reason, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_node_20s_warning_about_a_socket() {
        let mut w = NodeWarnings::new();
        w.feed("(node:48213) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit");
        w.feed("(Use `node --trace-warnings ...` to show where the warning was created)");
        let [one] = w.warnings() else { panic!("{w:?}") };
        assert_eq!(one.emitter_kind, "EventEmitter");
        assert_eq!(one.emitter_class.as_deref(), Some("Socket"));
        assert_eq!(one.event, "close");
        assert_eq!(one.listener_count, 11);
        assert_eq!(one.max_listeners, Some(10));
        assert_eq!(one.pid, Some(48213));
        assert!(one.stack.is_empty() && one.added_at().is_none());
        assert!(one.on_socket());
        assert_eq!(one.to_string(), "node warned: 11 close listeners added to [Socket]");
    }

    #[test]
    fn older_and_event_target_shapes() {
        // node 16-18: no "MaxListeners is".
        let p = parse_line("(node:7) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 error listeners added to [Socket]. Use emitter.setMaxListeners() to increase limit").expect("node 18");
        assert_eq!(
            (p.event.as_str(), p.emitter_class.as_deref(), p.max_listeners),
            ("error", Some("Socket"), None)
        );
        // node 14: no class either.
        let p = parse_line("(node:7) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 reload listeners added. Use emitter.setMaxListeners() to increase limit").expect("node 14");
        assert_eq!((p.event.as_str(), p.emitter_class), ("reload", None));
        let p = parse_line("(node:9) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]. MaxListeners is 10. Use events.setMaxListeners() to increase limit").expect("EventTarget");
        assert_eq!(
            (p.emitter_kind.as_str(), p.event.as_str(), p.emitter_class.as_deref()),
            ("EventTarget", "abort", Some("AbortSignal"))
        );
        // A Symbol event, a null-prototype emitter.
        let p = parse_line("(node:9) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 12 Symbol(kDone) listeners added to [Object: null prototype]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit").expect("symbol");
        assert_eq!((p.event.as_str(), p.listener_count), ("Symbol(kDone)", 12));
        assert_eq!(p.emitter_class.as_deref(), Some("Object: null prototype"));
        // Other warnings and other lines are not it.
        for other in [
            "(node:7) DeprecationWarning: Buffer() is deprecated due to security and usability issues.",
            "(node:7) MaxListenersExceededWarning: something else",
            "GET /api 200 MaxListenersExceededWarning",
            "",
        ] {
            assert_eq!(parse_line(other), None, "{other}");
        }
    }

    #[test]
    fn groups_emitters_and_keeps_the_first_stack() {
        let mut w = NodeWarnings::new();
        let warn = |pid: u32, n: u32| {
            format!(
                "(node:{pid}) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. {n} close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit"
            )
        };
        w.feed(&warn(5, 11));
        for frame in [
            "    at genericNodeError (node:internal/errors:984:15)",
            "    at _addListener (node:events:587:17)",
            "    at Socket.addListener (node:events:606:10)",
            "    at Server.<anonymous> (/srv/app.js:12:17)",
            "    at Server.emit (node:events:519:28)",
        ] {
            w.feed(frame);
        }
        w.feed("app listening");
        w.feed("    at not.a.frame (/x.js:1:1)");
        w.feed(&warn(5, 11));
        w.feed("    at other (/srv/other.js:1:1)");
        w.feed(&warn(5, 13));
        let [one] = w.warnings() else { panic!("{w:?}") };
        assert_eq!(one.emitters_warned, 3);
        assert_eq!(one.listener_count, 13);
        assert_eq!(one.stack.len(), 5);
        assert_eq!(one.added_at(), Some("Server.<anonymous> (/srv/app.js:12:17)"));
        assert_eq!(
            one.to_string(),
            "node warned: 13 close listeners added to [Socket] (on 3 emitters), added at Server.<anonymous> (/srv/app.js:12:17)"
        );
    }

    /// `node --trace-warnings` (v20.20) on a script adding 11 listeners to an
    /// EventEmitter, an AbortSignal and a subclass's Symbol event: its stderr as printed.
    const NODE20_TRACE_WARNINGS: &str = "\
(node:15542) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [EventEmitter]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit
    at genericNodeError (node:internal/errors:984:15)
    at wrappedFn (node:internal/errors:538:14)
    at _addListener (node:events:598:17)
    at EventEmitter.addListener (node:events:616:10)
    at add (/tmp/conns-try/w.js:3:20)
    at Object.<anonymous> (/tmp/conns-try/w.js:4:30)
    at Module._compile (node:internal/modules/cjs/loader:1521:14)
    at Module._extensions..js (node:internal/modules/cjs/loader:1623:10)
    at Module.load (node:internal/modules/cjs/loader:1266:32)
    at Module._load (node:internal/modules/cjs/loader:1091:12)
(node:15542) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]. MaxListeners is 10. Use events.setMaxListeners() to increase limit
    at [kNewListener] (node:internal/event_target:566:17)
    at [kNewListener] (node:internal/abort_controller:240:24)
    at EventTarget.addEventListener (node:internal/event_target:690:23)
    at Object.<anonymous> (/tmp/conns-try/w.js:6:40)
    at Module._compile (node:internal/modules/cjs/loader:1521:14)
    at node:internal/main/run_main_module:28:49
(node:15542) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 Symbol(kTick) listeners added to [Hub]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit
    at genericNodeError (node:internal/errors:984:15)
    at wrappedFn (node:internal/errors:538:14)
    at _addListener (node:events:598:17)
    at Hub.addListener (node:events:616:10)
    at Object.<anonymous> (/tmp/conns-try/w.js:11:32)
listening on 3000";

    /// Kind, class, event, count and where added, of one warning.
    type Row<'a> = (&'a str, Option<&'a str>, &'a str, u64, Option<&'a str>);

    #[test]
    fn reads_real_trace_warnings_output_of_node_20() {
        let mut w = NodeWarnings::new();
        for line in NODE20_TRACE_WARNINGS.lines() {
            w.feed(line);
        }
        let got: Vec<Row<'_>> = w
            .warnings()
            .iter()
            .map(|x| {
                (
                    x.emitter_kind.as_str(),
                    x.emitter_class.as_deref(),
                    x.event.as_str(),
                    x.listener_count,
                    x.added_at(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "EventEmitter",
                    Some("EventEmitter"),
                    "close",
                    11,
                    Some("add (/tmp/conns-try/w.js:3:20)")
                ),
                (
                    "EventTarget",
                    Some("AbortSignal"),
                    "abort",
                    11,
                    Some("Object.<anonymous> (/tmp/conns-try/w.js:6:40)")
                ),
                (
                    "EventEmitter",
                    Some("Hub"),
                    "Symbol(kTick)",
                    11,
                    Some("Object.<anonymous> (/tmp/conns-try/w.js:11:32)")
                ),
            ]
        );
        assert!(
            w.warnings()
                .iter()
                .all(|x| x.pid == Some(15542) && x.max_listeners == Some(10))
        );
        assert_eq!(w.warnings()[0].stack.len(), 10);
        assert_eq!(w.warnings()[2].stack.len(), 5, "the app's own line ends the stack");
    }

    #[test]
    fn a_warning_leaves_the_hunt_undecided_with_what_would_decide_it() {
        assert_eq!(undecided(&[], true), None);
        let mut w = NodeWarnings::new();
        w.feed("(node:5) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 close listeners added to [Socket]. MaxListeners is 10. Use emitter.setMaxListeners() to increase limit");
        let (why, next) = undecided(w.warnings(), false).expect("undecided");
        assert!(
            why.contains("node warned: 11 close listeners added to [Socket]"),
            "{why}"
        );
        assert!(
            next.contains("without --fresh-connections") && next.contains("--trace-warnings"),
            "{next}"
        );
        let (_, next) = undecided(w.warnings(), true).expect("undecided");
        assert!(
            !next.contains("--fresh-connections") && next.contains("--phases"),
            "{next}"
        );
    }

    #[test]
    fn kinds_are_bounded() {
        let mut w = NodeWarnings::new();
        for i in 0..100 {
            w.feed(&format!("(node:1) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 11 e{i} listeners added to [X]. Use emitter.setMaxListeners() to increase limit"));
            for _ in 0..100 {
                w.feed("    at f (/a.js:1:1)");
            }
        }
        assert_eq!(w.warnings().len(), MAX_KINDS);
        assert_eq!(w.dropped(), 100 - MAX_KINDS as u64);
        assert!(w.warnings().iter().all(|x| x.stack.len() == MAX_FRAMES));
    }
}
