//! `waypass-client send NAME TEXT...` and `send-file NAME FILE...`: get a
//! channel to a name's owner through the broker, send, and wait for the
//! owner's ack.
//!
//! What it is: the sending side of the broker commands. `send` joins its
//! words with spaces into one text message and may offer files after it
//! on the same channel (`--file`), which is how one process (one
//! `WAYLAND_SOCKET` connection) sends both. `-` means stdin, as with
//! wl-copy. What it is not: a listener (see `listen`), nor the reading of
//! paths and stdin (see `input`).
//!
//! # Implementation notes
//!
//! - Everything to send is read or opened before connecting, so a missing
//!   file, a FIFO or a bad stdin is reported before anyone is bothered.
//! - Names belong to users: `NAME` is our own user's name, and `NAME@UID`
//!   the name of user UID (the server keeps them apart, so another user
//!   cannot squat ours). The owner's uid, as the server read it, is checked
//!   all the same: ours, or the UID asked for. Nothing is sent to an owner
//!   refused so.
//! - A text that cannot travel as one `text` message (over
//!   [`MAX_TEXT_LEN`] bytes, a NUL, or stdin that is not UTF-8) is offered
//!   instead as a sealed memfd named `text.txt`: the owner gets every byte,
//!   through an fd, rather than an error that sends the user to
//!   `send-file`. Saving listeners keep it as a file; the story says so.
//! - Each message is acked before the next is sent, so "exit 0" means the
//!   owner has handled everything, in order. A refusal ends the command
//!   at once with the owner's reason. The timeout is an idle timeout: each
//!   `progress` the owner sends while reading a file restarts it, if it
//!   reports more bytes read than before and no more than the file has;
//!   progress past the size, or for a text, is a protocol violation that
//!   ends the command at once (exit 1).
//! - A file is opened here and offered by fd with its `fstat` size, rather
//!   than with `PeerChannel::send_path`, so that the story can say which
//!   fd and which (dev, ino) travelled.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use waypass_client::{Broker, ChannelError, ConnectOptions, Peer};
use waypass_protocol::MAX_TEXT_LEN;

use super::duration::parse_duration;
use super::input::{self, is_stdin, InputError, Outgoing};
use super::send_error::SendError;
use super::send_progress::OfferProgress;
use super::story::{fd_number, fd_target, file_id, open_broker, printable, Common, Out};
use super::CliError;

/// The name a text too long for one message is offered under.
pub(super) const LONG_TEXT_NAME: &str = "text.txt";

/// Options of both sending commands.
#[derive(Debug, Args)]
pub(super) struct SendOptions {
    /// Register this name first, so the owner sees who is sending.
    #[arg(long = "as", value_name = "NAME")]
    as_name: Option<String>,

    /// Retry for this long while NAME is not registered yet (for a sender
    /// started before its listener): milliseconds, or with a unit (2s).
    #[arg(long, value_name = "MS|DURATION", value_parser = parse_duration)]
    wait: Option<Duration>,

    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `send`.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// The name to send to.
    name: String,

    /// The text; several words are joined with spaces. `-` alone: read the
    /// text from stdin. A text over 4079 bytes is offered as a file,
    /// text.txt (a sealed memfd).
    #[arg(required = true, num_args = 1..)]
    text: Vec<String>,

    /// Then also offer this file on the same channel (repeatable; `-`:
    /// stdin).
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

    /// The files to offer, in order (regular files only; `-`: stdin,
    /// offered as "stdin").
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    paths: Vec<PathBuf>,

    #[command(flatten)]
    pub options: SendOptions,
}

/// What `send` sends first.
#[derive(Debug)]
enum Message {
    /// Fits in one `text` message.
    Text(String),
    /// Offered as a sealed memfd named [`LONG_TEXT_NAME`].
    LongText(Vec<u8>),
}

impl Message {
    /// A text message when the bytes can be one, else a file.
    fn from_bytes(bytes: Vec<u8>) -> Message {
        if bytes.len() > MAX_TEXT_LEN || bytes.contains(&0) {
            return Message::LongText(bytes);
        }
        match String::from_utf8(bytes) {
            Ok(text) => Message::Text(text),
            Err(e) => Message::LongText(e.into_bytes()),
        }
    }
}

/// Runs `send`.
pub(super) fn send(socket: Option<&str>, args: &SendArgs) -> Result<(), CliError> {
    let from_stdin = args.text.len() == 1 && args.text[0] == "-";
    let message = if from_stdin {
        Message::from_bytes(input::read_stdin()?)
    } else {
        Message::from_bytes(args.text.join(" ").into_bytes())
    };
    let files = open_all(&args.files, from_stdin)?;
    let (out, mut peer) = connect(socket, &args.name, &args.options)?;
    let timeout = args.options.common.timeout();
    let to = args.name.as_str();
    match message {
        Message::Text(text) => {
            let serial = peer
                .channel
                .send_text(&text)
                .map_err(|source| CliError::Peer {
                    context: format!("cannot send the text to {to}"),
                    source,
                })?;
            out.story(|| format!("sent \"{}\" to {to} (serial {serial})", printable(&text)))?;
            wait_ack(&mut peer, serial, to, "the text", timeout, None)?;
            out.story(|| format!("{to} acked serial {serial}"))?;
        }
        Message::LongText(bytes) => {
            let serial = peer
                .channel
                .send_snapshot(LONG_TEXT_NAME, &bytes)
                .map_err(|source| CliError::Peer {
                    context: format!("cannot offer the text to {to}"),
                    source,
                })?;
            out.story(|| {
                format!(
                    "the text ({} bytes) does not fit in one message (at most {MAX_TEXT_LEN}): \
                     sent it as file {LONG_TEXT_NAME}, a sealed memfd (serial {serial})",
                    bytes.len()
                )
            })?;
            let mut progress = OfferProgress::new(bytes.len() as u64, to, LONG_TEXT_NAME);
            wait_ack(
                &mut peer,
                serial,
                to,
                LONG_TEXT_NAME,
                timeout,
                Some(&mut progress),
            )?;
            out.story(|| format!("{to} acked serial {serial}"))?;
        }
    }
    for file in files {
        send_one_file(&mut peer, file, to, &out, timeout)?;
    }
    Ok(())
}

/// Runs `send-file`.
pub(super) fn send_file(socket: Option<&str>, args: &SendFileArgs) -> Result<(), CliError> {
    // Open first: a missing file is reported before anyone is bothered.
    let files = open_all(&args.paths, false)?;
    let (out, mut peer) = connect(socket, &args.name, &args.options)?;
    for file in files {
        send_one_file(
            &mut peer,
            file,
            &args.name,
            &out,
            args.options.common.timeout(),
        )?;
    }
    Ok(())
}

/// Opens every path to send; stdin at most once in all.
fn open_all(paths: &[PathBuf], stdin_taken: bool) -> Result<Vec<Outgoing>, SendError> {
    let stdin_uses = paths.iter().filter(|p| is_stdin(p)).count() + usize::from(stdin_taken);
    if stdin_uses > 1 {
        return Err(InputError::StdinTwice.into());
    }
    let files = paths
        .iter()
        .map(|p| input::open_to_send(p))
        .collect::<Result<_, _>>()?;
    Ok(files)
}

/// Connects (registering `--as` first), gets a channel to `name`, and
/// checks who owns it.
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
    let mut connect = ConnectOptions::default();
    connect.reply_timeout = timeout;
    connect.wait_for_name = options.wait;
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
    let expected = asked_uid(name).unwrap_or_else(|| nix::unistd::getuid().as_raw());
    if peer.credentials.uid != expected {
        return Err(SendError::OtherUid {
            name: name.to_string(),
            owner: peer.credentials,
            expected,
        }
        .into());
    }
    // The broker connection may close now: the channel no longer needs it.
    drop(broker);
    Ok((out, peer))
}

/// The uid `NAME@UID` asks for, if it does.
fn asked_uid(name: &str) -> Option<u32> {
    name.split_once('@')?.1.parse().ok()
}

/// Offers one file and waits for the ack, with progress.
fn send_one_file(
    peer: &mut Peer,
    file: Outgoing,
    to: &str,
    out: &Out,
    timeout: Duration,
) -> Result<(), CliError> {
    let Outgoing { fd, name, size } = file;
    let serial = peer
        .channel
        .send_file(fd.as_fd(), &name, size)
        .map_err(|source| CliError::Peer {
            context: format!("cannot offer {} to {to}", printable(&name)),
            source,
        })?;
    out.story(|| {
        let fd = fd.as_fd();
        format!(
            "sent file {} as {} ({}), {size} bytes; no byte of it goes through the socket",
            printable(&name),
            fd_number(fd),
            file_id(fd)
        )
    })?;
    drop(fd);
    let mut progress = OfferProgress::new(size, to, &printable(&name));
    wait_ack(peer, serial, to, &name, timeout, Some(&mut progress))?;
    out.story(|| format!("{to} acked serial {serial}"))
}

/// Waits for the ack of `serial` (what was sent: `what`), restarting the
/// idle timeout on each progress report.
fn wait_ack(
    peer: &mut Peer,
    serial: u32,
    to: &str,
    what: &str,
    timeout: Duration,
    mut progress: Option<&mut OfferProgress>,
) -> Result<(), SendError> {
    let result = peer.channel.wait_ack_with(serial, Some(timeout), |done| {
        if let Some(p) = progress.as_deref_mut() {
            p.update(done);
        }
    });
    if let Some(p) = progress.as_deref_mut() {
        p.finish();
    }
    result.map_err(|source| match source {
        ChannelError::Refused { reason, .. } => SendError::Refused {
            to: to.to_string(),
            what: what.to_string(),
            reason,
        },
        ChannelError::Timeout => SendError::NoAck {
            to: to.to_string(),
            waited: timeout,
            read: progress.and_then(|p| p.seen()),
        },
        ChannelError::Protocol(violation) => SendError::Violation {
            to: to.to_string(),
            what: what.to_string(),
            violation,
        },
        source => SendError::Channel {
            context: format!("no ack from {to} for {}", printable(what)),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_text(bytes: Vec<u8>) -> bool {
        matches!(Message::from_bytes(bytes), Message::Text(_))
    }

    #[test]
    fn a_text_that_fits_in_a_message_goes_as_text() {
        assert!(is_text(b"coucou".to_vec()));
        assert!(is_text(vec![b'x'; MAX_TEXT_LEN]));
        assert!(is_text("é".repeat(MAX_TEXT_LEN / 2).into_bytes()));
    }

    #[test]
    fn anything_else_goes_whole_as_a_file() {
        assert!(!is_text(vec![b'x'; MAX_TEXT_LEN + 1]));
        assert!(!is_text(b"a\0b".to_vec()), "a wire string cannot hold NUL");
        assert!(!is_text(vec![0xff, 0xfe]), "not UTF-8: no byte is replaced");
        match Message::from_bytes(vec![0xff, b'a']) {
            Message::LongText(bytes) => assert_eq!(bytes, [0xff, b'a']),
            other => panic!("{other:?}"),
        }
    }
}
