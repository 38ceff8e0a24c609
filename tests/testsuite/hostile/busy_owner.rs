//! End-to-end: a connect flood on a name whose owner does not read.
//!
//! The attack: about 1,300 connects in 0.3 s to an owner that is busy fill
//! the server's queue of channel ends to that owner; a server that then
//! disconnected the *owner* would free its name for the attacker. What this
//! checks:
//! the server queues at most 64 channels (`--max-pending-peers`) for an
//! owner that has not read them; every further connect fails with `busy`,
//! sent to the requester; the owner stays connected, then reads its 64
//! peers, and once it has, connects to it succeed again.
//!
//! The server runs under a 1,024-fd limit without `CAP_SYS_RESOURCE` and
//! `CAP_SYS_ADMIN` (`setpriv`, `prlimit`), as a normal user's would: the
//! kernel then charges the fds in flight to the owner against that limit,
//! and the server without the backlog lost the owner to `ETOOMANYREFS`.

use std::process::Command;

use waypass_protocol::protocols::broker::{
    waypass_broker_v1::failure, waypass_connection_v1, waypass_name_v1,
};
use waypass_test_support::broker_peer::{on, register_result, Peer};
use waypass_test_support::{bin, Server, TempDir};

const CONNECTS: usize = 1300;
const BATCH: usize = 50;
const BACKLOG: usize = 64;

/// Connects `n` times to `name` in one batch, destroys the connection
/// objects, and returns how many were established and how many busy.
fn connect_batch(requester: &mut Peer, name: &str, n: usize) -> (usize, usize) {
    let ids: Vec<u32> = (0..n).map(|_| requester.connect_to(name)).collect();
    let events = requester.roundtrip();
    assert!(!requester.hung_up, "the requester stays connected");
    let (mut established, mut busy) = (0, 0);
    for &id in &ids {
        let answer = on(&events, id);
        assert_eq!(answer.len(), 1, "one answer on {id}");
        match answer[0].opcode {
            waypass_connection_v1::evt::ESTABLISHED => {
                assert_eq!(answer[0].fds.len(), 1);
                established += 1;
            }
            _ => {
                assert_eq!(answer[0].words[0], i64::from(failure::BUSY), "{answer:?}");
                busy += 1;
            }
        }
    }
    for id in ids {
        requester.destroy(id);
    }
    (established, busy)
}

#[test]
fn a_connect_flood_makes_a_busy_owner_refuse_not_disappear() {
    let dir = TempDir::new("busy-owner");
    let socket = dir.join("wayland-test");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set=-sys_admin,-sys_resource", "--"])
        .args(["prlimit", "--nofile=1024:1024", "--"])
        .arg(bin("waypass-server"))
        .arg("--socket")
        .arg(&socket);
    let server = Server::spawn(cmd, dir, |_| {});
    let mut owner = Peer::connect(&server.socket);
    let (name, refused) = register_result(&mut owner, b"busy-owner");
    assert_eq!(refused, None);
    let mut requester = Peer::connect(&server.socket);
    requester.roundtrip();

    // The owner reads nothing from here on.
    let (mut established, mut busy) = (0, 0);
    for _ in 0..CONNECTS / BATCH {
        let (e, b) = connect_batch(&mut requester, "busy-owner", BATCH);
        established += e;
        busy += b;
    }
    println!("{CONNECTS} connects to an owner that does not read: {established} established, {busy} busy");

    // Still connected, still the owner: its peers wait for it.
    let events = owner.roundtrip();
    assert!(!owner.hung_up, "the owner stays connected");
    let peers = on(&events, name);
    assert_eq!(peers.len(), established);
    assert_eq!(established, BACKLOG);
    assert_eq!(busy, CONNECTS - BACKLOG);
    assert!(peers
        .iter()
        .all(|p| p.opcode == waypass_name_v1::evt::PEER && p.fds.len() == 1));
    drop(events);

    // It has read them: connects succeed again.
    assert_eq!(connect_batch(&mut requester, "busy-owner", 3), (3, 0));
    assert!(!server.log_text().contains("disconnecting client"));
}
