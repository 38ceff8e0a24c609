//! `waypass_server`: a Wayland-compatible keymap server and name broker on
//! calloop, as a library behind the `waypass-server` binary.
//!
//! It offers `wl_seat` with a keyboard, whose keymap is one sealed memory
//! file shared by all clients, and `waypass_broker_v1`, which registers
//! names and hands two clients the ends of a fresh socketpair. `--spawn`
//! starts children as clients over `WAYLAND_SOCKET`.
//!
//! What it is not: a general compositor library. The public surface is
//! small on purpose: [`Cli`] and [`run`] for the binary, and [`fuzzing`],
//! which drives one client's request stream through the real decode and
//! dispatch code without an event loop. Everything else is private.
//!
//! Modules, from the bottom up: `cli`, `keymap`, `listener` (socket and
//! lock files), `client` (per-client state and its event source),
//! `dispatch` with `globals`, `seat` and `broker` (the protocol), `server`
//! (the socket side), `accept`, `signals` and `spawn` (the other sources).
//! This file is start-up and shut-down only: the order of the steps.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod accept;
mod broker;
mod cli;
mod client;
mod dispatch;
pub mod fuzzing;
mod globals;
mod keymap;
mod listener;
mod seat;
mod server;
mod signals;
mod spawn;

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use calloop::EventLoop;
use log::{debug, info, warn};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use waypass_protocol::{TraceSide, Tracer};

use crate::broker::Broker;
pub use crate::cli::Cli;
use crate::dispatch::Shared;
use crate::keymap::Keymap;
use crate::server::State;

/// Runs the server until SIGINT / SIGTERM (or, with
/// `--exit-with-children`, until the last child exits). The exit code is
/// failure only when `--exit-with-children` saw a child fail.
pub fn run(cli: Cli) -> Result<ExitCode, Box<dyn Error>> {
    raise_fd_limit();
    // The keymap first: a bad one must fail before the socket exists.
    let source = cli.keymap_source();
    let keymap = Keymap::load(&source)?;
    // Logged once start-up has succeeded: a start-up failure is one line.
    let keymap_line = format!("keymap: {source} ({} bytes)", keymap.size());
    let shared = Shared::new(keymap, cli.settings()).map_err(|_| "--seat-name has a NUL byte")?;

    let mut event_loop: EventLoop<'static, State> = EventLoop::try_new()?;
    // Before anything else could spawn threads or children (see `signals`).
    signals::register(
        &event_loop.handle(),
        |request, state: &mut State| match request {
            signals::Request::Reload => state.reload_keymap(),
            signals::Request::Reap => state.reap_children(),
            signals::Request::Stop => state.request_stop(),
        },
    )?;
    let bound = listener::listen(cli.socket.as_deref())?;
    let mut state = State::new(
        shared,
        Broker::new(cli.broker_limits()),
        source,
        Tracer::from_env(TraceSide::Server),
        event_loop.handle(),
        event_loop.get_signal(),
    );
    accept::register(&mut state, bound.listener)?;

    let path = bound.files.socket();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", path.display())?;
    stdout.flush()?;
    drop(stdout);

    // After the path line: children share our stdout.
    state.children.exit_when_done(cli.exit_with_children);
    for command in &cli.spawn {
        let child = spawn::spawn_client(command)?;
        state.children.started(child.creds.pid, command);
        state.add_spawned_client(child.stream, child.creds)?;
    }
    info!("{keymap_line}");
    info!("listening on {}", path.display());

    event_loop.run(None, &mut state, |_| {})?;

    state.close_all();
    // Removes the socket, then the lock file, then releases the lock.
    drop(bound.files);
    info!("stopped");
    if cli.exit_with_children && !state.children.all_succeeded() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: each client is an fd.
fn raise_fd_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => debug!("RLIMIT_NOFILE raised from {soft} to {hard}"),
            Err(e) => warn!("cannot raise RLIMIT_NOFILE from {soft} to {hard}: {e}"),
        },
        Ok((soft, _)) => debug!("RLIMIT_NOFILE is {soft}, already the hard limit"),
        Err(e) => warn!("cannot read RLIMIT_NOFILE: {e}"),
    }
}

/// An error and its chain of sources, as "a: b: c".
pub fn describe(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
