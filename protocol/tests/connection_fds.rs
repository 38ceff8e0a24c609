//! Fd leak checks for [`Connection`]: on every error path and on drop, the
//! count of `/proc/self/fd` returns to its baseline.
//!
//! Tests in one binary run as threads of one process, so every test here
//! holds `SERIAL` for its whole body: no other fd is opened or closed while
//! a test counts.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};

use waypass_protocol::{
    Arg, ArgDesc, ArgKind, Connection, ConnectionError, Flush, Header, Limits, MessageDesc, Recv,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_fds() -> usize {
    // The directory's own fd is counted every time, so it cancels out.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

const fn fd_arg(name: &'static str) -> ArgDesc {
    ArgDesc {
        name,
        kind: ArgKind::Fd,
        nullable: false,
        interface: None,
    }
}

static ONE_FD: MessageDesc = MessageDesc {
    name: "one_fd",
    since: 1,
    destructor: false,
    args: &[fd_arg("fd")],
};
static THREE_FDS: MessageDesc = MessageDesc {
    name: "three_fds",
    since: 1,
    destructor: false,
    args: &[fd_arg("a"), fd_arg("b"), fd_arg("c")],
};

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

fn memfds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|i| {
            memfd::MemfdOptions::default()
                .create(format!("leak-{i}"))
                .unwrap()
                .into_file()
                .into()
        })
        .collect()
}

fn fd_args(fds: &[OwnedFd]) -> Vec<Arg<'_, BorrowedFd<'_>>> {
    fds.iter().map(|f| Arg::Fd(f.as_fd())).collect()
}

fn lookup(desc: &'static MessageDesc) -> impl FnOnce(&Header) -> Result<&'static MessageDesc, ()> {
    move |_| Ok(desc)
}

/// Sends one three-fd message from `a` and closes the caller's copies, so
/// that the only copies left are in flight.
fn send_three_in_flight(a: &mut Connection) {
    let files = memfds(3);
    a.send(2, 0, &THREE_FDS, &fd_args(&files)).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
}

#[test]
fn control_truncation_closes_the_fds_that_arrived() {
    let _serial = serial();
    let base = open_fds();
    let (mut a, mut b) = pair();
    send_three_in_flight(&mut a);
    assert_eq!(open_fds(), base + 2);
    let err = b.recv_with_fd_capacity(1).unwrap_err();
    assert!(matches!(err, ConnectionError::ControlTruncated), "{err:?}");
    // Closed at the error, not only when the connection is dropped.
    assert_eq!(open_fds(), base + 2);
    drop((a, b));
    assert_eq!(open_fds(), base);
}

#[test]
fn the_in_fds_cap_closes_the_refused_fds() {
    let _serial = serial();
    let base = open_fds();
    let mut limits = Limits::default();
    limits.max_in_fds = 2;
    let (mut a, mut b) = pair_with(Limits::default(), limits);
    send_three_in_flight(&mut a);
    let err = b.recv().unwrap_err();
    assert!(matches!(err, ConnectionError::InFdsOverCap), "{err:?}");
    assert_eq!(open_fds(), base + 2);
    drop((a, b));
    assert_eq!(open_fds(), base);
}

#[test]
fn the_out_caps_leave_no_duplicate_behind() {
    let _serial = serial();
    let base = open_fds();
    let mut limits = Limits::default();
    limits.max_out_fds = 2;
    limits.max_out_bytes = 8;
    let (mut a, b) = pair_with(limits, Limits::default());
    let files = memfds(3);
    a.send(2, 0, &ONE_FD, &fd_args(&files[..1])).unwrap();
    assert_eq!(open_fds(), base + 2 + 3 + 1);
    // Three more fds would pass the fd cap.
    let err = a.send(2, 0, &THREE_FDS, &fd_args(&files)).unwrap_err();
    assert!(matches!(err, ConnectionError::OutFdsOverCap), "{err:?}");
    // One more fd fits, but 8 more bytes would pass the byte cap.
    let err = a.send(2, 0, &ONE_FD, &fd_args(&files[1..2])).unwrap_err();
    assert!(matches!(err, ConnectionError::OutBytesOverCap), "{err:?}");
    assert_eq!(open_fds(), base + 2 + 3 + 1);
    drop((a, b, files));
    assert_eq!(open_fds(), base);
}

#[test]
fn dropping_connections_closes_fds_queued_in_and_out() {
    let _serial = serial();
    let base = open_fds();
    let (mut a, mut b) = pair();
    let files = memfds(4);
    for f in &files {
        a.send(2, 0, &ONE_FD, &[Arg::Fd(f.as_fd())]).unwrap();
    }
    a.flush().unwrap();
    assert_eq!(b.recv().unwrap(), Recv::Data(32));
    // One message decoded and dropped: its fd is closed with it.
    drop(b.next_message(lookup(&ONE_FD)).unwrap().unwrap());
    assert_eq!(b.split().0.queued_fds(), 3);
    // More queued on both sides and never flushed.
    for f in &files {
        a.send(2, 0, &ONE_FD, &[Arg::Fd(f.as_fd())]).unwrap();
        b.send(3, 0, &ONE_FD, &[Arg::Fd(f.as_fd())]).unwrap();
    }
    assert_eq!(open_fds(), base + 2 + 4 + 3 + 8);
    drop((a, b, files));
    assert_eq!(open_fds(), base);
}

#[test]
fn a_closed_peer_leaves_no_fd_open() {
    let _serial = serial();
    let base = open_fds();
    let (mut a, mut b) = pair();
    send_three_in_flight(&mut a);
    drop(a);
    assert_eq!(b.recv().unwrap(), Recv::Data(8));
    assert!(matches!(b.recv(), Err(ConnectionError::Closed)));
    // Flushing fds to the closed peer fails; the duplicates stay queued.
    let files = memfds(1);
    b.send(3, 0, &ONE_FD, &fd_args(&files)).unwrap();
    assert!(matches!(b.flush(), Err(ConnectionError::Closed)));
    drop((b, files));
    assert_eq!(open_fds(), base);
}

#[test]
fn a_burst_of_fds_leaves_no_fd_open() {
    let _serial = serial();
    let base = open_fds();
    let (mut a, mut b) = pair();
    let files = memfds(100);
    for f in &files {
        a.send(2, 0, &ONE_FD, &[Arg::Fd(f.as_fd())]).unwrap();
    }
    assert_eq!(a.flush().unwrap(), Flush::Done);
    let mut received = Vec::new();
    while received.len() < 100 {
        assert!(matches!(b.recv().unwrap(), Recv::Data(_)));
        while let Some(mut m) = b.next_message(lookup(&ONE_FD)).unwrap() {
            let Some(Arg::Fd(fd)) = m.args.pop() else {
                panic!("no fd")
            };
            received.push(fd);
        }
    }
    assert_eq!(open_fds(), base + 2 + 200);
    drop((a, b, files, received));
    assert_eq!(open_fds(), base);
}

#[test]
fn send_now_makes_no_duplicate_when_the_message_leaves_at_once() {
    let _serial = serial();
    let base = open_fds();
    let (mut a, mut b) = pair();
    let files = memfds(3);
    assert_eq!(open_fds(), base + 2 + 3);
    for f in &files {
        let flush = a.send_now(2, 0, &ONE_FD, &[Arg::Fd(f.as_fd())]).unwrap();
        assert_eq!(flush, Flush::Done);
        // In flight, and not one duplicate of ours left open.
        assert_eq!(open_fds(), base + 2 + 3);
    }
    drop(files);
    let mut received = Vec::new();
    while received.len() < 3 {
        assert!(matches!(b.recv().unwrap(), Recv::Data(_)));
        while let Some(m) = b.next_message(lookup(&ONE_FD)).unwrap() {
            received.extend(m.args.into_iter().filter_map(|a| match a {
                Arg::Fd(fd) => Some(fd),
                _ => None,
            }));
        }
    }
    assert_eq!(open_fds(), base + 2 + 3);
    drop((a, b, received));
    assert_eq!(open_fds(), base);
}

#[test]
fn send_owned_fds_are_closed_once_sent_refused_or_dropped_with_the_queue() {
    let _serial = serial();
    let base = open_fds();
    let mut limits = Limits::default();
    limits.max_out_fds = 2;
    let (mut a, b) = pair_with(limits, Limits::default());
    let mut files = memfds(5).into_iter();
    assert_eq!(open_fds(), base + 2 + 5);
    let three = files.by_ref().take(3).map(Arg::Fd).collect();
    let err = a.send_owned(2, 0, &THREE_FDS, three).unwrap_err();
    assert!(matches!(err, ConnectionError::OutFdsOverCap), "{err:?}");
    assert_eq!(open_fds(), base + 2 + 2, "refused: all three closed");
    a.send_owned(2, 0, &ONE_FD, vec![Arg::Fd(files.next().unwrap())])
        .unwrap();
    assert_eq!(open_fds(), base + 2 + 2, "queued as it is: no duplicate");
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(
        open_fds(),
        base + 2 + 1,
        "sent: ours closed (one memfd left to send)"
    );
    // Queued and never sent: closed with the connection.
    a.send_owned(2, 0, &ONE_FD, vec![Arg::Fd(files.next().unwrap())])
        .unwrap();
    assert_eq!(open_fds(), base + 2 + 1);
    drop((a, b));
    assert_eq!(open_fds(), base);
}
