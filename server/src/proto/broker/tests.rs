use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use waypass_protocol::protocols::broker::waypass_broker_v1::failure;
use waypass_protocol::{Connection, Interface, Message, Recv, TypedMessage};

use super::*;
use crate::limits::Limits;
use crate::proto::testing::Fixture;

/// The interface of an object in these tests: 1 is `wl_display`, the ids
/// in `names` are names, every other one a connection.
fn interface_of(id: u32, names: &[u32]) -> &'static Interface {
    match id {
        1 => &wl_display::INTERFACE,
        id if names.contains(&id) => &waypass_name_v1::INTERFACE,
        _ => &waypass_connection_v1::INTERFACE,
    }
}

/// An event as a test reads it: its fds, and its other arguments as text.
fn event_text(msg: Message<'_>, interface: &Interface) -> (Vec<OwnedFd>, String) {
    use waypass_connection_v1::Event as C;
    use waypass_name_v1::Event as N;
    let (op, args) = (msg.opcode, msg.args);
    let creds = |pid, uid, gid| format!("{pid} {uid} {gid} ");
    if std::ptr::eq(interface, &wl_display::INTERFACE) {
        return match wl_display::Event::from_args(op, args).unwrap() {
            wl_display::Event::DeleteId { id } => (vec![], format!("{id} ")),
            other => panic!("{other:?}"),
        };
    }
    if std::ptr::eq(interface, &waypass_name_v1::INTERFACE) {
        return match N::from_args(op, args).unwrap() {
            N::Registered => (vec![], String::new()),
            N::Failed { reason } => (vec![], format!("{} ", u32::from(reason))),
            N::Peer {
                fd,
                peer_name,
                pid,
                uid,
                gid,
            } => (vec![fd], format!("{peer_name:?} {}", creds(pid, uid, gid))),
        };
    }
    match C::from_args(op, args).unwrap() {
        C::Established {
            fd,
            peer_name,
            pid,
            uid,
            gid,
        } => (
            vec![fd],
            format!("Some({peer_name:?}) {}", creds(pid, uid, gid)),
        ),
        C::Failed { reason } => (vec![], format!("{} ", u32::from(reason))),
    }
}

/// Flushes client `key` and decodes the events its peer receives, as
/// (sender, opcode, fds, args as text).
fn events(
    fx: &mut Fixture,
    key: ClientKey,
    peer: &mut Connection,
    names: &[u32],
) -> Vec<(u32, u16, Vec<OwnedFd>, String)> {
    fx.get(key).conn.flush().unwrap();
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
        let (sender, opcode) = (msg.sender, msg.opcode);
        let (fds, text) = event_text(msg, interface_of(sender, names));
        out.push((sender, opcode, fds, text));
    }
    out
}

/// `register` at the new id `id`.
fn register(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32, name: &CStr) -> Result<(), Stop> {
    super::register(cx, broker, NewId::from_raw(id), name)
}

/// `connect` at the new id `id`.
fn connect(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32, name: &CStr) -> Result<(), Stop> {
    super::connect(cx, broker, NewId::from_raw(id), name)
}

/// `withdraw` on name `id`.
fn withdraw(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32) -> Result<(), Stop> {
    super::withdraw(cx, broker, ObjectId::from_raw(id))
}

/// `destroy` on connection `id`.
fn destroy_connection(cx: &mut Ctx<'_>, id: u32) -> Result<(), Stop> {
    super::destroy_connection(cx, ObjectId::from_raw(id))
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
fn connect_reads_a_name_of_its_own_uid_or_an_explicit_one() {
    assert_eq!(parse_target(b"bob", 1000), Some((1000, "bob")));
    assert_eq!(parse_target(b"bob@0", 1000), Some((0, "bob")));
    assert_eq!(parse_target(b"bob@65534", 1000), Some((65534, "bob")));
    for bad in [
        &b"bob@"[..],
        b"bob@-1",
        b"bob@1x",
        b"@0",
        b"bob@99999999999",
        b"b b@1",
        b"bob@+1",
    ] {
        assert_eq!(
            parse_target(bad, 1000),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_channel_joins_requester_and_owner() {
    let mut fx = Fixture::new();
    let mut broker = Broker::default();
    let (alice, mut alice_peer) = fx.client();
    let (bob, mut bob_peer) = fx.client();
    for c in [alice, bob] {
        fx.get(c).objects.insert_at(2, Object::Broker).unwrap();
    }
    fx.with(alice, |cx| register(cx, &mut broker, 3, c"alice"))
        .unwrap();
    let got = events(&mut fx, alice, &mut alice_peer, &[2, 3, 4, 5]);
    assert_eq!(got[0].1, waypass_name_v1::evt::REGISTERED);

    fx.with(bob, |cx| {
        // Taken, then unknown: failures, not errors.
        register(cx, &mut broker, 3, c"alice")?;
        connect(cx, &mut broker, 4, c"carol")?;
        connect(cx, &mut broker, 5, c"alice")
    })
    .unwrap();
    let pid = std::process::id();
    let got = events(&mut fx, bob, &mut bob_peer, &[3]);
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
    assert_eq!(fx.get(bob).session.connections, 2, "failed ones count too");

    // The owner's end was queued on alice directly, to be flushed.
    assert_eq!(fx.clients.take_unflushed(), [alice]);
    let got_alice = events(&mut fx, alice, &mut alice_peer, &[2, 3, 4, 5]);
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
    let client = fx.get(alice);
    let (key, uid, names) = (client.key, client.uid(), client.session.names.clone());
    broker.release_all(key, uid, &names);
    assert_eq!(broker.name_count(), 0);
}

#[test]
fn a_name_of_another_uid_is_reached_only_explicitly() {
    let mut fx = Fixture::new();
    let mut broker = Broker::default();
    let (alice, _alice_peer) = fx.client();
    let (bob, mut bob_peer) = fx.client();
    let uid = fx.get(alice).uid();
    // Alice is another user: its "bob" does not take ours.
    let other = uid.wrapping_add(1);
    fx.get(alice).creds.as_mut().unwrap().uid = other;
    fx.with(alice, |cx| register(cx, &mut broker, 2, c"bob"))
        .unwrap();
    let explicit = CString::new(format!("bob@{other}")).unwrap();
    fx.with(bob, |cx| {
        register(cx, &mut broker, 2, c"bob")?;
        connect(cx, &mut broker, 3, c"bob")?;
        connect(cx, &mut broker, 4, &explicit)
    })
    .unwrap();
    let got = events(&mut fx, bob, &mut bob_peer, &[2]);
    assert_eq!((got[0].0, got[0].1), (2, waypass_name_v1::evt::REGISTERED));
    assert_eq!(
        got[1].3,
        format!("{} ", failure::SELF_CONNECT),
        "our own bob"
    );
    assert_eq!(
        (got[2].0, got[2].1),
        (4, waypass_connection_v1::evt::ESTABLISHED)
    );
    assert_eq!(broker.name_count(), 2);
}

#[test]
fn limits_answer_with_failed() {
    let mut limits = Limits::default();
    limits.set("names", 2).unwrap();
    limits.set("pending-connects", 1).unwrap();
    let mut fx = Fixture::with_limits(limits);
    let mut broker = Broker::default();
    let (alice, mut alice_peer) = fx.client();
    let (bob, mut bob_peer) = fx.client();
    fx.with(alice, |cx| {
        for (id, name) in [(2, c"a1"), (3, c"a2"), (4, c"a3")] {
            register(cx, &mut broker, id, name)?;
        }
        // Withdrawing makes room.
        withdraw(cx, &mut broker, 2)?;
        register(cx, &mut broker, 5, c"a3")
    })
    .unwrap();
    let got: Vec<String> = events(&mut fx, alice, &mut alice_peer, &[2, 3, 4, 5])
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
    fx.with(bob, |cx| {
        connect(cx, &mut broker, 2, c"a2")?;
        connect(cx, &mut broker, 3, c"a2")?;
        destroy_connection(cx, 2)?;
        destroy_connection(cx, 3)?;
        connect(cx, &mut broker, 4, c"a2")
    })
    .unwrap();
    let got: Vec<(u32, u16, String)> = events(&mut fx, bob, &mut bob_peer, &[])
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
    assert_eq!(broker.backlog(alice), 2);
}

#[test]
fn an_owner_with_a_full_backlog_is_busy_until_it_reads() {
    let mut limits = Limits::default();
    limits.set("pending-peers", 2).unwrap();
    let mut fx = Fixture::with_limits(limits);
    let mut broker = Broker::default();
    let (alice, mut alice_peer) = fx.client();
    let (bob, mut bob_peer) = fx.client();
    fx.with(alice, |cx| register(cx, &mut broker, 2, c"alice"))
        .unwrap();
    fx.with(bob, |cx| {
        (2..=4).try_for_each(|id| connect(cx, &mut broker, id, c"alice"))
    })
    .unwrap();
    assert_eq!(broker.backlog(alice), 2);
    broker.owner_unread(alice, 5);
    assert_eq!(broker.backlog(alice), 2, "fds unread bound the backlog");
    // Alice reads her two channels: the next connect finds her free again
    // by looking at her socket, with no wakeup of hers.
    let got = events(&mut fx, alice, &mut alice_peer, &[2]);
    assert_eq!(got.len(), 3, "registered, then two peers");
    fx.with(bob, |cx| connect(cx, &mut broker, 5, c"alice"))
        .unwrap();
    let got: Vec<(u32, u16, String)> = events(&mut fx, bob, &mut bob_peer, &[])
        .into_iter()
        .map(|e| (e.0, e.1, e.3))
        .collect();
    let established = waypass_connection_v1::evt::ESTABLISHED;
    assert_eq!((got[0].0, got[0].1), (2, established));
    assert_eq!((got[1].0, got[1].1), (3, established));
    assert_eq!((got[2].0, got[2].2.as_str()), (4, "6 "), "busy");
    assert_eq!((got[3].0, got[3].1), (5, established));
    assert_eq!(broker.backlog(alice), 1);
    // The owner leaves: its backlog goes with it.
    let uid = fx.get(alice).uid();
    let names = fx.get(alice).session.names.clone();
    broker.release_all(alice, uid, &names);
    assert_eq!(broker.backlog(alice), 0);
}
