//! [`Connection::fds_in_flight`]: fds sent that the peer has not read.

use super::*;

/// Sends one `ONE_FD` message per flush (one skb each); returns the files.
fn send_one_by_one(a: &mut Connection, n: u32) -> Vec<OwnedFd> {
    let files: Vec<OwnedFd> = (0..n).map(|i| memfd(&format!("f{i}"))).collect();
    for (i, f) in files.iter().enumerate() {
        a.send(1, 0, &ONE_FD, &[Arg::Uint(i as u32), Arg::Fd(f.as_fd())])
            .unwrap();
        assert_eq!(a.flush().unwrap(), Flush::Done);
    }
    files
}

#[test]
fn fds_count_until_the_peer_reads_them() {
    let (mut a, mut b) = pair();
    a.track_fds_in_flight();
    assert_eq!(a.fds_in_flight(), 0);
    let _files = send_one_by_one(&mut a, 3);
    assert_eq!(a.fds_in_flight(), 3);
    // One recvmsg stops after the first skb that carries fds.
    assert!(matches!(b.recv().unwrap(), Recv::Data(12)));
    assert_eq!(a.fds_in_flight(), 2);
    assert!(b.next_message(fixed(&ONE_FD)).unwrap().is_some());
    receive(&mut b, &ONE_FD, 2, |m| drop(m));
    assert_eq!(a.fds_in_flight(), 0);
}

#[test]
fn queued_fds_count_and_a_send_now_is_logged_too() {
    let (mut a, mut b) = pair();
    a.track_fds_in_flight();
    let file = memfd("now");
    let args = [Arg::Uint(0), Arg::Fd(file.as_fd())];
    assert_eq!(a.send_now(1, 0, &ONE_FD, &args).unwrap(), Flush::Done);
    a.send(1, 0, &ONE_FD, &args).unwrap();
    assert_eq!(a.split().1.fds_in_flight(), 2, "one sent, one queued");
    a.flush().unwrap();
    receive(&mut b, &ONE_FD, 2, |m| drop(m));
    assert_eq!(a.fds_in_flight(), 0);
}

#[test]
fn without_tracking_only_queued_fds_count() {
    let (mut a, _b) = pair();
    let _files = send_one_by_one(&mut a, 2);
    assert_eq!(a.fds_in_flight(), 0);
}
