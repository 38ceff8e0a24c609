//! [`Pastes`]: the pastes a copier is writing at once, each into its
//! paster's pipe without blocking, all from one file.
//!
//! What it is: a bounded set of open pastes. Each holds the fd a paster
//! gave (made `O_NONBLOCK`), how far into the data it is, and when it last
//! took any. [`Pastes::write_ready`] writes to those `poll` found
//! writable, at most [`TURN_BUDGET`] bytes each per turn, so that no paster
//! waits for another; [`Pastes::expire`] drops those that took nothing for
//! the idle timeout; [`Pastes::add`] past the bound drops the paste idle
//! longest to make room. Whatever goes wrong with one paste (`EPIPE` from
//! a paster gone, `EBADF` from a read-only fd, `ENOSPC` from a paster's own
//! file) ends that paste alone. What it is not: the protocol
//! (`clipboard::serve` takes the `send` events and runs `poll`) or a wait.
//!
//! # Implementation notes
//!
//! - The data goes from the file to a pipe with `splice(SPLICE_F_NONBLOCK)`,
//!   never through our memory. An fd that is not a pipe makes `splice`
//!   fail with `EINVAL`; that paste then goes on with `pread` and `write`
//!   through one buffer shared by all pastes.
//! - A short `splice` or `write` means the pipe is full: the paste waits
//!   for the next `POLLOUT` instead of spending a call on `EAGAIN`.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use log::{debug, warn};
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};

/// The most one paste is written per turn, so that a paster that reads
/// fast (or a regular file, which never fills) lets the others have theirs.
pub(super) const TURN_BUDGET: usize = 1 << 20;

/// The buffer of pastes that cannot be spliced.
const COPY_CHUNK: usize = 1 << 16;

/// How one paste's data gets written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `splice` from the data file: the fd is a pipe.
    Splice,
    /// `pread` into the shared buffer, then `write`.
    Write,
}

/// One paste in progress.
struct Paste {
    fd: OwnedFd,
    mime: String,
    offset: u64,
    via: Via,
    /// When it was added or last took a byte.
    progress_at: Instant,
}

/// The pastes being written from one file. See the module documentation.
pub(super) struct Pastes<'d> {
    data: &'d File,
    len: u64,
    open: Vec<Paste>,
    max: usize,
    idle_timeout: Duration,
    buf: Vec<u8>,
}

impl<'d> Pastes<'d> {
    /// No pastes yet, of the first `len` bytes of `data`; at most `max`
    /// (at least 1) at once, each dropped after `idle_timeout` without
    /// progress.
    pub(super) fn new(data: &'d File, len: u64, max: usize, idle_timeout: Duration) -> Pastes<'d> {
        Pastes {
            data,
            len,
            open: Vec::new(),
            max: max.max(1),
            idle_timeout,
            buf: Vec::new(),
        }
    }

    /// Whether no paste is open.
    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// How many pastes are open.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    /// Starts writing the data into `fd` for a paste of `mime`. With the
    /// bound reached, the paste that has waited longest for its reader is
    /// dropped first.
    pub(super) fn add(&mut self, mime: String, fd: OwnedFd, now: Instant) {
        if self.len == 0 {
            debug!("paste of {mime:?}: nothing to write");
            return; // dropping fd closes it: the paster reads EOF
        }
        if let Err(e) = set_nonblocking(&fd) {
            warn!("dropping a paste of {mime:?}: its fd cannot be made non-blocking: {e}");
            return;
        }
        if self.open.len() >= self.max {
            if let Some(i) = self.idle_longest() {
                let old = self.open.swap_remove(i);
                warn!(
                    "dropping a paste of {:?} after {} of {} bytes: {} pastes are open, and it waited longest",
                    old.mime, old.offset, self.len, self.max
                );
            }
        }
        self.open.push(Paste {
            fd,
            mime,
            offset: 0,
            via: Via::Splice,
            progress_at: now,
        });
    }

    /// The open pastes' fds, in the order [`Pastes::write_ready`] expects
    /// their readiness.
    pub(super) fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.open.iter().map(|p| p.fd.as_fd())
    }

    /// Writes to each paste whose entry in `ready` is true (the order of
    /// [`Pastes::fds`]). Returns how many pastes ended, written in full
    /// or dropped for an error.
    pub(super) fn write_ready(&mut self, ready: &[bool], now: Instant) -> usize {
        let Pastes {
            data,
            len,
            open,
            buf,
            ..
        } = self;
        let before = open.len();
        let mut ready = ready.iter().copied();
        open.retain_mut(|paste| {
            if !ready.next().unwrap_or(false) {
                return true;
            }
            match paste.write_some(data, *len, buf, now) {
                Ok(false) => true,
                Ok(true) => {
                    debug!("paste of {:?}: {} bytes written", paste.mime, paste.offset);
                    false
                }
                Err(e) => {
                    // EPIPE: the paster went away, its business. Anything
                    // else (EBADF, ENOSPC, ...) is the paster's fd too.
                    let level = if e == Errno::EPIPE {
                        log::Level::Debug
                    } else {
                        log::Level::Warn
                    };
                    log::log!(
                        level,
                        "dropping a paste of {:?} after {} of {} bytes: {e}",
                        paste.mime,
                        paste.offset,
                        len
                    );
                    false
                }
            }
        });
        before - open.len()
    }

    /// Drops the pastes that took nothing for the idle timeout. Returns
    /// how many.
    pub(super) fn expire(&mut self, now: Instant) -> usize {
        let (timeout, len) = (self.idle_timeout, self.len);
        let before = self.open.len();
        self.open.retain(|p| {
            let idle = now.saturating_duration_since(p.progress_at);
            if idle < timeout {
                return true;
            }
            warn!(
                "dropping a paste of {:?} after {} of {} bytes: its reader took nothing for {idle:?}",
                p.mime, p.offset, len
            );
            false
        });
        before - self.open.len()
    }

    /// When the next paste expires, if it takes nothing until then.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open
            .iter()
            .map(|p| p.progress_at + self.idle_timeout)
            .min()
    }

    fn idle_longest(&self) -> Option<usize> {
        (0..self.open.len()).min_by_key(|&i| self.open[i].progress_at)
    }
}

impl Paste {
    /// Writes what the fd takes now, up to [`TURN_BUDGET`]. `Ok(true)`
    /// once all `len` bytes are written.
    fn write_some(
        &mut self,
        data: &File,
        len: u64,
        buf: &mut Vec<u8>,
        now: Instant,
    ) -> Result<bool, Errno> {
        let mut budget = TURN_BUDGET;
        while self.offset < len && budget > 0 {
            let want = usize::try_from(len - self.offset).map_or(budget, |left| left.min(budget));
            let step = match self.via {
                Via::Splice => self.splice_some(data, want).map(|n| (n, want)),
                Via::Write => self.copy_some(data, want, buf),
            };
            match step {
                // The data file ends early (it shrank): nothing more to give.
                Ok((0, _)) => return Ok(true),
                Ok((n, tried)) => {
                    self.offset += n as u64;
                    self.progress_at = now;
                    budget = budget.saturating_sub(n);
                    if n < tried {
                        break; // the pipe is full
                    }
                }
                // Full: wait for POLLOUT.
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                // Not a pipe: splice cannot write there; copy by hand.
                Err(Errno::EINVAL) if self.via == Via::Splice => self.via = Via::Write,
                Err(e) => return Err(e),
            }
        }
        Ok(self.offset >= len)
    }

    fn splice_some(&mut self, data: &File, want: usize) -> Result<usize, Errno> {
        let mut offset = i64::try_from(self.offset).map_err(|_| Errno::EOVERFLOW)?;
        splice(
            data.as_fd(),
            Some(&mut offset),
            self.fd.as_fd(),
            None,
            want,
            SpliceFFlags::SPLICE_F_NONBLOCK,
        )
    }

    /// Reads up to `want` bytes (one buffer) at the paste's offset and
    /// writes them: `(written, read)`, `(0, 0)` at the data's end.
    fn copy_some(
        &mut self,
        data: &File,
        want: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(usize, usize), Errno> {
        if buf.is_empty() {
            buf.resize(COPY_CHUNK, 0);
        }
        let chunk = want.min(buf.len());
        let got = data
            .read_at(&mut buf[..chunk], self.offset)
            .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
        if got == 0 {
            return Ok((0, 0));
        }
        match nix::unistd::write(&self.fd, &buf[..got])? {
            0 => Err(Errno::EAGAIN), // took nothing: as full
            n => Ok((n, got)),
        }
    }
}

/// Sets `O_NONBLOCK` on the fd's open file description.
fn set_nonblocking(fd: &OwnedFd) -> Result<(), Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

#[cfg(test)]
mod tests;
