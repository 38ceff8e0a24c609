//! End-to-end: the server out of file descriptors. `accept()` failing with
//! EMFILE must not leave connections hanging in the backlog (the listening
//! fd would stay readable and the server would spin): the reserve fd lets
//! the server accept and close them, and it recovers once fds free up.

use std::io::Read;
use std::os::unix::process::CommandExt;

use nix::sys::resource::{setrlimit, Resource};
use waypass_test_support::raw::{msg, u, Raw};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

/// The server's fd limit, soft and hard (start-up can raise soft to hard,
/// so both are set). Its own fds take about a dozen.
const FD_LIMIT: u64 = 20;

#[test]
fn out_of_fds_connections_are_refused_not_left_hanging() {
    let server = Server::start_with(&[], |cmd| {
        // SAFETY: between fork and exec only setrlimit runs, a plain
        // async-signal-safe syscall; nothing is allocated.
        unsafe {
            cmd.pre_exec(|| {
                setrlimit(Resource::RLIMIT_NOFILE, FD_LIMIT, FD_LIMIT)?;
                Ok(())
            });
        }
    });
    let idle = server.fd_count();
    assert!(
        (idle as u64) < FD_LIMIT - 2,
        "room for a few clients: {idle}"
    );

    let mut clients: Vec<Raw> = (0..FD_LIMIT)
        .map(|_| Raw::connect(&server.socket))
        .collect();
    let (mut served, mut refused) = (0, 0);
    for client in &mut clients {
        client.send(&msg(1, 0, &[u(2)]));
        let mut reply = [0u8; 64];
        // A reply means accepted; EOF or a reset means accepted and closed.
        // A connection left in the backlog would block here until the
        // harness's patience runs out.
        match client.stream.read(&mut reply) {
            Ok(0) => refused += 1,
            // wl_display@1.error: over the budget of connections, closed.
            Ok(n) if n >= 8 && reply[..4] == 1u32.to_ne_bytes() => refused += 1,
            Ok(_) => served += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            Err(e) => panic!("connection left hanging: {e}"),
        }
    }
    assert!(served > 0, "some clients fit");
    assert!(refused > 0, "the rest were refused");
    assert!(
        server.log_text().contains("refused a connection"),
        "{}",
        server.log_text()
    );

    // Once the clients leave, the server serves again.
    drop(clients);
    assert!(eventually(|| server.fd_count() == idle));
    let mut client = WlClient::connect(&server.socket);
    let k = client.get_keyboard();
    assert_eq!(
        client.seen.keymaps[k].compile().layout_get_name(0),
        "English (US)"
    );
}
