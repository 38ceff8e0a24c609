use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use waypass_protocol::{Connection, Interface, Recv, TraceSide, Tracer};

use super::*;
use crate::config::Settings;
use crate::keymap::{Keymap, KeymapSource};
use crate::proto::ctx::Shared;
use crate::state::Client;

fn shared() -> Shared {
    let keymap = Keymap::load(&KeymapSource::Embedded).unwrap();
    let settings = Settings {
        repeat_rate: 25,
        repeat_delay: 600,
        seat_name: "seat0".into(),
    };
    Shared::new(keymap, settings).unwrap()
}

/// A server-side client and the client's end as a connection.
fn client(key: u64) -> (Client, Connection) {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let client = Client::new(
        ClientKey(key),
        server_end,
        Tracer::from_debug_value(TraceSide::Server, None),
    )
    .unwrap();
    (client, Connection::new(client_end).unwrap())
}

/// The interface of an object in these tests: 1 is `wl_display`, the ids
/// in `names` are names, every other one a connection.
fn interface_of(id: u32, names: &[u32]) -> &'static Interface {
    match id {
        1 => &wl_display::INTERFACE,
        id if names.contains(&id) => &waypass_name_v1::INTERFACE,
        _ => &waypass_connection_v1::INTERFACE,
    }
}

/// Flushes `client` and decodes the events its peer receives, as
/// (sender, opcode, fds, args as text).
fn events(
    client: &mut Client,
    peer: &mut Connection,
    names: &[u32],
) -> Vec<(u32, u16, Vec<OwnedFd>, String)> {
    client.conn.flush().unwrap();
    assert!(matches!(peer.recv().unwrap(), Recv::Data(_)));
    let mut out = Vec::new();
    loop {
        let msg = peer
            .next_message(|h| {
                let events = interface_of(h.sender, names).events;
                events.get(usize::from(h.opcode)).ok_or("unknown opcode")
            })
            .unwrap();
        let Some(msg) = msg else { break };
        let mut fds = Vec::new();
        let mut text = String::new();
        for arg in msg.args {
            match arg {
                Arg::Fd(fd) => fds.push(fd),
                Arg::Str(s) => text.push_str(&format!("{s:?} ")),
                Arg::Uint(v) => text.push_str(&format!("{v} ")),
                Arg::Int(v) => text.push_str(&format!("{v} ")),
                _ => {}
            }
        }
        out.push((msg.sender, msg.opcode, fds, text));
    }
    out
}

#[test]
fn the_name_rule() {
    let long = "a".repeat(MAX_NAME_LEN);
    for ok in ["a", "alice", "A-z_0.9", long.as_str()] {
        assert!(valid_name(ok.as_bytes()), "{ok}");
    }
    let too_long = "a".repeat(MAX_NAME_LEN + 1);
    for bad in ["", too_long.as_str(), "a/b", "é", "a b", "a\n"] {
        assert!(!valid_name(bad.as_bytes()), "{bad:?}");
    }
}

#[test]
fn a_channel_joins_requester_and_owner() {
    let shared = shared();
    let mut broker = Broker::new(BrokerLimits::default());
    let (mut alice, mut alice_peer) = client(1);
    let (mut bob, mut bob_peer) = client(2);
    for c in [&mut alice, &mut bob] {
        c.objects.insert_at(2, Object::Broker).unwrap();
    }
    register(
        &mut Ctx::for_client(&mut alice, &shared),
        &mut broker,
        3,
        c"alice",
    )
    .unwrap();
    let got = events(&mut alice, &mut alice_peer, &[2, 3, 4, 5]);
    assert_eq!(got[0].1, waypass_name_v1::evt::REGISTERED);

    let mut cx = Ctx::for_client(&mut bob, &shared);
    // Taken, then unknown: failures, not errors.
    register(&mut cx, &mut broker, 3, c"alice").unwrap();
    connect(&mut cx, &mut broker, 4, c"carol").unwrap();
    connect(&mut cx, &mut broker, 5, c"alice").unwrap();
    let pid = std::process::id();
    let got = events(&mut bob, &mut bob_peer, &[3]);
    assert_eq!(
        (got[0].1, got[0].3.as_str()),
        (waypass_name_v1::evt::FAILED, "1 ")
    );
    assert_eq!(got[1].3, format!("{} ", failure::UNKNOWN_NAME));
    assert_eq!(got[2].1, waypass_connection_v1::evt::ESTABLISHED);
    assert!(
        got[2].3.starts_with(&format!("Some(\"alice\") {pid} ")),
        "{}",
        got[2].3
    );
    assert_eq!(bob.session.connections, 2, "failed ones count too");

    let mut deliveries = broker.take_deliveries();
    assert_eq!(deliveries.len(), 1);
    let line = deliver(
        &mut Ctx::for_client(&mut alice, &shared),
        deliveries.remove(0),
    )
    .unwrap();
    assert!(line.starts_with("brokered channel pid "), "{line}");
    let got_alice = events(&mut alice, &mut alice_peer, &[2, 3, 4, 5]);
    assert_eq!(
        (got_alice[0].0, got_alice[0].1),
        (3, waypass_name_v1::evt::PEER)
    );
    assert!(
        got_alice[0].3.starts_with(&format!("None {pid} ")),
        "bob owns no name"
    );

    // The two fds are the ends of one channel.
    let mut to_alice = UnixStream::from(got.into_iter().nth(2).unwrap().2.remove(0));
    let mut at_alice = UnixStream::from(got_alice.into_iter().next().unwrap().2.remove(0));
    to_alice.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    at_alice.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");

    // Alice leaves: the name is free again.
    broker.release_all(alice.key, &alice.session.names);
    assert_eq!(broker.name_count(), 0);
}

#[test]
fn limits_answer_with_failed() {
    let shared = shared();
    let limits = BrokerLimits {
        max_names: 2,
        max_pending: 1,
        ..BrokerLimits::default()
    };
    let mut broker = Broker::new(limits);
    let (mut alice, mut alice_peer) = client(1);
    let (mut bob, mut bob_peer) = client(2);
    let mut cx = Ctx::for_client(&mut alice, &shared);
    for (id, name) in [(2, c"a1"), (3, c"a2"), (4, c"a3")] {
        register(&mut cx, &mut broker, id, name).unwrap();
    }
    // Withdrawing makes room.
    withdraw(&mut cx, &mut broker, 2).unwrap();
    register(&mut cx, &mut broker, 5, c"a3").unwrap();
    let got: Vec<String> = events(&mut alice, &mut alice_peer, &[2, 3, 4, 5])
        .into_iter()
        .map(|e| format!("{}.{} {}", e.0, e.1, e.3))
        .collect();
    assert_eq!(
        got,
        [
            "2.0 ", "3.0 ", "4.1 2 ", // too_many_names
            "1.1 2 ", // wl_display.delete_id(2)
            "5.0 "
        ]
    );
    let mut cx = Ctx::for_client(&mut bob, &shared);
    connect(&mut cx, &mut broker, 2, c"a2").unwrap();
    connect(&mut cx, &mut broker, 3, c"a2").unwrap();
    destroy_connection(&mut cx, 2).unwrap();
    destroy_connection(&mut cx, 3).unwrap();
    connect(&mut cx, &mut broker, 4, c"a2").unwrap();
    let got: Vec<(u32, u16, String)> = events(&mut bob, &mut bob_peer, &[])
        .into_iter()
        .map(|e| (e.0, e.1, e.3))
        .collect();
    assert_eq!(got[0].1, waypass_connection_v1::evt::ESTABLISHED);
    assert_eq!((got[1].0, got[1].2.as_str()), (3, "5 "), "too_many_pending");
    // Two delete_ids, then a channel again.
    assert_eq!(
        (got[4].0, got[4].1),
        (4, waypass_connection_v1::evt::ESTABLISHED)
    );
    assert_eq!(broker.take_deliveries().len(), 2);
}

#[test]
fn an_owner_with_a_full_backlog_is_busy_until_drained() {
    let shared = shared();
    let limits = BrokerLimits {
        max_backlog: 2,
        ..BrokerLimits::default()
    };
    let mut broker = Broker::new(limits);
    let (mut alice, _alice_peer) = client(1);
    let (mut bob, mut bob_peer) = client(2);
    register(
        &mut Ctx::for_client(&mut alice, &shared),
        &mut broker,
        2,
        c"alice",
    )
    .unwrap();
    let mut cx = Ctx::for_client(&mut bob, &shared);
    for id in 2..=4 {
        connect(&mut cx, &mut broker, id, c"alice").unwrap();
    }
    assert_eq!(broker.owners_with_backlog(), [alice.key]);
    assert_eq!(broker.backlog(alice.key), 2);
    broker.owner_unread(alice.key, 1);
    assert_eq!(broker.backlog(alice.key), 1);
    broker.owner_unread(alice.key, 5);
    assert_eq!(broker.backlog(alice.key), 1, "fds unread bound the backlog");
    broker.owner_unread(alice.key, 0);
    assert!(broker.owners_with_backlog().is_empty());
    let mut cx = Ctx::for_client(&mut bob, &shared);
    connect(&mut cx, &mut broker, 5, c"alice").unwrap();
    let got: Vec<(u32, u16, String)> = events(&mut bob, &mut bob_peer, &[])
        .into_iter()
        .map(|e| (e.0, e.1, e.3))
        .collect();
    let established = waypass_connection_v1::evt::ESTABLISHED;
    assert_eq!((got[0].0, got[0].1), (2, established));
    assert_eq!((got[1].0, got[1].1), (3, established));
    assert_eq!((got[2].0, got[2].2.as_str()), (4, "6 "), "busy");
    assert_eq!((got[3].0, got[3].1), (5, established));
    assert_eq!(broker.take_deliveries().len(), 3);
    assert_eq!(broker.backlog(alice.key), 1);
    // The owner leaves: its backlog goes with it.
    broker.release_all(alice.key, &alice.session.names);
    assert_eq!(broker.backlog(alice.key), 0);
}
