//! `waypass-server`: a Wayland-compatible keymap server on calloop.
//!
//! It offers `wl_seat` with a keyboard; every `wl_keyboard` receives the
//! keymap as one sealed memory file shared by all clients. This file is
//! start-up and shut-down only: the order of the steps, and turning
//! failures into a message and a non-zero exit. See `--help` for usage.
//!
//! Modules, from the bottom up: [`cli`], [`keymap`], [`listener`] (socket
//! and lock files), [`client`] (per-client state and its event source),
//! [`dispatch`] with [`globals`] and [`seat`] (the protocol), [`server`]
//! (the socket side), [`accept`] and [`signals`] (the other sources).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod accept;
mod cli;
mod client;
mod dispatch;
mod globals;
mod keymap;
mod listener;
mod seat;
mod server;
mod signals;

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use calloop::EventLoop;
use clap::Parser;
use log::{debug, info, warn};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use waypass_protocol::{TraceSide, Tracer};

use crate::cli::Cli;
use crate::dispatch::Shared;
use crate::keymap::Keymap;
use crate::server::State;

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not only a log line: RUST_LOG=off must not hide why we quit.
            eprintln!("waypass-server: {}", describe(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn Error>> {
    raise_fd_limit();
    // The keymap first: a bad one must fail before the socket exists.
    let source = cli.keymap_source();
    let keymap = Keymap::load(&source)?;
    info!("keymap: {source} ({} bytes)", keymap.size());
    let shared = Shared::new(keymap, cli.settings()).map_err(|_| "--seat-name has a NUL byte")?;

    let mut event_loop: EventLoop<'static, State> = EventLoop::try_new()?;
    // Before anything else could spawn threads (see `signals`).
    signals::register(&event_loop.handle())?;
    let bound = listener::listen(cli.socket.as_deref())?;
    let mut state = State::new(
        shared,
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
    info!("listening on {}", path.display());

    event_loop.run(None, &mut state, |_| {})?;

    state.close_all();
    // Removes the socket, then the lock file, then releases the lock.
    drop(bound.files);
    info!("stopped");
    Ok(())
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
