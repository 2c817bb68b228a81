//! Text for a terminal: strings from a snapshot (class, property and string values) or
//! from the app (its output lines) can hold control characters, and a terminal obeys
//! them (`ESC ] 0 ; title BEL` renames the window, `ESC [ 2 J` clears the screen). Every
//! text leakhound prints for a person goes through [`TerminalSafe`] or [`terminal_safe`],
//! which show such characters as visible escapes instead: `\x1b`, `\x07`, `\u{9b}`.
//!
//! Kept as they are: newline and tab. Escaped: the other C0 controls (U+0000–U+001F),
//! DEL (U+007F) and the C1 controls (U+0080–U+009F; U+009B is a one-character CSI in
//! some terminals). JSON output needs none of this: it escapes control characters itself.

mod color;

use std::borrow::Cow;
use std::io::{self, Write};

pub use color::{ColorChoice, Highlight, color_enabled};

/// Whether `c` is shown as an escape.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c)
}

/// `s` with its control characters (see the module doc) written as visible escapes;
/// borrowed when there are none.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A writer that passes UTF-8 text through with its control characters (see the module
/// doc) written as visible escapes, whatever the writes' boundaries (a C1 control split
/// between two writes is still caught). Wrap the destination of every text report.
#[derive(Debug)]
pub struct TerminalSafe<W: Write> {
    inner: W,
    /// The previous write ended in 0xC2, the first byte of a two-byte sequence that may
    /// be a C1 control.
    pending_c2: bool,
}

impl<W: Write> TerminalSafe<W> {
    /// Wraps `inner`, the destination of a text report (stdout, a file).
    pub fn new(inner: W) -> Self {
        TerminalSafe {
            inner,
            pending_c2: false,
        }
    }
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        let mut i = 0;
        if self.pending_c2 && !buf.is_empty() {
            self.pending_c2 = false;
            if (0x80..=0x9f).contains(&buf[0]) {
                write!(self.inner, "\\u{{{:x}}}", buf[0])?;
                i = 1;
            } else {
                self.inner.write_all(&[0xc2])?;
            }
            start = i;
        }
        while i < buf.len() {
            let b = buf[i];
            let c0 = (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f;
            if c0 {
                self.inner.write_all(&buf[start..i])?;
                write!(self.inner, "\\x{b:02x}")?;
                i += 1;
                start = i;
            } else if b == 0xc2 {
                match buf.get(i + 1) {
                    Some(&n) if (0x80..=0x9f).contains(&n) => {
                        self.inner.write_all(&buf[start..i])?;
                        write!(self.inner, "\\u{{{n:x}}}")?;
                        i += 2;
                        start = i;
                    }
                    Some(_) => i += 1,
                    None => {
                        self.inner.write_all(&buf[start..i])?;
                        self.pending_c2 = true;
                        i += 1;
                        start = i;
                    }
                }
            } else {
                i += 1;
            }
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.pending_c2) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "Leaky\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\0\u{7f} é\tok\n";
    const SHOWN: &str = "Leaky\\x1b]0;pwned\\x07\\x1b[2J\\u{9b}31m\\x00\\x7f é\tok\n";

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(terminal_safe(HOSTILE), SHOWN);
        assert!(matches!(terminal_safe("plain — ok\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_writer_escapes_across_any_split() {
        let bytes = HOSTILE.as_bytes();
        for cut in 0..=bytes.len() {
            let mut w = TerminalSafe::new(Vec::new());
            w.write_all(&bytes[..cut]).unwrap();
            w.write_all(&bytes[cut..]).unwrap();
            w.flush().unwrap();
            assert_eq!(String::from_utf8(w.inner).unwrap(), SHOWN, "cut at {cut}");
        }
        // Byte by byte too.
        let mut w = TerminalSafe::new(Vec::new());
        for b in bytes {
            w.write_all(&[*b]).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(String::from_utf8(w.inner).unwrap(), SHOWN);
    }
}
