//! The `leakhound` command line.
fn main() {}
