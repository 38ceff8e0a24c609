//! A hostile peer against [`PeerChannel::wait_ack`]: it floods texts or
//! file offers and never answers. The waiting end must stop at the inbox
//! caps with the fatal `InboxFull`, its memory and fds bounded, and the
//! flooder must see the channel shut (issue 10, point 8).
//!
//! The flooder is a raw blocking socket in a thread, writing hand-made
//! `waypass_peer_v1` messages. Every test holds `SERIAL`, so the RSS and fd
//! counts see no other test's allocations or fds.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use waypass_protocol::protocols::broker::waypass_peer_v1::req;
use waypass_protocol::protocols::broker::PEER_OBJECT_ID as OBJECT_ID;
use waypass_protocol::{
    ChannelError, PeerChannel, PeerMessage, SealedFile, INBOX_MAX_BYTES, INBOX_MAX_FILES,
    INBOX_MAX_MESSAGES, MAX_TEXT_LEN,
};

/// How long the waiting end waits at most. Before the cap, it read the
/// whole flood and then timed out; with it, it stops long before.
const T: Option<Duration> = Some(Duration::from_secs(30));

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's resident set, from `/proc/self/status`, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// One `waypass_peer_v1` message to object 1: header, then `body`.
fn message(opcode: u16, body: &[u8]) -> Vec<u8> {
    let size = (8 + body.len()) as u32;
    [OBJECT_ID, size << 16 | u32::from(opcode)]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .chain(body.iter().copied())
        .collect()
}

/// A wire string: length with NUL, bytes, NUL, padding to 4.
fn string(s: &[u8]) -> Vec<u8> {
    let mut out = ((s.len() + 1) as u32).to_ne_bytes().to_vec();
    out.extend_from_slice(s);
    out.resize(4 + (s.len() + 1).div_ceil(4) * 4, 0);
    out
}

fn text(serial: u32, len: usize) -> Vec<u8> {
    let body = [serial.to_ne_bytes().to_vec(), string(&vec![b'x'; len])].concat();
    message(req::TEXT, &body)
}

/// Writes `count` copies of `bytes` (one fd with each when `fd` is given)
/// until the socket fails; returns how many went out and the error.
fn flood(
    mut raw: UnixStream,
    bytes: Vec<u8>,
    fd: Option<SealedFile>,
    count: usize,
) -> JoinHandle<(usize, Option<std::io::Error>)> {
    std::thread::spawn(move || {
        for sent in 0..count {
            let result = match &fd {
                None => raw.write_all(&bytes),
                Some(file) => {
                    let fds = [file.as_fd().as_raw_fd()];
                    let iov = [std::io::IoSlice::new(&bytes)];
                    let cmsg = [ControlMessage::ScmRights(&fds)];
                    sendmsg::<()>(raw.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                        .map(|n| assert_eq!(n, bytes.len()))
                        .map_err(std::io::Error::from)
                }
            };
            if let Err(e) = result {
                return (sent, Some(e));
            }
        }
        (count, None)
    })
}

#[test]
fn a_text_flood_stops_at_the_inbox_cap_with_memory_bounded() {
    let _serial = serial();
    let (a, raw) = UnixStream::pair().unwrap();
    let mut sender = PeerChannel::new(a).unwrap();
    let waited = sender.send_text("please ack").unwrap();
    // 50,000 texts of the largest size: 200 MB if all were kept.
    let count = 50_000;
    let before = rss();
    let flooder = flood(raw, text(9, MAX_TEXT_LEN), None, count);

    let result = sender.wait_ack(waited, T);
    let grown = rss().saturating_sub(before);
    let (sent, error) = flooder.join().unwrap();
    eprintln!("flooder sent {sent} texts, RSS grew {grown} bytes, then {error:?}; {result:?}");

    match &result {
        Err(
            e @ ChannelError::InboxFull {
                messages,
                bytes,
                files,
            },
        ) => {
            assert!(e.is_fatal());
            assert!(*bytes > INBOX_MAX_BYTES && *messages <= INBOX_MAX_MESSAGES);
            assert_eq!(*files, 0);
        }
        other => panic!("expected InboxFull, got {other:?}"),
    }
    // The flooder's socket was shut: it stopped far short of its count.
    assert!(sent < count / 4, "the flooder went on: {sent} texts");
    assert!(error.is_some());
    // Bounded by the 1 MiB cap plus buffers, where keeping all was 200 MB.
    assert!(grown < 32 << 20, "RSS grew {grown} bytes");
    // Later calls keep failing the same way: the channel is dead.
    assert!(matches!(
        sender.recv(T),
        Err(ChannelError::InboxFull { .. })
    ));
    assert!(matches!(
        sender.wait_ack(waited, T),
        Err(ChannelError::InboxFull { .. })
    ));
}

#[test]
fn a_flood_of_acks_for_other_serials_also_hits_the_message_cap() {
    let _serial = serial();
    let (a, raw) = UnixStream::pair().unwrap();
    let mut sender = PeerChannel::new(a).unwrap();
    let waited = sender.send_text("please ack").unwrap();
    let ack = message(req::ACK, &(waited + 1).to_ne_bytes());
    let flooder = flood(raw, ack, None, 1_000_000);
    let result = sender.wait_ack(waited, T);
    let (sent, _) = flooder.join().unwrap();
    match result {
        Err(ChannelError::InboxFull { messages, .. }) => {
            assert_eq!(messages, INBOX_MAX_MESSAGES + 1)
        }
        other => panic!("expected InboxFull, got {other:?}"),
    }
    assert!(sent < 1_000_000, "the flooder never noticed");
}

#[test]
fn a_file_flood_stops_at_the_fd_cap_and_every_fd_is_closed() {
    let _serial = serial();
    let baseline = open_fds();
    let file = SealedFile::from_bytes("waypass-flood", b"flood").unwrap();
    let (a, raw) = UnixStream::pair().unwrap();
    let mut sender = PeerChannel::new(a).unwrap();
    let waited = sender.send_text("please ack").unwrap();
    let body = [
        7u32.to_ne_bytes().to_vec(),
        string(b"f.txt"),
        0u32.to_ne_bytes().to_vec(),
        5u32.to_ne_bytes().to_vec(),
    ]
    .concat();
    // The flooder's copy of the file is one more fd while it runs.
    let flooder = flood(raw, message(req::FILE, &body), Some(file), 2_000);
    let result = sender.wait_ack(waited, T);
    let (sent, _) = flooder.join().unwrap();
    // The flooder has ended and closed its socket and file: the channel's
    // socket is the one fd expected.
    let held = open_fds() - baseline - 1;
    eprintln!("flooder sent {sent} files; the dead channel holds {held} fds");
    match result {
        Err(ChannelError::InboxFull { files, .. }) => assert_eq!(files, INBOX_MAX_FILES + 1),
        other => panic!("expected InboxFull, got {other:?}"),
    }
    assert!(sent < 2_000, "the flooder never noticed");
    // The kept offers were closed at once; what is left is the socket and
    // the fds the last recvmsg took in beyond the message that overflowed.
    assert!(held <= 253, "held {held} fds");
    drop(sender);
    assert_eq!(open_fds(), baseline);
}

#[test]
fn messages_below_the_caps_wait_in_order_for_recv() {
    let _serial = serial();
    let (a, b) = UnixStream::pair().unwrap();
    let (mut sender, mut owner) = (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap());
    let waited = sender.send_text("please ack").unwrap();
    // The owner talks first (a socket buffer holds fewer than 1,024 small
    // sends, so it runs in a thread), then acks.
    let owner = std::thread::spawn(move || {
        for n in 0..INBOX_MAX_MESSAGES as u32 {
            owner.send_text(&format!("{n}")).unwrap();
        }
        owner.recv(T).unwrap();
        owner.ack(waited).unwrap();
        owner.flush(T).unwrap();
        owner
    });
    sender.wait_ack(waited, T).unwrap();
    for n in 0..INBOX_MAX_MESSAGES {
        match sender.recv(T).unwrap() {
            Some(PeerMessage::Text { text, .. }) => assert_eq!(text, n.to_string()),
            other => panic!("expected text {n}, got {other:?}"),
        }
    }
    drop(owner.join().unwrap());
}
