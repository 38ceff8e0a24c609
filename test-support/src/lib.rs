//! What waypass's end-to-end tests (the root package's `tests/`), the bench
//! (`bench/`) and the libwayland interop checks (`interop/`) share: the
//! workspace binaries built from the current sources, private temporary
//! directories, a running `waypass-server`, client processes read line by
//! line, raw and wayland-rs Wayland peers, a wayland-rs test compositor,
//! headless sway, readings of `/proc`, and a copier scripted per type
//! for the tests of `--persist`.
//!
//! What it is not: part of waypass, or published. Helpers only one test
//! area uses stay beside that area's tests.
#![deny(unsafe_op_in_unsafe_fn)]

mod binaries;
pub mod broker_peer;
pub mod clipboard;
pub mod listen_peer;
pub mod load;
pub mod persist;
mod process;
mod procfs;
pub mod raw;
mod running;
mod server;
pub mod sway;
mod temp;
pub mod wlrs_client;
pub mod wlrs_server;

pub use binaries::{bin, bin_dir, workspace_root};
pub use process::{
    eventually, first_line, run_client, run_client_with, run_with_patience, wait_timeout,
    FirstLineError, PATIENCE,
};
pub use procfs::{fd_count, rss_kib};
pub use running::Running;
pub use server::Server;
pub use temp::TempDir;
