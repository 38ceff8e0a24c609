//! wl-clipboard (`wl-copy`/`wl-paste`, C on libwayland, speaking
//! wlr-data-control) against waypass-server: the clipboard with no
//! display. Debian's `wl-clipboard` package, which `make deps` installs.

use std::fs;
use std::process::{Child, Output, Stdio};

use waypass_test_support::clipboard::{copy_with, eventually, ok, output, wl};
use waypass_test_support::{wait_timeout, Server, PATIENCE};

/// `wl-copy ARGS` with `input` on stdin, until it has set the selection.
fn copy(server: &Server, args: &[&str], input: &[u8]) {
    copy_with(wl(&server.socket, "wl-copy", args), input);
}

/// `wl-copy --foreground ARGS TEXT`, left running.
fn copy_foreground(server: &Server, args: &[&str]) -> Child {
    wl(
        &server.socket,
        "wl-copy",
        &[&["--foreground"], args].concat(),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn wl-copy")
}

fn paste(server: &Server, args: &[&str]) -> Output {
    output(wl(&server.socket, "wl-paste", args))
}

fn paste_ok(server: &Server, args: &[&str]) -> Vec<u8> {
    ok(wl(&server.socket, "wl-paste", args))
}

#[test]
fn copy_then_paste_gives_the_text_back() {
    let server = Server::start(&[]);
    copy(&server, &[], b"hi\n");
    // The bytes as copied; wl-paste appends a newline to text unless -n.
    assert_eq!(paste_ok(&server, &["--no-newline"]), b"hi\n");
    assert_eq!(paste_ok(&server, &[]), b"hi\n\n");
}

#[test]
fn list_types_and_type_select_what_is_offered() {
    let server = Server::start(&[]);
    copy(&server, &[], b"plain");
    let types = String::from_utf8(paste_ok(&server, &["--list-types"])).unwrap();
    for t in ["text/plain;charset=utf-8", "UTF8_STRING"] {
        assert!(types.lines().any(|l| l == t), "{t} missing: {types}");
    }
    copy(
        &server,
        &["--type", "application/x-waypass-test"],
        b"\x00\x01binary",
    );
    let types = String::from_utf8(paste_ok(&server, &["--list-types"])).unwrap();
    assert_eq!(types, "application/x-waypass-test\n");
    let got = paste_ok(&server, &["--type", "application/x-waypass-test"]);
    assert_eq!(got, b"\x00\x01binary");
}

#[test]
fn primary_is_a_selection_of_its_own() {
    let server = Server::start(&[]);
    copy(&server, &[], b"regular");
    copy(&server, &["--primary"], b"primary");
    assert_eq!(paste_ok(&server, &["--no-newline"]), b"regular");
    assert_eq!(
        paste_ok(&server, &["--primary", "--no-newline"]),
        b"primary"
    );
}

#[test]
fn clear_empties_the_selection() {
    let server = Server::start(&[]);
    copy(&server, &[], b"soon gone");
    copy(&server, &["--clear"], b"");
    let out = paste(&server, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No selection"));
}

#[test]
fn wl_copy_exits_when_its_selection_is_replaced() {
    let server = Server::start(&[]);
    let mut first = copy_foreground(&server, &["first"]);
    eventually("the first selection", || {
        paste(&server, &["-n"]).stdout == b"first"
    });
    copy(&server, &[], b"second");
    let status = wait_timeout(&mut first, PATIENCE).expect("the replaced wl-copy did not exit");
    assert!(status.success(), "{status}");
    assert_eq!(paste_ok(&server, &["-n"]), b"second");
}

#[test]
fn a_source_that_exited_leaves_no_selection_and_no_hang() {
    let server = Server::start(&[]);
    let mut source = copy_foreground(&server, &["ephemeral"]);
    eventually("the selection", || {
        paste(&server, &["-n"]).stdout == b"ephemeral"
    });
    source.kill().expect("kill");
    source.wait().expect("wait");
    eventually("the selection cleared", || {
        !paste(&server, &[]).status.success()
    });
}

#[test]
fn watch_sees_each_new_selection() {
    let server = Server::start(&[]);
    let seen = server.dir.join("seen");
    let script = format!("cat >> '{}'; echo >> '{}'", seen.display(), seen.display());
    let mut watcher = wl(
        &server.socket,
        "wl-paste",
        &["--watch", "sh", "-c", &script],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn wl-paste --watch");
    let read = || fs::read_to_string(&seen).unwrap_or_default();
    for word in ["one", "two", "three"] {
        copy(&server, &[], word.as_bytes());
        eventually(word, || read().lines().any(|l| l == word));
    }
    watcher.kill().expect("kill");
    watcher.wait().expect("wait");
}

#[test]
fn sixty_four_mib_round_trip_byte_for_byte_and_no_fd_left() {
    let server = Server::start(&[]);
    let baseline = server.fd_count();
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    copy(&server, &["--type", "application/octet-stream"], &data);
    let got = paste_ok(&server, &["--type", "application/octet-stream"]);
    assert!(got == data, "{} bytes back, {} sent", got.len(), data.len());
    copy(&server, &["--clear"], b"");
    eventually("the server's fds back to its baseline", || {
        server.fd_count() <= baseline
    });
}
