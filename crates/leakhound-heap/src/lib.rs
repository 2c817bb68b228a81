//! leakhound-heap (work in progress).
