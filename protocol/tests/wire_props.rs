//! Property tests of the wire codec over every message this crate
//! describes: arbitrary argument values round-trip through encode and
//! decode, and arbitrary or corrupted bytes never panic the decoder.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use waypass_protocol::protocols;
use waypass_protocol::wire::{self, Arg, Fixed, MAX_MESSAGE_SIZE};
use waypass_protocol::{ArgDesc, ArgKind, MessageDesc};

/// An owned argument value, from which an `Arg` to encode is borrowed.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i32),
    Uint(u32),
    Fixed(i32),
    Str(Option<CString>),
    Object(u32),
    NewId(u32),
    Array(Vec<u8>),
    Fd,
}

/// Every request and event of every described interface.
fn all_messages() -> Vec<(String, &'static MessageDesc)> {
    let mut out = Vec::new();
    for iface in protocols::ALL {
        for m in iface.requests {
            out.push((format!("{}.{}", iface.name, m.name), m));
        }
        for m in iface.events {
            out.push((format!("{}.{}", iface.name, m.name), m));
        }
    }
    out
}

fn value_strategy(desc: &ArgDesc) -> BoxedStrategy<Value> {
    let text = vec(1u8..=255, 0..120).prop_map(|b| CString::new(b).expect("no NUL"));
    match desc.kind {
        ArgKind::Int => any::<i32>().prop_map(Value::Int).boxed(),
        ArgKind::Uint => any::<u32>().prop_map(Value::Uint).boxed(),
        ArgKind::Fixed => any::<i32>().prop_map(Value::Fixed).boxed(),
        ArgKind::String if desc.nullable => proptest::option::of(text).prop_map(Value::Str).boxed(),
        ArgKind::String => text.prop_map(|s| Value::Str(Some(s))).boxed(),
        ArgKind::Object if desc.nullable => any::<u32>().prop_map(Value::Object).boxed(),
        ArgKind::Object => (1..=u32::MAX).prop_map(Value::Object).boxed(),
        ArgKind::NewId => (1..=u32::MAX).prop_map(Value::NewId).boxed(),
        ArgKind::Array => vec(any::<u8>(), 0..200).prop_map(Value::Array).boxed(),
        ArgKind::Fd => Just(Value::Fd).boxed(),
    }
}

/// A message index with argument values fitting its signature.
fn message_strategy(
    messages: &[(String, &'static MessageDesc)],
) -> BoxedStrategy<(usize, Vec<Value>)> {
    let per_message: Vec<_> = messages
        .iter()
        .map(|(_, desc)| desc.args.iter().map(value_strategy).collect::<Vec<_>>())
        .collect();
    (0..messages.len())
        .prop_flat_map(move |i| (Just(i), per_message[i].clone()))
        .boxed()
}

fn to_arg<'a>(v: &'a Value, fd: BorrowedFd<'a>) -> Arg<'a, BorrowedFd<'a>> {
    match v {
        Value::Int(x) => Arg::Int(*x),
        Value::Uint(x) => Arg::Uint(*x),
        Value::Fixed(x) => Arg::Fixed(Fixed(*x)),
        Value::Str(s) => Arg::Str(s.as_deref()),
        Value::Object(x) => Arg::Object(*x),
        Value::NewId(x) => Arg::NewId(*x),
        Value::Array(b) => Arg::Array(b),
        Value::Fd => Arg::Fd(fd),
    }
}

fn identity(fd: BorrowedFd<'_>) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd).expect("fstat");
    (st.st_dev as u64, st.st_ino as u64)
}

/// The decoded argument, as a `Value`, checking that a decoded fd is `file`.
fn from_arg(a: &Arg<'_, OwnedFd>, file: &File) -> Value {
    match a {
        Arg::Int(x) => Value::Int(*x),
        Arg::Uint(x) => Value::Uint(*x),
        Arg::Fixed(x) => Value::Fixed(x.0),
        Arg::Str(s) => Value::Str(s.map(CStr::to_owned)),
        Arg::Object(x) => Value::Object(*x),
        Arg::NewId(x) => Value::NewId(*x),
        Arg::Array(b) => Value::Array(b.to_vec()),
        Arg::Fd(fd) => {
            assert_eq!(identity(fd.as_fd()), identity(file.as_fd()));
            Value::Fd
        }
    }
}

fn encode_values(desc: &MessageDesc, values: &[Value], file: &File) -> Vec<u8> {
    let args: Vec<_> = values.iter().map(|v| to_arg(v, file.as_fd())).collect();
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
    let n = wire::encode(42, 7, desc, &args, &mut buf).expect("encode");
    buf.truncate(n);
    buf
}

fn fd_queue(file: &File, n: usize) -> VecDeque<OwnedFd> {
    (0..n)
        .map(|_| file.as_fd().try_clone_to_owned().expect("dup"))
        .collect()
}

fn runner() -> TestRunner {
    // No regression files written into the source tree.
    TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    })
}

fn test_file() -> File {
    memfd::MemfdOptions::default()
        .create("wire-props")
        .expect("memfd")
        .into_file()
}

#[test]
fn arbitrary_values_round_trip_for_every_message() {
    let file = test_file();
    let messages = all_messages();
    runner()
        .run(&message_strategy(&messages), |(i, values)| {
            let (name, desc) = &messages[i];
            let bytes = encode_values(desc, &values, &file);
            let mut fds = fd_queue(&file, desc.fd_count());
            let (header, whole) = wire::split_message(&bytes).expect("valid").expect("whole");
            prop_assert_eq!(whole.len(), bytes.len());
            let m = wire::decode(header, whole, desc, &mut fds)
                .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            prop_assert_eq!((m.sender, m.opcode), (42, 7));
            let got: Vec<_> = m.args.iter().map(|a| from_arg(a, &file)).collect();
            prop_assert_eq!(got, values, "{}", name);
            prop_assert!(fds.is_empty());
            Ok(())
        })
        .unwrap();
}

/// Decodes whatever `bytes` hold against `desc` with `queued` fds; only a
/// panic can fail this.
fn decode_anything(bytes: &[u8], desc: &MessageDesc, file: &File, queued: usize) {
    let mut fds = fd_queue(file, queued);
    let mut rest = bytes;
    while let Ok(Some((header, whole))) = wire::split_message(rest) {
        if let Ok(m) = wire::decode(header, whole, desc, &mut fds) {
            assert_eq!(m.args.len(), desc.args.len());
        }
        rest = &rest[whole.len()..];
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    let file = test_file();
    let messages = all_messages();
    let size = prop_oneof![Just(None), any::<u16>().prop_map(Some)];
    let strategy = (
        0..messages.len(),
        any::<u32>(),
        any::<u16>(),
        size,
        vec(any::<u8>(), 0..600),
        0..3usize,
    );
    runner()
        .run(&strategy, |(i, sender, opcode, size, body, queued)| {
            // Either an honest size (so the body is parsed) or any size at all.
            let mut body = body;
            if size.is_none() {
                body.truncate(body.len() / 4 * 4);
            }
            let size = size.map_or((8 + body.len()) as u32, u32::from);
            let mut bytes = sender.to_ne_bytes().to_vec();
            bytes.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
            bytes.extend_from_slice(&body);
            decode_anything(&bytes, messages[i].1, &file, queued);
            Ok(())
        })
        .unwrap();
}

#[test]
fn corrupted_messages_never_panic_the_decoder() {
    let file = test_file();
    let messages = all_messages();
    let corruption = (
        vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        any::<prop::sample::Index>(),
    );
    let strategy = (message_strategy(&messages), corruption, 0..3usize);
    runner()
        .run(&strategy, |((i, values), (flips, cut), queued)| {
            let desc = messages[i].1;
            let mut bytes = encode_values(desc, &values, &file);
            // Corrupt the body only, so that the header still frames it.
            if bytes.len() > 8 {
                for (at, xor) in &flips {
                    let at = 8 + at.index(bytes.len() - 8);
                    bytes[at] ^= xor;
                }
            }
            decode_anything(&bytes, desc, &file, queued);
            // And truncated, with the header size rewritten to match.
            let keep = 8 + 4 * cut.index((bytes.len() - 8) / 4 + 1);
            bytes.truncate(keep);
            let second = u32::from_ne_bytes(bytes[4..8].try_into().expect("header"));
            let fixed = ((keep as u32) << 16) | (second & 0xffff);
            bytes[4..8].copy_from_slice(&fixed.to_ne_bytes());
            decode_anything(&bytes, desc, &file, queued);
            Ok(())
        })
        .unwrap();
}
