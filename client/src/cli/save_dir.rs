//! The `--save-dir` directory of `listen`: checked (and created 0700) at
//! start-up, held open by fd, and the one place saved files are created
//! and named.
//!
//! What it is: [`SaveDir`]; [`Unnamed`], a file being written there that
//! has no name yet; [`SaveError`], why a file could not be created or
//! named; and [`SaveDirError`], the one-line start-up error that names the
//! directory at fault. What it is not: the copying (see `save`), nor the
//! refusal sent to the peer (`save` words it from a [`SaveError`]).
//!
//! # Implementation notes
//!
//! - **A name only for a whole file.** A file is written without a name,
//!   `fsync`ed, and only then linked under its final name: a listener
//!   killed mid-file (Ctrl-C, `SIGKILL`, a crash) leaves nothing that
//!   looks complete. The file is created with `O_TMPFILE` in the
//!   directory: it has no name at all, the kernel frees it if we die, and
//!   `linkat` through `/proc/self/fd/N` names it. Where the file system
//!   has no `O_TMPFILE`, it is a hidden `.waypass-PID-N.part` created with
//!   `O_EXCL`, renamed with `renameat2(RENAME_NOREPLACE)` (or, where that
//!   flag is not supported either, linked and unlinked); a killed listener
//!   may leave such a `.part` file, never a file under the offered name.
//!   The directory is `fsync`ed after the name is made.
//! - **Never over an existing file.** `linkat` and `RENAME_NOREPLACE` fail
//!   with `EEXIST` rather than replace: `name`, `name.1` ... `name.99` are
//!   tried, each cut at a character boundary to fit `NAME_MAX`. Past that
//!   the offer is refused: at most 100 names tried per file and 100 files
//!   per name. [`SaveDir::has_free_name`] looks before the file is read, so
//!   that a name taken 100 times costs no reading.
//! - Everything is relative to the directory fd, with `O_NOFOLLOW` where a
//!   name is opened: a directory renamed or replaced by a symlink after
//!   start-up is not followed.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat2, AtFlags, OFlag, RenameFlags, AT_FDCWD};
use nix::sys::stat::{fstatat, Mode};
use nix::unistd::{fsync, linkat, unlinkat, UnlinkatFlags};

/// How many `name.N` are tried after `name` before the offer is refused.
const MAX_SUFFIX: u32 = 99;

/// Linux's `NAME_MAX`: the longest file name, in bytes.
const NAME_MAX: usize = 255;

/// How many hidden temporary names are tried (without `O_TMPFILE`).
const MAX_TEMP_TRIES: u32 = 100;

/// Numbers the hidden temporary names of this process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The `--save-dir` directory, open.
#[derive(Debug)]
pub(super) struct SaveDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// Why `--save-dir` cannot be used.
#[derive(Debug)]
pub(crate) struct SaveDirError {
    /// The directory (or the missing parent) at fault.
    pub path: PathBuf,
    /// What was wrong with it.
    pub what: &'static str,
    /// Why.
    pub source: io::Error,
}

impl fmt::Display for SaveDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--save-dir {}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for SaveDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why a file could not be created or named in the save directory.
#[derive(Debug)]
pub(super) enum SaveError {
    /// The file to write (`O_TMPFILE`, or the hidden temporary) could not
    /// be created.
    Create(io::Error),
    /// The written file could not be flushed to disk (`fsync`).
    Sync(io::Error),
    /// The written file could not be given its name.
    Name(io::Error),
    /// `name`, `name.1` ... `name.99` all exist.
    AllNamesTaken,
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Create(_) => f.write_str("cannot create the file to save"),
            SaveError::Sync(_) => f.write_str("cannot flush the saved file to disk"),
            SaveError::Name(_) => f.write_str("cannot give the saved file its name"),
            SaveError::AllNamesTaken => write!(
                f,
                "{} files named like this one are already saved",
                MAX_SUFFIX + 1
            ),
        }
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SaveError::Create(e) | SaveError::Sync(e) | SaveError::Name(e) => Some(e),
            SaveError::AllNamesTaken => None,
        }
    }
}

/// A file being written in a [`SaveDir`], not yet under its name. Dropped
/// without [`SaveDir::keep`], it goes: an `O_TMPFILE` with its fd, a
/// hidden temporary with an `unlinkat`.
#[derive(Debug)]
pub(super) struct Unnamed<'a> {
    dir: &'a SaveDir,
    fd: OwnedFd,
    /// The hidden temporary name, without `O_TMPFILE`.
    temp: Option<String>,
}

impl Unnamed<'_> {
    /// The file, to write into.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Unnamed<'_> {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            if let Err(e) = unlinkat(&self.dir.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir) {
                log::warn!("cannot remove the partial file {temp}: {e}");
            }
        }
    }
}

impl SaveDir {
    /// Opens `path`, creating it (mode 0700, one level) if it is missing.
    /// Fails with the directory's name if it cannot be created, is not a
    /// directory or is not writable.
    pub fn open(path: &Path) -> Result<SaveDir, SaveDirError> {
        let error = |path: &Path, what, source| SaveDirError {
            path: path.to_path_buf(),
            what,
            source,
        };
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => log::debug!("created {}", path.display()),
            // There already: checked below.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = path.parent().unwrap_or(Path::new("."));
                return Err(error(parent, "the parent directory does not exist", e));
            }
            Err(e) => return Err(error(path, "cannot create the directory", e)),
        }
        let fd = open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| error(path, "cannot open the directory", e.into()))?;
        nix::unistd::access(
            path,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .map_err(|e| error(path, "the directory is not writable", e.into()))?;
        Ok(SaveDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Whether one of `name`, `name.1` ... `name.99` is free now (it may
    /// be taken by the time the file is named: [`SaveDir::keep`] decides).
    pub fn has_free_name(&self, name: &str) -> bool {
        candidates(name).any(|candidate| {
            matches!(
                fstatat(&self.fd, candidate.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW),
                Err(Errno::ENOENT)
            )
        })
    }

    /// Creates a file with `mode` to write into, with no name yet.
    pub fn create(&self, mode: Mode) -> Result<Unnamed<'_>, SaveError> {
        let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        match openat(&self.fd, ".", flags, mode) {
            Ok(fd) => Ok(Unnamed {
                dir: self,
                fd,
                temp: None,
            }),
            // No O_TMPFILE here (EISDIR: a kernel that predates it; the
            // others: a file system without it): a hidden name instead.
            Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => self.create_hidden(mode),
            Err(e) => Err(SaveError::Create(e.into())),
        }
    }

    /// Creates `.waypass-PID-N.part` with `O_EXCL`, for file systems
    /// without `O_TMPFILE`.
    fn create_hidden(&self, mode: Mode) -> Result<Unnamed<'_>, SaveError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut last = Errno::EEXIST;
        for _ in 0..MAX_TEMP_TRIES {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let temp = format!(".waypass-{}-{n}.part", std::process::id());
            match openat(&self.fd, temp.as_str(), flags, mode) {
                Ok(fd) => {
                    return Ok(Unnamed {
                        dir: self,
                        fd,
                        temp: Some(temp),
                    })
                }
                // A leftover of a killed listener with our pid: the next.
                Err(Errno::EEXIST) => last = Errno::EEXIST,
                Err(e) => return Err(SaveError::Create(e.into())),
            }
        }
        Err(SaveError::Create(last.into()))
    }

    /// Flushes `file` to disk and names it `name`, else `name.1` ...
    /// `name.99` (cut to fit `NAME_MAX`), never replacing a file. Returns
    /// the name it got. On an error the file goes, as on drop.
    pub fn keep(&self, mut file: Unnamed<'_>, name: &str) -> Result<String, SaveError> {
        fsync(&file.fd).map_err(|e| SaveError::Sync(e.into()))?;
        for candidate in candidates(name) {
            match self.name(&file, &candidate) {
                Ok(()) => {
                    // Named: nothing left to remove on drop.
                    file.temp = None;
                    // The new name on disk too; the file is whole already.
                    if let Err(e) = fsync(&self.fd) {
                        log::warn!("cannot flush {} to disk: {e}", self.path.display());
                    }
                    return Ok(candidate);
                }
                // Taken: try the next suffix.
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(SaveError::Name(e.into())),
            }
        }
        Err(SaveError::AllNamesTaken)
    }

    /// Gives `file` the name `to`, failing with `EEXIST` if it is taken.
    fn name(&self, file: &Unnamed<'_>, to: &str) -> Result<(), Errno> {
        let Some(temp) = &file.temp else {
            // An O_TMPFILE file: link it through /proc (AT_EMPTY_PATH
            // would need CAP_DAC_READ_SEARCH).
            let path = format!("/proc/self/fd/{}", file.fd.as_raw_fd());
            return linkat(
                AT_FDCWD,
                path.as_str(),
                &self.fd,
                to,
                AtFlags::AT_SYMLINK_FOLLOW,
            );
        };
        match renameat2(
            &self.fd,
            temp.as_str(),
            &self.fd,
            to,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            // No RENAME_NOREPLACE on this file system: link (which never
            // replaces either), then drop the temporary name.
            Err(Errno::EINVAL) => {
                linkat(&self.fd, temp.as_str(), &self.fd, to, AtFlags::empty())?;
                if let Err(e) = unlinkat(&self.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir) {
                    log::warn!("cannot remove the temporary name {temp}: {e}");
                }
                Ok(())
            }
            other => other,
        }
    }

    /// Where `name` is, for printing.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// `name`, `name.1` ... `name.99`, each cut to fit `NAME_MAX`.
fn candidates(name: &str) -> impl Iterator<Item = String> + '_ {
    (0..=MAX_SUFFIX).map(move |n| match n {
        0 => name.to_string(),
        n => with_suffix(name, n),
    })
}

/// `name.N`, with `name` cut (at a character boundary) so that the whole
/// fits in `NAME_MAX` bytes.
fn with_suffix(name: &str, n: u32) -> String {
    let suffix = format!(".{n}");
    let mut keep = name.len().min(NAME_MAX - suffix.len());
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{suffix}", &name[..keep])
}

#[cfg(test)]
#[path = "save_dir_tests.rs"]
mod tests;
