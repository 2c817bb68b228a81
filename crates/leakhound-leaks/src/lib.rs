//! leakhound-leaks (work in progress).
