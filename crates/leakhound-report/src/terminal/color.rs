//! Colour for text reports on a terminal. The renderers write plain text; [`Highlight`]
//! colours the few lines a person looks for first (the verdict, cluster headlines,
//! warnings, node's own listener warnings, fixes) by what they start with, so colour never changes what is printed and
//! a report piped to a file or a test is byte for byte the plain one.
//!
//! Whether to colour is [`color_enabled`]: `--color always|never` decide; `auto` colours
//! only a terminal, and never when `NO_COLOR` is set to a non-empty value
//! (<https://no-color.org>) or `TERM` is `dumb`. `Highlight` sits *after*
//! [`super::TerminalSafe`] on the way out, so control characters from a snapshot are
//! already visible escapes when it adds its own SGR sequences.

use std::ffi::OsStr;
use std::io::{self, Write};

/// The user's `--color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour a terminal unless `NO_COLOR` or `TERM=dumb` says not to.
    #[default]
    Auto,
    /// Always colour (overrides `NO_COLOR`, as a per-command flag should).
    Always,
    /// Never colour.
    Never,
}

/// Whether a text report goes out in colour: `choice`, whether the output is a terminal,
/// and the values of the `NO_COLOR` and `TERM` environment variables.
pub fn color_enabled(choice: ColorChoice, is_terminal: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(OsStr::is_empty) && term.is_none_or(|t| t != "dumb"),
    }
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const BOLD_RED: &str = "\x1b[1;31m";
const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD_YELLOW: &str = "\x1b[1;33m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";

/// How one line is coloured: `style` over its first `len` bytes (`None`: the whole line).
struct Paint {
    style: &'static str,
    len: Option<usize>,
}

/// The colouring of a line by its start, or `None` to leave it plain.
fn paint_of(line: &[u8]) -> Option<Paint> {
    // A word at the start of the line, followed by `:` or a space (`LEAK:`, not `LEAKY`).
    let word = |style, w: &str| {
        let next = line.get(w.len()).copied();
        (line.starts_with(w.as_bytes()) && (w.ends_with(':') || matches!(next, Some(b':' | b' ')))).then_some(Paint {
            style,
            len: Some(w.len()),
        })
    };
    word(BOLD_RED, "LEAK")
        .or_else(|| word(BOLD_GREEN, "NO LEAK"))
        .or_else(|| word(BOLD_YELLOW, "INCONCLUSIVE"))
        .or_else(|| word(YELLOW, "warning:"))
        .or_else(|| word(YELLOW, "   node warned:"))
        .or_else(|| word(BOLD_YELLOW, "no cluster:"))
        .or_else(|| word(CYAN, "   fix:"))
        .or_else(|| {
            // A cluster's headline: `#1 pattern — holder …`.
            let digits = line.iter().skip(1).take_while(|b| b.is_ascii_digit()).count();
            (line.first() == Some(&b'#') && digits > 0 && line.get(1 + digits) == Some(&b' '))
                .then_some(Paint { style: BOLD, len: None })
        })
}

/// A writer that colours whole lines of a text report by how they start (see the module
/// doc), or passes everything through untouched when colour is off. Lines are buffered
/// until their newline; [`Write::flush`] writes a partial last line as it is.
#[derive(Debug)]
pub struct Highlight<W: Write> {
    inner: W,
    on: bool,
    line: Vec<u8>,
}

impl<W: Write> Highlight<W> {
    /// Wraps `inner`; `on` from [`color_enabled`].
    pub fn new(inner: W, on: bool) -> Self {
        Highlight {
            inner,
            on,
            line: Vec::new(),
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match paint_of(line) {
            None => self.inner.write_all(line),
            Some(p) => {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                let (styled, rest) = body.split_at(p.len.unwrap_or(body.len()).min(body.len()));
                self.inner.write_all(p.style.as_bytes())?;
                self.inner.write_all(styled)?;
                self.inner.write_all(RESET.as_bytes())?;
                self.inner.write_all(rest)?;
                self.inner.write_all(&line[body.len()..])
            }
        }
    }
}

impl<W: Write> Write for Highlight<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.on {
            return self.inner.write(buf);
        }
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i + 1);
            if self.line.is_empty() {
                self.write_line(head)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.write_line(&line)?;
            }
            rest = tail;
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.write_line(&line)?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(text: &str, on: bool) -> String {
        let mut h = Highlight::new(Vec::new(), on);
        // In awkward pieces: a line may arrive in several writes.
        for chunk in text.as_bytes().chunks(3) {
            h.write_all(chunk).unwrap();
        }
        h.flush().unwrap();
        String::from_utf8(h.inner).unwrap()
    }

    const REPORT: &str = "LEAK: 1 growing cluster\n   node warned: 11 close listeners added to [Socket]\n\n#1 unbounded_collection — cache holds 3\n   fix: bound it\nwarning: few points\nplain line #2 \nNO LEAK: flat";

    #[test]
    fn off_is_byte_for_byte_the_plain_text() {
        assert_eq!(colour(REPORT, false), REPORT);
    }

    #[test]
    fn on_colours_only_the_lines_a_person_looks_for() {
        let out = colour(REPORT, true);
        assert!(
            out.starts_with(
                "\x1b[1;31mLEAK\x1b[0m: 1 growing cluster\n\x1b[33m   node warned:\x1b[0m 11 close listeners added to [Socket]\n\n"
            ),
            "{out:?}"
        );
        assert!(
            out.contains("\x1b[1m#1 unbounded_collection — cache holds 3\x1b[0m\n"),
            "{out:?}"
        );
        assert!(out.contains("\x1b[36m   fix:\x1b[0m bound it\n"), "{out:?}");
        assert!(out.contains("\x1b[33mwarning:\x1b[0m few points\n"), "{out:?}");
        assert!(out.contains("\nplain line #2 \n"), "{out:?}");
        // The last line, without a newline, is written at flush.
        assert!(out.ends_with("\x1b[1;32mNO LEAK\x1b[0m: flat"), "{out:?}");
        // Take the colour out again and the text is unchanged.
        let plain = [RESET, BOLD_RED, BOLD_GREEN, BOLD_YELLOW, YELLOW, CYAN, BOLD]
            .iter()
            .fold(out, |s, code| s.replace(code, ""));
        assert_eq!(plain, REPORT);
        // A word that merely starts like a verdict is not one.
        assert_eq!(colour("LEAKY thing\n", true), "LEAKY thing\n");
    }

    #[test]
    fn no_color_and_dumb_terminals_turn_auto_off() {
        use ColorChoice::*;
        let set = Some(OsStr::new("1"));
        assert!(color_enabled(Auto, true, None, Some(OsStr::new("xterm-256color"))));
        assert!(!color_enabled(Auto, false, None, None), "a pipe");
        assert!(!color_enabled(Auto, true, set, None), "NO_COLOR=1");
        assert!(
            color_enabled(Auto, true, Some(OsStr::new("")), None),
            "an empty NO_COLOR is unset"
        );
        assert!(!color_enabled(Auto, true, None, Some(OsStr::new("dumb"))));
        assert!(color_enabled(Always, false, set, None), "--color always wins");
        assert!(!color_enabled(Never, true, None, None));
    }
}
