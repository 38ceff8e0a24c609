//! Unit tests of the answers (`refuse`, `progress`), of `wait_ack_with`
//! and of the inbox caps, over `UnixStream::pair()`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::super::send::sanitise_reason;
use super::*;
use crate::channel::{FileOffer, MAX_REASON_LEN};
use crate::protocols::broker::waypass_peer_v1::req;
use crate::protocols::broker::PEER_OBJECT_ID as OBJECT_ID;

/// Long enough never to fire on a loaded machine; only a hang would reach it.
const T: Option<Duration> = Some(Duration::from_secs(60));

fn channels() -> (PeerChannel, PeerChannel) {
    let (a, b) = UnixStream::pair().unwrap();
    (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap())
}

/// Offers a sparse memfd of `size` bytes: `progress` is only for files.
fn offer(channel: &mut PeerChannel, size: u64) -> u32 {
    use std::os::fd::AsFd;
    let fd =
        nix::sys::memfd::memfd_create("offered", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    nix::unistd::ftruncate(&fd, size as i64).unwrap();
    channel.send_file(fd.as_fd(), "f", size).unwrap()
}

#[test]
fn refuse_and_progress_round_trip() {
    let (mut alice, mut bob) = channels();
    let serial = offer(&mut alice, 6 << 32);
    let Some(PeerMessage::File(file)) = bob.recv(T).unwrap() else {
        panic!("a file")
    };
    assert_eq!(file.serial, serial);
    bob.progress(serial, 5 << 32 | 7).unwrap();
    bob.refuse(serial, "not today").unwrap();
    match alice.recv(T).unwrap() {
        Some(PeerMessage::Progress { serial: s, done }) => {
            assert_eq!((s, done), (serial, 5 << 32 | 7))
        }
        other => panic!("expected progress, got {other:?}"),
    }
    match alice.recv(T).unwrap() {
        Some(PeerMessage::Refused { serial: s, reason }) => {
            assert_eq!((s, reason.as_str()), (serial, "not today"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn wait_ack_returns_the_refusal_and_the_channel_stays_usable() {
    let (mut alice, mut bob) = channels();
    let first = alice.send_text("one").unwrap();
    let second = alice.send_text("two").unwrap();
    bob.recv(T).unwrap();
    bob.recv(T).unwrap();
    bob.refuse(first, "too long\nsecond line").unwrap();
    bob.ack(second).unwrap();
    bob.flush(T).unwrap();
    match alice.wait_ack(first, T) {
        Err(e @ ChannelError::Refused { .. }) => {
            assert!(!e.is_fatal());
            assert_eq!(
                e.to_string(),
                format!("peer refused message {first}: too long")
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    alice.wait_ack(second, T).unwrap();
}

#[test]
fn answers_kept_in_the_inbox_are_found_by_a_later_wait() {
    let (mut alice, mut bob) = channels();
    let first = offer(&mut alice, 10);
    let second = alice.send_text("two").unwrap();
    bob.progress(first, 10).unwrap();
    bob.refuse(first, "no").unwrap();
    bob.ack(second).unwrap();
    bob.flush(T).unwrap();
    alice.wait_ack(second, T).unwrap();
    let mut seen = Vec::new();
    let result = alice.wait_ack_with(first, T, |done| seen.push(done));
    assert!(matches!(result, Err(ChannelError::Refused { serial, .. }) if serial == first));
    assert_eq!(seen, [10]);
}

/// A peer that sends `progress` every `every` for `total`, then acks.
fn slow_reader(mut bob: PeerChannel, serial: u32, every: Option<Duration>, total: Duration) {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut done = 0;
        while start.elapsed() < total {
            let step = every.unwrap_or(total);
            std::thread::sleep(step.min(total.saturating_sub(start.elapsed())));
            if every.is_some() {
                done += 1000;
                if bob.progress(serial, done).is_err() {
                    return;
                }
            }
        }
        // Alice may have given up and gone already (the timeout test).
        if bob.ack(serial).and_then(|()| bob.flush(T)).is_ok() {
            // Keep the socket open until alice is done with it.
            let _ = bob.recv(T);
        }
    });
}

#[test]
fn progress_restarts_the_idle_timeout() {
    // Idle timeout 1 s, progress every 100 ms for 2.5 s in all: only the
    // progress keeps the wait alive past the first second.
    let (mut alice, bob) = channels();
    let serial = offer(&mut alice, 1 << 40);
    let idle = Duration::from_secs(1);
    slow_reader(bob, serial, Some(Duration::from_millis(100)), idle * 5 / 2);
    let mut reports = Vec::new();
    let start = Instant::now();
    alice
        .wait_ack_with(serial, Some(idle), |done| reports.push(done))
        .expect("progress kept the wait alive");
    assert!(start.elapsed() > idle, "the wait outlived the idle timeout");
    assert!(reports.len() >= 5, "progress reported: {reports:?}");
    assert!(reports.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn without_progress_the_idle_timeout_fires() {
    let (mut alice, bob) = channels();
    let serial = alice.send_text("big").unwrap();
    let idle = Duration::from_millis(300);
    slow_reader(bob, serial, None, Duration::from_secs(5));
    let start = Instant::now();
    let result = alice.wait_ack_with(serial, Some(idle), |_| panic!("no progress"));
    assert!(matches!(result, Err(ChannelError::Timeout)), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn progress_of_another_serial_does_not_extend_the_wait() {
    let (mut alice, mut bob) = channels();
    let serial = offer(&mut alice, 10);
    let other = offer(&mut alice, 10);
    for n in 0..5 {
        bob.progress(other, n).unwrap();
    }
    bob.flush(T).unwrap();
    let result = alice.wait_ack_with(serial, Some(Duration::from_millis(300)), |_| panic!());
    assert!(matches!(result, Err(ChannelError::Timeout)), "{result:?}");
    // Kept for recv, in order.
    for n in 0..5 {
        assert!(matches!(
            alice.recv(T).unwrap(),
            Some(PeerMessage::Progress { done, .. }) if done == n
        ));
    }
}

#[test]
fn repeated_progress_does_not_keep_the_wait_alive() {
    // A hostile reader reports the same count every 50 ms for ever: only
    // counts that grow restart the idle timeout, so the wait ends.
    let (mut alice, mut bob) = channels();
    let serial = offer(&mut alice, 1 << 20);
    let stalling = std::thread::spawn(move || {
        for _ in 0..100 {
            if bob
                .progress(serial, 4096)
                .and_then(|()| bob.flush(T))
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let idle = Duration::from_millis(400);
    let start = Instant::now();
    let result = alice.wait_ack_with(serial, Some(idle), |_| {});
    assert!(matches!(result, Err(ChannelError::Timeout)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the stall kept it waiting"
    );
    drop(alice);
    stalling.join().unwrap();
}

#[test]
fn reasons_are_one_short_line_without_control_characters() {
    assert_eq!(sanitise_reason("  fine  "), "fine");
    assert_eq!(sanitise_reason("first\nsecond"), "first");
    assert_eq!(sanitise_reason("cr\r\nlf"), "cr");
    assert_eq!(sanitise_reason("tab\there\u{1b}[2J"), "tab here [2J");
    let long = "é".repeat(400);
    let cut = sanitise_reason(&long);
    assert!(
        cut.len() <= MAX_REASON_LEN && cut.ends_with('…'),
        "{}",
        cut.len()
    );
    assert!(cut.len() > MAX_REASON_LEN - 8);
}

#[test]
fn a_hostile_reason_is_sanitised_on_arrival() {
    let (mut alice, b) = UnixStream::pair().unwrap();
    let mut alice_ch = PeerChannel::new(b).unwrap();
    // A raw peer writes a refuse with a long, multi-line, escape-laden reason.
    let reason = format!("\u{1b}[2Jgotcha\n{}", "x".repeat(3000));
    let mut body = vec![7u32.to_ne_bytes().to_vec()];
    let bytes = [reason.as_bytes(), b"\0"].concat();
    body.push((bytes.len() as u32).to_ne_bytes().to_vec());
    let mut padded = bytes.clone();
    padded.resize(bytes.len().div_ceil(4) * 4, 0);
    body.push(padded);
    let body = body.concat();
    let size = (8 + body.len()) as u32;
    let header = [OBJECT_ID, size << 16 | u32::from(req::REFUSE)];
    let header: Vec<u8> = header.iter().flat_map(|w| w.to_ne_bytes()).collect();
    alice.write_all(&[header, body].concat()).unwrap();
    match alice_ch.recv(T).unwrap() {
        Some(PeerMessage::Refused { serial: 7, reason }) => assert_eq!(reason, "[2Jgotcha"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn refuse_and_progress_trace_as_wayland_debug_lines() {
    use crate::debug::{format_trace, parse_trace_line, Direction};
    use crate::protocols::broker::waypass_peer_v1::INTERFACE;
    use crate::wire::Arg;
    use std::ffi::CString;
    use std::os::fd::BorrowedFd;

    let reason = CString::new("too big").unwrap();
    let refuse: [Arg<'_, BorrowedFd<'_>>; 2] = [Arg::Uint(3), Arg::Str(Some(&reason))];
    let desc = &INTERFACE.requests[usize::from(req::REFUSE)];
    let line = format_trace(
        1_915_098_433,
        Direction::Sent,
        &INTERFACE,
        1,
        desc,
        &refuse,
        &|_| None,
    );
    assert_eq!(
        line,
        r#"[1915098.433]  -> waypass_peer_v1@1.refuse(3, "too big")"#
    );
    let progress: [Arg<'_, BorrowedFd<'_>>; 3] = [Arg::Uint(3), Arg::Uint(1), Arg::Uint(2)];
    let desc = &INTERFACE.requests[usize::from(req::PROGRESS)];
    let line = format_trace(
        1_915_098_433,
        Direction::Received,
        &INTERFACE,
        1,
        desc,
        &progress,
        &|_| None,
    );
    assert_eq!(line, "[1915098.433] waypass_peer_v1@1.progress(3, 1, 2)");
    let parsed = parse_trace_line(&line).unwrap();
    assert_eq!((parsed.sent, parsed.message.as_str()), (false, "progress"));
}

#[test]
fn held_fds_counts_fds_queued_and_offers_in_the_inbox() {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;

    let (mut alice, mut bob) = channels();
    let waited = alice.send_text("wait").unwrap();
    // Bob offers two files before his ack: they wait in alice's inbox.
    bob.recv(T).unwrap();
    offer(&mut bob, 1);
    offer(&mut bob, 1);
    bob.ack(waited).unwrap();
    bob.flush(T).unwrap();
    alice.wait_ack(waited, T).unwrap();
    assert_eq!(alice.held_fds(), 2, "two offers in the inbox");
    while let Ok(Some(_)) = alice.recv(Some(Duration::ZERO)) {}
    assert_eq!(alice.held_fds(), 0, "taken: the offers' fds went with them");

    // Three fds with the first word of a message: queued, waiting for it.
    let (raw, b) = UnixStream::pair().unwrap();
    let mut dave = PeerChannel::new(b).unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let fds = [null.as_raw_fd(); 3];
    let word = 1u32.to_ne_bytes();
    sendmsg::<()>(
        raw.as_raw_fd(),
        &[std::io::IoSlice::new(&word)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    let result = dave.recv(Some(Duration::from_millis(50)));
    assert!(matches!(result, Err(ChannelError::Timeout)), "{result:?}");
    assert_eq!(dave.held_fds(), 3);
}

fn file_offer(serial: u32) -> FileOffer {
    let fd = nix::sys::memfd::memfd_create("kept", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    FileOffer {
        serial,
        fd,
        name: "kept.txt".to_owned(),
        size: 0,
    }
}

#[test]
fn the_inbox_totals_fall_as_messages_leave_it() {
    let mut inbox = Inbox::default();
    let text = "x".repeat(4096);
    // Four times the byte cap and ten times the file cap pass through,
    // never more than two messages at a time.
    for serial in 0..1024 {
        inbox
            .push(PeerMessage::Text {
                serial,
                text: text.clone(),
            })
            .unwrap();
        if serial % 4 < 2 {
            inbox.push(PeerMessage::File(file_offer(serial))).unwrap();
        }
        if serial % 2 == 0 {
            while inbox.pop_front().is_some() {}
        } else {
            let is_file = |m: &PeerMessage| matches!(m, PeerMessage::File(_));
            while inbox.take_first(is_file).is_some() {}
            while inbox.take_first(|_| true).is_some() {}
        }
        assert_eq!((inbox.len(), inbox.bytes, inbox.files), (0, 0, 0));
    }
    assert!(inbox.overflow_error().is_none());
}

/// The totals an [`ChannelError::InboxFull`] reports.
fn overflow(e: ChannelError) -> (usize, usize, usize) {
    match e {
        ChannelError::InboxFull {
            messages,
            bytes,
            files,
        } => (messages, bytes, files),
        other => panic!("expected InboxFull, got {other:?}"),
    }
}

#[test]
fn the_inbox_holds_exactly_its_caps_and_empties_past_them() {
    let mut inbox = Inbox::default();
    for serial in 0..INBOX_MAX_MESSAGES as u32 {
        inbox.push(PeerMessage::Ack { serial }).unwrap();
    }
    assert_eq!(inbox.len(), INBOX_MAX_MESSAGES);
    let e = inbox.push(PeerMessage::Ack { serial: 0 }).unwrap_err();
    assert_eq!(overflow(e), (INBOX_MAX_MESSAGES + 1, 0, 0));
    assert_eq!(inbox.len(), 0);

    let mut inbox = Inbox::default();
    let text = "x".repeat(INBOX_MAX_BYTES / 256);
    for serial in 0..256 {
        let text = text.clone();
        inbox.push(PeerMessage::Text { serial, text }).unwrap();
    }
    assert_eq!(inbox.bytes, INBOX_MAX_BYTES);
    let one_more = PeerMessage::Text {
        serial: 0,
        text: "x".to_owned(),
    };
    let e = inbox.push(one_more).unwrap_err();
    assert_eq!(overflow(e), (257, INBOX_MAX_BYTES + 1, 0));

    let mut inbox = Inbox::default();
    let name_bytes = "kept.txt".len();
    for serial in 0..INBOX_MAX_FILES as u32 {
        inbox.push(PeerMessage::File(file_offer(serial))).unwrap();
    }
    assert_eq!(inbox.files, INBOX_MAX_FILES);
    let e = inbox.push(PeerMessage::File(file_offer(0))).unwrap_err();
    let files = INBOX_MAX_FILES + 1;
    assert_eq!(overflow(e), (files, files * name_bytes, files));
    assert_eq!((inbox.len(), inbox.bytes, inbox.files), (0, 0, 0));
    assert!(inbox.overflow_error().is_some());
}

#[test]
fn a_later_wait_passes_over_kept_messages_that_are_not_its_answer() {
    let (mut alice, mut bob) = channels();
    let first = alice.send_text("one").unwrap();
    let second = alice.send_text("two").unwrap();
    bob.send_text("meanwhile").unwrap();
    bob.ack(first).unwrap();
    bob.ack(second).unwrap();
    bob.flush(T).unwrap();
    alice.wait_ack(first, T).unwrap();
    // The text waits in the inbox; the second wait leaves it there.
    alice.wait_ack(second, T).unwrap();
    let Some(PeerMessage::Text { text, .. }) = alice.recv(T).unwrap() else {
        panic!("the kept text")
    };
    assert_eq!(text, "meanwhile");
}
