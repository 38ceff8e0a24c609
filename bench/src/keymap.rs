//! The keymap file the bench's peer servers hand to every keyboard: a US
//! layout compiled by libxkbcommon, in one sealed memfd.
//!
//! What it is: the server side done the way WAYLAND.md describes (and the
//! way Smithay does it) — `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)`,
//! the keymap text plus its NUL, then seals SHRINK | GROW | WRITE | SEAL — so
//! the wayland-rs and libwayland peers are measured with a realistic 64 KB
//! keymap and exactly one copy of it, like a careful compositor.
//!
//! What it is not: waypass's own `SealedFile` (the bench does not depend on
//! the server crates, so that it builds even while they are mid-edit).

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};

use memfd::{FileSeal, Memfd, MemfdOptions};
use xkbcommon::xkb;

/// Why the keymap file could not be made.
#[derive(Debug)]
pub enum KeymapError {
    /// libxkbcommon could not compile the US keymap (xkeyboard-config missing?).
    Compile,
    /// `memfd_create` failed.
    Create(memfd::Error),
    /// Writing the text failed.
    Write(io::Error),
    /// Adding the seals failed.
    Seal(memfd::Error),
}

impl fmt::Display for KeymapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeymapError::Compile => write!(f, "libxkbcommon could not compile the us keymap"),
            KeymapError::Create(_) => write!(f, "memfd_create failed"),
            KeymapError::Write(_) => write!(f, "writing the keymap failed"),
            KeymapError::Seal(_) => write!(f, "sealing the keymap failed"),
        }
    }
}

impl std::error::Error for KeymapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeymapError::Compile => None,
            KeymapError::Create(e) | KeymapError::Seal(e) => Some(e),
            KeymapError::Write(e) => Some(e),
        }
    }
}

/// A sealed memfd holding a NUL-terminated xkb_v1 keymap.
#[derive(Debug)]
pub struct KeymapFile {
    memfd: Memfd,
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
        let memfd = MemfdOptions::default()
            .close_on_exec(true)
            .allow_sealing(true)
            .create("keymap")
            .map_err(KeymapError::Create)?;
        let mut file = memfd.as_file();
        file.write_all(text.as_bytes())
            .and_then(|()| file.write_all(&[0]))
            .map_err(KeymapError::Write)?;
        memfd
            .add_seals(&[
                FileSeal::SealShrink,
                FileSeal::SealGrow,
                FileSeal::SealWrite,
                FileSeal::SealSeal,
            ])
            .map_err(KeymapError::Seal)?;
        Ok(KeymapFile {
            memfd,
            size: text.len() as u32 + 1,
        })
    }

    /// The size to announce in `wl_keyboard.keymap`: text plus NUL.
    pub fn size(&self) -> u32 {
        self.size
    }
}

impl AsFd for KeymapFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.memfd.as_file().as_fd()
    }
}

#[cfg(test)]
mod tests {
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
