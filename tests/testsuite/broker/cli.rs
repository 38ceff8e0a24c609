//! The broker end to end: a real `waypass-server`, real `waypass-client
//! listen` / `send` / `send-file` processes, and the client library's
//! [`Broker`] in-process against the same server.
//!
//! Checked: texts and files reach the listener (with the sender's name or
//! pid, sizes and SHA-256 computed by `sha256sum`), `--save-dir` keeps equal
//! bytes, refusals are one clear line and a non-zero exit, a 64 MiB file
//! passes through its fd, a name is released when its owner dies, and an
//! established channel outlives the server.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use waypass_client::{Broker, ConnectOptions, Failure, PeerMessage};
use waypass_test_support::Running;
use waypass_test_support::{run_client, Server, TempDir, PATIENCE};

/// A listener of `name`, once it has said it is registered.
fn listen(server: &Server, name: &str, extra: &[&str]) -> Running {
    let mut args = vec!["listen", name];
    args.extend_from_slice(extra);
    let mut listener = Running::spawn(server, &[], &args);
    listener.expect_line("saying it registered", |l| {
        l == format!("registered name {name}")
    });
    listener
}

fn client(server: &Server, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--socket", server.socket_arg()];
    all.extend_from_slice(args);
    run_client(&all)
}

/// The SHA-256 of a file as `sha256sum` prints it.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")[..64].to_string()
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_text_reaches_the_listener_with_the_senders_name() {
    let server = Server::start(&[]);
    let listener = listen(&server, "bob", &["--count", "1"]);
    assert_ok(&client(
        &server,
        &["send", "bob", "cou", "cou", "--as", "alice"],
    ));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        lines.iter().any(|l| l == "from alice: cou cou"),
        "{lines:?}"
    );
}

#[test]
fn an_anonymous_sender_is_shown_by_pid_and_send_wait_covers_a_late_listener() {
    let server = Server::start(&[]);
    // The sender starts first and retries until bob is registered.
    let sender = Running::spawn(&server, &[], &["send", "bob", "coucou", "--wait", "30000"]);
    let listener = listen(&server, "bob", &["--count", "1"]);
    let sender_pid = sender.pid();
    let (status, _, stderr) = sender.finish();
    assert!(status.success(), "{stderr}");
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    let expected = format!("from pid {sender_pid}: coucou");
    assert!(lines.contains(&expected), "{lines:?}");
}

#[test]
fn a_file_is_hashed_through_its_fd_and_saved_with_equal_bytes() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let asset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hello.txt");
    let size = fs::metadata(&asset).expect("asset").len();
    let inbox_arg = inbox.path().to_str().expect("utf-8");
    let listener = listen(&server, "bob", &["--count", "1", "--save-dir", inbox_arg]);
    let sent = client(
        &server,
        &["send-file", "bob", asset.to_str().unwrap(), "--as", "alice"],
    );
    assert_ok(&sent);
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    let expected = format!(
        "file from alice: hello.txt {size} bytes sha256={}",
        sha256sum(&asset)
    );
    assert!(lines.contains(&expected), "{lines:?}");
    let saved = inbox.join("hello.txt");
    assert_eq!(
        fs::read(&saved).expect("saved"),
        fs::read(&asset).expect("asset")
    );
}

#[test]
fn a_64_mib_file_goes_through_the_cli_intact() {
    let server = Server::start(&[]);
    let dir = TempDir::new("big");
    let path = dir.join("big.bin");
    {
        let mut f = fs::File::create(&path).expect("create");
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            for b in chunk.chunks_mut(8) {
                // xorshift64: pseudo-random, and different in every chunk.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&chunk).expect("write");
        }
    }
    let inbox = dir.join("inbox");
    fs::create_dir(&inbox).expect("inbox");
    let listener = listen(
        &server,
        "big",
        &["--count", "1", "--save-dir", inbox.to_str().unwrap()],
    );
    assert_ok(&client(
        &server,
        &["send-file", "big", path.to_str().unwrap()],
    ));
    let (status, lines, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
    let hash = sha256sum(&path);
    let line = lines
        .iter()
        .find(|l| l.starts_with("file from pid "))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(
        line.ends_with(&format!(": big.bin 67108864 bytes sha256={hash}")),
        "{line}"
    );
    assert_eq!(sha256sum(&inbox.join("big.bin")), hash);
}

#[test]
fn sending_to_an_unregistered_name_is_one_clear_error() {
    let server = Server::start(&[]);
    let out = client(&server, &["send", "nobody", "hello"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot connect to \"nobody\": no client has registered the name"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn listening_on_a_taken_or_invalid_name_is_one_clear_error() {
    let server = Server::start(&[]);
    let mut first = listen(&server, "bob", &[]);
    let out = client(&server, &["listen", "bob"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot register name \"bob\": the name is taken"),
        "{stderr}"
    );

    let out = client(&server, &["listen", "a/b"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid name"), "{stderr}");
    first.child.kill().expect("kill");
    first.finish();
}

#[test]
fn a_name_is_released_when_its_owner_is_killed() {
    let server = Server::start(&[]);
    let mut first = listen(&server, "bob", &[]);
    first.child.kill().expect("kill");
    let (status, _, _) = first.finish();
    assert!(!status.success());
    // The server notices the hang-up and releases the name; a new owner can
    // take it. Until the server has processed the hang-up the name may
    // still be taken, so keep trying for a while.
    let second = waypass_test_support::eventually(|| {
        let l = Running::spawn(&server, &[], &["listen", "bob", "--count", "1"]);
        let got = l.lines.recv_timeout(PATIENCE);
        if got.as_deref() == Ok("registered name bob") {
            assert_ok(&client(&server, &["send", "bob", "again"]));
            let (status, lines, _) = l.finish();
            return status.success() && lines.iter().any(|x| x.ends_with(": again"));
        }
        let _ = l.finish();
        false
    });
    assert!(second, "the name was never released");
}

#[test]
fn the_library_talks_both_ways() {
    let server = Server::start(&[]);
    let wait = Some(PATIENCE);
    let mut bob = Broker::connect(Some(server.socket_arg())).expect("bob's broker");
    let bob_name = bob.register_and_wait("bob", PATIENCE).expect("registered");
    let mut alice = Broker::connect(Some(server.socket_arg())).expect("alice's broker");
    alice
        .register_and_wait("alice", PATIENCE)
        .expect("registered");

    let mut to_bob = alice
        .connect_to("bob", ConnectOptions::default())
        .expect("established");
    assert_eq!(to_bob.name.as_deref(), Some("bob"));
    assert_eq!(to_bob.credentials.pid, std::process::id() as i32);
    let incoming = bob.next_peer(wait).expect("read").expect("a peer");
    assert_eq!(incoming.to, bob_name);
    assert_eq!(incoming.peer.label(), "alice");
    let mut to_alice = incoming.peer;

    let s = to_bob.channel.send_text("hi bob").expect("send");
    let Some(PeerMessage::Text { serial, text }) = to_alice.channel.recv(wait).expect("recv")
    else {
        panic!("expected a text");
    };
    assert_eq!((serial, text.as_str()), (s, "hi bob"));
    to_alice.channel.ack(serial).expect("ack");
    let r = to_alice.channel.send_text("hi alice").expect("send");
    to_bob.channel.wait_ack(s, wait).expect("bob acked");
    let Some(PeerMessage::Text { serial, text }) = to_bob.channel.recv(wait).expect("recv") else {
        panic!("expected a text");
    };
    assert_eq!((serial, text.as_str()), (r, "hi alice"));
    to_bob.channel.ack(serial).expect("ack");
    to_alice.channel.wait_ack(r, wait).expect("alice acked");

    // Connecting to one's own name and to a name nobody owns are refused.
    let err = bob
        .connect_to("bob", ConnectOptions::default())
        .expect_err("self");
    assert_eq!(err.failure(), Some(Failure::SelfConnect));
    let err = bob
        .connect_to("nobody", ConnectOptions::default())
        .expect_err("unknown");
    assert_eq!(err.failure(), Some(Failure::UnknownName));
}

#[test]
fn an_established_channel_outlives_the_server() {
    let mut server = Server::start(&[]);
    let wait = Some(PATIENCE);
    let mut bob = Broker::connect(Some(server.socket_arg())).expect("bob's broker");
    bob.register_and_wait("bob", PATIENCE).expect("registered");
    let mut alice = Broker::connect(Some(server.socket_arg())).expect("alice's broker");
    let mut to_bob = alice
        .connect_to("bob", ConnectOptions::default())
        .expect("established");
    let mut to_alice = bob.next_peer(wait).expect("read").expect("a peer").peer;
    assert_eq!(to_alice.name, None);

    server.signal(Signal::SIGTERM);
    assert!(server.wait().success());
    // Both server connections are gone...
    assert!(bob.next_peer(wait).is_err());
    assert!(alice.connect_to("bob", ConnectOptions::default()).is_err());

    // ...and the channel still carries text and files both ways.
    let s = to_bob.channel.send_text("still here?").expect("send");
    let Some(PeerMessage::Text { serial, text }) = to_alice.channel.recv(wait).expect("recv")
    else {
        panic!("expected a text");
    };
    assert_eq!((serial, text.as_str()), (s, "still here?"));
    to_alice.channel.ack(serial).expect("ack");
    to_bob.channel.wait_ack(s, wait).expect("acked");
    let f = to_alice
        .channel
        .send_snapshot("reply.txt", b"yes, without the server")
        .expect("send file");
    let Some(PeerMessage::File(offer)) = to_bob.channel.recv(wait).expect("recv") else {
        panic!("expected a file");
    };
    assert_eq!(
        offer.read_to_vec().expect("read"),
        b"yes, without the server"
    );
    to_bob.channel.ack(offer.serial).expect("ack");
    to_alice.channel.wait_ack(f, wait).expect("acked");
}

#[test]
fn a_refused_file_is_one_line_from_the_sender_and_the_listener_goes_on() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let inbox_arg = inbox.path().to_str().expect("utf-8");
    let mut listener = listen(
        &server,
        "bob",
        &["--save-dir", inbox_arg, "--max-file-size", "10"],
    );
    let asset = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hello.txt");
    let out = client(&server, &["send-file", "bob", asset.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bob refused hello.txt") && stderr.contains("size limit of 10 bytes"),
        "{stderr}"
    );
    assert_ok(&client(&server, &["send", "bob", "still", "there"]));
    listener.expect_line("with the next text", |l| l.ends_with(": still there"));
    assert!(fs::read_dir(inbox.path()).expect("inbox").next().is_none());
    listener.child.kill().expect("kill");
    let (_, _, stderr) = listener.finish();
    assert!(stderr.contains("refused file \"hello.txt\""), "{stderr}");
}
