//! End-to-end load: 10,000 clients connected to one server at once, each
//! bound to `wl_seat` with a keyboard and its keymap received.
//!
//! What it checks: every client gets the keymap, all of them the same file
//! (one (dev, ino)); the server holds exactly one keymap memfd inode in its
//! `/proc/PID/fd` and `/proc/PID/maps`; a new client's `sync` round trip and
//! keymap fetch still complete with all of them connected. What it reports
//! (and does not assert): the server's memory per client, the RSS
//! difference divided by the number of clients.
//!
//! It runs alone ([`crate::alone`]): it holds 10,000 sockets in this
//! process and raises its fd limit.
//!
//! # Implementation notes
//!
//! The clients are raw sockets spread over four threads. Each keymap fd is
//! checked (fstat size, (dev, ino)) and closed at once, so the test process
//! holds one fd per client, under the 20,000 hard limit.

use std::collections::BTreeSet;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;
use waypass_test_support::load;

use waypass_test_support::load::{
    exchange, keymap_identity, memfd_inodes, raise_fd_limit, seat_handshake,
};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::Server;

const CLIENTS: usize = 10_000;
const THREADS: usize = 4;

type Connected = Vec<(UnixStream, (u64, u64), u32)>;

fn connect_many(socket: PathBuf, count: usize) -> Result<Connected, String> {
    let request = seat_handshake();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = UnixStream::connect(&socket).map_err(|e| format!("client {i}: {e}"))?;
        let got = exchange(&mut stream, &request, load::HANDSHAKE_DONE_ID)
            .map_err(|e| format!("client {i}: {e}"))?;
        let (inode, size) = keymap_identity(got).map_err(|e| format!("client {i}: {e}"))?;
        out.push((stream, inode, size));
    }
    Ok(out)
}

#[test]
fn ten_thousand_keyboards_share_one_keymap() {
    let _alone = crate::alone();
    let limit = raise_fd_limit();
    assert!(limit as usize > CLIENTS + 100, "fd hard limit {limit}");
    let server = Server::start_with(&[], |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let mut first = WlClient::connect(&server.socket);
    first.get_keyboard();
    first.roundtrip();
    let rss_before = server.rss_kib();
    let fds_before = server.fd_count();

    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let socket = server.socket.clone();
            thread::spawn(move || connect_many(socket, CLIENTS / THREADS))
        })
        .collect();
    let mut clients = Vec::with_capacity(CLIENTS);
    for w in workers {
        clients.extend(
            w.join()
                .expect("worker")
                .expect("every client gets its keymap"),
        );
    }
    let took = start.elapsed();
    assert_eq!(clients.len(), CLIENTS);

    // All the same file, of the same size.
    let inodes: BTreeSet<_> = clients.iter().map(|c| c.1).collect();
    let sizes: BTreeSet<_> = clients.iter().map(|c| c.2).collect();
    assert_eq!(inodes.len(), 1, "keymap files seen by clients: {inodes:?}");
    assert_eq!(sizes.len(), 1, "keymap sizes: {sizes:?}");
    assert_eq!(server.fd_count(), fds_before + CLIENTS, "one fd per client");
    let held = memfd_inodes(server.pid());
    assert_eq!(held.len(), 1, "keymap memfds in the server: {held:?}");
    assert_eq!(held, inodes, "the server's memfd is the one clients got");

    // Still responsive: a new client's round trip and keymap fetch.
    let probe = Instant::now();
    let mut late = WlClient::connect(&server.socket);
    late.roundtrip();
    let k = late.get_keyboard();
    assert_eq!(
        late.seen.keymaps[k].compile().layout_get_name(0),
        "English (US)"
    );
    let probe = probe.elapsed();

    let rss_after = server.rss_kib();
    let per_client = (rss_after.saturating_sub(rss_before) * 1024) as f64 / CLIENTS as f64;
    println!(
        "many clients: {CLIENTS} connected in {took:.1?}; server RSS {rss_before} KiB -> \
         {rss_after} KiB, {per_client:.0} bytes per client; one keymap memfd; a new \
         client's round trip + keymap took {probe:.1?}"
    );
    drop(clients);
    assert!(waypass_test_support::eventually(
        || server.fd_count() == fds_before + 1
    ));
    assert!(!server.log_text().contains("panicked"));
}
