//! The `--save-dir` directory of `listen`: checked (and created 0700) at
//! start-up, held open by fd, and the one place saved files are created.
//!
//! What it is: [`SaveDir`] and [`SaveDirError`], the one-line start-up
//! error that names the directory at fault. What it is not: the copying
//! (see `save`).
//!
//! # Implementation notes
//!
//! Files are created with `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` in the
//! directory fd, so a directory renamed or replaced by a symlink after
//! start-up is not followed, and never over an existing file: `name`,
//! `name.1` ... `name.99`, each cut at a character boundary to fit
//! `NAME_MAX`. Past that the offer is refused: at most 100 `openat` per
//! offer and 100 files per name.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::save::{refusal, Refusal};

/// How many `name.N` are tried after `name` before the offer is refused.
const MAX_SUFFIX: u32 = 99;

/// Linux's `NAME_MAX`: the longest file name, in bytes.
const NAME_MAX: usize = 255;

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

    /// Creates a new file for `name` with `mode`: `name`, else `name.1`
    /// ... `name.99` (cut to fit `NAME_MAX`). Returns its name and fd.
    pub(super) fn create_unique(
        &self,
        name: &str,
        mode: Mode,
    ) -> Result<(String, OwnedFd), Refusal> {
        for n in 0..=MAX_SUFFIX {
            let candidate = match n {
                0 => name.to_string(),
                n => with_suffix(name, n),
            };
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            match openat(&self.fd, candidate.as_str(), flags, mode) {
                Ok(fd) => return Ok((candidate, fd)),
                // Taken: try the next suffix.
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(refusal("cannot create the file to save", e)),
            }
        }
        Err(Refusal(format!(
            "{} files named like this one are already saved",
            MAX_SUFFIX + 1
        )))
    }

    /// Removes a partial file.
    pub(super) fn remove(&self, name: &str) {
        if let Err(e) = unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            log::warn!("cannot remove the partial file {name}: {e}");
        }
    }

    /// Where `name` is, for printing.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
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
mod tests {
    use super::*;

    #[test]
    fn suffixes_fit_in_name_max() {
        assert_eq!(with_suffix("a.txt", 3), "a.txt.3");
        let long = "é".repeat(127) + "x"; // 255 bytes
        let cut = with_suffix(&long, 12);
        assert!(cut.len() <= NAME_MAX, "{}", cut.len());
        assert!(cut.ends_with(".12"));
    }
}
