//! A buffered byte source with the primitives the snapshot parser needs: whitespace and
//! punctuation, JSON strings, unsigned integer arrays (the hot path), and skipping.
//!
//! Never holds more than one buffer (4 MiB) of the input; positions are absolute byte
//! offsets for error messages. The node and edge arrays are read on two threads
//! ([`RowSink`]): each buffer is split at a line break near its middle and each half is
//! tokenized and converted to rows by its own thread. Anything unusual (an error, a
//! layout that is not one row per line) sends the buffer back through the exact
//! one-thread loop, so errors and their offsets do not depend on the split.

use std::io::Read;

use crate::error::{Section, SnapshotError};

const BUF_BYTES: usize = 4 << 20;

/// Below this many buffered bytes rows are converted on one thread: the split's cost (a
/// scoped thread) would outweigh the gain.
#[cfg(not(fuzzing))]
const PARALLEL_MIN_BYTES: usize = 256 << 10;
/// Under the fuzzer the split runs on small inputs too, so it is fuzzed.
#[cfg(fuzzing)]
const PARALLEL_MIN_BYTES: usize = 64;

/// A consumer of a fixed-stride integer array that can take whole rows converted on
/// worker threads. V8 writes one row per line (`\n,type,name,…`); the reader relies on
/// that to split a buffer at row boundaries, and checks it: a half whose value count is
/// not a multiple of the stride is refused and re-read exactly.
pub(crate) trait RowSink {
    /// Rows converted by one worker, merged in file order.
    type Part: Default + Send;
    /// The read-only context a worker converts with.
    type Ctx: Sync;
    /// Values per row.
    fn stride(&self) -> usize;
    /// A copy of the conversion context.
    fn ctx(&self) -> Self::Ctx;
    /// Converts one row into `part`; `false` when anything is wrong with it (the exact
    /// path then finds and reports the problem).
    fn convert(ctx: &Self::Ctx, part: &mut Self::Part, row: &[u64], at: &[u64]) -> bool;
    /// The exact path: one value at a time, with every check and its offset.
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError>;
    /// True when the exact path is between rows.
    fn at_row_start(&self) -> bool;
    /// Appends `part` (then empties it); `false`, changing nothing, when the rows must go
    /// through the exact path instead (e.g. they would exceed a count the header gave).
    fn merge(&mut self, part: &mut Self::Part) -> bool;
    /// Moves the sink's own columns into the empty `part`, so a round on this thread
    /// converts straight into them (no copy to merge).
    fn lend(&mut self, part: &mut Self::Part);
    /// Takes the columns back after a lent round; `ok` false (or a check of the whole
    /// array failing) drops the round's rows and returns false, changing nothing else.
    fn settle(&mut self, part: &mut Self::Part, ok: bool) -> bool;
}

/// How a region of an integer array ended: still inside the array (with the comma
/// state), or at its closing `]` (offset in the buffer).
enum RegionEnd {
    Open { state: u8 },
    Closed { at: usize },
}

/// What a parallel round left: the array's `]` consumed, or more to read.
enum Round {
    Closed,
    Open,
}

/// The consumer side of [`Reader::read_array`]: values one at a time, and optionally
/// whole buffers on two threads.
trait Consumer {
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError>;
    fn round<R: Read>(&mut self, _r: &mut Reader<R>, _state: &mut u8) -> Round {
        Round::Open
    }
    /// True when the exact loop should stop at the next line break: the consumer is
    /// mid-row and wants a round to start on a row.
    fn wants_row_start(&mut self) -> bool {
        false
    }
}

/// A plain closure consumer.
struct Each<F>(F);

impl<F: FnMut(u64, u64) -> Result<(), SnapshotError>> Consumer for Each<F> {
    #[inline]
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
        (self.0)(v, at)
    }
}

/// A [`RowSink`] consumer with the two workers' scratch parts.
struct Rows<'a, S: RowSink> {
    sink: &'a mut S,
    parts: [S::Part; 2],
    /// Cleared for good once a half is refused: the input is not one row per line, or
    /// has an error the exact path reports next.
    enabled: bool,
    /// The exact loop was asked to stop at the end of the current line.
    finishing_line: bool,
}

impl<S: RowSink> Consumer for Rows<'_, S> {
    #[inline]
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError> {
        self.sink.value(v, at)
    }

    fn wants_row_start(&mut self) -> bool {
        self.finishing_line = self.enabled && !self.sink.at_row_start();
        self.finishing_line
    }

    fn round<R: Read>(&mut self, r: &mut Reader<R>, state: &mut u8) -> Round {
        if std::mem::take(&mut self.finishing_line) && !self.sink.at_row_start() {
            // A line ended mid-row: not one row per line.
            self.enabled = false;
        }
        // Loads running side by side already keep the cores busy: then the whole region
        // is converted on this thread (still faster than value by value).
        let alone = crate::active_loads() <= 1;
        if !self.enabled || !self.sink.at_row_start() || r.len - r.pos < PARALLEL_MIN_BYTES {
            return Round::Open;
        }
        let start = r.pos;
        // Rows end at line breaks: the last one bounds the complete rows buffered.
        let Some(last) = r.buf[start..r.len].iter().rposition(|&b| b == b'\n') else {
            return Round::Open;
        };
        let end = start + last;
        if end - start < PARALLEL_MIN_BYTES {
            return Round::Open;
        }
        let stride = self.sink.stride();
        let ctx = self.sink.ctx();
        if !alone {
            // One thread: convert straight into the sink's columns.
            let mut part = std::mem::take(&mut self.parts[0]);
            self.sink.lend(&mut part);
            let a = convert_region::<S>(&r.buf[..], start, end, r.base, *state, stride, &ctx, &mut part);
            let settled = self.sink.settle(&mut part, a.is_some());
            self.parts[0] = part;
            return match (settled, a) {
                (true, Some(RegionEnd::Closed { at })) => {
                    r.pos = at + 1;
                    Round::Closed
                }
                (true, Some(RegionEnd::Open { state: s })) => {
                    *state = s;
                    r.pos = end;
                    Round::Open
                }
                _ => {
                    self.enabled = false;
                    Round::Open
                }
            };
        }
        let mid = start + (end - start) / 2;
        let split = match r.buf[mid..end].iter().position(|&b| b == b'\n') {
            Some(k) => mid + k,
            None => end,
        };
        let mut pa = std::mem::take(&mut self.parts[0]);
        let mut pb = std::mem::take(&mut self.parts[1]);
        let (buf, base, in_state) = (&r.buf[..], r.base, *state);
        let (a, b, pa, pb) = std::thread::scope(|scope| {
            let ctx = &ctx;
            let hb = (split < end).then(|| {
                scope.spawn(move || {
                    // A line break follows a value: the second half starts in state 1.
                    let end = convert_region::<S>(buf, split, end, base, 1, stride, ctx, &mut pb);
                    (end, pb)
                })
            });
            let a = convert_region::<S>(buf, start, split, base, in_state, stride, ctx, &mut pa);
            match hb.map(|h| h.join()) {
                Some(Ok((b, pb))) => (a, b, pa, pb),
                _ => (a, None, pa, S::Part::default()),
            }
        });
        self.parts = [pa, pb];
        let Some(a) = a else {
            self.enabled = false;
            return Round::Open;
        };
        if !self.sink.merge(&mut self.parts[0]) {
            self.enabled = false;
            return Round::Open;
        }
        match a {
            RegionEnd::Closed { at } => {
                r.pos = at + 1;
                return Round::Closed;
            }
            RegionEnd::Open { state: s } => {
                *state = s;
                r.pos = split;
                if split == end {
                    return Round::Open;
                }
                if s != 1 {
                    // The second half assumed a value before its line break.
                    self.enabled = false;
                    return Round::Open;
                }
            }
        }
        let Some(b) = b else {
            self.enabled = false;
            return Round::Open;
        };
        if !self.sink.merge(&mut self.parts[1]) {
            self.enabled = false;
            return Round::Open;
        }
        match b {
            RegionEnd::Closed { at } => {
                r.pos = at + 1;
                Round::Closed
            }
            RegionEnd::Open { state: s } => {
                *state = s;
                r.pos = end;
                Round::Open
            }
        }
    }
}

/// Tokenizes `buf[from..to]` of an integer array (`buf[to]`, when it exists, is not a
/// digit), given the comma state before it (0: at the start, 1: after a value, 2: after a
/// comma), and converts whole rows into `part`. `None` when the region holds anything but
/// unsigned integers of up to 19 digits, commas and whitespace up to an optional `]`, when
/// it does not hold whole rows, or when a row does not convert: the caller then re-reads
/// it with the exact loop. Offsets given to the converter are absolute (`base` + index).
#[allow(clippy::too_many_arguments)]
fn convert_region<S: RowSink>(
    buf: &[u8],
    from: usize,
    to: usize,
    base: u64,
    mut state: u8,
    stride: usize,
    ctx: &S::Ctx,
    part: &mut S::Part,
) -> Option<RegionEnd> {
    if stride == 0 || stride > 16 || to >= buf.len() {
        return None;
    }
    let mut row = [0u64; 16];
    let mut row_at = [0u64; 16];
    let mut field = 0usize;
    let mut i = from;
    while i < to {
        let b = buf[i];
        if b.is_ascii_digit() {
            if state == 1 {
                return None;
            }
            let start = i;
            let mut v: u64 = 0;
            let mut fast = false;
            if i + 8 <= buf.len() {
                let chunk = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap_or([0; 8]));
                if let Some((digits, value)) = swar_digits(chunk) {
                    v = value;
                    i += digits;
                    // Eight digits may go on: the loop below takes the rest.
                    fast = digits < 8;
                }
            }
            if !fast {
                while i < buf.len() && i - start <= 19 {
                    let d = buf[i].wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    v = v.wrapping_mul(10).wrapping_add(d as u64);
                    i += 1;
                }
            }
            if i > to || i - start > 19 || i >= buf.len() {
                return None;
            }
            row[field] = v;
            row_at[field] = base + start as u64;
            field += 1;
            if field == stride {
                if !S::convert(ctx, part, &row[..stride], &row_at[..stride]) {
                    return None;
                }
                field = 0;
            }
            // The separator V8 writes next (`,` or `\n,`), taken here rather than by
            // another turn of the loop; anything else goes through the general path.
            match buf[i] {
                b',' if i < to => {
                    i += 1;
                    state = 2;
                }
                b'\n' if i + 1 < to && buf[i + 1] == b',' => {
                    i += 2;
                    state = 2;
                }
                b'0'..=b'9' | b'.' | b'e' | b'E' => return None,
                _ => state = 1,
            }
            continue;
        }
        match b {
            b' ' | b'\n' | b'\r' | b'\t' => {}
            b',' if state == 1 => state = 2,
            b']' if state != 2 => {
                return (field == 0).then_some(RegionEnd::Closed { at: i });
            }
            _ => return None,
        }
        i += 1;
    }
    (field == 0).then_some(RegionEnd::Open { state })
}

/// A small JSON value, used only for the `snapshot` header.
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
            // A single token longer than the buffer: grow (only strings can do this).
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
    /// if the file is). The opening quote must be next (after whitespace).
    pub(crate) fn read_string_bytes(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        self.expect(b'"', "a string")?;
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
            out.extend_from_slice(&buf[start..i]);
            self.pos = i;
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

    fn read_escape(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        let b = self.next_byte()?;
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
                            '\u{FFFD}'
                        }
                    } else {
                        '\u{FFFD}'
                    }
                } else {
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
            other => {
                return Err(self.syntax_at(self.offset() - 1, format!("bad escape \\{}", other as char)));
            }
        };
        let mut tmp = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
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

    /// Reads any JSON value (for small sections only).
    pub(crate) fn read_value(&mut self, depth: u32) -> Result<Json, SnapshotError> {
        if depth > 64 {
            return Err(self.syntax("nesting deeper than 64 levels"));
        }
        let mut scratch = Vec::new();
        match self.peek_nonws()? {
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

    /// Skips any JSON value without building it (for sections this engine does not use).
    pub(crate) fn skip_value(&mut self) -> Result<(), SnapshotError> {
        let mut depth: u32 = 0;
        let mut scratch = Vec::new();
        loop {
            let b = self.peek_nonws()?.ok_or_else(|| self.truncated())?;
            match b {
                b'{' | b'[' => {
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
                    scratch.clear();
                    self.read_string_bytes(&mut scratch)?;
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

    /// Reads a JSON array of unsigned integers, calling `sink(value, offset_of_value)` for
    /// each. `progress(offset)` is called about every 16 MiB.
    pub(crate) fn read_uint_array<F, P>(&mut self, sink: F, progress: &mut P) -> Result<(), SnapshotError>
    where
        F: FnMut(u64, u64) -> Result<(), SnapshotError>,
        P: FnMut(u64),
    {
        self.read_array(&mut Each(sink), progress)
    }

    /// Reads a JSON array of unsigned integers into `sink` row by row, on two threads
    /// where the input allows (see [`RowSink`]). `progress(offset)` is called about
    /// every 16 MiB.
    pub(crate) fn read_rows<S: RowSink, P: FnMut(u64)>(
        &mut self,
        sink: &mut S,
        progress: &mut P,
    ) -> Result<(), SnapshotError> {
        self.read_array(
            &mut Rows {
                sink,
                parts: Default::default(),
                enabled: true,
                finishing_line: false,
            },
            progress,
        )
    }

    /// The hot path of the parser: runs over the buffer without per-byte calls, after
    /// letting `c` take what it can on two threads.
    fn read_array<C: Consumer, P: FnMut(u64)>(&mut self, c: &mut C, progress: &mut P) -> Result<(), SnapshotError> {
        self.expect(b'[', "'['")?;
        // 0: expect a value or ']' (start), 1: after a value, 2: expect a value (after ',')
        let mut state = 0u8;
        let mut next_progress = self.offset() + (16 << 20);
        loop {
            if let Round::Closed = c.round(self, &mut state) {
                return Ok(());
            }
            let mut i = self.pos;
            let len = self.len;
            let mut need_more = false;
            // Mid-row with the two-thread path on: read only to the end of the line, so
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

/// The leading ASCII digits of 8 bytes (little-endian: byte 0 first), 1 to 8 of them:
/// (digit count, value). With 8, the number may go on past the chunk. SWAR, as in
/// Lemire's `parse_eight_digits_unrolled`.
#[inline]
fn swar_digits(chunk: u64) -> Option<(usize, u64)> {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let x = chunk ^ 0x3030_3030_3030_3030;
    // A byte is a digit iff its high nibble is 0 and adding 6 does not carry into it. A
    // carry out of a non-digit byte can only disturb bytes after it.
    let nondigit = (x & HIGH) | (x.wrapping_add(0x0606_0606_0606_0606) & HIGH);
    let digits = (nondigit.trailing_zeros() / 8) as usize;
    if digits == 0 {
        return None;
    }
    // Keep the digits, moved to the top bytes so the low bytes read as leading zeros.
    let v = (x & LOW) << (8 * (8 - digits));
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    let v = v.wrapping_mul(10_000) + (v >> 32);
    Some((digits, v & 0xFFFF_FFFF))
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod swar_tests {
    use super::swar_digits;

    #[test]
    fn swar_reads_one_to_eight_digits_like_the_scalar_loop() {
        for text in ["0,", "7\n", "12,3", "999]", "1234567,", "100000 ", "42\r\n", "9876543]"] {
            let mut bytes = [b'x'; 8];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            let digits = text.bytes().take_while(u8::is_ascii_digit).count();
            let value: u64 = text[..digits].parse().unwrap();
            assert_eq!(
                swar_digits(u64::from_le_bytes(bytes)),
                Some((digits, value)),
                "{text:?}"
            );
        }
        assert_eq!(swar_digits(u64::from_le_bytes(*b"12345678")), Some((8, 12_345_678)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b"99999999")), Some((8, 99_999_999)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b"00000010")), Some((8, 10)));
        assert_eq!(swar_digits(u64::from_le_bytes(*b",1234567")), None);
        for b in 0u8..=255 {
            if b.is_ascii_digit() {
                continue;
            }
            let chunk = u64::from_le_bytes([b'5', b, b'1', b'1', b'1', b'1', b'1', b'1']);
            assert_eq!(swar_digits(chunk), Some((1, 5)), "byte {b}");
        }
    }
}
