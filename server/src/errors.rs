//! Why a server could not start ([`StartError`]) and why a running one
//! ended with an error ([`RunError`]): the two errors of the embedding API
//! ([`crate::ServerBuilder`], [`crate::Server`], [`crate::RunningServer`]).
//!
//! What it is not: the errors of each step. A variant wraps the step's own
//! error ([`KeymapError`], [`ListenError`], ...) and is transparent: its
//! `Display` is the step's, and its `source()` the step's source, so
//! `waypass-server: error: <cause chain>` reads as it did before the
//! builder existed.

use std::error::Error;
use std::fmt;
use std::io;

use crate::keymap::KeymapError;
use crate::limits::LimitsError;
use crate::runtime::activation::ActivationError;
use crate::runtime::listener::ListenError;
use crate::runtime::spawn::SpawnError;

/// Why [`crate::ServerBuilder::build`] (or `start_in_thread`) failed.
/// Nothing is left behind: a socket bound before the failure is removed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The limits contradict each other, or leave the clients no fds.
    Limits(LimitsError),
    /// The keymap could not be loaded.
    Keymap(KeymapError),
    /// [`crate::Settings::seat_name`] has a NUL byte.
    SeatNameNul,
    /// Creating the event loop or one of its sources failed.
    EventLoop(io::Error),
    /// Watching the signals failed ([`crate::ServerBuilder::handle_signals`]).
    Signals(io::Error),
    /// Binding the socket failed.
    Listen(ListenError),
    /// The listening socket of [`crate::ServerConfig::listener`] cannot be
    /// served.
    Adopt(ActivationError),
    /// The server's thread could not be started.
    Thread(io::Error),
    /// The server's thread panicked before it listened.
    Panicked,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Limits(e) => e.fmt(f),
            StartError::Keymap(e) => e.fmt(f),
            StartError::SeatNameNul => f.write_str("--seat-name has a NUL byte"),
            StartError::EventLoop(_) => f.write_str("cannot create the event loop"),
            StartError::Signals(_) => f.write_str("cannot watch SIGINT, SIGTERM, SIGHUP, SIGCHLD"),
            StartError::Listen(e) => e.fmt(f),
            StartError::Adopt(e) => e.fmt(f),
            StartError::Thread(_) => f.write_str("cannot start the server's thread"),
            StartError::Panicked => f.write_str("the server's thread panicked while starting"),
        }
    }
}

impl Error for StartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // Transparent: the wrapped error's Display is ours.
            StartError::Limits(e) => e.source(),
            StartError::Keymap(e) => e.source(),
            StartError::Listen(e) => e.source(),
            StartError::Adopt(e) => e.source(),
            StartError::EventLoop(e) | StartError::Signals(e) | StartError::Thread(e) => Some(e),
            StartError::SeatNameNul | StartError::Panicked => None,
        }
    }
}

/// Why [`crate::Server::run`] ended with an error rather than an exit code.
/// The socket and lock file are removed all the same.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// A [`crate::ServerConfig::spawn`] command could not be started.
    Spawn(SpawnError),
    /// Waiting for or dispatching events failed.
    EventLoop(io::Error),
    /// The server's thread panicked ([`crate::RunningServer`]).
    Panicked,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Spawn(e) => e.fmt(f),
            RunError::EventLoop(_) => f.write_str("the event loop failed"),
            RunError::Panicked => f.write_str("the server's thread panicked"),
        }
    }
}

impl Error for RunError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // Transparent, as in `StartError`.
            RunError::Spawn(e) => e.source(),
            RunError::EventLoop(e) => Some(e),
            RunError::Panicked => None,
        }
    }
}
