//! The keymap file the bench's peer servers hand to every keyboard: a US
//! layout compiled by libxkbcommon, in one sealed memfd.
//!
//! What it is: the server side done the way WAYLAND.md describes (and the
//! way Smithay does it) — `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)`,
//! the keymap text plus its NUL, then seals SHRINK | GROW | WRITE | SEAL — so
//! the wayland-rs and libwayland peers are measured with a realistic 64 KB
//! keymap and exactly one copy of it, like a careful compositor.
//!
//! It is waypass-protocol's `SealedFile`, which does exactly that: the
//! peers share it so that only the event loops differ between the servers
//! measured.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use waypass_protocol::{SealError, SealedFile};
use xkbcommon::xkb;

/// Why the keymap file could not be made.
#[derive(Debug)]
pub enum KeymapError {
    /// libxkbcommon could not compile the US keymap (xkeyboard-config missing?).
    Compile,
    /// Creating, writing or sealing the memfd failed.
    Seal(SealError),
}

impl fmt::Display for KeymapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeymapError::Compile => write!(f, "libxkbcommon could not compile the us keymap"),
            KeymapError::Seal(_) => write!(f, "making the sealed keymap file failed"),
        }
    }
}

impl std::error::Error for KeymapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeymapError::Compile => None,
            KeymapError::Seal(e) => Some(e),
        }
    }
}

/// A sealed memfd holding a NUL-terminated xkb_v1 keymap.
#[derive(Debug)]
pub struct KeymapFile {
    file: SealedFile,
    size: u32,
}

impl KeymapFile {
    /// Compiles the US layout and writes it, NUL-terminated, to a sealed memfd.
    pub fn us() -> Result<KeymapFile, KeymapError> {
        let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        let keymap = xkb::Keymap::new_from_names(
            &context,
            "",
            "",
            "us",
            "",
            None,
            xkb::KEYMAP_COMPILE_NO_FLAGS,
        )
        .ok_or(KeymapError::Compile)?;
        let text = keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1);
        Self::from_text(&text)
    }

    /// Writes `text` plus a NUL to a new memfd named `keymap`, and seals it.
    pub fn from_text(text: &str) -> Result<KeymapFile, KeymapError> {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        let file = SealedFile::from_bytes("keymap", &bytes).map_err(KeymapError::Seal)?;
        Ok(KeymapFile {
            size: bytes.len() as u32,
            file,
        })
    }

    /// The size to announce in `wl_keyboard.keymap`: text plus NUL.
    pub fn size(&self) -> u32 {
        self.size
    }
}

impl AsFd for KeymapFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn keymap_file_is_sealed_and_nul_terminated() {
        let keymap = KeymapFile::from_text("xkb_keymap { };").unwrap();
        assert_eq!(keymap.size(), 16);
        let file = std::fs::File::from(keymap.as_fd().try_clone_to_owned().unwrap());
        assert_eq!(file.metadata().unwrap().len(), 16);
        let mut writer = &file;
        // F_SEAL_WRITE: the file can no longer be written.
        assert!(writer.write_all(b"x").is_err());
    }

    #[test]
    fn us_keymap_compiles() {
        let keymap = KeymapFile::us().unwrap();
        assert!(keymap.size() > 10_000);
    }
}
