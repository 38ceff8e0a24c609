//! The runtime layer: the code that knows sockets and the event loop.
//!
//! What it is: the listening socket and its lock file ([`listener`]),
//! accepting ([`accept`]), each client's calloop source ([`source`]), one
//! wakeup's receive, dispatch and flush ([`wakeup`]), the client table and
//! output for clients other than the one being served ([`server`]), signals
//! ([`signals`]), `--spawn` children ([`spawn`]), and giving the heap of
//! clients that left back to the system ([`trim`]).
//!
//! What it is not: a decoder. It hands a client with received bytes to
//! [`crate::proto::dispatch`] and acts on what comes back (flush, or post
//! an error and disconnect); it never looks at a request's arguments.
//! Inside, `server` sits over `wakeup` and `source`, `accept` over `server`,
//! and `spawn` over `signals`.

pub mod accept;
pub mod listener;
pub mod server;
pub mod signals;
pub mod source;
pub mod spawn;
pub mod trim;
pub mod wakeup;
