//! End-to-end: the library's non-blocking calls against the real
//! `waypass-server`, driven by a bare `poll` loop. A clipboard sees another
//! client's copy through [`Clipboard::poll_changes`], and never blocks when
//! nothing came; a session's `dispatch_pending` reads nothing from a quiet
//! socket and then the events of a round trip it flushed itself.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_client::{Clipboard, Flush, Selection, Session};
use waypass_protocol::protocols::wayland::wl_callback::{self, WlCallback};
use waypass_test_support::{Server, PATIENCE};

/// Waits until `fd` is readable, at most [`PATIENCE`].
fn wait_readable(fd: &impl AsFd) {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(PATIENCE.as_millis()).unwrap_or(u16::MAX);
    let ready = poll(&mut fds, PollTimeout::from(ms)).expect("poll");
    assert_eq!(ready, 1, "nothing to read within {PATIENCE:?}");
}

#[test]
fn a_clipboard_in_a_poll_loop_sees_another_clients_copy() {
    let server = Server::start(&[]);
    let mut watcher = Clipboard::connect(server.socket.to_str()).expect("clipboard");
    let before = watcher.changes(Selection::Regular);
    // Nothing happened yet: the call returns at once, with no change.
    assert!(!watcher.poll_changes().expect("no error"));

    let mut copier = Clipboard::connect(server.socket.to_str()).expect("clipboard");
    copier
        .copy(Selection::Regular, &["text/plain", "text/html"])
        .expect("copy");

    let start = Instant::now();
    while !watcher.poll_changes().expect("no error") {
        assert!(start.elapsed() < PATIENCE, "no selection event");
        wait_readable(&watcher);
    }
    assert!(watcher.changes(Selection::Regular) > before);
    assert_eq!(
        watcher.types(Selection::Regular),
        Some(&["text/plain".to_string(), "text/html".to_string()][..])
    );
}

#[test]
fn a_session_reads_without_blocking_what_its_flushed_requests_brought() {
    let server = Server::start(&[]);
    let mut session = Session::connect(server.socket.to_str()).expect("session");
    assert_eq!(session.dispatch_pending().expect("quiet"), 0);

    let callback = session.sync().expect("sync");
    assert_eq!(session.flush_nonblocking().expect("flush"), Flush::Done);
    let start = Instant::now();
    let done = loop {
        if let Some(ev) = session.take_event(|e| e.is_from(callback)) {
            break ev;
        }
        assert!(start.elapsed() < PATIENCE, "no wl_callback.done");
        wait_readable(&session);
        while session.dispatch_pending().expect("read") > 0 {}
    };
    let mut done = done;
    let wl_callback::Event::Done { .. } = done.decode::<WlCallback>().expect("a callback's event");
    // Drained: another call reads nothing and returns (a blocking read
    // would wait forever here: the server has nothing more to say).
    assert_eq!(session.dispatch_pending().expect("drained"), 0);
}
