//! Fds a peer attaches to `waypass_peer_v1.text` messages, counted in
//! `/proc/self/fd`: the listener must not hold them.
//!
//! Issue 10, point 2: a peer that sends `text` with 253 fds, again and
//! again, used to leave them queued in the receiving [`PeerChannel`] (up to
//! 1,024 per channel), so a few channels exhausted the listener's fd limit.
//! What this checks: the channel drops that peer with a fatal error, every
//! one of those fds is closed before the channel itself is dropped, and
//! another channel of the same process carries on.
//!
//! One test in this binary: nothing else opens or closes fds while it counts.

use std::fs::File;
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use waypass_protocol::protocols::broker::waypass_peer_v1::{req, INTERFACE};
use waypass_protocol::protocols::broker::PEER_OBJECT_ID as OBJECT_ID;
use waypass_protocol::{wire, Arg, ChannelError, ConnectionError, PeerChannel, PeerMessage};

fn open_fds() -> usize {
    // The directory's own fd is counted every time, so it cancels out.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// `text(serial, "hi")`, encoded with the protocol crate's table.
fn text(serial: u32) -> Vec<u8> {
    let desc = &INTERFACE.requests[usize::from(req::TEXT)];
    let mut out = vec![0u8; wire::MAX_MESSAGE_SIZE];
    let args = [Arg::Uint(serial), Arg::Str(Some(c"hi"))];
    let n = wire::encode(OBJECT_ID, req::TEXT, desc, &args, &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn fds_sent_with_text_are_closed_and_only_that_peer_is_dropped() {
    let timeout = Some(Duration::from_secs(10));
    let (hostile, listener_end) = UnixStream::pair().unwrap();
    let mut listener = PeerChannel::new(listener_end).unwrap();
    let (good_a, good_b) = UnixStream::pair().unwrap();
    let (mut good_a, mut good_b) = (
        PeerChannel::new(good_a).unwrap(),
        PeerChannel::new(good_b).unwrap(),
    );
    let spare = File::open("/dev/null").unwrap();
    let raw: Vec<i32> = (0..253).map(|_| spare.as_raw_fd()).collect();
    let base = open_fds();

    // Four sendmsgs of text + 253 fds: 1,012 fds at the listener before.
    for serial in 1..=4 {
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let bytes = text(serial);
        sendmsg::<()>(
            hostile.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }
    let mut texts = 0;
    let err = loop {
        match listener.recv(timeout) {
            Ok(Some(PeerMessage::Text { text, .. })) if text == "hi" => texts += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    let held = open_fds() - base;
    println!("fatal after {texts} text(s): {err}; fds still held: {held}");
    assert!(err.is_fatal(), "{err:?}");
    assert!(
        matches!(
            err,
            ChannelError::Connection(ConnectionError::UnclaimedFds {
                queued: 253,
                max: 28
            })
        ),
        "{err:?}"
    );
    assert_eq!(held, 0, "every fd the peer sent is closed");
    drop(listener);
    drop(hostile);

    // The process's other channel is untouched.
    let serial = good_a.send_text("still here").unwrap();
    match good_b.recv(timeout).unwrap() {
        Some(PeerMessage::Text { text, .. }) => assert_eq!(text, "still here"),
        other => panic!("unexpected {other:?}"),
    }
    good_b.ack(serial).unwrap();
    good_a.wait_ack(serial, timeout).unwrap();
    assert_eq!(open_fds(), base - 2, "the two ends of the hostile channel");
}
