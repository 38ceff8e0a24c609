//! The keymap the server hands to every `wl_keyboard`: where it comes from,
//! compiling it with xkbcommon, and the one sealed memory file that holds it.
//!
//! This module knows about XKB and memory files. It does not know about
//! clients or sockets: [`crate::dispatch`] sends [`Keymap::fd_for_client`]
//! in `wl_keyboard.keymap`, and the SIGHUP handler calls [`Keymap::load`]
//! again to reload.
//!
//! # Implementation notes
//!
//! - **One file for everyone.** The text plus one NUL is written once into
//!   a [`SealedFile`] (memfd sealed SHRINK | GROW | WRITE | SEAL), so the
//!   keymap's memory does not grow with the number of clients.
//! - **A read-only reopen per client.** Each keyboard gets
//!   [`SealedFile::reopen_read_only`]: a fresh `O_RDONLY` open of the same
//!   inode (via `/proc/self/fd/N`), not a `dup` of our read-write fd. The
//!   facts in `shared/WAYLAND.md` decide this:
//!   - on older kernels, `MAP_SHARED` of a write-sealed memfd *opened
//!     read-write* fails even with `PROT_READ` (obs-studio#5969, SDL#6393,
//!     mir#2534); a read-only open maps fine, which is why Weston does this;
//!   - a `dup` would share one file offset between all clients, and a client
//!     that `read()`s the fd would leave it at EOF for the next one
//!     (ui-events#122); each reopen has its own offset;
//!   - the seals make `MAP_PRIVATE` copies and writes harmless: nobody can
//!     change, grow or shrink the contents another client sees.
//!
//!   It costs one open per keyboard and no memory: every client sees the
//!   same (dev, ino). The caller queues the fd (the connection dups it into
//!   its queue) and drops ours right away.
//! - **Exactly one NUL.** `size` counts the text plus one terminating NUL, as
//!   libxkbcommon clients expect; trailing NULs in a `--keymap` file are cut
//!   first so a file that already ends in one is not sent with two
//!   (Smithay#943 shipped keymaps with many trailing NULs and broke clients).
//! - **Unset RMLVO fields** are passed as empty strings (options as NULL),
//!   which makes libxkbcommon apply `XKB_DEFAULT_*` and then its built-in
//!   defaults, exactly as it does for any other caller.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use waypass_protocol::{SealError, SealedFile};
use xkbcommon::xkb;

/// The default keymap, embedded so the server works without xkeyboard-config.
const EMBEDDED_US: &str = include_str!("../../assets/us.xkb");

/// RMLVO names; `None` means "unset: use `XKB_DEFAULT_*` or the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleNames {
    /// `--rules`.
    pub rules: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--layout`.
    pub layout: Option<String>,
    /// `--variant`.
    pub variant: Option<String>,
    /// `--options`.
    pub options: Option<String>,
}

impl RuleNames {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self == &RuleNames::default()
    }
}

impl fmt::Display for RuleNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(default)".into());
        write!(
            f,
            "rules={} model={} layout={} variant={} options={}",
            show(&self.rules),
            show(&self.model),
            show(&self.layout),
            show(&self.variant),
            show(&self.options)
        )
    }
}

/// Where the keymap comes from. SIGHUP reloads from the same source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeymapSource {
    /// Compiled from RMLVO names with xkbcommon.
    Names(RuleNames),
    /// A keymap text file, validated and then served byte for byte.
    File(PathBuf),
    /// The embedded `assets/us.xkb`, served as is.
    Embedded,
}

impl fmt::Display for KeymapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeymapSource::Names(n) => write!(f, "RMLVO {n}"),
            KeymapSource::File(p) => write!(f, "keymap file {}", p.display()),
            KeymapSource::Embedded => f.write_str("embedded us keymap"),
        }
    }
}

/// Why a keymap could not be loaded.
#[derive(Debug)]
pub enum KeymapError {
    /// Reading the `--keymap` file failed.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: io::Error,
    },
    /// The keymap text is not UTF-8 (xkbcommon takes text).
    NotUtf8 {
        /// What was being loaded.
        what: String,
    },
    /// The keymap text has a NUL byte before its end.
    InteriorNul {
        /// What was being loaded.
        what: String,
    },
    /// xkbcommon rejected the keymap (its own log says why, on stderr).
    Compile {
        /// What was being compiled.
        what: String,
    },
    /// Creating the sealed memory file failed.
    Seal(SealError),
}

impl fmt::Display for KeymapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeymapError::ReadFile { path, .. } => {
                write!(f, "cannot read keymap file {}", path.display())
            }
            KeymapError::NotUtf8 { what } => write!(f, "{what} is not UTF-8 text"),
            KeymapError::InteriorNul { what } => write!(f, "{what} contains a NUL byte"),
            KeymapError::Compile { what } => write!(f, "xkbcommon could not compile {what}"),
            KeymapError::Seal(_) => f.write_str("cannot create the keymap memory file"),
        }
    }
}

impl std::error::Error for KeymapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeymapError::ReadFile { source, .. } => Some(source),
            KeymapError::Seal(e) => Some(e),
            _ => None,
        }
    }
}

/// A compiled keymap in its sealed memory file, shared by every client.
#[derive(Debug)]
pub struct Keymap {
    file: SealedFile,
}

impl Keymap {
    /// Loads and validates the keymap from `source` into a new sealed file.
    pub fn load(source: &KeymapSource) -> Result<Keymap, KeymapError> {
        let text = match source {
            KeymapSource::Names(names) => compile_names(names)?,
            KeymapSource::File(path) => {
                let bytes = fs::read(path).map_err(|source| KeymapError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
                validate_text(bytes, &source.to_string())?
            }
            KeymapSource::Embedded => validate_text(EMBEDDED_US.into(), &source.to_string())?,
        };
        Self::from_text(text)
    }

    /// Puts already validated keymap text (without NUL) into a sealed file.
    fn from_text(text: String) -> Result<Keymap, KeymapError> {
        let mut bytes = text.into_bytes();
        bytes.push(0);
        let file = SealedFile::from_bytes("waypass-keymap", &bytes).map_err(KeymapError::Seal)?;
        Ok(Keymap { file })
    }

    /// The size announced in `wl_keyboard.keymap`: the text plus one NUL.
    pub fn size(&self) -> u32 {
        // A keymap is tens of KiB; a 4 GiB one could not have been compiled.
        u32::try_from(self.file.size()).unwrap_or(u32::MAX)
    }

    /// The fd one client gets: a read-only reopen of the shared file (see
    /// the module's implementation notes for why not a dup).
    pub fn fd_for_client(&self) -> Result<OwnedFd, SealError> {
        self.file.reopen_read_only()
    }
}

fn xkb_context() -> xkb::Context {
    xkb::Context::new(xkb::CONTEXT_NO_FLAGS)
}

fn compile_names(names: &RuleNames) -> Result<String, KeymapError> {
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let keymap = xkb::Keymap::new_from_names(
        &xkb_context(),
        &field(&names.rules),
        &field(&names.model),
        &field(&names.layout),
        &field(&names.variant),
        names.options.clone(),
        xkb::COMPILE_NO_FLAGS,
    )
    .ok_or_else(|| KeymapError::Compile {
        what: format!("RMLVO {names}"),
    })?;
    Ok(keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1))
}

/// Checks that `bytes` is keymap text xkbcommon compiles, and returns it
/// unchanged except for trailing NULs.
fn validate_text(mut bytes: Vec<u8>, what: &str) -> Result<String, KeymapError> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    if bytes.contains(&0) {
        return Err(KeymapError::InteriorNul { what: what.into() });
    }
    let text = String::from_utf8(bytes).map_err(|_| KeymapError::NotUtf8 { what: what.into() })?;
    xkb::Keymap::new_from_string(
        &xkb_context(),
        text.clone(),
        xkb::KEYMAP_FORMAT_TEXT_V1,
        xkb::COMPILE_NO_FLAGS,
    )
    .ok_or_else(|| KeymapError::Compile { what: what.into() })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_keymap_compiles() {
        let text = validate_text(EMBEDDED_US.into(), "embedded").expect("valid");
        assert!(text.starts_with("xkb_keymap"), "{}", &text[..20]);
    }

    #[test]
    fn trailing_nuls_are_cut_interior_ones_refused() {
        let mut bytes = EMBEDDED_US.as_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0, 0]);
        let text = validate_text(bytes, "x").expect("valid");
        assert_eq!(text, EMBEDDED_US.trim_end_matches('\0'));
        let r = validate_text(b"xkb_keymap {\0};".to_vec(), "x");
        assert!(matches!(r, Err(KeymapError::InteriorNul { .. })));
    }

    #[test]
    fn garbage_does_not_compile_and_names_its_origin() {
        let err = validate_text(b"this is not a keymap".to_vec(), "keymap file /x").unwrap_err();
        assert!(matches!(err, KeymapError::Compile { .. }));
        assert!(err.to_string().contains("/x"), "{err}");
    }
}
