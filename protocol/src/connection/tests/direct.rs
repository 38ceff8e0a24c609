//! [`Connection::send_now`], [`Connection::send_owned`] and
//! [`Connection::recv_wait`]: fds sent without a duplicate, fds handed
//! over and closed once sent, and waits inside `recvmsg` that end by their
//! deadline.

use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use nix::sys::socket::{send, MsgFlags};

use super::*;

/// Long enough never to pass on a loaded machine; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

/// `WORD` (opcode 0) and `ONE_FD` (opcode 1), by opcode.
fn by_opcode(h: &Header) -> Result<&'static MessageDesc, ()> {
    Ok(if h.opcode == 0 { &WORD } else { &ONE_FD })
}

/// Fills `conn`'s socket with `WORD` messages written past its queue,
/// until the kernel takes no more; returns how many.
fn fill_socket(conn: &Connection) -> usize {
    let word = [1u32, 12 << 16, 7]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect::<Vec<u8>>();
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    let mut count = 0;
    loop {
        match send(conn.as_fd().as_raw_fd(), &word, flags) {
            Ok(12) => count += 1,
            Err(nix::errno::Errno::EAGAIN) => return count,
            other => panic!("filling the socket: {other:?}"),
        }
    }
}

/// Receives every message until `n` `ONE_FD`s have arrived; returns them
/// as (index, fd), after checking that every other message was a `WORD`.
fn receive_fds(b: &mut Connection, a: &mut Connection, n: usize) -> Vec<(u32, OwnedFd)> {
    let mut fds = Vec::new();
    while fds.len() < n {
        a.flush().unwrap();
        if b.recv_wait(Some(Instant::now() + PATIENCE)).unwrap() == Recv::WouldBlock {
            continue;
        }
        while let Some(m) = b.next_message(by_opcode).unwrap() {
            let mut args = m.args.into_iter();
            match (m.opcode, args.next(), args.next()) {
                (0, Some(Arg::Uint(_)), None) => {}
                (1, Some(Arg::Uint(i)), Some(Arg::Fd(fd))) => fds.push((i, fd)),
                other => panic!("unexpected message {other:?}"),
            }
        }
    }
    fds
}

#[test]
fn send_now_passes_the_callers_fd_straight_through() {
    let (mut a, mut b) = pair();
    let file = memfd("direct");
    let flush = a.send_now(2, 1, &ONE_FD, &[Arg::Uint(5), Arg::Fd(file.as_fd())]);
    assert_eq!(flush.unwrap(), Flush::Done);
    // Nothing was queued, so no duplicate was made to queue.
    assert_eq!(a.split().1.queued_fds(), 0);
    assert!(!a.has_pending_output());
    let got = receive_fds(&mut b, &mut a, 1);
    assert_eq!(got[0].0, 5);
    assert_eq!(dev_ino(got[0].1.as_fd()), dev_ino(file.as_fd()));
}

#[test]
fn send_now_on_a_full_socket_queues_a_duplicate_that_is_closed_once_sent() {
    let (mut a, mut b) = pair();
    // A blocking wait first: the socket's file is then in blocking mode, and
    // the sends below must still not block.
    assert_eq!(a.recv_wait(Some(Instant::now())).unwrap(), Recv::WouldBlock);
    assert_eq!(
        a.recv_wait(Some(Instant::now() + Duration::from_millis(1)))
            .unwrap(),
        Recv::WouldBlock
    );
    let words = fill_socket(&a);
    assert!(words > 0);
    let (read_end, write_end) = pipe();
    let flush = a.send_now(2, 1, &ONE_FD, &[Arg::Uint(9), Arg::Fd(write_end.as_fd())]);
    assert_eq!(flush.unwrap(), Flush::WouldBlock);
    assert_eq!(
        a.split().1.queued_fds(),
        1,
        "a duplicate waits in the queue"
    );
    let expected = dev_ino(write_end.as_fd());
    drop(write_end);
    let got = receive_fds(&mut b, &mut a, 1);
    assert_eq!((got[0].0, dev_ino(got[0].1.as_fd())), (9, expected));
    assert!(!a.has_pending_output());
    drop(got);
    assert!(
        write_end_closed(read_end),
        "the queued duplicate was closed"
    );
}

#[test]
fn send_now_behind_queued_output_keeps_the_order() {
    let (mut a, mut b) = pair();
    a.send(1, 0, &WORD, &[Arg::Uint(1)]).unwrap();
    let file = memfd("behind");
    let flush = a.send_now(2, 1, &ONE_FD, &[Arg::Uint(2), Arg::Fd(file.as_fd())]);
    assert_eq!(flush.unwrap(), Flush::Done);
    assert_eq!(b.recv().unwrap(), Recv::Data(12 + 12));
    let first = b.next_message(by_opcode).unwrap().unwrap();
    assert_eq!((first.sender, first.opcode), (1, 0));
    let second = b.next_message(by_opcode).unwrap().unwrap();
    assert_eq!((second.sender, second.opcode), (2, 1));
}

#[test]
fn send_owned_closes_the_fd_once_it_is_sent() {
    let (mut a, mut b) = pair();
    let (read_end, write_end) = pipe();
    let expected = dev_ino(write_end.as_fd());
    a.send_owned(2, 1, &ONE_FD, vec![Arg::Uint(3), Arg::Fd(write_end)])
        .unwrap();
    assert_eq!(a.split().1.queued_fds(), 1);
    assert_eq!(a.flush().unwrap(), Flush::Done);
    let got = receive_fds(&mut b, &mut a, 1);
    assert_eq!((got[0].0, dev_ino(got[0].1.as_fd())), (3, expected));
    drop(got);
    assert!(write_end_closed(read_end), "ours was closed once sent");
}

#[test]
fn send_owned_refused_by_a_cap_closes_the_fd() {
    let limits = Limits {
        max_out_fds: 0,
        ..Limits::default()
    };
    let (mut a, _b) = pair_with(limits, Limits::default());
    let (read_end, write_end) = pipe();
    let err = a
        .send_owned(2, 1, &ONE_FD, vec![Arg::Uint(3), Arg::Fd(write_end)])
        .unwrap_err();
    assert!(matches!(err, ConnectionError::OutFdsOverCap), "{err:?}");
    assert!(!a.has_pending_output());
    assert!(write_end_closed(read_end));
}

#[test]
fn recv_wait_returns_what_arrives_while_it_waits() {
    let (mut a, mut b) = pair();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        a.send(1, 0, &WORD, &[Arg::Uint(42)]).unwrap();
        assert_eq!(a.flush().unwrap(), Flush::Done);
        a
    });
    let deadline = Instant::now() + PATIENCE;
    while b.recv_wait(Some(deadline)).unwrap() == Recv::WouldBlock {
        assert!(Instant::now() < deadline, "nothing arrived");
    }
    let m = b.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(m.args[..], [Arg::Uint(42)]));
    drop(sender.join().unwrap());
    loop {
        match b.recv_wait(Some(deadline)) {
            Err(ConnectionError::Closed) => break,
            Ok(Recv::WouldBlock) => assert!(Instant::now() < deadline, "no close seen"),
            other => panic!("expected the close, got {other:?}"),
        }
    }
}

#[test]
fn recv_wait_reports_a_close_and_takes_data_after_a_past_deadline() {
    let (mut a, mut b) = pair();
    a.send(1, 0, &WORD, &[Arg::Uint(1)]).unwrap();
    a.flush().unwrap();
    // Past the deadline it still reads what is there, without blocking.
    let past = Instant::now();
    assert_eq!(b.recv_wait(Some(past)).unwrap(), Recv::Data(12));
    assert_eq!(b.recv_wait(Some(past)).unwrap(), Recv::WouldBlock);
    drop(a);
    assert!(matches!(
        b.recv_wait(Some(Instant::now() + PATIENCE)),
        Err(ConnectionError::Closed)
    ));
}

#[test]
fn recv_wait_ends_once_the_deadline_has_passed() {
    let (_a, mut b) = pair();
    let deadline = Instant::now() + Duration::from_millis(30);
    while b.recv_wait(Some(deadline)).unwrap() == Recv::WouldBlock {
        if Instant::now() >= deadline {
            return;
        }
    }
    panic!("nothing was sent");
}

#[test]
fn kept_buffers_stay_allocated_and_a_split_message_still_reassembles() {
    let (mut a, mut b) = pair();
    a.keep_buffers(true);
    b.keep_buffers(true);
    a.send(1, 0, &WORD, &[Arg::Uint(1)]).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert!(a.heap_bytes() > 0, "the sent chunk is kept");
    assert_eq!(b.recv().unwrap(), Recv::Data(12));
    assert!(b.next_message(fixed(&WORD)).unwrap().is_some());
    assert!(b.next_message(fixed(&WORD)).unwrap().is_none());
    assert!(b.heap_bytes() > 0, "the drained buffer is kept");
    // A message cut in two: the tail is moved to the front of the kept
    // buffer and completed by the next read.
    let word = [1u32, 12 << 16, 77].map(u32::to_ne_bytes).concat();
    let raw = a.as_fd().as_raw_fd();
    let flags = MsgFlags::MSG_DONTWAIT;
    assert_eq!(send(raw, &[&word[..], &word[..5]].concat(), flags), Ok(17));
    assert_eq!(b.recv().unwrap(), Recv::Data(17));
    let m = b.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(m.args[..], [Arg::Uint(77)]));
    assert!(b.next_message(fixed(&WORD)).unwrap().is_none());
    assert_eq!(send(raw, &word[5..], flags), Ok(7));
    assert_eq!(b.recv().unwrap(), Recv::Data(7));
    let m = b.next_message(fixed(&WORD)).unwrap().unwrap();
    assert!(matches!(m.args[..], [Arg::Uint(77)]));
    a.keep_buffers(false);
    a.send(1, 0, &WORD, &[Arg::Uint(2)]).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(a.heap_bytes(), 0, "freed again once no longer kept");
}
