//! `waypass-client paste`: print the clipboard, as `wl-paste`.
//!
//! What it is: connects, picks a type (`--type`, else the first text
//! type on offer, else the first type), and copies what the source writes
//! into the pipe to stdout; `--list-types` prints the types instead, and
//! `--watch CMD...` runs CMD with each new selection on its stdin. What it
//! is not: a clipboard manager (nothing is kept).
//!
//! # Implementation notes
//!
//! - As wl-paste does, a newline is appended after text unless
//!   `--no-newline`, and an empty selection is an error ("no selection").
//! - Large pastes show a byte counter on stderr when stderr is a terminal;
//!   never on a pipe.
//! - With `--watch`, CMD gets `CLIPBOARD_STATE=data` and the data on
//!   stdin, or `CLIPBOARD_STATE=nil` and an empty stdin when the selection
//!   is cleared, as with wl-paste.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use waypass_client::{Clipboard, ClipboardError, Selection};

use super::copy::TEXT_TYPES;
use super::CliError;

/// Pastes larger than this show a counter on a terminal.
const PROGRESS_THRESHOLD: u64 = 8 << 20;

/// Arguments of `paste`.
#[derive(Debug, Args)]
pub(super) struct PasteArgs {
    /// Paste this MIME type [default: a text type if offered, else the
    /// first type offered].
    #[arg(long, short = 't', value_name = "MIME")]
    r#type: Option<String>,

    /// Print the offered MIME types, one per line, instead of the data.
    #[arg(long, short = 'l', conflicts_with_all = ["type", "watch"])]
    list_types: bool,

    /// Use the primary selection instead of the clipboard.
    #[arg(long, short = 'p')]
    primary: bool,

    /// Do not append a newline after text.
    #[arg(long, short = 'n')]
    no_newline: bool,

    /// Run CMD (with its arguments) for every new selection, the data on
    /// its stdin, until killed.
    #[arg(long, short = 'w', num_args = 1.., value_name = "CMD", allow_hyphen_values = true)]
    watch: Option<Vec<String>>,
}

/// Runs `paste`.
pub(super) fn paste(socket: Option<&str>, args: &PasteArgs) -> Result<(), CliError> {
    let which = if args.primary {
        Selection::Primary
    } else {
        Selection::Regular
    };
    let mut clipboard = Clipboard::connect(socket)?;
    if let Some(cmd) = &args.watch {
        return watch(&mut clipboard, which, args, cmd);
    }
    let types = clipboard
        .types(which)
        .ok_or(ClipboardError::Empty)?
        .to_vec();
    let mut out = io::stdout().lock();
    if args.list_types {
        for t in &types {
            writeln!(out, "{t}").map_err(output)?;
        }
        return Ok(());
    }
    let mime = choose(&types, args.r#type.as_deref())?;
    let mut pipe = clipboard.paste(which, &mime)?;
    let copied = copy_with_progress(&mut pipe, &mut out)?;
    if is_text(&mime) && !args.no_newline {
        writeln!(out).map_err(output)?;
    }
    out.flush().map_err(output)?;
    log::debug!("pasted {copied} bytes of {mime}");
    Ok(())
}

/// The type to paste: the one asked for (which must be on offer), else
/// the first text type on offer, else the first type.
fn choose(types: &[String], asked: Option<&str>) -> Result<String, CliError> {
    if let Some(asked) = asked {
        return types
            .iter()
            .find(|t| *t == asked)
            .cloned()
            .ok_or_else(|| ClipboardError::NoSuchType(asked.to_owned()).into());
    }
    TEXT_TYPES
        .iter()
        .find_map(|text| types.iter().find(|t| t == text))
        .or_else(|| types.first())
        .cloned()
        .ok_or_else(|| ClipboardError::Empty.into())
}

/// Whether wl-paste would append a newline after this type.
fn is_text(mime: &str) -> bool {
    mime.starts_with("text/") || TEXT_TYPES.contains(&mime)
}

/// Copies the pipe to `out`, with a counter on a terminal once large.
fn copy_with_progress(pipe: &mut File, out: &mut impl Write) -> Result<u64, CliError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut bar: Option<ProgressBar> = None;
    let terminal = io::stderr().is_terminal();
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::Output(e)),
        };
        out.write_all(&buf[..n]).map_err(output)?;
        total += n as u64;
        if terminal && bar.is_none() && total >= PROGRESS_THRESHOLD {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("pasting {bytes} {bytes_per_sec}") {
                b.set_style(style);
            }
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_position(total);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(total)
}

/// `--watch`: CMD once per selection change, the data on its stdin.
fn watch(
    clipboard: &mut Clipboard,
    which: Selection,
    args: &PasteArgs,
    cmd: &[String],
) -> Result<(), CliError> {
    let (program, rest) = cmd
        .split_first()
        .ok_or(CliError::Copy("--watch needs a command".into()))?;
    loop {
        let mut command = Command::new(program);
        command.args(rest);
        match clipboard.types(which).map(<[String]>::to_vec) {
            Some(types) => {
                let mime = choose(&types, args.r#type.as_deref())?;
                let pipe = clipboard.paste(which, &mime)?;
                command
                    .env("CLIPBOARD_STATE", "data")
                    .stdin(Stdio::from(pipe));
            }
            None => {
                command.env("CLIPBOARD_STATE", "nil").stdin(Stdio::null());
            }
        }
        match command.status() {
            Ok(status) if !status.success() => log::debug!("{program}: {status}"),
            Ok(_) => {}
            Err(e) => {
                return Err(CliError::Copy(format!("cannot run {program}: {e}")));
            }
        }
        clipboard.wait_for_change(which, None)?;
    }
}

fn output(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Output(e)
    }
}
