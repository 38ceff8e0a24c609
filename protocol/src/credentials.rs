//! [`Credentials`]: who is at the other end of a Unix socket.
//!
//! What it is: the pid, uid and gid that `SO_PEERCRED` reports, one type
//! for the server (which reads them on each client's connection) and the
//! clients (to which the broker reports each other's). What it is not: an
//! authorisation check; the caller decides what to trust.
//!
//! `SO_PEERCRED` names the process that connected (or, for a socketpair,
//! the one that created it), as it was at that moment.

use std::fmt;
use std::io;
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

/// A process's pid, uid and gid, as `SO_PEERCRED` reads them.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use waypass_protocol::Credentials;
///
/// let (a, _b) = UnixStream::pair()?;
/// let us = Credentials::of_peer(&a)?;
/// assert_eq!(us.pid, std::process::id() as i32);
/// assert_eq!(us.to_string(), format!("pid {} uid {} gid {}", us.pid, us.uid, us.gid));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Credentials {
    /// `SO_PEERCRED` of a connected Unix socket.
    pub fn of_peer(socket: &impl AsFd) -> io::Result<Credentials> {
        let c = getsockopt(socket, PeerCredentials)?;
        Ok(Credentials {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
        })
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} uid {} gid {}", self.pid, self.uid, self.gid)
    }
}
