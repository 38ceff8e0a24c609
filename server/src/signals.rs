//! SIGINT, SIGTERM and SIGHUP as event-loop events, and undoing their
//! blocking for child processes.
//!
//! This module is the one place that blocks signals. It does not decide
//! what a reload or a shutdown does ([`crate::server::State`] does).
//!
//! # Implementation notes
//!
//! calloop's `Signals` source reads a `signalfd`, which only sees signals
//! that are blocked, so creating it blocks SIGINT, SIGTERM and SIGHUP in
//! the calling thread (and dropping it unblocks them). Create it before any
//! thread is spawned so every thread inherits the mask. A blocked mask is
//! also inherited across `fork` and `exec`: a child spawned by the server
//! would ignore Ctrl-C and `kill`. A feature that spawns children must call
//! [`restore_mask_in_child`] on its `Command`.

use std::os::unix::process::CommandExt;
use std::process::Command;

use calloop::signals::{Signal, Signals};
use log::info;
use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal};

use crate::server::State;

/// The signals the server handles through the event loop.
pub const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The same signals as a nix [`SigSet`].
fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in [NixSignal::SIGINT, NixSignal::SIGTERM, NixSignal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Blocks the handled signals and watches them with a signalfd source:
/// SIGHUP reloads the keymap, SIGINT and SIGTERM stop the loop.
pub fn register(handle: &calloop::LoopHandle<'static, State>) -> calloop::Result<()> {
    let signals = Signals::new(&HANDLED)?;
    handle
        .insert_source(signals, |event, _, state| match event.signal() {
            Signal::SIGHUP => {
                info!("SIGHUP: reloading the keymap");
                state.reload_keymap();
            }
            other => {
                info!("{other:?}: shutting down");
                state.request_stop();
            }
        })
        .map_err(|e| e.error)?;
    Ok(())
}

/// Makes a child spawned by `cmd` start with the handled signals unblocked.
#[allow(dead_code)] // For the child-spawning feature; tested below.
pub fn restore_mask_in_child(cmd: &mut Command) {
    let set = handled_set();
    // SAFETY: the closure runs between fork and exec in the child, where
    // only async-signal-safe calls are allowed. It calls pthread_sigmask
    // (async-signal-safe) on a set built before the fork, and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `SigBlk` mask of a `cat /proc/self/status` child.
    fn child_blocked_mask(restore: bool) -> u64 {
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/status");
        if restore {
            restore_mask_in_child(&mut cmd);
        }
        let out = cmd.output().expect("run cat");
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    }

    #[test]
    fn children_get_the_handled_signals_back() {
        let hup = 1u64 << (NixSignal::SIGHUP as i32 - 1);
        // The signals source blocks in this (test) thread only.
        let signals = Signals::new(&HANDLED).unwrap();
        assert_ne!(child_blocked_mask(false) & hup, 0, "mask is inherited");
        assert_eq!(child_blocked_mask(true) & hup, 0, "restored in the child");
        drop(signals);
    }
}
