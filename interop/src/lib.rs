//! Interop peers built on libwayland, for `tests/matrix.rs`.
//!
//! What it is: two small programs, `lw-client` (a wayland-rs client on
//! libwayland-client) and `lw-server` (a wayland-rs compositor on
//! libwayland-server), that reuse the root package's wayland-rs test peers
//! (`tests/server_support/wlrs_client.rs`, `tests/support/wlrs_server.rs`)
//! compiled against the system backends. What it is not: part of waypass,
//! or a general test harness; this library only holds what both programs
//! share.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

/// How long a peer waits for the other side before calling it hung: a
/// hang detector, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);
