//! `waypass-client paste`: print the clipboard, as `wl-paste`.
//!
//! What it is: connects, picks a type as wl-paste 2.1 does (`cli::mime`:
//! `--type`, `--type text`, else plain text, else any text, else the first
//! type), and copies what the source writes into the pipe to stdout
//! (`cli::paste_progress`); `--list-types` prints the types instead, and
//! `--watch CMD...` runs CMD with each new selection on its stdin. What it
//! is not: a clipboard manager (nothing is kept).
//!
//! # Implementation notes
//!
//! - As wl-paste does, a newline is appended after text unless
//!   `--no-newline`, and an empty selection is an error ("no selection").
//! - With `--watch`, as wl-paste 2.1 (checked by running it against
//!   waypass-server): CMD runs for each selection that offers a type to
//!   paste, with the data on its stdin; an empty selection (at start-up or
//!   cleared) and a selection without such a type (none at all, or not the
//!   `--type` asked for) are skipped. CMD also gets `CLIPBOARD_STATE=data`
//!   (as later wl-paste versions set it).

use std::io::{self, Write};
use std::process::Command;

use clap::{ArgAction, Args};
use waypass_client::{Clipboard, ClipboardError, Selection};

use super::{mime, paste_progress, CliError};

/// Arguments of `paste`.
#[derive(Debug, Args)]
#[command(version, disable_version_flag = true)]
pub(super) struct PasteArgs {
    /// Paste this MIME type; `text` picks a text type, and a word without
    /// a `/` (`image`) also matches the types it starts [default: plain
    /// text if offered, else any text, else the first type offered].
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

    /// Use the seat of this name [default: the first seat].
    #[arg(long, short = 's', value_name = "NAME")]
    seat: Option<String>,

    /// Run CMD (with its arguments) for every new selection, the data on
    /// its stdin, until killed; empty selections are skipped.
    #[arg(long, short = 'w', num_args = 1.., value_name = "CMD", allow_hyphen_values = true)]
    watch: Option<Vec<String>>,

    /// Print the version.
    #[arg(long, short = 'v', action = ArgAction::Version)]
    version: Option<bool>,
}

/// Runs `paste`.
pub(super) fn paste(socket: Option<&str>, args: &PasteArgs) -> Result<(), CliError> {
    let which = if args.primary {
        Selection::Primary
    } else {
        Selection::Regular
    };
    let mut clipboard = Clipboard::connect_to_seat(socket, args.seat.as_deref())?;
    if let Some(cmd) = &args.watch {
        return watch(&mut clipboard, which, args.r#type.as_deref(), cmd);
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
    let mime = match (mime::choose(&types, args.r#type.as_deref()), &args.r#type) {
        (Some(mime), _) => mime.to_owned(),
        (None, Some(asked)) => return Err(ClipboardError::NoSuchType(asked.clone()).into()),
        (None, None) => return Err(CliError::Copy("the selection offers no type".into())),
    };
    let mut pipe = clipboard.paste(which, &mime)?;
    let copied = paste_progress::copy(&mut pipe, &mut out)?;
    if mime::is_text(&mime) && !args.no_newline {
        writeln!(out).map_err(output)?;
    }
    out.flush().map_err(output)?;
    log::debug!("pasted {copied} bytes of {mime}");
    Ok(())
}

/// `--watch`: CMD once per selection that has a type to paste, the data
/// on its stdin.
fn watch(
    clipboard: &mut Clipboard,
    which: Selection,
    asked: Option<&str>,
    cmd: &[String],
) -> Result<(), CliError> {
    let (program, rest) = cmd
        .split_first()
        .ok_or(CliError::Copy("--watch needs a command".into()))?;
    loop {
        let offered = clipboard.types(which).map(<[String]>::to_vec);
        match offered.as_deref().map(|types| mime::choose(types, asked)) {
            None => log::debug!("--watch: the selection is empty"),
            Some(None) => log::debug!("--watch: nothing to paste in {offered:?}"),
            Some(Some(mime)) => {
                let pipe = clipboard.paste(which, mime)?;
                let status = Command::new(program)
                    .args(rest)
                    .env("CLIPBOARD_STATE", "data")
                    .stdin(pipe)
                    .status()
                    .map_err(|e| CliError::Copy(format!("cannot run {program}: {e}")))?;
                if !status.success() {
                    log::debug!("{program}: {status}");
                }
            }
        }
        clipboard.wait_for_change(which, None)?;
    }
}

pub(super) fn output(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Output(e)
    }
}
