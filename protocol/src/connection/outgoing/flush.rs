//! Draining an [`Outgoing`] queue: each `sendmsg` carries as many queued
//! bytes as one call can (up to [`MAX_IOV`] chunks) and the fds of whole
//! messages (at most [`MAX_FDS_OUT`]), and, when asked, is logged so fds
//! sent and not yet read can be counted.
//!
//! What it is: `flush`'s loop, the [`Plan`] of what one `sendmsg` may carry
//! (a message's bytes never leave before its fds), the call itself
//! ([`send_once`]), dropping what it sent, and the send log around it
//! ([`SentLog`](super::super::in_flight::SentLog) is the log itself). What
//! it is not: the queue (the parent module), nor the short cuts that skip
//! the plan (`direct`).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::super::in_flight::unread_memory;
use super::super::{ConnectionError, Flush};
use super::Outgoing;
use crate::wire::MAX_FDS_OUT;

/// The most iovecs one `sendmsg` gets (128 KiB of chunks).
const MAX_IOV: usize = 32;

/// What one `sendmsg` may carry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// Fds from the front of the fd queue.
    pub(super) fds: usize,
    /// Marks those fds belong to.
    pub(super) marks: usize,
    /// Bytes from the front of the byte queue.
    pub(super) bytes: usize,
}

impl Outgoing {
    /// Sends the queue over `socket`, looping over `sendmsg` until it is
    /// empty or the socket is full.
    pub(in crate::connection) fn flush(
        &mut self,
        socket: BorrowedFd<'_>,
    ) -> Result<Flush, ConnectionError> {
        if let Some(flushed) = self.flush_one_chunk(socket) {
            return flushed;
        }
        loop {
            if self.queued_bytes() == 0 {
                // Lent buffers are released when they are given back.
                if !self.lent && !self.lent_queue {
                    self.release();
                }
                return Ok(Flush::Done);
            }
            let plan = self.plan();
            let before = self.unread_before(socket, plan.fds);
            let sent = match self.chunks.front() {
                // The usual case, replies to one wakeup: one chunk, no fds.
                Some(c) if plan.fds == 0 && c.end - c.start >= plan.bytes => {
                    let bytes = &c.bytes[c.start..c.start + plan.bytes];
                    send_once(socket, &[IoSlice::new(bytes)], &[])
                }
                _ => self.send_planned(socket, plan),
            };
            match sent {
                Ok(n) => {
                    self.log_sent(socket, before, plan.fds);
                    self.consume(n, plan)
                }
                Err(SendOutcome::WouldBlock) => return Ok(Flush::WouldBlock),
                Err(SendOutcome::Failed(e)) => return Err(e),
            }
        }
    }

    /// One `sendmsg` of what `plan` says, from any number of chunks.
    fn send_planned(&self, socket: BorrowedFd<'_>, plan: Plan) -> Result<usize, SendOutcome> {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n_iov = self.fill_iov(&mut iov, plan.bytes);
        let mut raw: [RawFd; MAX_FDS_OUT] = [-1; MAX_FDS_OUT];
        for (slot, fd) in raw.iter_mut().zip(self.fds.iter().take(plan.fds)) {
            *slot = fd.as_raw_fd();
        }
        send_once(socket, &iov[..n_iov], &raw[..plan.fds])
    }

    /// Fds queued, or sent and maybe not read yet: an upper bound on the
    /// fds this queue holds or has in flight, as of the last trim of the
    /// send log (which `Connection::fds_in_flight` does before it asks).
    /// Counts only queued fds unless tracking is on.
    pub fn fds_in_flight(&self) -> usize {
        self.fds.len() + self.sent_log.as_ref().map_or(0, |log| log.fds())
    }

    /// Forgets the logged fds the peer has read, with one `SIOCOUTQ`.
    /// Inline for its usual case: no log, nothing to do.
    #[inline]
    pub(in crate::connection) fn trim_in_flight(&mut self, socket: BorrowedFd<'_>) {
        if self.sent_log.is_some() {
            self.trim_sent_log(socket);
        }
    }

    /// [`Outgoing::trim_in_flight`] with a log.
    fn trim_sent_log(&mut self, socket: BorrowedFd<'_>) {
        let Some(log) = self.sent_log.as_mut() else {
            return;
        };
        // On a failure (only for a socket that is not AF_UNIX), keep all.
        log.trim(unread_memory(socket).unwrap_or(usize::MAX));
        if log.fds() == 0 {
            self.sent_log = None;
        }
    }

    /// `SIOCOUTQ` before a `sendmsg` of `fds` fds that must be logged.
    pub(super) fn unread_before(&self, socket: BorrowedFd<'_>, fds: usize) -> Option<usize> {
        let wanted = match &self.sent_log {
            Some(log) => log.wants(fds),
            None => self.track_in_flight && fds > 0,
        };
        // On a failure, log the send as taking no memory: it then counts
        // until the peer has read everything.
        wanted.then(|| unread_memory(socket).unwrap_or(usize::MAX))
    }

    /// Logs a `sendmsg` of `fds` fds that [`Outgoing::unread_before`] asked
    /// to log.
    pub(super) fn log_sent(&mut self, socket: BorrowedFd<'_>, before: Option<usize>, fds: usize) {
        if let Some(before) = before {
            let after = unread_memory(socket).unwrap_or(0);
            let log = self.sent_log.get_or_insert_with(Box::default);
            log.push(before, after, fds);
        }
    }

    /// The fds of whole messages, at most [`MAX_FDS_OUT`], and the bytes up
    /// to the start of the first message whose fds are left out.
    fn plan(&self) -> Plan {
        let (mut fds, mut marks) = (0, 0);
        for mark in &self.marks {
            if fds + mark.count > MAX_FDS_OUT {
                break;
            }
            fds += mark.count;
            marks += 1;
        }
        let limit = self.marks.get(marks).map_or(self.written, |m| m.start);
        let bytes = (limit - self.sent) as usize;
        // A mark's bytes are never sent before its fds, and `send` refuses a
        // message with more than MAX_FDS_OUT fds, so the first mark always
        // fits and a sendmsg with fds always carries bytes.
        debug_assert!(marks > 0 || self.marks.is_empty());
        debug_assert!(bytes > 0);
        Plan { fds, marks, bytes }
    }

    /// Points `iov` at the first `bytes` queued bytes; returns how many
    /// slices it used (fewer bytes if it ran out of slices).
    fn fill_iov<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV], bytes: usize) -> usize {
        let mut left = bytes;
        let mut used = 0;
        for chunk in &self.chunks {
            if left == 0 || used == MAX_IOV {
                break;
            }
            let len = (chunk.end - chunk.start).min(left);
            if len > 0 {
                iov[used] = IoSlice::new(&chunk.bytes[chunk.start..chunk.start + len]);
                used += 1;
                left -= len;
            }
        }
        used
    }

    /// Drops what one `sendmsg` sent: `n` bytes and the planned fds.
    pub(super) fn consume(&mut self, n: usize, plan: Plan) {
        // Ours (duplicates or given to us): the peer has its own now.
        if plan.fds > 0 {
            self.fds.drain(..plan.fds);
        }
        if plan.marks > 0 {
            self.marks.drain(..plan.marks);
        }
        self.sent += n as u64;
        let mut left = n;
        while let Some(front) = self.chunks.front_mut() {
            let take = (front.end - front.start).min(left);
            front.start += take;
            left -= take;
            if front.start < front.end {
                break;
            }
            let done = self.chunks.pop_front().expect("front exists");
            self.free.push(done.bytes);
        }
    }
}

/// Why [`send_once`] sent nothing.
pub(super) enum SendOutcome {
    /// The socket buffer is full (EAGAIN).
    WouldBlock,
    /// The connection cannot be written any more.
    Failed(ConnectionError),
}

/// One non-blocking `sendmsg` of `iov` with `fds` (none: no control data),
/// retried on EINTR. Returns how many bytes went; with the first of them
/// went all of the fds.
pub(super) fn send_once(
    socket: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[RawFd],
) -> Result<usize, SendOutcome> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), iov, cmsgs, flags, None) {
            // Nothing sent and no error: cannot progress.
            Ok(0) => {
                let e = io::ErrorKind::WriteZero.into();
                return Err(SendOutcome::Failed(ConnectionError::Send(e)));
            }
            Ok(n) => {
                log::trace!("sendmsg: {n} bytes, {} fds", fds.len());
                return Ok(n);
            }
            // A signal arrived before anything was sent: try again.
            Err(Errno::EINTR) => continue,
            // The socket buffer is full: keep the rest until writable.
            Err(Errno::EAGAIN) => return Err(SendOutcome::WouldBlock),
            // The peer has gone; MSG_NOSIGNAL turned SIGPIPE into EPIPE.
            Err(Errno::EPIPE | Errno::ECONNRESET) => {
                return Err(SendOutcome::Failed(ConnectionError::Closed))
            }
            // Anything else is unexpected on a connected socket.
            Err(e) => return Err(SendOutcome::Failed(ConnectionError::Send(e.into()))),
        }
    }
}
