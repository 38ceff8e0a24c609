//! In-process peers of a `waypass-client listen` (the client library's
//! `Broker` and `PeerChannel`) that can send what the real `send` never
//! would: shared by the `listen` tests and the `listen-peer` helper
//! program, which runs them in another process or as another user.
//!
//! What it is not: a listener, or a checker of what the listener printed
//! (the tests read that).

use std::ffi::OsStr;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use waypass_client::{
    Broker, BrokerError, ChannelError, ConnectOptions, Failure, Peer, PeerChannel,
};
use waypass_protocol::protocols::broker::waypass_peer_v1::req;

use crate::PATIENCE;

/// Fds attached to each hostile text of [`flood`]: libwayland's most per
/// `sendmsg`, and the most a channel may leave unclaimed.
pub const FDS_PER_TEXT: usize = 28;

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

/// `text(serial 1, "x")` to object 1 of a channel, as raw bytes.
pub fn text_message() -> Vec<u8> {
    let words = [1u32, 20 << 16 | u32::from(req::TEXT), 1, 2];
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    bytes.extend_from_slice(b"x\0\0\0");
    bytes
}

/// Opens up to `n` channels to bob on `socket`, each with a text carrying
/// [`FDS_PER_TEXT`] fds; returns those the server established (the
/// listener may close them at once). A channel the server refuses (`busy`)
/// is skipped.
pub fn flood(socket: &str, n: usize) -> (Broker, Vec<Peer>) {
    let mut broker = Broker::connect(Some(socket)).expect("broker");
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let fds = [file.as_raw_fd(); FDS_PER_TEXT];
    let bytes = text_message();
    let mut peers = Vec::new();
    for _ in 0..n {
        let mut options = ConnectOptions::default();
        options.reply_timeout = PATIENCE;
        let peer = match broker.connect_to("bob", options) {
            Ok(peer) => peer,
            Err(BrokerError::Refused {
                reason: Failure::Busy,
                ..
            }) => continue,
            Err(e) => panic!("connect: {e}"),
        };
        let socket = peer.channel.as_fd().as_raw_fd();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        // The listener may have closed the channel already (EPIPE).
        let _ = sendmsg::<()>(
            socket,
            &[IoSlice::new(&bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        peers.push(peer);
    }
    (broker, peers)
}
