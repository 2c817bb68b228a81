//! The row path of `Reader::read_rows`: a [`RowSink`] takes the node, edge and
//! location arrays as whole rows, each buffer split at a line break near its middle and
//! the halves converted by the two sides of a `rayon::join` (side by side when the pool
//! has an idle thread, else one after the other); anything unusual goes back through the
//! exact one-value loop of the reader.

use super::swar::swar_digits;
use crate::error::SnapshotError;

/// Below this many buffered bytes the exact loop reads the values: a round's cost (a
/// `rayon::join`, a merge) would outweigh the gain.
#[cfg(not(fuzzing))]
const PARALLEL_MIN_BYTES: usize = 256 << 10;
/// Under the fuzzer the split runs on small inputs too, so it is fuzzed.
#[cfg(fuzzing)]
const PARALLEL_MIN_BYTES: usize = 64;

/// A consumer of a fixed-stride integer array that can take whole rows converted on
/// the pool's threads. V8 writes one row per line (`\n,type,name,…`); the reader relies on
/// that to split a buffer at row boundaries, and checks it: a half whose value count is
/// not a multiple of the stride is refused and re-read exactly.
pub(crate) trait RowSink {
    /// Rows converted by one half of a round, merged in file order.
    type Part: Default + Send;
    /// The read-only context both halves convert with.
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
    /// Moves the sink's own columns into the empty `part`, so a round's first half
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

/// The reader's buffer as a round sees it: `buf[pos..len]` is unread input (bytes past
/// `len` are stale but may be looked at, never taken), `buf[0]` sits at byte `base` of
/// the input. A round moves `pos` past the rows it took.
pub(super) struct Window<'a> {
    pub(super) buf: &'a [u8],
    pub(super) len: usize,
    pub(super) base: u64,
    pub(super) pos: usize,
}

/// What a row-path round left: the array's `]` consumed, or more to read.
pub(super) enum Round {
    Closed,
    Open,
}

/// The consumer side of `Reader::read_array`: values one at a time, and optionally
/// whole buffers as rows, in two halves.
pub(super) trait Consumer {
    fn value(&mut self, v: u64, at: u64) -> Result<(), SnapshotError>;
    fn round(&mut self, _r: &mut Window<'_>, _state: &mut u8) -> Round {
        Round::Open
    }
    /// True when the exact loop should stop at the next line break: the consumer is
    /// mid-row and wants a round to start on a row.
    fn wants_row_start(&mut self) -> bool {
        false
    }
}

/// A [`RowSink`] consumer with the two halves' parts (the first holds the lent columns
/// during a round, the second the rows merged after them).
pub(super) struct Rows<'a, S: RowSink> {
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

    fn round(&mut self, r: &mut Window<'_>, state: &mut u8) -> Round {
        if std::mem::take(&mut self.finishing_line) && !self.sink.at_row_start() {
            // A line ended mid-row: not one row per line.
            self.enabled = false;
        }
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
        let mid = start + (end - start) / 2;
        let split = match r.buf[mid..end].iter().position(|&b| b == b'\n') {
            Some(k) => mid + k,
            None => end,
        };
        // The first half converts straight into the sink's columns (lent to it: no copy
        // to merge), the second into a part merged after it. `rayon::join` runs the
        // second beside the first when the pool has an idle thread, else after it on
        // this one: the same halves and the same merges either way.
        let mut first = std::mem::take(&mut self.parts[0]);
        let mut second = std::mem::take(&mut self.parts[1]);
        self.sink.lend(&mut first);
        let (buf, base, in_state) = (r.buf, r.base, *state);
        let first_half =
            |part: &mut S::Part| convert_region::<S>(buf, start, split, base, in_state, stride, &ctx, part);
        let (a, b) = if split < end {
            rayon::join(
                || first_half(&mut first),
                // A line break follows a value: the second half starts in state 1.
                || convert_region::<S>(buf, split, end, base, 1, stride, &ctx, &mut second),
            )
        } else {
            (first_half(&mut first), None)
        };
        let settled = self.sink.settle(&mut first, a.is_some());
        self.parts = [first, second];
        let Some(a) = a.filter(|_| settled) else {
            return self.give_up();
        };
        let more = matches!(a, RegionEnd::Open { .. }) && split < end;
        let round = resume(r, state, a, split);
        if !more {
            return round;
        }
        if *state != 1 {
            // The second half assumed a value before its line break.
            return self.give_up();
        }
        match b.filter(|_| self.sink.merge(&mut self.parts[1])) {
            Some(b) => resume(r, state, b, end),
            None => self.give_up(),
        }
    }
}

impl<'a, S: RowSink> Rows<'a, S> {
    /// A consumer feeding `sink`, with the row path on.
    pub(super) fn new(sink: &'a mut S) -> Self {
        Rows {
            sink,
            parts: Default::default(),
            enabled: true,
            finishing_line: false,
        }
    }

    /// Turns the row path off for the rest of the array (the input is not one
    /// row per line, or has an error the exact loop reports next) and lets it go on.
    fn give_up(&mut self) -> Round {
        self.enabled = false;
        Round::Open
    }
}

/// Moves the reader past a region whose rows the sink took: after the array's `]`, or to
/// `region_end` with the comma state the region ended in.
fn resume(r: &mut Window<'_>, state: &mut u8, end: RegionEnd, region_end: usize) -> Round {
    match end {
        RegionEnd::Closed { at } => {
            r.pos = at + 1;
            Round::Closed
        }
        RegionEnd::Open { state: s } => {
            *state = s;
            r.pos = region_end;
            Round::Open
        }
    }
}

/// [`fast_rows`] for one stride.
type FastRows<S> = fn(&[u8], usize, usize, u64, &<S as RowSink>::Ctx, &mut <S as RowSink>::Part) -> Option<(usize, u8)>;

/// Converts whole rows of `STRIDE` numbers (3: edges; 4, 5: locations; 6, 7: nodes) in V8's layout (`a,b,c` then `,` or `\n,`)
/// from `buf[i..]`, a row start, while a row of the longest numbers it takes (15
/// digits) still fits before `to`: the row's numbers stay in registers and no per-value state is kept.
/// Returns where it stopped (a row start, or `i` itself when it took no row) and the
/// comma state there; anything else (a longer number, other separators, the array's
/// end) is left to the general loop from the last row start. `None` when a row does not
/// convert.
#[inline(always)]
fn fast_rows<S: RowSink, const STRIDE: usize>(
    buf: &[u8],
    mut i: usize,
    to: usize,
    base: u64,
    ctx: &S::Ctx,
    part: &mut S::Part,
) -> Option<(usize, u8)> {
    // A number takes at most 15 digits and one separator here, plus the 8-byte reads.
    let row_max = STRIDE * 18 + 16;
    let mut state = 2;
    'rows: while i + row_max <= to {
        let mut row = [0u64; STRIDE];
        let mut row_at = [0u64; STRIDE];
        let mut j = i;
        for f in 0..STRIDE {
            let chunk = u64::from_le_bytes(buf[j..j + 8].try_into().unwrap_or([0; 8]));
            let Some((digits, mut v)) = swar_digits(chunk) else {
                break 'rows;
            };
            row_at[f] = base + j as u64;
            j += digits;
            if digits == 8 {
                let chunk = u64::from_le_bytes(buf[j..j + 8].try_into().unwrap_or([0; 8]));
                if let Some((more, low)) = swar_digits(chunk) {
                    if more == 8 {
                        break 'rows;
                    }
                    v = v * 10u64.pow(more as u32) + low;
                    j += more;
                }
            }
            row[f] = v;
            if f + 1 < STRIDE {
                if buf[j] != b',' {
                    break 'rows;
                }
                j += 1;
            }
        }
        // The row is whole: what follows it decides the state.
        if !S::convert(ctx, part, &row, &row_at) {
            return None;
        }
        i = j;
        match buf[i] {
            b',' => {
                i += 1;
                state = 2;
            }
            b'\n' if buf[i + 1] == b',' => {
                i += 2;
                state = 2;
            }
            b'0'..=b'9' | b'.' | b'e' | b'E' => return None,
            _ => {
                state = 1;
                break;
            }
        }
    }
    Some((i, state))
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
    let rows: Option<FastRows<S>> = match stride {
        3 => Some(fast_rows::<S, 3>),
        4 => Some(fast_rows::<S, 4>),
        5 => Some(fast_rows::<S, 5>),
        6 => Some(fast_rows::<S, 6>),
        7 => Some(fast_rows::<S, 7>),
        _ => None,
    };
    while i < to {
        let b = buf[i];
        if b.is_ascii_digit() {
            if state == 1 {
                return None;
            }
            if field == 0
                && let Some(rows) = rows
            {
                let (next, next_state) = rows(buf, i, to, base, ctx, part)?;
                if next != i {
                    i = next;
                    state = next_state;
                    continue;
                }
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
