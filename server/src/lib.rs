//! `waypass_server`: a Wayland-compatible keymap server and name broker on
//! calloop, as a library behind the `waypass-server` binary.
//!
//! It offers `wl_seat` with a keyboard, whose keymap is one sealed memory
//! file shared by all clients, `waypass_broker_v1`, which registers names
//! and hands two clients the ends of a fresh socketpair, and the
//! data-control clipboard protocols. Spawned children (`--spawn`) are
//! clients over `WAYLAND_SOCKET`.
//!
//! What it is not: a general compositor library. The public surface is
//! small on purpose: [`ServerConfig`] (with [`Settings`], [`BrokerLimits`]
//! and [`KeymapSource`]) and [`run`]; [`ListenFds`], for a program that
//! is socket-activated; [`Cli`], the binary's clap front end,
//! with the default `cli` feature; and, with the `fuzzing` feature,
//! `fuzzing`, which drives one client's request stream through the real
//! wakeup code without an event loop. Everything else is private.
//!
//! ```no_run
//! use waypass_server::{run, ServerConfig};
//!
//! let mut config = ServerConfig::default();
//! config.socket = Some("waypass-example".into());
//! let code = run(config).expect("server");
//! ```
//!
//! # Layers, from the bottom up
//!
//! Every `use crate::` points down this list:
//!
//! 1. `keymap`: compiling and sealing the keymap; imports nothing here.
//! 2. `config`: the configuration and every per-client limit, with their
//!    defaults (it names a `KeymapSource`).
//! 3. `state`: per-client state (`Client`, `Object`, `Flavor`,
//!    `ClientKey`, `BrokerSession`) that both layers above share.
//! 4. `proto`: the code that knows interfaces: `ctx` (what a handler works
//!    with), the handlers (`globals`, `seat`, `broker`, `clipboard`) and
//!    `dispatch` over them. No `recvmsg`, no `sendmsg`, no calloop.
//! 5. `runtime`: the code that knows sockets and the loop: `listener`,
//!    `activation` (a socket bound by another process), `accept`, `source` (a client's calloop source), `wakeup` (one
//!    receive, dispatch and flush), `server` (the client table), `signals`,
//!    `spawn`. It never decodes a request's arguments.
//! 6. `fuzzing` (feature) over `runtime::wakeup`; `cli` (feature) over
//!    `config`; this file, start-up and shut-down only: the order of the
//!    steps.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
mod cli;
mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod keymap;
mod proto;
mod runtime;
mod state;

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use calloop::EventLoop;
use log::{debug, info, warn};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use waypass_protocol::{TraceSide, Tracer};

#[cfg(feature = "cli")]
pub use crate::cli::Cli;
pub use crate::config::{BrokerLimits, ServerConfig, Settings};
use crate::keymap::Keymap;
pub use crate::keymap::{KeymapSource, RuleNames};
use crate::proto::broker::Broker;
use crate::proto::ctx::Shared;
pub use crate::runtime::activation::{ActivationError, ListenFds};
use crate::runtime::server::State;
use crate::runtime::{accept, activation, listener, signals, spawn};

/// Runs the server until SIGINT / SIGTERM (or, with
/// `exit_with_children`, until the last child exits). The exit code is
/// failure only when `exit_with_children` saw a child fail.
pub fn run(config: ServerConfig) -> Result<ExitCode, Box<dyn Error>> {
    raise_fd_limit();
    // The keymap first: a bad one must fail before the socket exists.
    let source = config.keymap;
    let keymap = Keymap::load(&source)?;
    // Logged once start-up has succeeded: a start-up failure is one line.
    let keymap_line = format!("keymap: {source} ({} bytes)", keymap.size());
    let shared = Shared::new(keymap, config.settings).map_err(|_| "--seat-name has a NUL byte")?;

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
    let bound = match config.listener {
        Some(inherited) => activation::adopt(inherited, config.socket.as_deref())?,
        None => listener::listen(config.socket.as_deref())?,
    };
    let mut state = State::new(
        shared,
        Broker::new(config.broker),
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

    // Before the children: their connections come after it.
    info!("{keymap_line}");
    info!("listening on {}", path.display());

    // After the path line: children share our stdout.
    state.children.exit_when_done(config.exit_with_children);
    for command in &config.spawn {
        let child = spawn::spawn_client(command)?;
        state.children.started(child.creds.pid, command);
        state.add_spawned_client(child.stream, child.creds)?;
    }

    event_loop.run(None, &mut state, |_| {})?;

    state.close_all();
    // Removes the socket, then the lock file, then releases the lock.
    drop(bound.files);
    info!("stopped");
    if config.exit_with_children && !state.children.all_succeeded() {
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
