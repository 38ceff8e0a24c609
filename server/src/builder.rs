//! Starting and stopping a server: [`ServerBuilder`] (the steps of
//! start-up, in their order), [`Server`] (a server that listens, and its
//! shut-down) and [`StopHandle`].
//!
//! What it is not: the loop's callbacks ([`crate::runtime::server`]), a
//! thread ([`crate::RunningServer`] runs a server in one), or a user
//! interface: the library prints nothing on stdout and leaves signals to
//! its host unless asked ([`ServerBuilder::handle_signals`]). The binary
//! prints the socket path itself.
//!
//! # Implementation notes
//!
//! - **Listening at `build`.** The socket is bound and listening before
//!   `build` returns, so a client may connect at once: its connection waits
//!   in the backlog until [`Server::run`] accepts it.
//! - **Stopping is a calloop ping.** [`StopHandle::stop`] writes to an
//!   eventfd that the loop watches; the loop then stops as on SIGTERM. A
//!   stop before `run` is kept (the eventfd stays readable) and ends `run`
//!   at its first wakeup.
//! - **Children start in `run`**, not in `build`: the binary prints the
//!   socket path between the two, and the children share its stdout.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use calloop::ping::{make_ping, Ping};
use calloop::EventLoop;
use log::{debug, info, warn};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::getuid;
use waypass_protocol::{TraceSide, Tracer};

use crate::config::ServerConfig;
use crate::errors::{RunError, StartError};
use crate::keymap::Keymap;
use crate::ledger::Ledger;
use crate::proto::clipboard::persist::Persistence;
use crate::proto::clipboard::Clipboard;
use crate::proto::ctx::Shared;
use crate::proto::extension::{Extensions, Global};
use crate::runtime::core::Core;
use crate::runtime::listener::SocketFiles;
use crate::runtime::server::State;
use crate::runtime::{accept, activation, listener, signals};

/// How to start a server: its configuration, and whether it handles the
/// process's signals. [`ServerBuilder::build`] starts it listening.
///
/// ```no_run
/// use waypass_server::{ServerBuilder, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config.socket = Some("/tmp/waypass-example".into());
/// let server = ServerBuilder::new(config).build().expect("listening");
/// println!("{}", server.socket_path().display());
/// let stop = server.stop_handle(); // for another thread
/// let code = server.run().expect("ran");
/// ```
#[must_use = "a builder does nothing until `build` or `start_in_thread`"]
#[derive(Debug)]
pub struct ServerBuilder {
    config: ServerConfig,
    handle_signals: bool,
    extensions: Extensions,
}

impl ServerBuilder {
    /// A server with `config`, leaving signals alone.
    pub fn new(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            handle_signals: false,
            extensions: Extensions::default(),
        }
    }

    /// Adds a global of one's own, announced after the built-in ones (in
    /// the order added) and served by `global`'s handlers: see [`Global`].
    pub fn global<G: Global>(mut self, global: G) -> ServerBuilder {
        self.extensions.push(global);
        self
    }

    /// Whether the server handles the process's signals (default: no):
    /// SIGINT and SIGTERM stop it, SIGHUP reloads the keymap, SIGCHLD
    /// reaps its children. It blocks them in the thread that calls
    /// [`ServerBuilder::build`] and reads them through a signalfd, so it
    /// fits a program whose main thread builds the server before starting
    /// any thread (a thread started earlier still gets them), as
    /// `waypass-server` does; a program embedding the server keeps its own
    /// handlers and calls [`StopHandle::stop`].
    pub fn handle_signals(mut self, yes: bool) -> ServerBuilder {
        self.handle_signals = yes;
        self
    }

    /// Loads the keymap, checks the limits and binds (or adopts) the
    /// socket. Once this returns, the server listens: connections wait in
    /// the backlog until [`Server::run`].
    pub fn build(self) -> Result<Server, StartError> {
        let ServerBuilder {
            config,
            handle_signals,
            extensions,
        } = self;
        let limits = config.limits;
        limits.check().map_err(StartError::Limits)?;
        let fd_limit = raise_fd_limit();
        // The keymap first: a bad one must fail before the socket exists.
        let source = config.keymap;
        let keymap = Keymap::load(&source).map_err(StartError::Keymap)?;
        // Logged once start-up has succeeded: a start-up failure is one line.
        let keymap_line = format!("keymap: {source} ({} bytes)", keymap.size());
        let mut shared =
            Shared::new(keymap, config.settings, limits).map_err(|_| StartError::SeatNameNul)?;
        shared.extension_interfaces = extensions.interfaces();

        let event_loop: EventLoop<'static, State> =
            EventLoop::try_new().map_err(|e| StartError::EventLoop(e.into()))?;
        if handle_signals {
            // Before anything else could spawn threads or children (see
            // `signals`).
            signals::register(
                &event_loop.handle(),
                |request, state: &mut State| match request {
                    signals::Request::Reload => state.reload_keymap(),
                    signals::Request::Reap => state.reap_children(),
                    signals::Request::Stop => state.request_stop(),
                },
            )
            .map_err(|e| StartError::Signals(e.into()))?;
        }
        let (stop, stop_source) = make_ping().map_err(StartError::EventLoop)?;
        event_loop
            .handle()
            .insert_source(stop_source, |(), (), state| {
                info!("asked to stop: shutting down");
                state.request_stop();
            })
            .map_err(|e| StartError::EventLoop(e.error.into()))?;
        let bound = match config.listener {
            Some(inherited) => {
                activation::adopt(inherited, config.socket.as_deref()).map_err(StartError::Adopt)?
            }
            None => listener::listen(config.socket.as_deref()).map_err(StartError::Listen)?,
        };
        // Every fd the server itself needs is open now: the rest is the
        // clients' budget (see `limits`).
        // Kept selections hold up to a memfd and a pipe per type of each
        // of the two selections, outside every client's budget.
        let keeping = match shared.settings.persist {
            Some(_) => 2 * 2 * limits.mime_types,
            None => 0,
        };
        let mut budgets = limits
            .budgets(fd_limit, open_fds() + keeping)
            .map_err(StartError::Limits)?;
        if shared.settings.persist.is_none() {
            budgets = budgets.without_pastes(&limits);
        }
        let ledger = Ledger::new(&limits, budgets, getuid().as_raw());
        let tracer = Tracer::from_env(TraceSide::Server);
        let mut core = Core::new(shared, ledger, tracer, extensions);
        let keep = core.shared.settings.persist.map(|p| p.max_bytes);
        let persistence = Persistence::new(keep, &limits, &budgets, getuid().as_raw());
        core.clipboard = Clipboard::new(persistence);
        let mut state = State::new(core, source, event_loop.handle(), event_loop.get_signal());
        accept::register(&mut state, bound.listener)
            .map_err(|e| StartError::EventLoop(e.into()))?;
        state.children.exit_when_done(config.exit_with_children);

        info!("{keymap_line}");
        info!("listening on {}", bound.files.socket().display());
        Ok(Server {
            event_loop,
            state,
            files: bound.files,
            spawn: config.spawn,
            exit_with_children: config.exit_with_children,
            stop,
        })
    }
}

/// A server that listens, built by [`ServerBuilder::build`]: call
/// [`Server::run`] to serve. Dropped without running, it removes its
/// socket.
pub struct Server {
    event_loop: EventLoop<'static, State>,
    state: State,
    /// The socket and lock file, removed when the server ends.
    files: SocketFiles,
    spawn: Vec<String>,
    exit_with_children: bool,
    stop: Ping,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("socket", &self.files.socket())
            .field("spawn", &self.spawn)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The listening socket's path, made absolute.
    pub fn socket_path(&self) -> &Path {
        self.files.socket()
    }

    /// A handle that stops the server, from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            ping: self.stop.clone(),
        }
    }

    /// Starts the [`ServerConfig::spawn`] children, then serves until
    /// stopped ([`StopHandle::stop`], SIGINT or SIGTERM with
    /// [`ServerBuilder::handle_signals`], or, with `exit_with_children`,
    /// when the last child has exited). On the way out it closes every
    /// client and removes its socket and lock file (only files it
    /// created). The exit code is failure only when `exit_with_children`
    /// saw a child fail.
    pub fn run(self) -> Result<ExitCode, RunError> {
        let Server {
            mut event_loop,
            mut state,
            files,
            spawn,
            exit_with_children,
            stop: _stop,
        } = self;
        let mut served = Ok(());
        for command in &spawn {
            if let Err(e) = state.spawn_child(command) {
                served = Err(RunError::Spawn(e));
                break;
            }
        }
        if served.is_ok() {
            // After each pass: announcements, other clients' flushes,
            // cut-offs.
            served = event_loop
                .run(None, &mut state, State::end_of_pass)
                .map_err(|e| RunError::EventLoop(e.into()));
        }

        state.close_all();
        // Removes the socket, then the lock file, then releases the lock.
        drop(files);
        info!("stopped");
        served?;
        if exit_with_children && !state.children.all_succeeded() {
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Stops a [`Server`] from any thread, as SIGTERM does: the loop wakes,
/// closes every client and removes the socket. Stopping twice, or after
/// the server has ended, does nothing more.
#[derive(Clone)]
pub struct StopHandle {
    ping: Ping,
}

impl fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopHandle").finish_non_exhaustive()
    }
}

impl StopHandle {
    /// Asks the server to stop; returns at once ([`Server::run`] returns
    /// once it has).
    pub fn stop(&self) {
        debug!("stop requested");
        self.ping.ping();
    }
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
