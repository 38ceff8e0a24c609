//! Our clipboard clients against hostile peers: a selection that offers no
//! type (against `paste --watch`), and pasters that hand `copy` a
//! read-only fd, never read their pipe, or open many pastes at once. Each
//! case checks that only the hostile peer pays: the copier keeps serving
//! everyone else, and the watcher keeps watching.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_client::{Clipboard, Selection, MAX_PASTES};
use waypass_test_support::clipboard::{client, copy_with, eventually, ok, output, wl};
use waypass_test_support::raw::{msg, raw_with_device, s, u};
use waypass_test_support::{fd_count, Server};

/// The first id the server gives an object it creates for a client: a
/// new device's first offer (the current selection).
const FIRST_SERVER_ID: u32 = 0xff00_0000;
const MIME: &str = "application/x-waypass-test";

/// `waypass-client copy --foreground ARGS` serving `data` as [`MIME`],
/// once the selection is set.
fn copier(server: &Server, args: &[&str], data: &[u8]) -> Child {
    let mut child = client(
        &server.socket,
        &[&["copy", "--foreground", "--type", MIME], args].concat(),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn copy");
    child.stdin.take().unwrap().write_all(data).unwrap();
    eventually("the selection", || {
        output(client(&server.socket, &["paste", "--list-types"])).stdout
            == format!("{MIME}\n").as_bytes()
    });
    child
}

/// A paste by `waypass-client paste`, which must succeed.
fn paste(server: &Server) -> Vec<u8> {
    ok(client(&server.socket, &["paste", "--type", MIME]))
}

/// 1 MiB, far more than a pipe holds.
fn big() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 253) as u8).collect()
}

/// Whether every write end of the pipe is closed (`POLLHUP` on the read
/// end, even with data left in it).
fn hung_up(read: &File) -> bool {
    let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap();
    fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

#[test]
fn paste_watch_skips_a_selection_that_offers_no_type() {
    for ours in [true, false] {
        let server = Server::start(&[]);
        let seen = server.dir.join("seen");
        let script = format!("cat >> '{0}'; echo >> '{0}'", seen.display());
        let args = ["--watch", "sh", "-c", &script];
        let mut watcher = if ours {
            client(&server.socket, &[&["paste"], &args[..]].concat())
        } else {
            wl(&server.socket, "wl-paste", &args)
        }
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the watcher");
        // A source that offers nothing becomes the selection.
        let mut hostile = raw_with_device(&server.socket);
        hostile.send(&msg(4, 0, &[u(6)])); // create_data_source(6), no offer
        hostile.send(&msg(5, 0, &[u(6)])); // set_selection(6)
        hostile.send(&msg(1, 0, &[u(7)])); // sync: it is set
        eventually("the empty-typed selection", || {
            output(client(&server.socket, &["paste", "--list-types"]))
                .status
                .success()
        });
        copy_with(wl(&server.socket, "wl-copy", &[]), b"after");
        // The command's whole output: `cat`, then `echo`'s newline.
        eventually("the next selection", || {
            fs::read_to_string(&seen)
                .unwrap_or_default()
                .contains("after\n")
        });
        assert!(
            watcher.try_wait().unwrap().is_none(),
            "the watcher exited (ours: {ours})"
        );
        assert_eq!(fs::read_to_string(&seen).unwrap(), "after\n");
        watcher.kill().unwrap();
        watcher.wait().unwrap();
    }
}

#[test]
fn a_read_only_fd_from_a_paster_ends_that_paste_only() {
    let server = Server::start(&[]);
    let mut copy = copier(&server, &[], b"kept");
    let path = server.dir.join("read-only");
    File::create(&path).unwrap();
    let read_only = File::open(&path).unwrap();
    let mut hostile = raw_with_device(&server.socket);
    hostile.send_with_fds(
        &msg(FIRST_SERVER_ID, 0, &[s(MIME)]), // receive(MIME, fd)
        &[read_only.as_fd()],
    );
    drop(read_only);
    hostile.send(&msg(1, 0, &[u(7)])); // sync
    assert_eq!(paste(&server), b"kept");
    assert_eq!(paste(&server), b"kept");
    assert!(copy.try_wait().unwrap().is_none(), "the copier exited");
    copy.kill().unwrap();
    copy.wait().unwrap();
}

#[test]
fn a_paster_that_never_reads_holds_up_no_other_paste() {
    let server = Server::start(&[]);
    let data = big();
    let mut copy = copier(&server, &[], &data);
    let mut hostile = Clipboard::connect(server.socket.to_str()).unwrap();
    // Two pipes the copier fills and nobody reads.
    let _stuck: Vec<File> = (0..2)
        .map(|_| hostile.paste(Selection::Regular, MIME).unwrap())
        .collect();
    for _ in 0..3 {
        assert!(paste(&server) == data, "a paste came back wrong");
    }
    copy.kill().unwrap();
    copy.wait().unwrap();
}

#[test]
fn a_paster_that_never_reads_is_dropped_after_the_paste_timeout() {
    let server = Server::start(&[]);
    let data = big();
    let mut copy = copier(&server, &["--paste-timeout", "300ms"], &data);
    let mut hostile = Clipboard::connect(server.socket.to_str()).unwrap();
    let mut stuck = hostile.paste(Selection::Regular, MIME).unwrap();
    eventually("the copier dropped the stuck paste", || hung_up(&stuck));
    let mut got = Vec::new();
    stuck.read_to_end(&mut got).unwrap();
    assert!(got.len() < data.len(), "{} bytes: all of it", got.len());
    assert!(got[..] == data[..got.len()], "a prefix of the data");
    // The copier carries on.
    assert!(paste(&server) == data);
    copy.kill().unwrap();
    copy.wait().unwrap();
}

#[test]
fn many_unread_pastes_stay_bounded_and_the_newest_are_served() {
    let server = Server::start(&[]);
    let data = big();
    let mut copy = copier(&server, &[], &data);
    let baseline = fd_count(copy.id() as i32);
    let mut hostile = Clipboard::connect(server.socket.to_str()).unwrap();
    let flood = 3 * MAX_PASTES;
    let stuck: Vec<File> = (0..flood)
        .map(|_| hostile.paste(Selection::Regular, MIME).unwrap())
        .collect();
    // Past the bound, each new paste closes the one idle longest.
    eventually("the oldest unread pastes dropped", || {
        stuck.iter().filter(|p| hung_up(p)).count() >= flood - MAX_PASTES
    });
    let open = fd_count(copy.id() as i32);
    assert!(
        open <= baseline + MAX_PASTES,
        "copier fds {baseline} -> {open}"
    );
    // A paste that reads still gets everything.
    assert!(paste(&server) == data);
    copy.kill().unwrap();
    copy.wait().unwrap();
}
