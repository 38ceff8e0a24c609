//! Helpers for the hardening load tests: raw clients that do the seat and
//! keyboard handshake with as little memory as possible, and readings of
//! another process's `/proc` (CPU time, memfd inodes).
//!
//! What it is not: a Wayland client library. It sends fixed request
//! sequences encoded with the protocol crate and reads just enough of the
//! answer (the keymap event and its fd, the final `wl_callback.done`).

use std::collections::BTreeSet;
use std::fs;
use std::io::{IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::stat::fstat;
use waypass_protocol::protocols::wayland::{wl_display, wl_registry, wl_seat};
use waypass_protocol::wire::{self, Arg};

use crate::PATIENCE;

/// The id of the `wl_callback` that ends [`seat_handshake`].
pub const HANDSHAKE_DONE_ID: u32 = 5;

/// Raises this process's soft `RLIMIT_NOFILE` to the hard limit; returns it.
pub fn raise_fd_limit() -> u64 {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

fn encode(
    sender: u32,
    desc: &waypass_protocol::MessageDesc,
    opcode: u16,
    args: &[Arg<'_, std::os::fd::BorrowedFd<'_>>],
) -> Vec<u8> {
    let mut out = vec![0u8; wire::MAX_MESSAGE_SIZE];
    let n = wire::encode(sender, opcode, desc, args, &mut out).expect("valid request");
    out.truncate(n);
    out
}

/// `wl_display.sync(new id)`.
pub fn sync(id: u32) -> Vec<u8> {
    let op = wl_display::req::SYNC;
    encode(
        1,
        &wl_display::INTERFACE.requests[usize::from(op)],
        op,
        &[Arg::NewId(id)],
    )
}

/// `wl_display.get_registry(2)` then `sync(3)`.
pub fn registry_and_sync() -> Vec<u8> {
    let op = wl_display::req::GET_REGISTRY;
    let desc = &wl_display::INTERFACE.requests[usize::from(op)];
    [encode(1, desc, op, &[Arg::NewId(2)]), sync(3)].concat()
}

/// Registry at 2, `wl_seat` (global 1) version 7 at 3, a keyboard at 4,
/// then `sync(5)`.
pub fn seat_handshake() -> Vec<u8> {
    let bind = &wl_registry::INTERFACE.requests[usize::from(wl_registry::req::BIND)];
    let get_kbd = &wl_seat::INTERFACE.requests[usize::from(wl_seat::req::GET_KEYBOARD)];
    let op = wl_display::req::GET_REGISTRY;
    let get_reg = &wl_display::INTERFACE.requests[usize::from(op)];
    [
        encode(1, get_reg, op, &[Arg::NewId(2)]),
        encode(
            2,
            bind,
            wl_registry::req::BIND,
            &[
                Arg::Uint(1),
                Arg::Str(Some(c"wl_seat")),
                Arg::Uint(7),
                Arg::NewId(3),
            ],
        ),
        encode(3, get_kbd, wl_seat::req::GET_KEYBOARD, &[Arg::NewId(4)]),
        sync(HANDSHAKE_DONE_ID),
    ]
    .concat()
}

/// What a handshake received: every event's (sender, opcode) and the fds.
#[derive(Debug, Default)]
pub struct Received {
    /// `(sender, opcode, body)` of each event, in order.
    pub events: Vec<(u32, u16, Vec<u8>)>,
    /// Every fd that came, in order.
    pub fds: Vec<OwnedFd>,
}

impl Received {
    /// Whether `wl_callback.done` from `id` has arrived.
    pub fn done(&self, id: u32) -> bool {
        self.events.iter().any(|(s, o, _)| (*s, *o) == (id, 0))
    }

    /// Whether a `wl_display.error` arrived.
    pub fn error(&self) -> bool {
        self.events.iter().any(|(s, o, _)| (*s, *o) == (1, 0))
    }
}

/// Sends `request`, then receives until `wl_callback.done` from `done_id`
/// (blocking, bounded by `PATIENCE` as a read timeout).
pub fn exchange(stream: &mut UnixStream, request: &[u8], done_id: u32) -> Result<Received, String> {
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Received::default();
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 8192];
    while !got.done(done_id) {
        if got.error() {
            return Err(format!("wl_display.error: {:?}", got.events.last()));
        }
        let n = recv_with_fds(stream, &mut buf, &mut got.fds)?;
        if n == 0 {
            return Err(format!("hang-up after {:?}", got.events));
        }
        bytes.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Ok(Some((h, m))) = wire::split_message(&bytes[at..]) {
            got.events
                .push((h.sender, h.opcode, m[wire::HEADER_SIZE..].to_vec()));
            at += usize::from(h.size);
        }
        bytes.drain(..at);
    }
    Ok(got)
}

/// One `recvmsg` with `MSG_CMSG_CLOEXEC`; fds are appended to `fds`.
pub fn recv_with_fds(
    stream: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> Result<usize, String> {
    let mut cmsg = nix::cmsg_space!([RawFd; 28]);
    let mut iov = [IoSliceMut::new(buf)];
    loop {
        match recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                for c in msg.cmsgs().map_err(|e| e.to_string())? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: SCM_RIGHTS fds are new in this process and
                        // owned by nobody else.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                return Ok(msg.bytes);
            }
            // Interrupted by a signal: try again.
            Err(nix::errno::Errno::EINTR) => {}
            // The server hung up with our bytes unread.
            Err(nix::errno::Errno::ECONNRESET) => return Ok(0),
            Err(e) => return Err(format!("recvmsg: {e}")),
        }
    }
}

/// The keymap a [`seat_handshake`] delivered: (dev, ino) of its fd and the
/// announced size. The fd is closed on return.
pub fn keymap_identity(got: Received) -> Result<((u64, u64), u32), String> {
    let (_, _, body) = got
        .events
        .iter()
        .find(|(s, o, _)| (*s, *o) == (4, 0))
        .ok_or("no wl_keyboard.keymap")?;
    let size = u32::from_ne_bytes(body[4..8].try_into().unwrap());
    let fd = got.fds.first().ok_or("keymap without its fd")?;
    let st = fstat(fd).map_err(|e| e.to_string())?;
    if got.fds.len() != 1 {
        return Err(format!("{} fds instead of 1", got.fds.len()));
    }
    if size == 0 || i64::from(size) > st.st_size {
        return Err(format!("size {size} vs file {}", st.st_size));
    }
    Ok(((st.st_dev, st.st_ino), size))
}

/// User + system CPU time of `pid` in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Clock ticks per second, as `/proc` counts them.
pub fn ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Distinct (dev, ino) of memfds that `pid` holds open or maps.
pub fn memfd_inodes(pid: i32) -> BTreeSet<(u64, u64)> {
    let mut found = BTreeSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .flatten()
    {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_string_lossy().starts_with("/memfd:") {
            if let Ok(meta) = fs::metadata(entry.path()) {
                found.insert((meta.dev(), meta.ino()));
            }
        }
    }
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    for line in maps.lines().filter(|l| l.contains("/memfd:")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (major, minor) = f[3].split_once(':').expect("dev");
        let dev = nix::sys::stat::makedev(
            u64::from_str_radix(major, 16).unwrap(),
            u64::from_str_radix(minor, 16).unwrap(),
        );
        found.insert((dev, f[4].parse().unwrap()));
    }
    found
}

/// Connects, does a `get_registry` + `sync` round trip, and disconnects.
pub fn registry_roundtrip(socket: &Path) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    exchange(&mut stream, &registry_and_sync(), 3).map(drop)
}
