//! How `waypass-client listen` ends, end to end: killed in the middle of
//! saving a file (`SIGINT`, as Ctrl-C sends, and `SIGKILL`), it leaves no
//! file that looks complete; with `--count`, refused offers count, so a
//! script never waits for ever on a refusal, and the exit status says that
//! something was refused.
//!
//! What it is not: the hostile-peer cases of `listen_hostile.rs`, or the
//! output formats of `listen_output.rs`.

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use super::support::{answer, listen, peer, say, Answer};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use waypass_client::PeerMessage;
use waypass_test_support::{Server, TempDir, PATIENCE};

/// The data at the start of the offered file; the rest is a hole.
const DATA: usize = 8 << 20;

/// The offered file's size: 1 TiB, nearly all hole, so that reading it
/// (holes are hashed as zeros) takes far longer than the test.
const SIZE: u64 = 1 << 40;

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Pseudo-random bytes (xorshift64), so no block of the data is a hole.
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

/// Offers a file of 8 MiB of data and a 1 TiB hole, waits until the
/// listener says it has read past the data (so the saved copy holds
/// 8 MiB), kills it with `signal`, and returns what is left in the inbox.
fn killed_mid_file(signal: Signal) -> Vec<String> {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let listener = listen(
        &server,
        &[
            "--save-dir",
            inbox.path().to_str().unwrap(),
            "--max-file-size",
            &(2 * SIZE).to_string(),
        ],
    );
    let (_b, mut p) = peer(&server);
    let memfd = memfd_create("big", MFdFlags::MFD_CLOEXEC).expect("memfd");
    fs::File::from(memfd.try_clone().expect("dup"))
        .write_all(&noise(DATA))
        .expect("data");
    nix::unistd::ftruncate(&memfd, SIZE as i64).expect("1 TiB");
    let serial = p
        .channel
        .send_file(memfd.as_fd(), "big.bin", SIZE)
        .expect("offer");
    loop {
        match p.channel.recv(Some(PATIENCE)).expect("progress") {
            Some(PeerMessage::Progress { serial: s, done }) if s == serial => {
                assert!(done < SIZE, "the whole file was read");
                if done >= DATA as u64 {
                    break;
                }
            }
            other => panic!("expected progress, got {other:?}"),
        }
    }
    kill(Pid::from_raw(listener.pid() as i32), signal).expect("kill");
    let (status, _, _) = listener.finish();
    assert!(!status.success(), "{status:?}");
    files_in(inbox.path())
}

/// Nothing under the offered name (`big.bin`, `big.bin.N`); at most the
/// hidden temporary of a file system without `O_TMPFILE`.
fn assert_nothing_looks_complete(left: &[String]) {
    assert!(
        left.iter()
            .all(|n| n.starts_with(".waypass-") && n.ends_with(".part")),
        "{left:?}"
    );
}

#[test]
fn ctrl_c_mid_file_leaves_no_file_under_its_name() {
    let left = killed_mid_file(Signal::SIGINT);
    assert_nothing_looks_complete(&left);
}

#[test]
fn sigkill_mid_file_leaves_no_file_under_its_name() {
    let left = killed_mid_file(Signal::SIGKILL);
    assert_nothing_looks_complete(&left);
}

#[test]
fn count_1_ends_on_a_refused_offer_with_exit_1() {
    let server = Server::start(&[]);
    let listener = listen(&server, &["--count", "1", "--max-file-size", "10"]);
    let (_b, mut p) = peer(&server);
    let s = p.channel.send_snapshot("big", &[1u8; 100]).expect("offer");
    assert!(matches!(answer(&mut p.channel, s), Answer::Refused(_)));
    let (status, _, stderr) = listener.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused file \"big\""), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last, "waypass-client: error: --count 1 reached; 1 of them was refused",
        "{stderr}"
    );
}

#[test]
fn count_2_counts_acks_and_refusals_alike() {
    let server = Server::start(&[]);
    let listener = listen(&server, &["--count", "2", "--max-file-size", "10"]);
    let (_b, mut p) = peer(&server);
    let s = p.channel.send_snapshot("big", &[1u8; 100]).expect("offer");
    assert!(matches!(answer(&mut p.channel, s), Answer::Refused(_)));
    assert_eq!(say(&mut p.channel, "then a text"), Answer::Acked);
    let (status, lines, stderr) = listener.finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        lines.iter().any(|l| l.ends_with(": then a text")),
        "{lines:?}"
    );

    // Nothing refused: exit 0, as before.
    let listener = listen(&server, &["--count", "1"]);
    let (_b, mut p) = peer(&server);
    assert_eq!(say(&mut p.channel, "hello"), Answer::Acked);
    let (status, _, stderr) = listener.finish();
    assert!(status.success(), "{stderr}");
}
