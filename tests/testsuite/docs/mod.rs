//! The documentation tells the truth: the README's shell blocks and the CLI
//! reference match the binaries, and the code they show of a protocol of
//! one's own is the example crate's.

mod cli_docs;
mod examples;
mod readme;
