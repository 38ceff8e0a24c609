//! Fds in flight: sent over the socket and not yet read by the peer.
//!
//! What it is: [`SentLog`], a record of recent `sendmsg` calls (how much
//! socket memory each took, how many fds it carried) that, together with
//! `SIOCOUTQ`, gives an upper bound on the fds the peer has not read yet.
//! What it is not: a limit; the caller decides what to do with the count
//! ([`Connection::fds_in_flight`](super::Connection::fds_in_flight)).
//!
//! # Implementation notes
//!
//! - **Why count them.** The kernel charges an fd sent over a Unix socket
//!   and not yet received to the sender's user, against the sender's
//!   `RLIMIT_NOFILE` (`too_many_unix_fds`; past it every `sendmsg` with an
//!   fd fails with `ETOOMANYREFS`), and keeps charging it while the peer
//!   holds its end open unread, even after the sender closed its own.
//! - **How.** `SIOCOUTQ` on a Unix stream socket is `sk_wmem_alloc`: the
//!   memory of the skbs this socket sent that the peer has not fully
//!   consumed, 0 exactly when it has read everything. The peer consumes
//!   skbs in order, so the unread ones are always the newest. Each
//!   `sendmsg` made while fds may be in flight is logged with the growth of
//!   `SIOCOUTQ` across it (the skb memory it took) and its fd count; later,
//!   the newest entries whose sizes add up to the current `SIOCOUTQ` are
//!   the unread ones, and older entries are dropped.
//! - **Never an undercount.** A peer that reads while we send makes a
//!   logged size smaller than the truth, never larger, and skbs sent while
//!   nothing was logged only add to `SIOCOUTQ`: both make the walk keep
//!   more entries, so the count errs high. An fd counts until the skb that
//!   carried it is wholly read (the kernel hands it over with the skb's
//!   first byte).
//! - **Cost.** Two `ioctl`s around each `sendmsg` while an fd may be in
//!   flight, one per [`SentLog::trim`]; none for a connection that sends no
//!   fds, or whose peer has read the ones it got.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// One logged `sendmsg`: the socket memory it took (a lower bound) and its
/// fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    memory: usize,
    fds: usize,
}

/// Recent `sendmsg`s that may not have been read, oldest first.
#[derive(Debug, Default)]
pub(super) struct SentLog {
    entries: VecDeque<Sent>,
    /// The fds of `entries`.
    fds: usize,
}

impl SentLog {
    /// Fds sent that the peer may not have read.
    pub(super) fn fds(&self) -> usize {
        self.fds
    }

    /// Whether a `sendmsg` carrying `fds` fds must be logged: it carries
    /// fds, or logged ones are still unread (its memory is needed to tell
    /// where they lie).
    pub(super) fn wants(&self, fds: usize) -> bool {
        fds > 0 || !self.entries.is_empty()
    }

    /// Logs a `sendmsg` of `fds` fds, given `SIOCOUTQ` just before and just
    /// after it.
    pub(super) fn push(&mut self, before: usize, after: usize, fds: usize) {
        self.entries.push_back(Sent {
            memory: after.saturating_sub(before),
            fds,
        });
        self.fds += fds;
    }

    /// Drops the entries the peer has read, given `SIOCOUTQ` now.
    pub(super) fn trim(&mut self, unread_memory: usize) {
        let mut covered = 0;
        let mut keep = 0;
        for sent in self.entries.iter().rev() {
            if covered >= unread_memory {
                break;
            }
            covered += sent.memory;
            keep += 1;
        }
        let read = self.entries.len() - keep;
        for sent in self.entries.drain(..read) {
            self.fds -= sent.fds;
        }
        if self.entries.is_empty() {
            self.entries = VecDeque::new();
        }
    }
}

/// `SIOCOUTQ`: the memory of what `socket` sent that the peer has not read.
/// nix has no wrapper for this ioctl.
pub(super) fn unread_memory(socket: BorrowedFd<'_>) -> io::Result<usize> {
    let mut unread: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one `int` through its pointer
    // argument, which points to `unread`, live for the call; `socket` is a
    // borrowed, open fd. The ioctl changes nothing.
    let r = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // Never negative; if it were, count everything as unread.
    Ok(usize::try_from(unread).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn log(entries: &[(usize, usize)]) -> SentLog {
        let mut log = SentLog::default();
        for &(memory, fds) in entries {
            log.push(0, memory, fds);
        }
        log
    }

    #[test]
    fn nothing_unread_drops_everything() {
        let mut l = log(&[(100, 2), (100, 0), (100, 3)]);
        assert_eq!(l.fds(), 5);
        l.trim(0);
        assert_eq!(l.fds(), 0);
        assert!(!l.wants(0));
    }

    #[test]
    fn the_newest_entries_covering_the_unread_memory_are_kept() {
        let mut l = log(&[(100, 2), (100, 0), (100, 3)]);
        l.trim(100);
        assert_eq!(l.fds(), 3);
        l.trim(150);
        assert_eq!(l.fds(), 3, "an entry is not revived");
        let mut l = log(&[(100, 2), (100, 1), (100, 3)]);
        l.trim(150);
        assert_eq!(l.fds(), 4, "a partly read entry counts");
    }

    #[test]
    fn a_send_with_fds_is_logged_even_with_an_empty_log() {
        assert!(SentLog::default().wants(1));
        assert!(!SentLog::default().wants(0));
    }

    #[test]
    fn unlogged_memory_keeps_every_entry() {
        let mut l = log(&[(100, 2), (0, 1)]);
        l.trim(1000);
        assert_eq!(l.fds(), 3);
        assert!(l.wants(0));
    }

    #[test]
    fn a_read_during_the_send_makes_the_entry_smaller_never_larger() {
        let mut l = SentLog::default();
        l.push(500, 300, 1);
        assert_eq!(l.entries[0].memory, 0);
    }

    #[test]
    fn an_ioctl_failure_is_an_error_not_nothing_unread() {
        // SIOCOUTQ on a file that is not a socket fails (ENOTTY): it must
        // not read as "the peer has read everything".
        let file =
            nix::sys::memfd::memfd_create("not-a-socket", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        assert!(unread_memory(file.as_fd()).is_err());
    }

    #[test]
    fn unread_memory_grows_with_what_the_peer_has_not_read() {
        use std::io::{Read, Write};
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(unread_memory(a.as_fd()).unwrap(), 0);
        a.write_all(&[7; 100]).unwrap();
        assert!(unread_memory(a.as_fd()).unwrap() >= 100);
        b.read_exact(&mut [0; 100]).unwrap();
        assert_eq!(unread_memory(a.as_fd()).unwrap(), 0);
    }
}
