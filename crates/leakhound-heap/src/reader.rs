//! A buffered byte source with the primitives the snapshot parser needs: whitespace and
//! punctuation, JSON strings, unsigned integer arrays (the hot path), and skipping.
//!
//! Never holds more than one buffer (4 MiB) of the input; positions are absolute byte
//! offsets for error messages. Nothing it reads grows without a bound: the arrays are
//! bounded by the header's counts (checked by their sinks), a value read whole
//! ([`Reader::read_bounded_value`], the `snapshot` header) by a byte cap, its numbers by
//! [`MAX_NUMBER_CHARS`] and its nesting by [`MAX_VALUE_DEPTH`], a skipped value
//! ([`Reader::skip_value`]) keeps nothing and nests at most [`MAX_SKIP_DEPTH`] levels;
//! only a string of the `strings` array (the payload) is bounded by the file alone.
//! The node, edge and location arrays take the row path
//! ([`RowSink`], in `reader/rows.rs`): each buffer is split at a line break near its
//! middle and each half is tokenized and converted to rows by one side of a
//! `rayon::join`. Anything unusual (an error, a layout that is not one row per line)
//! sends the buffer back through the exact one-value loop, so errors and their offsets
//! depend neither on the split nor on the number of threads.

use std::io::Read;

use crate::error::{Section, SnapshotError};

mod rows;
mod swar;

pub(crate) use rows::RowSink;
use rows::{Consumer, Round, Rows, Window};
use swar::swar_digits;

const BUF_BYTES: usize = 4 << 20;

/// Levels a value read whole may nest ([`Reader::read_value`] recurses once a level).
const MAX_VALUE_DEPTH: u32 = 64;

/// Characters of a number in a value read whole: integers up to 2^53 have 16 digits,
/// so this leaves room for any fraction or exponent a header could hold, and keeps
/// the number's text short enough to quote in an error.
const MAX_NUMBER_CHARS: usize = 64;

/// Levels a skipped value may nest. Skipping keeps only a counter, so this guards the
/// counter rather than memory; the deepest section skipped, `trace_tree`, nests one
/// level per stack frame and V8 records at most 64 frames.
#[cfg(not(fuzzing))]
const MAX_SKIP_DEPTH: u32 = 1 << 20;
/// Under the fuzzer the cap is reachable within its input size.
#[cfg(fuzzing)]
const MAX_SKIP_DEPTH: u32 = 256;

/// Where the decoded bytes of a JSON string go: kept, or dropped while skipping.
trait StringOut {
    /// Whether the bytes are kept (lone surrogates are then counted for the warning).
    const KEEP: bool;
    fn put(&mut self, bytes: &[u8]);
}

impl StringOut for Vec<u8> {
    const KEEP: bool = true;
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Drops a skipped string's bytes, so skipping costs no memory whatever its length.
struct Discard;

impl StringOut for Discard {
    const KEEP: bool = false;
    #[inline]
    fn put(&mut self, _: &[u8]) {}
}

/// A small JSON value, used only for the `snapshot` header (read by
/// [`Reader::read_bounded_value`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub(crate) fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n < 1.8e19 => Some(*n as u64),
            _ => None,
        }
    }
}

pub(crate) struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    eof: bool,
    pub(crate) section: Section,
    /// Count of strings whose bytes were not valid UTF-8 (replaced with U+FFFD).
    pub(crate) invalid_utf8_strings: u64,
    pub(crate) first_invalid_utf8_offset: Option<u64>,
    /// Count of strings with a `\uD800`–`\uDFFF` escape lacking its pair (replaced
    /// with U+FFFD), and the offset of the first such string.
    pub(crate) lone_surrogate_strings: u64,
    pub(crate) first_lone_surrogate_offset: Option<u64>,
    /// Offset of the string being read (its opening quote), for the count above.
    string_at: u64,
    /// Offset of the last string counted in `lone_surrogate_strings` (each once).
    lone_surrogate_noted_at: Option<u64>,
    /// A bounded read in progress ([`Reader::read_bounded_value`], [`Reader::read_key`])
    /// may not consume bytes past this offset; `u64::MAX` when none is.
    limit: u64,
    /// The cap of the bounded read in progress, for its error.
    limit_cap: Cap,
}

/// A size cap on a bounded read: what is read, for the error, and its most bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap {
    /// What is read, as the error message starts ("the snapshot header").
    pub(crate) what: &'static str,
    /// The most bytes it may span.
    pub(crate) bytes: u64,
}

impl Cap {
    const NONE: Cap = Cap {
        what: "",
        bytes: u64::MAX,
    };
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Reader {
            inner,
            buf: vec![0; BUF_BYTES],
            pos: 0,
            len: 0,
            base: 0,
            eof: false,
            section: Section::TopLevel,
            invalid_utf8_strings: 0,
            first_invalid_utf8_offset: None,
            lone_surrogate_strings: 0,
            first_lone_surrogate_offset: None,
            string_at: 0,
            lone_surrogate_noted_at: None,
            limit: u64::MAX,
            limit_cap: Cap::NONE,
        }
    }

    /// Absolute offset of the next unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn syntax(&self, message: impl Into<String>) -> SnapshotError {
        SnapshotError::Syntax {
            section: self.section,
            offset: self.offset(),
            message: message.into(),
        }
    }

    pub(crate) fn syntax_at(&self, offset: u64, message: impl Into<String>) -> SnapshotError {
        SnapshotError::Syntax {
            section: self.section,
            offset,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_at(&self, offset: u64, message: impl Into<String>) -> SnapshotError {
        SnapshotError::Invalid {
            section: self.section,
            offset,
            message: message.into(),
        }
    }

    fn truncated(&self) -> SnapshotError {
        SnapshotError::Truncated {
            section: self.section,
            offset: self.offset(),
        }
    }

    /// Moves the unread tail to the front and reads more. Returns false at end of input.
    fn refill(&mut self) -> Result<bool, SnapshotError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.base += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            // Nothing consumed from a full buffer. No caller does this (each consumes
            // what it buffered before asking for more, and a number is at most 19
            // digits), so this is a fallback bounded by one token, never taken.
            let new_len = self.buf.len() * 2;
            self.buf.resize(new_len, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SnapshotError::Io {
                        section: self.section,
                        offset: self.offset(),
                        source,
                    });
                }
            }
        }
    }

    /// Next byte after whitespace, not consumed; `None` at end of input.
    pub(crate) fn peek_nonws(&mut self) -> Result<Option<u8>, SnapshotError> {
        loop {
            while self.pos < self.len {
                let b = self.buf[self.pos];
                if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` after whitespace or fails naming `what`.
    pub(crate) fn expect(&mut self, byte: u8, what: &str) -> Result<(), SnapshotError> {
        match self.peek_nonws()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(self.syntax(format!("expected {what}, found {}", describe(b)))),
            None => Err(self.truncated()),
        }
    }

    /// After a value inside an array/object: consumes ',' (returns true) or `close` (false).
    pub(crate) fn comma_or(&mut self, close: u8) -> Result<bool, SnapshotError> {
        match self.peek_nonws()? {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) => Err(self.syntax(format!("expected ',' or '{}', found {}", close as char, describe(b)))),
            None => Err(self.truncated()),
        }
    }

    /// Consumes the end of input (only whitespace may remain).
    pub(crate) fn expect_end(&mut self) -> Result<(), SnapshotError> {
        match self.peek_nonws()? {
            None => Ok(()),
            Some(b) => Err(self.syntax(format!("unexpected {} after the end of the snapshot", describe(b)))),
        }
    }

    /// Reads a JSON string into `out` (raw bytes, escapes decoded; may be invalid UTF-8
    /// if the file is). The opening quote must be next (after whitespace). Bounded only
    /// by the file, or by the limit of a bounded read in progress.
    pub(crate) fn read_string_bytes(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        self.string_into(out)
    }

    /// [`Reader::read_string_bytes`] into any [`StringOut`]. Past the limit of a bounded
    /// read it fails, checked after each run of plain bytes (so at most a buffer beyond
    /// it is ever held) and reported at the limit (so the error does not depend on how
    /// the input is split into reads).
    fn string_into<O: StringOut>(&mut self, out: &mut O) -> Result<(), SnapshotError> {
        match self.peek_nonws()? {
            Some(b'"') => {
                self.string_at = self.offset();
                self.pos += 1;
            }
            Some(b) => return Err(self.syntax(format!("expected a string, found {}", describe(b)))),
            None => return Err(self.truncated()),
        }
        loop {
            // Fast path: copy a run of plain bytes.
            let start = self.pos;
            let mut i = start;
            let buf = &self.buf[..self.len];
            while i < buf.len() {
                let b = buf[i];
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                i += 1;
            }
            out.put(&buf[start..i]);
            self.pos = i;
            if self.base + i as u64 > self.limit {
                return Err(self.over_limit());
            }
            if i == self.len {
                if !self.refill()? {
                    return Err(self.truncated());
                }
                continue;
            }
            let b = self.buf[i];
            self.pos += 1;
            match b {
                b'"' => return Ok(()),
                b'\\' => self.read_escape(out)?,
                _ => {
                    return Err(self.syntax_at(self.offset() - 1, "control character inside a string"));
                }
            }
        }
    }

    fn next_byte(&mut self) -> Result<u8, SnapshotError> {
        if self.pos == self.len && !self.refill()? {
            return Err(self.truncated());
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn read_hex4(&mut self) -> Result<u32, SnapshotError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let b = self.next_byte()?;
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.syntax_at(self.offset() - 1, "bad \\u escape in a string"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn read_escape<O: StringOut>(&mut self, out: &mut O) -> Result<(), SnapshotError> {
        let b = self.next_byte()?;
        let mut lone_surrogate = false;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.read_hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate: a low one should follow as another \u escape.
                    // Make all six bytes of it visible first (short reads can split
                    // it), so reading it cannot move the buffer under `save`.
                    while self.len - self.pos < 6 && self.refill()? {}
                    let next_is_escape = self.pos + 1 < self.len && &self.buf[self.pos..self.pos + 2] == b"\\u";
                    if next_is_escape {
                        let save = self.pos;
                        self.pos += 2;
                        let lo = self.read_hex4()?;
                        if (0xDC00..0xE000).contains(&lo) {
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        } else {
                            self.pos = save;
                            lone_surrogate = true;
                            '\u{FFFD}'
                        }
                    } else {
                        lone_surrogate = true;
                        '\u{FFFD}'
                    }
                } else {
                    // Only a low surrogate (a lone one) is not a char here.
                    char::from_u32(hi).unwrap_or_else(|| {
                        lone_surrogate = true;
                        '\u{FFFD}'
                    })
                }
            }
            other => {
                return Err(self.syntax_at(self.offset() - 1, format!("bad escape \\{}", other as char)));
            }
        };
        if O::KEEP && lone_surrogate && self.lone_surrogate_noted_at != Some(self.string_at) {
            self.lone_surrogate_noted_at = Some(self.string_at);
            self.lone_surrogate_strings += 1;
            self.first_lone_surrogate_offset.get_or_insert(self.string_at);
        }
        let mut tmp = [0u8; 4];
        out.put(c.encode_utf8(&mut tmp).as_bytes());
        Ok(())
    }

    /// Reads a JSON string as UTF-8, replacing invalid bytes with U+FFFD (counted).
    pub(crate) fn read_string(&mut self, scratch: &mut Vec<u8>) -> Result<String, SnapshotError> {
        scratch.clear();
        let at = self.offset();
        self.read_string_bytes(scratch)?;
        Ok(match std::str::from_utf8(scratch) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.note_invalid_utf8(at);
                String::from_utf8_lossy(scratch).into_owned()
            }
        })
    }

    pub(crate) fn note_invalid_utf8(&mut self, at: u64) {
        self.invalid_utf8_strings += 1;
        self.first_invalid_utf8_offset.get_or_insert(at);
    }

    /// The error of a bounded read that went past its limit, at the limit.
    #[cold]
    fn over_limit(&self) -> SnapshotError {
        let Cap { what, bytes } = self.limit_cap;
        let size = match bytes {
            b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
            b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
            b => format!("{b} bytes"),
        };
        self.invalid_at(self.limit, format!("{what} is larger than {size}"))
    }

    /// Runs `read` with the input from here on capped at `cap.bytes`: a read past it
    /// fails with [`Reader::over_limit`] at the byte `cap.bytes` from here.
    fn bounded<T>(
        &mut self,
        cap: Cap,
        read: impl FnOnce(&mut Self) -> Result<T, SnapshotError>,
    ) -> Result<T, SnapshotError> {
        let start = self.offset();
        self.limit = start.saturating_add(cap.bytes);
        self.limit_cap = cap;
        let result = read(self).and_then(|v| {
            if self.offset() > self.limit {
                Err(self.over_limit())
            } else {
                Ok(v)
            }
        });
        self.limit = u64::MAX;
        self.limit_cap = Cap::NONE;
        result
    }

    /// Reads a JSON value whole (after whitespace), spanning at most `cap.bytes` bytes:
    /// with the caps on nesting ([`MAX_VALUE_DEPTH`]) and numbers ([`MAX_NUMBER_CHARS`]),
    /// that bounds its memory (a few tens of bytes per byte of input) whatever the input.
    pub(crate) fn read_bounded_value(&mut self, cap: Cap) -> Result<Json, SnapshotError> {
        self.peek_nonws()?;
        self.bounded(cap, |r| r.read_value(0))
    }

    /// Reads a JSON string (after whitespace) as UTF-8 like [`Reader::read_string`], of
    /// at most `cap.bytes` bytes from its opening quote.
    pub(crate) fn read_key(&mut self, scratch: &mut Vec<u8>, cap: Cap) -> Result<String, SnapshotError> {
        self.peek_nonws()?;
        self.bounded(cap, |r| r.read_string(scratch))
    }

    /// Reads any JSON value, within a bounded read ([`Reader::read_bounded_value`]).
    fn read_value(&mut self, depth: u32) -> Result<Json, SnapshotError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(self.syntax(format!("nesting deeper than {MAX_VALUE_DEPTH} levels")));
        }
        let mut scratch = Vec::new();
        let next = self.peek_nonws()?;
        if self.offset() > self.limit {
            return Err(self.over_limit());
        }
        match next {
            None => Err(self.truncated()),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.peek_nonws()? == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(entries));
                }
                loop {
                    let key = self.read_string(&mut scratch)?;
                    self.expect(b':', "':'")?;
                    let value = self.read_value(depth + 1)?;
                    entries.push((key, value));
                    if !self.comma_or(b'}')? {
                        return Ok(Json::Object(entries));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek_nonws()? == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.read_value(depth + 1)?);
                    if !self.comma_or(b']')? {
                        return Ok(Json::Array(items));
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.read_string(&mut scratch)?)),
            Some(b't') => self.read_literal(b"true", Json::Bool(true)),
            Some(b'f') => self.read_literal(b"false", Json::Bool(false)),
            Some(b'n') => self.read_literal(b"null", Json::Null),
            Some(b) if b == b'-' || b.is_ascii_digit() => {
                let at = self.offset();
                let mut text = String::new();
                loop {
                    match self.peek_raw()? {
                        Some(b) if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E') => {
                            if text.len() == MAX_NUMBER_CHARS {
                                return Err(
                                    self.invalid_at(at, format!("a number longer than {MAX_NUMBER_CHARS} characters"))
                                );
                            }
                            text.push(b as char);
                            self.pos += 1;
                        }
                        Some(_) => break,
                        // The header never ends with a number: the file was cut in or after it.
                        None => return Err(self.truncated()),
                    }
                }
                text.parse::<f64>()
                    .map(Json::Number)
                    .map_err(|_| self.syntax_at(at, format!("bad number {text:?}")))
            }
            Some(b) => Err(self.syntax(format!("expected a JSON value, found {}", describe(b)))),
        }
    }

    fn peek_raw(&mut self) -> Result<Option<u8>, SnapshotError> {
        if self.pos == self.len && !self.refill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn read_literal(&mut self, lit: &[u8], value: Json) -> Result<Json, SnapshotError> {
        let at = self.offset();
        for &want in lit {
            if self.next_byte()? != want {
                return Err(self.syntax_at(at, "bad literal"));
            }
        }
        Ok(value)
    }

    /// Skips any JSON value without building it (for sections this engine does not use):
    /// streamed, keeping nothing (strings are dropped as they are read, numbers and
    /// literals consumed byte by byte), nesting at most [`MAX_SKIP_DEPTH`] levels.
    pub(crate) fn skip_value(&mut self) -> Result<(), SnapshotError> {
        let mut depth: u32 = 0;
        loop {
            let b = self.peek_nonws()?.ok_or_else(|| self.truncated())?;
            match b {
                b'{' | b'[' => {
                    if depth == MAX_SKIP_DEPTH {
                        return Err(
                            self.invalid_at(self.offset(), format!("nesting deeper than {MAX_SKIP_DEPTH} levels"))
                        );
                    }
                    self.pos += 1;
                    depth += 1;
                    continue;
                }
                b'}' | b']' => {
                    if depth == 0 {
                        return Err(self.syntax(format!("unexpected {}", describe(b))));
                    }
                    self.pos += 1;
                    depth -= 1;
                }
                b'"' => {
                    self.string_into(&mut Discard)?;
                    if depth > 0 && self.peek_nonws()? == Some(b':') {
                        self.pos += 1;
                        continue;
                    }
                }
                b',' if depth > 0 => {
                    self.pos += 1;
                    continue;
                }
                _ => {
                    // Number or literal: consume its bytes.
                    let mut n = 0;
                    while let Some(b) = self.peek_raw()? {
                        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                            self.pos += 1;
                            n += 1;
                        } else {
                            break;
                        }
                    }
                    if n == 0 {
                        return Err(self.syntax(format!("unexpected {}", describe(b))));
                    }
                }
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// Reads one unsigned integer (after whitespace) and its offset: at most 19 digits,
    /// no sign, fraction or exponent. For the small sections read value by value (the
    /// `trace_tree`); the large arrays take [`Reader::read_rows`].
    pub(crate) fn read_uint(&mut self) -> Result<(u64, u64), SnapshotError> {
        let b = self.peek_nonws()?.ok_or_else(|| self.truncated())?;
        let at = self.offset();
        if b == b'-' {
            return Err(self.invalid_at(at, "negative number"));
        }
        if !b.is_ascii_digit() {
            return Err(self.syntax(format!("expected an unsigned integer, found {}", describe(b))));
        }
        let mut v: u64 = 0;
        let mut digits = 0;
        loop {
            match self.peek_raw()? {
                Some(b) if b.is_ascii_digit() => {
                    digits += 1;
                    if digits > 19 {
                        return Err(self.invalid_at(at, "number too large (more than 19 digits)"));
                    }
                    v = v * 10 + (b - b'0') as u64;
                    self.pos += 1;
                }
                Some(b'.' | b'e' | b'E') => {
                    return Err(self.invalid_at(at, "expected an integer, found a fraction"));
                }
                Some(_) => return Ok((v, at)),
                // No section ends with a number: the file was cut in or after it.
                None => return Err(self.truncated()),
            }
        }
    }

    /// Reads a JSON array of unsigned integers, calling `sink(value, offset)` for each, by
    /// the exact one-value loop (for the small `trace_function_infos` array).
    pub(crate) fn read_uint_array<F, P>(&mut self, sink: F, progress: &mut P) -> Result<(), SnapshotError>
    where
        F: FnMut(u64, u64) -> Result<(), SnapshotError>,
        P: FnMut(u64),
    {
        struct Each<F>(F);
        impl<F: FnMut(u64, u64) -> Result<(), SnapshotError>> Consumer for Each<F> {
            #[inline]
            fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
                (self.0)(v, at)
            }
        }
        self.read_array(&mut Each(sink), progress)
    }

    /// Consumes `[` (after whitespace) and tells whether `]` follows it at once.
    pub(crate) fn open_array(&mut self) -> Result<bool, SnapshotError> {
        self.expect(b'[', "'['")?;
        if self.peek_nonws()? == Some(b']') {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads a JSON array of unsigned integers into `sink` row by row, each buffer in
    /// two halves on the rayon pool where the input allows (see [`RowSink`]). `progress(offset)` is called about
    /// every 16 MiB.
    pub(crate) fn read_rows<S: RowSink, P: FnMut(u64)>(
        &mut self,
        sink: &mut S,
        progress: &mut P,
    ) -> Result<(), SnapshotError> {
        self.read_array(&mut Rows::new(sink), progress)
    }

    /// The hot path of the parser: runs over the buffer without per-byte calls, after
    /// letting `c` take what it can as whole rows.
    fn read_array<C: Consumer, P: FnMut(u64)>(&mut self, c: &mut C, progress: &mut P) -> Result<(), SnapshotError> {
        self.expect(b'[', "'['")?;
        // 0: expect a value or ']' (start), 1: after a value, 2: expect a value (after ',')
        let mut state = 0u8;
        let mut next_progress = self.offset() + (16 << 20);
        loop {
            let mut window = Window {
                buf: &self.buf,
                len: self.len,
                base: self.base,
                pos: self.pos,
            };
            let round = c.round(&mut window, &mut state);
            self.pos = window.pos;
            if let Round::Closed = round {
                return Ok(());
            }
            let mut i = self.pos;
            let len = self.len;
            let mut need_more = false;
            // Mid-row with the row path on: read only to the end of the line, so
            // the next round starts on a row.
            let limit = if c.wants_row_start() {
                self.buf[i..len]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |k| i + k + 1)
            } else {
                len
            };
            while i < limit {
                let b = self.buf[i];
                if b.is_ascii_digit() {
                    if state == 1 {
                        return Err(self.syntax_at(self.base + i as u64, "expected ',' between numbers"));
                    }
                    let start = i;
                    let mut v: u64 = 0;
                    // Fast path: up to 8 digits read as one u64.
                    let mut fast = false;
                    if i + 8 <= len {
                        let chunk = u64::from_le_bytes(self.buf[i..i + 8].try_into().unwrap_or([0; 8]));
                        if let Some((digits, value)) = swar_digits(chunk) {
                            v = value;
                            i += digits;
                            // Eight digits may go on: the loop below takes the rest.
                            fast = digits < 8;
                        }
                    }
                    if !fast {
                        while i < len {
                            let d = self.buf[i].wrapping_sub(b'0');
                            if d > 9 {
                                break;
                            }
                            v = v.wrapping_mul(10).wrapping_add(d as u64);
                            i += 1;
                        }
                    }
                    // Checked before waiting for more digits, so a huge digit run is
                    // rejected instead of growing the buffer to hold it.
                    if i - start > 19 {
                        return Err(self.invalid_at(self.base + start as u64, "number too large (more than 19 digits)"));
                    }
                    if i == len {
                        if self.eof {
                            // An array never ends with a number: the file was cut in or
                            // right after it, and its digits so far are not its value.
                            self.pos = len;
                            return Err(self.truncated());
                        }
                        // The number may continue in the next read.
                        i = start;
                        need_more = true;
                        break;
                    }
                    if i < len && matches!(self.buf[i], b'.' | b'e' | b'E') {
                        return Err(self.invalid_at(self.base + start as u64, "expected an integer, found a fraction"));
                    }
                    c.value(v, self.base + start as u64)?;
                    state = 1;
                    continue;
                }
                match b {
                    b' ' | b'\n' | b'\r' | b'\t' => {}
                    b',' if state == 1 => state = 2,
                    b']' if state != 2 => {
                        self.pos = i + 1;
                        return Ok(());
                    }
                    b'-' => return Err(self.invalid_at(self.base + i as u64, "negative number")),
                    _ => {
                        return Err(self.syntax_at(
                            self.base + i as u64,
                            format!("expected an unsigned integer, found {}", describe(b)),
                        ));
                    }
                }
                i += 1;
            }
            self.pos = i;
            let _ = need_more;
            if self.offset() >= next_progress {
                progress(self.offset());
                next_progress = self.offset() + (16 << 20);
            }
            if limit < len && !need_more {
                continue;
            }
            if !self.refill()? {
                // Whatever is left is the start of a number the input cut: the end of
                // the input is where the file is truncated.
                self.pos = self.len;
                return Err(self.truncated());
            }
        }
    }

    /// Reads a JSON array of strings, calling `sink(bytes, offset)` for each (raw bytes,
    /// escapes decoded).
    pub(crate) fn read_string_array<F, P>(&mut self, mut sink: F, progress: &mut P) -> Result<(), SnapshotError>
    where
        F: FnMut(&[u8], u64, &mut Self) -> Result<(), SnapshotError>,
        P: FnMut(u64),
    {
        self.expect(b'[', "'['")?;
        let mut scratch = Vec::with_capacity(256);
        if self.peek_nonws()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut next_progress = self.offset() + (16 << 20);
        loop {
            scratch.clear();
            let at = self.offset();
            self.read_string_bytes(&mut scratch)?;
            sink(&scratch, at, self)?;
            if self.offset() >= next_progress {
                progress(self.offset());
                next_progress = self.offset() + (16 << 20);
            }
            if !self.comma_or(b']')? {
                return Ok(());
            }
        }
    }
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}
