//! Each node's class index, as compactly as the class count allows. A leaf (apart from
//! the ordinals): the graph stores it, `classes.rs` fills it, the views read it.

use crate::ids::NodeId;

/// Each node's class index: 16 bits a node while there are at most 65,536 classes (a
/// heap of a few hundred to a few thousand classes is usual), 32 bits past that.
#[derive(Debug)]
pub(crate) enum ClassOf {
    /// Every index fits 16 bits.
    Narrow(Vec<u16>),
    /// Some index does not.
    Wide(Vec<u32>),
}

impl Default for ClassOf {
    fn default() -> Self {
        ClassOf::Narrow(Vec::new())
    }
}

impl ClassOf {
    /// `n` nodes of class 0.
    pub(crate) fn new(n: usize) -> Self {
        ClassOf::Narrow(vec![0; n])
    }

    /// The class index of node `o` (`o` below the node count).
    #[inline]
    pub(crate) fn get(&self, o: NodeId) -> u32 {
        match self {
            ClassOf::Narrow(v) => v[o as usize] as u32,
            ClassOf::Wide(v) => v[o as usize],
        }
    }

    /// Sets node `o`'s class, widening every index to 32 bits the first time one needs it.
    #[inline]
    pub(crate) fn set(&mut self, o: NodeId, class: u32) {
        match self {
            ClassOf::Narrow(v) => match u16::try_from(class) {
                Ok(c) => v[o as usize] = c,
                Err(_) => {
                    let mut wide: Vec<u32> = v.iter().map(|&c| c as u32).collect();
                    wide[o as usize] = class;
                    *self = ClassOf::Wide(wide);
                }
            },
            ClassOf::Wide(v) => v[o as usize] = class,
        }
    }
}
