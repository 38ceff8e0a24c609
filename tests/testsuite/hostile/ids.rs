//! End-to-end: a client that uses ever-new object ids while keeping almost
//! none of them alive does not grow the server's memory.
//!
//! The client sends `wl_display.sync` with ids 2, 3, 4, ... (each callback
//! is destroyed by the server as soon as it answers, so at most two objects
//! are live: `wl_display` and one callback), in 4 KiB writes, and reads the
//! replies of each write before the next. What it asserts: every sync is
//! answered, and the server's RSS grows by less than [`RSS_GROWTH_KIB`]
//! over [`IDS`] ids (an object map that costs memory per id ever used
//! grows 8 bytes per id: about 8 MiB here). Then a new id past the next
//! free one is refused with `invalid new id N`, as before. What it reports:
//! the time taken and the RSS before and after. It does not reach
//! libwayland's id bound (0x00f00000 ids): the unit tests of
//! `waypass_protocol::ObjectMap` check that.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use waypass_test_support::load::sync;
use waypass_test_support::raw::{display_error, Raw};
use waypass_test_support::Server;

/// Ids used, one sync each.
const IDS: u32 = 1_000_000;
/// Syncs per write: 4 KiB of requests.
const PER_WRITE: u32 = 4096 / 12;
/// Allowed RSS growth: allocator noise, nothing per id.
const RSS_GROWTH_KIB: u64 = 2048;
/// One sync's replies: `wl_callback.done` and `wl_display.delete_id`.
const REPLY_BYTES: usize = 24;

/// Sends syncs with ids `first..first + count` in one write and reads all
/// their replies; panics on anything else.
fn sync_batch(stream: &mut UnixStream, first: u32, count: u32, buf: &mut Vec<u8>) {
    let request: Vec<u8> = (first..first + count).flat_map(sync).collect();
    stream.write_all(&request).expect("write syncs");
    let want = count as usize * REPLY_BYTES;
    buf.resize(want, 0);
    stream
        .read_exact(buf)
        .unwrap_or_else(|e| panic!("replies to syncs {first}..{}: {e}", first + count));
    // The last reply is delete_id(last id) from wl_display.
    let last = &buf[want - 12..];
    assert_eq!(last[..4], 1u32.to_ne_bytes(), "not from wl_display");
    assert_eq!(
        last[8..],
        (first + count - 1).to_ne_bytes(),
        "not the last id"
    );
}

#[test]
fn ever_new_ids_with_few_live_objects_keep_server_memory_flat() {
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let mut raw = Raw::connect(&server.socket);
    let stream = &mut raw.stream;
    let mut buf = Vec::new();
    // Warm-up: the connection's buffers and the allocator's pools exist.
    let mut next = 2;
    for _ in 0..16 {
        sync_batch(stream, next, PER_WRITE, &mut buf);
        next += PER_WRITE;
    }
    let rss_before = server.rss_kib();
    let start = Instant::now();
    while next < IDS {
        let count = PER_WRITE.min(IDS - next);
        sync_batch(stream, next, count, &mut buf);
        next += count;
    }
    let took = start.elapsed();
    let rss_after = server.rss_kib();
    println!(
        "ever-new ids: {} syncs with ids up to {} in {took:.2?}; server RSS {rss_before} KiB \
         before, {rss_after} KiB after ({:+} KiB)",
        next - 2,
        next - 1,
        rss_after as i64 - rss_before as i64
    );
    assert!(
        rss_after <= rss_before + RSS_GROWTH_KIB,
        "server RSS grew from {rss_before} KiB to {rss_after} KiB over {IDS} ids"
    );

    // The no-gap rule still holds at the high-water mark.
    let gap = next + 1;
    raw.send(&sync(gap));
    let error = display_error(&raw.read_until_hangup()).expect("an error for a gap");
    assert_eq!(
        (error.code, error.message),
        (0, format!("invalid new id {gap}"))
    );
}
