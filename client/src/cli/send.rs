//! `waypass-client send NAME TEXT...` and `send-file NAME PATH`: get a
//! channel to a name's owner through the broker, send, and wait for the
//! owner's ack.
//!
//! What it is: the sending side of the broker commands. `send` joins its
//! words with spaces into one text message and may offer files after it
//! on the same channel (`--file`), which is how one process (one
//! `WAYLAND_SOCKET` connection) sends both. What it is not: a listener
//! (see `listen`).
//!
//! # Implementation notes
//!
//! - Each message is acked before the next is sent, so "exit 0" means the
//!   owner has handled everything, in order.
//! - A file is opened here (`O_RDONLY | O_CLOEXEC`) and offered by fd with
//!   its `fstat` size, rather than with `PeerChannel::send_path`, so that
//!   the story can say which fd and which (dev, ino) travelled.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use waypass_client::{Broker, ConnectOptions, Peer};

use super::story::{fd_number, fd_target, file_id, open_broker, printable, Common, Out};
use super::CliError;

/// Options of both sending commands.
#[derive(Debug, Args)]
pub(super) struct SendOptions {
    /// Register this name first, so the owner sees who is sending.
    #[arg(long = "as", value_name = "NAME")]
    as_name: Option<String>,

    /// Retry for up to MS milliseconds while NAME is not registered yet
    /// (for a sender started before its listener).
    #[arg(long, value_name = "MS")]
    wait: Option<u64>,

    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `send`.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// The name to send to.
    name: String,

    /// The text; several words are joined with spaces.
    #[arg(required = true, num_args = 1..)]
    text: Vec<String>,

    /// Then also offer this file on the same channel (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,

    #[command(flatten)]
    pub options: SendOptions,
}

/// Arguments of `send-file`.
#[derive(Debug, Args)]
pub(super) struct SendFileArgs {
    /// The name to send to.
    name: String,

    /// The file to offer.
    path: PathBuf,

    #[command(flatten)]
    pub options: SendOptions,
}

/// Runs `send`.
pub(super) fn send(socket: Option<&str>, args: &SendArgs) -> Result<(), CliError> {
    let (out, mut peer) = connect(socket, &args.name, &args.options)?;
    let timeout = args.options.common.timeout();
    let text = args.text.join(" ");
    let serial = peer
        .channel
        .send_text(&text)
        .map_err(|source| CliError::Peer {
            context: format!("cannot send the text to {}", args.name),
            source,
        })?;
    out.story(|| {
        format!(
            "sent \"{}\" to {} (serial {serial})",
            printable(&text),
            args.name
        )
    })?;
    wait_ack(&mut peer, serial, &args.name, timeout)?;
    out.story(|| format!("{} acked serial {serial}", args.name))?;
    for path in &args.files {
        let file = open_regular(path)?;
        send_one_file(&mut peer, path, file, &args.name, &out, timeout)?;
    }
    Ok(())
}

/// Runs `send-file`.
pub(super) fn send_file(socket: Option<&str>, args: &SendFileArgs) -> Result<(), CliError> {
    // Open first: a missing file is reported before anyone is bothered.
    let file = open_regular(&args.path)?;
    let (out, mut peer) = connect(socket, &args.name, &args.options)?;
    send_one_file(
        &mut peer,
        &args.path,
        file,
        &args.name,
        &out,
        args.options.common.timeout(),
    )
}

/// Connects (registering `--as` first), and gets a channel to `name`.
fn connect(
    socket: Option<&str>,
    name: &str,
    options: &SendOptions,
) -> Result<(Out, Peer), CliError> {
    let out = Out::new(&options.common);
    let mut broker: Broker = open_broker(socket, &options.common, &out)?;
    let timeout = options.common.timeout();
    if let Some(own) = &options.as_name {
        broker.register_and_wait(own, timeout)?;
        out.story(|| format!("registered name {own}"))?;
    }
    let connect = ConnectOptions {
        reply_timeout: timeout,
        wait_for_name: options.wait.map(Duration::from_millis),
        ..ConnectOptions::default()
    };
    let peer = broker.connect_to(name, connect)?;
    out.story(|| {
        let fd = peer.channel.as_fd();
        format!(
            "got {} = one end of a socketpair ({}) from the server, peer {name} ({})",
            fd_number(fd),
            fd_target(fd),
            peer.credentials
        )
    })?;
    // The broker connection may close now: the channel no longer needs it.
    drop(broker);
    Ok((out, peer))
}

/// Offers the file opened from `path` and waits for the ack.
fn send_one_file(
    peer: &mut Peer,
    path: &Path,
    (file, size): (OwnedFd, u64),
    to: &str,
    out: &Out,
    timeout: Duration,
) -> Result<(), CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let serial = peer
        .channel
        .send_file(file.as_fd(), &name, size)
        .map_err(|source| CliError::Peer {
            context: format!("cannot offer {} to {to}", path.display()),
            source,
        })?;
    out.story(|| {
        let fd = file.as_fd();
        format!(
            "sent file {} as {} ({}), {size} bytes; no byte of it goes through the socket",
            printable(&name),
            fd_number(fd),
            file_id(fd)
        )
    })?;
    drop(file);
    wait_ack(peer, serial, to, timeout)?;
    out.story(|| format!("{to} acked serial {serial}"))
}

/// Opens a regular file read-only; returns it with its size.
fn open_regular(path: &Path) -> Result<(OwnedFd, u64), CliError> {
    let open_error = |source: nix::errno::Errno| CliError::OpenFile {
        path: path.to_path_buf(),
        source: source.into(),
    };
    let file = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(open_error)?;
    let st = fstat(&file).map_err(open_error)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(CliError::NotAFile(path.to_path_buf()));
    }
    Ok((file, u64::try_from(st.st_size).unwrap_or(0)))
}

fn wait_ack(peer: &mut Peer, serial: u32, to: &str, timeout: Duration) -> Result<(), CliError> {
    peer.channel
        .wait_ack(serial, Some(timeout))
        .map_err(|source| CliError::Peer {
            context: format!("no ack from {to}"),
            source,
        })
}
