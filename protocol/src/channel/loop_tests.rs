//! Unit tests of what a [`PeerChannel`] counts and how its own loops end:
//! the byte counters, `flush`, the tracer setter and the deadlines.
//!
//! Each was written against mutants of `channel/mod.rs` that cargo-mutants
//! found surviving, or caught only by a test hanging until its timeout
//! (RELIABILITY.md, "Mutation testing"). Not here: peers
//! that break the rules and the sending checks (`tests.rs`), the inbox
//! (`inbox_tests.rs`).

use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::*;
use crate::wire::MAX_MESSAGE_SIZE;

/// Long enough never to fire on a loaded machine; only a hang would reach it.
const T: Option<Duration> = Some(Duration::from_secs(60));

fn channels() -> (PeerChannel, PeerChannel) {
    let (a, b) = UnixStream::pair().unwrap();
    (PeerChannel::new(a).unwrap(), PeerChannel::new(b).unwrap())
}

/// Sends the longest texts (4096-byte messages) until the socket is full
/// and output waits in the queue; returns how many were sent.
fn fill_the_socket(ch: &mut PeerChannel) -> usize {
    let text = "x".repeat(MAX_TEXT_LEN);
    let mut sent = 0;
    while !ch.conn.has_pending_output() {
        ch.send_text(&text).unwrap();
        sent += 1;
    }
    sent
}

fn queued_bytes(ch: &mut PeerChannel) -> u64 {
    ch.conn.split().1.queued_bytes() as u64
}

#[test]
fn set_tracer_replaces_the_tracer() {
    let (mut a, _b) = channels();
    a.set_tracer(Tracer::new(true));
    assert!(a.tracer.enabled());
    a.set_tracer(Tracer::new(false));
    assert!(!a.tracer.enabled());
}

#[test]
fn the_byte_counters_count_every_message_byte_each_way() {
    let (mut a, mut b) = channels();
    // text(serial, "hi"): header 8, serial 4, length 4, "hi\0" padded to 4.
    let serial = a.send_text("hi").unwrap();
    assert_eq!((a.bytes_sent(), a.bytes_received()), (20, 0));
    assert!(matches!(b.recv(T), Ok(Some(PeerMessage::Text { .. }))));
    assert_eq!((b.bytes_sent(), b.bytes_received()), (0, 20));
    // ack(serial): header 8, serial 4.
    b.ack(serial).unwrap();
    assert!(matches!(a.recv(T), Ok(Some(PeerMessage::Ack { .. }))));
    assert_eq!((a.bytes_sent(), a.bytes_received()), (20, 12));
    assert_eq!((b.bytes_sent(), b.bytes_received()), (12, 20));
}

#[test]
fn flush_sends_everything_queued_and_counts_it() {
    let (mut a, mut b) = channels();
    let texts = fill_the_socket(&mut a) as u64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"contents").unwrap();
    // An offer queued behind the full socket: its flush sends nothing, and
    // what was sent plus what waits is every byte queued so far.
    // file(serial, fd, "f", size_hi, size_lo): 8 + 4 + 0 + (4 + 4) + 4 + 4.
    a.send_path(&path).unwrap();
    let total = texts * MAX_MESSAGE_SIZE as u64 + 28;
    assert!(queued_bytes(&mut a) > 0);
    assert_eq!(a.bytes_sent() + queued_bytes(&mut a), total);

    let reader = std::thread::spawn(move || {
        let mut messages = 0;
        while b.recv(T).unwrap().is_some() {
            messages += 1;
        }
        (messages, b.bytes_received())
    });
    a.flush(T).unwrap();
    assert!(
        !a.conn.has_pending_output(),
        "flush returned before the end"
    );
    assert_eq!(a.bytes_sent(), total);
    drop(a);
    assert_eq!(reader.join().unwrap(), (texts + 1, total));
}

#[test]
fn recv_sends_queued_output_while_it_waits() {
    let (mut a, mut b) = channels();
    let texts = fill_the_socket(&mut a);
    // The peer answers only once it has read every text: `recv` must send
    // what waits in the queue, or both wait until the timeout.
    let peer = std::thread::spawn(move || {
        for _ in 0..texts {
            assert!(matches!(b.recv(T), Ok(Some(PeerMessage::Text { .. }))));
        }
        b.send_text("all read").unwrap();
        b.flush(T).unwrap();
        b
    });
    let got = a.recv(T).unwrap();
    assert!(
        matches!(&got, Some(PeerMessage::Text { text, .. }) if text == "all read"),
        "{got:?}"
    );
    assert!(!a.conn.has_pending_output());
    drop(peer.join().unwrap());
}

#[test]
fn a_passed_deadline_ends_a_wait_for_room_to_send() {
    let (mut a, _b) = channels();
    fill_the_socket(&mut a);
    // The peer reads nothing: the socket never has room again.
    let zero = Some(Duration::ZERO);
    assert!(matches!(a.flush(zero), Err(ChannelError::Timeout)));
    assert!(matches!(a.recv(zero), Err(ChannelError::Timeout)));
    assert!(a.conn.has_pending_output());
}

#[test]
fn a_deadline_has_passed_only_once_its_time_comes() {
    assert!(Deadline::after(Some(Duration::ZERO)).passed());
    assert!(!Deadline::after(Some(Duration::from_secs(3600))).passed());
    assert!(!Deadline::after(None).passed());
}
