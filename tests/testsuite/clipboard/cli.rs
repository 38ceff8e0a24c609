//! `waypass-client copy` and `paste` against waypass-server, and against
//! wl-clipboard's `wl-copy`/`wl-paste` in both directions.

use std::fs;
use std::io::Write;
use std::process::{Child, Stdio};

use waypass_test_support::clipboard::{client, copy_with, eventually, ok, output, wl};
use waypass_test_support::{run_with_patience, wait_timeout, Server, PATIENCE};

#[test]
fn copy_and_paste_round_trip_text() {
    let server = Server::start(&[]);
    copy_with(client(&server.socket, &["copy"]), "héllo\n".as_bytes());
    assert_eq!(
        ok(client(&server.socket, &["paste", "--no-newline"])),
        "héllo\n".as_bytes()
    );
    let types = String::from_utf8(ok(client(&server.socket, &["paste", "--list-types"]))).unwrap();
    assert!(
        types.lines().any(|t| t == "text/plain;charset=utf-8"),
        "{types}"
    );
}

#[test]
fn waypass_and_wl_clipboard_interoperate_both_ways() {
    let server = Server::start(&[]);
    copy_with(client(&server.socket, &["copy"]), b"ours");
    assert_eq!(ok(wl(&server.socket, "wl-paste", &["-n"])), b"ours");
    copy_with(wl(&server.socket, "wl-copy", &[]), b"theirs");
    assert_eq!(ok(client(&server.socket, &["paste", "-n"])), b"theirs");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    copy_with(
        wl(&server.socket, "wl-copy", &["--type", "application/x-test"]),
        &data,
    );
    assert!(
        ok(client(
            &server.socket,
            &["paste", "--type", "application/x-test"]
        )) == data
    );
    copy_with(
        client(&server.socket, &["copy", "--type", "application/x-test"]),
        &data,
    );
    assert!(
        ok(wl(
            &server.socket,
            "wl-paste",
            &["--type", "application/x-test"]
        )) == data
    );
}

#[test]
fn primary_clear_and_empty() {
    let server = Server::start(&[]);
    copy_with(client(&server.socket, &["copy", "--primary"]), b"middle");
    assert_eq!(
        ok(client(&server.socket, &["paste", "--primary", "-n"])),
        b"middle"
    );
    let empty = output(client(&server.socket, &["paste"]));
    assert!(!empty.status.success());
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(stderr, "waypass-client: error: no selection\n");
    copy_with(
        client(&server.socket, &["copy", "--primary", "--clear"]),
        b"",
    );
    assert!(!output(client(&server.socket, &["paste", "--primary"]))
        .status
        .success());
}

#[test]
fn a_missing_type_is_one_clear_error() {
    let server = Server::start(&[]);
    copy_with(client(&server.socket, &["copy"]), b"text");
    let out = output(client(&server.socket, &["paste", "--type", "image/png"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "waypass-client: error: the selection offers no type \"image/png\"\n"
    );
}

#[test]
fn copy_in_the_foreground_exits_when_replaced() {
    let server = Server::start(&[]);
    let mut first: Child = client(&server.socket, &["copy", "--foreground", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    first
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"first")
        .expect("write");
    eventually("the first selection", || {
        output(client(&server.socket, &["paste", "-n"])).stdout == b"first"
    });
    copy_with(wl(&server.socket, "wl-copy", &[]), b"second");
    let status = wait_timeout(&mut first, PATIENCE).expect("the replaced copy did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn paste_watch_runs_the_command_for_each_selection_and_skips_empty_ones() {
    let server = Server::start(&[]);
    let baseline = server.fd_count();
    let seen = server.dir.join("seen");
    let script = format!(
        "cat >> '{0}'; echo \" $CLIPBOARD_STATE\" >> '{0}'",
        seen.display()
    );
    // Started on an empty clipboard, which runs nothing (as wl-paste 2.1).
    let mut watcher = client(&server.socket, &["paste", "--watch", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paste --watch");
    let read = || fs::read_to_string(&seen).unwrap_or_default();
    for word in ["one", "two"] {
        copy_with(wl(&server.socket, "wl-copy", &["-n"]), word.as_bytes());
        eventually(word, || read().contains(&format!("{word} data")));
    }
    // Cleared: nothing runs; the next selection does.
    copy_with(wl(&server.socket, "wl-copy", &["--clear"]), b"");
    copy_with(wl(&server.socket, "wl-copy", &["-n"]), b"three");
    eventually("three", || read().contains("three data"));
    // The runs are in order: a run for the empty start or the clear would
    // show before "three".
    assert_eq!(read(), "one data\ntwo data\nthree data\n");
    watcher.kill().expect("kill");
    watcher.wait().expect("wait");
    copy_with(client(&server.socket, &["copy", "--clear"]), b"");
    eventually("server fds back to baseline", || {
        server.fd_count() <= baseline
    });
}

#[test]
fn a_directory_to_copy_is_a_read_error_naming_it() {
    let server = Server::start(&[]);
    let dir = server.dir.path();
    let by_flag = output(client(
        &server.socket,
        &["copy", "--file", dir.to_str().unwrap()],
    ));
    assert_eq!(
        String::from_utf8_lossy(&by_flag.stderr),
        format!(
            "waypass-client: error: cannot read {}: Is a directory (os error 21)\n",
            dir.display()
        )
    );
    let mut on_stdin = client(&server.socket, &["copy"]);
    on_stdin
        .stdin(fs::File::open(dir).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = run_with_patience(on_stdin);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "waypass-client: error: cannot read stdin: Is a directory (os error 21)\n"
    );
}
