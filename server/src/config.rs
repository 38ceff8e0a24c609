//! The server's configuration and its defaults, in one place below both
//! layers: [`ServerConfig`] (what `waypass-server`'s flags set, built
//! without clap), with its [`Settings`] and [`Limits`] (every limit, in
//! [`crate::limits`]).
//!
//! What it is not: a parser. `cli.rs` (the binary's clap front end) turns
//! arguments into a [`ServerConfig`]; a program embedding the server builds
//! one directly:
//!
//! ```
//! use waypass_server::{KeymapSource, ServerConfig};
//!
//! let mut config = ServerConfig::default();
//! config.socket = Some("/tmp/waypass-doc.sock".into());
//! config.settings.repeat_rate = 30;
//! config.limits.set("names", 4).unwrap();
//! assert_eq!(config.keymap, KeymapSource::Embedded);
//! assert_eq!(config.settings.seat_name, "seat0");
//! ```

use std::os::unix::net::UnixListener;

use crate::keymap::KeymapSource;
use crate::limits::Limits;

/// Everything [`crate::ServerBuilder`] needs to start a server. Not
/// `Clone`: it may hold a listening socket. Built from
/// `ServerConfig::default()` and field sets (it may gain fields).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Socket to listen on: a name under `$XDG_RUNTIME_DIR` or an absolute
    /// path; `None` for the first free `wayland-N`.
    pub socket: Option<String>,
    /// A socket already bound and listening (socket activation, or the
    /// embedding program's own), served instead of binding one: an
    /// `AF_UNIX` stream socket. The server takes no lock file for it and
    /// leaves its path at exit; `socket`, if set, must name the same path.
    pub listener: Option<UnixListener>,
    /// Where the keymap comes from (and is reloaded from on SIGHUP, with
    /// [`crate::ServerBuilder::handle_signals`]).
    pub keymap: KeymapSource,
    /// Per-seat settings every keyboard is told about.
    pub settings: Settings,
    /// Every limit (see [`Limits`]): checked at start-up.
    pub limits: Limits,
    /// Commands to run as clients over `WAYLAND_SOCKET` (`/bin/sh -c`).
    pub spawn: Vec<String>,
    /// Stop once every spawned child has exited (noticed through each
    /// child's pidfd, with or without signal handling).
    pub exit_with_children: bool,
}

/// Per-seat settings every keyboard is told about. Built from
/// `Settings::default()` and field sets (it may gain fields).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `wl_keyboard.repeat_info` rate, in characters per second.
    pub repeat_rate: i32,
    /// `wl_keyboard.repeat_info` delay, in milliseconds.
    pub repeat_delay: i32,
    /// `wl_seat.name`.
    pub seat_name: String,
    /// `--persist`: keep each selection in the server, so that it
    /// outlives the client that copied it; `None` (the default) keeps
    /// nothing.
    pub persist: Option<Persist>,
}

/// How selections are kept (`--persist`): each offered type read from the
/// copier into a sealed memfd, charged to the copier's uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Persist {
    /// `--persist-max`: the bytes one uid's kept selections may hold, both
    /// selections and every type together. A type that would go past it
    /// is not kept.
    pub max_bytes: u64,
}

impl Default for Persist {
    /// 64 MiB per uid.
    fn default() -> Self {
        Persist {
            max_bytes: 64 << 20,
        }
    }
}

impl Default for Settings {
    /// 25 per second after 600 ms, on `seat0`.
    fn default() -> Self {
        Settings {
            repeat_rate: 25,
            repeat_delay: 600,
            seat_name: "seat0".into(),
            persist: None,
        }
    }
}
