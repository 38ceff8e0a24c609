//! One MIME type read from the copier: the read end of a pipe whose write
//! end went to the copier in `send(mime, fd)`, drained into a memfd with
//! `splice` as it becomes readable, charged to the copier's uid, and
//! sealed at EOF into a [`Kept`] file.
//!
//! What it is not: the decision to read (the clipboard's) or the watch on
//! the pipe (the loop's).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use memfd::MemfdOptions;
use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SealFlag, SpliceFFlags};
use nix::unistd::{pipe2, read};

use super::{Charge, MEMFD_NAME, STEP_BYTES};

/// One type's copy: a memfd the [`Reader`] appends to, which pastes may
/// already follow, sealed once complete. Charged to its copier's uid
/// until the last holder drops it.
#[derive(Debug)]
pub struct Kept {
    file: File,
    len: Cell<u64>,
    sealed: Cell<bool>,
    charge: RefCell<Option<Charge>>,
}

impl Kept {
    /// Its size in bytes so far.
    pub fn len(&self) -> u64 {
        self.len.get()
    }

    /// Whether it is complete (and sealed): it will not grow.
    pub fn is_sealed(&self) -> bool {
        self.sealed.get()
    }

    /// The memfd.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// What one [`Reader::read_some`] step found.
#[derive(Debug)]
pub enum ReadStep {
    /// The pipe is empty for now: wait until it is readable again.
    More,
    /// The copier closed its end: [`Reader::finish`] seals the copy.
    Done,
    /// The copier wrote more than its uid's budget has left: the type
    /// cannot be kept.
    OverBudget,
    /// Reading or writing failed.
    Failed(io::Error),
}

/// A pipe being drained into a memfd.
#[derive(Debug)]
pub struct Reader {
    pipe: Rc<OwnedFd>,
    kept: Rc<Kept>,
    charge: Charge,
}

impl Reader {
    /// A new pipe and an empty memfd, charging `charge` as bytes come.
    /// Returns the reader and the pipe's write end, for the copier: it is
    /// blocking, as a copier expects, while the server's end is not.
    pub fn new(charge: Charge) -> io::Result<(Reader, OwnedFd)> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        let file = MemfdOptions::default()
            .allow_sealing(true)
            .close_on_exec(true)
            .create(MEMFD_NAME)
            .map_err(memfd_io)?;
        let kept = Kept {
            file: file.into_file(),
            len: Cell::new(0),
            sealed: Cell::new(false),
            charge: RefCell::new(None),
        };
        let reader = Reader {
            pipe: Rc::new(read),
            kept: Rc::new(kept),
            charge,
        };
        Ok((reader, write))
    }

    /// The pipe's read end, for the loop to watch.
    pub fn pipe(&self) -> &Rc<OwnedFd> {
        &self.pipe
    }

    /// The copy as far as it is read: pastes may follow it.
    pub fn kept(&self) -> &Rc<Kept> {
        &self.kept
    }

    /// Moves what the pipe holds into the memfd, at most [`STEP_BYTES`],
    /// and never a byte past the uid's budget.
    pub fn read_some(&mut self) -> ReadStep {
        let mut moved = 0;
        while moved < STEP_BYTES {
            let room = usize::try_from(self.charge.left()).unwrap_or(usize::MAX);
            if room == 0 {
                return self.at_the_budget();
            }
            let ask = (STEP_BYTES - moved).min(room);
            let Ok(mut offset) = i64::try_from(self.kept.len()) else {
                return ReadStep::OverBudget;
            };
            let spliced = splice(
                self.pipe.as_fd(),
                None,
                &self.kept.file,
                Some(&mut offset),
                ask,
                SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
            );
            match spliced {
                // Every writer closed its end: the bytes are all here.
                Ok(0) => return ReadStep::Done,
                Ok(n) => {
                    if !self.charge.grow(n as u64) {
                        return ReadStep::OverBudget;
                    }
                    self.kept.len.set(self.kept.len() + n as u64);
                    moved += n;
                }
                // Empty for now: the loop wakes us when more comes.
                Err(Errno::EAGAIN) => return ReadStep::More,
                // A signal before anything moved: try again.
                Err(Errno::EINTR) => continue,
                Err(e) => return ReadStep::Failed(e.into()),
            }
        }
        ReadStep::More
    }

    /// The budget is used up: one byte more from the pipe means over it,
    /// its end means the copy fits exactly. That byte goes to a buffer,
    /// never into the memfd.
    fn at_the_budget(&mut self) -> ReadStep {
        let mut byte = [0u8; 1];
        loop {
            return match read(self.pipe.as_fd(), &mut byte) {
                Ok(0) => ReadStep::Done,
                Ok(_) => ReadStep::OverBudget,
                Err(Errno::EAGAIN) => ReadStep::More,
                Err(Errno::EINTR) => continue,
                Err(e) => ReadStep::Failed(e.into()),
            };
        }
    }

    /// Seals the memfd: the complete copy, which now holds the charge.
    pub fn finish(self) -> io::Result<Rc<Kept>> {
        let seals = SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SEAL;
        fcntl(&self.kept.file, FcntlArg::F_ADD_SEALS(seals))?;
        self.kept.sealed.set(true);
        *self.kept.charge.borrow_mut() = Some(self.charge);
        Ok(self.kept)
    }
}

/// The `io::Error` inside a memfd crate error.
fn memfd_io(e: memfd::Error) -> io::Error {
    match e {
        memfd::Error::Create(e) | memfd::Error::AddSeals(e) | memfd::Error::GetSeals(e) => e,
    }
}
