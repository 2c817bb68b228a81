//! leakhound-hunt (work in progress).
