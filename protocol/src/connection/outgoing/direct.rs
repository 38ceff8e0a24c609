//! The two short cuts past [`Outgoing`]'s general path, for the usual
//! cases: a message sent at once with the caller's own fds (`send_now`),
//! and a queue of one chunk and no fds flushed without a plan
//! (`flush_one_chunk`, on the path of every reply to a wakeup, such as a
//! `wl_display.sync` round trip).
//!
//! What it is: code that gives the same result as queuing and flushing,
//! with fewer system calls and less work. What it is not: a second queue
//! or a second way to call `sendmsg`: both use the parent's queue and
//! `flush`'s [`send_once`], and hand anything unusual back to `flush`.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::super::{ConnectionError, Flush};
use super::flush::{send_once, Plan, SendOutcome};
use super::{duplicate_fds, Outgoing};
use crate::interface::MessageDesc;
use crate::wire::{Arg, MAX_FDS_OUT};

impl Outgoing {
    /// Encodes one message and sends it with the queue, now; the caller
    /// keeps its fds. If the queue was empty and the message leaves in this
    /// one `sendmsg` (wholly, or at least its first byte with its fds), its
    /// fds are passed straight from the caller's and never duplicated: one
    /// `sendmsg` where [`Outgoing::send`] and `flush` cost a `dup`, the
    /// `sendmsg` and a `close`. Otherwise it is queued as by `send` and the
    /// queue is flushed.
    ///
    /// On an error nothing of this message is queued.
    pub(in crate::connection) fn send_now(
        &mut self,
        socket: BorrowedFd<'_>,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<Flush, ConnectionError> {
        let has_fds = args.iter().any(|a| matches!(a, Arg::Fd(_)));
        if !has_fds || self.queued_bytes() > 0 {
            self.send(sender, opcode, desc, args)?;
            return self.flush(socket);
        }
        let encoded = match self.encode(sender, opcode, desc, args) {
            Ok(encoded) => encoded,
            Err(e) => {
                self.drop_empty_tail();
                return Err(e);
            }
        };
        let mut raw: [RawFd; MAX_FDS_OUT] = [-1; MAX_FDS_OUT];
        let fds = args.iter().filter_map(|a| match a {
            Arg::Fd(fd) => Some(fd.as_raw_fd()),
            _ => None,
        });
        for (slot, fd) in raw.iter_mut().zip(fds) {
            *slot = fd;
        }
        let before = self.unread_before(socket, encoded.fds);
        let sent = {
            let tail = self.chunks.back().expect("encode ensured a tail chunk");
            let bytes = &tail.bytes[tail.end..tail.end + encoded.size];
            send_once(socket, &[IoSlice::new(bytes)], &raw[..encoded.fds])
        };
        if sent.is_ok() {
            self.log_sent(socket, before, encoded.fds);
        }
        match sent {
            Ok(n) => {
                // The fds went with the first byte: nothing of ours to keep.
                self.commit(encoded, VecDeque::new());
                let plan = Plan {
                    fds: 0,
                    marks: 0,
                    bytes: n,
                };
                self.consume(n, plan);
                self.flush(socket)
            }
            // The socket is full: queue the message with duplicates.
            Err(SendOutcome::WouldBlock) => match duplicate_fds(args) {
                Ok(dups) => {
                    self.commit(encoded, dups);
                    Ok(Flush::WouldBlock)
                }
                Err(e) => {
                    self.drop_empty_tail();
                    Err(e)
                }
            },
            Err(SendOutcome::Failed(e)) => {
                self.drop_empty_tail();
                Err(e)
            }
        }
    }

    /// `flush` in its usual case, the replies to one wakeup: one chunk, no
    /// fds, no log to keep, so no plan to make, and the chunk sent whole is
    /// recycled as `consume` would. `None` when the queue is not like that,
    /// or the chunk was only partly sent: `flush`'s loop does the rest.
    #[inline]
    pub(super) fn flush_one_chunk(
        &mut self,
        socket: BorrowedFd<'_>,
    ) -> Option<Result<Flush, ConnectionError>> {
        // No marks means no fds; no log means no `SIOCOUTQ` around the send.
        if self.chunks.len() != 1 || !self.marks.is_empty() || self.sent_log.is_some() {
            return None;
        }
        let chunk = self.chunks.front()?;
        let bytes = &chunk.bytes[chunk.start..chunk.end];
        if bytes.is_empty() {
            return None;
        }
        let whole = bytes.len();
        match send_once(socket, &[IoSlice::new(bytes)], &[]) {
            Ok(n) if n == whole => {
                self.sent += n as u64;
                if let Some(done) = self.chunks.pop_front() {
                    self.free.push(done.bytes);
                }
                // Lent buffers are released when they are given back.
                if !self.lent && !self.lent_queue {
                    self.release();
                }
                Some(Ok(Flush::Done))
            }
            Ok(n) => {
                let plan = Plan {
                    fds: 0,
                    marks: 0,
                    bytes: n,
                };
                self.consume(n, plan);
                None
            }
            Err(SendOutcome::WouldBlock) => Some(Ok(Flush::WouldBlock)),
            Err(SendOutcome::Failed(e)) => Some(Err(e)),
        }
    }
}
