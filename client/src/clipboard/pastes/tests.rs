//! Unit tests of `Pastes` over real pipes and files: a paster that does
//! not read holds up nobody, a bad fd ends its own paste, and the bounds
//! (idle time, number open) drop the right paste. Time is passed in, so
//! nothing sleeps.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;

use super::Pastes;

/// 1 MiB of data, far more than a pipe holds, in an unlinked file.
fn data() -> (File, u64) {
    let mut file = tempfile::tempfile().unwrap();
    let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    file.write_all(&bytes).unwrap();
    (file, bytes.len() as u64)
}

fn pipe() -> (File, OwnedFd) {
    let (read, write) = pipe2(OFlag::O_CLOEXEC).unwrap();
    (File::from(read), write)
}

/// Whether every write end of the pipe is closed (`POLLHUP` on the read
/// end, even with data still in it).
fn hung_up(read: &File) -> bool {
    let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap();
    fds[0]
        .revents()
        .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

#[test]
fn a_paster_that_never_reads_holds_up_nobody() {
    let (file, len) = data();
    let now = Instant::now();
    let mut pastes = Pastes::new(&file, len, 4, Duration::from_secs(10));
    let (_stuck, stuck_end) = pipe();
    let (mut reader, reader_end) = pipe();
    pastes.add("text/plain".into(), stuck_end, now);
    pastes.add("text/plain".into(), reader_end, now);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..10_000 {
        pastes.write_ready(&[true, true], now);
        if pastes.len() == 1 && hung_up(&reader) {
            break;
        }
        let n = reader.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got.len() as u64, len, "the reading paster got all of it");
    assert_eq!(pastes.len(), 1, "the stuck one is still open");
}

#[test]
fn a_read_only_fd_ends_its_own_paste_only() {
    let (file, len) = data();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-only");
    File::create(&path).unwrap();
    let read_only = OwnedFd::from(File::open(&path).unwrap());
    let now = Instant::now();
    let mut pastes = Pastes::new(&file, len, 4, Duration::from_secs(10));
    pastes.add("text/plain".into(), read_only, now);
    assert_eq!(pastes.write_ready(&[true], now), 1);
    assert!(pastes.is_empty());
}

#[test]
fn a_paster_s_regular_file_is_written_in_full_by_turns() {
    let (file, len) = data();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let now = Instant::now();
    let mut pastes = Pastes::new(&file, len, 4, Duration::from_secs(10));
    pastes.add("text/plain".into(), OwnedFd::from(out), now);
    let mut turns = 0;
    while !pastes.is_empty() {
        pastes.write_ready(&[true], now);
        turns += 1;
        assert!(turns < 100, "never finished");
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
}

#[test]
fn a_paste_idle_past_the_timeout_is_dropped_and_its_pipe_closed() {
    let (file, len) = data();
    let start = Instant::now();
    let timeout = Duration::from_secs(10);
    let mut pastes = Pastes::new(&file, len, 4, timeout);
    let (stuck, stuck_end) = pipe();
    pastes.add("text/plain".into(), stuck_end, start);
    pastes.write_ready(&[true], start); // fills the pipe
    assert_eq!(pastes.next_deadline(), Some(start + timeout));
    assert_eq!(pastes.expire(start + timeout / 2), 0);
    assert_eq!(pastes.expire(start + timeout), 1);
    assert!(hung_up(&stuck));
}

#[test]
fn past_the_bound_the_paste_idle_longest_makes_room() {
    let (file, len) = data();
    let start = Instant::now();
    let mut pastes = Pastes::new(&file, len, 2, Duration::from_secs(10));
    let (oldest, oldest_end) = pipe();
    let (newer, newer_end) = pipe();
    let (newest, newest_end) = pipe();
    pastes.add("a".into(), oldest_end, start);
    pastes.add("b".into(), newer_end, start + Duration::from_secs(1));
    pastes.add("c".into(), newest_end, start + Duration::from_secs(2));
    assert_eq!(pastes.len(), 2);
    assert!(hung_up(&oldest));
    assert!(!hung_up(&newer) && !hung_up(&newest));
}

#[test]
fn empty_data_closes_the_pipe_at_once() {
    let file = tempfile::tempfile().unwrap();
    let mut pastes = Pastes::new(&file, 0, 4, Duration::from_secs(10));
    let (read, write) = pipe();
    pastes.add("text/plain".into(), write, Instant::now());
    assert!(pastes.is_empty());
    assert!(hung_up(&read));
}
