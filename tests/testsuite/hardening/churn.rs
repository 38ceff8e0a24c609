//! End-to-end load: 100,000 connects and disconnects against one server
//! leave no fd growth and bounded memory growth.
//!
//! Most connections are a plain connect and close; every 50th does a full
//! `get_registry` + `sync` round trip, and every 500th the seat and keyboard
//! handshake with its keymap fd, so that every per-client path runs many
//! times. What it asserts: the server's `/proc/PID/fd` count returns exactly
//! to its baseline, its RSS grows by less than 2 MiB, and a client
//! connected through the whole churn still completes round trips. What it
//! reports: the time taken and the RSS before and after.
//!
//! It lives alone in its file: the fd count is the server's, but the test
//! process opens many sockets quickly.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;
use waypass_test_support::load;

use waypass_test_support::load::{exchange, keymap_identity, registry_roundtrip, seat_handshake};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

const CONNECTIONS: usize = 100_000;
const THREADS: usize = 2;
/// Allowed RSS growth, generous: allocator caches and the client table's
/// high-water mark.
const RSS_GROWTH_KIB: u64 = 2048;

fn churn(socket: PathBuf, count: usize) -> Result<(usize, usize), String> {
    let handshake = seat_handshake();
    let (mut roundtrips, mut keymaps) = (0, 0);
    for i in 0..count {
        if i % 500 == 0 {
            let mut stream = UnixStream::connect(&socket).map_err(|e| format!("connect: {e}"))?;
            let got = exchange(&mut stream, &handshake, load::HANDSHAKE_DONE_ID)?;
            keymap_identity(got)?;
            keymaps += 1;
        } else if i % 50 == 0 {
            registry_roundtrip(&socket)?;
            roundtrips += 1;
        } else {
            drop(UnixStream::connect(&socket).map_err(|e| format!("connect {i}: {e}"))?);
        }
    }
    Ok((roundtrips, keymaps))
}

#[test]
fn a_hundred_thousand_connections_leave_nothing_behind() {
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let mut steady = WlClient::connect(&server.socket);
    steady.get_keyboard();
    steady.roundtrip();
    let fd_base = server.fd_count();
    // Warm-up: a first round of churn, so allocator pools exist already.
    churn(server.socket.clone(), 1000).expect("warm-up");
    steady.roundtrip();
    assert!(eventually(|| server.fd_count() == fd_base));
    let rss_base = server.rss_kib();

    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let socket = server.socket.clone();
            thread::spawn(move || churn(socket, CONNECTIONS / THREADS))
        })
        .collect();
    let (mut roundtrips, mut keymaps) = (0, 0);
    for w in workers {
        let (r, k) = w.join().expect("worker").expect("churn");
        roundtrips += r;
        keymaps += k;
    }
    let took = start.elapsed();
    // The client connected all along is still served.
    steady.roundtrip();
    steady.get_keyboard();

    assert!(
        eventually(|| server.fd_count() == fd_base),
        "server fds {} != baseline {fd_base}",
        server.fd_count()
    );
    let rss_after = server.rss_kib();
    println!(
        "churn: {CONNECTIONS} connections ({roundtrips} with a round trip, {keymaps} with a \
         keymap) in {took:.1?}; server fds {fd_base} before and after; RSS {rss_base} KiB -> \
         {rss_after} KiB"
    );
    assert!(
        rss_after <= rss_base + RSS_GROWTH_KIB,
        "RSS grew from {rss_base} KiB to {rss_after} KiB"
    );
    assert!(!server.log_text().contains("panicked"));
}
