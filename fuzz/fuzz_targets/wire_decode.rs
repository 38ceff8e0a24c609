//! Fuzz target: the wire decoder.
//!
//! The input is a byte stream. Its first byte says how many fds sit in the
//! fd queue (0 to 7); the rest is split into messages with
//! [`wire::split_message`], and each message is decoded against the
//! signature of every request and event the protocol crate describes. What
//! must hold: nothing panics; a message that decodes encodes back to one
//! that decodes to the same values; a decode that fails takes no fd.
#![no_main]

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use waypass_protocol::protocols;
use waypass_protocol::wire::{self, Arg, Message, MAX_MESSAGE_SIZE};
use waypass_protocol::MessageDesc;

/// A file to duplicate into the fd queue.
fn spare() -> &'static File {
    static SPARE: OnceLock<File> = OnceLock::new();
    SPARE.get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
}

fn every_signature() -> &'static [&'static MessageDesc] {
    static ALL: OnceLock<Vec<&'static MessageDesc>> = OnceLock::new();
    ALL.get_or_init(|| {
        protocols::ALL
            .iter()
            .flat_map(|i| i.requests.iter().chain(i.events.iter()))
            .collect()
    })
}

fn queue(n: usize) -> VecDeque<OwnedFd> {
    (0..n)
        .map(|_| spare().as_fd().try_clone_to_owned().expect("dup"))
        .collect()
}

/// The values of a decoded message, fds as a marker, for comparison.
fn values(m: &Message<'_>) -> Vec<String> {
    m.args
        .iter()
        .map(|a| match a {
            Arg::Fd(_) => "fd".to_string(),
            Arg::Int(v) => format!("i{v}"),
            Arg::Uint(v) => format!("u{v}"),
            Arg::Fixed(v) => format!("f{}", v.0),
            Arg::Str(s) => format!("s{s:?}"),
            Arg::Object(v) => format!("o{v}"),
            Arg::NewId(v) => format!("n{v}"),
            Arg::Array(b) => format!("a{b:?}"),
        })
        .collect()
}

fn check_round_trip(m: &Message<'_>, desc: &MessageDesc) {
    let borrowed: Vec<Arg<'_, BorrowedFd<'_>>> = m
        .args
        .iter()
        .map(|a| match a {
            Arg::Fd(fd) => Arg::Fd(fd.as_fd()),
            Arg::Int(v) => Arg::Int(*v),
            Arg::Uint(v) => Arg::Uint(*v),
            Arg::Fixed(v) => Arg::Fixed(*v),
            Arg::Str(s) => Arg::Str(*s),
            Arg::Object(v) => Arg::Object(*v),
            Arg::NewId(v) => Arg::NewId(*v),
            Arg::Array(b) => Arg::Array(b),
        })
        .collect();
    let mut out = [0u8; MAX_MESSAGE_SIZE];
    let n = wire::encode(m.sender, m.opcode, desc, &borrowed, &mut out)
        .expect("a decoded message encodes");
    let (h, again) = wire::split_message(&out[..n])
        .expect("an encoded message splits")
        .expect("whole");
    let mut fds = queue(desc.fd_count());
    let decoded = wire::decode(h, again, desc, &mut fds).expect("it decodes again");
    assert_eq!(values(&decoded), values(m));
    assert!(fds.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let fd_count = usize::from(first & 7);
    while let Ok(Some((header, message))) = wire::split_message(rest) {
        for desc in every_signature() {
            let mut fds = queue(fd_count);
            match wire::decode(header, message, desc, &mut fds) {
                Ok(m) => {
                    assert_eq!(fds.len(), fd_count - desc.fd_count());
                    check_round_trip(&m, desc);
                }
                Err(_) => assert_eq!(fds.len(), fd_count, "a failed decode took fds"),
            }
        }
        rest = &rest[usize::from(header.size)..];
    }
});
