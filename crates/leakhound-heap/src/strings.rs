//! The snapshot's `strings` table, interned once in one byte arena.

/// All strings of a snapshot in one arena: `text` holds them back to back, `ends[i]` is
/// the end of string `i`. Offsets are `u64`, so more than 2^32 bytes of strings work.
/// Strings the engine adds (class names such as `(system)`, interface names such as
/// `{a, b}`, `Detached …` names) are appended after the file's own, exactly as DevTools
/// appends them to its `strings` array.
#[derive(Debug, Default, Clone)]
pub struct Strings {
    /// One `String`, so reading a string back is a slice (two char-boundary checks), not
    /// a UTF-8 validation of its bytes.
    text: String,
    ends: Vec<u64>,
}

impl Strings {
    /// An empty table.
    pub fn new() -> Self {
        Strings::default()
    }

    /// Number of strings.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the table is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends a string and returns its index.
    ///
    /// # Panics
    /// Never for valid UTF-8 input; the caller passes `&str`.
    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u64);
        (self.ends.len() - 1) as u32
    }

    /// String `index`, or `""` if out of range.
    #[inline]
    pub fn get(&self, index: u32) -> &str {
        let i = index as usize;
        if i >= self.ends.len() {
            return "";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends[i] as usize;
        // Every end is a char boundary (whole `&str`s are pushed); "" defensively.
        self.text.get(start..end).unwrap_or("")
    }

    /// Indices of every string equal to `s` (usually zero or one: V8 deduplicates).
    pub fn find_all(&self, s: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut start = 0usize;
        for (i, &end) in self.ends.iter().enumerate() {
            let end = end as usize;
            if &self.text.as_bytes()[start..end] == s.as_bytes() {
                out.push(i as u32);
            }
            start = end;
        }
        out
    }

    /// Calls `f(index, string)` for every string.
    pub fn for_each(&self, mut f: impl FnMut(u32, &str)) {
        let mut start = 0usize;
        for (i, &end) in self.ends.iter().enumerate() {
            let end = end as usize;
            f(i as u32, self.text.get(start..end).unwrap_or(""));
            start = end;
        }
    }

    /// Total bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 8
    }
}

/// A small set of string indices (all indices of one text), for name tests in hot loops.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrSet(Vec<u32>);

impl StrSet {
    pub(crate) fn of(strings: &Strings, s: &str) -> Self {
        StrSet(strings.find_all(s))
    }
    #[inline]
    pub(crate) fn contains(&self, index: u32) -> bool {
        self.0.contains(&index)
    }
}
