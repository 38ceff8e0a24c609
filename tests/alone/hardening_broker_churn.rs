//! End-to-end load: thousands of brokered channels opened and closed.
//!
//! One owner registers a name; twenty requester connections each ask for
//! 250 channels to it, in batches of 50 `connect`s followed by a `sync`,
//! then destroy the connection objects. What it asserts: every `connect`
//! gets exactly one answer (`established`, with exactly one fd, or `busy`
//! while the owner has 64 channels it has not read, which is asked again
//! after 2 ms), the owner
//! gets one `peer` event with one fd per channel, a byte written on each
//! requester end arrives on the matching owner end, and afterwards neither
//! the server's `/proc/PID/fd` count nor this process's has grown. What it
//! reports: the channels per second (not asserted).
//!
//! It runs alone ([`crate::alone`]): it counts this process's own fds.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use waypass_protocol::protocols::broker::{
    waypass_broker_v1 as broker, waypass_broker_v1::failure, waypass_connection_v1 as connection,
    waypass_name_v1 as name,
};
use waypass_protocol::protocols::wayland::{wl_display, wl_registry};
use waypass_protocol::wire::{self, Arg};
use waypass_protocol::Interface;
use waypass_test_support::load::{exchange, recv_with_fds, sync};
use waypass_test_support::{eventually, fd_count, Server, PATIENCE};

const REQUESTERS: usize = 20;
const BATCHES: usize = 5;
const BATCH: u32 = 50;
const CHANNELS: usize = REQUESTERS * BATCHES * BATCH as usize;
const NAME: &std::ffi::CStr = c"churn-owner";

fn req(sender: u32, iface: &Interface, opcode: u16, args: &[Arg<'_, BorrowedFd<'_>>]) -> Vec<u8> {
    let desc = &iface.requests[usize::from(opcode)];
    let mut out = vec![0u8; wire::MAX_MESSAGE_SIZE];
    let n = wire::encode(sender, opcode, desc, args, &mut out).expect("valid request");
    out.truncate(n);
    out
}

/// Registry at 2, `waypass_broker_v1` (global 2) at 3.
fn bind_broker() -> Vec<u8> {
    let op = wl_display::req::GET_REGISTRY;
    let args = [
        Arg::Uint(2),
        Arg::Str(Some(c"waypass_broker_v1")),
        Arg::Uint(1),
        Arg::NewId(3),
    ];
    [
        req(1, &wl_display::INTERFACE, op, &[Arg::NewId(2)]),
        req(2, &wl_registry::INTERFACE, wl_registry::req::BIND, &args),
    ]
    .concat()
}

/// Reads the owner's socket until `expected` peer events came; checks each
/// channel's byte and closes its fd. Returns the number of peers seen.
fn own(stream: UnixStream, expected: usize) -> Result<usize, String> {
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let mut fds = Vec::new();
    let mut queue: VecDeque<OwnedFd> = VecDeque::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut peers = 0;
    while peers < expected {
        let n = recv_with_fds(&stream, &mut buf, &mut fds)?;
        if n == 0 {
            return Err(format!("owner hung up after {peers} peers"));
        }
        queue.extend(fds.drain(..));
        bytes.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Ok(Some((h, _))) = wire::split_message(&bytes[at..]) {
            at += usize::from(h.size);
            match (h.sender, h.opcode) {
                (4, name::evt::PEER) => {
                    let fd = queue.pop_front().ok_or("peer event without its fd")?;
                    let mut end = UnixStream::from(fd);
                    end.set_read_timeout(Some(PATIENCE))
                        .map_err(|e| e.to_string())?;
                    let mut byte = [0u8; 1];
                    end.read_exact(&mut byte)
                        .map_err(|e| format!("channel {peers}: {e}"))?;
                    if byte != [b'x'] {
                        return Err(format!("channel {peers} carried {byte:?}"));
                    }
                    peers += 1;
                }
                (1, wl_display::evt::ERROR) => return Err("owner got an error".into()),
                _ => {}
            }
        }
        bytes.drain(..at);
    }
    if !queue.is_empty() {
        return Err(format!("{} fds without a peer event", queue.len()));
    }
    Ok(peers)
}

/// One requester: `BATCHES` batches of `BATCH` connects, each answered
/// exactly once, then destroyed. A connect answered `busy` (the owner has
/// not read 64 channels yet) is asked again after a short pause. Returns
/// the channels opened and the `busy` answers.
fn request(socket: &std::path::Path) -> Result<(usize, usize), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    exchange(&mut stream, &[bind_broker(), sync(4)].concat(), 4)?;
    let (mut channels, mut busy) = (0, 0);
    for _ in 0..BATCHES {
        let mut want = BATCH;
        while want > 0 {
            let (opened, refused) = connect_batch(&mut stream, want)?;
            channels += opened;
            busy += refused;
            want -= opened as u32;
            if want > 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    }
    Ok((channels, busy))
}

/// `n` connects to the owner and a sync; checks that each is answered once,
/// `established` with one fd or `failed(busy)`, writes a byte on each
/// channel, and destroys the connection objects.
fn connect_batch(stream: &mut UnixStream, n: u32) -> Result<(usize, usize), String> {
    let ids = 4..4 + n;
    let mut batch: Vec<u8> = ids
        .clone()
        .flat_map(|id| {
            let args = [Arg::NewId(id), Arg::Str(Some(NAME))];
            req(3, &broker::INTERFACE, broker::req::CONNECT, &args)
        })
        .collect();
    batch.extend(sync(4 + n));
    let got = exchange(stream, &batch, 4 + n)?;
    let (mut opened, mut busy) = (0, 0);
    for id in ids.clone() {
        let answers: Vec<(u16, &[u8])> = got
            .events
            .iter()
            .filter(|(s, _, _)| *s == id)
            .map(|(_, o, body)| (*o, &body[..]))
            .collect();
        match answers[..] {
            [(connection::evt::ESTABLISHED, _)] => opened += 1,
            [(connection::evt::FAILED, reason)] if reason == failure::BUSY.to_ne_bytes() => {
                busy += 1
            }
            _ => return Err(format!("connection {id} answered {answers:?}")),
        }
    }
    if got.fds.len() != opened {
        return Err(format!("{} fds for {opened} channels", got.fds.len()));
    }
    for fd in got.fds {
        UnixStream::from(fd)
            .write_all(b"x")
            .map_err(|e| e.to_string())?;
    }
    let mut destroy: Vec<u8> = ids
        .map(|id| req(id, &connection::INTERFACE, connection::req::DESTROY, &[]))
        .flat_map(|m| m.into_iter())
        .collect();
    destroy.extend(sync(4));
    exchange(stream, &destroy, 4)?;
    Ok((opened, busy))
}

#[test]
fn thousands_of_brokered_channels_leave_no_fds_behind() {
    let _alone = crate::alone();
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let server_base = server.fd_count();
    let own_base = fd_count(std::process::id() as i32);

    let mut owner = UnixStream::connect(&server.socket).unwrap();
    let args = [Arg::NewId(4), Arg::Str(Some(NAME))];
    let register = req(3, &broker::INTERFACE, broker::req::REGISTER, &args);
    let got = exchange(&mut owner, &[bind_broker(), register, sync(5)].concat(), 5).unwrap();
    assert!(got
        .events
        .iter()
        .any(|(s, o, _)| (*s, *o) == (4, name::evt::REGISTERED)));
    let owner_thread = thread::spawn(move || own(owner, CHANNELS));

    let start = Instant::now();
    let requesters: Vec<_> = (0..REQUESTERS)
        .map(|_| {
            let socket = server.socket.clone();
            thread::spawn(move || request(&socket))
        })
        .collect();
    let (mut opened, mut busy) = (0, 0);
    for r in requesters {
        let (o, b) = r.join().expect("requester").expect("requester");
        opened += o;
        busy += b;
    }
    let peers = owner_thread.join().expect("owner").expect("owner");
    let took = start.elapsed();
    assert_eq!((opened, peers), (CHANNELS, CHANNELS));

    assert!(
        eventually(|| server.fd_count() == server_base),
        "server fds {} != {server_base}",
        server.fd_count()
    );
    let own_now = fd_count(std::process::id() as i32);
    assert_eq!(own_now, own_base, "this process's fds");
    println!(
        "broker churn: {CHANNELS} channels from {REQUESTERS} requesters in {took:.1?} \
         ({:.0}/s, {busy} busy answers retried); server fds {server_base} before and after",
        CHANNELS as f64 / took.as_secs_f64()
    );
    assert!(!server.log_text().contains("panicked"));
}
