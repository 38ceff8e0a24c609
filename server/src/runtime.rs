//! The runtime layer: the code that knows sockets and the event loop.
//!
//! What it is: the listening socket and its lock file ([`listener`]), a
//! socket bound by another process ([`activation`]), accepting
//! ([`accept`]), the server without its loop: the client table and each
//! wakeup's receive, dispatch and flush ([`core`]), each client's calloop
//! source ([`source`]), the loop's side of it all ([`server`]), signals
//! ([`signals`]), `--spawn` children ([`spawn`]), and giving the heap of
//! clients that left back to the system ([`trim`]).
//!
//! What it is not: a decoder. It hands a client with received bytes to
//! [`crate::proto::dispatch`] and acts on what comes back (flush, or post
//! an error and disconnect); it never looks at a request's arguments.
//! Inside, `server` sits over `core` and `source`, `accept` over `server`,
//! `spawn` over `signals`, and `activation` over `listener`.

pub mod accept;
pub mod activation;
pub mod core;
pub mod listener;
pub mod server;
pub mod signals;
pub mod source;
pub mod spawn;
pub mod trim;
