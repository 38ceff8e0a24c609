//! The keymap a client received, parsed, and the questions it answers.
//!
//! [`ReceivedKeymap::from_fd`] turns the fd and size of a
//! `wl_keyboard.keymap` event into a parsed keymap, the careful way:
//! inspect the fd (memfd or not, seals), check `0 < size <= fstat size`
//! and a size cap, map it `PROT_READ` + `MAP_PRIVATE` if it is sealed
//! against shrinking or copy it with `pread` if not (the `read` submodule),
//! cut the text at the first NUL (libxkbcommon before 1.6 rejects a buffer
//! that includes it), parse it with xkbcommon, and close the fd. The result
//! answers what a program needs: layout names, keycode range, the keysym and
//! text of a key at a layout and [`Modifiers`] set, and the raw text.
//!
//! This module does not talk Wayland (see [`crate::fetch`]) and does not
//! print anything (the binary's `cli` module does, JSON included).
//!
//! # Implementation notes
//!
//! - Key queries build a fresh `xkb::State` each time and set the layout and
//!   modifiers with `update_mask`, the way a compositor's `modifiers` event
//!   would, rather than simulating key presses: the answer depends only on
//!   the arguments, never on earlier queries.
//! - [`ReceivedKeymap`] is not `Send`: it holds an `xkb::Keymap`, which the
//!   xkbcommon crate does not mark `Send`, because libxkbcommon counts its
//!   references without atomics and [`ReceivedKeymap::xkb_keymap`] lets a
//!   caller take more references. To hand a keymap to another thread, send
//!   its [`text`](ReceivedKeymap::text) (a `String`) and compile it there
//!   with `xkb::Keymap::new_from_string`.
//! - libxkbcommon writes its own messages to stderr (`xkbcommon: ERROR:
//!   ...` for a keymap it cannot parse), which is no place for a library
//!   to write. As in waypass-server, its log level is `Critical` unless
//!   `log` has debug enabled for the `xkbcommon` target
//!   (`RUST_LOG=xkbcommon=debug`); the failure itself is
//!   [`FetchError::Parse`].

mod modifiers;
mod read;

use std::os::fd::{AsFd, OwnedFd};

use waypass_protocol::{inspect_fd, FdInfo, Seals};
use xkbcommon::xkb;

use crate::error::FetchError;

pub use modifiers::Modifiers;
pub use read::{KeymapAccess, MAX_KEYMAP_SIZE};

/// `wl_keyboard.keymap_format.xkb_v1`.
pub const FORMAT_XKB_V1: u32 = 1;

/// The seals a caller may require with [`ParseOptions::require_seals`].
pub const REQUIRED_SEALS: Seals = Seals(Seals::SHRINK.0 | Seals::GROW.0 | Seals::WRITE.0);

/// The key repeat settings from `wl_keyboard.repeat_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatInfo {
    /// Characters per second; 0 disables repeat.
    pub rate: i32,
    /// Milliseconds before repeating starts.
    pub delay: i32,
}

/// What a key produces in a given state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOutput {
    /// The keysym's name, e.g. `a`, `comma`, `ampersand` (`NoSymbol` if none).
    pub keysym: String,
    /// The text it types, UTF-8 (empty if none).
    pub utf8: String,
}

/// How to check a received keymap fd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Refuse an fd without SHRINK, GROW and WRITE seals
    /// ([`FetchError::SealsMissing`]). Off by default: real compositors
    /// differ (wlroots sends an unsealed file).
    pub require_seals: bool,
}

/// Where a keymap came from: the event's metadata, beside the fd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeymapOrigin {
    /// The seat's name (`wl_seat.name`, version 2 and later).
    pub seat: Option<String>,
    /// The repeat settings, if the compositor sent them.
    pub repeat: Option<RepeatInfo>,
}

/// A keymap received from a compositor and parsed.
///
/// It is not `Send`: it holds an `xkb::Keymap`, which the xkbcommon crate
/// does not mark `Send` (libxkbcommon counts references without atomics,
/// and [`ReceivedKeymap::xkb_keymap`] lets a caller take more of them). To
/// use a keymap on another thread, send its [`text`](ReceivedKeymap::text)
/// and compile it there with `xkb::Keymap::new_from_string`; everything
/// else it reports ([`KeymapOrigin`], [`FdInfo`], [`KeyOutput`]) is `Send`.
///
/// Usually it comes from [`crate::fetch_keymap`]; here a keymap compiled in
/// the process stands in for the fd of a `wl_keyboard.keymap` event:
///
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use nix::sys::memfd::{memfd_create, MFdFlags};
/// use waypass_client::{KeymapOrigin, Modifiers, ParseOptions, ReceivedKeymap, FORMAT_XKB_V1};
/// use xkbcommon::xkb;
///
/// let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
/// let fr = xkb::Keymap::new_from_names(&context, "evdev", "pc105", "fr", "", None, 0)
///     .expect("xkeyboard-config knows fr");
/// let mut bytes = fr.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1).into_bytes();
/// bytes.push(0); // the NUL the event's size counts
///
/// let mut file = std::fs::File::from(memfd_create(c"keymap", MFdFlags::MFD_CLOEXEC)?);
/// file.write_all(&bytes)?;
/// let fd = OwnedFd::from(file);
///
/// let keymap = ReceivedKeymap::from_fd(
///     fd,
///     FORMAT_XKB_V1,
///     bytes.len() as u64,
///     KeymapOrigin::default(),
///     ParseOptions::default(),
/// )?;
/// assert_eq!(keymap.layouts(), ["French"]);
/// assert!(keymap.fd_info().memfd);
/// // evdev 16 is labelled Q on a US keyboard; in French it types a.
/// let key = keymap.key(16, 0, Modifiers::NONE).expect("layout 0");
/// assert_eq!((key.keysym.as_str(), key.utf8.as_str()), ("a", "a"));
/// // AltGr+E types the euro sign.
/// let euro = keymap.key(18, 0, Modifiers::ALT_GR).expect("layout 0");
/// assert_eq!((euro.keysym.as_str(), euro.utf8.as_str()), ("EuroSign", "€"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReceivedKeymap {
    origin: KeymapOrigin,
    format: u32,
    size: u64,
    fd: FdInfo,
    access: KeymapAccess,
    text: String,
    keymap: xkb::Keymap,
}

impl std::fmt::Debug for ReceivedKeymap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedKeymap")
            .field("origin", &self.origin)
            .field("format", &self.format)
            .field("size", &self.size)
            .field("fd", &self.fd)
            .field("access", &self.access)
            .field("layouts", &self.layouts())
            .finish_non_exhaustive()
    }
}

impl ReceivedKeymap {
    /// Checks, reads (maps or copies, see [`KeymapAccess`]), cuts, parses
    /// and closes a keymap fd of the announced `format` and `size`.
    pub fn from_fd(
        fd: OwnedFd,
        format: u32,
        size: u64,
        origin: KeymapOrigin,
        options: ParseOptions,
    ) -> Result<ReceivedKeymap, FetchError> {
        if format != FORMAT_XKB_V1 {
            return Err(FetchError::UnsupportedFormat(format));
        }
        let info = inspect_fd(fd.as_fd()).map_err(FetchError::Inspect)?;
        log::debug!(
            "keymap fd: memfd={} seals={:?} file size {} announced {size}",
            info.memfd,
            info.seals.map(Seals::names),
            info.size
        );
        if options.require_seals && !info.seals.is_some_and(|s| s.contains(REQUIRED_SEALS)) {
            return Err(FetchError::SealsMissing { have: info.seals });
        }
        let (text, access) = read::read_text(fd.as_fd(), size, &info)?;
        drop(fd);
        let keymap = parse(&text)?;
        Ok(ReceivedKeymap {
            origin,
            format,
            size,
            fd: info,
            access,
            text,
            keymap,
        })
    }

    /// The seat's name, if the compositor sent one.
    pub fn seat_name(&self) -> Option<&str> {
        self.origin.seat.as_deref()
    }

    /// The repeat settings, if the compositor sent them.
    pub fn repeat(&self) -> Option<RepeatInfo> {
        self.origin.repeat
    }

    /// The keymap format from the event (always [`FORMAT_XKB_V1`] here).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The size from the event, terminating NUL included.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What the fd was: memfd or not, seals, (dev, ino), file size.
    pub fn fd_info(&self) -> &FdInfo {
        &self.fd
    }

    /// How the bytes were read: mapped (the file was sealed against
    /// shrinking) or copied with `pread` (it was not).
    pub fn access(&self) -> KeymapAccess {
        self.access
    }

    /// The keymap text exactly as received, cut before the first NUL.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The compiled keymap, for questions this type does not answer.
    pub fn xkb_keymap(&self) -> &xkb::Keymap {
        &self.keymap
    }

    /// The layout names, by layout index (`""` for an unnamed layout).
    pub fn layouts(&self) -> Vec<String> {
        (0..self.keymap.num_layouts())
            .map(|i| self.keymap.layout_get_name(i).to_string())
            .collect()
    }

    /// The XKB keycode range `(min, max)` (an evdev code is XKB code - 8).
    pub fn keycode_range(&self) -> (u32, u32) {
        (
            self.keymap.min_keycode().raw(),
            self.keymap.max_keycode().raw(),
        )
    }

    /// What evdev key `evdev` produces at layout index `layout` with
    /// the modifiers `mods` held; `None` if the keymap has no such layout.
    pub fn key(&self, evdev: u32, layout: u32, mods: Modifiers) -> Option<KeyOutput> {
        if layout >= self.keymap.num_layouts() {
            return None;
        }
        let code = xkb::Keycode::new(evdev.checked_add(8)?);
        let mut state = xkb::State::new(&self.keymap);
        state.update_mask(mods.mask(&self.keymap), 0, 0, 0, 0, layout);
        Some(KeyOutput {
            keysym: xkb::keysym_get_name(state.key_get_one_sym(code)),
            utf8: state.key_get_utf8(code),
        })
    }
}

/// Compiles keymap text with xkbcommon.
fn parse(text: &str) -> Result<xkb::Keymap, FetchError> {
    let mut context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    // Quiet on stderr unless asked (see the module's notes).
    if !log::log_enabled!(target: "xkbcommon", log::Level::Debug) {
        context.set_log_level(xkb::LogLevel::Critical);
    }
    xkb::Keymap::new_from_string(
        &context,
        text.to_owned(),
        xkb::KEYMAP_FORMAT_TEXT_V1,
        xkb::KEYMAP_COMPILE_NO_FLAGS,
    )
    .ok_or(FetchError::Parse)
}

#[cfg(test)]
pub(crate) mod tests;
