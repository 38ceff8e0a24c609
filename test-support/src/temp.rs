//! Private temporary directories for the tests' sockets, logs and files:
//! named after the test, mode 0700, removed on drop. It is a thin wrapper
//! over `tempfile`, not a second implementation of one.

use std::path::{Path, PathBuf};

/// A private temporary directory, removed on drop: a thin wrapper over
/// [`tempfile::TempDir`] that names it after the test and keeps the
/// `path`/`join` calls the tests use.
#[derive(Debug)]
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    /// Creates `$TMPDIR/wp-<label>-` plus a random six-character suffix
    /// (mode 0700), as `tempfile` names them; panics if it cannot.
    pub fn new(label: &str) -> TempDir {
        Self::try_new(label).expect("create temp dir")
    }

    /// Like [`TempDir::new`], for callers that report the error (the bench).
    pub fn try_new(label: &str) -> std::io::Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wp-{label}-"))
            .tempdir()?;
        Ok(TempDir { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
