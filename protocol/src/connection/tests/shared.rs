//! `SharedBuffers`: connections served in turn receive into one buffer and
//! encode into the same chunks, and keep nothing once served.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::super::{Connection, Recv, SharedBuffers};
use crate::interface::{arg, msg, ArgKind, MessageDesc};
use crate::wire::Arg;

static PING: MessageDesc = msg("ping", 1, &[arg("n", ArgKind::Uint)]);
static BLOB: MessageDesc = msg("blob", 1, &[arg("a", ArgKind::Array)]);

fn ping(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&7u32.to_ne_bytes());
    out.extend_from_slice(&(12u32 << 16).to_ne_bytes()); // size 12, opcode 0
    out.extend_from_slice(&n.to_ne_bytes());
    out
}

/// One wakeup of a server: borrow, receive, answer every ping, flush, give back.
fn serve(conn: &mut Connection, shared: &mut SharedBuffers) -> usize {
    conn.borrow_buffers(shared);
    assert!(matches!(conn.recv().unwrap(), Recv::Data(_)));
    let mut answered = 0;
    loop {
        let (incoming, outgoing) = conn.split();
        let Some(m) = incoming.next_message(|_| Ok::<_, ()>(&PING)).unwrap() else {
            break;
        };
        let [Arg::Uint(n)] = m.args[..] else {
            panic!("{m:?}")
        };
        outgoing.send(7, 0, &PING, &[Arg::Uint(n + 1)]).unwrap();
        answered += 1;
    }
    conn.flush().unwrap();
    conn.return_buffers(shared);
    answered
}

#[test]
fn connections_served_in_turn_reuse_the_same_buffers_and_keep_none() {
    let mut shared = SharedBuffers::default();
    let (mut a_peer, a) = UnixStream::pair().unwrap();
    let (mut b_peer, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Connection::new(a).unwrap(), Connection::new(b).unwrap());
    a_peer.write_all(&ping(1)).unwrap();
    assert_eq!(serve(&mut a, &mut shared), 1);
    let (input, chunks) = (shared.input.as_ptr(), shared.chunks.addresses());
    assert!(!chunks.0.is_null() && !chunks.1.is_null());
    for (conn, peer) in [(&mut b, &mut b_peer), (&mut a, &mut a_peer)] {
        peer.write_all(&[ping(2), ping(3)].concat()).unwrap();
        assert_eq!(serve(conn, &mut shared), 2);
        // The same allocations went round: none was made for this wakeup.
        assert_eq!(shared.input.as_ptr(), input);
        assert_eq!(shared.chunks.addresses(), chunks);
        assert_eq!(conn.heap_bytes(), 0);
    }
    let mut answers = [0u8; 36];
    a_peer.read_exact(&mut answers).unwrap();
    let n = u32::from_ne_bytes(answers[8..12].try_into().unwrap());
    assert_eq!(n, 2);
}

#[test]
fn a_half_received_message_keeps_only_its_own_bytes() {
    let mut shared = SharedBuffers::default();
    let (mut peer, ours) = UnixStream::pair().unwrap();
    let mut conn = Connection::new(ours).unwrap();
    let whole = ping(5);
    peer.write_all(&whole[..6]).unwrap();
    assert_eq!(serve(&mut conn, &mut shared), 0);
    assert_eq!(conn.heap_bytes(), 6);
    assert!(
        shared.input.capacity() >= 4096,
        "the shared buffer came back"
    );
    peer.write_all(&whole[6..]).unwrap();
    assert_eq!(serve(&mut conn, &mut shared), 1);
    let mut answer = [0u8; 12];
    peer.read_exact(&mut answer).unwrap();
    assert_eq!(u32::from_ne_bytes(answer[8..12].try_into().unwrap()), 6);
    assert_eq!(conn.heap_bytes(), 0);
}

#[test]
fn a_queue_that_drained_to_a_few_chunks_holds_little_more_than_them() {
    let mut shared = SharedBuffers::default();
    let (x, mut reader) = UnixStream::pair().unwrap();
    let mut a = Connection::new(x).unwrap();
    // One wakeup queues close to the 1 MiB cap: about 260 chunks.
    a.borrow_buffers(&mut shared);
    let blob = [7u8; 4000];
    while a.split().1.queued_bytes() + 8192 < super::super::Limits::default().max_out_bytes {
        a.send(1, 0, &BLOB, &[Arg::Array(&blob)]).unwrap();
    }
    a.flush().unwrap();
    a.return_buffers(&mut shared);
    let full = a.heap_bytes();
    // Wakeups as the peer reads, until about one chunk is left.
    reader.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    while a.split().1.queued_bytes() > 8192 {
        let _ = reader.read(&mut buf);
        a.borrow_buffers(&mut shared);
        a.flush().unwrap();
        a.return_buffers(&mut shared);
    }
    let queued = a.split().1.queued_bytes();
    // What is queued (at most three chunks, partly sent) and the queues'
    // small change; the spare chunks went back with the shared buffers.
    // Without the shrink, the chunk queue alone kept 16 KiB of room.
    let bound = 3 * 4096 + 1024;
    assert!(
        a.heap_bytes() <= bound,
        "{} heap bytes for {queued} queued (full: {full})",
        a.heap_bytes()
    );
}
