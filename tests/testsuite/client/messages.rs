//! End-to-end: what `waypass-client` says. Its `--help` describes every
//! command, not only the keymap; `--keys` errors say what a key code is;
//! a code the keymap lacks is named so; a `--socket` that is not a socket,
//! or where nothing listens, is one line saying so and how to start a
//! server; a keymap xkbcommon cannot parse is one line, without
//! libxkbcommon's own stderr output.

use std::fs;
use std::os::unix::net::UnixListener;
use std::process::Output;

use waypass_test_support::wlrs_server::{keymap_file, SeatPlan, WlrsServer};
use waypass_test_support::{run_client, Server, TempDir};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status 1 and exactly `expected` as the one line on stderr.
fn assert_error(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr(out), format!("waypass-client: error: {expected}\n"));
}

#[test]
fn help_describes_every_command() {
    let out = run_client(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = stdout(&out);
    let first = help.lines().next().unwrap_or_default();
    for word in ["keymap", "broker", "clipboard"] {
        assert!(first.contains(word), "{word} in the first line: {first}");
    }
    for example in [
        "waypass-client keymap",
        "waypass-client listen bob",
        "waypass-client send bob",
        "waypass-client send-file bob",
        "| waypass-client copy",
        "waypass-client paste",
    ] {
        assert!(help.contains(example), "{example} in {help}");
    }
}

#[test]
fn keys_that_are_not_codes_say_what_a_code_is() {
    let out = run_client(&["keymap", "--keys", "Q,A"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error: {out:?}");
    let err = stderr(&out);
    assert!(err.contains("\"Q\" is not an evdev key code"), "{err}");
    assert!(err.contains("e.g. 16 for the key labelled Q"), "{err}");
    assert!(!err.contains("invalid digit"), "{err}");

    let out = run_client(&["keymap", "--keys", "16,999"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("999 is above 767 (KEY_MAX), the highest evdev key code"),
        "{err}"
    );
}

#[test]
fn a_code_the_keymap_lacks_is_named_not_nosymbol() {
    let server = Server::start(&[]);
    let out = run_client(&[
        "--socket",
        server.socket_arg(),
        "keymap",
        "--keys",
        "16,750",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("Q (evdev 16)   q \"q\""), "{text}");
    assert!(
        text.contains("(evdev 750)    not in this keymap (xkb 758)"),
        "{text}"
    );
    assert!(!text.contains("NoSymbol"), "{text}");
}

#[test]
fn a_socket_path_that_is_a_file_is_named_as_such() {
    let dir = TempDir::new("client-not-socket");
    let file = dir.join("passwd");
    fs::write(&file, "root:x:0:0::/root:/bin/sh\n").unwrap();
    let out = run_client(&["--socket", file.to_str().unwrap(), "keymap"]);
    assert_error(
        &out,
        &format!(
            "cannot reach a wayland compositor: {} is a regular file, not a socket",
            file.display()
        ),
    );
}

#[test]
fn no_compositor_says_how_to_start_one() {
    let dir = TempDir::new("client-no-compositor");
    let missing = dir.join("wayland-9");
    let shown = missing.display();
    let out = run_client(&["--socket", missing.to_str().unwrap(), "keymap"]);
    assert_error(
        &out,
        &format!(
            "cannot reach a wayland compositor: no compositor at {shown}: no such socket \
             (start one with `waypass-server --socket {shown}`)"
        ),
    );
    // A socket file whose server has gone.
    drop(UnixListener::bind(&missing).unwrap());
    let out = run_client(&["--socket", missing.to_str().unwrap(), "keymap"]);
    assert_error(
        &out,
        &format!(
            "cannot reach a wayland compositor: no compositor at {shown}: nobody listens \
             on that socket any more (start one with `waypass-server --socket {shown}`)"
        ),
    );
}

#[test]
fn a_keymap_xkbcommon_cannot_parse_is_one_line_without_its_stderr() {
    let dir = TempDir::new("client-bad-keymap");
    let plan = keymap_file(&dir.join("keymap.xkb"), "xkb_keymap { nonsense");
    let server = WlrsServer::start(dir.path(), SeatPlan::keyboard(plan));
    let out = run_client(&["--socket", server.socket.to_str().unwrap(), "keymap"]);
    assert_error(&out, "xkbcommon cannot parse the keymap");
}
