//! What `waypass-client listen` gives back: `--json` lines parsed as JSON
//! (and `keymap --json`'s `"version"`), sparse files saved with their
//! holes, progress sent to the sender of a large file and no progress bar
//! on a pipe, and fair turns: a peer that floods does not keep another
//! from its ack (issues 10.7, 13.3, 13.9, 13.10).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use super::support::{answer, listen, peer, say, Answer};
use serde_json::Value;
use waypass_protocol::protocols::broker::waypass_peer_v1::req;
use waypass_test_support::{run_client, Server, TempDir, PATIENCE};

fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8(out.stdout).expect("utf-8")[..64].to_string()
}

#[test]
fn listen_json_prints_one_parsable_object_per_event() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let mut listener = listen(
        &server,
        &["--json", "--save-dir", inbox.path().to_str().unwrap()],
    );
    let (_b, mut p) = peer(&server);
    assert_eq!(
        say(&mut p.channel, "hé \u{1b}[2J\n\"quoted\""),
        Answer::Acked
    );
    let s = p
        .channel
        .send_snapshot("notes.txt", b"some notes")
        .expect("offer");
    assert_eq!(answer(&mut p.channel, s), Answer::Acked);
    let s = p.channel.send_snapshot("../escape", b"x").expect("offer");
    assert!(matches!(answer(&mut p.channel, s), Answer::Refused(_)));
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = listener.expect_line("a JSON event", |_| true);
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["version"], 1, "{line}");
        events.push(v);
    }
    let (lines, stderr) = listener.kill();
    assert!(stderr.is_empty(), "{stderr}");
    let pid = i64::from(std::process::id() as i32);

    let text = &events[0];
    assert_eq!(text["type"], "text");
    assert_eq!(text["text"], "hé \u{1b}[2J\n\"quoted\"");
    assert_eq!(text["from"]["pid"], pid);
    assert_eq!(text["from"]["name"], Value::Null);
    assert_eq!(
        text["from"]["uid"],
        i64::from(nix::unistd::geteuid().as_raw())
    );
    assert!(text["serial"].is_u64());

    let file = &events[1];
    assert_eq!(file["type"], "file");
    assert_eq!(file["name"], "notes.txt");
    assert_eq!(file["size"], 10);
    let saved = inbox.join("notes.txt");
    assert_eq!(file["saved_as"], saved.to_str().unwrap());
    assert_eq!(file["sha256"], sha256sum(&saved));

    let refused = &events[2];
    assert_eq!(refused["type"], "refused");
    assert_eq!(refused["what"], "file");
    assert_eq!(refused["name"], "../escape");
    assert!(refused["reason"].as_str().unwrap().contains("unsafe"));
    assert!(lines.iter().all(|l| l.starts_with('{')), "{lines:?}");
}

#[test]
fn keymap_json_has_a_version() {
    let server = Server::start(&[]);
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["version"], 1);
    assert!(v["layouts"].is_array() && v["keys"].is_array());
}

#[test]
fn a_sparse_file_is_saved_with_its_holes_and_its_whole_hash() {
    let server = Server::start(&[]);
    let dir = TempDir::new("sparse");
    let inbox = dir.join("inbox");
    fs::create_dir(&inbox).expect("inbox");
    let listener = listen(&server, &["--save-dir", inbox.to_str().unwrap()]);
    let path = dir.join("sparse.bin");
    let file = fs::File::create(&path).expect("create");
    file.set_len(8 << 20).expect("8 MiB");
    file.write_all_at(&[1u8; 4096], 0).expect("write");
    file.write_all_at(&[2u8; 4096], 4 << 20).expect("write");
    file.write_all_at(&[3u8; 100], (8 << 20) - 100)
        .expect("write");
    drop(file);
    let (_b, mut p) = peer(&server);
    let s = p.channel.send_path(&path).expect("offer");
    assert_eq!(answer(&mut p.channel, s), Answer::Acked);
    let saved = inbox.join("sparse.bin");
    let (src, dst) = (fs::metadata(&path).unwrap(), fs::metadata(&saved).unwrap());
    assert_eq!(dst.len(), 8 << 20);
    assert_eq!(sha256sum(&saved), sha256sum(&path));
    // Three data blocks and their metadata: far under the 8 MiB of zeros.
    assert!(
        dst.blocks() * 512 <= 1 << 20,
        "saved {} blocks, the source {}",
        dst.blocks(),
        src.blocks()
    );
    listener.kill();
}

#[test]
fn a_large_file_gets_progress_messages_and_no_bar_on_a_pipe() {
    let server = Server::start(&[]);
    let dir = TempDir::new("large");
    let inbox = dir.join("inbox");
    fs::create_dir(&inbox).expect("inbox");
    let listener = listen(&server, &["--save-dir", inbox.to_str().unwrap()]);
    // 72 MiB, mostly a hole: over the 64 MiB between progress messages.
    const SIZE: u64 = 72 << 20;
    let path = dir.join("large.bin");
    let file = fs::File::create(&path).expect("create");
    file.set_len(SIZE).expect("set_len");
    file.write_all_at(b"end", SIZE - 3).expect("write");
    drop(file);
    let (_b, mut p) = peer(&server);
    let s = p.channel.send_path(&path).expect("offer");
    let mut seen = Vec::new();
    p.channel
        .wait_ack_with(s, Some(PATIENCE), |done| seen.push(done))
        .expect("acked");
    // One when the reading starts, one at least every 64 MiB.
    assert_eq!(seen.first(), Some(&0), "{seen:?}");
    assert!(seen.iter().any(|&d| d >= 64 << 20), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(*seen.last().unwrap() <= SIZE, "{seen:?}");
    let (_, stderr) = listener.kill();
    assert!(
        !stderr.contains('\r') && !stderr.contains("eta"),
        "{stderr:?}"
    );
}

/// One `text(serial, text)` message of `waypass_peer_v1`, encoded by hand.
fn text_message(serial: u32, text: &str) -> Vec<u8> {
    let len = text.len() + 1;
    let padded = len.div_ceil(4) * 4;
    let size = 8 + 4 + 4 + padded;
    let mut m = Vec::with_capacity(size);
    m.extend_from_slice(&1u32.to_ne_bytes());
    m.extend_from_slice(&(((size as u32) << 16) | u32::from(req::TEXT)).to_ne_bytes());
    m.extend_from_slice(&serial.to_ne_bytes());
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(text.as_bytes());
    m.resize(size, 0);
    m
}

#[test]
fn a_flooding_peer_does_not_keep_another_from_its_ack() {
    const FLOOD: u32 = 50_000;
    let server = Server::start(&[]);
    let mut listener = listen(&server, &[]);
    let (_fb, flooder) = peer(&server);
    let fd = nix::unistd::dup(flooder.channel.as_fd()).expect("dup");
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false).expect("blocking");
    // Read (and drop) the acks, so the flood is never held back by them.
    let mut acks = stream.try_clone().expect("clone");
    thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        while matches!(acks.read(&mut sink), Ok(n) if n > 0) {}
    });
    let flood_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&flood_done);
    let mut writer = stream;
    let flood = thread::spawn(move || {
        let mut batch = Vec::new();
        for serial in 1..=FLOOD {
            batch.extend(text_message(serial, &format!("flood {serial:06}")));
            if batch.len() > 1 << 16 || serial == FLOOD {
                writer.write_all(&batch).expect("flood");
                batch.clear();
            }
        }
        done.store(true, Ordering::SeqCst);
        writer
    });
    listener.expect_line("from the flood", |l| l.contains(": flood "));
    let (_pb, mut polite) = peer(&server);
    assert_eq!(say(&mut polite.channel, "polite hello"), Answer::Acked);
    let flood_was_done = flood_done.load(Ordering::SeqCst);
    let line = listener.expect_line("from the polite peer", |l| l.contains("polite hello"));
    let floods_before = listener
        .seen
        .iter()
        .filter(|l| l.contains(": flood "))
        .count();
    eprintln!("{floods_before} of {FLOOD} flood messages were handled before the polite one");
    let _writer = flood.join().expect("flood thread");
    let (lines, _) = listener.kill();
    assert!(
        !flood_was_done || floods_before < FLOOD as usize,
        "the polite peer waited for all {FLOOD} flood messages ({line})"
    );
    assert!(
        floods_before < FLOOD as usize,
        "{floods_before} flood lines before the polite one; {} after",
        lines.len()
    );
}

#[test]
fn a_progress_bar_shows_on_a_terminal_but_not_with_json() {
    let server = Server::start(&[]);
    let dir = TempDir::new("tty");
    let path = dir.join("large.bin");
    let file = fs::File::create(&path).expect("create");
    file.set_len(20 << 20).expect("set_len");
    drop(file);
    for json in [false, true] {
        let inbox = dir.join(if json { "inbox-json" } else { "inbox" });
        // `script` runs the listener on a pseudo-terminal.
        let line = format!(
            "{} --socket {} listen bob --count 1 --save-dir {}{}",
            waypass_test_support::bin("waypass-client").display(),
            server.socket_arg(),
            inbox.display(),
            if json { " --json" } else { "" }
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &line, "/dev/null"]);
        let mut listener = super::support::Running::spawn_command(cmd);
        listener.expect_line("saying it registered", |l| l.contains("registered"));
        let (_b, mut p) = peer(&server);
        let s = p.channel.send_path(&path).expect("offer");
        assert_eq!(answer(&mut p.channel, s), Answer::Acked);
        let (status, lines, _) = listener.finish();
        assert!(status.success());
        let all = lines.join("\n");
        assert_eq!(all.contains("20.00 MiB"), !json, "json {json}: {all:?}");
    }
}
