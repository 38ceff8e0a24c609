//! Finding the server the Wayland way: `WAYLAND_SOCKET`, `WAYLAND_DISPLAY`,
//! `XDG_RUNTIME_DIR`, `wayland-0` (skeleton).

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The most bytes a `sun_path` holds, NUL included.
pub const SUN_PATH_MAX: usize = 108;

/// Why no connection to a display could be made.
#[derive(Debug)]
pub enum DisplayError {
    /// A display name needs `XDG_RUNTIME_DIR`, which is unset.
    NoRuntimeDir,
    /// The socket path does not fit in `sun_path`.
    PathTooLong(PathBuf),
    /// `WAYLAND_SOCKET` is not a valid, open socket fd.
    BadWaylandSocket(String),
    /// connect() failed: no compositor at that address.
    Connect {
        /// The path tried.
        path: PathBuf,
        /// The error from connect().
        source: io::Error,
    },
}

impl fmt::Display for DisplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

impl std::error::Error for DisplayError {}

/// The socket path for a display name: an absolute path as is, otherwise
/// under `$XDG_RUNTIME_DIR`. Checks the `sun_path` length.
pub fn socket_path(name: &str) -> Result<PathBuf, DisplayError> {
    todo!()
}

/// Connects to `path`.
pub fn connect_to_path(path: &Path) -> Result<UnixStream, DisplayError> {
    todo!()
}

/// Connects the way libwayland's `wl_display_connect(name)` does: an
/// explicit `name` (absolute path or name under `XDG_RUNTIME_DIR`) wins;
/// otherwise `WAYLAND_SOCKET` (taken: made close-on-exec and removed from
/// the environment), then `WAYLAND_DISPLAY`, then `wayland-0`.
pub fn connect_to_display(name: Option<&str>) -> Result<UnixStream, DisplayError> {
    todo!()
}
