//! Why `send` or `send-file` failed, in words the user can act on.
//!
//! What it is: [`SendError`], one variant per condition the sending
//! commands report themselves (an owner of another uid, a refusal, no ack
//! in time, an owner that broke the protocol, what to send cannot be
//! taken), each printed as one line by
//! `main`. What it is not: the broker's or the channel's errors, which are
//! chained as `source()` where they are the cause.

use std::fmt;
use std::time::Duration;

use waypass_client::{ChannelError, Credentials};
use waypass_protocol::Violation;

use super::input::InputError;
use super::send_progress::read_of;
use super::story::printable;
use super::CliError;

/// Why sending failed.
#[derive(Debug)]
pub enum SendError {
    /// The name's owner runs as another user than the one asked for (ours,
    /// or UID in `NAME@UID`): the server did not keep names apart by user.
    OtherUid {
        /// The name.
        name: String,
        /// Who owns it, as the server reported.
        owner: Credentials,
        /// The uid asked for.
        expected: u32,
    },
    /// The owner refused what was sent.
    Refused {
        /// The name.
        to: String,
        /// What it refused: a file name, or "the text".
        what: String,
        /// The owner's reason, as it sent it.
        reason: String,
    },
    /// No ack within the idle timeout.
    NoAck {
        /// The name.
        to: String,
        /// The idle timeout.
        waited: Duration,
        /// `(read, size)`: what the owner said it had read of the file.
        read: Option<(u64, u64)>,
    },
    /// The owner broke the peer protocol while we waited for its answer,
    /// e.g. `progress` past the file's size or for a text.
    Violation {
        /// The name.
        to: String,
        /// What we waited for the answer to: a file name, or "the text".
        what: String,
        /// The rule it broke.
        violation: Violation,
    },
    /// The channel failed otherwise.
    Channel {
        /// What was being done, e.g. "no ack from bob for hello.txt".
        context: String,
        /// Why.
        source: ChannelError,
    },
    /// What to send cannot be read or opened.
    Input(InputError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::OtherUid {
                name,
                owner,
                expected,
            } => write!(
                f,
                "{} is owned by uid {} (pid {}), not by uid {expected}: the server does not \
                 keep names apart by user; nothing was sent",
                printable(name),
                owner.uid,
                owner.pid
            ),
            SendError::Refused { to, what, reason } => write!(
                f,
                "{} refused {}: {}",
                printable(to),
                printable(what),
                printable(reason)
            ),
            SendError::NoAck {
                to,
                waited,
                read: None,
            } => write!(
                f,
                "no ack from {} within {}",
                printable(to),
                humantime::format_duration(*waited)
            ),
            SendError::NoAck {
                to,
                waited,
                read: Some((read, size)),
            } => write!(
                f,
                "no ack from {} within {}; it had read {} and may still be reading",
                printable(to),
                humantime::format_duration(*waited),
                read_of(*read, *size)
            ),
            SendError::Violation {
                to,
                what,
                violation,
            } => write!(
                f,
                "{} broke the peer protocol answering {}: {violation}",
                printable(to),
                printable(what)
            ),
            SendError::Channel { context, .. } => f.write_str(context),
            SendError::Input(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Channel { source, .. } => Some(source),
            SendError::Violation { violation, .. } => std::error::Error::source(violation),
            SendError::Input(e) => e.source(),
            _ => None,
        }
    }
}

impl From<InputError> for SendError {
    fn from(e: InputError) -> Self {
        SendError::Input(e)
    }
}

impl From<SendError> for CliError {
    fn from(e: SendError) -> Self {
        CliError::Send(e)
    }
}

impl From<InputError> for CliError {
    fn from(e: InputError) -> Self {
        CliError::Send(SendError::Input(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_escaped_line() {
        let refused = SendError::Refused {
            to: "bob".into(),
            what: "hello.txt".into(),
            reason: "no\nway \u{1b}[2J".into(),
        };
        assert_eq!(
            refused.to_string(),
            "bob refused hello.txt: no\\nway \\u{1b}[2J"
        );
        let other = SendError::OtherUid {
            name: "bob".into(),
            owner: Credentials {
                pid: 7,
                uid: 65534,
                gid: 65534,
            },
            expected: 0,
        };
        assert_eq!(
            other.to_string(),
            "bob is owned by uid 65534 (pid 7), not by uid 0: the server does not \
             keep names apart by user; nothing was sent"
        );
        let slow = SendError::NoAck {
            to: "bob".into(),
            waited: Duration::from_secs(2),
            read: Some((120 << 20, 300 << 20)),
        };
        assert_eq!(
            slow.to_string(),
            "no ack from bob within 2s; it had read 120.00 MiB of 300.00 MiB \
             and may still be reading"
        );
        let broke = SendError::Violation {
            to: "bob".into(),
            what: "big.bin".into(),
            violation: Violation::ProgressPastSize {
                serial: 1,
                done: 1500,
                size: 1000,
            },
        };
        assert_eq!(
            broke.to_string(),
            "bob broke the peer protocol answering big.bin: \
             progress of 1500 bytes for file 1, which has 1000"
        );
    }
}
