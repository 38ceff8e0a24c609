//! One peer connected to `listen`, and what is said to it.
//!
//! What it is: [`Connected`], a peer's channel with what the loop knows of
//! it (who, whether its file is being read, whether its socket is full,
//! what it is charged), and the small helpers that answer it without
//! blocking: [`refuse`], [`send_progress`], [`flushed`]. What it is not:
//! the loop that decides when to read it (`listen`), nor the output
//! (`report`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use log::debug;
use waypass_client::{ChannelError, PeerMessage};

use super::super::report::PeerInfo;
use super::super::story::Out;

/// One connected peer.
pub(super) struct Connected {
    /// Our number for it, which the file workers' updates name.
    pub id: u64,
    /// Its channel, with its pid and uid as the server reported them
    /// (what its admission was charged to).
    pub peer: waypass_client::Peer,
    /// How it is shown.
    pub info: PeerInfo,
    /// Its uid is not ours (and `--any-uid` was not given).
    pub foreign: bool,
    /// The serial of its file being read by a worker.
    pub busy: Option<u32>,
    /// With `--story`: which fd and file that is, told once it is read.
    pub busy_story: String,
    /// Whole messages may be buffered although its socket is not readable.
    pub more: bool,
    /// Our replies wait for room in its socket: do not read it.
    pub blocked: bool,
}

/// Tries to send what waits for `c` without blocking; true when all went.
pub(super) fn flushed(c: &mut Connected) -> bool {
    match c.peer.channel.flush(Some(Duration::ZERO)) {
        Ok(()) => true,
        Err(ChannelError::Timeout) => false,
        Err(e) => {
            debug!("{}: {}", c.info.label, waypass_client::chain_to_string(&e));
            true
        }
    }
}

/// The serial of a message that asks for an answer.
pub(super) fn serial_of(message: &PeerMessage) -> Option<u32> {
    match message {
        PeerMessage::Text { serial, .. } => Some(*serial),
        PeerMessage::File(offer) => Some(offer.serial),
        _ => None,
    }
}

/// Tells the peer its message `serial` was refused, and why.
pub(super) fn refuse(c: &mut Connected, serial: u32, reason: &str) {
    if let Err(e) = c.peer.channel.refuse(serial, reason) {
        let e = waypass_client::chain_to_string(&e);
        debug!("cannot refuse {serial} to {}: {e}", c.info.label);
    }
}

/// Tells the peer how much of its file `serial` is read.
pub(super) fn send_progress(c: &mut Connected, serial: u32, done: u64) {
    if let Err(e) = c.peer.channel.progress(serial, done) {
        let e = waypass_client::chain_to_string(&e);
        debug!("cannot send progress to {}: {e}", c.info.label);
    }
}

/// A progress bar for a file of `size` bytes being read.
pub(super) fn progress_bar(size: u64) -> ProgressBar {
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Warns that the channel of `label` failed with `e`, and what we do.
pub(super) fn warn_peer(out: &Out, label: &str, action: &str, e: &ChannelError) {
    out.warn(format_args!(
        "peer {label}: {}; {action}",
        waypass_client::chain_to_string(e)
    ));
}
