//! How many fds one `sendmsg` carries: exactly [`MAX_FDS_OUT`] in one
//! message or in one batch of messages, and more than that queued across
//! several chunks, split at a message boundary inside a chunk.

use super::*;

static MAX_FDS_ARGS: [ArgDesc; MAX_FDS_OUT] = [arg("fd", ArgKind::Fd); MAX_FDS_OUT];
static MAX_FDS: MessageDesc = crate::interface::msg("max_fds", 1, &MAX_FDS_ARGS);
static BLOB_FD: MessageDesc = crate::interface::msg(
    "blob_fd",
    1,
    &[arg("a", ArgKind::Array), arg("fd", ArgKind::Fd)],
);

#[test]
fn a_message_with_exactly_the_most_fds_travels_in_one_sendmsg() {
    let (mut a, mut b) = pair();
    let files: Vec<OwnedFd> = (0..MAX_FDS_OUT)
        .map(|i| memfd(&format!("max-{i}")))
        .collect();
    let args: Vec<Arg<'_, BorrowedFd<'_>>> = files.iter().map(|f| Arg::Fd(f.as_fd())).collect();
    a.send(1, 0, &MAX_FDS, &args).unwrap();
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(b.recv().unwrap(), Recv::Data(8));
    assert_eq!(b.split().0.queued_fds(), MAX_FDS_OUT);
    let m = b.next_message(fixed(&MAX_FDS)).unwrap().unwrap();
    assert_eq!(m.args.len(), MAX_FDS_OUT);
    for (arg, file) in m.args.iter().zip(&files) {
        let Arg::Fd(fd) = arg else { panic!("{arg:?}") };
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(file.as_fd()));
    }
}

#[test]
fn a_batch_takes_exactly_the_most_fds_and_the_next_one_waits() {
    let (mut a, mut b) = pair();
    let count = MAX_FDS_OUT + 1;
    let files: Vec<OwnedFd> = (0..count).map(|i| memfd(&format!("batch-{i}"))).collect();
    for (i, f) in files.iter().enumerate() {
        a.send(1, 0, &ONE_FD, &[Arg::Uint(i as u32), Arg::Fd(f.as_fd())])
            .unwrap();
    }
    assert_eq!(a.flush().unwrap(), Flush::Done);
    // A recvmsg never returns the fds of two sendmsgs: the first carried
    // 28 fds with exactly their messages, the second the last one.
    assert_eq!(b.recv().unwrap(), Recv::Data(MAX_FDS_OUT * 12));
    assert_eq!(b.split().0.queued_fds(), MAX_FDS_OUT);
    let mut next = 0;
    while let Some(m) = b.next_message(fixed(&ONE_FD)).unwrap() {
        let [Arg::Uint(i), Arg::Fd(fd)] = &m.args[..] else {
            panic!("{:?}", m.args)
        };
        assert_eq!(*i, next as u32);
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(files[next].as_fd()));
        next += 1;
    }
    assert_eq!(next, MAX_FDS_OUT);
    assert_eq!(b.recv().unwrap(), Recv::Data(12));
    assert_eq!(b.split().0.queued_fds(), 1);
}

#[test]
fn fds_queued_across_many_chunks_go_with_their_own_messages() {
    let (mut a, mut b) = pair();
    // Three 1,300-byte messages per 4 KiB chunk: the 28th fd's message ends
    // inside a chunk, so the first sendmsg stops in the middle of one.
    let count = 70;
    let files: Vec<OwnedFd> = (0..count).map(|i| memfd(&format!("chunked-{i}"))).collect();
    let mut payload = [0u8; 1284];
    for (i, f) in files.iter().enumerate() {
        payload[..4].copy_from_slice(&(i as u32).to_ne_bytes());
        a.send(1, 0, &BLOB_FD, &[Arg::Array(&payload), Arg::Fd(f.as_fd())])
            .unwrap();
    }
    assert_eq!(a.split().1.queued_fds(), count);
    assert_eq!(a.flush().unwrap(), Flush::Done);
    assert_eq!(a.split().1.queued_fds(), 0);

    let mut next = 0;
    receive(&mut b, &BLOB_FD, count, |m| {
        let [Arg::Array(bytes), Arg::Fd(fd)] = &m.args[..] else {
            panic!("{:?}", m.args)
        };
        assert_eq!(bytes[..4], (next as u32).to_ne_bytes());
        assert_eq!(dev_ino(fd.as_fd()), dev_ino(files[next].as_fd()));
        next += 1;
    });
    assert_eq!(b.split().0.queued_fds(), 0);
}
