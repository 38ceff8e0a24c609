//! Limits and failures: every cap, malformed input, closed peers, the
//! memory an idle connection holds, and how errors read.

use super::*;

#[test]
fn in_bytes_cap_is_enforced() {
    let limits = Limits {
        max_in_bytes: 16,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(Limits::default(), limits);
    a.send(1, 0, &BLOB, &[Arg::Array(&[7; 20])]).unwrap();
    a.flush().unwrap();
    assert_eq!(b.recv().unwrap(), Recv::Data(16));
    assert!(b.next_message(fixed(&BLOB)).unwrap().is_none());
    let err = b.recv().unwrap_err();
    assert!(matches!(err, ConnectionError::InBytesOverCap), "{err:?}");
}

#[test]
fn a_message_exactly_at_the_in_bytes_cap_is_accepted() {
    let limits = Limits {
        max_in_bytes: 32,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(Limits::default(), limits);
    a.send(1, 0, &BLOB, &[Arg::Array(&[7; 20])]).unwrap();
    a.flush().unwrap();
    receive(&mut b, &BLOB, 1, |m| {
        assert!(matches!(m.args[..], [Arg::Array(x)] if x == [7; 20]))
    });
}

#[test]
fn in_fds_cap_is_enforced_and_the_refused_fds_are_closed() {
    let limits = Limits {
        max_in_fds: 2,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(Limits::default(), limits);
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| pipe()).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = pipes.iter().map(|p| Arg::Fd(p.1.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    a.flush().unwrap();
    let read_ends: Vec<OwnedFd> = pipes.into_iter().map(|(r, _w)| r).collect();

    let err = b.recv().unwrap_err();
    assert!(matches!(err, ConnectionError::InFdsOverCap), "{err:?}");
    assert_eq!(b.split().0.queued_fds(), 0);
    for r in read_ends {
        assert!(write_end_closed(r));
    }
}

#[test]
fn exactly_the_in_fds_cap_is_accepted() {
    let limits = Limits {
        max_in_fds: 3,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(Limits::default(), limits);
    let files: Vec<OwnedFd> = (0..3).map(|i| memfd(&format!("at-cap-{i}"))).collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = files.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    a.send(6, 0, &THREE_FDS, &args).unwrap();
    a.flush().unwrap();
    assert_eq!(b.recv().unwrap(), Recv::Data(8));
    assert_eq!(b.split().0.queued_fds(), 3);
}

#[test]
fn out_bytes_cap_is_enforced() {
    let limits = Limits {
        max_out_bytes: 20,
        ..Limits::default()
    };
    let (mut a, mut b) = pair_with(limits, Limits::default());
    a.send(1, 0, &WORD, &[Arg::Uint(1)]).unwrap();
    let err = a.send(1, 0, &WORD, &[Arg::Uint(2)]).unwrap_err();
    assert!(matches!(err, ConnectionError::OutBytesOverCap), "{err:?}");
    assert_eq!(a.split().1.queued_bytes(), 12);
    a.flush().unwrap();
    receive(&mut b, &WORD, 1, |m| {
        assert!(matches!(m.args[..], [Arg::Uint(1)]))
    });
    assert_eq!(b.recv().unwrap(), Recv::WouldBlock);
}

#[test]
fn out_fds_cap_is_enforced() {
    let limits = Limits {
        max_out_fds: 2,
        ..Limits::default()
    };
    let (mut a, _b) = pair_with(limits, Limits::default());
    let file = memfd("out-cap");
    for i in 0..2 {
        a.send(1, 0, &ONE_FD, &[Arg::Uint(i), Arg::Fd(file.as_fd())])
            .unwrap();
    }
    let err = a
        .send(1, 0, &ONE_FD, &[Arg::Uint(2), Arg::Fd(file.as_fd())])
        .unwrap_err();
    assert!(matches!(err, ConnectionError::OutFdsOverCap), "{err:?}");
    let out = a.split().1;
    assert_eq!((out.queued_bytes(), out.queued_fds()), (24, 2));
}

#[test]
fn a_message_with_more_fds_than_one_sendmsg_carries_is_refused() {
    let (mut a, _b) = pair();
    let file = memfd("too-many");
    let args: Vec<Arg<'_, BorrowedFd<'_>>> =
        (0..=MAX_FDS_OUT).map(|_| Arg::Fd(file.as_fd())).collect();
    let err = a.send(1, 0, &TOO_MANY_FDS, &args).unwrap_err();
    assert!(matches!(err, ConnectionError::OutFdsOverCap), "{err:?}");
    assert!(!a.has_pending_output());
    assert_eq!(a.heap_bytes(), 0);
}

#[test]
fn an_encode_error_queues_nothing() {
    let (mut a, _b) = pair();
    let err = a.send(1, 0, &WORD, &[Arg::Int(1)]).unwrap_err();
    assert!(matches!(err, ConnectionError::Encode(_)), "{err:?}");
    assert!(err.source().is_some());
    assert!(!a.has_pending_output());
    assert_eq!(a.heap_bytes(), 0);
}

#[test]
fn malformed_headers_lookup_failures_and_missing_fds_are_errors() {
    let (mut raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    let mut bytes = [0u8; 12];
    crate::wire::encode(4, 0, &WORD, &[Arg::Uint(1)], &mut bytes).unwrap();
    raw.write_all(&bytes).unwrap();
    b.recv().unwrap();
    let lookup = b.next_message(|_| Err::<&'static MessageDesc, _>("no such object"));
    assert!(matches!(lookup, Err(NextError::Lookup("no such object"))));
    // The same bytes read as a message that carries an fd: it never came.
    let missing = b.next_message(|_| Ok::<_, &str>(&ONE_FD)).unwrap_err();
    assert!(matches!(
        missing,
        NextError::Decode(DecodeError::NeedFds {
            needed: 1,
            queued: 0
        })
    ));
    assert!(missing.to_string().starts_with("missing fd"));

    let (mut raw, peer) = UnixStream::pair().unwrap();
    let mut b = Connection::new(peer).unwrap();
    raw.write_all(&[1, 0, 0, 0, 0, 0, 4, 0]).unwrap();
    b.recv().unwrap();
    let bad = b.next_message(fixed(&WORD)).unwrap_err();
    assert!(
        matches!(bad, NextError::Malformed(Malformed::SizeTooSmall(4))),
        "{bad:?}"
    );
}

#[test]
fn idle_connections_hold_no_heap_buffers() {
    let (mut a, mut b) = pair();
    let file = memfd("idle");
    assert_eq!((a.heap_bytes(), b.heap_bytes()), (0, 0));
    a.send(1, 0, &ONE_FD, &[Arg::Uint(1), Arg::Fd(file.as_fd())])
        .unwrap();
    assert!(a.heap_bytes() > 0);
    a.flush().unwrap();
    assert_eq!(a.heap_bytes(), 0);
    receive(&mut b, &ONE_FD, 1, |m| drop(m));
    // `receive` stopped at `Ok(None)`, which releases the drained buffers.
    assert_eq!(b.heap_bytes(), 0);
    assert_eq!(b.recv().unwrap(), Recv::WouldBlock);
    assert_eq!(b.heap_bytes(), 0);
    // The struct itself is small: a few hundred bytes per idle client (and
    // the socket's `Arc`, 24 bytes, shared with the server's event loop).
    assert!(
        std::mem::size_of::<Connection>() <= 336,
        "{}",
        std::mem::size_of::<Connection>()
    );
}

#[test]
fn errors_display_lowercase_without_repeating_the_io_error() {
    let io = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
    let all = [
        ConnectionError::Closed,
        ConnectionError::ControlTruncated,
        ConnectionError::InBytesOverCap,
        ConnectionError::InFdsOverCap,
        ConnectionError::OutBytesOverCap,
        ConnectionError::OutFdsOverCap,
        ConnectionError::Encode(crate::wire::EncodeError::TooLarge { size: 5000 }),
        ConnectionError::DupFd(io()),
        ConnectionError::Send(io()),
        ConnectionError::Recv(io()),
    ];
    for e in &all {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        assert!(
            !text.contains("broken pipe") && !text.contains("5000"),
            "{text}"
        );
    }
    for e in &all[6..] {
        assert!(e.source().is_some(), "{e}");
    }
    assert!(all[0].source().is_none());
}

#[test]
fn limits_reads_back_what_the_connection_was_built_with() {
    let limits = Limits {
        max_in_bytes: 16,
        max_out_fds: 3,
        ..Limits::default()
    };
    let (a, b) = pair_with(Limits::default(), limits);
    assert_eq!(b.limits(), limits);
    assert_eq!(a.limits(), Limits::default());
}

#[test]
fn a_connection_error_in_next_error_chains_to_its_own_cause() {
    let cause = io::Error::other("the socket broke");
    let err: NextError<io::Error> = NextError::Connection(ConnectionError::Recv(cause));
    let source = err.source().expect("the connection error's own cause");
    assert_eq!(source.to_string(), "the socket broke");
}
