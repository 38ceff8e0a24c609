//! A brokered peer: the channel the server handed us, and who is at the
//! other end.
//!
//! What it is: [`Peer`], a [`PeerChannel`] over our end of the socketpair
//! plus the peer's name and [`Credentials`] as the server reported them,
//! and [`IncomingPeer`], a peer that connected to one of our names. What it
//! is not: the channel protocol (see [`waypass_protocol::PeerChannel`]) or
//! the broker requests (see [`crate::Broker`]).
//!
//! # Implementation notes
//!
//! The credentials come from the server, which read them with
//! `SO_PEERCRED` on the other client's own connection. They are what the
//! server saw when that client connected, not a check made on the
//! socketpair: `SO_PEERCRED` on a socketpair end names the process that
//! created the pair, the server.

use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use waypass_protocol::PeerChannel;

use crate::broker::{BrokerError, NameHandle};

/// A process's pid, uid and gid, as the server read them with `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} uid {} gid {}", self.pid, self.uid, self.gid)
    }
}

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
    ) -> Result<Peer, BrokerError> {
        let channel = PeerChannel::new(UnixStream::from(fd)).map_err(BrokerError::ChannelSetup)?;
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

/// Another client connected to one of our names (`waypass_name_v1.peer`).
#[derive(Debug)]
pub struct IncomingPeer {
    /// Which of our names it connected to.
    pub to: NameHandle,
    /// The peer.
    pub peer: Peer,
}
