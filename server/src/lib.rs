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
//! small on purpose: [`ServerConfig`] (with [`Settings`], [`Limits`]
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
//! 1. `keymap`: compiling and sealing the keymap; `limits`: every limit,
//!    by name, checked against each other; both import nothing here.
//! 2. `config`: the configuration, with its defaults (it names a
//!    `KeymapSource` and `Limits`); `ledger`: the accounting of what
//!    clients hold, against the budgets of `limits`.
//! 3. `state`: per-client state (`Client`, `Object`, `Flavor`,
//!    `ClientKey`, `BrokerSession`) and the client table (`Clients`) that
//!    both layers above share.
//! 4. `proto`: the code that knows interfaces: `ctx` (what a handler works
//!    with), the handlers (`globals`, `seat`, `broker`, `clipboard`) and
//!    `dispatch` over them. No `recvmsg`, no `sendmsg`, no calloop.
//! 5. `runtime`: the code that knows sockets and the loop: `listener`,
//!    `activation` (a socket bound by another process), `accept`, `core`
//!    (the server without its loop: each wakeup's receive, dispatch and
//!    flush, and the end of each loop pass), `source` (a client's calloop
//!    source), `server` (the loop's side), `signals`, `spawn`. It never
//!    decodes a request's arguments.
//! 6. `fuzzing` (feature) over `runtime::core`; `cli` (feature) over
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
mod ledger;
mod limits;
mod proto;
mod runtime;
mod state;

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use calloop::EventLoop;
use log::{debug, info, warn};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::getuid;
use waypass_protocol::{TraceSide, Tracer};

#[cfg(feature = "cli")]
pub use crate::cli::Cli;
pub use crate::config::{ServerConfig, Settings};
use crate::keymap::Keymap;
pub use crate::keymap::{KeymapSource, RuleNames};
use crate::ledger::Ledger;
pub use crate::limits::{Limits, LimitsError};
use crate::proto::ctx::Shared;
pub use crate::runtime::activation::{ActivationError, ListenFds};
use crate::runtime::core::Core;
use crate::runtime::server::State;
use crate::runtime::{accept, activation, listener, signals, spawn};

/// Runs the server until SIGINT / SIGTERM (or, with
/// `exit_with_children`, until the last child exits). The exit code is
/// failure only when `exit_with_children` saw a child fail.
pub fn run(config: ServerConfig) -> Result<ExitCode, Box<dyn Error>> {
    let limits = config.limits;
    limits.check()?;
    let fd_limit = raise_fd_limit();
    // The keymap first: a bad one must fail before the socket exists.
    let source = config.keymap;
    let keymap = Keymap::load(&source)?;
    // Logged once start-up has succeeded: a start-up failure is one line.
    let keymap_line = format!("keymap: {source} ({} bytes)", keymap.size());
    let shared =
        Shared::new(keymap, config.settings, limits).map_err(|_| "--seat-name has a NUL byte")?;

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
    // Every fd the server itself needs is open now: the rest is the
    // clients' budget (see `limits`).
    let budgets = limits.budgets(fd_limit, open_fds())?;
    let ledger = Ledger::new(&limits, budgets, getuid().as_raw());
    let core = Core::new(shared, ledger, Tracer::from_env(TraceSide::Server));
    let mut state = State::new(core, source, event_loop.handle(), event_loop.get_signal());
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
        state.add_spawned_client(child.stream, child.creds);
    }

    // After each pass: announcements, other clients' flushes, cut-offs.
    event_loop.run(None, &mut state, State::end_of_pass)?;

    state.close_all();
    // Removes the socket, then the lock file, then releases the lock.
    drop(bound.files);
    info!("stopped");
    if config.exit_with_children && !state.children.all_succeeded() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (each client is an
/// fd) and returns the soft limit now in force.
fn raise_fd_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                debug!("RLIMIT_NOFILE raised from {soft} to {hard}");
                hard
            }
            Err(e) => {
                warn!("cannot raise RLIMIT_NOFILE from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => {
            debug!("RLIMIT_NOFILE is {soft}, already the hard limit");
            soft
        }
        Err(e) => {
            warn!("cannot read RLIMIT_NOFILE ({e}); assuming 1024");
            1024
        }
    }
}

/// The fds this process has open (`/proc/self/fd`), or a guess.
fn open_fds() -> u64 {
    match std::fs::read_dir("/proc/self/fd") {
        // One entry is the directory's own fd, closed again.
        Ok(dir) => (dir.count() as u64).saturating_sub(1),
        Err(_) => 32,
    }
}
