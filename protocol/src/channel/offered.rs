//! Our file offers that wait for their answer, and the check of the
//! peer's `progress` against them.
//!
//! What it is: [`Offered`], the announced size of each file we offered
//! that the peer has not answered yet, and [`Offered::check`], which every
//! decoded message passes: an `ack` or `refuse` ends an offer, and a
//! `progress` must name a file still waiting for its answer and stay
//! within its size. What it is not: the waiting (see `inbox`), nor a
//! record of our texts (a text never gets `progress`).
//!
//! # Implementation notes
//!
//! - **Why.** Each `progress` that reports more bytes read restarts the
//!   idle timeout of [`PeerChannel::wait_ack_with`](super::PeerChannel::wait_ack_with).
//!   An owner that sent ever-growing counts, past the file's size or for a
//!   text, kept `send --timeout-ms 1000` waiting for ever. The protocol
//!   says `progress` reports the bytes read of the file with that serial,
//!   before its `ack` or `refuse`: anything else is a
//!   [`Violation`](super::Violation), fatal like every other. So a wait for
//!   the answer to a file of N bytes gets at most N restarts, and a wait
//!   for the answer to a text none.
//! - **Cost.** One `(serial, size)` per file offered and not yet answered,
//!   removed when its answer is decoded (by [`PeerChannel::recv`](super::PeerChannel::recv)
//!   or a wait): it grows only with what we offer, never with what the
//!   peer sends.

use std::collections::HashMap;

use super::{PeerMessage, Violation};

/// The files we offered that the peer has not answered: serial → size.
#[derive(Debug, Default)]
pub(super) struct Offered {
    sizes: HashMap<u32, u64>,
}

impl Offered {
    /// We offered file `serial` of `size` bytes.
    pub(super) fn insert(&mut self, serial: u32, size: u64) {
        self.sizes.insert(serial, size);
    }

    /// How many offers wait for their answer.
    pub(super) fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Checks a message from the peer against our offers: an answer ends
    /// its offer; a `progress` must be about a file still waiting for its
    /// answer, and report at most its size.
    pub(super) fn check(&mut self, message: &PeerMessage) -> Result<(), Violation> {
        match *message {
            PeerMessage::Ack { serial } | PeerMessage::Refused { serial, .. } => {
                // The answer to a text, with no offer waiting: no hashing
                // on the text/ack round trip.
                if !self.sizes.is_empty() {
                    self.sizes.remove(&serial);
                }
                Ok(())
            }
            PeerMessage::Progress { serial, done } => match self.sizes.get(&serial) {
                None => Err(Violation::ProgressNotForAFile { serial }),
                Some(&size) if done > size => {
                    Err(Violation::ProgressPastSize { serial, done, size })
                }
                Some(_) => Ok(()),
            },
            PeerMessage::Text { .. } | PeerMessage::File(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use nix::sys::memfd::{memfd_create, MFdFlags};

    use super::super::{ChannelError, PeerChannel};
    use super::*;

    const T: Option<Duration> = Some(Duration::from_secs(60));

    fn channels() -> (PeerChannel, PeerChannel) {
        let (a, b) = UnixStream::pair().unwrap();
        (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap())
    }

    /// Offers a sparse memfd of `size` bytes; returns the serial.
    fn offer(channel: &mut PeerChannel, size: u64) -> u32 {
        let fd = memfd_create("offered", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, size as i64).unwrap();
        channel.send_file(fd.as_fd(), "f", size).unwrap()
    }

    fn violation<T: std::fmt::Debug>(result: Result<T, ChannelError>) -> Violation {
        match result {
            Err(ChannelError::Protocol(v)) => v,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn progress_up_to_the_size_is_reported_then_the_ack_ends_the_offer() {
        let (mut alice, mut bob) = channels();
        let serial = offer(&mut alice, 1000);
        assert_eq!(alice.offered.len(), 1);
        bob.recv(T).unwrap();
        for done in [0, 500, 1000] {
            bob.progress(serial, done).unwrap();
        }
        bob.ack(serial).unwrap();
        let mut seen = Vec::new();
        alice
            .wait_ack_with(serial, T, |done| seen.push(done))
            .unwrap();
        assert_eq!(seen, [0, 500, 1000]);
        assert_eq!(alice.offered.len(), 0, "answered: forgotten");
    }

    #[test]
    fn progress_past_the_size_is_a_violation() {
        let (mut alice, mut bob) = channels();
        let serial = offer(&mut alice, 1000);
        bob.recv(T).unwrap();
        bob.progress(serial, 1000).unwrap();
        bob.progress(serial, 1001).unwrap();
        let v = violation(alice.wait_ack_with(serial, T, |_| {}));
        assert_eq!(
            v,
            Violation::ProgressPastSize {
                serial,
                done: 1001,
                size: 1000
            }
        );
        assert_eq!(
            v.to_string(),
            format!("progress of 1001 bytes for file {serial}, which has 1000")
        );
    }

    #[test]
    fn progress_for_a_text_an_answered_file_or_nothing_is_a_violation() {
        let (mut alice, mut bob) = channels();
        let text = alice.send_text("hi").unwrap();
        bob.recv(T).unwrap();
        bob.progress(text, 1).unwrap();
        let v = violation(alice.wait_ack(text, T));
        assert_eq!(v, Violation::ProgressNotForAFile { serial: text });

        let (mut alice, mut bob) = channels();
        let file = offer(&mut alice, 10);
        bob.recv(T).unwrap();
        bob.ack(file).unwrap();
        bob.progress(file, 10).unwrap();
        alice.wait_ack(file, T).unwrap();
        let v = violation(alice.recv(T));
        assert_eq!(v, Violation::ProgressNotForAFile { serial: file });

        let (mut alice, mut bob) = channels();
        bob.progress(77, 0).unwrap();
        let v = violation(alice.recv(T));
        assert_eq!(v, Violation::ProgressNotForAFile { serial: 77 });
    }
}
