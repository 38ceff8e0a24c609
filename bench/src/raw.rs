//! The kernel's limit: an 8-byte ping-pong over a `socketpair`, and
//! `SCM_RIGHTS` passing of one fd per message, between two processes.
//!
//! What it is: both sides of each exchange. The bench process drives; the
//! peer loops ([`echo_peer`], [`fd_sink_peer`]) run in a child process
//! started with `RawPeer`. These are the references the Wayland figures are
//! divided by.
//!
//! What it is not: tuned. Plain blocking `read`/`write` and `sendmsg`/
//! `recvmsg`, one syscall per message each way, no batching: the same
//! shape a Wayland round trip has at best.
//!
//! # Implementation notes
//!
//! The fd stream sends 8-byte messages each carrying one fd (a memfd, the
//! same one every time); the last message asks for an 8-byte ack, and the run
//! ends when the ack arrives, so every fd has been received and closed by the
//! peer by then. Streaming (rather than ping-pong) measures how many fds per
//! second the kernel moves, with the socket buffer as the window.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The payload of every raw message.
const MESSAGE: [u8; 8] = *b"pingpong";
/// The fd-stream payload that asks the peer for an ack.
const ACK_PLEASE: [u8; 8] = *b"ack-plz!";

/// How long a blocked read may wait before the run is called hung.
pub const IO_PATIENCE: Duration = Duration::from_secs(30);

/// `n` round trips of 8 bytes each way; returns the wall time.
pub fn ping_pong(stream: &mut UnixStream, n: u64) -> io::Result<Duration> {
    stream.set_read_timeout(Some(IO_PATIENCE))?;
    let mut buf = [0u8; 8];
    let start = Instant::now();
    for _ in 0..n {
        stream.write_all(&MESSAGE)?;
        stream.read_exact(&mut buf)?;
    }
    Ok(start.elapsed())
}

/// The child side of [`ping_pong`]: echoes 8-byte messages until EOF.
pub fn echo_peer(mut stream: UnixStream) -> io::Result<()> {
    let mut buf = [0u8; 8];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            // The bench closed its end: the run is over.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Sends `n` messages of 8 bytes carrying `fd` each, then waits for the
/// peer's ack; returns the wall time.
pub fn send_fds(stream: &mut UnixStream, fd: BorrowedFd<'_>, n: u64) -> io::Result<Duration> {
    stream.set_read_timeout(Some(IO_PATIENCE))?;
    let fds = [fd.as_raw_fd()];
    let start = Instant::now();
    for i in 0..n {
        let payload = if i + 1 == n { &ACK_PLEASE } else { &MESSAGE };
        let iov = [IoSlice::new(payload)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let sent = retry_eintr(|| {
            sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        })?;
        if sent != payload.len() {
            // An 8-byte write to a blocking stream socket is never split.
            return Err(io::Error::other("short sendmsg"));
        }
    }
    let mut ack = [0u8; 8];
    stream.read_exact(&mut ack)?;
    Ok(start.elapsed())
}

/// The child side of [`send_fds`]: receives messages and closes their fds
/// until EOF, acking each message that asks for it.
pub fn fd_sink_peer(mut stream: UnixStream) -> io::Result<()> {
    let mut pending = Vec::with_capacity(16);
    loop {
        let mut buf = [0u8; 8];
        let (len, fds) = recv_with_fds(stream.as_fd(), &mut buf)?;
        // Dropping the received fds closes them, as a real receiver would.
        drop(fds);
        if len == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf[..len]);
        while pending.len() >= 8 {
            let message: Vec<u8> = pending.drain(..8).collect();
            if message == ACK_PLEASE {
                stream.write_all(&MESSAGE)?;
            }
        }
    }
}

/// One `recvmsg` with room for the most fds libwayland sends at once (28),
/// `MSG_CMSG_CLOEXEC`, and a check for truncated ancillary data.
fn recv_with_fds(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = cmsg_space!([std::os::fd::RawFd; 28]);
    let mut iov = [IoSliceMut::new(buf)];
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    let msg = loop {
        match recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => break msg,
            // A signal interrupted the call before anything moved: try again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut owned = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for raw_fd in raw {
                // SAFETY: the kernel just installed `raw_fd` in this process
                // for this message; nothing else knows it, so it is ours to own.
                owned.push(unsafe { OwnedFd::from_raw_fd(raw_fd) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        // The kernel dropped fds that did not fit: the count would be wrong.
        return Err(io::Error::other("MSG_CTRUNC: fds were dropped"));
    }
    Ok((msg.bytes, owned))
}

fn retry_eintr<T>(mut f: impl FnMut() -> nix::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Ok(v) => return Ok(v),
            // A signal interrupted the call before anything moved: try again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn ping_pong_round_trips_through_an_echo_peer() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let peer = thread::spawn(move || echo_peer(theirs));
        ping_pong(&mut ours, 100).unwrap();
        drop(ours);
        peer.join().unwrap().unwrap();
    }

    #[test]
    fn fd_stream_is_acked_after_the_last_fd() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let peer = thread::spawn(move || fd_sink_peer(theirs));
        let file = memfd::MemfdOptions::default().create("raw-test").unwrap();
        send_fds(&mut ours, file.as_file().as_fd(), 500).unwrap();
        drop(ours);
        peer.join().unwrap().unwrap();
    }

    #[test]
    fn received_fd_is_the_sent_file() {
        use std::os::unix::fs::MetadataExt;
        let (ours, theirs) = UnixStream::pair().unwrap();
        let file = memfd::MemfdOptions::default().create("raw-test-2").unwrap();
        let fds = [file.as_file().as_raw_fd()];
        let iov = [IoSlice::new(&MESSAGE)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(ours.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
        let mut buf = [0u8; 8];
        let (len, mut fds) = recv_with_fds(theirs.as_fd(), &mut buf).unwrap();
        assert_eq!((len, fds.len()), (8, 1));
        let got = std::fs::File::from(fds.pop().unwrap()).metadata().unwrap();
        let sent = file.as_file().metadata().unwrap();
        assert_eq!((got.dev(), got.ino()), (sent.dev(), sent.ino()));
    }
}
