//! End-to-end tests that need the test process to themselves, in a binary
//! of their own: two count this process's fds (`client_fd_leaks`,
//! `hardening_broker_churn`), two raise its fd limit
//! (`hardening_many_clients`, `clipboard_persist_pasters`), two point its
//! environment at a server for wl-clipboard-rs, which reads only
//! `WAYLAND_DISPLAY` (`clipboard_wl_clipboard_rs`,
//! `clipboard_persist_wl_clipboard_rs`). Beside the suite's other tests,
//! in one process, the first two would count others' fds and the last two
//! would leak `WAYLAND_DISPLAY` into every process the others spawn. Each test here
//! holds [`alone`] while it runs, so they also run one at a time.
//!
//! What it is not: the rest of the suite (`tests/testsuite/`).

use std::sync::{Mutex, MutexGuard};

mod client_fd_leaks;
mod clipboard_persist_pasters;
mod clipboard_persist_wl_clipboard_rs;
mod clipboard_wl_clipboard_rs;
mod hardening_broker_churn;
mod hardening_many_clients;

/// Holds the process for one test: the others of this binary wait. A test
/// that panicked leaves nothing to protect, so a poisoned lock is taken.
fn alone() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
