//! A brokered peer: the channel the server handed us, and who is at the
//! other end.
//!
//! What it is: [`Peer`], a [`PeerChannel`] over our end of the socketpair
//! plus the peer's name and [`Credentials`] as the server reported them.
//! What it is not: the channel protocol (see
//! [`waypass_protocol::PeerChannel`]) or the broker requests (see
//! [`crate::Broker`], which makes peers and knows which name they came to).
//!
//! # Implementation notes
//!
//! The credentials come from the server, which read them with
//! `SO_PEERCRED` on the other client's own connection. They are what the
//! server saw when that client connected, not a check made on the
//! socketpair: `SO_PEERCRED` on a socketpair end names the process that
//! created the pair, the server.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use waypass_protocol::{Credentials, PeerChannel};

/// A direct channel to another client, with what the server told us of it.
#[derive(Debug)]
pub struct Peer {
    /// The channel over our end of the socketpair.
    pub channel: PeerChannel,
    /// The peer's registered name: for a channel we asked for, the name we
    /// connected to; for an incoming one, the requester's first registered
    /// name, or `None` when it owns none.
    pub name: Option<String>,
    /// The peer's credentials.
    pub credentials: Credentials,
}

impl Peer {
    /// Wraps a received socketpair end in a [`PeerChannel`].
    pub(crate) fn from_fd(
        fd: OwnedFd,
        name: Option<String>,
        credentials: Credentials,
    ) -> io::Result<Peer> {
        let channel = PeerChannel::new(UnixStream::from(fd))?;
        Ok(Peer {
            channel,
            name,
            credentials,
        })
    }

    /// How to call the peer in a message: its name, else `pid N`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("pid {}", self.credentials.pid),
        }
    }
}
