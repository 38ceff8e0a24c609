//! The server's configuration and its defaults, in one place below both
//! layers: [`ServerConfig`] (what `waypass-server`'s flags set, built
//! without clap), and the fixed per-client limits that bound what one
//! client can make the server hold.
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
//! config.broker.max_names = 4;
//! assert_eq!(config.keymap, KeymapSource::Embedded);
//! assert_eq!(config.settings.seat_name, "seat0");
//! ```

use std::os::unix::net::UnixListener;

use crate::keymap::KeymapSource;

/// Everything `run` needs to start a server. Not `Clone`: it may hold a
/// listening socket.
#[derive(Debug, Default)]
pub struct ServerConfig {
    /// Socket to listen on: a name under `$XDG_RUNTIME_DIR` or an absolute
    /// path; `None` for the first free `wayland-N`.
    pub socket: Option<String>,
    /// A socket already bound and listening (socket activation, or the
    /// embedding program's own), served instead of binding one: an
    /// `AF_UNIX` stream socket. The server takes no lock file for it and
    /// leaves its path at exit; `socket`, if set, must name the same path.
    pub listener: Option<UnixListener>,
    /// Where the keymap comes from (and is reloaded from on SIGHUP).
    pub keymap: KeymapSource,
    /// Per-seat settings every keyboard is told about.
    pub settings: Settings,
    /// The broker's per-client limits.
    pub broker: BrokerLimits,
    /// Commands to run as clients over `WAYLAND_SOCKET` (`/bin/sh -c`).
    pub spawn: Vec<String>,
    /// Stop once every spawned child has exited.
    pub exit_with_children: bool,
}

/// Per-seat settings every keyboard is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `wl_keyboard.repeat_info` rate, in characters per second.
    pub repeat_rate: i32,
    /// `wl_keyboard.repeat_info` delay, in milliseconds.
    pub repeat_delay: i32,
    /// `wl_seat.name`.
    pub seat_name: String,
}

impl Default for Settings {
    /// 25 per second after 600 ms, on `seat0`.
    fn default() -> Self {
        Settings {
            repeat_rate: 25,
            repeat_delay: 600,
            seat_name: "seat0".into(),
        }
    }
}

/// The broker's per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    /// Names one client may own at once (`too_many_names` beyond).
    pub max_names: usize,
    /// Live connection objects one client may hold (`too_many_pending`).
    pub max_pending: usize,
    /// Channels queued for one owner that it has not read yet (`busy`
    /// beyond).
    pub max_backlog: usize,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            max_names: 16,
            max_pending: 64,
            max_backlog: 64,
        }
    }
}

/// The most fds the server has in flight to one client: queued, or sent
/// and not yet read. It covers a full broker backlog of 64 channels
/// ([`BrokerLimits::max_backlog`]) plus 32 keyboards' keymaps
/// twice (at bind and after a reload): what a client that only reads late
/// can be owed. A client that goes past it asks for fds and never reads.
pub const MAX_FDS_IN_FLIGHT: usize = 128;

/// Live objects one client may hold. Ids can only grow one at a time (the
/// `wl_map` no-gap rule), but a client can still create objects for ever
/// (e.g. registries, or inert broker objects), and each costs server
/// memory; past this it is disconnected with `no_memory`, as libwayland does
/// when its map cannot grow. Real clients of this server hold a handful.
pub const MAX_OBJECTS_PER_CLIENT: usize = 16_384;

/// Keyboards one client may hold at once (see the module notes).
pub const MAX_KEYBOARDS_PER_CLIENT: usize = 32;

// The clipboard's limits.

/// The most MIME types one source may offer (wl-copy offers 5 for text,
/// browsers about 10).
pub const MAX_MIME_TYPES: usize = 64;
/// The longest MIME type, in bytes (RFC 6838: 127 for each of type and
/// subtype, plus the slash).
pub const MAX_MIME_LEN: usize = 255;
/// The most live sources one client may hold.
pub const MAX_SOURCES_PER_CLIENT: usize = 32;
/// The most live offers one client may hold: it must destroy the offers of
/// past selections.
pub const MAX_OFFERS_PER_CLIENT: usize = 256;
/// The most fds a source's client may have queued or unread before further
/// `receive`s for it are dropped (well below the server's in-flight limit,
/// so that a paster's flood never gets the copier disconnected).
pub const MAX_PENDING_SENDS: usize = 16;
