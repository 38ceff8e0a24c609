//! `waypass-client send` and `send-file` end to end, as a user meets them:
//! a real `waypass-server` and real `listen` processes, one of them
//! running as another user.
//!
//! Checked: names belong to users, so another user's `bob` is reached only
//! as `bob@UID` and cannot squat ours; a FIFO
//! or a device is refused at once instead of blocking in `open`;
//! `--timeout-ms` and `--wait` take units; a text too long for one message
//! arrives whole as `text.txt`; `-` reads stdin (a pipe or a file) for both
//! commands. What the owner answers (refusals, progress) is checked in
//! `send_answers.rs`.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use super::support::*;
use waypass_test_support::{Server, TempDir};

// ---- (10.10) who owns the name --------------------------------------------

/// A `listen bob` of uid 65534 (which accepts our peers).
fn listen_as_nobody(server: &Server) -> Running {
    // Let uid 65534 connect: the socket is created 0755 by root.
    fs::set_permissions(
        &server.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod socket");
    let mut cmd = client_cmd(server, &["listen", "bob", "--any-uid"]);
    // std drops the supplementary groups when root sets a uid.
    cmd.uid(65534).gid(65534);
    listen_with(cmd, "bob")
}

#[test]
#[ignore = "needs root: runs a listener as uid 65534 (make test runs it as root)"]
fn a_name_of_another_user_is_reached_only_as_name_at_uid() {
    let server = Server::start(&[]);
    let listener = listen_as_nobody(&server);
    // Our `bob` is our own user's: there is none.
    let out = client(&server, &["send", "bob", "secret"]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("bob"), "{}", stderr_of(&out));
    // Asked for by uid, it is reached.
    assert_ok(&client(&server, &["send", "bob@65534", "public"]));
    let lines = listener.stop();
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with(": public")), "{lines:?}");
}

#[test]
#[ignore = "needs root: runs a squatter as uid 65534 (make test runs it as root)"]
fn another_user_cannot_squat_our_name() {
    let server = Server::start(&[]);
    // Another user registers bob before our listener starts.
    let squatter = listen_as_nobody(&server);
    let ours = listen(&server, "bob", &[]);
    assert_ok(&client(&server, &["send", "bob", "for us"]));
    let lines = ours.stop();
    assert!(lines.iter().any(|l| l.ends_with(": for us")), "{lines:?}");
    let lines = squatter.stop();
    assert!(!lines.iter().any(|l| l.contains("for us")), "{lines:?}");
}

#[test]
fn an_owner_of_our_uid_is_accepted_by_default() {
    let server = Server::start(&[]);
    let listener = listen(&server, "bob", &["--count", "1"]);
    assert_ok(&client(&server, &["send", "bob", "hi"]));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(lines.iter().any(|l| l.ends_with(": hi")), "{lines:?}");
}

// ---- (10.16) a FIFO is refused, not waited on ------------------------------

#[test]
fn a_fifo_is_refused_at_once_by_send_file_and_send_file_option() {
    let server = Server::start(&[]);
    let listener = listen(&server, "bob", &[]);
    let dir = TempDir::new("fifo");
    let fifo = dir.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let fifo = fifo.to_str().expect("utf-8");
    // Nobody ever opens the FIFO's other end: an open() without O_NONBLOCK
    // would block until PATIENCE runs out and the harness panics.
    let out = client(&server, &["send-file", "bob", fifo, "--timeout-ms", "1000"]);
    assert_one_line_error(&out, "pipe is a FIFO, not a regular file");
    let out = client(&server, &["send", "bob", "first", "--file", fifo]);
    assert_one_line_error(&out, "pipe is a FIFO, not a regular file");
    let out = client(&server, &["send-file", "bob", "/dev/zero"]);
    assert_one_line_error(&out, "/dev/zero is a character device, not a regular file");
    // Refused before connecting: the listener got nothing, not even "first".
    let lines = listener.stop();
    assert!(!lines.iter().any(|l| l.contains("first")), "{lines:?}");
}

// ---- (13.2) durations with units -------------------------------------------

#[test]
fn timeouts_and_waits_take_units_and_plain_milliseconds() {
    let server = Server::start(&[]);
    let listener = listen(&server, "bob", &["--count", "2", "--timeout-ms", "1m"]);
    assert_ok(&client(
        &server,
        &["send", "bob", "one", "--timeout-ms", "30s", "--wait", "2s"],
    ));
    assert_ok(&client(
        &server,
        &["send", "bob", "two", "--timeout-ms", "30000"],
    ));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(lines.iter().any(|l| l.ends_with(": two")), "{lines:?}");
    assert_ok(&client(&server, &["keymap", "--timeout-ms", "5s"]));
    assert_ok(&client(&server, &["keymap", "--timeout-ms", "5000"]));
}

#[test]
fn a_duration_without_sense_is_a_usage_error() {
    let server = Server::start(&[]);
    for args in [
        &["send", "bob", "x", "--timeout-ms", "2parsecs"][..],
        &["keymap", "--timeout-ms", "soon"][..],
    ] {
        let out = client(&server, args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("500ms"), "{stderr}");
    }
}

// ---- (13.7) long texts ------------------------------------------------------

#[test]
fn a_text_too_long_for_a_message_arrives_whole_as_text_txt() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("long");
    let inbox_arg = inbox.path().to_str().expect("utf-8");
    let listener = listen(&server, "bob", &["--count", "1", "--save-dir", inbox_arg]);
    let text: String = "lorem ipsum ".repeat(1000); // 12,000 bytes > 4,079
    let out = client(&server, &["send", "bob", &text, "--story"]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sent it as file text.txt"), "{stdout}");
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        lines.iter().any(|l| l.contains("text.txt 12000 bytes")),
        "{lines:?}"
    );
    assert_eq!(
        fs::read_to_string(inbox.join("text.txt")).expect("saved"),
        text
    );
}

// ---- (13.8) stdin -----------------------------------------------------------

#[test]
fn send_dash_reads_the_text_from_stdin() {
    let server = Server::start(&[]);
    let listener = listen(&server, "bob", &["--count", "1"]);
    assert_ok(&client_fed(
        &server,
        &["send", "bob", "-"],
        b"hello from stdin".to_vec(),
    ));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        lines.iter().any(|l| l.ends_with(": hello from stdin")),
        "{lines:?}"
    );
}

#[test]
fn send_file_dash_offers_stdin_from_a_pipe_or_a_file() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("stdin");
    let inbox_arg = inbox.path().to_str().expect("utf-8");
    let bytes = noise(300_000); // more than a pipe buffer
    let listener = listen(&server, "bob", &["--count", "1", "--save-dir", inbox_arg]);
    assert_ok(&client_fed(
        &server,
        &["send-file", "bob", "-"],
        bytes.clone(),
    ));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        lines.iter().any(|l| l.contains("stdin 300000 bytes")),
        "{lines:?}"
    );
    assert_eq!(fs::read(inbox.join("stdin")).expect("saved"), bytes);

    // stdin a regular file (`< file`), already half read: still all of it.
    let source = inbox.join("source.bin");
    fs::write(&source, &bytes[..1000]).expect("write");
    let mut file = fs::File::open(&source).expect("open");
    file.read_exact(&mut [0u8; 500]).expect("read half");
    let listener = listen(&server, "bob", &["--count", "1", "--save-dir", inbox_arg]);
    assert_ok(&run(&server, &["send-file", "bob", "-"], Stdio::from(file)));
    let (status, _, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        fs::read(inbox.join("stdin.1")).expect("saved"),
        &bytes[..1000]
    );
}

#[test]
fn stdin_can_be_sent_only_once() {
    let server = Server::start(&[]);
    let out = client(&server, &["send", "bob", "-", "--file", "-"]);
    assert_one_line_error(&out, "stdin (-) can be sent only once");
    let out = client(&server, &["send-file", "bob", "-", "-"]);
    assert_one_line_error(&out, "stdin (-) can be sent only once");
}
