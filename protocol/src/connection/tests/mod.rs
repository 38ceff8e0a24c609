//! Round trips through two [`Connection`]s over `UnixStream::pair()`.
//!
//! Fd leak counting lives in `protocol/tests/connection_fds.rs`, which runs
//! alone; here, closure is proved by pipe EOF (a pipe's read end sees EOF
//! only once every copy of its write end is closed).
//! Caps and failures are in `limits.rs`.

use std::error::Error as _;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;

use super::*;
use crate::interface::{arg, nullable, ArgDesc, ArgKind};
use crate::wire::{DecodeError, Fixed, Malformed, MAX_FDS_OUT};

mod batch;
mod control;
mod direct;
mod in_flight;
mod limits;
mod shared;
mod unclaimed;

static ALL_KINDS: MessageDesc = crate::interface::msg(
    "all_kinds",
    1,
    &[
        arg("i", ArgKind::Int),
        arg("u", ArgKind::Uint),
        arg("f", ArgKind::Fixed),
        arg("s", ArgKind::String),
        nullable(arg("null_s", ArgKind::String)),
        arg("o", ArgKind::Object),
        nullable(arg("null_o", ArgKind::Object)),
        arg("n", ArgKind::NewId),
        arg("a", ArgKind::Array),
        arg("h", ArgKind::Fd),
    ],
);
static WORD: MessageDesc = crate::interface::msg("word", 1, &[arg("u", ArgKind::Uint)]);
static ONE_FD: MessageDesc = crate::interface::msg(
    "one_fd",
    1,
    &[arg("index", ArgKind::Uint), arg("fd", ArgKind::Fd)],
);
static THREE_FDS: MessageDesc = crate::interface::msg(
    "three_fds",
    1,
    &[
        arg("a", ArgKind::Fd),
        arg("b", ArgKind::Fd),
        arg("c", ArgKind::Fd),
    ],
);
static BLOB: MessageDesc = crate::interface::msg("blob", 1, &[arg("a", ArgKind::Array)]);
static TOO_MANY_FDS_ARGS: [ArgDesc; MAX_FDS_OUT + 1] = [arg("fd", ArgKind::Fd); MAX_FDS_OUT + 1];
static TOO_MANY_FDS: MessageDesc = crate::interface::msg("too_many", 1, &TOO_MANY_FDS_ARGS);

fn pair_with(a: Limits, b: Limits) -> (Connection, Connection) {
    let (x, y) = UnixStream::pair().unwrap();
    (
        Connection::with_limits(x, a).unwrap(),
        Connection::with_limits(y, b).unwrap(),
    )
}

fn pair() -> (Connection, Connection) {
    pair_with(Limits::default(), Limits::default())
}

fn dev_ino(fd: BorrowedFd<'_>) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

fn memfd(name: &str) -> OwnedFd {
    memfd::MemfdOptions::default()
        .create(name)
        .unwrap()
        .into_file()
        .into()
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap()
}

/// Whether every copy of the pipe's write end is closed.
fn write_end_closed(read_end: OwnedFd) -> bool {
    match std::fs::File::from(read_end).read(&mut [0; 8]) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        other => panic!("unexpected pipe read: {other:?}"),
    }
}

fn fixed(desc: &'static MessageDesc) -> impl FnOnce(&Header) -> Result<&'static MessageDesc, ()> {
    move |_| Ok(desc)
}

/// Receives until `n` messages of `desc` have been handed to `f`.
fn receive(
    conn: &mut Connection,
    desc: &'static MessageDesc,
    n: usize,
    mut f: impl FnMut(Message<'_>),
) {
    let mut got = 0;
    while got < n {
        assert!(
            matches!(conn.recv().unwrap(), Recv::Data(_)),
            "data ran out after {got}"
        );
        while let Some(m) = conn.next_message(fixed(desc)).unwrap() {
            f(m);
            got += 1;
        }
    }
    assert_eq!(got, n);
}

#[test]
fn every_argument_type_round_trips() {
    let (mut a, mut b) = pair();
    let file = memfd("all-kinds");
    let array = [1u8, 2, 3, 4, 5];
    let args = [
        Arg::Int(-5),
        Arg::Uint(0xdead_beef),
        Arg::Fixed(Fixed::from_f64(-2.5)),
        Arg::Str(Some(c"hello")),
        Arg::Str(None),
        Arg::Object(7),
        Arg::Object(0),
        Arg::NewId(0xff00_0001),
        Arg::Array(&array),
        Arg::Fd(file.as_fd()),
    ];
    a.send(9, 4, &ALL_KINDS, &args).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    receive(&mut b, &ALL_KINDS, 1, |m| {
        assert_eq!((m.sender, m.opcode), (9, 4));
        match &m.args[..] {
            [Arg::Int(-5), Arg::Uint(0xdead_beef), Arg::Fixed(f), Arg::Str(Some(s)), Arg::Str(None), Arg::Object(7), Arg::Object(0), Arg::NewId(0xff00_0001), Arg::Array(arr), Arg::Fd(fd)] =>
            {
                assert_eq!(f.to_f64(), -2.5);
                assert_eq!(s.to_bytes(), b"hello");
                assert_eq!(*arr, &array[..]);
                assert_eq!(dev_ino(fd.as_fd()), dev_ino(file.as_fd()));
            }
            other => panic!("unexpected arguments {other:?}"),
        }
    });
    assert_eq!(b.split().0.queued_fds(), 0);
}

#[test]
fn a_sync_round_trip_is_one_recv_and_one_flush_each_way() {
    let (mut client, mut server) = pair();
    client.send(1, 0, &WORD, &[Arg::Uint(2)]).unwrap();
    client.send(1, 1, &WORD, &[Arg::Uint(3)]).unwrap();
    assert_eq!(client.flush().unwrap(), Flush::Done);

    assert_eq!(server.recv().unwrap(), Recv::Data(24));
    let (incoming, outgoing) = server.split();
    let mut seen = 0;
    while let Some(m) = incoming.next_message(fixed(&WORD)).unwrap() {
        let Arg::Uint(id) = m.args[0] else {
            panic!("{m:?}")
        };
        // Reply while the request is still borrowed from the buffer.
        outgoing.send(id, 0, &WORD, &[Arg::Uint(id * 10)]).unwrap();
        seen += 1;
    }
    assert_eq!(seen, 2);
    assert_eq!(server.flush().unwrap(), Flush::Done);

    assert_eq!(client.recv().unwrap(), Recv::Data(24));
    let first = client.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(
        (first.sender, &first.args[..]),
        (2, [Arg::Uint(20)])
    ));
    let second = client.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(
        (second.sender, &second.args[..]),
        (3, [Arg::Uint(30)])
    ));
    assert!(client.next_message(fixed(&WORD)).unwrap().is_none());
    assert_eq!(client.recv().unwrap(), Recv::WouldBlock);
}

#[test]
fn a_burst_of_100_fds_arrives_complete_and_in_order() {
    let (mut a, mut b) = pair();
    let files: Vec<OwnedFd> = (0..100).map(|i| memfd(&format!("burst-{i}"))).collect();
    for (i, f) in files.iter().enumerate() {
        a.send(5, 0, &ONE_FD, &[Arg::Uint(i as u32), Arg::Fd(f.as_fd())])
            .unwrap();
    }
    assert_eq!(a.split().1.queued_fds(), 100);
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(a.split().1.queued_fds(), 0);

    let mut next = 0;
    receive(&mut b, &ONE_FD, 100, |m| match &m.args[..] {
        [Arg::Uint(i), Arg::Fd(fd)] => {
            assert_eq!(*i, next);
            assert_eq!(dev_ino(fd.as_fd()), dev_ino(files[next as usize].as_fd()));
            next += 1;
        }
        other => panic!("unexpected arguments {other:?}"),
    });
}

#[test]
fn a_message_with_3_fds_after_27_queued_is_not_split_from_them() {
    let (mut a, mut b) = pair();
    let singles: Vec<OwnedFd> = (0..27).map(|i| memfd(&format!("single-{i}"))).collect();
    for (i, f) in singles.iter().enumerate() {
        a.send(5, 0, &ONE_FD, &[Arg::Uint(i as u32), Arg::Fd(f.as_fd())])
            .unwrap();
    }
    let triple: Vec<OwnedFd> = (0..3).map(|i| memfd(&format!("triple-{i}"))).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = triple.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);

    // The first sendmsg carried 27 fds and exactly the 27 messages' bytes;
    // a recvmsg never returns the fds of two sendmsgs.
    assert_eq!(b.recv().unwrap(), Recv::Data(27 * 12));
    assert_eq!(b.split().0.queued_fds(), 27);
    for i in 0..27u32 {
        let m = b.next_message(fixed(&ONE_FD)).unwrap().unwrap();
        assert!(matches!(m.args[0], Arg::Uint(n) if n == i));
    }
    assert!(b.next_message(fixed(&THREE_FDS)).unwrap().is_none());

    assert_eq!(b.recv().unwrap(), Recv::Data(8));
    assert_eq!(b.split().0.queued_fds(), 3);
    let m = b.next_message(fixed(&THREE_FDS)).unwrap().unwrap();
    for (arg, file) in m.args.iter().zip(&triple) {
        let Arg::Fd(fd) = arg else { panic!("{arg:?}") };
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(file.as_fd()));
    }
}

#[test]
fn truncated_control_data_is_an_error_and_the_fds_that_arrived_are_closed() {
    let (mut a, mut b) = pair();
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| pipe()).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = pipes.iter().map(|p| Arg::Fd(p.1.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    let read_ends: Vec<OwnedFd> = pipes.into_iter().map(|(r, _w)| r).collect();

    // Room for 1 fd (the kernel rounds it up to 2): 3 do not fit.
    let err = b.recv_with_fd_capacity(1).unwrap_err();
    assert!(matches!(err, ConnectionError::ControlTruncated), "{err:?}");
    assert_eq!(b.split().0.queued_fds(), 0);
    for r in read_ends {
        assert!(write_end_closed(r));
    }
}

#[test]
fn a_control_buffer_with_room_takes_every_fd() {
    let (mut a, mut b) = pair();
    let files: Vec<OwnedFd> = (0..3).map(|i| memfd(&format!("room-{i}"))).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = files.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    a.flush().unwrap();
    assert_eq!(b.recv_with_fd_capacity(3).unwrap(), Recv::Data(8));
    assert_eq!(b.split().0.queued_fds(), 3);
}

#[test]
fn flush_reports_would_block_and_sends_the_rest_once_the_peer_reads() {
    let limits = Limits {
        max_out_bytes: 4 << 20,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(limits, Limits::default());
    // 512 maximal messages (2 MiB): far more than a socket buffer holds.
    let count = 512u32;
    let mut payload = [0u8; 4084];
    for i in 0..count {
        payload[..4].copy_from_slice(&i.to_ne_bytes());
        a.send(1, 0, &BLOB, &[Arg::Array(&payload)]).unwrap();
    }
    assert_eq!(a.flush().unwrap(), Flush::WouldBlock);
    assert!(a.has_pending_output());

    let mut next = 0u32;
    while next < count {
        match b.recv().unwrap() {
            Recv::Data(_) => {
                while let Some(m) = b.next_message(fixed(&BLOB)).unwrap() {
                    let [Arg::Array(bytes)] = m.args[..] else {
                        panic!("{m:?}")
                    };
                    assert_eq!(bytes.len(), 4084);
                    assert_eq!(bytes[..4], next.to_ne_bytes());
                    next += 1;
                }
            }
            // The peer has read all it was sent: send more.
            Recv::WouldBlock => assert!(a.has_pending_output(), "lost after {next}"),
        }
        a.flush().unwrap();
    }
    assert!(!a.has_pending_output());
    assert_eq!(b.recv().unwrap(), Recv::WouldBlock);
}

#[test]
fn a_closed_peer_is_reported_by_recv_and_flush() {
    let (mut a, b) = pair();
    assert_eq!(a.recv().unwrap(), Recv::WouldBlock);
    drop(b);
    assert!(matches!(a.recv(), Err(ConnectionError::Closed)));
    a.send(1, 0, &WORD, &[Arg::Uint(1)]).unwrap();
    assert!(matches!(a.flush(), Err(ConnectionError::Closed)));
}

#[test]
fn a_message_split_across_reads_is_reassembled() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let mut bytes = [0u8; 24];
    let desc = &WORD;
    let n = crate::wire::encode(4, 2, desc, &[Arg::Uint(11)], &mut bytes).unwrap();
    crate::wire::encode(4, 3, desc, &[Arg::Uint(12)], &mut bytes[n..]).unwrap();
    let mut raw = raw;
    // One and a half messages, then the rest: the tail is compacted.
    raw.write_all(&bytes[..18]).unwrap();
    assert_eq!(b.recv().unwrap(), Recv::Data(18));
    assert!(matches!(
        b.next_message(fixed(desc)).unwrap().unwrap().args[..],
        [Arg::Uint(11)]
    ));
    assert!(b.next_message(fixed(desc)).unwrap().is_none());
    assert_eq!(b.split().0.buffered_bytes(), 6);
    raw.write_all(&bytes[18..]).unwrap();
    assert_eq!(b.recv().unwrap(), Recv::Data(6));
    let m = b.next_message(fixed(desc)).unwrap().unwrap();
    assert_eq!(m.opcode, 3);
    assert!(matches!(m.args[..], [Arg::Uint(12)]));
}

#[test]
fn a_sealed_keymap_travels_as_wl_keyboard_keymap() {
    use crate::protocols::wayland::wl_keyboard;
    use crate::sealed::{inspect_fd, ReadOnlyMap, SealedFile};

    let keymap = SealedFile::from_bytes("keymap", b"xkb_keymap { };\0").unwrap();
    let per_client = keymap.reopen_read_only().unwrap();
    let desc = wl_keyboard::INTERFACE
        .event(wl_keyboard::evt::KEYMAP, 1)
        .unwrap();
    let size = keymap.size() as u32;
    let (mut server, mut client) = pair();
    let args = [Arg::Uint(1), Arg::Fd(per_client.as_fd()), Arg::Uint(size)];
    server
        .send(0xff00_0003, wl_keyboard::evt::KEYMAP, desc, &args)
        .unwrap();
    drop(per_client);
    assert_eq!(server.flush().unwrap(), Flush::Done);

    assert_eq!(client.recv().unwrap(), Recv::Data(16));
    let lookup = |h: &Header| wl_keyboard::INTERFACE.event(h.opcode, 1);
    let m = client.next_message(lookup).unwrap().unwrap();
    let [Arg::Uint(1), Arg::Fd(fd), Arg::Uint(size)] = &m.args[..] else {
        panic!("{m:?}")
    };
    assert_eq!(dev_ino(fd.as_fd()), dev_ino(keymap.as_fd()));
    assert!(inspect_fd(fd.as_fd()).unwrap().memfd);
    let map = ReadOnlyMap::new(fd.as_fd(), u64::from(*size)).unwrap();
    assert_eq!(&map[..], b"xkb_keymap { };\0");
}

/// NextError's text and its chain of sources say each thing once.
#[test]
fn next_error_chains_without_repeating() {
    let chain = |e: &dyn std::error::Error| -> Vec<String> {
        let mut links = vec![e.to_string()];
        let mut next = e.source();
        while let Some(source) = next {
            links.push(source.to_string());
            next = source.source();
        }
        links
    };
    let lookup: NextError<crate::LookupError> =
        NextError::Lookup(crate::LookupError::NotAtVersion { since: 3 });
    assert_eq!(
        chain(&lookup),
        [
            "unknown message",
            "the message needs version 3 of its interface"
        ]
    );
    let closed: NextError<crate::LookupError> =
        NextError::Connection(ConnectionError::UnclaimedFds {
            queued: 40,
            max: 28,
        });
    assert_eq!(
        chain(&closed),
        ["fds that no message takes: 40 left, at most 28 may wait for their message"]
    );
}

/// The control buffer is reused across receives on a thread (kept zeroed
/// rather than zeroed every time): what one receive's fds left in it must
/// never come back as fds of the next, after a whole receive or a
/// truncated one. Fds are compared by (st_dev, st_ino).
#[test]
fn a_receive_after_one_with_fds_finds_none_left_from_it() {
    let files: Vec<OwnedFd> = (0..3).map(|i| memfd(&format!("stale-{i}"))).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = files.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    let id = |fd: BorrowedFd<'_>| {
        let st = nix::sys::stat::fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    };
    // Whole, then truncated (the kernel rounds 1 fd of room up to 2); the
    // receive after it is on another connection of this thread after a
    // truncation, which leaves the connection unusable.
    for capacity in [Connection::RECV_FD_CAPACITY, 1] {
        let (mut a, mut b) = pair();
        a.send(6, 0, &THREE_FDS, &args).unwrap();
        a.flush().unwrap();
        match b.recv_with_fd_capacity(capacity) {
            Ok(_) => {
                let m = b.next_message(fixed(&THREE_FDS)).unwrap().unwrap();
                let got: Vec<_> = m
                    .args
                    .iter()
                    .map(|a| match a {
                        Arg::Fd(fd) => id(fd.as_fd()),
                        other => panic!("{other:?}"),
                    })
                    .collect();
                let sent: Vec<_> = files.iter().map(|f| id(f.as_fd())).collect();
                assert_eq!(got, sent);
            }
            Err(e) => {
                assert!(matches!(e, ConnectionError::ControlTruncated), "{e:?}");
                (a, b) = pair();
            }
        }
        a.send(1, 0, &WORD, &[Arg::Uint(5)]).unwrap();
        a.flush().unwrap();
        assert_eq!(b.recv().unwrap(), Recv::Data(12));
        assert_eq!(
            b.split().0.queued_fds(),
            0,
            "fds left from the last receive"
        );
        let m = b.next_message(fixed(&WORD)).unwrap().unwrap();
        assert!(matches!(m.args[..], [Arg::Uint(5)]));
    }
}
