//! What a sender does with the owner's answers, end to end: a real
//! `waypass-server` and `waypass-client send`/`send-file`, against an
//! in-process owner built on the library (`listen` never refuses a plain
//! file nor reports progress slowly on purpose).
//!
//! Checked: a refusal is printed with its reason and ends the sender at
//! once with exit 1; progress restarts the sender's idle timeout; a reader
//! that stalls is reported with what it had read; progress past the file's
//! size, or for a text, ends the sender at once with exit 1 (it kept it
//! waiting for ever); a progress bar appears on a terminal and never on a
//! pipe.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::support::*;
use waypass_test_support::{bin, run_with_patience, Server, TempDir, PATIENCE};

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
    let out = client(
        &server,
        &["send-file", "bob", &file, "--timeout-ms", "60000"],
    );
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
            thread::sleep(Duration::from_millis(200));
            channel.progress(serial, size * i / 15).expect("progress");
            channel.flush(Some(PATIENCE)).expect("flush");
        }
        channel.ack(serial).expect("ack");
        until_closed(channel);
    });
    let started = Instant::now();
    let out = client(&server, &["send-file", "bob", &file, "--timeout-ms", "2s"]);
    assert_ok(&out);
    assert!(started.elapsed() >= Duration::from_secs(3));
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
    let out = client(&server, &["send-file", "bob", &file, "--timeout-ms", "500"]);
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
            thread::sleep(Duration::from_millis(250));
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

/// An owner that answers the offer `serial` of `size` bytes with `progress`
/// every 100 ms, each 500 bytes more than the last, 50 times (5 s, past
/// the sender's 1 s idle timeout), then closes.
fn growing_progress(channel: &mut waypass_client::PeerChannel) {
    let (serial, _) = next_offer(channel);
    for i in 1..=50u64 {
        thread::sleep(Duration::from_millis(100));
        // Once the sender has gone, this is dropped quietly.
        if channel.progress(serial, 500 * i).is_err() || channel.flush(Some(PATIENCE)).is_err() {
            break;
        }
    }
}

#[test]
fn progress_past_the_file_size_is_a_peer_error_not_a_reason_to_wait() {
    let server = Server::start(&[]);
    let dir = TempDir::new("past-size");
    let file = sparse(&dir, "small.bin", 1000);
    let owned = owner(&server, "bob", growing_progress);
    let out = client(
        &server,
        &["send-file", "bob", &file, "--timeout-ms", "1000"],
    );
    assert_one_line_error(
        &out,
        "bob broke the peer protocol answering small.bin: \
         progress of 1500 bytes for file 1, which has 1000",
    );
    owned.join().expect("owner");
}

#[test]
fn progress_for_a_text_is_a_peer_error_not_a_reason_to_wait() {
    let server = Server::start(&[]);
    let owned = owner(&server, "bob", growing_progress);
    let out = client(&server, &["send", "bob", "hi", "--timeout-ms", "1000"]);
    assert_one_line_error(
        &out,
        "bob broke the peer protocol answering the text: \
         progress for message 1, which is not a file awaiting its answer",
    );
    owned.join().expect("owner");
}
