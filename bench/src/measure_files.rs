//! Measurement 6: passing files over a brokered `PeerChannel`, against the
//! kernel's `SCM_RIGHTS` rate and against sending a file's bytes.
//!
//! What it is: two interleaved measurements against one waypass-server.
//!
//! - **Fds per second.** The raw `SCM_RIGHTS` stream (the reference: one
//!   8-byte `sendmsg` per fd, see `raw::send_fds`) against a stream of
//!   `PeerChannel::send_file` offers of the same kind of fd, each closed
//!   unread by the receiver. Both end with one acknowledged message, so a
//!   run ends once every fd has been received and closed.
//! - **A 64 MiB file.** Its bytes sent through a brokered socket (the
//!   reference: an 8-byte length, the bytes, an 8-byte ack; the receiver
//!   reads them into a 1 MiB buffer), against handing it over as an fd
//!   (`send_file`, the receiver checks its size with `fstat` and acks), and
//!   against handing it over and having the receiver read every byte
//!   through the fd (`pread`, 1 MiB at a time) before it acks.
//!
//! What it is not: a test of the contents (the protocol crate's tests hash
//! a 64 MiB file end to end).
//!
//! # Implementation notes
//!
//! - The offered fd is read-only, as a sender that follows the protocol
//!   holds it: `send_file` would otherwise reopen a writable fd through
//!   `/proc/self/fd` for every offer, which is a different cost.
//! - `send_file` never blocks: what the socket cannot take is queued, and
//!   the queue holds at most 1,024 fds. The stream flushes (blocking) every
//!   [`FLUSH_EVERY`] offers, which is what a blocking `sendmsg` does in the
//!   raw stream.
//! - The sender of the 64 MiB bytes has them in memory already; reading
//!   them from the file first would only add to that side.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use waypass_client::PeerChannel;
use waypass_protocol::SealedFile;

use crate::broker_peer::{self, PeerMode, BYTES_ACK};
use crate::measure_broker::{brokered, err, pending, rows, start_broker_server, timed};
use crate::measure_broker::{Comparison, RateTarget};
use crate::process::{RawPeer, ServerProcess};
use crate::raw::{self, IO_PATIENCE};
use crate::runner::{interleave, Plan, Side};
use crate::servers::ServerSet;
use crate::stats::fmt_count;

/// The big file's size.
pub const BIG_FILE: usize = 64 << 20;
/// Offers queued between two blocking flushes of the fd stream.
const FLUSH_EVERY: u64 = 256;

/// Runs measurement 6.
pub fn measure(plan: &Plan, servers: &ServerSet) -> Vec<Comparison> {
    let server = match start_broker_server(servers) {
        Ok(server) => server,
        Err(why) => {
            return vec![
                pending(fd_title(plan), "fds/s", &why),
                pending(big_title(plan), "files/s", &why),
            ]
        }
    };
    vec![fd_stream(plan, &server), big_file(plan, &server)]
}

fn fd_title(plan: &Plan) -> String {
    format!(
        "6. Fds per second over a peer channel ({} per run)",
        fmt_count(plan.fds as f64)
    )
}

fn big_title(plan: &Plan) -> String {
    format!(
        "6. A 64 MiB file: its bytes through the socket ({} per run) against handing it \
         over as an fd ({} per run; {} per run when the receiver reads it)",
        plan.big_copies, plan.big_handovers, plan.big_copies
    )
}

enum FdStream {
    Raw(RawPeer),
    Offers {
        _peer: ServerProcess,
        channel: Box<PeerChannel>,
    },
}

fn fd_stream(plan: &Plan, server: &ServerProcess) -> Comparison {
    let file = memfd::MemfdOptions::default().create("bench-offered-fd");
    let (file, read_only) = match file.map_err(err).and_then(|f| {
        let ro = read_only_reopen(f.as_file().as_fd()).map_err(err)?;
        Ok((f, ro))
    }) {
        Ok(pair) => pair,
        Err(e) => return pending(fd_title(plan), "fds/s", &format!("failed: memfd: {e}")),
    };
    let mut sides = vec![
        Side::from_setup(
            "raw SCM_RIGHTS stream, 1 fd per 8-byte message",
            RawPeer::start("peer-fd-sink")
                .map(FdStream::Raw)
                .map_err(|e| format!("failed: {e}")),
        ),
        Side::from_setup(
            "PeerChannel::send_file stream, receiver closes each fd",
            brokered(server.socket(), PeerMode::FileSink).map(|(peer, channel)| FdStream::Offers {
                _peer: peer,
                channel: Box::new(channel),
            }),
        ),
    ];
    let n = plan.fds;
    interleave("fd passing", &mut sides, plan.warmup, plan.runs, |side| {
        let wall = match side {
            FdStream::Raw(peer) => {
                raw::send_fds(&mut peer.stream, file.as_file().as_fd(), n).map_err(err)?
            }
            FdStream::Offers { channel, .. } => offer_stream(channel, read_only.as_fd(), n)?,
        };
        Ok(timed(n, wall))
    });
    let target = RateTarget {
        goal: "6. fd passing over a peer channel ≥ 0.9× raw SCM_RIGHTS",
        min_rate_ratio: 0.9,
    };
    Comparison {
        title: fd_title(plan),
        unit: "fds/s",
        rows: rows(&sides, &[None, Some(target)]),
    }
}

/// `n` offers of `fd`, then a text whose ack says all were received.
fn offer_stream(channel: &mut PeerChannel, fd: BorrowedFd<'_>, n: u64) -> Result<Duration, String> {
    let start = Instant::now();
    for i in 1..=n {
        channel.send_file(fd, "f", 0).map_err(err)?;
        if i % FLUSH_EVERY == 0 {
            channel.flush(Some(IO_PATIENCE)).map_err(err)?;
        }
    }
    let serial = channel.send_text("done").map_err(err)?;
    channel.wait_ack(serial, Some(IO_PATIENCE)).map_err(err)?;
    Ok(start.elapsed())
}

enum BigFile {
    Bytes {
        _peer: ServerProcess,
        stream: UnixStream,
    },
    Handover {
        _peer: ServerProcess,
        channel: PeerChannel,
    },
    HandoverRead {
        _peer: ServerProcess,
        channel: PeerChannel,
    },
}

fn big_file(plan: &Plan, server: &ServerProcess) -> Comparison {
    let contents: Vec<u8> = (0..BIG_FILE).map(|i| (i % 251) as u8).collect();
    let fd = match SealedFile::from_bytes("bench-64mib", &contents)
        .and_then(|file| file.reopen_read_only())
    {
        Ok(fd) => fd,
        Err(e) => return pending(big_title(plan), "files/s", &format!("failed: {e}")),
    };
    let socket = server.socket();
    let mut sides = vec![
        Side::from_setup(
            "its bytes through a brokered socket",
            brokered(socket, PeerMode::ByteSink).and_then(|(peer, channel)| {
                let stream = broker_peer::blocking_socket(channel).map_err(err)?;
                Ok(BigFile::Bytes {
                    _peer: peer,
                    stream,
                })
            }),
        ),
        Side::from_setup(
            "handed over as an fd (receiver checks the size)",
            brokered(socket, PeerMode::FileAck).map(|(peer, channel)| BigFile::Handover {
                _peer: peer,
                channel,
            }),
        ),
        Side::from_setup(
            "handed over as an fd, receiver reads every byte",
            brokered(socket, PeerMode::FileRead).map(|(peer, channel)| BigFile::HandoverRead {
                _peer: peer,
                channel,
            }),
        ),
    ];
    interleave("64 MiB file", &mut sides, plan.warmup, plan.runs, |side| {
        let (n, wall) = match side {
            BigFile::Bytes { stream, .. } => {
                let n = plan.big_copies;
                (n, send_bytes(stream, &contents, n).map_err(err)?)
            }
            BigFile::Handover { channel, .. } => {
                let n = plan.big_handovers;
                (n, hand_over(channel, &fd, n)?)
            }
            BigFile::HandoverRead { channel, .. } => {
                let n = plan.big_copies;
                (n, hand_over(channel, &fd, n)?)
            }
        };
        Ok(timed(n, wall))
    });
    Comparison {
        title: big_title(plan),
        unit: "files/s",
        rows: rows(&sides, &[None, None, None]),
    }
}

fn send_bytes(stream: &mut UnixStream, contents: &[u8], n: u64) -> std::io::Result<Duration> {
    stream.set_read_timeout(Some(IO_PATIENCE))?;
    let start = Instant::now();
    for _ in 0..n {
        stream.write_all(&(contents.len() as u64).to_le_bytes())?;
        stream.write_all(contents)?;
        let mut ack = [0u8; 8];
        stream.read_exact(&mut ack)?;
        if ack != BYTES_ACK {
            return Err(std::io::Error::other("unexpected ack from the byte sink"));
        }
    }
    Ok(start.elapsed())
}

fn hand_over(channel: &mut PeerChannel, fd: &OwnedFd, n: u64) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..n {
        let serial = channel
            .send_file(fd.as_fd(), "bench-64mib.bin", BIG_FILE as u64)
            .map_err(err)?;
        channel.wait_ack(serial, Some(IO_PATIENCE)).map_err(err)?;
    }
    Ok(start.elapsed())
}

/// `fd` reopened read-only through `/proc/self/fd`.
fn read_only_reopen(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(std::fs::File::open(path)?.into())
}
