//! The `<socket>.lock` file: opening or creating it without following a
//! symlink, taking the `flock`, and deciding at exit whether the file is
//! ours to remove.
//!
//! This module knows one file and its lock. The socket itself, and the
//! order of the start-up steps, are [`super`]'s.
//!
//! # Implementation notes
//!
//! - **No symlink, nothing but a regular file.** The lock is opened with
//!   `O_NOFOLLOW`: a symlink planted at the lock path fails with `ELOOP`
//!   instead of creating or locking its target. `O_NONBLOCK` makes opening
//!   a FIFO return at once, and `fstat` then refuses anything that is not a
//!   regular file.
//! - **Did we create it?** The file is first created with
//!   `O_CREAT | O_EXCL`; only on `EEXIST` is the existing one opened (without
//!   `O_CREAT`). If it vanished in between, we start over.
//! - **The unlink race.** After `flock`, the path is `lstat`ed and compared
//!   with `fstat` of our fd by (dev, ino): a server that exits unlinks its
//!   lock, and if that happened between our `open` and our `flock` we would
//!   hold a lock on an orphan inode. On a mismatch, start over.
//! - **What is removed at exit** ([`LockFile::remove_if_ours`]). Only the
//!   file we locked: the path must still be the same (dev, ino). A file we
//!   created is removed, as libwayland does. A file that was already there
//!   is removed only if it is an empty regular file owned by our effective
//!   uid: that is what a lock file left by a crashed waypass or libwayland
//!   server of this user looks like (lock files are never written), and
//!   libwayland too removes it at exit. Anything else (a file with
//!   contents, or another user's) was not made as our lock, so we leave it
//!   where it is: locking a file does not make it ours to delete.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::{debug, warn};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::geteuid;

use super::{FileId, ListenError};

/// How often the lock is retried when its file is replaced under us.
const LOCK_ATTEMPTS: usize = 8;

/// A held lock on `<socket>.lock`; the lock is released on drop.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    /// The file we locked.
    id: FileId,
    /// Whether this process created the file (`O_EXCL` succeeded).
    created: bool,
    lock: Flock<File>,
}

impl LockFile {
    /// Opens (or creates) and exclusively locks `path`, the lock of `socket`.
    pub fn take(path: &Path, socket: &Path) -> Result<LockFile, ListenError> {
        for _ in 0..LOCK_ATTEMPTS {
            let Some((file, created)) = open(path)? else {
                debug!("{} vanished while we opened it; retrying", path.display());
                continue;
            };
            let st = fstat(&file).map_err(|e| lock_error(path, e))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                return Err(ListenError::LockNotAFile { path: path.into() });
            }
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                // EWOULDBLOCK: a live process holds the lock.
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(ListenError::AnotherServer {
                        socket: socket.into(),
                    })
                }
                Err((_, errno)) => return Err(lock_error(path, errno)),
            };
            let id = FileId::from_stat(&st);
            match fs::symlink_metadata(path) {
                Ok(now) if FileId::of(&now) == id => {
                    return Ok(LockFile {
                        path: path.into(),
                        id,
                        created,
                        lock,
                    })
                }
                // Unlinked or replaced between our open and our flock: the
                // lock we hold protects nothing. Drop it and start over.
                Ok(_) => debug!("{} was replaced; retrying", path.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    debug!("{} was removed; retrying", path.display());
                }
                Err(source) => {
                    return Err(ListenError::Lock {
                        path: path.into(),
                        source,
                    })
                }
            }
        }
        Err(ListenError::LockRaced { path: path.into() })
    }

    /// Removes the lock file if it is still the file we locked and it is
    /// ours to remove (see the module's notes). The lock stays held until
    /// `self` is dropped.
    pub fn remove_if_ours(&self) {
        let path = &self.path;
        match fs::symlink_metadata(path) {
            Ok(now) if FileId::of(&now) != self.id => {
                warn!(
                    "{} is not the file we locked any more; leaving it",
                    path.display()
                );
                return;
            }
            Ok(now) if !self.created && (now.len() != 0 || now.uid() != geteuid().as_raw()) => {
                debug!(
                    "{} was there before us and is not an empty lock file of ours; leaving it",
                    path.display()
                );
                return;
            }
            Ok(_) => {}
            // Someone removed it already: nothing left to clean.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                warn!("cannot check {} before removing it: {e}", path.display());
                return;
            }
        }
        match fs::remove_file(path) {
            Ok(()) => debug!("removed {}", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!("cannot remove {}: {e}", path.display()),
        }
        // Keep the lock alive until here (and beyond, until drop).
        let _ = &self.lock;
    }
}

/// Creates `path` exclusively, or else opens the existing file; never
/// follows a symlink. `None`: the file vanished between the two attempts.
fn open(path: &Path) -> Result<Option<(File, bool)>, ListenError> {
    let options = |create: bool| {
        let mut o = OpenOptions::new();
        o.read(true)
            .write(true)
            .mode(0o660)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits());
        if create {
            o.create_new(true);
        }
        o
    };
    match options(true).open(path) {
        Ok(file) => return Ok(Some((file, true))),
        // Already there (a file, or a symlink: O_EXCL never follows one).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(open_error(path, e)),
    }
    match options(false).open(path) {
        Ok(file) => Ok(Some((file, false))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, e)),
    }
}

fn open_error(path: &Path, source: io::Error) -> ListenError {
    match source.raw_os_error() {
        // O_NOFOLLOW on a symlink.
        Some(code) if code == Errno::ELOOP as i32 => {
            ListenError::LockNotAFile { path: path.into() }
        }
        _ => ListenError::OpenLock {
            path: path.into(),
            source,
        },
    }
}

fn lock_error(path: &Path, errno: Errno) -> ListenError {
    ListenError::Lock {
        path: path.into(),
        source: errno.into(),
    }
}
