//! The keymap the server hands to every `wl_keyboard`: where it comes from,
//! compiling it with xkbcommon, and the one sealed memory file that holds it.
//!
//! This module knows about XKB and memory files. It does not know about
//! clients or sockets: [`crate::proto::seat`] sends [`Keymap::fd_for_client`]
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
//!   defaults, exactly as it does for any other caller (`xkbcommon.h`,
//!   `struct xkb_rule_names`): each field comes from its variable when not
//!   given, except that the layout and the variant go together: the
//!   variant comes from `XKB_DEFAULT_VARIANT` only when the layout comes
//!   from `XKB_DEFAULT_LAYOUT`. [`RuleNames::from_environment`] tells
//!   whether any variable is set at all; with no flag and no variable, the
//!   embedded US keymap is served (it needs no xkeyboard-config).
//! - **A hostile `--keymap` path.** The file is read on every SIGHUP, in the
//!   only loop. It is opened with `O_NONBLOCK` (a FIFO opens at once instead
//!   of waiting for a writer), `fstat`ed, and refused unless it is a
//!   regular file (a FIFO, `/dev/zero` or a directory), and at most
//!   [`MAX_KEYMAP_FILE`] + 1 bytes are read, so a file that grows is
//!   caught. A failed reload keeps the old keymap (the caller logs it).
//!   Following a symlink is fine: what matters is what it leads to.
//! - **xkbcommon's own log.** libxkbcommon prints its messages on stderr
//!   (`xkbcommon: ERROR: ...`, a dozen lines for one unknown layout). The
//!   xkbcommon crate (0.9) has no safe way to route them: its log function
//!   takes a C `va_list`, which stable Rust cannot define or format. So
//!   each context's log level is set to `Critical`, the lowest the crate
//!   offers, unless `log` has debug enabled for the `xkbcommon` target
//!   (`RUST_LOG=debug` or `RUST_LOG=xkbcommon=debug`): then xkbcommon's
//!   lines go to stderr as before (and `XKB_LOG_LEVEL` applies). Our error
//!   says in one line what failed and where the valid names are listed.
//! - **Unknown options.** xkbcommon ignores an option no rule matches, so
//!   `--options bogus:opt` used to serve the keymap without it, silently.
//!   The options are checked first against the rules' own lists
//!   (`options`): an unknown one is an error naming the list.

mod options;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::warn;
use nix::fcntl::OFlag;

use waypass_protocol::{SealError, SealedFile};
use xkbcommon::xkb;

/// The default keymap, embedded so the server works without xkeyboard-config.
const EMBEDDED_US: &str = include_str!("../../assets/us.xkb");

/// The largest `--keymap` file accepted: 4 MiB. A US keymap is about
/// 64 KiB, and keymaps with several layouts stay far below 1 MiB.
pub const MAX_KEYMAP_FILE: u64 = 4 << 20;

/// The `XKB_DEFAULT_*` variables, in RMLVO order.
const ENV_NAMES: [&str; 5] = [
    "XKB_DEFAULT_RULES",
    "XKB_DEFAULT_MODEL",
    "XKB_DEFAULT_LAYOUT",
    "XKB_DEFAULT_VARIANT",
    "XKB_DEFAULT_OPTIONS",
];

/// RMLVO names; `None` means "unset: use `XKB_DEFAULT_*` or the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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

    /// Whether xkbcommon would take any field from the environment
    /// (`env` looks a variable up): `XKB_DEFAULT_RULES`, `_MODEL`,
    /// `_LAYOUT` or `_OPTIONS` is set and not empty. `XKB_DEFAULT_VARIANT`
    /// alone does nothing: xkbcommon uses it only with `XKB_DEFAULT_LAYOUT`.
    pub fn from_environment(env: impl Fn(&str) -> Option<String>) -> bool {
        [0, 1, 2, 4]
            .iter()
            .any(|&i| env(ENV_NAMES[i]).is_some_and(|v| !v.is_empty()))
    }

    /// Each field as xkbcommon will see it: the flag, else
    /// `value (XKB_DEFAULT_X)`, else `(default)`, following xkbcommon's rule
    /// that layout and variant go together.
    fn resolved(&self, env: impl Fn(&str) -> Option<String>) -> [String; 5] {
        // xkbcommon treats an empty field as unset, except the options,
        // where "" means none.
        let from = |flag: &Option<String>, i: usize| match (flag, env(ENV_NAMES[i])) {
            (Some(v), _) if !v.is_empty() => v.clone(),
            (Some(_), _) if i == 4 => "(none)".to_string(),
            (_, Some(v)) if !v.is_empty() => format!("{v} ({})", ENV_NAMES[i]),
            _ => "(default)".to_string(),
        };
        let variant = match (&self.layout, env(ENV_NAMES[2])) {
            // A layout flag: the variant flag's, or none at all.
            (Some(l), _) if !l.is_empty() => match &self.variant {
                Some(v) if !v.is_empty() => v.clone(),
                _ => "(none)".to_string(),
            },
            // The layout comes from XKB_DEFAULT_LAYOUT: so does the variant.
            (_, Some(_)) => from(&None, 3),
            _ => "(default)".to_string(),
        };
        [
            from(&self.rules, 0),
            from(&self.model, 1),
            from(&self.layout, 2),
            variant,
            from(&self.options, 4),
        ]
    }
}

impl fmt::Display for RuleNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, m, l, v, o] = self.resolved(|name| std::env::var(name).ok());
        write!(f, "rules={r} model={m} layout={l} variant={v} options={o}")
    }
}

/// Where the keymap comes from. SIGHUP reloads from the same source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeymapSource {
    /// Compiled from RMLVO names with xkbcommon.
    Names(RuleNames),
    /// A keymap text file, validated and then served byte for byte.
    File(PathBuf),
    /// The embedded `assets/us.xkb`, served as is (the default: it needs
    /// no xkeyboard-config).
    #[default]
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
#[non_exhaustive]
pub enum KeymapError {
    /// Opening, `fstat`ing or reading the `--keymap` file failed.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The `--keymap` path leads to something that is not a regular file.
    NotARegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead ("a FIFO", ...).
        kind: &'static str,
    },
    /// The `--keymap` file is larger than 4 MiB (`MAX_KEYMAP_FILE`).
    TooLarge {
        /// The file.
        path: PathBuf,
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
    /// xkbcommon rejected the keymap text.
    Compile {
        /// What was being compiled.
        what: String,
    },
    /// xkbcommon could not compile these RMLVO names (an unknown layout,
    /// variant, model or option).
    CompileNames {
        /// The names, as resolved (see [`RuleNames`]'s `Display`).
        names: String,
    },
    /// An XKB option that no rules file defines.
    UnknownOption {
        /// The option.
        option: String,
        /// The file that lists the valid ones.
        list: PathBuf,
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
            KeymapError::NotARegularFile { path, kind } => write!(
                f,
                "keymap file {} is {kind}, not a regular file",
                path.display()
            ),
            KeymapError::TooLarge { path } => write!(
                f,
                "keymap file {} is larger than {} MiB",
                path.display(),
                MAX_KEYMAP_FILE >> 20
            ),
            KeymapError::NotUtf8 { what } => write!(f, "{what} is not UTF-8 text"),
            KeymapError::InteriorNul { what } => write!(f, "{what} contains a NUL byte"),
            KeymapError::Compile { what } => write!(
                f,
                "xkbcommon could not compile {what} (RUST_LOG=debug shows why)"
            ),
            KeymapError::CompileNames { names } => write!(
                f,
                "xkbcommon could not compile RMLVO {names}; valid names: \
                 `localectl list-x11-keymap-layouts` (-variants, -models, -options) \
                 or {}/rules/evdev.lst (RUST_LOG=debug shows xkbcommon's messages)",
                xkb_config_root()
            ),
            KeymapError::UnknownOption { option, list } => write!(
                f,
                "unknown XKB option {option:?}: {} lists the valid ones \
                 (as does `localectl list-x11-keymap-options`)",
                list.display()
            ),
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
            KeymapSource::File(path) => validate_text(read_file(path)?, &source.to_string())?,
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

/// Reads a `--keymap` file without ever blocking on what its path leads
/// to (see the module's notes).
fn read_file(path: &Path) -> Result<Vec<u8>, KeymapError> {
    let read_error = |source| KeymapError::ReadFile {
        path: path.into(),
        source,
    };
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(KeymapError::NotARegularFile {
            path: path.into(),
            kind,
        });
    }
    let too_large = || KeymapError::TooLarge { path: path.into() };
    if meta.len() > MAX_KEYMAP_FILE {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    // One byte over the cap tells a file that grew since the fstat.
    file.take(MAX_KEYMAP_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_KEYMAP_FILE {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Where xkeyboard-config's files are, as xkbcommon looks for them.
fn xkb_config_root() -> String {
    std::env::var("XKB_CONFIG_ROOT")
        .ok()
        .filter(|root| !root.is_empty())
        .unwrap_or_else(|| "/usr/share/X11/xkb".into())
}

/// A context whose own stderr logging is off unless debug logging is on
/// for the `xkbcommon` target (see the module's notes).
fn xkb_context() -> xkb::Context {
    let mut context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    if !log::log_enabled!(target: "xkbcommon", log::Level::Debug) {
        context.set_log_level(xkb::LogLevel::Critical);
    }
    context
}

fn compile_names(names: &RuleNames) -> Result<String, KeymapError> {
    check_options(names, &|name| std::env::var(name).ok())?;
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
    .ok_or_else(|| KeymapError::CompileNames {
        names: names.to_string(),
    })?;
    Ok(keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1))
}

/// Refuses an option that no rules file defines (see `options`); with no
/// rules file to read, warns and lets xkbcommon have them.
fn check_options(
    names: &RuleNames,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), KeymapError> {
    // As xkbcommon resolves them: a flag, else XKB_DEFAULT_*; an empty
    // --options means none, an empty --rules means unset.
    let given = match &names.options {
        Some(options) => options.clone(),
        None => env("XKB_DEFAULT_OPTIONS").unwrap_or_default(),
    };
    if given.trim_matches(|c| c == ',' || c == ' ').is_empty() {
        return Ok(());
    }
    let non_empty = |v: String| (!v.is_empty()).then_some(v);
    let rules = names
        .rules
        .clone()
        .and_then(non_empty)
        .or_else(|| env("XKB_DEFAULT_RULES").and_then(non_empty))
        .unwrap_or_else(|| "evdev".into());
    let dirs = options::search_path(env);
    let Some(known) = options::KnownOptions::read(&dirs, &rules) else {
        warn!(
            "cannot check the XKB options {given:?}: no rules/{rules}.lst or rules/{rules} \
             under {}; passing them to xkbcommon unchecked",
            dirs.last()
                .map_or(String::new(), |d| d.display().to_string())
        );
        return Ok(());
    };
    match known.first_unknown(&given) {
        None => Ok(()),
        Some(option) => Err(KeymapError::UnknownOption {
            option: option.into(),
            list: known.list().into(),
        }),
    }
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
mod tests;
