//! Accepting connections on the listening socket without ever spinning.
//!
//! This module registers the listening socket with the event loop and
//! turns each accepted stream over to [`State::add_client`]. It does not
//! create the socket ([`crate::runtime::listener`] does) and knows nothing of the
//! protocol.
//!
//! # Implementation notes
//!
//! When the process is out of fds, `accept()` fails with `EMFILE` while
//! the pending connection stays in the backlog, so the level-triggered
//! listening fd stays readable: libwayland and wayland-rs both spin the CPU
//! here (gamescope#96, wslg#105). Two defences, as nginx and others do:
//!
//! - **A reserve fd.** We keep `/dev/null` open. On `EMFILE` we close it,
//!   accept the connection, close that at once (the peer sees a hang-up,
//!   not a hang), log a warning and reopen the reserve. The backlog drains,
//!   so the fd stops being readable.
//! - **A back-off.** If that is not enough (`ENFILE`, `ENOBUFS`, `ENOMEM`:
//!   the whole system is short, or the reserve could not be reopened), the
//!   listener is disabled and a calloop `Timer` re-enables it after
//!   [`BACKOFF`]. Clients already connected carry on meanwhile.
//!
//! At most [`ACCEPT_BATCH`] connections are taken per wakeup so a flood of
//! connects cannot starve connected clients; the level-triggered source
//! wakes us again for the rest.

use std::fs::File;
use std::io;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use calloop::generic::Generic;
use calloop::timer::{TimeoutAction, Timer};
use calloop::{Interest, Mode, PostAction};
use log::{error, info, warn};
use nix::errno::Errno;

use crate::runtime::server::State;

/// Connections accepted per wakeup at most.
pub const ACCEPT_BATCH: usize = 32;
/// How long the listener rests when the system is out of resources.
pub const BACKOFF: Duration = Duration::from_millis(250);

/// The spare fd closed to make room for accepting (and refusing) a client.
struct Reserve(Option<File>);

impl Reserve {
    fn open() -> Reserve {
        Reserve(File::open("/dev/null").ok())
    }
}

/// Registers `listener` (already non-blocking) with the state's loop.
pub fn register(state: &mut State, listener: UnixListener) -> calloop::Result<()> {
    let mut reserve = Reserve::open();
    if reserve.0.is_none() {
        warn!("cannot open a reserve fd on /dev/null; relying on back-off alone");
    }
    let source = Generic::new(listener, Interest::READ, Mode::Level);
    let token = state
        .handle()
        .insert_source(source, move |_, listener, state| {
            Ok(accept_ready(listener.as_ref(), state, &mut reserve))
        })
        .map_err(|e| e.error)?;
    state.listener_token = Some(token);
    Ok(())
}

fn accept_ready(listener: &UnixListener, state: &mut State, reserve: &mut Reserve) -> PostAction {
    for _ in 0..ACCEPT_BATCH {
        match listener.accept() {
            Ok((stream, _)) => state.add_client(stream),
            // Backlog drained.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // Interrupted, or the peer gave up before we accepted: next one.
            Err(e) if matches!(errno_of(&e), Some(Errno::EINTR | Errno::ECONNABORTED)) => {}
            Err(e) if errno_of(&e) == Some(Errno::EMFILE) => match refuse_one(listener, reserve) {
                Refusal::Refused => {}
                // Linux checks for a free fd before looking at the backlog,
                // so EMFILE also comes with nothing waiting: stop here.
                Refusal::Drained => break,
                Refusal::NoReserve => return back_off(state, &e),
            },
            Err(e) => return back_off(state, &e),
        }
    }
    PostAction::Continue
}

/// Disables the listener for [`BACKOFF`] after `e`.
fn back_off(state: &mut State, e: &io::Error) -> PostAction {
    error!("accept failed: {e}; not accepting for {BACKOFF:?}");
    if schedule_enable(state) {
        return PostAction::Disable;
    }
    // Without the timer the listener would stay off for good: better busy
    // wakeups than to stop serving.
    PostAction::Continue
}

/// What [`refuse_one`] did.
enum Refusal {
    /// A waiting connection was accepted and closed; the reserve is back.
    Refused,
    /// Nothing was waiting; the reserve is back.
    Drained,
    /// There is no reserve (or it could not be reopened).
    NoReserve,
}

/// Out of fds: spends the reserve to accept one connection and close it.
fn refuse_one(listener: &UnixListener, reserve: &mut Reserve) -> Refusal {
    if reserve.0.take().is_none() {
        return Refusal::NoReserve;
    }
    let outcome = match listener.accept() {
        Ok((stream, _)) => {
            warn!("out of file descriptors: refused a connection (RLIMIT_NOFILE reached)");
            drop(stream);
            Refusal::Refused
        }
        // The backlog is empty: the EMFILE was about fds, not a client.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Refusal::Drained,
        Err(e) => {
            warn!("out of file descriptors; accept with the reserve failed: {e}");
            Refusal::Drained
        }
    };
    *reserve = Reserve::open();
    match reserve.0 {
        Some(_) => outcome,
        None => Refusal::NoReserve,
    }
}

/// Arms a timer that re-enables the listener after [`BACKOFF`]; returns
/// whether it is armed.
fn schedule_enable(state: &mut State) -> bool {
    let Some(token) = state.listener_token else {
        return false;
    };
    let timer = Timer::from_duration(BACKOFF);
    let inserted = state.handle().insert_source(timer, move |_, _, state| {
        match state.handle().enable(&token) {
            Ok(()) => info!("accepting connections again"),
            Err(e) => error!("cannot re-enable the listener: {e}"),
        }
        TimeoutAction::Drop
    });
    match inserted {
        Ok(_) => true,
        Err(e) => {
            error!("cannot arm the accept back-off timer: {}", e.error);
            false
        }
    }
}

fn errno_of(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}
