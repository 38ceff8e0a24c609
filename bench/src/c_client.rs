//! The libwayland C client: `wl_display_roundtrip` from libwayland-client,
//! called through its C API (issue 14 measures every server with it).
//!
//! What it is: three functions of libwayland-client, linked directly
//! (libwayland-dev, which the bench already needs for its libwayland peer,
//! provides the library). Each round trip is one `wl_display_roundtrip`:
//! `wl_display.sync`, flush, then read and dispatch until the callback's
//! `done`, exactly as a C client does it.
//!
//! What it is not: wayland-client's system backend. The bench keeps
//! wayland-client on the pure-Rust backend (see Cargo.toml), so the C client
//! is reached without it.
//!
//! # Implementation notes
//!
//! `wl_display_roundtrip` has no timeout: a server that stops answering
//! hangs the bench (the servers measured here are the bench's own peers and
//! waypass-server, which answer `sync` at once).

use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

#[link(name = "wayland-client")]
extern "C" {
    fn wl_display_connect_to_fd(fd: c_int) -> *mut c_void;
    fn wl_display_roundtrip(display: *mut c_void) -> c_int;
    fn wl_display_disconnect(display: *mut c_void);
}

/// A libwayland-client connection (`struct wl_display *`).
pub struct CClient {
    display: NonNull<c_void>,
}

impl CClient {
    /// Connects to the server at `path`.
    pub fn connect(path: &Path) -> io::Result<CClient> {
        let fd = UnixStream::connect(path)?.into_raw_fd();
        // SAFETY: `fd` is a connected socket we own; libwayland takes it
        // over (it closes it on disconnect, or on failure here).
        let display = unsafe { wl_display_connect_to_fd(fd) };
        NonNull::new(display)
            .map(|display| CClient { display })
            .ok_or_else(io::Error::last_os_error)
    }

    /// `n` `wl_display_roundtrip`s; returns the wall time.
    pub fn round_trips(&mut self, n: u64) -> io::Result<Duration> {
        let start = Instant::now();
        for _ in 0..n {
            // SAFETY: `display` is a live wl_display this struct owns.
            if unsafe { wl_display_roundtrip(self.display.as_ptr()) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(start.elapsed())
    }
}

impl Drop for CClient {
    fn drop(&mut self) {
        // SAFETY: the display is live and not used after this.
        unsafe { wl_display_disconnect(self.display.as_ptr()) }
    }
}
