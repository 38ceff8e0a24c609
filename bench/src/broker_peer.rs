//! The far end of a brokered channel: a peer process that owns a name on
//! waypass-server's broker, takes the one channel the bench opens to it,
//! and answers on it in one of a few fixed ways.
//!
//! What it is: [`serve`], run in a child process (`waypass-bench
//! peer-broker`), and, for the bench process, [`start`] (spawn one and
//! learn its name) and [`connect`] (ask the broker for a channel to it).
//! Every data exchange of measurements 5 and 6 runs between two
//! processes, like the raw references it is divided by.
//!
//! What it is not: a measurement (see `measure_broker`, `measure_files`),
//! or a general peer. Each process serves exactly one channel (except in
//! [`PeerMode::Accept`]) and exits when the bench closes it.
//!
//! # Implementation notes
//!
//! - The channel is a `waypass_client::Peer`: everything goes through
//!   waypass's own broker client and `PeerChannel`, as an application
//!   would use them.
//! - The raw modes ([`PeerMode::Echo`], [`PeerMode::ByteSink`]) leave the
//!   `PeerChannel` before any message, keeping a blocking duplicate of its
//!   socket: they measure the brokered socket itself, with the same code
//!   as the raw socketpair references.
//! - The peer prints its name once it is registered, so the bench never
//!   connects before the name exists.

use std::error::Error;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use waypass_client::{Broker, ConnectOptions, PeerChannel, PeerMessage, Session};

use crate::process::ServerProcess;
use crate::raw;

/// How long a peer waits for the bench, or the bench for the broker.
const PATIENCE: Duration = Duration::from_secs(30);
/// The byte stream's ack (mode [`PeerMode::ByteSink`]).
pub const BYTES_ACK: [u8; 8] = *b"gotbytes";
/// How much the byte sink reads per `read`.
const SINK_CHUNK: usize = 1 << 20;

/// What the peer does with the channel the bench opens to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerMode {
    /// Raw: echoes 8-byte messages on the bare socket.
    Echo,
    /// `PeerChannel`: acks every text.
    TextEcho,
    /// `PeerChannel`: closes every offered fd unread; acks texts.
    FileSink,
    /// `PeerChannel`: checks every offered file's size (`fstat`), acks it.
    FileAck,
    /// `PeerChannel`: reads every offered file through its fd, acks it.
    FileRead,
    /// Raw: reads an 8-byte length and that many bytes, answers
    /// [`BYTES_ACK`]; repeats.
    ByteSink,
    /// Closes every channel opened to it, forever.
    Accept,
}

impl PeerMode {
    fn arg(self) -> &'static str {
        match self {
            PeerMode::Echo => "echo",
            PeerMode::TextEcho => "text-echo",
            PeerMode::FileSink => "file-sink",
            PeerMode::FileAck => "file-ack",
            PeerMode::FileRead => "file-read",
            PeerMode::ByteSink => "byte-sink",
            PeerMode::Accept => "accept",
        }
    }
}

/// The child side: registers `name` on the server at `server`, prints it,
/// then serves the channel(s) opened to it as `mode` says.
pub fn serve(server: &Path, name: &str, mode: PeerMode) -> Result<(), Box<dyn Error>> {
    let mut broker = Broker::new(Session::connect_path(server)?)?;
    broker.register_and_wait(name, PATIENCE)?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{name}")?;
    stdout.flush()?;
    if mode == PeerMode::Accept {
        // Runs until the bench kills it or the server goes away.
        loop {
            drop(broker.next_peer(None)?);
        }
    }
    let incoming = broker
        .next_peer(Some(PATIENCE))?
        .ok_or("nobody opened a channel")?;
    let channel = incoming.peer.channel;
    match mode {
        PeerMode::Echo => raw::echo_peer(blocking_socket(channel)?)?,
        PeerMode::ByteSink => byte_sink(blocking_socket(channel)?)?,
        _ => answer(channel, mode)?,
    }
    Ok(())
}

/// A blocking duplicate of the channel's socket; the channel is dropped
/// (nothing has been sent on it yet, so nothing is lost).
pub fn blocking_socket(channel: PeerChannel) -> io::Result<UnixStream> {
    let socket = UnixStream::from(channel.as_fd().try_clone_to_owned()?);
    drop(channel);
    socket.set_nonblocking(false)?;
    Ok(socket)
}

/// The `PeerChannel` modes: answers each message until the bench closes.
fn answer(mut channel: PeerChannel, mode: PeerMode) -> Result<(), Box<dyn Error>> {
    while let Some(message) = channel.recv(None)? {
        match message {
            PeerMessage::Text { serial, .. } => channel.ack(serial)?,
            PeerMessage::File(offer) => match mode {
                // Dropping the offer closes its fd, as the raw sink does.
                PeerMode::FileSink => drop(offer),
                PeerMode::FileAck => {
                    offer.check_size()?;
                    channel.ack(offer.serial)?;
                }
                PeerMode::FileRead => {
                    let read = offer.read_into(&mut io::sink())?;
                    if read != offer.size {
                        return Err(format!("read {read} of {} bytes", offer.size).into());
                    }
                    channel.ack(offer.serial)?;
                }
                _ => return Err(format!("unexpected file offer in mode {mode:?}").into()),
            },
            PeerMessage::Ack { .. }
            | PeerMessage::Refused { .. }
            | PeerMessage::Progress { .. } => {}
        }
    }
    Ok(())
}

/// Mode [`PeerMode::ByteSink`]: length-prefixed byte blobs, each acked.
fn byte_sink(mut socket: UnixStream) -> io::Result<()> {
    let mut chunk = vec![0u8; SINK_CHUNK];
    loop {
        let mut len = [0u8; 8];
        match socket.read_exact(&mut len) {
            Ok(()) => {}
            // The bench closed its end: the run is over.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut left = u64::from_le_bytes(len);
        while left > 0 {
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match socket.read(&mut chunk[..want])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => left -= n as u64,
            }
        }
        socket.write_all(&BYTES_ACK)?;
    }
}

/// Starts a peer process in `mode` on the server at `server`, under a
/// name unique to this bench run; returns the process (its
/// [`ServerProcess::socket`] is the name it registered).
pub fn start(server: &Path, mode: PeerMode) -> Result<ServerProcess, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("bench-{}-{}-{n}", mode.arg(), std::process::id());
    let exe = std::env::current_exe().map_err(|e| format!("failed: {e}"))?;
    let args: Vec<OsString> = vec![
        "peer-broker".into(),
        "--server".into(),
        server.into(),
        "--name".into(),
        name.into(),
        "--mode".into(),
        mode.arg().into(),
    ];
    ServerProcess::start_reporting(&exe, &args)
        .map_err(|e| format!("failed: broker peer ({}): {e}", mode.arg()))
}

/// Opens a channel to `peer` (started with [`start`]) through the server
/// at `server`, with a broker connection of our own that is closed
/// afterwards (the channel does not depend on it).
pub fn connect(server: &Path, peer: &ServerProcess) -> Result<PeerChannel, String> {
    let name = peer.socket().to_string_lossy().into_owned();
    let mut broker = Broker::new(Session::connect_path(server).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut options = ConnectOptions::default();
    options.reply_timeout = PATIENCE;
    let peer = broker
        .connect_to(&name, options)
        .map_err(|e| format!("connect to {name}: {e}"))?;
    Ok(peer.channel)
}
