//! Shared by the `listen` tests: a `waypass-client listen` process (a
//! [`Running`](crate::running::Running)), and in-process peers (the client library's
//! `Broker` and `PeerChannel`) that can send what the real `send` never
//! would.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::time::Duration;

use crate::common::{Server, PATIENCE};
pub use crate::running::Running;
use waypass_client::{Broker, ChannelError, ConnectOptions, Peer, PeerChannel, PeerMessage};

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
    peer_of(server.socket_arg())
}

/// An in-process peer connected to bob on `socket`.
pub fn peer_of(socket: impl AsRef<OsStr>) -> (Broker, Peer) {
    peer_of_name(socket, "bob")
}

/// An in-process peer connected to `name` (`bob`, or `bob@UID`) on `socket`.
pub fn peer_of_name(socket: impl AsRef<OsStr>, name: &str) -> (Broker, Peer) {
    let socket = socket.as_ref().to_str().expect("utf-8 socket path");
    let mut broker = Broker::connect(Some(socket)).expect("broker");
    let peer = broker
        .connect_to(name, ConnectOptions::default())
        .expect("connected to bob");
    (broker, peer)
}

/// How the listener answered our message `serial`.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Acked.
    Acked,
    /// Refused, with this reason.
    Refused(String),
}

/// Waits for the answer to `serial`, skipping progress messages.
pub fn answer(channel: &mut PeerChannel, serial: u32) -> Answer {
    match channel.wait_ack(serial, Some(PATIENCE)) {
        Ok(()) => Answer::Acked,
        Err(ChannelError::Refused { reason, .. }) => Answer::Refused(reason),
        Err(e) => panic!("no answer to {serial}: {e:?}"),
    }
}

/// Sends a text and returns the answer.
pub fn say(channel: &mut PeerChannel, text: &str) -> Answer {
    let serial = channel.send_text(text).expect("send text");
    answer(channel, serial)
}

/// Drops any message left in the channel's inbox (acks of earlier serials).
pub fn drain(channel: &mut PeerChannel) {
    while let Ok(Some(m)) = channel.recv(Some(Duration::ZERO)) {
        assert!(!matches!(m, PeerMessage::Text { .. }), "unexpected {m:?}");
    }
}
