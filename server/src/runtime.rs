//! The runtime layer: the code that knows sockets and the event loop.
//!
//! What it is: the listening socket and its lock file ([`listener`]), a
//! socket bound by another process ([`activation`]), accepting
//! ([`accept`]), each client's calloop source ([`source`]), one wakeup's
//! receive, dispatch and flush ([`wakeup`]), the client table and output
//! for clients other than the one being served ([`server`]), signals
//! ([`signals`]) and `--spawn` children ([`spawn`]).
//!
//! What it is not: a decoder. It hands a client with received bytes to
//! [`crate::proto::dispatch`] and acts on what comes back (flush, or post
//! an error and disconnect); it never looks at a request's arguments.
//! Inside, `server` sits over `wakeup` and `source`, `accept` over `server`,
//! `spawn` over `signals`, and `activation` over `listener`.

pub mod accept;
pub mod activation;
pub mod listener;
pub mod server;
pub mod signals;
pub mod source;
pub mod spawn;
pub mod wakeup;
