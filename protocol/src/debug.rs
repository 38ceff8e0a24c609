//! `WAYLAND_DEBUG` protocol tracing in libwayland's format (skeleton).

use std::os::fd::AsRawFd;

use crate::interface::{Interface, MessageDesc};
use crate::wire::Arg;

/// Which end of the connection this process is, for `WAYLAND_DEBUG=client|server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSide {
    /// A client: traces with `WAYLAND_DEBUG=1`, `all` or `client`.
    Client,
    /// A server: traces with `WAYLAND_DEBUG=1`, `all` or `server`.
    Server,
}

/// Whether a message was sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by this process (printed with ` -> `).
    Sent,
    /// Received by this process.
    Received,
}

/// Prints messages to stderr when `WAYLAND_DEBUG` asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Tracer {
    enabled: bool,
}

impl Tracer {
    /// Reads `WAYLAND_DEBUG` for `side`.
    pub fn from_env(side: TraceSide) -> Self {
        todo!()
    }

    /// A tracer that is on or off regardless of the environment.
    pub fn new(enabled: bool) -> Self {
        Tracer { enabled }
    }

    /// Whether tracing is on: check before building arguments.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Prints one message line to stderr, if enabled. `object_interface`
    /// names the interface of an object id, for `object` arguments.
    pub fn trace<Fd: AsRawFd>(
        &self,
        direction: Direction,
        interface: &Interface,
        id: u32,
        desc: &MessageDesc,
        args: &[Arg<'_, Fd>],
        object_interface: &dyn Fn(u32) -> Option<&'static str>,
    ) {
        todo!()
    }
}

/// Formats one trace line (without the trailing newline) at time `micros`
/// (microseconds, as libwayland's clock reading).
pub fn format_trace<Fd: AsRawFd>(
    micros: u64,
    direction: Direction,
    interface: &Interface,
    id: u32,
    desc: &MessageDesc,
    args: &[Arg<'_, Fd>],
    object_interface: &dyn Fn(u32) -> Option<&'static str>,
) -> String {
    todo!()
}
