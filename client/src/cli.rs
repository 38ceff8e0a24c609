//! The `waypass-client` command line: arguments, the human summary, JSON
//! line and dump outputs of a keymap, and the broker commands (`listen`,
//! `send`, `send-file`, in submodules).
//!
//! It parses arguments with clap, drives the library ([`KeymapWatcher`],
//! [`waypass_client::Broker`]) and formats what it returns. It is not part
//! of the library API, and it does not print errors itself: `main` prints
//! the one-line message.
//!
//! # Implementation notes
//!
//! Output goes through a locked stdout and is flushed after each keymap, so
//! `--watch` output reaches a pipe as it happens. A write failing with
//! EPIPE (the reader went away, e.g. `| head`) is reported as
//! [`CliError::BrokenPipe`], which `main` turns into a quiet exit.

mod copy;
mod copy_input;
mod duration;
mod input;
mod key_codes;
mod keymap_json;
mod listen;
mod mime;
mod paste;
mod paste_progress;
mod report;
mod save;
mod save_dir;
mod send;
mod send_error;
mod send_progress;
mod story;
mod workers;

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use waypass_client::{
    BrokerError, ChannelError, ClipboardError, FetchError, FetchOptions, KeymapWatcher, Modifiers,
    ReceivedKeymap,
};

/// Examples of `keymap`, shown by `waypass-client keymap --help`.
const KEYMAP_EXAMPLES: &str = "\
Examples:
  waypass-client keymap
      Summary of the keymap of $WAYLAND_DISPLAY (or wayland-0).
  waypass-client --socket /tmp/wp/wayland-test keymap --json
      One JSON object on one line.
  waypass-client --socket wayland-1 keymap --layout-index 1 --keys 16,17,21
      What evdev keys 16, 17 and 21 (Q, W, Y on a US keyboard) give in the
      second layout.
  waypass-client keymap --dump > keymap.xkb
      The keymap text exactly as the compositor sent it, without the NUL.
  waypass-client keymap --watch --json
      A JSON line per keymap the compositor sends, until it goes away.

Key codes are Linux evdev codes, as wl_keyboard.key carries them; the XKB
keycode is evdev + 8.";

/// Examples of `copy`, shown by `waypass-client copy --help`.
const COPY_EXAMPLES: &str = "\
Examples:
  waypass-client copy Hello world!
      Copies the words, joined by spaces: \"Hello world!\".
  ls ~/Downloads | waypass-client copy
      Copies what comes on stdin.
  waypass-client copy < photo.png
  waypass-client copy --file photo.png --type image/png
      Copies a file (stdin, or --file), offered as image/png.
  waypass-client copy --paste-once --trim-newline < password.txt
      Serves one paste, then empties the clipboard.

As wl-copy, flag for flag (the README's table compares them).";

/// Examples of `paste`, shown by `waypass-client paste --help`.
const PASTE_EXAMPLES: &str = "\
Examples:
  waypass-client paste -n > clipboard.txt
      The clipboard as it is, without a newline added.
  waypass-client paste --type image > picture.png
      The first image type offered (image/png, image/jpeg, ...).
  waypass-client paste --list-types
      The types the selection offers.
  waypass-client paste --watch sh -c 'wc -c'
      Runs the command with each new selection on its stdin.

As wl-paste, flag for flag (the README's table compares them).";

/// Examples of every command, shown by `waypass-client --help`.
const EXAMPLES: &str = "\
Examples:
  waypass-client keymap
      Summary of the keymap of $WAYLAND_DISPLAY (or wayland-0).
  waypass-client --socket /tmp/wp/wayland-test keymap --json
      One JSON object on one line.
  waypass-client keymap --watch --json
      A JSON line per keymap the compositor sends, until it goes away.

  waypass-client listen bob --save-dir ./inbox
      Own the name bob; print what peers send, save the files they offer.
  waypass-client send bob coucou --as alice --wait 2000
      Send a text to bob (retrying for 2 s until bob is registered).
  waypass-client send-file bob ./notes.txt
      Offer a file to bob as an fd; bob reads it through the fd.

  echo hello | waypass-client copy
      Put \"hello\" on the clipboard; `copy --clear` empties it.
  waypass-client paste --list-types
      The MIME types on offer; `paste` alone prints the selection.

keymap works with any compositor; listen, send and send-file need
waypass-server's broker; copy and paste need a server with data-control
(waypass-server, sway and other wlroots compositors).
`waypass-client <command> --help` tells more about each command. Set
WAYLAND_DEBUG=client to trace the protocol and RUST_LOG=debug for logs.";

/// A Wayland client that needs no window: it reads the keymap, passes
/// texts and files to other clients through waypass-server's broker, and
/// copies and pastes through the clipboard.
#[derive(Debug, Parser)]
#[command(name = "waypass-client", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The display: a name under $XDG_RUNTIME_DIR, or a socket path (a path
    /// with a '/' is taken relative to the current directory). Default:
    /// $WAYLAND_SOCKET, then $WAYLAND_DISPLAY, then wayland-0.
    #[arg(long, value_name = "NAME|PATH", global = true)]
    pub socket: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch the keyboard keymap and report it.
    #[command(after_help = KEYMAP_EXAMPLES)]
    Keymap(KeymapArgs),
    /// Own a name on the server's broker and print what peers send to it.
    Listen(listen::ListenArgs),
    /// Send a text to the owner of a name through the broker.
    Send(send::SendArgs),
    /// Offer a file (as an fd) to the owner of a name through the broker.
    SendFile(send::SendFileArgs),
    /// Put data on the clipboard (as wl-copy), through data-control.
    #[command(after_help = COPY_EXAMPLES)]
    Copy(copy::CopyArgs),
    /// Print the clipboard (as wl-paste), through data-control.
    #[command(after_help = PASTE_EXAMPLES)]
    Paste(paste::PasteArgs),
}

#[derive(Debug, Args)]
struct KeymapArgs {
    /// Print one JSON object per keymap, on one line.
    #[arg(long)]
    json: bool,

    /// Evdev key codes to report, comma-separated, 0 to 767
    /// [default: 16,17,21,44,30,50,2: Q W Y Z A M 1 on a US keyboard].
    #[arg(long, value_delimiter = ',', value_name = "CODES",
          value_parser = key_codes::parse_key_code)]
    keys: Option<Vec<u32>>,

    /// The layout of a multi-layout keymap to report keys for.
    #[arg(long, value_name = "N", default_value_t = 0)]
    layout_index: u32,

    /// Print the keymap text exactly as received (without the NUL).
    #[arg(long, conflicts_with = "json")]
    dump: bool,

    /// Stay connected and report every keymap the compositor sends, until
    /// it goes away.
    #[arg(long)]
    watch: bool,

    /// Refuse a keymap fd without the shrink, grow and write seals.
    #[arg(long)]
    require_seals: bool,

    /// How long the whole fetch may take, from connecting to the first
    /// keymap: milliseconds, or a number with a unit (500ms, 2s, 1m)
    /// [default: 5s].
    #[arg(long, value_name = "MS|DURATION", value_parser = duration::parse_duration)]
    timeout_ms: Option<Duration>,
}

/// The default keys: Q W Y Z A M 1 on a US keyboard, as evdev codes.
const DEFAULT_KEYS: [(u32, &str); 7] = [
    (16, "Q"),
    (17, "W"),
    (21, "Y"),
    (44, "Z"),
    (30, "A"),
    (50, "M"),
    (2, "1"),
];

/// Why the command failed.
#[derive(Debug)]
pub enum CliError {
    /// Fetching or parsing the keymap failed.
    Fetch(FetchError),
    /// `--layout-index` names a layout the keymap does not have.
    LayoutOutOfRange {
        /// The index asked for.
        index: u32,
        /// How many layouts the keymap has.
        count: usize,
    },
    /// Resolving a relative `--socket` path failed.
    CurrentDir(io::Error),
    /// Binding the broker, registering or connecting failed.
    Broker(BrokerError),
    /// The peer channel failed.
    Peer {
        /// What was being done, e.g. "no ack from bob".
        context: String,
        /// Why.
        source: ChannelError,
    },
    /// `send` or `send-file` failed (another uid, a refusal, no ack, what
    /// to send cannot be taken).
    Send(send_error::SendError),
    /// `--save-dir` cannot be created or used.
    SaveDir(save_dir::SaveDirError),
    /// `listen --count` was reached, and some of what it counted was
    /// refused (over `--max-file-size`, not a regular file, not saved...).
    Refused {
        /// The `--count`.
        count: u64,
        /// How many of them were refused.
        refused: u64,
    },
    /// `poll` on the sockets failed.
    Poll(io::Error),
    /// The reader of stdout went away (EPIPE).
    BrokenPipe,
    /// Writing to stdout failed otherwise.
    Output(io::Error),
    /// The clipboard failed (no data-control, no selection, ...).
    Clipboard(ClipboardError),
    /// `copy` could not set the selection, or `paste --watch` its command.
    Copy(String),
    /// The file to copy cannot be read.
    Input {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl From<ClipboardError> for CliError {
    fn from(e: ClipboardError) -> Self {
        CliError::Clipboard(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Fetch(e) => e.fmt(f),
            CliError::LayoutOutOfRange { index, count } => write!(
                f,
                "layout index {index} is out of range: the keymap has {count} layout(s)"
            ),
            CliError::CurrentDir(_) => write!(f, "cannot resolve the socket path"),
            CliError::Broker(e) => e.fmt(f),
            CliError::Send(e) => e.fmt(f),
            CliError::Peer { context, .. } => f.write_str(context),
            CliError::SaveDir(e) => e.fmt(f),
            CliError::Refused { count, refused } => write!(
                f,
                "--count {count} reached; {refused} of them {} refused",
                if *refused == 1 { "was" } else { "were" }
            ),
            CliError::Poll(_) => write!(f, "poll on the sockets failed"),
            CliError::BrokenPipe => write!(f, "stdout closed"),
            CliError::Output(_) => write!(f, "cannot write to stdout"),
            CliError::Clipboard(e) => e.fmt(f),
            CliError::Copy(message) => f.write_str(message),
            CliError::Input { path, .. } => write!(f, "cannot read {}", path.display()),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Fetch(e) => e.source(),
            CliError::Broker(e) => e.source(),
            CliError::Send(e) => e.source(),
            CliError::Peer { source, .. } => Some(source),
            CliError::SaveDir(e) => e.source(),
            CliError::CurrentDir(e) | CliError::Output(e) | CliError::Poll(e) => Some(e),
            CliError::Input { source, .. } => Some(source),
            CliError::Clipboard(e) => e.source(),
            _ => None,
        }
    }
}

impl From<FetchError> for CliError {
    fn from(e: FetchError) -> Self {
        CliError::Fetch(e)
    }
}

impl From<BrokerError> for CliError {
    fn from(e: BrokerError) -> Self {
        CliError::Broker(e)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe => CliError::BrokenPipe,
            _ => CliError::Output(e),
        }
    }
}

impl Cli {
    /// The `--tag` of a broker command, for prefixing its error line too.
    pub fn tag(&self) -> Option<&str> {
        let common = match &self.command {
            Command::Keymap(_) | Command::Copy(_) | Command::Paste(_) => return None,
            Command::Listen(args) => &args.common,
            Command::Send(args) => &args.options.common,
            Command::SendFile(args) => &args.options.common,
        };
        common.tag.as_deref()
    }
}

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    let socket = cli.socket.as_deref().map(resolve_socket).transpose()?;
    match &cli.command {
        Command::Keymap(args) => keymap(socket.as_deref(), args),
        Command::Listen(args) => listen::listen(socket.as_deref(), args),
        Command::Send(args) => send::send(socket.as_deref(), args),
        Command::SendFile(args) => send::send_file(socket.as_deref(), args),
        Command::Copy(args) => copy::copy(socket.as_deref(), args),
        Command::Paste(args) => paste::paste(socket.as_deref(), args),
    }
}

/// A path with a '/' that is not absolute is taken relative to the current
/// directory (see `waypass_protocol::__private::socket_argument`).
fn resolve_socket(socket: &str) -> Result<String, CliError> {
    waypass_protocol::__private::socket_argument(socket).map_err(CliError::CurrentDir)
}

fn keymap(socket: Option<&str>, args: &KeymapArgs) -> Result<(), CliError> {
    let mut options = FetchOptions::default();
    options.parse.require_seals = args.require_seals;
    if let Some(timeout) = args.timeout_ms {
        options.timeout = timeout;
    }
    // One deadline for connecting, the handshake and the first keymap.
    let mut watcher = KeymapWatcher::connect(socket, options)?;
    let first = watcher.first_keymap()?;
    let mut out = io::stdout().lock();
    print_keymap(&mut out, &first, args, false)?;
    if !args.watch {
        return Ok(());
    }
    while let Some(keymap) = watcher.next_keymap(None)? {
        print_keymap(&mut out, &keymap, args, true)?;
    }
    log::debug!("the compositor went away; done watching");
    Ok(())
}

fn print_keymap(
    out: &mut impl Write,
    keymap: &ReceivedKeymap,
    args: &KeymapArgs,
    again: bool,
) -> Result<(), CliError> {
    let count = keymap.layouts().len();
    if args.layout_index as usize >= count {
        return Err(CliError::LayoutOutOfRange {
            index: args.layout_index,
            count,
        });
    }
    let keys: Vec<u32> = match &args.keys {
        Some(keys) => keys.clone(),
        None => DEFAULT_KEYS.iter().map(|&(code, _)| code).collect(),
    };
    if args.dump {
        out.write_all(keymap.text().as_bytes())?;
    } else if args.json {
        let report = keymap_json::KeymapReport::new(keymap, &keys, args.layout_index);
        writeln!(out, "{}", report.to_line())?;
    } else {
        if again {
            writeln!(out)?;
        }
        out.write_all(summary(keymap, &keys, args.layout_index).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The human summary of a keymap.
fn summary(keymap: &ReceivedKeymap, keys: &[u32], layout: u32) -> String {
    let mut s = String::new();
    let seat = keymap
        .seat_name()
        .map_or("(no name sent)".into(), story::printable);
    let _ = writeln!(s, "seat:      {seat}");
    let _ = match keymap.repeat() {
        Some(r) if r.rate == 0 => writeln!(s, "repeat:    off"),
        Some(r) => writeln!(s, "repeat:    {} per second after {} ms", r.rate, r.delay),
        None => writeln!(s, "repeat:    (not sent)"),
    };
    let _ = writeln!(s, "keymap:    xkb_v1, {} bytes", keymap.size());
    let fd = keymap.fd_info();
    let kind = if fd.memfd {
        "memfd"
    } else {
        "file (not a memfd)"
    };
    let seals = match fd.seals {
        None => "not sealable".to_string(),
        Some(seals) if seals.0 == 0 => "no seals".to_string(),
        Some(seals) => format!("seals: {}", seals.names().join(" ")),
    };
    let _ = writeln!(s, "fd:        {kind}, {seals}");
    let layouts: Vec<String> = keymap
        .layouts()
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{i}: {}", story::printable(name)))
        .collect();
    let _ = writeln!(s, "layouts:   {}", layouts.join(", "));
    let (min, max) = keymap.keycode_range();
    let _ = writeln!(s, "keycodes:  {min}..{max} (xkb; evdev + 8)");
    let in_keymap = |code: u32| (min..=max).contains(&(code + 8));
    let layouts = keymap.layouts();
    let name = layouts
        .get(layout as usize)
        .map_or("?".into(), |n| story::printable(n));
    let _ = writeln!(s, "keys (layout {layout}: {name}):");
    for &code in keys {
        let label = DEFAULT_KEYS
            .iter()
            .find(|&&(c, _)| c == code)
            .map_or(String::new(), |&(_, l)| format!("{l} "));
        let key = format!("{label}(evdev {code})");
        if !in_keymap(code) {
            let _ = writeln!(s, "  {key:<14} not in this keymap (xkb {})", code + 8);
            continue;
        }
        let plain = describe(keymap, code, layout, Modifiers::NONE);
        let shift = describe(keymap, code, layout, Modifiers::SHIFT);
        let _ = writeln!(s, "  {key:<14} {plain:<22} shift: {shift}");
    }
    s
}

fn describe(keymap: &ReceivedKeymap, code: u32, layout: u32, mods: Modifiers) -> String {
    match keymap.key(code, layout, mods) {
        Some(k) if k.utf8.is_empty() || k.utf8.chars().any(char::is_control) => k.keysym,
        Some(k) => format!("{} {:?}", k.keysym, k.utf8),
        None => "-".to_string(),
    }
}
