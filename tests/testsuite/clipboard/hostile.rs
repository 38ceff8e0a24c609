//! The clipboard against hostile clients: what they send that nobody asked
//! for, what they never read, and the limits. Each case checks that the
//! misbehaving client is the only one that pays: the copier keeps its
//! selection, other pastes work, and the server's fds come back.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use waypass_test_support::raw;

use waypass_test_support::clipboard::eventually;
use waypass_test_support::raw::{display_error, msg, raw_with_device, s, u, Raw};
use waypass_test_support::{bin, run_with_patience, Server, PATIENCE};

/// The first id the server gives an object it creates for a client.
const FIRST_SERVER_ID: u32 = 0xff00_0000;

fn copy_foreground(server: &Server, data: &[u8]) -> Child {
    let mut child = Command::new(bin("waypass-client"))
        .arg("--socket")
        .arg(&server.socket)
        .args(["copy", "--foreground", "--type", "text/plain", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn copy");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let start = Instant::now();
    while paste(server).as_deref() != Some(data) {
        assert!(start.elapsed() < PATIENCE, "the selection never came");
        thread::sleep(Duration::from_millis(20));
    }
    child
}

fn paste(server: &Server) -> Option<Vec<u8>> {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.arg("--socket")
        .arg(&server.socket)
        .args(["paste", "-n"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let out = run_with_patience(cmd);
    out.status.success().then_some(out.stdout)
}

#[test]
fn a_receive_without_its_fd_is_a_protocol_error_for_that_client_only() {
    let server = Server::start(&[]);
    let mut copier = copy_foreground(&server, b"kept");
    let mut raw = raw_with_device(&server.socket);
    // The device's first offer is the server's first id for this client.
    raw.send(&msg(FIRST_SERVER_ID, 0, &[s("text/plain")]));
    let err = display_error(&raw.read_until_hangup()).expect("an error");
    assert_eq!(err.code, 1, "{err:?}"); // invalid_method
    assert!(err.message.contains("receive: missing fd"), "{err:?}");
    assert_eq!(paste(&server).as_deref(), Some(&b"kept"[..]));
    copier.kill().unwrap();
    copier.wait().unwrap();
}

#[test]
fn an_fd_that_is_not_a_pipe_is_forwarded_and_only_the_paster_gets_it() {
    let server = Server::start(&[]);
    let baseline = server.fd_count();
    let mut copier = copy_foreground(&server, b"into a file");
    let mut raw = raw_with_device(&server.socket);
    let path = server.dir.join("not-a-pipe");
    let file = File::create(&path).unwrap();
    raw.send_with_fds(
        &msg(FIRST_SERVER_ID, 0, &[s("text/plain")]),
        &[file.as_fd()],
    );
    drop(file);
    eventually("the copier wrote into the paster's file", || {
        fs::read(&path).unwrap_or_default() == b"into a file"
    });
    assert_eq!(paste(&server).as_deref(), Some(&b"into a file"[..]));
    drop(raw);
    copier.kill().unwrap();
    copier.wait().unwrap();
    eventually("server fds back to baseline", || {
        server.fd_count() <= baseline
    });
}

#[test]
fn a_source_that_never_writes_costs_only_its_paster() {
    let server = Server::start(&[]);
    // The silent source: offers text/plain, sets the selection, never reads.
    let mut source = raw_with_device(&server.socket);
    source.send(&msg(4, 0, &[u(6)])); // create_data_source(6)
    source.send(&msg(6, 0, &[s("text/plain")]));
    source.send(&msg(5, 0, &[u(6)])); // set_selection(6)
    let mut paster = waypass_client::Clipboard::connect(server.socket.to_str()).unwrap();
    eventually("the silent selection", || {
        paster
            .wait_for_change(
                waypass_client::Selection::Regular,
                Some(Duration::from_millis(50)),
            )
            .unwrap();
        paster.types(waypass_client::Selection::Regular).is_some()
    });
    let mut pipe = paster
        .paste(waypass_client::Selection::Regular, "text/plain")
        .unwrap();
    // The server and every other client carry on meanwhile.
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.arg("--socket")
        .arg(&server.socket)
        .args(["keymap", "--json"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    assert!(run_with_patience(cmd).status.success());
    // The source goes away: the paster reads EOF, not a hang.
    drop(source);
    let mut got = Vec::new();
    pipe.read_to_end(&mut got).unwrap();
    assert!(got.is_empty());
}

#[test]
fn a_paster_that_closes_early_does_not_hurt_the_copier() {
    let server = Server::start(&[]);
    let data = vec![b'x'; 8 << 20];
    let mut copier = copy_foreground(&server, &data);
    let mut early = waypass_client::Clipboard::connect(server.socket.to_str()).unwrap();
    for _ in 0..20 {
        let pipe = early
            .paste(waypass_client::Selection::Regular, "text/plain")
            .unwrap();
        drop(pipe); // the copier's write gets EPIPE
    }
    assert!(paste(&server) == Some(data), "the copier stopped serving");
    assert!(copier.try_wait().unwrap().is_none(), "the copier exited");
    copier.kill().unwrap();
    copier.wait().unwrap();
}

#[test]
fn too_many_mime_types_or_sources_or_a_long_type_end_only_that_client() {
    let server = Server::start(&[]);
    let mut copier = copy_foreground(&server, b"safe");
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "too many MIME types",
            std::iter::once(msg(4, 0, &[u(6)]))
                .chain((0..65).map(|i| msg(6, 0, &[s(&format!("type/n{i}"))])))
                .collect(),
        ),
        (
            "MIME type longer than 255 bytes",
            vec![msg(4, 0, &[u(6)]), msg(6, 0, &[s(&"a".repeat(256))])],
        ),
        (
            "too many data sources",
            (6..6 + 33).map(|id| msg(4, 0, &[u(id)])).collect(),
        ),
    ];
    for (expected, requests) in cases {
        let mut raw = raw_with_device(&server.socket);
        for r in &requests {
            raw.send(r);
        }
        let err = display_error(&raw.read_until_hangup()).expect(expected);
        assert_eq!(err.code, 2, "{err:?}"); // no_memory
        assert!(err.message.contains(expected), "{err:?}");
        assert_eq!(
            paste(&server).as_deref(),
            Some(&b"safe"[..]),
            "after {expected}"
        );
    }
    copier.kill().unwrap();
    copier.wait().unwrap();
}

#[test]
fn a_client_that_hoards_offers_gets_no_new_ones_until_it_destroys_one() {
    const OFFERS_MAX: usize = 256;
    let server = Server::start(&[]);
    // A device that never destroys the offers it is given.
    let mut hoarder = raw_with_device(&server.socket);
    hoarder.send(&msg(1, 0, &[u(6)])); // sync: the device exists
    let mut copier = waypass_client::Clipboard::connect(server.socket.to_str()).unwrap();
    for _ in 0..300 {
        copier
            .copy(waypass_client::Selection::Regular, &["text/plain"])
            .unwrap();
    }
    // Not cut off: it just stops being told, at its limit of live offers.
    let events = hoarder.roundtrip(7);
    let offers = |events: &[raw::Event]| {
        events
            .iter()
            .filter(|e| (e.sender, e.opcode) == (5, 0)) // device.data_offer
            .count()
    };
    assert_eq!(display_error(&events), None);
    assert_eq!(
        offers(&events),
        OFFERS_MAX,
        "one per selection, up to the limit"
    );
    // One destroyed: it is told of the latest selection, once.
    hoarder.send(&msg(FIRST_SERVER_ID, 1, &[])); // offer.destroy
    let events = hoarder.roundtrip(8);
    assert_eq!(offers(&events), 1, "{events:?}");
    assert!(copier.types(waypass_client::Selection::Regular).is_some());
}

/// Reads what the server sends `raw` for `for_how_long`, returning whether
/// the connection is still open at the end (no EOF, no reset).
fn still_connected(raw: &mut Raw, for_how_long: Duration) -> bool {
    raw.stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    while start.elapsed() < for_how_long {
        match raw.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

#[test]
fn a_flood_of_receives_never_costs_the_copier_its_connection() {
    let server = Server::start(&[]);
    // A source whose client does not read (yet): it sets the selection.
    let mut source = raw_with_device(&server.socket);
    source.send(&msg(4, 0, &[u(6)])); // create_data_source(6)
    source.send(&msg(6, 0, &[s("text/plain")]));
    source.send(&msg(5, 0, &[u(6)])); // set_selection(6)
    let mut paster = raw_with_device(&server.socket);
    paster.send(&msg(1, 0, &[u(6)])); // sync
    thread::sleep(Duration::from_millis(200));
    let baseline = server.fd_count();
    let (_read, write) = nix::unistd::pipe().unwrap();
    // Its device's first offer is the current selection: receive it 3,000
    // times, each with the write end of a pipe.
    let receive = msg(FIRST_SERVER_ID, 0, &[s("text/plain")]);
    for _ in 0..3000 {
        if !paster.try_send_with_fds(&receive, &[write.as_fd()]) {
            panic!("the paster was cut off");
        }
    }
    thread::sleep(Duration::from_millis(300));
    let during = server.fd_count();
    assert!(during <= baseline + 20, "server fds {baseline} -> {during}");
    // The copier reads at last: it is still connected, and got at most
    // the bounded number of send events.
    assert!(
        still_connected(&mut source, Duration::from_millis(500)),
        "the copier was cut off"
    );
    assert!(
        still_connected(&mut paster, Duration::from_millis(100)),
        "the paster was cut off"
    );
}
