//! `waypass-client send` and `send-file` end to end, as a user meets them:
//! a real `waypass-server`, real `listen` processes (one of them running as
//! another user), and in-process peers built on the library where the
//! listener cannot do what a test needs (refuse, report progress slowly).
//!
//! Checked: an owner of another uid is refused unless `--any-uid`; a FIFO
//! is refused at once instead of blocking in `open`; `--timeout-ms` and
//! `--wait` take units; a text too long for one message arrives whole as
//! `text.txt`; `-` reads stdin (a pipe or a file) for both commands; a
//! refusal is printed with its reason and a non-zero exit; progress keeps
//! a slow reader's sender waiting, and a stalled one is reported with what
//! it had read.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{bin, run_with_patience, wait_timeout, Server, TempDir, PATIENCE};
use waypass_client::{Broker, PeerChannel, PeerMessage};

/// A client process whose stdout lines are read as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: thread::JoinHandle<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn waypass-client");
        let stdout = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits for a stdout line equal to `want`.
    fn expect_line(&mut self, want: &str) {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if line == want => return,
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no line {want:?}; stdout so far: {:?}", self.seen);
                }
            }
        }
    }

    /// Waits for the exit; returns the status, every stdout line, stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let status = wait_timeout(&mut self.child, PATIENCE).expect("client exits in time");
        self.seen.extend(self.lines.iter());
        let stderr = self.stderr.join().expect("stderr reader");
        (status, self.seen, stderr)
    }

    /// Kills it and returns what it printed.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        self.finish().1
    }
}

/// `waypass-client --socket S ARGS`.
fn client_cmd(server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.arg("--socket").arg(server.socket_arg()).args(args);
    cmd
}

/// A listener of `name`, once it has said it is registered.
fn listen(server: &Server, name: &str, extra: &[&str]) -> Running {
    listen_with(
        client_cmd(server, &[&["listen", name], extra].concat()),
        name,
    )
}

fn listen_with(cmd: Command, name: &str) -> Running {
    let mut listener = Running::spawn(cmd);
    listener.expect_line(&format!("registered name {name}"));
    listener
}

/// Runs a client to completion with `stdin`.
fn run(server: &Server, args: &[&str], stdin: Stdio) -> Output {
    let mut cmd = client_cmd(server, args);
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_patience(cmd)
}

/// Runs a client with stdin from /dev/null.
fn client(server: &Server, args: &[&str]) -> Output {
    run(server, args, Stdio::null())
}

/// Runs a client with `bytes` on a pipe as stdin.
fn client_fed(server: &Server, args: &[&str], bytes: Vec<u8>) -> Output {
    let mut cmd = client_cmd(server, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{cmd:?} hung"))
        .expect("wait");
    writer.join().expect("writer");
    out
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "failed: {}", stderr_of(out));
}

/// Fails with exit 1 and exactly one stderr line containing `want`.
fn assert_one_line_error(out: &Output, want: &str) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(want), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Pseudo-random bytes (xorshift64).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---- (10.10) who owns the name --------------------------------------------

/// Whether `listen` has its own `--any-uid` (it refuses peers of another
/// uid once it does).
fn listen_has_any_uid() -> bool {
    let out = Command::new(bin("waypass-client"))
        .args(["listen", "--help"])
        .output()
        .expect("listen --help");
    String::from_utf8_lossy(&out.stdout).contains("--any-uid")
}

#[test]
fn an_owner_of_another_uid_is_refused_unless_any_uid() {
    let server = Server::start(&[]);
    // Let uid 65534 connect: the socket is created 0755 by root.
    fs::set_permissions(
        &server.socket,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod socket");
    let mut args = vec!["listen", "bob"];
    if listen_has_any_uid() {
        args.push("--any-uid");
    }
    let mut cmd = client_cmd(&server, &args);
    // std drops the supplementary groups when root sets a uid.
    cmd.uid(65534).gid(65534);
    let listener = listen_with(cmd, "bob");

    let out = client(&server, &["send", "bob", "secret"]);
    assert_one_line_error(&out, "bob is owned by uid 65534 (pid ");
    assert!(
        stderr_of(&out).contains("pass --any-uid"),
        "{}",
        stderr_of(&out)
    );
    let out = client(&server, &["send-file", "bob", "/etc/hostname"]);
    assert_one_line_error(&out, "bob is owned by uid 65534");

    assert_ok(&client(&server, &["send", "bob", "public", "--any-uid"]));
    let lines = listener.stop();
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("hostname")), "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with(": public")), "{lines:?}");
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

// ---- (10.5, 13.3, 13.10) what the owner answers -----------------------------

/// An in-process owner of `name` (our uid): registers it now, and handles
/// the first peer that connects with `handle` on a thread.
fn owner(
    server: &Server,
    name: &str,
    handle: impl FnOnce(&mut PeerChannel) + Send + 'static,
) -> thread::JoinHandle<()> {
    let mut broker = Broker::connect(Some(server.socket_arg())).expect("broker");
    broker.register_and_wait(name, PATIENCE).expect("register");
    thread::spawn(move || {
        let incoming = broker
            .next_peer(Some(PATIENCE))
            .expect("peer")
            .expect("a peer");
        let mut channel = incoming.peer.channel;
        handle(&mut channel);
        drop(broker);
    })
}

/// The next text or file offer: its serial, and the file's size (0 for a
/// text).
fn next_offer(channel: &mut PeerChannel) -> (u32, u64) {
    match channel.recv(Some(PATIENCE)).expect("recv") {
        Some(PeerMessage::Text { serial, .. }) => (serial, 0),
        Some(PeerMessage::File(file)) => (file.serial, file.size),
        other => panic!("expected an offer, got {other:?}"),
    }
}

/// Reads until the sender closes the channel.
fn until_closed(channel: &mut PeerChannel) {
    while let Ok(Some(_)) = channel.recv(Some(PATIENCE)) {}
}

/// A sparse file of `size` bytes named `name` in `dir`.
fn sparse(dir: &TempDir, name: &str, size: u64) -> String {
    let path = dir.join(name);
    fs::File::create(&path)
        .and_then(|f| f.set_len(size))
        .expect("sparse file");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_refusal_is_printed_with_its_reason_and_fails_at_once() {
    let server = Server::start(&[]);
    let dir = TempDir::new("refuse");
    let file = sparse(&dir, "hello.txt", 5);
    let owned = owner(&server, "bob", |channel| {
        let (serial, _) = next_offer(channel);
        channel.refuse(serial, "over the size cap").expect("refuse");
        until_closed(channel);
    });
    // A one-minute timeout: only the refusal can end this early.
    let out = client(&server, &["send-file", "bob", &file, "--timeout-ms", "60000"]);
    assert_one_line_error(&out, "bob refused hello.txt: over the size cap");
    owned.join().expect("owner");

    let owned = owner(&server, "carol", |channel| {
        let (serial, _) = next_offer(channel);
        channel
            .refuse(serial, "no texts \u{1b}[2J here")
            .expect("refuse");
        until_closed(channel);
    });
    let out = client(&server, &["send", "carol", "hi", "--timeout-ms", "60000"]);
    assert_one_line_error(&out, "carol refused the text: no texts");
    assert!(!stderr_of(&out).contains('\u{1b}'), "{}", stderr_of(&out));
    owned.join().expect("owner");
}

#[test]
fn progress_keeps_a_slow_readers_sender_waiting() {
    let server = Server::start(&[]);
    let dir = TempDir::new("slow");
    let file = sparse(&dir, "big.bin", 32 << 20);
    // 15 progress reports 200 ms apart: 3 s in all, past the 2 s idle
    // timeout, which each report restarts.
    let owned = owner(&server, "bob", |channel| {
        let (serial, size) = next_offer(channel);
        for i in 1..=15u64 {
            thread::sleep(std::time::Duration::from_millis(200));
            channel.progress(serial, size * i / 15).expect("progress");
            channel.flush(Some(PATIENCE)).expect("flush");
        }
        channel.ack(serial).expect("ack");
        until_closed(channel);
    });
    let started = std::time::Instant::now();
    let out = client(&server, &["send-file", "bob", &file, "--timeout-ms", "2s"]);
    assert_ok(&out);
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    // Not a terminal: no progress bar on stderr.
    assert_eq!(stderr_of(&out), "");
    owned.join().expect("owner");
}

#[test]
fn a_stalled_reader_is_reported_with_what_it_had_read() {
    let server = Server::start(&[]);
    let dir = TempDir::new("stall");
    let file = sparse(&dir, "big.bin", 300 << 20);
    let owned = owner(&server, "bob", |channel| {
        let (serial, _) = next_offer(channel);
        channel.progress(serial, 120 << 20).expect("progress");
        until_closed(channel);
    });
    let out = client(
        &server,
        &["send-file", "bob", &file, "--timeout-ms", "500"],
    );
    assert_one_line_error(
        &out,
        "no ack from bob within 500ms; it had read 120.00 MiB of 300.00 MiB \
         and may still be reading",
    );
    owned.join().expect("owner");

    let owned = owner(&server, "carol", |channel| {
        next_offer(channel);
        until_closed(channel);
    });
    let out = client(
        &server,
        &["send-file", "carol", &file, "--timeout-ms", "300"],
    );
    assert_one_line_error(&out, "no ack from carol within 300ms");
    assert!(!stderr_of(&out).contains("still reading"));
    owned.join().expect("owner");
}

#[test]
fn a_terminal_shows_a_progress_bar_for_a_large_file() {
    let server = Server::start(&[]);
    let dir = TempDir::new("bar");
    let file = sparse(&dir, "big.bin", 64 << 20);
    let owned = owner(&server, "bob", |channel| {
        let (serial, size) = next_offer(channel);
        for i in 1..=8u64 {
            thread::sleep(std::time::Duration::from_millis(250));
            channel.progress(serial, size * i / 8).expect("progress");
            channel.flush(Some(PATIENCE)).expect("flush");
        }
        channel.ack(serial).expect("ack");
        until_closed(channel);
    });
    // script(1) runs the sender on a pseudo-terminal and copies its output.
    let line = format!(
        "{} --socket {} send-file bob {file}",
        bin("waypass-client").display(),
        server.socket_arg()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert_ok(&out);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("bob reading big.bin"), "{shown:?}");
    assert!(shown.contains("MiB/64.00 MiB"), "{shown:?}");
    owned.join().expect("owner");
}
