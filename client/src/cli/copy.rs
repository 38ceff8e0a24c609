//! `waypass-client copy [TEXT...]`: put data on the clipboard, as
//! `wl-copy`.
//!
//! What it is: loads the words given (or stdin, or `--file`) into a sealed
//! memfd (`cli::copy_input`), sets a selection offering it, and serves
//! every paste of it until another selection replaces ours
//! ([`Clipboard::serve_file`]: every paster at once, none able to hold up
//! the others). By default it goes to the background once the selection
//! is set, like wl-copy: it starts itself again with `--foreground`, the
//! memfd as stdin, and waits for that child to say the selection is set.
//! What it is not: a clipboard manager (it serves one selection, then
//! exits).
//!
//! # Implementation notes
//!
//! - Going to the background re-executes the binary instead of `fork`ing:
//!   the crate has no `unsafe`, and the data is already in a file the
//!   child can take as stdin (and serves from directly, when it is one).
//!   The child reports `ok` (or its error) on a pipe that is its stdout,
//!   then never writes there again.
//! - wl-copy's flags are taken flag for flag (the README's table); where
//!   the two differ (a lone `-` reads stdin; binary data is offered as
//!   `application/octet-stream` without running `xdg-mime`), the README
//!   says so.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::{ArgAction, Args};
use nix::sys::stat::{fstat, SFlag};
use waypass_client::{Clipboard, Selection, ServeOptions, PASTE_IDLE_TIMEOUT};

use super::copy_input::{self, Input};
use super::{duration, mime, CliError};

/// The environment variable that tells a `--foreground` child to report
/// readiness on stdout.
const READY_VAR: &str = "WAYPASS_COPY_REPORT";

/// Arguments of `copy`.
#[derive(Debug, Args)]
#[command(version, disable_version_flag = true)]
pub(super) struct CopyArgs {
    /// The text to copy: the words, joined by single spaces, with no
    /// newline added (as wl-copy). Without words, stdin is copied: a file
    /// through `< FILE` or `--file FILE`. A lone `-` also means stdin.
    #[arg(value_name = "TEXT", num_args = 0.., conflicts_with = "file")]
    text: Vec<String>,

    /// Copy this file (as `< FILE`).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Offer this MIME type (and the text types with it when it is text,
    /// as wl-copy) [default: the text types for UTF-8 text, else
    /// application/octet-stream].
    #[arg(long, short = 't', value_name = "MIME")]
    r#type: Option<String>,

    /// Use the primary selection instead of the clipboard.
    #[arg(long, short = 'p')]
    primary: bool,

    /// Stay in the foreground instead of forking.
    #[arg(long, short = 'f')]
    foreground: bool,

    /// Clear the selection instead of copying.
    #[arg(long, short = 'c', conflicts_with_all = ["text", "file", "type", "trim_newline", "paste_once"])]
    clear: bool,

    /// Do not copy the trailing newline of stdin or FILE, if there is one.
    #[arg(long, short = 'n')]
    trim_newline: bool,

    /// Serve one paste, then exit: the selection is then empty.
    #[arg(long, short = 'o')]
    paste_once: bool,

    /// Use the seat of this name [default: the first seat].
    #[arg(long, short = 's', value_name = "NAME")]
    seat: Option<String>,

    /// Drop a paste whose reader takes nothing for this long: milliseconds,
    /// or a number with a unit (500ms, 2s, 1m) [default: 10s].
    #[arg(long, value_name = "MS|DURATION", value_parser = parse_paste_timeout)]
    paste_timeout: Option<Duration>,

    /// Print the version.
    #[arg(long, short = 'v', action = ArgAction::Version)]
    version: Option<bool>,
}

impl CopyArgs {
    fn selection(&self) -> Selection {
        if self.primary {
            Selection::Primary
        } else {
            Selection::Regular
        }
    }

    fn input(&self) -> Input<'_> {
        match (&self.file, self.text.as_slice()) {
            (Some(path), _) => Input::File(path),
            (None, []) => Input::Stdin,
            (None, [dash]) if dash == "-" => Input::Stdin,
            (None, words) => Input::Words(words),
        }
    }
}

/// Runs `copy`.
pub(super) fn copy(socket: Option<&str>, args: &CopyArgs) -> Result<(), CliError> {
    let which = args.selection();
    if args.clear {
        let mut clipboard = Clipboard::connect_to_seat(socket, args.seat.as_deref())?;
        return Ok(clipboard.copy(which, &[])?);
    }
    let report = std::env::var_os(READY_VAR).is_some();
    let data = match stdin_memfd().filter(|_| report) {
        // The parent's sealed memfd: serve it as it is.
        Some(data) => data,
        None => copy_input::load(args.input(), args.trim_newline)?,
    };
    if !args.foreground {
        return background(socket, args, data);
    }
    let utf8 = args.r#type.is_some() || copy_input::is_utf8(&data)?;
    let types = mime::offered(args.r#type.as_deref(), utf8);
    let set = Clipboard::connect_to_seat(socket, args.seat.as_deref())
        .and_then(|mut c| c.copy(which, &types).map(|()| c));
    let mut clipboard = match set {
        Ok(c) if report => ready(Ok(())).map(|()| c)?,
        Ok(c) => c,
        Err(e) if report => return ready(Err(&e.into())),
        Err(e) => return Err(e.into()),
    };
    let mut options = ServeOptions::default();
    options.paste_once = args.paste_once;
    options.idle_timeout = args.paste_timeout.unwrap_or(PASTE_IDLE_TIMEOUT);
    let served = clipboard.serve_file(&data, &options)?;
    log::debug!("done serving: {served:?}");
    Ok(())
}

/// `--paste-timeout`: a duration, more than zero (zero would drop every
/// paste at its first turn).
fn parse_paste_timeout(text: &str) -> Result<Duration, String> {
    match duration::parse_duration(text)? {
        d if d.is_zero() => Err("a paste needs more than 0 ms to be read".into()),
        d => Ok(d),
    }
}

/// Stdin as a file, when it is a regular file or memfd (what the parent
/// of a background copy gives).
fn stdin_memfd() -> Option<File> {
    let stdin = io::stdin();
    let stat = fstat(stdin.as_fd()).ok()?;
    let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    regular
        .then(|| stdin.as_fd().try_clone_to_owned().ok())
        .flatten()
        .map(File::from)
}

/// Starts `copy --foreground` with the data as stdin, waits for it to
/// report, and returns its outcome.
fn background(socket: Option<&str>, args: &CopyArgs, data: File) -> Result<(), CliError> {
    let exe = std::env::current_exe().map_err(CliError::Output)?;
    let mut cmd = Command::new(exe);
    if let Some(s) = socket {
        cmd.arg("--socket").arg(s);
    }
    cmd.args(["copy", "--foreground"]);
    if let Some(t) = &args.r#type {
        cmd.arg("--type").arg(t);
    }
    if args.primary {
        cmd.arg("--primary");
    }
    if args.paste_once {
        cmd.arg("--paste-once");
    }
    if let Some(seat) = &args.seat {
        cmd.arg("--seat").arg(seat);
    }
    if let Some(timeout) = args.paste_timeout {
        cmd.arg("--paste-timeout")
            .arg(format!("{}ms", timeout.as_millis()));
    }
    let mut child = cmd
        .env(READY_VAR, "1")
        .stdin(Stdio::from(data))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(CliError::Output)?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or(CliError::BrokenPipe)?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(CliError::Output)?;
    match line.trim_end().strip_prefix("error: ") {
        None if line.trim_end() == "ok" => Ok(()),
        Some(message) => Err(CliError::Copy(message.to_owned())),
        None => {
            let status = child.wait().map_err(CliError::Output)?;
            Err(CliError::Copy(format!(
                "the background copy exited ({status})"
            )))
        }
    }
}

/// Tells the waiting parent how setting the selection went.
fn ready(outcome: Result<(), &CliError>) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    let line = match outcome {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {}", waypass_client::chain_to_string(e)),
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)?;
    match outcome {
        Ok(()) => Ok(()),
        Err(_) => Err(CliError::Copy(line)),
    }
}
