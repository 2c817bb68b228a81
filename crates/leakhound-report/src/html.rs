//! The self-contained HTML report of a hunt (work in progress).
