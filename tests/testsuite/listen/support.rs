//! Shared by the `listen` tests: a `waypass-client listen` process (a
//! [`Running`]), and in-process peers connected to bob (built on the
//! support crate's `listen_peer`, which the `listen-peer` helper program
//! also runs in other processes).

use waypass_client::{Broker, Peer};
use waypass_test_support::listen_peer::peer_of_name;
pub use waypass_test_support::listen_peer::{answer, say, Answer};
pub use waypass_test_support::Running;
use waypass_test_support::Server;

/// `waypass-client listen bob extra...`, once it said it registered.
pub fn listen(server: &Server, extra: &[&str]) -> Running {
    listen_with(server, &[], extra)
}

/// [`listen`] under a command prefix (`prlimit ...`).
pub fn listen_with(server: &Server, prefix: &[&str], extra: &[&str]) -> Running {
    let mut args = vec!["listen", "bob"];
    args.extend_from_slice(extra);
    let mut listener = Running::spawn(server, prefix, &args);
    let json = extra.contains(&"--json");
    listener.expect_line("saying it registered", |l| {
        l == "registered name bob" || (json && l.contains("\"registered\""))
    });
    listener
}

/// An in-process peer connected to bob.
pub fn peer(server: &Server) -> (Broker, Peer) {
    peer_of_name(server.socket_arg(), "bob")
}
