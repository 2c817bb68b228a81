//! leakhound-report (work in progress).
