//! SIGINT, SIGTERM, SIGHUP and SIGCHLD as event-loop events, and undoing
//! their blocking for child processes.
//!
//! This module is the one place that blocks signals. It does not decide
//! what a reload or a shutdown does: it hands a [`Request`] to the caller's
//! function (the crate root wires it to the server's state), so it depends
//! on no other module of the server.
//!
//! # Implementation notes
//!
//! calloop's `Signals` source reads a `signalfd`, which only sees signals
//! that are blocked, so creating it blocks SIGINT, SIGTERM, SIGHUP and
//! SIGCHLD in the calling thread (and dropping it unblocks them). Create it
//! before any thread is spawned so every thread inherits the mask. A blocked
//! mask is also inherited across `fork` and `exec`: a child spawned by the
//! server would ignore Ctrl-C and `kill`. So is an ignored disposition, and
//! the Rust runtime ignores SIGPIPE. Code that spawns children calls
//! [`reset_in_child`] on its `Command`.

use std::os::unix::process::CommandExt;
use std::process::Command;

use calloop::signals::{Signal, Signals};
use log::{debug, info};
use nix::sys::signal::{
    sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal as NixSignal,
};

/// The signals the server handles through the event loop.
pub const HANDLED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGCHLD,
];

/// Signals whose disposition a child gets back to the default: the handled
/// ones, and SIGPIPE, which the Rust runtime ignores.
const RESET_IN_CHILD: [NixSignal; 5] = [
    NixSignal::SIGINT,
    NixSignal::SIGTERM,
    NixSignal::SIGHUP,
    NixSignal::SIGCHLD,
    NixSignal::SIGPIPE,
];

/// What a handled signal asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGHUP: reload the keymap.
    Reload,
    /// SIGCHLD: reap `--spawn` children.
    Reap,
    /// SIGINT or SIGTERM: stop.
    Stop,
}

/// Blocks the handled signals and watches them with a signalfd source,
/// calling `on` with what each asks for: SIGHUP a reload, SIGINT and
/// SIGTERM a stop, SIGCHLD reaping `--spawn` children.
pub fn register<S: 'static>(
    handle: &calloop::LoopHandle<'static, S>,
    mut on: impl FnMut(Request, &mut S) + 'static,
) -> calloop::Result<()> {
    let signals = Signals::new(&HANDLED)?;
    handle
        .insert_source(signals, move |event, _, state| {
            let request = match event.signal() {
                Signal::SIGHUP => {
                    info!("SIGHUP: reloading the keymap");
                    Request::Reload
                }
                Signal::SIGCHLD => {
                    debug!("SIGCHLD: reaping children");
                    Request::Reap
                }
                other => {
                    info!("{other:?}: shutting down");
                    Request::Stop
                }
            };
            on(request, state);
        })
        .map_err(|e| e.error)?;
    Ok(())
}

/// Makes a child spawned by `cmd` start with no signal blocked and the
/// default disposition for [`HANDLED`] and SIGPIPE, as a fresh process.
pub fn reset_in_child(cmd: &mut Command) {
    let empty = SigSet::empty();
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: the closure runs between fork and exec in the child, where
    // only async-signal-safe calls are allowed. It calls pthread_sigmask
    // and sigaction (both async-signal-safe) with values built before the
    // fork, and allocates nothing. `sigaction` is unsafe because installing
    // a handler can break code that relies on the old one; SIG_DFL installs
    // no handler, and the process is about to exec anyway.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&empty), None)?;
            for signal in RESET_IN_CHILD {
                sigaction(signal, &default)?;
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `SigBlk` and `SigIgn` masks of a `cat /proc/self/status` child.
    fn child_masks(reset: bool) -> (u64, u64) {
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/status");
        if reset {
            reset_in_child(&mut cmd);
        }
        let out = cmd.output().expect("run cat");
        let text = String::from_utf8(out.stdout).unwrap();
        let mask = |key: &str| {
            let line = text.lines().find_map(|l| l.strip_prefix(key)).unwrap();
            u64::from_str_radix(line.trim(), 16).unwrap()
        };
        (mask("SigBlk:"), mask("SigIgn:"))
    }

    #[test]
    fn children_get_the_handled_signals_back() {
        let bit = |s: NixSignal| 1u64 << (s as i32 - 1);
        // The signals source blocks in this (test) thread only.
        let signals = Signals::new(&HANDLED).unwrap();
        let (blocked, _) = child_masks(false);
        assert_ne!(blocked & bit(NixSignal::SIGHUP), 0, "mask is inherited");
        let (blocked, ignored) = child_masks(true);
        assert_eq!(blocked, 0, "nothing blocked in the child");
        assert_eq!(ignored & bit(NixSignal::SIGPIPE), 0, "SIGPIPE default");
        drop(signals);
    }
}
