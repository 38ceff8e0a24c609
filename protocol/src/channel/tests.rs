//! Unit tests of the channel over `UnixStream::pair()`: one end is a
//! `PeerChannel`, the other often a raw socket writing hand-made bytes, to
//! play a peer that breaks the rules.

use std::error::Error as _;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::fstat;

use super::offer::is_safe_name;
use super::*;
use std::ffi::CString;

use crate::wire::{encoded_size, MAX_MESSAGE_SIZE};
use crate::SealedFile;

/// Long enough never to fire on a loaded machine; only a hang would reach it.
const T: Option<Duration> = Some(Duration::from_secs(60));

fn channels() -> (PeerChannel, PeerChannel) {
    let (a, b) = UnixStream::pair().unwrap();
    (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap())
}

/// A channel and a raw socket playing its peer.
fn channel_and_raw() -> (PeerChannel, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (PeerChannel::new(a).unwrap(), b)
}

/// A message's bytes: header then body words, host byte order.
fn message(sender: u32, opcode: u16, body: &[u32]) -> Vec<u8> {
    let size = 8 + 4 * body.len() as u32;
    [sender, size << 16 | u32::from(opcode)]
        .iter()
        .chain(body)
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

fn protocol_error(result: Result<Option<PeerMessage>, ChannelError>) -> Violation {
    match result {
        Err(ChannelError::Protocol(v)) => v,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn the_longest_strings_fill_a_message_exactly() {
    let (a, _b) = UnixStream::pair().unwrap();
    let text = CString::new(vec![b'x'; MAX_TEXT_LEN]).unwrap();
    let args: [Arg<'_, BorrowedFd<'_>>; 2] = [Arg::Uint(1), Arg::Str(Some(&text))];
    assert_eq!(encoded_size(&args), MAX_MESSAGE_SIZE);
    let name = CString::new(vec![b'x'; MAX_NAME_LEN]).unwrap();
    let args = [
        Arg::Uint(1),
        Arg::Fd(a.as_fd()),
        Arg::Str(Some(&name)),
        Arg::Uint(0),
        Arg::Uint(0),
    ];
    assert_eq!(encoded_size(&args), MAX_MESSAGE_SIZE);
    // One more byte pads to the next word and no longer fits.
    let text = CString::new(vec![b'x'; MAX_TEXT_LEN + 1]).unwrap();
    let args: [Arg<'_, BorrowedFd<'_>>; 2] = [Arg::Uint(1), Arg::Str(Some(&text))];
    assert!(encoded_size(&args) > MAX_MESSAGE_SIZE);
}

#[rustfmt::skip]
#[test]
fn safe_names_are_one_plain_path_component() {
    for (name, safe) in [
        ("notes.txt", true), ("..hidden", true), (".profile", true), ("ünïcode ok", true),
        ("", false), (".", false), ("..", false), ("../x", false), ("a/b", false),
        ("/etc/passwd", false), ("x/", false), ("line\nbreak", false), ("esc\u{1b}[2J", false),
        ("not\u{fffd}utf8", false),
    ] {
        assert_eq!(is_safe_name(name), safe, "{name:?}");
    }
    assert!(is_safe_name(&"n".repeat(SAFE_NAME_MAX)));
    assert!(!is_safe_name(&"n".repeat(SAFE_NAME_MAX + 1)));
}

#[test]
fn deadlines() {
    assert!(Deadline::after(Some(Duration::ZERO))
        .poll_timeout()
        .is_none());
    assert_eq!(
        Deadline::after(None).poll_timeout(),
        Some(PollTimeout::NONE)
    );
    assert_eq!(
        Deadline::after(Some(Duration::MAX)).poll_timeout(),
        Some(PollTimeout::NONE)
    );
    let hour = Deadline::after(Some(Duration::from_secs(3600))).poll_timeout();
    let ms = i32::from(hour.unwrap());
    assert!(ms > 0 && ms <= 3_600_000, "{ms}");
}

#[test]
fn a_zero_timeout_does_not_block_and_leaves_the_channel_usable() {
    let (mut a, mut b) = channels();
    let e = b.recv(Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(e, ChannelError::Timeout) && !e.is_fatal());
    let serial = a.send_text("late").unwrap();
    let Some(PeerMessage::Text { serial: got, text }) = b.recv(T).unwrap() else {
        panic!("expected a text");
    };
    assert_eq!((got, text.as_str()), (serial, "late"));
}

#[test]
fn serials_count_up_from_one_per_end() {
    let (mut a, mut b) = channels();
    assert_eq!(a.send_text("a").unwrap(), 1);
    assert_eq!(a.send_snapshot("s", b"x").unwrap(), 2);
    assert_eq!(b.send_text("b").unwrap(), 1);
    // A refused message uses no serial.
    assert!(a.send_text("nul\0inside").is_err());
    assert_eq!(a.send_text("c").unwrap(), 3);
}

#[test]
fn a_message_to_another_object_is_a_violation() {
    let (mut ch, mut raw) = channel_and_raw();
    raw.write_all(&message(2, req::ACK, &[5])).unwrap();
    let v = protocol_error(ch.recv(T));
    assert_eq!(v, Violation::UnknownObject(2));
}

#[test]
fn an_unknown_opcode_is_a_violation() {
    let (mut ch, mut raw) = channel_and_raw();
    raw.write_all(&message(OBJECT_ID, 5, &[5])).unwrap();
    assert_eq!(protocol_error(ch.recv(T)), Violation::UnknownOpcode(5));
}

#[test]
fn a_file_message_without_its_fd_is_a_violation() {
    let (mut ch, mut raw) = channel_and_raw();
    // serial 1, name "a" (length 2, "a\0" padded), size 0:0; no SCM_RIGHTS.
    let name = u32::from_ne_bytes([b'a', 0, 0, 0]);
    raw.write_all(&message(OBJECT_ID, req::FILE, &[1, 2, name, 0, 0]))
        .unwrap();
    let e = ch.recv(T).unwrap_err();
    assert!(e.is_fatal());
    assert!(matches!(e, ChannelError::Protocol(Violation::MissingFd)));
}

#[test]
fn a_malformed_message_is_a_violation_with_its_source() {
    let (mut ch, mut raw) = channel_and_raw();
    // A text whose string has no NUL.
    let text = u32::from_ne_bytes(*b"abcd");
    raw.write_all(&message(OBJECT_ID, req::TEXT, &[1, 4, text]))
        .unwrap();
    let e = ch.recv(T).unwrap_err();
    assert!(matches!(e, ChannelError::Protocol(Violation::Malformed(_))));
    assert!(e.source().is_some());
}

#[test]
fn a_close_in_the_middle_of_a_message_is_a_violation() {
    let (mut ch, mut raw) = channel_and_raw();
    let whole = message(OBJECT_ID, req::ACK, &[5]);
    raw.write_all(&whole[..8]).unwrap();
    drop(raw);
    let v = protocol_error(ch.recv(T));
    assert_eq!(v, Violation::ClosedMidMessage { buffered: 8 });
}

#[test]
fn invalid_utf8_in_a_text_is_replaced() {
    let (mut ch, mut raw) = channel_and_raw();
    let text = u32::from_ne_bytes([0xff, b'a', 0, 0]);
    raw.write_all(&message(OBJECT_ID, req::TEXT, &[9, 3, text]))
        .unwrap();
    let Some(PeerMessage::Text { serial, text }) = ch.recv(T).unwrap() else {
        panic!("expected a text");
    };
    assert_eq!((serial, text.as_str()), (9, "\u{fffd}a"));
}

#[test]
fn whole_messages_then_a_close_is_a_clean_end() {
    let (mut ch, mut raw) = channel_and_raw();
    raw.write_all(&message(OBJECT_ID, req::ACK, &[4])).unwrap();
    drop(raw);
    assert!(matches!(
        ch.recv(T),
        Ok(Some(PeerMessage::Ack { serial: 4 }))
    ));
    assert!(ch.recv(T).unwrap().is_none());
    assert!(ch.recv(T).unwrap().is_none(), "stays closed");
}

#[test]
fn a_writable_fd_is_offered_read_only() {
    let (mut a, mut b) = channels();
    let memfd = memfd::MemfdOptions::default().create("rw").unwrap();
    memfd.as_file().write_all(b"mine").unwrap();
    let mine: OwnedFd = memfd.into_file().into();
    a.send_file(mine.as_fd(), "rw", 4).unwrap();
    let Some(PeerMessage::File(offer)) = b.recv(T).unwrap() else {
        panic!("expected a file");
    };
    let flags = OFlag::from_bits_truncate(fcntl(&offer.fd, FcntlArg::F_GETFL).unwrap());
    assert_eq!(flags & OFlag::O_ACCMODE, OFlag::O_RDONLY);
    let (theirs, ours) = (fstat(&offer.fd).unwrap(), fstat(&mine).unwrap());
    assert_eq!((theirs.st_dev, theirs.st_ino), (ours.st_dev, ours.st_ino));
    assert!(nix::unistd::write(&offer.fd, b"x").is_err());
    assert_eq!(offer.read_to_vec().unwrap(), b"mine");
}

#[test]
fn an_offer_larger_than_its_file_is_refused_before_queuing() {
    let (mut a, mut b) = channels();
    let file = SealedFile::from_bytes("small", b"123").unwrap();
    let e = a.send_file(file.as_fd(), "small", 4).unwrap_err();
    assert!(matches!(
        e,
        ChannelError::BadSize {
            announced: 4,
            file_size: 3
        }
    ));
    assert!(!e.is_fatal());
    assert!(matches!(
        b.recv(Some(Duration::ZERO)),
        Err(ChannelError::Timeout)
    ));
    assert_eq!(a.bytes_sent(), 0);
}

#[test]
fn a_nul_in_a_text_or_name_is_refused() {
    let (mut a, _b) = channels();
    assert!(matches!(
        a.send_text("a\0b"),
        Err(ChannelError::InteriorNul)
    ));
    let e = a.send_snapshot("x\0y", b"z").unwrap_err();
    assert!(matches!(e, ChannelError::InteriorNul));
}

/// Texts shorter than 256 bytes go from a stack copy, longer ones from the
/// heap: both arrive whole, and a NUL is refused in both.
#[test]
fn texts_on_either_side_of_the_stack_copy_arrive_whole() {
    let (mut a, mut b) = channels();
    for len in [0, 1, 254, 255, 256, 257, 1000, MAX_TEXT_LEN] {
        let sent: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let serial = a.send_text(&sent).unwrap();
        match b.recv(T) {
            Ok(Some(PeerMessage::Text { serial: s, text })) => {
                assert_eq!((s, text.len()), (serial, len));
                assert!(text == sent, "a text of {len} bytes changed on the way");
            }
            other => panic!("{len} bytes: {other:?}"),
        }
        if len > 0 {
            let mut with_nul = sent.clone();
            with_nul.replace_range(len - 1.., "\0");
            assert!(matches!(
                a.send_text(&with_nul),
                Err(ChannelError::InteriorNul)
            ));
        }
    }
}

#[test]
fn a_datagram_socket_is_refused() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    let e = PeerChannel::new(OwnedFd::from(a)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn acking_a_peer_that_left_is_quiet_but_waiting_for_its_ack_is_not() {
    let (mut a, b) = channels();
    drop(b);
    a.ack(1).unwrap();
    let serial = a.send_text("anyone?");
    // The send may or may not meet EPIPE, depending on whether the kernel
    // noticed the close first; waiting for an ack must fail either way.
    if let Ok(serial) = serial {
        let e = a.wait_ack(serial, T).unwrap_err();
        assert!(matches!(
            e,
            ChannelError::Connection(ConnectionError::Closed)
        ));
    }
}

#[test]
fn wait_ack_keeps_other_messages_in_order() {
    let (mut a, mut b) = channels();
    let first = a.send_text("one").unwrap();
    let second = a.send_text("two").unwrap();
    for _ in 0..2 {
        let Some(PeerMessage::Text { serial, .. }) = b.recv(T).unwrap() else {
            panic!("expected a text");
        };
        b.ack(serial).unwrap();
    }
    b.send_text("between").unwrap();
    b.flush(T).unwrap();
    a.wait_ack(second, T).unwrap();
    assert!(matches!(a.recv(T), Ok(Some(PeerMessage::Ack { serial })) if serial == first));
    assert!(matches!(a.recv(T), Ok(Some(PeerMessage::Text { text, .. })) if text == "between"));
    // An ack already in the inbox satisfies wait_ack without the socket.
    b.ack(77).unwrap();
    b.send_text("after").unwrap();
    b.ack(78).unwrap();
    a.wait_ack(78, T).unwrap();
    a.wait_ack(77, Some(Duration::ZERO)).unwrap();
    assert!(matches!(a.recv(T), Ok(Some(PeerMessage::Text { text, .. })) if text == "after"));
}

#[test]
fn errors_read_as_lowercase_one_liners_with_sources() {
    let io_error = ChannelError::io("open the file to offer", io::ErrorKind::NotFound);
    let errors = [
        ChannelError::Connection(ConnectionError::Closed),
        ChannelError::Protocol(Violation::MissingFd),
        ChannelError::TooLong {
            len: 5000,
            max: 4079,
        },
        ChannelError::InteriorNul,
        ChannelError::Timeout,
        ChannelError::BadSize {
            announced: 10,
            file_size: 3,
        },
        ChannelError::Seal(crate::SealError::EmptySize),
        io_error,
    ];
    for e in &errors {
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
    }
    assert!(errors[0].source().is_some());
    assert!(errors[6].source().is_some());
    assert!(errors[7].source().is_some());
    assert_eq!(errors[7].to_string(), "cannot open the file to offer");
    assert_eq!(
        errors[5].to_string(),
        "offer announces 10 bytes but the file holds 3"
    );
}

#[test]
fn a_short_timeout_ends_a_blocking_wait_and_leaves_the_channel_usable() {
    let (mut a, mut b) = channels();
    let e = b.recv(Some(Duration::from_millis(20))).unwrap_err();
    assert!(matches!(e, ChannelError::Timeout), "{e:?}");
    let waiter = std::thread::spawn(move || {
        let got = b.recv(T).unwrap();
        (b, got)
    });
    std::thread::sleep(Duration::from_millis(20));
    let serial = a.send_text("while you wait").unwrap();
    let (_b, got) = waiter.join().unwrap();
    let Some(PeerMessage::Text { serial: s, text }) = got else {
        panic!("expected a text, got {got:?}");
    };
    assert_eq!((s, text.as_str()), (serial, "while you wait"));
}

/// The fds of this process open on the file `fd` is open on, other than
/// `fd` itself, with whether each is close-on-exec (from
/// `/proc/self/fdinfo`: the fds the channel opened are not ours to borrow).
fn other_fds_on(fd: BorrowedFd<'_>) -> Vec<bool> {
    use std::os::linux::fs::MetadataExt;
    let target = fstat(fd).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let name = entry.unwrap().file_name();
        let Ok(n) = name.to_str().unwrap().parse::<i32>() else {
            continue;
        };
        if n == fd.as_raw_fd() {
            continue;
        }
        // Gone since the listing (another test's fd): not ours.
        let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{n}")) else {
            continue;
        };
        if (meta.st_dev(), meta.st_ino()) != (target.st_dev, target.st_ino) {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| i32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        found.push(flags & OFlag::O_CLOEXEC.bits() != 0);
    }
    found
}

/// Sends texts until the socket is full and output waits in the queue: an
/// offer made now stays queued with the fd the channel opened for it.
fn fill_the_socket(ch: &mut PeerChannel) {
    let text = "x".repeat(MAX_TEXT_LEN);
    while !ch.conn.has_pending_output() {
        ch.send_text(&text).unwrap();
    }
}

#[test]
fn files_the_channel_opens_are_close_on_exec() {
    let (mut a, _b) = channels();
    fill_the_socket(&mut a);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offered.txt");
    std::fs::write(&path, b"contents").unwrap();

    // A writable fd that is itself inheritable: the channel's read-only
    // reopen of it must not be.
    let writable = nix::fcntl::open(&path, OFlag::O_RDWR, nix::sys::stat::Mode::empty()).unwrap();
    assert_eq!(other_fds_on(writable.as_fd()), []);
    a.send_file(writable.as_fd(), "rw", 8).unwrap();
    assert_eq!(other_fds_on(writable.as_fd()), [true], "the reopen");

    a.send_path(&path).unwrap();
    assert_eq!(other_fds_on(writable.as_fd()), [true, true], "the open");

    let sealed = SealedFile::from_bytes("sealed-offer", b"sealed").unwrap();
    let fd = sealed.reopen_read_only().unwrap();
    a.send_sealed(&sealed, "sealed").unwrap();
    let on_sealed = other_fds_on(fd.as_fd());
    // The memfd itself (its own, CLOEXEC) and the channel's reopen.
    assert_eq!(on_sealed, [true, true], "{on_sealed:?}");
}
