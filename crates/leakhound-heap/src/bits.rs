//! A plain bit vector, a bit per node or per edge: the page-object flag the graph keeps,
//! the essential edges and their targets the dominators read. A leaf module.

/// A plain bit vector: `len` bits, rounded up to whole 64-bit words, all clear at first.
#[derive(Debug, Default)]
pub(crate) struct BitVec {
    words: Vec<u64>,
}

impl BitVec {
    /// `len` clear bits.
    pub(crate) fn new(len: usize) -> Self {
        BitVec {
            words: vec![0; len.div_ceil(64)],
        }
    }
    /// Sets bit `i` (below [`BitVec::len`]).
    #[inline]
    pub(crate) fn set(&mut self, i: usize) {
        self.words[i >> 6] |= 1 << (i & 63);
    }
    /// Bits held (a multiple of 64; 0 for an empty vector).
    pub(crate) fn len(&self) -> usize {
        self.words.len() * 64
    }
    /// Bit `i` (below [`BitVec::len`]).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i >> 6] & (1 << (i & 63)) != 0
    }
}
