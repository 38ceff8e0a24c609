//! 1,000 pasters at once against `waypass-server --persist`: a 256 KiB
//! selection whose copier has left, pasted by 1,000 connections, each
//! with its paste in progress before any is read. What it checks: every
//! paster gets the bytes, byte for byte; a wl-paste from another process
//! is served while the 1,000 are open; the server's fds come back once
//! they leave. It reports (and does not assert) how long the reads took.
//!
//! It runs alone ([`crate::alone`]): it holds 2,000 fds (a socket and a
//! pipe per paster) in this process and raises its fd limit.

use std::time::Instant;

use waypass_client::{Clipboard, Selection};
use waypass_test_support::clipboard::{ok, wl};
use waypass_test_support::load::raise_fd_limit;
use waypass_test_support::persist::{
    random_bytes, read_patiently, wait_persisted, Script, ScriptedCopier,
};
use waypass_test_support::Server;

const PASTERS: usize = 1_000;

#[test]
fn a_thousand_pasters_at_once_all_get_the_persisted_bytes() {
    let _alone = crate::alone();
    let limit = raise_fd_limit();
    assert!(limit as usize > 2 * PASTERS + 100, "fd hard limit {limit}");
    let server = Server::start(&["--persist"]);
    let data = random_bytes(256 << 10);
    let mime = "application/octet-stream";
    let copier = ScriptedCopier::copy(
        &server,
        Selection::Regular,
        &[(mime, Script::Bytes(data.clone()))],
    );
    assert_eq!(wait_persisted(&server, Selection::Regular, 1).kept, 1);
    copier.leave();
    server.wait_log("the server now serves the regular selection", 1);
    let baseline = server.fd_count();

    let socket = server.socket_arg();
    let mut pasters = Vec::with_capacity(PASTERS);
    for i in 0..PASTERS {
        let mut clipboard = Clipboard::connect(Some(socket))
            .unwrap_or_else(|e| panic!("paster {i} cannot connect: {e}"));
        let pipe = clipboard
            .paste(Selection::Regular, mime)
            .unwrap_or_else(|e| panic!("paster {i} cannot paste: {e}"));
        pasters.push((clipboard, pipe));
    }
    eprintln!(
        "server fds: {baseline} before, {} with {PASTERS} pastes in progress",
        server.fd_count()
    );
    // Another process is served meanwhile.
    assert!(ok(wl(&server.socket, "wl-paste", &["--type", mime])) == data);

    let start = Instant::now();
    for (i, (_, pipe)) in pasters.iter_mut().enumerate() {
        let got = read_patiently(pipe).unwrap();
        assert!(got == data, "paster {i}: {} bytes", got.len());
    }
    eprintln!(
        "{PASTERS} pastes of {} KiB read in {:?}",
        data.len() >> 10,
        start.elapsed()
    );
    drop(pasters);
    server.wait_fds_at_most(baseline);
}
