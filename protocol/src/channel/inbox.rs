//! Waiting for an answer, and the bounded inbox where other messages wait.
//!
//! What it is: [`PeerChannel::wait_ack`] and [`PeerChannel::wait_ack_with`],
//! which block until the peer answers one of our messages (`ack` or
//! `refuse`, with `progress` meanwhile), and [`Inbox`], which keeps, in
//! order, every other message that arrives during the wait, for
//! [`PeerChannel::recv`]; and [`PeerChannel::held_fds`], the fds received
//! that wait there or in the connection. What it is not: the socket loop (that is
//! `next_from_socket` in the parent module).
//!
//! # Implementation notes
//!
//! - **The inbox is capped.** Before the cap, a peer that floods texts and
//!   never answers made a sender's `wait_ack` keep every text: 1 GB in 8 s.
//!   The inbox now holds at most [`INBOX_MAX_MESSAGES`] messages,
//!   [`INBOX_MAX_BYTES`] bytes of strings (texts, file names, reasons) and
//!   [`INBOX_MAX_FILES`] file offers (each holds an fd). One more is
//!   [`ChannelError::InboxFull`], fatal: the inbox is emptied (closing the
//!   fds of the offers it held), the socket is shut down both ways so the
//!   peer stops at once, and every later call on the channel returns the
//!   same error.
//! - **Why these numbers.** A peer following the protocol answers each of
//!   our messages with one `ack` or `refuse` and a few `progress`, and a
//!   sender waits for one answer at a time: its inbox stays nearly empty.
//!   1,024 messages leave room for an application that talks both ways
//!   while it waits; 1 MiB is 256 texts of the largest size, and bounds the
//!   strings a hostile peer can make us hold (the structs themselves add at
//!   most 1,024 × 64 bytes). 28 files is libwayland's limit of fds per
//!   `sendmsg`, the bound the server keeps for fds a client leaves waiting.
//! - **Progress restarts the idle timeout** of `wait_ack_with`, and only the
//!   progress of the message waited for; it is handed to the callback, not
//!   kept. Other messages never extend the wait.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::sys::socket::{shutdown, Shutdown};

use super::{ChannelError, Deadline, PeerChannel, PeerMessage};
use crate::connection::ConnectionError;

/// The most messages [`PeerChannel::wait_ack`] keeps for `recv`.
pub const INBOX_MAX_MESSAGES: usize = 1024;

/// The most bytes of strings (texts, file names, reasons) the inbox holds.
pub const INBOX_MAX_BYTES: usize = 1 << 20;

/// The most file offers (each holding an fd) the inbox holds.
pub const INBOX_MAX_FILES: usize = 28;

/// Messages kept while waiting for an answer, with their totals.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    messages: VecDeque<PeerMessage>,
    bytes: usize,
    files: usize,
    /// Set once a message did not fit: the counts at that moment.
    overflowed: Option<Totals>,
}

/// What the inbox held (or would have held) when it overflowed.
#[derive(Debug, Clone, Copy)]
struct Totals {
    messages: usize,
    bytes: usize,
    files: usize,
}

impl Inbox {
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(super) fn pop_front(&mut self) -> Option<PeerMessage> {
        let message = self.messages.pop_front()?;
        self.uncount(&message);
        Some(message)
    }

    /// The error every call returns once the inbox has overflowed.
    pub(super) fn overflow_error(&self) -> Option<ChannelError> {
        self.overflowed.map(|t| ChannelError::InboxFull {
            messages: t.messages,
            bytes: t.bytes,
            files: t.files,
        })
    }

    /// Keeps `message`, or empties the inbox (closing the fds it held) and
    /// returns [`ChannelError::InboxFull`] if it does not fit.
    fn push(&mut self, message: PeerMessage) -> Result<(), ChannelError> {
        let totals = Totals {
            messages: self.messages.len() + 1,
            bytes: self.bytes + string_bytes(&message),
            files: self.files + usize::from(matches!(message, PeerMessage::File(_))),
        };
        if totals.messages > INBOX_MAX_MESSAGES
            || totals.bytes > INBOX_MAX_BYTES
            || totals.files > INBOX_MAX_FILES
        {
            self.overflowed = Some(totals);
            self.messages.clear();
            (self.bytes, self.files) = (0, 0);
            return Err(self.overflow_error().expect("just set"));
        }
        (self.bytes, self.files) = (totals.bytes, totals.files);
        self.messages.push_back(message);
        Ok(())
    }

    /// Removes and returns the first message `pick` chooses.
    fn take_first(&mut self, pick: impl Fn(&PeerMessage) -> bool) -> Option<PeerMessage> {
        let at = self.messages.iter().position(pick)?;
        let message = self.messages.remove(at)?;
        self.uncount(&message);
        Some(message)
    }

    fn uncount(&mut self, message: &PeerMessage) {
        self.bytes -= string_bytes(message);
        self.files -= usize::from(matches!(message, PeerMessage::File(_)));
    }
}

/// The bytes of the strings a message holds.
fn string_bytes(message: &PeerMessage) -> usize {
    match message {
        PeerMessage::Text { text, .. } => text.len(),
        PeerMessage::File(offer) => offer.name.len(),
        PeerMessage::Refused { reason, .. } => reason.len(),
        PeerMessage::Ack { .. } | PeerMessage::Progress { .. } => 0,
    }
}

/// What a message says about our message `serial`.
enum Answer {
    Acked,
    Refused(String),
    Progress(u64),
    /// Not about `serial`: it goes to the inbox.
    Other(PeerMessage),
}

fn answer(message: PeerMessage, serial: u32) -> Answer {
    match message {
        PeerMessage::Ack { serial: s } if s == serial => Answer::Acked,
        PeerMessage::Refused { serial: s, reason } if s == serial => Answer::Refused(reason),
        PeerMessage::Progress { serial: s, done } if s == serial => Answer::Progress(done),
        other => Answer::Other(other),
    }
}

fn is_about(message: &PeerMessage, serial: u32) -> bool {
    matches!(message,
        PeerMessage::Ack { serial: s }
        | PeerMessage::Refused { serial: s, .. }
        | PeerMessage::Progress { serial: s, .. } if *s == serial)
}

impl PeerChannel {
    /// Sends what is queued and blocks until the peer acks `serial`: the
    /// peer has handled the message. A refusal of `serial` is
    /// [`ChannelError::Refused`] (the channel stays usable). Other messages
    /// that arrive meanwhile are kept, in order, for [`PeerChannel::recv`],
    /// up to the inbox caps ([`ChannelError::InboxFull`]). A peer that
    /// closes first is `Connection(Closed)`. Progress reports are dropped;
    /// see [`PeerChannel::wait_ack_with`].
    pub fn wait_ack(&mut self, serial: u32, timeout: Option<Duration>) -> Result<(), ChannelError> {
        self.wait_ack_with(serial, timeout, |_| {})
    }

    /// [`PeerChannel::wait_ack`], with progress: each `progress` of
    /// `serial` calls `on_progress(done)`, and one that reports more bytes
    /// read than any before restarts `idle_timeout`, so a peer reading a
    /// large file may take as long as it needs while it moves forward. A
    /// peer that repeats a count (or goes back) does not keep the wait
    /// alive, and one past the file's size (or for a text) is a
    /// [`Violation`](super::Violation): a wait for the answer to a file of
    /// N bytes is restarted at most N times. [`ChannelError::Timeout`] once
    /// `idle_timeout` passes with no forward progress (`None`: no limit).
    pub fn wait_ack_with(
        &mut self,
        serial: u32,
        idle_timeout: Option<Duration>,
        mut on_progress: impl FnMut(u64),
    ) -> Result<(), ChannelError> {
        // The most bytes the peer has said it read: only more restarts the
        // idle timeout.
        let mut furthest = None;
        // Answers that arrived during an earlier wait, in order.
        while let Some(message) = self.inbox.take_first(|m| is_about(m, serial)) {
            match answer(message, serial) {
                Answer::Acked => return Ok(()),
                Answer::Refused(reason) => return Err(ChannelError::Refused { serial, reason }),
                Answer::Progress(done) => {
                    furthest = furthest.max(Some(done));
                    on_progress(done);
                }
                Answer::Other(_) => unreachable!("is_about chose it"),
            }
        }
        let mut deadline = Deadline::after(idle_timeout);
        loop {
            let Some(message) = self.next_from_socket(deadline)? else {
                return Err(ConnectionError::Closed.into());
            };
            match answer(message, serial) {
                Answer::Acked => return Ok(()),
                Answer::Refused(reason) => return Err(ChannelError::Refused { serial, reason }),
                Answer::Progress(done) => {
                    on_progress(done);
                    if furthest.is_none_or(|f| done > f) {
                        furthest = Some(done);
                        deadline = Deadline::after(idle_timeout);
                    }
                }
                Answer::Other(message) => self.keep(message)?,
            }
        }
    }

    /// Fds received from the peer that nobody has taken yet: those queued
    /// for messages not decoded yet (fds may come ahead of their message's
    /// bytes), and those of the file offers kept in the inbox. The
    /// channel's own socket is not counted. A caller that serves many
    /// channels can bound what each holds with it.
    pub fn held_fds(&mut self) -> usize {
        self.conn.split().0.queued_fds() + self.inbox.files
    }

    /// Puts `message` in the inbox; past the caps, drops the channel's
    /// contents and shuts the socket down (see the module notes).
    fn keep(&mut self, message: PeerMessage) -> Result<(), ChannelError> {
        let result = self.inbox.push(message);
        if let Err(e) = &result {
            log::warn!("dropping a peer channel: {e}");
            // Best effort: the channel is dead either way, and ENOTCONN
            // only means the peer has gone already.
            let _ = shutdown(self.conn.as_fd().as_raw_fd(), Shutdown::Both);
        }
        result
    }
}

#[cfg(test)]
#[path = "inbox_tests.rs"]
mod tests;
