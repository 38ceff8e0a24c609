//! One paste served from a [`Kept`] file: its bytes spliced into the
//! paster's fd as it becomes writable, never blocking, until all are
//! written or the paster's reader goes.
//!
//! What it is not: the decision to serve (the clipboard's) or the watch on
//! the fd (the loop's).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::sys::uio::pread;
use nix::unistd::write;

use super::{Kept, STEP_BYTES};

/// The most bytes one copy (`pread` then `write`) moves.
const COPY_BYTES: usize = 64 * 1024;

/// What one [`Writer::write_some`] step found.
#[derive(Debug)]
pub enum WriteStep {
    /// The paster's pipe is full (or the step's share is used): wait
    /// until it is writable again.
    Blocked,
    /// Every byte is written: close the fd, and the paster reads EOF.
    Done,
    /// Every byte read so far is written, and the copy is still being
    /// read: wait for the reader, not for the fd.
    CaughtUp,
    /// The paster's side is gone (`EPIPE`) or writing failed.
    Gone(io::Error),
}

/// A paste in progress.
#[derive(Debug)]
pub struct Writer {
    kept: Rc<Kept>,
    offset: u64,
    fd: Rc<OwnedFd>,
    /// The fd is no pipe (`splice` said `EINVAL`): copy through a buffer.
    not_a_pipe: bool,
    /// The fd was made non-blocking, for copies (`write` must not block).
    nonblocking: bool,
    /// The copies' buffer, made at the first copy.
    buffer: Vec<u8>,
}

impl Writer {
    /// A paste of `kept` into `fd`, from its first byte; `kept` may still
    /// be growing (a paste that follows the read).
    pub fn new(kept: Rc<Kept>, fd: OwnedFd) -> Writer {
        Writer {
            kept,
            offset: 0,
            fd: Rc::new(fd),
            not_a_pipe: false,
            nonblocking: false,
            buffer: Vec::new(),
        }
    }

    /// The paster's fd, for the loop to watch.
    pub fn fd(&self) -> &Rc<OwnedFd> {
        &self.fd
    }

    /// The bytes written so far.
    pub fn written(&self) -> u64 {
        self.offset
    }

    /// The file it writes from.
    pub fn kept(&self) -> &Rc<Kept> {
        &self.kept
    }

    /// Writes what the fd takes now, at most [`STEP_BYTES`].
    pub fn write_some(&mut self) -> WriteStep {
        let mut moved = 0;
        loop {
            let left = self.kept.len() - self.offset;
            if left == 0 && self.kept.is_sealed() {
                return WriteStep::Done;
            }
            if left == 0 {
                return WriteStep::CaughtUp;
            }
            if moved >= STEP_BYTES {
                // Still writable, most likely: the level-triggered watch
                // wakes us again after others had their turn.
                return WriteStep::Blocked;
            }
            let ask = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(STEP_BYTES - moved);
            // A copy still being read is copied, not spliced: pages spliced
            // into a pipe stay pinned there until read, and a pinned page
            // makes `F_SEAL_WRITE` fail (EBUSY) when the read ends.
            let (step, tried) = if self.not_a_pipe || !self.kept.is_sealed() {
                (self.copy_step(ask), ask.min(COPY_BYTES))
            } else {
                (self.splice_step(ask), ask)
            };
            match step {
                Ok(0) => {
                    let eof =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the kept file ended early");
                    return WriteStep::Gone(eof);
                }
                Ok(n) => {
                    self.offset += n as u64;
                    moved += n;
                    if n < tried {
                        // Short: the pipe is full (no EAGAIN call to learn it).
                        return WriteStep::Blocked;
                    }
                }
                // The pipe is full: the loop wakes us when it drains.
                Err(Errno::EAGAIN) => return WriteStep::Blocked,
                // A signal before anything moved: try again.
                Err(Errno::EINTR) => continue,
                // Not a pipe (a file, a socket): copy instead, from now on.
                Err(Errno::EINVAL) if !self.not_a_pipe => self.not_a_pipe = true,
                // EPIPE: nobody reads the paste any more.
                Err(e) => return WriteStep::Gone(e.into()),
            }
        }
    }

    fn splice_step(&mut self, ask: usize) -> nix::Result<usize> {
        let mut offset = i64::try_from(self.offset).map_err(|_| Errno::EOVERFLOW)?;
        splice(
            self.kept.file(),
            Some(&mut offset),
            self.fd.as_fd(),
            None,
            ask,
            SpliceFFlags::SPLICE_F_NONBLOCK,
        )
    }

    fn make_nonblocking(&mut self) -> nix::Result<()> {
        let flags = fcntl(self.fd.as_fd(), FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(self.fd.as_fd(), FcntlArg::F_SETFL(flags))?;
        self.nonblocking = true;
        Ok(())
    }

    fn copy_step(&mut self, ask: usize) -> nix::Result<usize> {
        if !self.nonblocking {
            self.make_nonblocking()?;
        }
        self.buffer.resize(COPY_BYTES, 0);
        let want = ask.min(COPY_BYTES);
        let offset = i64::try_from(self.offset).map_err(|_| Errno::EOVERFLOW)?;
        let read = pread(self.kept.file(), &mut self.buffer[..want], offset)?;
        if read == 0 {
            return Ok(0);
        }
        write(self.fd.as_fd(), &self.buffer[..read])
    }
}
