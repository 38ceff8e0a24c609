//! End-to-end: the `waypass_broker_v1` global of `waypass-server`, driven
//! over a raw `waypass_protocol::Connection` without the client library.
//! Registering, every refusal (answered with `failed`, never an error),
//! names released on withdraw and on disconnect, limits, a request on a
//! withdrawn object (a protocol error), channels that join two clients,
//! and the server's fd count after 200 channels.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use waypass_protocol::protocols::broker::{
    waypass_broker_v1::failure, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::wl_display;
use waypass_test_support::broker_peer::{on, register_result, Ev, Peer};
use waypass_test_support::{eventually, Server};

/// The single `failed(reason)` answer on `id`, or `None` if it succeeded.
fn failure_of(events: &[Ev], id: u32, failed_opcode: u16) -> Option<u32> {
    let evs = on(events, id);
    assert_eq!(evs.len(), 1, "exactly one answer on {id}: {events:?}");
    (evs[0].opcode == failed_opcode).then(|| evs[0].words[0] as u32)
}

#[test]
fn register_taken_invalid_and_withdraw() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    let (alice_id, r) = register_result(&mut alice, b"alice");
    assert_eq!(r, None, "registered");
    assert_eq!(
        register_result(&mut bob, b"alice").1,
        Some(failure::NAME_TAKEN)
    );
    let long = vec![b'a'; 65];
    for bad in [&b""[..], &long, b"a/b", "é".as_bytes()] {
        assert_eq!(
            register_result(&mut bob, bad).1,
            Some(failure::INVALID_NAME),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        register_result(&mut bob, &[b'b'; 64]).1,
        None,
        "64 bytes is fine"
    );

    // Withdraw: delete_id, and the name is free for bob.
    alice.destroy(alice_id);
    let events = alice.roundtrip();
    assert!(events
        .iter()
        .any(|e| e.sender == 1 && e.opcode == 1 && e.words[0] == i64::from(alice_id)));
    assert_eq!(register_result(&mut bob, b"alice").1, None);

    // A request on the withdrawn object is a protocol error.
    alice.destroy(alice_id);
    let events = alice.roundtrip();
    let error = events
        .iter()
        .find(|e| e.sender == 1 && e.opcode == 0)
        .expect("an error");
    assert_eq!(error.words[1], i64::from(wl_display::error::INVALID_OBJECT));
    assert!(alice.hung_up, "disconnected");
    // Bob is unaffected.
    assert_eq!(register_result(&mut bob, b"carol").1, None);
}

#[test]
fn connect_failures_are_answered() {
    let server = Server::start(&["--max-pending-connects", "2"]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"alice").1, None);
    let failed = waypass_connection_v1::evt::FAILED;
    let attempt = |peer: &mut Peer, name: &str| {
        let id = peer.connect_to(name);
        let events = peer.roundtrip();
        (id, failure_of(&events, id, failed))
    };
    let (unknown, r) = attempt(&mut bob, "nobody");
    assert_eq!(r, Some(failure::UNKNOWN_NAME));
    let (invalid, r) = attempt(&mut bob, "a/b");
    assert_eq!(r, Some(failure::INVALID_NAME));
    assert_eq!(attempt(&mut alice, "alice").1, Some(failure::SELF_CONNECT));
    // Bob holds 2 live connection objects (failed ones count).
    let (third, r) = attempt(&mut bob, "alice");
    assert_eq!(r, Some(failure::TOO_MANY_PENDING));
    // Destroying makes room.
    for id in [unknown, invalid, third] {
        bob.destroy(id);
    }
    assert_eq!(attempt(&mut bob, "alice").1, None);
}

#[test]
fn too_many_names() {
    let server = Server::start(&["--max-names", "2"]);
    let mut alice = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"a1").1, None);
    assert_eq!(register_result(&mut alice, b"a2").1, None);
    assert_eq!(
        register_result(&mut alice, b"a3").1,
        Some(failure::TOO_MANY_NAMES)
    );
}

#[test]
fn names_are_released_on_disconnect() {
    let server = Server::start(&[]);
    let mut carol = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut carol, b"carol").1, None);
    let mut dave = Peer::connect(&server.socket);
    assert_eq!(
        register_result(&mut dave, b"carol").1,
        Some(failure::NAME_TAKEN)
    );
    drop(carol);
    // The server sees the hang-up in its own time: ask until it has.
    assert!(eventually(|| {
        let (id, result) = register_result(&mut dave, b"carol");
        if result.is_some() {
            dave.destroy(id);
        }
        result.is_none()
    }));
}

#[test]
fn a_channel_joins_two_clients_with_credentials() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    let (name_id, _) = register_result(&mut alice, b"alice");
    assert_eq!(register_result(&mut bob, b"bob").1, None);
    let conn_id = bob.connect_to("alice");
    let mut events = bob.roundtrip();
    let established = events.iter_mut().find(|e| e.sender == conn_id).unwrap();
    assert_eq!(established.opcode, waypass_connection_v1::evt::ESTABLISHED);
    assert_eq!(established.strs, [Some("alice".to_string())]);
    let pid = i64::from(std::process::id());
    assert_eq!(established.words[0], pid, "alice's pid (this process)");
    let mut bob_end = UnixStream::from(established.fds.remove(0));

    let mut events = alice.roundtrip();
    let peer = events.iter_mut().find(|e| e.sender == name_id).unwrap();
    assert_eq!(peer.opcode, waypass_name_v1::evt::PEER);
    assert_eq!(peer.strs, [Some("bob".to_string())]);
    assert_eq!(peer.words[0], pid);
    let mut alice_end = UnixStream::from(peer.fds.remove(0));

    bob_end.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    alice_end.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    let log = server.log_text();
    assert!(log.contains("brokered channel bob(pid"), "{log}");
}

#[test]
fn two_hundred_channels_leave_no_fd_behind() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"alice").1, None);
    bob.roundtrip();
    let baseline = server.fd_count();
    for _ in 0..4 {
        let ids: Vec<u32> = (0..50).map(|_| bob.connect_to("alice")).collect();
        let events = bob.roundtrip();
        let fds: usize = events.iter().map(|e| e.fds.len()).sum();
        assert_eq!(fds, 50, "one end per connection");
        drop(events);
        for id in ids {
            bob.destroy(id);
        }
        let peers = alice.roundtrip();
        assert_eq!(peers.iter().map(|e| e.fds.len()).sum::<usize>(), 50);
    }
    bob.roundtrip();
    // The flushes happened before the roundtrips' replies; still, let the
    // count settle rather than assume when /proc reflects a close.
    let settled = eventually(|| server.fd_count() == baseline);
    assert!(
        settled,
        "fd count {} vs baseline {baseline}",
        server.fd_count()
    );
}
