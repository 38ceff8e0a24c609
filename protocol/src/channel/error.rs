//! The errors of a [`PeerChannel`](super::PeerChannel): one enum for the
//! whole channel, and the list of `waypass_peer_v1` rules a peer can break.
//!
//! What it is: [`ChannelError`], whose variants say which condition failed
//! and chain the lower error as `source()`, and [`Violation`], what the
//! peer did wrong. What it is not: a place where errors are recovered from;
//! see [`ChannelError::is_fatal`] for which ones leave the channel usable.

use std::fmt;
use std::io;

use crate::connection::ConnectionError;
use crate::sealed::SealError;
use crate::wire::Malformed;

/// A `waypass_peer_v1` rule the peer broke. The channel cannot be trusted
/// after one: drop it, which closes every fd it still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A message was sent to an object other than id 1.
    UnknownObject(u32),
    /// A message had an opcode `waypass_peer_v1` does not define.
    UnknownOpcode(u16),
    /// A message broke a wire rule (sizes, strings, nulls).
    Malformed(Malformed),
    /// A `file` message arrived without its fd.
    MissingFd,
    /// The peer closed the socket in the middle of a message.
    ClosedMidMessage {
        /// Bytes of the unfinished message that did arrive.
        buffered: usize,
    },
    /// A `progress` for a serial that is not a file of ours waiting for
    /// its answer: a text, a file already answered, or nothing we sent.
    ProgressNotForAFile {
        /// The serial it named.
        serial: u32,
    },
    /// A `progress` that reports more bytes read than the file offered has.
    ProgressPastSize {
        /// The serial of our file.
        serial: u32,
        /// The bytes it said it had read.
        done: u64,
        /// The size we announced.
        size: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::UnknownObject(id) => write!(f, "message to unknown object {id}"),
            Violation::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            Violation::Malformed(_) => f.write_str("malformed message"),
            Violation::MissingFd => f.write_str("file message without its fd"),
            Violation::ClosedMidMessage { buffered } => {
                write!(f, "closed after {buffered} bytes of an unfinished message")
            }
            Violation::ProgressNotForAFile { serial } => write!(
                f,
                "progress for message {serial}, which is not a file awaiting its answer"
            ),
            Violation::ProgressPastSize { serial, done, size } => write!(
                f,
                "progress of {done} bytes for file {serial}, which has {size}"
            ),
        }
    }
}

/// A [`Violation::Malformed`] chains the wire rule as its `source()`;
/// the other violations are whole in their text.
impl std::error::Error for Violation {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Violation::Malformed(m) => Some(m),
            _ => None,
        }
    }
}

/// Errors of a [`PeerChannel`](super::PeerChannel).
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelError {
    /// The socket failed or the peer went away (see [`ConnectionError`]).
    Connection(ConnectionError),
    /// The peer broke the protocol.
    Protocol(Violation),
    /// A text or file name does not fit in one 4096-byte message.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The most bytes that fit.
        max: usize,
    },
    /// A text or file name holds a NUL byte, which a wire string cannot.
    InteriorNul,
    /// Nothing happened before the deadline.
    Timeout,
    /// A file offer announced more bytes than its file holds.
    BadSize {
        /// The size the peer announced.
        announced: u64,
        /// The size `fstat` reports (or the bytes `pread` found).
        file_size: u64,
    },
    /// Making a sealed snapshot, or mapping an offered file, failed.
    Seal(SealError),
    /// The peer refused our message `serial` (`waypass_peer_v1.refuse`),
    /// returned by [`wait_ack`](super::PeerChannel::wait_ack) for the
    /// serial it waits for. Not fatal.
    Refused {
        /// The serial of our refused message.
        serial: u32,
        /// The peer's reason, sanitised: one line, no control characters.
        reason: String,
    },
    /// While waiting for an answer, the peer sent more messages than the
    /// inbox holds ([`INBOX_MAX_MESSAGES`](super::INBOX_MAX_MESSAGES),
    /// [`INBOX_MAX_BYTES`](super::INBOX_MAX_BYTES) of strings or
    /// [`INBOX_MAX_FILES`](super::INBOX_MAX_FILES) file offers). Fatal: the
    /// kept messages were dropped (their fds closed) and the socket shut
    /// down. The counts are the inbox's with the message that did not fit.
    InboxFull {
        /// Messages.
        messages: usize,
        /// Bytes of texts, file names and reasons.
        bytes: usize,
        /// File offers.
        files: usize,
    },
    /// A system call on a file or the socket failed; `what` says which step.
    Io {
        /// The step that failed, e.g. "open the file to offer".
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl ChannelError {
    /// Whether the channel is unusable after this error. Checks made before
    /// anything is queued (`TooLong`, `InteriorNul`, a file that cannot be
    /// opened, `BadSize` on an offer, `Timeout`) and a peer's `Refused`
    /// leave it usable; a connection failure, a protocol violation or
    /// `InboxFull` does not.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ChannelError::Connection(_)
                | ChannelError::Protocol(_)
                | ChannelError::InboxFull { .. }
        )
    }

    pub(super) fn io(what: &'static str, source: impl Into<io::Error>) -> Self {
        ChannelError::Io {
            what,
            source: source.into(),
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Connection(_) => f.write_str("peer channel connection failed"),
            ChannelError::Protocol(v) => write!(f, "peer broke waypass_peer_v1: {v}"),
            ChannelError::TooLong { len, max } => {
                write!(
                    f,
                    "text or name of {len} bytes does not fit in a message (at most {max})"
                )
            }
            ChannelError::InteriorNul => f.write_str("text or name holds a NUL byte"),
            ChannelError::Timeout => f.write_str("timed out"),
            ChannelError::BadSize {
                announced,
                file_size,
            } => write!(
                f,
                "offer announces {announced} bytes but the file holds {file_size}"
            ),
            ChannelError::Refused { serial, reason } => {
                write!(f, "peer refused message {serial}: {reason}")
            }
            ChannelError::InboxFull {
                messages,
                bytes,
                files,
            } => write!(
                f,
                "peer sent {messages} unread messages ({bytes} bytes of text, {files} files) \
                 while we waited for an answer; the limit is {} messages, {} bytes, {} files",
                super::INBOX_MAX_MESSAGES,
                super::INBOX_MAX_BYTES,
                super::INBOX_MAX_FILES
            ),
            ChannelError::Seal(_) => f.write_str("sealed file operation failed"),
            ChannelError::Io { what, .. } => write!(f, "cannot {what}"),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Connection(e) => Some(e),
            // The violation's text is already ours: chain from its source
            // (the wire rule of a malformed message), so nothing prints twice.
            ChannelError::Protocol(v) => std::error::Error::source(v),
            ChannelError::Seal(e) => Some(e),
            ChannelError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConnectionError> for ChannelError {
    fn from(e: ConnectionError) -> Self {
        ChannelError::Connection(e)
    }
}

impl From<Violation> for ChannelError {
    fn from(v: Violation) -> Self {
        ChannelError::Protocol(v)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// Display of `e` and each source, as a chain printer writes them.
    fn chain(e: &dyn Error) -> Vec<String> {
        let mut links = vec![e.to_string()];
        let mut next = e.source();
        while let Some(source) = next {
            links.push(source.to_string());
            next = source.source();
        }
        links
    }

    #[test]
    fn a_malformed_message_is_told_once() {
        let e = ChannelError::Protocol(Violation::Malformed(Malformed::SizeNotAligned(13)));
        assert_eq!(
            chain(&e),
            [
                "peer broke waypass_peer_v1: malformed message",
                "message size 13 is not a multiple of 4"
            ]
        );
    }

    #[test]
    fn lower_errors_are_chained_not_repeated() {
        let e = ChannelError::io("read the file", io::Error::from_raw_os_error(5));
        let links = chain(&e);
        assert_eq!(links.len(), 2, "{links:?}");
        assert!(!links[0].contains(&links[1]), "{links:?}");
        let e = ChannelError::Connection(ConnectionError::Recv(io::Error::from_raw_os_error(5)));
        let links = chain(&e);
        assert_eq!(links.len(), 3, "{links:?}");
        for pair in links.windows(2) {
            assert!(!pair[0].contains(&pair[1]), "{links:?}");
        }
    }
}
