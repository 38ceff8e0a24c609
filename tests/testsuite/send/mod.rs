//! `waypass-client send` and the answers it gets.

mod answers;
mod cli;
mod support;
