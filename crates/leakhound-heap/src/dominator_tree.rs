//! The dominator tree's child lists (DevTools' `buildDominatedNodes`), in about 4.4 bytes
//! per node instead of 8.
//!
//! DevTools keeps the children of every node back to back in `dominatedNodes` and each
//! node's start in `firstDominatedNodeIndex`, one 32-bit word per node. Here the starts
//! are a degree sequence: a bit vector where node `d` writes a 1 followed by one 0 per
//! child, in ordinal order, closed by one more 1. The children before node `d`'s are
//! the zeros before its 1, so `start(d) = select1(d) − d`, and its children are the zeros
//! after it. `select1` (the position of the k-th 1) reads a sampled position (every
//! [`SAMPLE`]th 1) and counts bits from there: about two words on average.
//!
//! Building needs no per-node offset array either: child counts are counted in a byte per
//! node (counts of 255 and more go to a side map), the bit vector is written from them,
//! and the child lists are filled backwards from each list's end, which also gives
//! DevTools' order within a list (descending ordinal).

use std::collections::HashMap;

use crate::snapshot::NodeId;

/// Every `SAMPLE`th 1 of the degree sequence has its position sampled.
const SAMPLE: u64 = 64;

/// The dominator tree as child lists. Shapes: `dominated` has one entry per node but the
/// root; `degrees` has `2 · n + 1` bits for `n` nodes.
#[derive(Debug, Default)]
pub(crate) struct DominatorTree {
    /// Children of every node, node after node in ordinal order; within a node's list in
    /// descending ordinal order.
    dominated: Vec<NodeId>,
    /// The degree sequence (see the module doc), least significant bit first.
    degrees: Vec<u64>,
    /// `samples[i]` = position of the `(i · SAMPLE)`th 1 of `degrees`.
    samples: Vec<u64>,
    /// Number of nodes (0 when the tree was not built).
    node_count: usize,
}

impl DominatorTree {
    /// Builds the child lists from `dominator` (`dominator[o]` = immediate dominator of `o`;
    /// `root`'s own entry is ignored). Each entry must be a node ordinal below
    /// `dominator.len()`, as the dominator computation gives.
    pub(crate) fn build(dominator: &[NodeId], root: NodeId) -> Self {
        let n = dominator.len();
        // Child counts, a byte per node; 255 means "in `large`".
        let mut counts = vec![0u8; n];
        let mut large: HashMap<NodeId, u32> = HashMap::new();
        for (o, &d) in dominator.iter().enumerate() {
            if o as NodeId == root {
                continue;
            }
            let c = &mut counts[d as usize];
            if *c < u8::MAX - 1 {
                *c += 1;
            } else if *c == u8::MAX - 1 {
                *c = u8::MAX;
                large.insert(d, u8::MAX as u32);
            } else if let Some(big) = large.get_mut(&d) {
                *big += 1;
            }
        }
        let count_of = |counts: &[u8], large: &HashMap<NodeId, u32>, d: usize| match counts[d] {
            u8::MAX => large.get(&(d as NodeId)).copied().unwrap_or(0),
            c => c as u32,
        };
        // The degree sequence and its samples.
        let bits = 2 * n as u64 + 1;
        let mut degrees = vec![0u64; bits.div_ceil(64) as usize];
        let mut samples = Vec::with_capacity((n as u64 + 1).div_ceil(SAMPLE) as usize);
        let mut position = 0u64;
        for d in 0..=n {
            if (d as u64).is_multiple_of(SAMPLE) {
                samples.push(position);
            }
            degrees[(position >> 6) as usize] |= 1 << (position & 63);
            position += 1;
            if d < n {
                position += count_of(&counts, &large, d) as u64;
            }
        }
        let mut tree = DominatorTree {
            dominated: Vec::new(),
            degrees,
            samples,
            node_count: n,
        };
        // Fill each list backwards from its end; the count left is the next free slot.
        // Two threads, each owning the lists of half the dominators (and their counts):
        // the writes are random, so the halves overlap their cache misses.
        let mut dominated = vec![0; n.saturating_sub(1)];
        let mid = n / 2;
        let (low_counts, high_counts) = counts.split_at_mut(mid);
        let (low_list, high_list) = dominated.split_at_mut(tree.start(mid));
        let (low_large, high_large): (HashMap<_, _>, HashMap<_, _>) =
            large.into_iter().partition(|&(d, _)| (d as usize) < mid);
        let part = |counts: &mut [u8], mut large: HashMap<NodeId, u32>, list: &mut [NodeId], first: usize| {
            let base = tree.start(first);
            let range = first..first + counts.len();
            for (o, &d) in dominator.iter().enumerate() {
                if o as NodeId == root || !range.contains(&(d as usize)) {
                    continue;
                }
                let left = match &mut counts[d as usize - first] {
                    c if *c == u8::MAX => large.get_mut(&d).map_or(0, |b| {
                        *b -= 1;
                        *b
                    }),
                    c => {
                        *c -= 1;
                        *c as u32
                    }
                };
                list[tree.start(d as usize) - base + left as usize] = o as NodeId;
            }
        };
        std::thread::scope(|scope| {
            let h = scope.spawn(|| part(high_counts, high_large, high_list, mid));
            part(low_counts, low_large, low_list, 0);
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
        drop(counts);
        tree.dominated = dominated;
        tree
    }

    /// Children of `node` (empty when the tree was not built or `node` is out of range).
    #[inline]
    pub(crate) fn children(&self, node: NodeId) -> &[NodeId] {
        let d = node as usize;
        if d >= self.node_count {
            return &[];
        }
        // Node d's 1, then its children's zeros up to the next 1.
        let one = self.select1(d as u64);
        let next = self.next_one(one + 1);
        let start = (one - d as u64) as usize;
        &self.dominated[start..start + (next - one - 1) as usize]
    }

    /// Index in `dominated` where node `d`'s list starts.
    #[inline]
    fn start(&self, d: usize) -> usize {
        (self.select1(d as u64) - d as u64) as usize
    }

    /// Position of the `k`th 1 (from 0) of the degree sequence.
    #[inline]
    fn select1(&self, k: u64) -> u64 {
        let from = self.samples[(k / SAMPLE) as usize];
        let mut rest = k % SAMPLE;
        let mut w = (from >> 6) as usize;
        let mut word = self.degrees[w] & (!0u64 << (from & 63));
        loop {
            let ones = word.count_ones() as u64;
            if rest < ones {
                return (w as u64) * 64 + select_in_word(word, rest as u32) as u64;
            }
            rest -= ones;
            w += 1;
            word = self.degrees[w];
        }
    }

    /// Position of the first 1 at or after `from` (there is one: the closing 1).
    #[inline]
    fn next_one(&self, from: u64) -> u64 {
        let mut w = (from >> 6) as usize;
        let mut word = self.degrees[w] & (!0u64 << (from & 63));
        while word == 0 {
            w += 1;
            word = self.degrees[w];
        }
        (w as u64) * 64 + word.trailing_zeros() as u64
    }
}

/// Position of the `k`th set bit (from 0) of `x`, which has more than `k` set bits.
/// Byte counts by the usual SWAR popcount, their prefix sums by one multiplication, then
/// at most seven steps inside the byte.
#[inline]
fn select_in_word(x: u64, k: u32) -> u32 {
    const L8: u64 = 0x0101_0101_0101_0101;
    let mut s = x - ((x >> 1) & 0x5555_5555_5555_5555);
    s = (s & 0x3333_3333_3333_3333) + ((s >> 2) & 0x3333_3333_3333_3333);
    s = (s + (s >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // Byte i of `prefix`: set bits in bytes 0..=i.
    let prefix = s.wrapping_mul(L8);
    let k = k as u64;
    let mut byte = 0u32;
    while (prefix >> (byte * 8)) & 0xff <= k {
        byte += 1;
    }
    let before = if byte == 0 {
        0
    } else {
        (prefix >> (byte * 8 - 8)) & 0xff
    };
    let mut b = (x >> (byte * 8)) & 0xff;
    for _ in 0..k - before {
        b &= b - 1;
    }
    byte * 8 + b.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::{DominatorTree, select_in_word};

    #[test]
    fn selects_inside_a_word() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = seed & (seed >> 3);
            let ones: Vec<u32> = (0..64).filter(|&i| x >> i & 1 == 1).collect();
            for (k, &at) in ones.iter().enumerate() {
                assert_eq!(select_in_word(x, k as u32), at, "{x:#x} k={k}");
            }
        }
        assert_eq!(select_in_word(u64::MAX, 63), 63);
        assert_eq!(select_in_word(1 << 63, 0), 63);
    }

    /// The CSR DevTools builds, for comparison.
    fn reference(dominator: &[u32], root: u32) -> Vec<Vec<u32>> {
        let mut lists = vec![Vec::new(); dominator.len()];
        for (o, &d) in dominator.iter().enumerate().rev() {
            if o as u32 != root {
                lists[d as usize].push(o as u32);
            }
        }
        lists
    }

    fn check(dominator: &[u32], root: u32) {
        let tree = DominatorTree::build(dominator, root);
        let want = reference(dominator, root);
        for (d, list) in want.iter().enumerate() {
            assert_eq!(tree.children(d as u32), list.as_slice(), "children of {d}");
        }
        assert!(tree.children(dominator.len() as u32).is_empty());
    }

    #[test]
    fn matches_the_offset_array_form() {
        // Small shapes: a lone root, a chain, a star, a root that is not ordinal 0.
        check(&[0], 0);
        check(&[0, 0, 1, 2, 3], 0);
        check(&[0; 10], 0);
        check(&[1, 1, 1, 0, 3], 1);
        // Random trees, some with a node of 255, 256 and thousands of children (the side
        // map), and more nodes than one sample covers.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let n = 1 + (next() % 3000) as usize;
            let hub = (next() % n as u64) as u32;
            let hub_share = [0, 255, 256, 1000][round % 4];
            let dominator: Vec<u32> = (0..n)
                .map(|o| {
                    if o == 0 {
                        0
                    } else if (next() % 1000) < hub_share.min(999) && hub as usize != o {
                        hub
                    } else {
                        (next() % o as u64) as u32
                    }
                })
                .collect();
            check(&dominator, 0);
        }
        // Exactly 255 and 256 children of one node.
        for k in [254usize, 255, 256, 257, 600] {
            let mut dominator = vec![0u32; k + 2];
            for d in dominator.iter_mut().skip(2) {
                *d = 1;
            }
            check(&dominator, 0);
        }
    }
}
