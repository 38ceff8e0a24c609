//! What a receive does with control data beyond plain `SCM_RIGHTS`: every
//! fd it takes is close-on-exec, and other `SOL_SOCKET` messages (the
//! kernel's `SCM_CREDENTIALS`) are skipped, never read as fds, whether they
//! come alone or in front of the fds.
//!
//! The walk over a control buffer is also checked on buffers built by hand
//! (`take_fds`), for shapes a kernel never writes but the walk must survive.

use std::mem::size_of;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::libc;
use nix::sys::socket::{setsockopt, sockopt};

use super::super::incoming::{cmsg_space_for_fds, take_fds};
use super::*;

/// Whether `fd` is close-on-exec.
fn cloexec(fd: BorrowedFd<'_>) -> bool {
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
    flags.contains(FdFlag::FD_CLOEXEC)
}

/// A pipe whose ends are *not* close-on-exec: a received copy is
/// close-on-exec only because the receive asked for it.
fn inheritable_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK).unwrap();
    assert!(!cloexec(w.as_fd()));
    (r, w)
}

/// Sends `n` `ONE_FD` messages, each with the write end of an inheritable
/// pipe; returns the pipes.
fn send_inheritable(a: &mut Connection, n: u32) -> Vec<(OwnedFd, OwnedFd)> {
    let pipes: Vec<_> = (0..n).map(|_| inheritable_pipe()).collect();
    for (i, (_, w)) in pipes.iter().enumerate() {
        a.send(1, 0, &ONE_FD, &[Arg::Uint(i as u32), Arg::Fd(w.as_fd())])
            .unwrap();
    }
    assert_eq!(a.flush().unwrap(), Flush::Done);
    pipes
}

/// Decodes every buffered `ONE_FD` message; returns whether each fd was
/// close-on-exec.
fn received_cloexec(b: &mut Connection) -> Vec<bool> {
    let mut seen = Vec::new();
    while let Some(m) = b.next_message(fixed(&ONE_FD)).unwrap() {
        let [Arg::Uint(_), Arg::Fd(fd)] = &m.args[..] else {
            panic!("{:?}", m.args)
        };
        seen.push(cloexec(fd.as_fd()));
    }
    seen
}

#[test]
fn fds_taken_by_a_non_blocking_receive_are_close_on_exec() {
    let (mut a, mut b) = pair();
    let _pipes = send_inheritable(&mut a, 3);
    assert_eq!(b.recv().unwrap(), Recv::Data(36));
    assert_eq!(received_cloexec(&mut b), [true; 3]);
}

#[test]
fn fds_taken_by_a_blocking_receive_are_close_on_exec() {
    let (mut a, mut b) = pair();
    let _pipes = send_inheritable(&mut a, 2);
    assert_eq!(b.recv_wait(None).unwrap(), Recv::Data(24));
    assert_eq!(received_cloexec(&mut b), [true; 2]);
}

#[test]
fn credentials_alone_are_not_taken_for_fds() {
    let (x, y) = UnixStream::pair().unwrap();
    // With SO_PASSCRED, every receive carries the sender's SCM_CREDENTIALS
    // (pid, uid, gid: three ints that must never become fds).
    setsockopt(&y, sockopt::PassCred, &true).unwrap();
    let (mut a, mut b) = (Connection::new(x).unwrap(), Connection::new(y).unwrap());
    a.send(1, 0, &WORD, &[Arg::Uint(7)]).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(b.recv().unwrap(), Recv::Data(12));
    assert_eq!(b.split().0.queued_fds(), 0);
    let m = b.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(m.args[..], [Arg::Uint(7)]));
    assert!(b.next_message(fixed(&WORD)).unwrap().is_none());
}

#[test]
fn fds_behind_credentials_are_taken_and_only_they() {
    let (x, y) = UnixStream::pair().unwrap();
    setsockopt(&y, sockopt::PassCred, &true).unwrap();
    let (mut a, mut b) = (Connection::new(x).unwrap(), Connection::new(y).unwrap());
    let files: Vec<OwnedFd> = (0..3).map(|i| memfd(&format!("cred-{i}"))).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = files.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    // The kernel writes SCM_CREDENTIALS first and SCM_RIGHTS second.
    assert_eq!(b.recv().unwrap(), Recv::Data(8));
    assert_eq!(b.split().0.queued_fds(), 3);
    let m = b.next_message(fixed(&THREE_FDS)).unwrap().unwrap();
    for (arg, file) in m.args.iter().zip(&files) {
        let Arg::Fd(fd) = arg else { panic!("{arg:?}") };
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(file.as_fd()));
    }
}

/// Writes a control message header at `at`: length `len`, `level`, `kind`.
fn put_header(control: &mut [u8], at: usize, len: usize, level: i32, kind: i32) {
    let h = &mut control[at..at + size_of::<libc::cmsghdr>()];
    let len_at = std::mem::offset_of!(libc::cmsghdr, cmsg_len);
    let level_at = std::mem::offset_of!(libc::cmsghdr, cmsg_level);
    let type_at = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
    h[len_at..len_at + size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
    h[level_at..level_at + 4].copy_from_slice(&level.to_ne_bytes());
    h[type_at..type_at + 4].copy_from_slice(&kind.to_ne_bytes());
}

/// `CMSG_LEN(n)`.
fn cmsg_len(data: usize) -> usize {
    // SAFETY: CMSG_LEN is arithmetic on its argument only.
    unsafe { libc::CMSG_LEN(data as libc::c_uint) as usize }
}

#[test]
fn a_second_header_longer_than_what_is_left_ends_the_walk() {
    // Credentials (12 bytes of data, 32 in all), then a header whose length
    // fits the buffer but not what is left after the first message.
    let first = cmsg_space_for_fds(3);
    let mut control = vec![0u8; first + cmsg_space_for_fds(4)];
    put_header(
        &mut control,
        0,
        cmsg_len(12),
        libc::SOL_SOCKET,
        libc::SCM_CREDENTIALS,
    );
    let left = control.len() - first;
    put_header(
        &mut control,
        first,
        left + 4,
        libc::SOL_SOCKET,
        libc::SCM_RIGHTS,
    );
    let mut taken = 0;
    assert_eq!(take_fds(&control, |_| taken += 1), first);
    assert_eq!(taken, 0);
}

#[test]
fn an_empty_control_message_is_stepped_over() {
    // A header with no data, then SCM_RIGHTS with one real fd: the walk
    // goes on past the empty one and takes the fd.
    let fd = memfd("stepped-over");
    let id = dev_ino(fd.as_fd());
    let raw: RawFd = fd.into_raw_fd();
    let empty = cmsg_len(0);
    let mut control = vec![0u8; empty + cmsg_space_for_fds(1)];
    put_header(&mut control, 0, empty, libc::SOL_SOCKET, libc::SCM_RIGHTS);
    put_header(
        &mut control,
        empty,
        cmsg_len(4),
        libc::SOL_SOCKET,
        libc::SCM_RIGHTS,
    );
    control[empty + empty..empty + empty + 4].copy_from_slice(&raw.to_ne_bytes());
    let mut taken = Vec::new();
    take_fds(&control, |fd| taken.push(fd));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].as_raw_fd(), raw);
    assert_eq!(dev_ino(taken[0].as_fd()), id);
}

#[test]
fn every_byte_of_the_level_and_type_counts() {
    // SOL_SOCKET and SCM_RIGHTS are both 1: a level or type that differs
    // from 1 only in a higher byte is another control message, not fds.
    let raw = memfd("never-taken");
    for other in [0x101, 0x1_0001, 0x100_0001] {
        for (level, kind) in [(other, libc::SCM_RIGHTS), (libc::SOL_SOCKET, other)] {
            let mut control = vec![0u8; cmsg_space_for_fds(1)];
            put_header(&mut control, 0, cmsg_len(4), level, kind);
            let at = cmsg_len(0);
            control[at..at + 4].copy_from_slice(&raw.as_raw_fd().to_ne_bytes());
            let mut taken = 0;
            // A wrongly taken fd is still `raw`'s: forget it, never close it.
            take_fds(&control, |fd| {
                taken += 1;
                std::mem::forget(fd);
            });
            assert_eq!(taken, 0, "level {level:#x}, type {kind:#x}");
        }
    }
}
