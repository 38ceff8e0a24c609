//! The rest of a paste relayed from the copier: when a copy fails (over
//! the budget, past the deadline) after a paste that followed it was
//! already sent some bytes, the copier is asked again for that paste, and
//! the server passes on what it writes, less the bytes already sent.
//!
//! What it is not: the decision to relay (the clipboard's) or the watch
//! (the loop's, which the relay switches between its two ends).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{pipe2, read, write};

use super::STEP_BYTES;

/// What one [`Relay::step`] found.
#[derive(Debug)]
pub enum RelayStep {
    /// Wait until the copier's pipe is readable.
    Read,
    /// Wait until the paster's fd is writable.
    Write,
    /// The copier closed its end and everything was passed on.
    Done,
    /// The paster's side is gone, or a read or write failed.
    Gone(io::Error),
}

/// A copier's pipe passed on into a paster's fd, through a small buffer.
#[derive(Debug)]
pub struct Relay {
    from: Rc<OwnedFd>,
    to: Rc<OwnedFd>,
    /// Bytes still to drop from the start: the paster has them.
    skip: u64,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
}

impl Relay {
    /// A relay into `to` that drops the first `skip` bytes. Returns it and
    /// the pipe's write end, for the copier.
    pub fn new(to: OwnedFd, skip: u64) -> io::Result<(Relay, OwnedFd)> {
        let (from, write_end) = pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&from, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        // write() on the paster's fd must never block the loop.
        let flags = OFlag::from_bits_truncate(fcntl(&to, FcntlArg::F_GETFL)?);
        fcntl(&to, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let relay = Relay {
            from: Rc::new(from),
            to: Rc::new(to),
            skip,
            buffer: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        };
        Ok((relay, write_end))
    }

    /// The copier's pipe, to watch for reading.
    pub fn from(&self) -> &Rc<OwnedFd> {
        &self.from
    }

    /// The paster's fd, to watch for writing.
    pub fn to(&self) -> &Rc<OwnedFd> {
        &self.to
    }

    /// Passes on what it can now, at most [`STEP_BYTES`].
    pub fn step(&mut self) -> RelayStep {
        let mut moved = 0;
        loop {
            if moved >= STEP_BYTES {
                return if self.start < self.end {
                    RelayStep::Write
                } else {
                    RelayStep::Read
                };
            }
            if self.start < self.end {
                match write(self.to.as_fd(), &self.buffer[self.start..self.end]) {
                    Ok(n) => {
                        self.start += n;
                        moved += n;
                    }
                    // The paster's pipe is full.
                    Err(Errno::EAGAIN) => return RelayStep::Write,
                    Err(Errno::EINTR) => {}
                    // EPIPE: nobody reads the paste any more.
                    Err(e) => return RelayStep::Gone(e.into()),
                }
                continue;
            }
            match read(self.from.as_fd(), &mut self.buffer) {
                Ok(0) => return RelayStep::Done,
                Ok(n) => {
                    let dropped = usize::try_from(self.skip).unwrap_or(usize::MAX).min(n);
                    self.skip -= dropped as u64;
                    (self.start, self.end) = (dropped, n);
                    moved += n;
                }
                // The copier has not written more yet.
                Err(Errno::EAGAIN) => return RelayStep::Read,
                Err(Errno::EINTR) => {}
                Err(e) => return RelayStep::Gone(e.into()),
            }
        }
    }
}
