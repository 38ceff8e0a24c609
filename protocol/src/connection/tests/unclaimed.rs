//! `Limits::max_unclaimed_fds`: fds a peer may leave waiting for a message
//! whose bytes have not arrived, and what happens past it.

use std::io::IoSlice;
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::*;

/// One `sendmsg` of `bytes` with `fds`, bypassing the sender's own rules.
fn send_raw(stream: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert_eq!(sent, bytes.len());
}

fn word(sender: u32, value: u32) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    crate::wire::encode(sender, 0, &WORD, &[Arg::Uint(value)], &mut bytes).unwrap();
    bytes
}

/// `ONE_FD` (opcode 1) without its fd: the header and index only.
fn one_fd_bytes(index: u32) -> [u8; 12] {
    let mut bytes = word(1, index);
    bytes[4..8].copy_from_slice(&((12u32 << 16) | 1).to_ne_bytes());
    bytes
}

/// `WORD` for opcode 0, `ONE_FD` for opcode 1.
fn word_or_one_fd(h: &Header) -> Result<&'static MessageDesc, ()> {
    Ok(if h.opcode == 0 { &WORD } else { &ONE_FD })
}

#[test]
fn fds_sent_with_a_message_that_takes_none_are_closed_past_the_cap() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..MAX_FDS_OUT + 1).map(|_| pipe()).collect();
    let fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|p| p.1.as_fd()).collect();
    send_raw(&raw, &word(1, 7), &fds);
    let read_ends: Vec<OwnedFd> = pipes.into_iter().map(|(r, _w)| r).collect();

    assert_eq!(b.recv().unwrap(), Recv::Data(12));
    assert!(b.next_message(fixed(&WORD)).unwrap().is_some());
    let err = b.next_message(fixed(&WORD)).unwrap_err();
    assert!(
        matches!(
            err,
            NextError::Connection(ConnectionError::UnclaimedFds {
                queued: 29,
                max: 28
            })
        ),
        "{err:?}"
    );
    let NextError::Connection(e) = err else {
        unreachable!()
    };
    assert!(
        e.to_string().starts_with("fds that no message takes"),
        "{e}"
    );
    // Closed at once, not when the connection is dropped.
    assert_eq!(b.split().0.queued_fds(), 0);
    for r in read_ends {
        assert!(write_end_closed(r));
    }
}

#[test]
fn up_to_the_cap_fds_wait_for_their_message_and_are_taken_by_it() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let files: Vec<OwnedFd> = (0..MAX_FDS_OUT).map(|i| memfd(&format!("f{i}"))).collect();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    // The fds travel with a message that takes none, ahead of the 28
    // messages that take them (a sendmsg cut short looks like this).
    send_raw(&raw, &word(1, 7), &fds);
    assert_eq!(b.recv().unwrap(), Recv::Data(12));
    assert!(b.next_message(word_or_one_fd).unwrap().is_some());
    assert!(b.next_message(word_or_one_fd).unwrap().is_none());
    assert_eq!(b.split().0.queued_fds(), MAX_FDS_OUT);

    let rest: Vec<u8> = (0..MAX_FDS_OUT as u32).flat_map(one_fd_bytes).collect();
    send_raw(&raw, &rest, &[]);
    let mut got = 0;
    assert!(matches!(b.recv().unwrap(), Recv::Data(_)));
    while let Some(m) = b.next_message(word_or_one_fd).unwrap() {
        let [Arg::Uint(index), Arg::Fd(fd)] = &m.args[..] else {
            panic!("{m:?}")
        };
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(files[*index as usize].as_fd()));
        got += 1;
    }
    assert_eq!(got, MAX_FDS_OUT);
    assert_eq!(b.split().0.queued_fds(), 0);
}

#[test]
fn a_message_split_across_sendmsgs_keeps_the_fds_sent_with_its_first_part() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let file = memfd("split");
    let bytes = one_fd_bytes(0);
    send_raw(&raw, &bytes[..5], &[file.as_fd()]);
    assert_eq!(b.recv().unwrap(), Recv::Data(5));
    assert!(b.next_message(fixed(&ONE_FD)).unwrap().is_none());
    send_raw(&raw, &bytes[5..], &[]);
    receive(&mut b, &ONE_FD, 1, |m| {
        let [Arg::Uint(0), Arg::Fd(fd)] = &m.args[..] else {
            panic!("{m:?}")
        };
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(file.as_fd()));
    });
}

#[test]
fn the_cap_is_a_limit_of_the_connection() {
    let limits = Limits {
        max_unclaimed_fds: 0,
        ..Limits::default()
    };
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::with_limits(peer, limits).unwrap();
    let (r, w) = pipe();
    send_raw(&raw, &word(1, 7), &[w.as_fd()]);
    drop(w);
    b.recv().unwrap();
    assert!(b.next_message(fixed(&WORD)).unwrap().is_some());
    let err = b.next_message(fixed(&WORD)).unwrap_err();
    assert!(
        matches!(
            err,
            NextError::Connection(ConnectionError::UnclaimedFds { queued: 1, max: 0 })
        ),
        "{err:?}"
    );
    assert!(write_end_closed(r));
    assert_eq!(Limits::default().max_unclaimed_fds, MAX_FDS_OUT);
}

#[test]
fn set_caps_changes_the_cap_of_a_live_connection() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    b.set_caps(Limits::default().max_out_bytes, 1);
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..2).map(|_| pipe()).collect();
    let fds: Vec<BorrowedFd<'_>> = pipes.iter().map(|p| p.1.as_fd()).collect();
    send_raw(&raw, &word(1, 7), &fds);
    b.recv().unwrap();
    assert!(b.next_message(fixed(&WORD)).unwrap().is_some());
    let err = b.next_message(fixed(&WORD)).unwrap_err();
    assert!(
        matches!(
            err,
            NextError::Connection(ConnectionError::UnclaimedFds { queued: 2, max: 1 })
        ),
        "{err:?}"
    );
}

#[test]
fn discard_drops_what_was_received_and_closes_its_fds() {
    let (raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let (r, w) = pipe();
    // A whole message and the start of the next, with an fd.
    send_raw(
        &raw,
        &[&word(1, 7)[..], &word(1, 8)[..6]].concat(),
        &[w.as_fd()],
    );
    drop(w);
    assert_eq!(b.recv().unwrap(), Recv::Data(18));
    b.discard();
    let incoming = b.split().0;
    assert_eq!((incoming.buffered_bytes(), incoming.queued_fds()), (0, 0));
    assert!(write_end_closed(r));
    assert!(b.next_message(fixed(&WORD)).unwrap().is_none());
}
