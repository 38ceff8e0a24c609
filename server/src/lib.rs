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
//! small on purpose: [`ServerBuilder`], which starts a [`Server`] from a
//! [`ServerConfig`] (with [`Settings`], [`Limits`] and [`KeymapSource`]),
//! on the caller's thread or in a thread of its own ([`RunningServer`]),
//! and a [`StopHandle`] that stops it; [`ListenFds`], for a program that
//! is socket-activated; `Cli`, the binary's clap front end, with the
//! default `cli` feature; and, with the `fuzzing` feature, `fuzzing`,
//! which drives one client's request stream through the real wakeup code
//! without an event loop. Everything else is private.
//!
//! As a library it prints nothing on stdout, leaves the process's signals
//! alone (unless [`ServerBuilder::handle_signals`]) and reaps only the
//! children it spawned: a host program keeps its own.
//!
//! ```no_run
//! use waypass_server::{ServerBuilder, ServerConfig};
//!
//! let mut config = ServerConfig::default();
//! config.socket = Some("waypass-example".into());
//! let server = ServerBuilder::new(config).start_in_thread().expect("listening");
//! println!("clients connect to {}", server.socket_path().display());
//! // ... until the host is done with it:
//! let code = server.stop_and_join().expect("stopped");
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
//! 6. `errors`: why a server could not start or run; `builder`: the
//!    order of the steps of start-up and shut-down ([`ServerBuilder`],
//!    [`Server`], [`StopHandle`]); `running`: a server in its own thread;
//!    `fuzzing` (feature) over `runtime::core`; `cli` (feature) over
//!    `config`; this file, the public names only.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod builder;
#[cfg(feature = "cli")]
mod cli;
mod config;
mod errors;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod keymap;
mod ledger;
mod limits;
mod persist;
mod proto;
mod running;
mod runtime;
mod state;

pub use crate::builder::{Server, ServerBuilder, StopHandle};
#[cfg(feature = "cli")]
pub use crate::cli::Cli;
pub use crate::config::{Persist, ServerConfig, Settings};
pub use crate::errors::{RunError, StartError};
pub use crate::keymap::{KeymapError, KeymapSource, RuleNames};
pub use crate::limits::{Limits, LimitsError};
pub use crate::proto::extension::{ClientId, Global, GlobalCx, GlobalError};
pub use crate::running::RunningServer;
pub use crate::runtime::activation::{ActivationError, ListenFds};
pub use crate::runtime::listener::ListenError;
pub use crate::runtime::spawn::SpawnError;
/// The protocol library the server is built on: the types of its public
/// signatures ([`ObjectId`], [`Credentials`], the errors inside
/// [`KeymapError`] and [`ListenError`]) and `interfaces!` for a protocol of
/// one's own, reachable without a dependency of one's own on it (generate
/// with `interfaces!("x.xml", crate = waypass_server::waypass_protocol)`).
pub use waypass_protocol;
pub use waypass_protocol::{Credentials, ObjectId};
