//! End-to-end: output queued for clients that never read is given back to
//! the system once they leave.
//!
//! [`CLIENTS`] raw connections each send [`REGISTRIES`] `get_registry`
//! requests in one write and never read: the replies (168 bytes each) fill
//! the socket buffer and then the server's output queue, below its
//! per-connection cap; those past their share of the server's output
//! budget (64 MiB, shared by all takers) are cut off, as they should be.
//! The test waits until the server has read every request byte
//! (`SIOCOUTQ` on each connection is 0). Then another client
//! connects and gets a keyboard, as one would while they are there: what
//! the server allocates for it sits above their memory in the heap, and
//! stays. The slow clients close, and the test waits until the server has
//! closed their sockets. What it asserts: the server's RSS after they left
//! is within [`RSS_AFTER_KIB`] of what it was before they came (freed
//! memory that the allocator keeps counts: the server must hand it back).
//! What it reports: the RSS before, while they were connected, and after.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use nix::libc;
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::wire::{self, Arg};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

/// Connections that never read.
const CLIENTS: usize = 100;
/// `get_registry` requests each sends: 48 KB of requests, 672 KB of
/// replies (about 470 KB of them queued in the server).
const REGISTRIES: u32 = 4000;
/// Allowed RSS above the baseline once they have left.
const RSS_AFTER_KIB: u64 = 16 * 1024;
/// Allowed RSS above the baseline while they are there: the output budget
/// and room for everything else.
const RSS_WHILE_KIB: u64 = 64 * 1024 + 32 * 1024;

/// `wl_display.get_registry` with new ids `2..2 + count`.
fn registries(count: u32) -> Vec<u8> {
    let op = wl_display::req::GET_REGISTRY;
    let desc = &wl_display::INTERFACE.requests[usize::from(op)];
    let mut out = Vec::new();
    let mut buf = [0u8; 16];
    for id in 2..2 + count {
        let n = wire::encode(1, op, desc, &[Arg::NewId(id)], &mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Bytes written on `stream` that the server has not read (`SIOCOUTQ`).
fn unread(stream: &UnixStream) -> usize {
    let mut unread: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int through its pointer,
    // which points to `unread`, live for the call; the fd is open.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
    assert_eq!(r, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    unread as usize
}

#[test]
fn output_queued_for_clients_that_leave_is_given_back() {
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let mut good = WlClient::connect(&server.socket);
    good.roundtrip();
    let fd_base = server.fd_count();
    let request = registries(REGISTRIES);
    let rss_before = server.rss_kib();

    let mut slow = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = UnixStream::connect(&server.socket).unwrap();
        stream.write_all(&request).unwrap();
        slow.push(stream);
    }
    // Every request read (and so dispatched: the round trip comes after),
    // or its connection cut off.
    assert!(eventually(|| slow.iter().all(|s| unread(s) == 0)));
    good.roundtrip();
    let rss_while = server.rss_kib();
    let kept = server.fd_count() - fd_base;
    let mut late = WlClient::connect(&server.socket);
    late.get_keyboard();
    late.roundtrip();

    drop(slow);
    assert!(eventually(|| server.fd_count() == fd_base + 1));
    good.roundtrip();
    late.roundtrip();
    let rss_after = server.rss_kib();
    println!(
        "output memory: {CLIENTS} clients that never read, {REGISTRIES} get_registry each, \
         {kept} kept within their share; server RSS {rss_before} KiB before, {rss_while} KiB \
         while connected ({:+} KiB), {rss_after} KiB after they left ({:+} KiB)",
        rss_while as i64 - rss_before as i64,
        rss_after as i64 - rss_before as i64,
    );
    assert!(
        rss_while > rss_before + 8 * 1024,
        "the clients queued too little to measure: {rss_while} KiB"
    );
    assert!(
        rss_while <= rss_before + RSS_WHILE_KIB,
        "server RSS {rss_while} KiB while they were there: past the output budget"
    );
    assert!(
        rss_after <= rss_before + RSS_AFTER_KIB,
        "server RSS {rss_after} KiB after the clients left, {rss_before} KiB before"
    );
}
