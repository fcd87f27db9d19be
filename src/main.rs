//! The `spares` command-line interface.
fn main() {}
