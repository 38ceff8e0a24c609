//! The file primitives against the real kernel: pipes, memfds, seals.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::Rc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::pipe2;

use super::*;

fn read_all(reader: &mut Reader) -> ReadStep {
    loop {
        match reader.read_some() {
            ReadStep::More => continue,
            other => return other,
        }
    }
}

/// Everything a pipe's read end gives until its end, as text.
fn text_of(read: OwnedFd) -> String {
    let mut got = String::new();
    std::fs::File::from(read).read_to_string(&mut got).unwrap();
    got
}

fn kept_of(bytes: &[u8], budget: &Budget) -> Rc<Kept> {
    let (mut reader, write) = Reader::new(budget.open(1000)).unwrap();
    let bytes = bytes.to_vec();
    // More than a pipe holds: the copier writes while the reader reads.
    let copier = std::thread::spawn(move || std::fs::File::from(write).write_all(&bytes));
    assert!(matches!(read_all(&mut reader), ReadStep::Done));
    copier.join().unwrap().unwrap();
    reader.finish().unwrap()
}

#[test]
fn a_reader_keeps_the_bytes_sealed_and_charged() {
    let budget = Budget::new(1 << 20);
    let (mut reader, write) = Reader::new(budget.open(1000)).unwrap();
    // Nothing yet: the read end is non-blocking, the writer's is not.
    assert!(matches!(reader.read_some(), ReadStep::More));
    let flags = OFlag::from_bits_truncate(fcntl(&write, FcntlArg::F_GETFL).unwrap());
    assert!(!flags.contains(OFlag::O_NONBLOCK));
    let mut write = std::fs::File::from(write);
    write.write_all(b"hello").unwrap();
    assert!(matches!(reader.read_some(), ReadStep::More));
    drop(write);
    assert!(matches!(reader.read_some(), ReadStep::Done));
    let kept = reader.finish().unwrap();
    assert_eq!(kept.len(), 5);
    assert_eq!(budget.held(1000), 5);
    let info = waypass_protocol::inspect_fd(kept.file().as_fd()).unwrap();
    assert!(info.memfd);
    assert_eq!(info.size, 5);
    let seals = info.seals.expect("a memfd has seals");
    assert_eq!(seals.names(), ["seal", "shrink", "grow", "write"]);
    drop(kept);
    assert_eq!(budget.held(1000), 0, "the charge goes with the file");
}

#[test]
fn a_reader_stops_one_byte_past_the_budget() {
    let budget = Budget::new(10);
    let (mut reader, write) = Reader::new(budget.open(7)).unwrap();
    let mut write = std::fs::File::from(write);
    write.write_all(&[1; 10]).unwrap();
    assert!(matches!(reader.read_some(), ReadStep::More));
    drop(write);
    // Exactly the budget fits.
    assert!(matches!(reader.read_some(), ReadStep::Done));
    let kept = reader.finish().unwrap();
    assert_eq!(budget.left(7), 0);
    // One byte more does not, for the same uid; another uid has its own.
    let (mut over, write) = Reader::new(budget.open(7)).unwrap();
    std::fs::File::from(write).write_all(&[2]).unwrap();
    assert!(matches!(over.read_some(), ReadStep::OverBudget));
    let (mut other, write) = Reader::new(budget.open(8)).unwrap();
    std::fs::File::from(write).write_all(&[3; 10]).unwrap();
    assert!(matches!(read_all(&mut other), ReadStep::Done));
    drop(kept);
    assert_eq!(budget.held(7), 0);
}

#[test]
fn a_writer_splices_into_a_pipe_and_waits_when_it_is_full() {
    let budget = Budget::new(1 << 22);
    let bytes: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let kept = kept_of(&bytes, &budget);
    let (read, write) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut writer = Writer::new(Rc::clone(&kept), write);
    // 1 MiB does not fit a 64 KiB pipe: the first step stops when full.
    assert!(matches!(writer.write_some(), WriteStep::Blocked));
    assert!(writer.written() > 0 && writer.written() < bytes.len() as u64);
    let reading = std::thread::spawn(move || {
        let mut got = Vec::new();
        std::fs::File::from(read).read_to_end(&mut got).unwrap();
        got
    });
    loop {
        match writer.write_some() {
            WriteStep::Blocked => std::thread::yield_now(),
            WriteStep::Done => break,
            WriteStep::Gone(e) => panic!("{e}"),
            WriteStep::CaughtUp => panic!("a sealed copy is complete"),
        }
    }
    drop(writer);
    assert_eq!(reading.join().unwrap(), bytes);
}

#[test]
fn a_writer_copies_into_a_file_that_is_no_pipe() {
    let budget = Budget::new(1 << 20);
    let kept = kept_of(b"into a file", &budget);
    let mut file = tempfile_in_tmp();
    let fd: OwnedFd = file.try_clone().unwrap().into();
    let mut writer = Writer::new(kept, fd);
    assert!(matches!(writer.write_some(), WriteStep::Done));
    let mut got = String::new();
    use std::io::Seek;
    file.rewind().unwrap();
    file.read_to_string(&mut got).unwrap();
    assert_eq!(got, "into a file");
}

#[test]
fn a_writer_whose_reader_is_gone_says_so() {
    let budget = Budget::new(1 << 20);
    let kept = kept_of(b"nobody reads", &budget);
    let (read, write) = pipe2(OFlag::O_CLOEXEC).unwrap();
    drop(read);
    let mut writer = Writer::new(kept, write);
    // Rust programs ignore SIGPIPE: EPIPE comes back as an error.
    assert!(matches!(writer.write_some(), WriteStep::Gone(_)));
}

#[test]
fn jobs_added_and_ended_in_one_pass_are_never_registered() {
    let mut jobs = Jobs::default();
    let a = jobs.add(Watch::Timeout(std::time::Duration::from_secs(1)));
    let b = jobs.add(Watch::Timeout(std::time::Duration::from_secs(1)));
    jobs.end(a);
    let (added, ended) = jobs.take();
    assert_eq!(added.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [b]);
    assert!(ended.is_empty());
    jobs.end(b);
    assert_eq!(jobs.take().1, [b]);
    assert!(!jobs.has_changes());
}

fn tempfile_in_tmp() -> std::fs::File {
    let fd = memfd::MemfdOptions::default()
        .create("waypass-test")
        .unwrap();
    let file = fd.into_file();
    assert!(file.as_raw_fd() > 2);
    file
}

#[test]
fn every_uid_together_holds_at_most_the_total_shares() {
    let budget = Budget::new(10);
    let mut charges: Vec<Charge> = (0..TOTAL_SHARES as u32)
        .map(|uid| budget.open(uid))
        .collect();
    for charge in &mut charges {
        assert!(charge.grow(10));
    }
    let mut late = budget.open(99);
    assert_eq!(
        budget.left(99),
        0,
        "its own share is whole, the total is not"
    );
    assert!(!late.grow(1));
    charges.pop();
    assert!(late.grow(10));
}

#[test]
fn a_writer_follows_a_copy_still_being_read_and_ends_when_it_is_sealed() {
    let budget = Budget::new(1 << 20);
    let (mut reader, write) = Reader::new(budget.open(1)).unwrap();
    let mut copier = std::fs::File::from(write);
    let (paste_read, paste_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut writer = Writer::new(Rc::clone(reader.kept()), paste_write);
    assert!(matches!(writer.write_some(), WriteStep::CaughtUp));
    copier.write_all(b"first ").unwrap();
    assert!(matches!(reader.read_some(), ReadStep::More));
    // The first bytes go out before the copier has closed its end.
    assert!(matches!(writer.write_some(), WriteStep::CaughtUp));
    assert_eq!(writer.written(), 6);
    copier.write_all(b"and last").unwrap();
    drop(copier);
    assert!(matches!(read_all(&mut reader), ReadStep::Done));
    let kept = reader.finish().unwrap();
    assert!(kept.is_sealed());
    assert!(matches!(writer.write_some(), WriteStep::Done));
    drop(writer);
    assert_eq!(text_of(paste_read), "first and last");
}

#[test]
fn a_relay_drops_what_the_paster_has_and_passes_on_the_rest() {
    let (paste_read, paste_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
    let (mut relay, write) = Relay::new(paste_write, 6).unwrap();
    assert!(matches!(relay.step(), RelayStep::Read));
    let mut copier = std::fs::File::from(write);
    copier.write_all(b"first and last").unwrap();
    drop(copier);
    loop {
        match relay.step() {
            RelayStep::Done => break,
            RelayStep::Read | RelayStep::Write => continue,
            RelayStep::Gone(e) => panic!("{e}"),
        }
    }
    drop(relay);
    assert_eq!(text_of(paste_read), "and last");
}
