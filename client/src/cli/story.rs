//! What the broker commands share: their common options, how they connect
//! (with the keymap first if asked), and how they write lines.
//!
//! What it is: [`Common`] (`--story`, `--show-keymap`, `--tag`,
//! `--timeout-ms`), [`open_broker`], [`Out`], which writes each line (or
//! block) with one `write` so that two processes sharing a terminal never
//! mix halves of lines, and the fd descriptions the `--story` lines use:
//! which socket an fd is (`socket:[ino]`) and which file (`dev M:m ino N`).
//! What it is not: the commands themselves (`listen`, `send`).
//!
//! # Implementation notes
//!
//! A line of at most `PIPE_BUF` (4096) bytes written with one `write(2)` to
//! a pipe is atomic; the keymap summary block is well under that. Fd numbers
//! are printed for the story only, read from a borrowed fd at the moment
//! they are printed, never stored.

use std::fmt::Display;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use clap::Args;
use nix::sys::stat::{fstat, major, minor};
use waypass_client::{Broker, Deadline, FetchOptions, KeymapWatcher, ReceivedKeymap, Session};

use super::{summary, CliError, DEFAULT_KEYS};

/// Options every broker command takes.
#[derive(Debug, Args)]
pub(super) struct Common {
    /// Also tell which fds arrive and leave, and what they are
    /// (socket inodes, file dev/ino): the demo's narration.
    #[arg(long)]
    pub story: bool,

    /// First fetch the keymap on the same connection and print its summary
    /// (WAYLAND_SOCKET is a single connection: the keymap and the broker
    /// must share it).
    #[arg(long)]
    pub show_keymap: bool,

    /// Prefix every output line with `[TAG] `.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// How long to wait for the server's answers and for the peer's acks:
    /// milliseconds, or a number with a unit (500ms, 2s, 1m).
    #[arg(long, value_name = "MS|DURATION", default_value = "60000",
          value_parser = super::duration::parse_duration)]
    pub timeout_ms: Duration,
}

impl Common {
    /// `--timeout-ms` as a duration.
    pub fn timeout(&self) -> Duration {
        self.timeout_ms
    }
}

/// Writes whole lines to stdout, each with one `write`.
#[derive(Debug)]
pub(super) struct Out {
    prefix: String,
    story: bool,
}

impl Out {
    /// Lines prefixed with `[tag] ` if a tag is given; story lines only
    /// with `story`.
    pub fn new(common: &Common) -> Out {
        Out {
            prefix: common
                .tag
                .as_ref()
                .map_or(String::new(), |t| format!("[{t}] ")),
            story: common.story,
        }
    }

    /// Writes one line.
    pub fn line(&self, text: impl Display) -> Result<(), CliError> {
        self.block(&text.to_string())
    }

    /// Writes a warning line to stderr: `[tag] waypass-client: warning: ...`.
    pub fn warn(&self, text: impl Display) {
        let line = format!("{}waypass-client: warning: {text}\n", self.prefix);
        // Nowhere left to report a failure to write to stderr.
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    /// Writes one line when telling the story.
    pub fn story(&self, text: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.story {
            self.line(text())?;
        }
        Ok(())
    }

    /// Writes a block of lines, each prefixed, with one write.
    pub fn block(&self, text: &str) -> Result<(), CliError> {
        let mut all = String::with_capacity(text.len() + 64);
        for line in text.lines() {
            all.push_str(&self.prefix);
            all.push_str(line);
            all.push('\n');
        }
        let mut out = io::stdout().lock();
        out.write_all(all.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// Connects to `socket` (or the usual search), prints the keymap summary
/// first with `--show-keymap`, and binds the broker on the same session.
pub(super) fn open_broker(
    socket: Option<&str>,
    common: &Common,
    out: &Out,
) -> Result<Broker, CliError> {
    // Read before connecting: the connection unsets it once taken.
    let inherited = socket.is_none() && std::env::var_os("WAYLAND_SOCKET").is_some();
    let session = Session::connect(socket).map_err(waypass_client::BrokerError::Session)?;
    out.story(|| {
        let fd = session.as_fd();
        let how = if inherited {
            ", inherited through WAYLAND_SOCKET"
        } else {
            ""
        };
        format!(
            "talking to the server over {} ({}{how})",
            fd_number(fd),
            fd_target(fd)
        )
    })?;
    let session = if common.show_keymap {
        let options = FetchOptions::default();
        let mut watcher = KeymapWatcher::new(session, options)?;
        let keymap = watcher.first_keymap()?;
        let keys: Vec<u32> = DEFAULT_KEYS.iter().map(|&(code, _)| code).collect();
        out.block(&summary(&keymap, &keys, 0))?;
        out.story(|| keymap_story(&keymap))?;
        watcher.into_session()
    } else {
        session
    };
    // The server's answers within --timeout-ms, not the library's default.
    Ok(Broker::new_by(session, Deadline::after(common.timeout()))?)
}

/// Where the keymap came from, for the story.
fn keymap_story(keymap: &ReceivedKeymap) -> String {
    let info = keymap.fd_info();
    let kind = if info.memfd { "a memfd" } else { "a file" };
    format!(
        "the keymap came as {kind} ({}), {} bytes, mapped read-only and closed",
        dev_ino(info.dev, info.ino),
        keymap.size()
    )
}

/// `fd N`, for the story.
pub(super) fn fd_number(fd: BorrowedFd<'_>) -> String {
    format!("fd {}", fd.as_raw_fd())
}

/// What `/proc/self/fd/N` says an fd is, e.g. `socket:[12345]`.
pub(super) fn fd_target(fd: BorrowedFd<'_>) -> String {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match nix::fcntl::readlink(link.as_str()) {
        Ok(target) => target.to_string_lossy().into_owned(),
        Err(e) => format!("unknown: {e}"),
    }
}

/// The file identity of an fd, `dev M:m ino N`, as `fstat` reports it.
pub(super) fn file_id(fd: BorrowedFd<'_>) -> String {
    match fstat(fd) {
        Ok(st) => dev_ino(st.st_dev, st.st_ino),
        Err(e) => format!("fstat failed: {e}"),
    }
}

fn dev_ino(dev: u64, ino: u64) -> String {
    format!("dev {}:{} ino {ino}", major(dev), minor(dev))
}

/// Text from a peer (or any text we did not write) as one printable line:
/// control characters (Unicode Cc: newlines, terminal escapes) and format
/// characters (Cf: bidi overrides, zero-width and invisible characters,
/// tags) are escaped as `\u{..}`, so that what is shown is what was sent
/// and nothing can move the cursor, clear the screen or reorder the line.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` is a control (Cc) or format (Cf) character: one a terminal
/// acts on or does not show. Std has no Cf test; [`FORMAT_CHARS`] lists the
/// Cf code points (Unicode 15).
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control() || FORMAT_CHARS.iter().any(|r| r.contains(&c))
}

/// Unicode general category Cf (format), as of Unicode 15.1.
const FORMAT_CHARS: [std::ops::RangeInclusive<char>; 21] = [
    '\u{00AD}'..='\u{00AD}',   // soft hyphen
    '\u{0600}'..='\u{0605}',   // Arabic number signs
    '\u{061C}'..='\u{061C}',   // Arabic letter mark
    '\u{06DD}'..='\u{06DD}',   // Arabic end of ayah
    '\u{070F}'..='\u{070F}',   // Syriac abbreviation mark
    '\u{0890}'..='\u{0891}',   // Arabic pound/piastre mark above
    '\u{08E2}'..='\u{08E2}',   // Arabic disputed end of ayah
    '\u{180E}'..='\u{180E}',   // Mongolian vowel separator
    '\u{200B}'..='\u{200F}',   // zero-width space/joiners, LRM, RLM
    '\u{202A}'..='\u{202E}',   // bidi embeddings and overrides
    '\u{2060}'..='\u{2064}',   // word joiner, invisible operators
    '\u{2066}'..='\u{206F}',   // bidi isolates, deprecated format chars
    '\u{FEFF}'..='\u{FEFF}',   // zero-width no-break space (BOM)
    '\u{FFF9}'..='\u{FFFB}',   // interlinear annotations
    '\u{110BD}'..='\u{110BD}', // Kaithi number sign
    '\u{110CD}'..='\u{110CD}', // Kaithi number sign above
    '\u{13430}'..='\u{1343F}', // Egyptian hieroglyph format controls
    '\u{1BCA0}'..='\u{1BCA3}', // shorthand format controls
    '\u{1D173}'..='\u{1D17A}', // musical symbol format controls
    '\u{E0001}'..='\u{E0001}', // language tag
    '\u{E0020}'..='\u{E007F}', // tag characters
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("a\nb\u{1b}[31mé"), "a\\nb\\u{1b}[31mé");
        assert_eq!(printable("coucou"), "coucou");
    }

    #[test]
    fn printable_escapes_bidi_and_format_characters() {
        assert_eq!(printable("a\u{202E}b"), "a\\u{202e}b");
        assert_eq!(
            printable("\u{200B}\u{FEFF}\u{E0041}\u{AD}"),
            "\\u{200b}\\u{feff}\\u{e0041}\\u{ad}"
        );
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        // Letters, marks and symbols outside Cc/Cf stay as they are.
        assert_eq!(printable("日本 é ü 😀 \u{0301}"), "日本 é ü 😀 \u{0301}");
        assert!(!is_hidden('\u{2065}'), "unassigned, not Cf");
        assert!(is_hidden('\u{2066}') && is_hidden('\u{7f}') && is_hidden('\u{85}'));
    }
}
