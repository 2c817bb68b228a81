//! The dominator tree's child lists (DevTools' `buildDominatedNodes`) in about
//! `4.2 + 4 · (share of nodes with children)` bytes a node instead of 8.
//!
//! DevTools keeps the children of every node back to back in `dominatedNodes` and each
//! node's start in `firstDominatedNodeIndex`, one 32-bit word per node. In a heap's
//! dominator tree most nodes are leaves (57 % of a 1.4 M-node Node.js heap), so here only
//! the nodes with children have a start: a bit per node says which, and a node's place
//! among them is a rank, read from a per-word running count and one popcount.
//!
//! Building takes no memory beyond the result: the child counts are counted in the
//! child-list array itself (one word longer while it is built), the starts are written
//! from them as list ends, and the lists are then filled backwards with those as
//! cursors, which leaves each at its list's start and gives DevTools' order within a
//! list (descending ordinal).

use crate::ids::NodeId;

/// The dominator tree as child lists. Shapes, for `n` nodes of which `k` have children:
/// `dominated` has `n − 1` entries (every node but the root), `has_children` `n` bits,
/// `rank_base` one entry per 64 nodes, `first` `k + 1`.
#[derive(Debug, Default)]
pub(crate) struct DominatorTree {
    /// Children of every node, node after node in ordinal order; within a node's list in
    /// descending ordinal order.
    dominated: Vec<NodeId>,
    /// Bit `d`: node `d` has children.
    has_children: Vec<u64>,
    /// `rank_base[w]`: set bits of `has_children` before word `w`.
    rank_base: Vec<u32>,
    /// `first[r]`: start in `dominated` of the `r`th node with children (in ordinal
    /// order); `first[k]` = `dominated.len()`.
    first: Vec<u32>,
}

impl DominatorTree {
    /// Builds the child lists from `dominator` (`dominator[o]` = immediate dominator of `o`;
    /// `root`'s own entry is ignored). Each entry must be a node ordinal below
    /// `dominator.len()`, as the dominator computation gives.
    pub(crate) fn build(dominator: &[NodeId], root: NodeId) -> Self {
        let n = dominator.len();
        // Child counts, in the buffer that then holds the lists.
        let mut dominated = vec![0u32; n];
        for (o, &d) in dominator.iter().enumerate() {
            if o as NodeId != root {
                dominated[d as usize] += 1;
            }
        }
        let mut has_children = vec![0u64; n.div_ceil(64)];
        let mut rank_base = Vec::with_capacity(has_children.len());
        let mut first = Vec::new();
        let mut total = 0u32;
        for (w, word) in has_children.iter_mut().enumerate() {
            rank_base.push(first.len() as u32);
            for (b, &count) in dominated[w * 64..(w * 64 + 64).min(n)].iter().enumerate() {
                if count > 0 {
                    *word |= 1 << b;
                    total += count;
                    // The end of the list for now: the fill moves it to the start.
                    first.push(total);
                }
            }
        }
        first.push(total);
        let mut tree = DominatorTree {
            dominated: Vec::new(),
            has_children,
            rank_base,
            first,
        };
        // Fill backwards from each list's end; `first[r]` ends at the list's start.
        for (o, &d) in dominator.iter().enumerate() {
            if o as NodeId == root {
                continue;
            }
            let r = tree.rank(d as usize);
            tree.first[r] -= 1;
            dominated[tree.first[r] as usize] = o as NodeId;
        }
        dominated.truncate(n.saturating_sub(1));
        tree.dominated = dominated;
        tree
    }

    /// Children of `node` (empty when the tree was not built or `node` is out of range).
    #[inline]
    pub(crate) fn children(&self, node: NodeId) -> &[NodeId] {
        let d = node as usize;
        match self.has_children.get(d >> 6) {
            Some(&word) if word >> (d & 63) & 1 == 1 => {
                let r = self.rank(d);
                &self.dominated[self.first[r] as usize..self.first[r + 1] as usize]
            }
            _ => &[],
        }
    }

    /// Place of node `d` among the nodes with children before it.
    #[inline]
    fn rank(&self, d: usize) -> usize {
        let below = self.has_children[d >> 6] & ((1u64 << (d & 63)) - 1);
        self.rank_base[d >> 6] as usize + below.count_ones() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::DominatorTree;

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
        // Random trees, some with a hub of hundreds or thousands of children, over
        // many 64-node words.
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
        // One node with many children, next to leaves.
        for k in [254usize, 255, 256, 257, 600] {
            let mut dominator = vec![0u32; k + 2];
            for d in dominator.iter_mut().skip(2) {
                *d = 1;
            }
            check(&dominator, 0);
        }
    }
}
