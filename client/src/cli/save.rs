//! Receiving an offered file: the checks made before any byte is read,
//! and the reading itself (hashing, and with `--save-dir` saving).
//!
//! What it is: [`check_offer`], the cheap checks made in
//! `listen`'s loop (a regular file, under the size cap, a safe name); and
//! [`receive`], the slow part, run by a worker thread. What it is not: the
//! loop or the threads (see `listen` and `workers`), nor the output.
//!
//! # Implementation notes
//!
//! - **No trust in the offer.** The fd may be a FIFO, a socket, a directory
//!   or a file of any size: `fstat` says which before any read, and only a
//!   regular file (a memfd is one) under `--max-file-size` is read. Every
//!   refusal and failure is a [`Refusal`] with a reason the peer is told;
//!   none ends `listen`.
//! - **Holes.** The offered file is reopened read-only through
//!   `/proc/self/fd/N`, so that `lseek(SEEK_DATA/SEEK_HOLE)` moves our own
//!   offset and not the sender's. Only data segments are read (with
//!   `pread`) and copied (with `copy_file_range`, falling back to `pwrite`
//!   across file systems); holes are hashed as zeros and left as holes in
//!   the saved file, whose size is set with `ftruncate` at the end. If the
//!   reopen fails, the whole file is read as data.
//! - **Saved files** are written in a [`SaveDir`] (see `save_dir`), mode
//!   0600 masked with the source's mode, without a name until they are
//!   whole and flushed to disk: a failed save, or a listener killed
//!   mid-file, leaves no file under the offered name.
//! - With `copy_file_range` the bytes are hashed from a `pread` of the same
//!   range: for a sealed memfd both see the same bytes; an unsealed file
//!   that its owner rewrites meanwhile may be saved with other bytes than
//!   the ones hashed, as with any copy of a file that changes.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{copy_file_range, open, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::{ftruncate, lseek, Whence};
use sha2::{Digest, Sha256};
use waypass_client::FileOffer;

use super::save_dir::{SaveDir, SaveError};
use super::story::is_hidden;

/// Bytes read (and written) per step.
const CHUNK: usize = 1 << 20;

/// Why an offer was refused or could not be received: one line for the
/// peer and for our output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refusal for the step `what`, which failed with `e`.
pub(super) fn refusal(what: &str, e: impl Into<io::Error>) -> Refusal {
    Refusal(format!("{what}: {}", e.into()))
}

/// What the checks found out about an acceptable offer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checked {
    /// The permission bits of the offered file.
    pub mode: u32,
}

/// The checks made before any byte is read: a safe name (one path
/// component, no control or format characters), a regular file, holding
/// at least the announced size, which is at most `max_size`.
pub(super) fn check_offer(offer: &FileOffer, max_size: u64) -> Result<Checked, Refusal> {
    if offer.safe_name().is_none() || offer.name.chars().any(is_hidden) {
        return Err(Refusal(
            "unsafe file name (empty, '.', '..', a '/', control or format characters, \
             not UTF-8, or over 255 bytes)"
                .into(),
        ));
    }
    let st = fstat(&offer.fd).map_err(|e| refusal("cannot fstat the offered fd", e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        return Err(Refusal(format!(
            "not a regular file or memfd (a {})",
            kind_name(kind)
        )));
    }
    if offer.size > max_size {
        return Err(Refusal(format!(
            "{} bytes is over the size limit of {max_size} bytes",
            offer.size
        )));
    }
    let file_size = u64::try_from(st.st_size).unwrap_or(0);
    if offer.size > file_size {
        return Err(Refusal(format!(
            "the offer announces {} bytes but the file holds {file_size}",
            offer.size
        )));
    }
    Ok(Checked {
        mode: st.st_mode & 0o777,
    })
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        k if k == SFlag::S_IFIFO => "FIFO",
        k if k == SFlag::S_IFSOCK => "socket",
        k if k == SFlag::S_IFDIR => "directory",
        k if k == SFlag::S_IFCHR => "character device",
        k if k == SFlag::S_IFBLK => "block device",
        k if k == SFlag::S_IFLNK => "symbolic link",
        _ => "file of unknown type",
    }
}

/// What receiving a file gave.
#[derive(Debug, Clone)]
pub(super) struct Received {
    /// The SHA-256 of the announced `size` bytes, in hex.
    pub sha256: String,
    /// Where it was saved, if it was.
    pub saved_as: Option<PathBuf>,
}

/// Reads the announced bytes of `offer` (checked with [`check_offer`]),
/// hashing them and saving them in `dir` if given. `progress` is called
/// with the bytes done after each step.
pub(super) fn receive(
    offer: &FileOffer,
    checked: Checked,
    dir: Option<&SaveDir>,
    progress: &mut dyn FnMut(u64),
) -> Result<Received, Refusal> {
    let Some(dir) = dir else {
        let sha256 = copy(offer, None, progress)?;
        return Ok(Received {
            sha256,
            saved_as: None,
        });
    };
    // Before any reading: a name taken 100 times costs nothing more.
    if !dir.has_free_name(&offer.name) {
        return Err(save_refusal(&SaveError::AllNamesTaken));
    }
    // 0600, never more than the source allows.
    let mode = Mode::from_bits_truncate(0o600 & checked.mode);
    let file = dir.create(mode).map_err(|e| save_refusal(&e))?;
    // On an error `file` is dropped, and with it the partial copy.
    let sha256 = copy(offer, Some(file.fd()), progress)?;
    let name = dir.keep(file, &offer.name).map_err(|e| save_refusal(&e))?;
    Ok(Received {
        sha256,
        saved_as: Some(dir.join(&name)),
    })
}

/// A save error as a refusal: the step and its cause, on one line.
fn save_refusal(e: &SaveError) -> Refusal {
    Refusal(waypass_client::chain_to_string(e))
}

/// Hashes (and copies to `out`) the offered bytes, hole by hole.
fn copy(
    offer: &FileOffer,
    out: Option<BorrowedFd<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Result<String, Refusal> {
    let size = offer.size;
    // Our own open file description, for lseek; else no hole detection.
    let own = reopen(offer.fd.as_fd());
    let mut copier = Copier {
        src: offer.fd.as_fd(),
        out,
        hasher: Sha256::new(),
        buf: vec![0; CHUNK.min(usize::try_from(size).unwrap_or(CHUNK)).max(1)],
        use_copy_range: true,
    };
    let mut at = 0u64;
    while at < size {
        let (data, data_end) = match &own {
            Some(fd) => segment(fd.as_fd(), at, size),
            None => (at, size),
        };
        while at < data {
            at += copier.zeros(data - at);
            progress(at);
        }
        while at < data_end {
            at += copier.data(at, data_end)?;
            progress(at);
        }
    }
    if let Some(out) = out {
        let len = i64::try_from(size).map_err(|_| Refusal("file too large".into()))?;
        ftruncate(out, len).map_err(|e| refusal("cannot set the saved file's size", e))?;
    }
    Ok(copier
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A read-only reopen of `fd` through `/proc/self/fd`, with its own offset.
fn reopen(fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    match open(path.as_str(), flags, Mode::empty()) {
        Ok(own) => Some(own),
        Err(e) => {
            log::debug!("cannot reopen the offered file ({e}); reading it all as data");
            None
        }
    }
}

/// The next data segment at or after `at`: `(start, end)`, both at most
/// `size`. Without SEEK_DATA support everything is data.
fn segment(fd: BorrowedFd<'_>, at: u64, size: u64) -> (u64, u64) {
    let Ok(offset) = i64::try_from(at) else {
        return (at, size);
    };
    let start = match lseek(fd, offset, Whence::SeekData) {
        Ok(p) => (p as u64).min(size),
        // No data past `at`: a hole up to the end.
        Err(Errno::ENXIO) => return (size, size),
        // SEEK_DATA not supported here: all data.
        Err(_) => return (at, size),
    };
    let end = match lseek(fd, start as i64, Whence::SeekHole) {
        Ok(p) => (p as u64).min(size),
        Err(_) => size,
    };
    // Always move forward: a data segment is never empty.
    (start, if end > start { end } else { size })
}

/// The hasher and the output, with the copy method that works.
struct Copier<'a> {
    src: BorrowedFd<'a>,
    out: Option<BorrowedFd<'a>>,
    hasher: Sha256,
    buf: Vec<u8>,
    /// False once `copy_file_range` has said it cannot copy between these.
    use_copy_range: bool,
}

impl Copier<'_> {
    /// Hashes up to one chunk of the `len` zero bytes of a hole (nothing
    /// to write); returns how many.
    fn zeros(&mut self, len: u64) -> u64 {
        let n = self
            .buf
            .len()
            .min(usize::try_from(len).unwrap_or(usize::MAX));
        self.buf[..n].fill(0);
        self.hasher.update(&self.buf[..n]);
        n as u64
    }

    /// Reads (hashes, copies) one chunk at `at`, at most up to `end`.
    fn data(&mut self, at: u64, end: u64) -> Result<u64, Refusal> {
        let want = self
            .buf
            .len()
            .min(usize::try_from(end - at).unwrap_or(usize::MAX));
        let offset = i64::try_from(at).map_err(|_| Refusal("file too large".into()))?;
        let n = loop {
            match pread(self.src, &mut self.buf[..want], offset) {
                // The file ended before the announced size: it shrank.
                Ok(0) => {
                    return Err(Refusal(format!(
                        "the file ended at {at} bytes, before its announced size"
                    )))
                }
                Ok(n) => break n,
                // A signal before any byte: retry.
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(refusal("cannot read the offered file", e)),
            }
        };
        self.hasher.update(&self.buf[..n]);
        if let Some(out) = self.out {
            self.write(out, offset, n)?;
        }
        Ok(n as u64)
    }

    /// Copies `len` bytes at `offset` to the same offset of `out`.
    fn write(&mut self, out: BorrowedFd<'_>, offset: i64, len: usize) -> Result<(), Refusal> {
        let mut done = 0usize;
        while done < len {
            let (mut off_in, mut off_out) = (offset + done as i64, offset + done as i64);
            let result = if self.use_copy_range {
                copy_file_range(
                    self.src,
                    Some(&mut off_in),
                    out,
                    Some(&mut off_out),
                    len - done,
                )
            } else {
                pwrite(out, &self.buf[done..len], off_out)
            };
            match result {
                // The source shrank under copy_file_range: write what was read.
                Ok(0) if self.use_copy_range => self.use_copy_range = false,
                Ok(0) => return Err(Refusal("cannot write the saved file: wrote nothing".into())),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                // Not between these file systems or files: plain writes.
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
                    if self.use_copy_range =>
                {
                    self.use_copy_range = false;
                }
                Err(e) => return Err(refusal("cannot write the saved file", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{FileExt, MetadataExt};

    /// A private directory (removed when the guard drops) and the path of
    /// a save directory inside it that does not exist yet.
    fn temp_dir(label: &str) -> (tempfile::TempDir, PathBuf) {
        let parent = tempfile::Builder::new()
            .prefix(&format!("wp-save-{label}-"))
            .tempdir()
            .expect("temp dir");
        let dir = parent.path().join("save");
        (parent, dir)
    }

    fn offer(file: &std::fs::File, name: &str) -> FileOffer {
        let fd = OwnedFd::from(file.try_clone().expect("dup"));
        FileOffer {
            serial: 1,
            size: file.metadata().expect("stat").len(),
            fd,
            name: name.into(),
        }
    }

    #[test]
    fn a_sparse_file_is_saved_with_holes_and_hashed_whole() {
        let (_parent, dir) = temp_dir("sparse");
        let save = SaveDir::open(&dir).expect("created");
        let src_path = dir.join("src");
        let file = std::fs::File::create(&src_path).expect("create");
        file.set_len(4 << 20).expect("set_len");
        file.write_all_at(b"middle", 2 << 20).expect("write");
        // Offered read-only, as the protocol asks (a write-only fd is refused).
        let file = std::fs::File::open(&src_path).expect("open");
        let mut seen = Vec::new();
        let checked = check_offer(&offer(&file, "copy"), 1 << 30).expect("acceptable");
        let got = receive(&offer(&file, "copy"), checked, Some(&save), &mut |d| {
            seen.push(d)
        })
        .expect("received");
        let saved = got.saved_as.expect("saved");
        assert_eq!(
            std::fs::read(&saved).unwrap(),
            std::fs::read(&src_path).unwrap()
        );
        assert!(std::fs::metadata(&saved).unwrap().blocks() <= 64);
        assert_eq!(seen.last(), Some(&(4 << 20)));
        let mut expected = Sha256::new();
        expected.update(std::fs::read(&src_path).unwrap());
        let hex: String = expected
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got.sha256, hex);
    }

    #[test]
    fn offers_are_checked_before_any_read() {
        let (_parent, dir) = temp_dir("check");
        SaveDir::open(&dir).expect("created");
        let mut file = std::fs::File::create(dir.join("f")).expect("create");
        file.write_all(b"0123456789").expect("write");
        assert!(check_offer(&offer(&file, "ok.txt"), 10).is_ok());
        let too_big = check_offer(&offer(&file, "ok.txt"), 9).unwrap_err();
        assert!(too_big.0.contains("size limit of 9"), "{too_big}");
        for name in ["", "..", "a/b", "rtl\u{202E}", "nl\n"] {
            assert!(check_offer(&offer(&file, name), 10).is_err(), "{name:?}");
        }
        let dir_fd = std::fs::File::open(&dir).expect("open dir");
        let mut as_offer = offer(&dir_fd, "d");
        as_offer.size = 0;
        assert!(check_offer(&as_offer, 10)
            .unwrap_err()
            .0
            .contains("directory"));
    }
}
