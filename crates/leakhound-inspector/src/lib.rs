//! leakhound-inspector (work in progress).
