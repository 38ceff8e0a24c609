//! The end-to-end suite: one test binary with a module per area (the
//! layout of cargo's own `tests/testsuite/`). Each test runs the real
//! binaries, which `waypass_test_support::bin` builds from the current
//! sources first, against private sockets in temporary directories.
//!
//! What it is not: tests that change the whole process (its environment,
//! its fd limit) or count its own fds: those are in `tests/alone/`, a
//! binary of their own. Tests that need root are
//! `#[ignore = "needs root: ..."]`; `make test` runs them when it is root.
//!
//! Run one area with `cargo test --test testsuite listen::`.

mod broker;
mod client;
mod clipboard;
mod docs;
mod hardening;
mod hostile;
mod interop;
mod listen;
mod project;
mod send;
mod server;
