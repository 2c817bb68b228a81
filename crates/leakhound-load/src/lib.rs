//! leakhound-load (work in progress).
