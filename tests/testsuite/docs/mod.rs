//! The documentation tells the truth: the README's shell blocks and the CLI
//! reference match the binaries.

mod cli_docs;
mod readme;
