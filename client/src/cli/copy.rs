//! `waypass-client copy [FILE|-]`: put data on the clipboard, as `wl-copy`.
//!
//! What it is: reads FILE (or stdin) into a sealed memfd, sets a selection
//! offering it, and writes it into every pipe a paster gives, until another
//! selection replaces ours. By default it goes to the background once the
//! selection is set, like wl-copy: it starts itself again with
//! `--foreground`, the memfd as stdin, and waits for that child to say the
//! selection is set. What it is not: a clipboard manager (it serves one
//! selection, then exits).
//!
//! # Implementation notes
//!
//! - Going to the background re-executes the binary instead of `fork`ing:
//!   the crate has no `unsafe`, and the data is already in a file the
//!   child can take as stdin. The child reports `ok` (or its error) on a
//!   pipe that is its stdout, then never writes there again.
//! - Each paste is written with `splice` from the memfd into the paster's
//!   pipe (no copy through our memory), falling back to read/write.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Args;
use nix::errno::Errno;
use nix::fcntl::{splice, SpliceFFlags};
use waypass_client::waypass_protocol::SealedFile;
use waypass_client::{Clipboard, Selection};

use super::CliError;

/// The environment variable that tells a `--foreground` child to report
/// readiness on stdout.
const READY_VAR: &str = "WAYPASS_COPY_REPORT";

/// The types offered for UTF-8 text when no `--type` is given, as wl-copy.
pub(super) const TEXT_TYPES: &[&str] = &[
    "text/plain;charset=utf-8",
    "text/plain",
    "UTF8_STRING",
    "STRING",
    "TEXT",
];

/// Arguments of `copy`.
#[derive(Debug, Args)]
pub(super) struct CopyArgs {
    /// What to copy: a file, or `-` (the default) for stdin.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,

    /// Offer this MIME type only [default: the text types for UTF-8
    /// text, else application/octet-stream].
    #[arg(long, short = 't', value_name = "MIME")]
    r#type: Option<String>,

    /// Use the primary selection instead of the clipboard.
    #[arg(long, short = 'p')]
    primary: bool,

    /// Stay in the foreground instead of forking.
    #[arg(long)]
    foreground: bool,

    /// Clear the selection instead of copying.
    #[arg(long, conflicts_with_all = ["input", "type"])]
    clear: bool,
}

/// Runs `copy`.
pub(super) fn copy(socket: Option<&str>, args: &CopyArgs) -> Result<(), CliError> {
    let which = if args.primary {
        Selection::Primary
    } else {
        Selection::Regular
    };
    if args.clear {
        let mut clipboard = Clipboard::connect(socket)?;
        return Ok(clipboard.copy(which, &[])?);
    }
    let data = read_input(args.input.as_deref())?;
    if !args.foreground {
        return background(socket, args, data);
    }
    let types: Vec<&str> = match &args.r#type {
        Some(t) => vec![t.as_str()],
        None if looks_like_text(&data)? => TEXT_TYPES.to_vec(),
        None => vec!["application/octet-stream"],
    };
    let report = std::env::var_os(READY_VAR).is_some();
    let mut clipboard = match Clipboard::connect(socket) {
        Ok(c) => c,
        Err(e) if report => return ready(Err(&e.into())),
        Err(e) => return Err(e.into()),
    };
    if let Err(e) = clipboard.copy(which, &types) {
        return if report {
            ready(Err(&e.into()))
        } else {
            Err(e.into())
        };
    }
    if report {
        ready(Ok(()))?;
    }
    clipboard.serve(None, |_, pipe| write_all(&data, pipe))?;
    Ok(())
}

/// Stdin or FILE, in a sealed memfd (so that the background child can
/// take it as its stdin, and pastes read it without copies).
fn read_input(input: Option<&std::path::Path>) -> Result<File, CliError> {
    let mut source: Box<dyn Read> = match input {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => Box::new(File::open(p).map_err(|e| CliError::Input {
            path: p.to_owned(),
            source: e,
        })?),
    };
    let sealed = SealedFile::from_reader("waypass-copy", &mut source)
        .map_err(|e| CliError::Output(io::Error::other(e)))?;
    // The background child reads it as stdin from this shared offset.
    let mut file = File::from(OwnedFd::from(sealed));
    file.seek(io::SeekFrom::Start(0))
        .map_err(CliError::Output)?;
    Ok(file)
}

/// Whether the data is UTF-8 text (checked in chunks, a char split at a
/// chunk's end carried over).
fn looks_like_text(data: &File) -> Result<bool, CliError> {
    let mut buf = vec![0u8; 1 << 16];
    let (mut offset, mut carry) = (0u64, 0usize);
    loop {
        let n = data
            .read_at(&mut buf[carry..], offset)
            .map_err(CliError::Output)?;
        if n == 0 {
            return Ok(carry == 0);
        }
        offset += n as u64;
        let chunk = &buf[..carry + n];
        match std::str::from_utf8(chunk) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_none() => {
                let good = e.valid_up_to();
                let rest = chunk.len() - good;
                buf.copy_within(good.., 0);
                carry = rest;
            }
            Err(_) => return Ok(false),
        }
    }
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
    let mut child = cmd
        .arg("-")
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

/// Writes all of `data` into a paster's pipe.
fn write_all(data: &File, pipe: &mut File) -> io::Result<()> {
    let len = data.metadata()?.len();
    let mut offset: i64 = 0;
    while (offset as u64) < len {
        let left = (len - offset as u64) as usize;
        match splice(
            data.as_fd(),
            Some(&mut offset),
            pipe.as_fd(),
            None,
            left,
            SpliceFFlags::empty(),
        ) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            // Not spliceable here: copy the rest by hand.
            Err(Errno::EINVAL) => return copy_rest(data, offset as u64, pipe),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn copy_rest(data: &File, mut offset: u64, pipe: &mut File) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = data.read_at(&mut buf, offset)?;
        if n == 0 {
            return Ok(());
        }
        pipe.write_all(&buf[..n])?;
        offset += n as u64;
    }
}
