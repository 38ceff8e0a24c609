//! `waypass-client listen NAME`: own a name and print what peers send.
//!
//! What it is: the loop that registers the name, accepts every peer the
//! server hands over, and polls the server connection and all the peer
//! channels at once. Each text becomes one line `from <peer>: <text>`, each
//! file one line `file from <peer>: <name> <size> bytes sha256=<hex>` (the
//! contents read through the received fd), optionally saved under
//! `--save-dir`; each is acked. What it is not: a sender (see `send`).
//!
//! # Implementation notes
//!
//! - One `poll` over the server socket and every peer socket, with no
//!   timeout. A readable server socket is read once and dispatched; a
//!   readable peer is drained with non-blocking `recv`s until it has no
//!   whole message left.
//! - A peer that breaks the protocol or whose file cannot be read is
//!   reported on stderr and dropped (or the file skipped); the others go on.
//! - If the server goes away the channels still work (it is out of their
//!   path): listening goes on with the peers there are, and ends with the
//!   server's error once the last one has gone.
//! - A file is saved only under its [`FileOffer::safe_name`], never over an
//!   existing file: `name.1`, `name.2`... are tried instead.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use log::{debug, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sha2::{Digest, Sha256};
use waypass_client::{
    Broker, BrokerError, ChannelError, FileOffer, Peer, PeerMessage, SessionError,
};

use super::story::{fd_number, fd_target, file_id, open_broker, printable, Common, Out};
use super::CliError;

/// Arguments of `listen`.
#[derive(Debug, Args)]
pub(super) struct ListenArgs {
    /// The name to own (1 to 64 bytes of A-Z a-z 0-9 . _ -).
    name: String,

    /// Save received files in this directory (under their own name if it is
    /// a safe file name; never overwriting).
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,

    /// Exit 0 after this many messages and files.
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    #[command(flatten)]
    pub common: Common,
}

/// One connected peer and how to call it.
struct Connected {
    peer: Peer,
    label: String,
}

/// Runs `listen`.
pub(super) fn listen(socket: Option<&str>, args: &ListenArgs) -> Result<(), CliError> {
    let out = Out::new(&args.common);
    let mut broker = open_broker(socket, &args.common, &out)?;
    broker.register_and_wait(&args.name, args.common.timeout())?;
    out.line(format_args!("registered name {}", args.name))?;
    let mut server: Option<Broker> = Some(broker);
    let mut server_error = None;
    let mut peers: Vec<Connected> = Vec::new();
    let mut handled = 0u64;
    let done = |n: u64| args.count.is_some_and(|c| n >= c);
    while !done(handled) {
        if server.is_none() && peers.is_empty() {
            return Err(server_error
                .unwrap_or(BrokerError::Session(SessionError::Closed))
                .into());
        }
        if let Some(broker) = server.as_mut() {
            // Peers may already wait in the queue (they can arrive with the
            // answer to register); take them before sleeping in poll.
            take_peers(broker, &mut peers, &out)?;
        }
        let (server_ready, ready) = wait(server.as_ref(), &peers)?;
        if let (true, Some(broker)) = (server_ready, server.as_mut()) {
            match broker.dispatch(Some(Instant::now())) {
                Ok(_) => take_peers(broker, &mut peers, &out)?,
                Err(e) => {
                    warn!("the server connection ended: {e}; serving the channels there are");
                    server_error = Some(e);
                    server = None;
                }
            }
        }
        let mut keep = Vec::with_capacity(peers.len());
        for (c, &is_ready) in peers.iter_mut().zip(&ready) {
            keep.push(!is_ready || drain(c, args, &out, &mut handled, &done)?);
        }
        let mut keep = keep.into_iter();
        peers.retain(|_| keep.next().unwrap_or(true));
    }
    for c in &mut peers {
        if let Err(e) = c.peer.channel.flush(Some(args.common.timeout())) {
            warn!("could not send the last acks to {}: {e}", c.label);
        }
    }
    Ok(())
}

/// Polls the server (if still there) and every peer; returns whether the
/// server is readable and, for each peer, whether it is.
fn wait(server: Option<&Broker>, peers: &[Connected]) -> Result<(bool, Vec<bool>), CliError> {
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(peers.len() + 1);
    if let Some(broker) = server {
        fds.push(PollFd::new(broker.as_fd(), PollFlags::POLLIN));
    }
    for c in peers {
        fds.push(PollFd::new(c.peer.channel.as_fd(), PollFlags::POLLIN));
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            // A signal: poll again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(CliError::Poll(e.into())),
        }
    }
    let is_ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    let offset = usize::from(server.is_some());
    let server_ready = server.is_some() && is_ready(&fds[0]);
    let ready = fds[offset..].iter().map(is_ready).collect();
    Ok((server_ready, ready))
}

/// Takes the peers the server has handed over.
fn take_peers(broker: &mut Broker, peers: &mut Vec<Connected>, out: &Out) -> Result<(), CliError> {
    while let Some(incoming) = broker.take_peer() {
        let peer = incoming.peer;
        let label = peer.label();
        out.story(|| {
            let fd = peer.channel.as_fd();
            format!(
                "got {} = one end of a socketpair ({}) from the server, peer {label} ({})",
                fd_number(fd),
                fd_target(fd),
                peer.credentials
            )
        })?;
        debug!("peer {label} connected");
        peers.push(Connected { peer, label });
    }
    Ok(())
}

/// Handles every whole message a readable peer has sent. Returns false
/// when the peer is gone (closed, or dropped for an error).
fn drain(
    c: &mut Connected,
    args: &ListenArgs,
    out: &Out,
    handled: &mut u64,
    done: &impl Fn(u64) -> bool,
) -> Result<bool, CliError> {
    loop {
        if done(*handled) {
            return Ok(true);
        }
        let message = match c.peer.channel.recv(Some(Duration::ZERO)) {
            Ok(Some(m)) => m,
            Ok(None) => {
                debug!("{} closed the channel", c.label);
                return Ok(false);
            }
            // No whole message left for now.
            Err(ChannelError::Timeout) => return Ok(true),
            Err(e) => {
                warn_peer(out, &c.label, "dropping the channel", &e);
                return Ok(false);
            }
        };
        let serial = match message {
            PeerMessage::Text { serial, text } => {
                out.line(format_args!("from {}: {}", c.label, printable(&text)))?;
                serial
            }
            PeerMessage::File(offer) => {
                let serial = offer.serial;
                if let Err(e) = receive_file(&offer, &c.label, args, out) {
                    match e {
                        CliError::Peer { source, .. } if !source.is_fatal() => {
                            warn_peer(out, &c.label, "skipping its file", &source);
                            continue;
                        }
                        e => return Err(e),
                    }
                }
                serial
            }
            PeerMessage::Ack { .. } => continue,
            // Answers to messages we send; listen sends none.
            PeerMessage::Refused { serial, .. } | PeerMessage::Progress { serial, .. } => {
                debug!(
                    "{} answered our message {serial}, which we never sent",
                    c.label
                );
                continue;
            }
        };
        *handled += 1;
        if let Err(e) = c.peer.channel.ack(serial) {
            warn_peer(out, &c.label, "dropping the channel", &e);
            return Ok(false);
        }
    }
}

fn warn_peer(out: &Out, label: &str, action: &str, e: &ChannelError) {
    out.warn(format_args!(
        "peer {label}: {}; {action}",
        waypass_client::chain_to_string(e)
    ));
}

/// Reads an offered file through its fd, hashing it (and saving it with
/// `--save-dir`), and prints its line.
fn receive_file(
    offer: &FileOffer,
    label: &str,
    args: &ListenArgs,
    out: &Out,
) -> Result<(), CliError> {
    let shown = printable(&offer.name);
    let mut saved = None;
    let mut file = match (&args.save_dir, offer.safe_name()) {
        (Some(dir), Some(name)) => {
            let (path, file) = create_unique(dir, name)?;
            saved = Some(path);
            Some(file)
        }
        (Some(_), None) => {
            out.warn(format_args!(
                "peer {label}: unsafe file name \"{shown}\"; not saving it"
            ));
            None
        }
        (None, _) => None,
    };
    let mut sink = HashingWriter {
        hasher: Sha256::new(),
        file: file.as_mut(),
    };
    let read = offer.read_into(&mut sink).map_err(|source| {
        if let Some(path) = &saved {
            let _ = std::fs::remove_file(path);
        }
        CliError::Peer {
            context: format!("cannot read the file {label} offered"),
            source,
        }
    })?;
    let hex: String = sink
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    out.story(|| {
        let fd = offer.fd.as_fd();
        format!(
            "received {} = the sender's file ({}), read {read} bytes through it, sha256={hex}",
            fd_number(fd),
            file_id(fd)
        )
    })?;
    out.line(format_args!(
        "file from {label}: {shown} {read} bytes sha256={hex}"
    ))?;
    if let Some(path) = saved {
        out.line(format_args!("saved {}", path.display()))?;
    }
    Ok(())
}

/// Creates `dir/name`, or `dir/name.1`, `dir/name.2`... if it exists.
fn create_unique(dir: &Path, name: &str) -> Result<(PathBuf, File), CliError> {
    for n in 0..1000 {
        let path = match n {
            0 => dir.join(name),
            n => dir.join(format!("{name}.{n}")),
        };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            // Taken: try the next suffix.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(CliError::Save { path, source }),
        }
    }
    Err(CliError::Save {
        path: dir.join(name),
        source: io::ErrorKind::AlreadyExists.into(),
    })
}

/// Hashes what is written, and copies it to a file if there is one.
struct HashingWriter<'a> {
    hasher: Sha256,
    file: Option<&'a mut File>,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(buf)?;
        }
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}
