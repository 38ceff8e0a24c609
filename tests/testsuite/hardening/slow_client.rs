//! End-to-end load: a client that never reads, flooded with `sync` replies.
//!
//! The slow client writes `wl_display.sync` requests as fast as it can and
//! never reads the `done` and `delete_id` replies. What it asserts: the
//! server disconnects it once its outgoing queue passes the cap, the
//! server's RSS stays bounded (sampled all along, within 16 MiB of its
//! baseline: the cap is 1 MiB of queued output), and a well-behaved client
//! keeps completing round trips the whole time. What it reports (and does
//! not assert: the machine is shared and noisy): those round trips'
//! latencies, and the server's peak RSS.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use waypass_test_support::load::sync;
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server, PATIENCE};

/// The most request bytes the flood writes: 16 MiB of syncs ask for about
/// 32 MiB of replies, far past any cap plus the socket buffers.
const FLOOD_BYTES: usize = 16 << 20;
/// Allowed RSS above the baseline at any sample.
const RSS_BOUND_KIB: u64 = 16 * 1024;

/// Writes syncs until the server hangs up; returns the bytes written and
/// whether the hang-up came before `FLOOD_BYTES`.
fn flood(mut stream: UnixStream) -> (usize, bool) {
    let one = sync(2);
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 4096).collect();
    let mut written = 0;
    while written < FLOOD_BYTES {
        match stream.write(&batch) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // EPIPE or ECONNRESET: the server cut us off.
            Err(_) => return (written, true),
        }
    }
    // Not cut off while writing: whether it hangs up now (lossy read).
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (written, true),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (written, true),
            Err(_) => return (written, false),
        }
    }
}

#[test]
fn a_client_that_never_reads_is_cut_off_and_others_carry_on() {
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let mut good = WlClient::connect(&server.socket);
    good.get_keyboard();
    good.roundtrip();
    let fd_base = server.fd_count();
    let rss_base = server.rss_kib();

    let slow = UnixStream::connect(&server.socket).unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let flooder = thread::spawn(move || {
        let result = flood(slow);
        flag.store(true, Ordering::SeqCst);
        result
    });

    // Round trips of the good client while the flood runs (at least 20).
    let mut latencies = Vec::new();
    let mut rss_peak = rss_base;
    while !finished.load(Ordering::SeqCst) || latencies.len() < 20 {
        let start = Instant::now();
        good.roundtrip();
        latencies.push(start.elapsed());
        rss_peak = rss_peak.max(server.rss_kib());
        assert!(
            rss_peak <= rss_base + RSS_BOUND_KIB,
            "server RSS {rss_peak} KiB, baseline {rss_base} KiB"
        );
        assert!(latencies.len() < 1_000_000, "the flood never ended");
    }
    let (written, cut_off) = flooder.join().unwrap();
    assert!(cut_off, "the slow client was not disconnected");
    assert!(
        eventually(|| server.log_text().contains("cannot queue output")),
        "{}",
        server.log_text()
    );
    let k = good.get_keyboard();
    assert_eq!(
        good.seen.keymaps[k].compile().layout_get_name(0),
        "English (US)"
    );
    assert!(eventually(|| server.fd_count() == fd_base));

    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "slow client: cut off after {} KiB of requests; {} round trips of another client \
         meanwhile, latency median {:.2?}, p99 {:.2?}, max {:.2?}; server RSS {rss_base} KiB, \
         peak {rss_peak} KiB",
        written / 1024,
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(Duration::ZERO)
    );
}
