//! Unit tests of the wire codec: round trips of every argument type,
//! byte-exact real messages, a table of malformed inputs, the fd queue
//! and encode errors.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::*;
use crate::interface::{arg, msg, nullable, ArgKind as K, MessageDesc};
use crate::protocols::wayland::{wl_display, wl_keyboard, wl_registry, wl_seat};

/// One argument of every kind, nullable where the kind allows it.
const EVERY_KIND: MessageDesc = msg(
    "every_kind",
    1,
    &[
        arg("i", K::Int),
        arg("u", K::Uint),
        arg("f", K::Fixed),
        arg("s", K::String),
        nullable(arg("ns", K::String)),
        arg("o", K::Object),
        nullable(arg("no", K::Object)),
        arg("n", K::NewId),
        arg("a", K::Array),
        arg("fd", K::Fd),
    ],
);

const TWO_FDS: MessageDesc = msg(
    "two_fds",
    1,
    &[arg("a", K::Fd), arg("x", K::Uint), arg("b", K::Fd)],
);

fn file_identity(fd: BorrowedFd<'_>) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd).expect("fstat");
    (st.st_dev as u64, st.st_ino as u64)
}

/// Two files with different (dev, ino).
fn two_files() -> (File, File) {
    let a = memfd::MemfdOptions::default()
        .create("wire-a")
        .expect("memfd");
    let b = memfd::MemfdOptions::default()
        .create("wire-b")
        .expect("memfd");
    (a.into_file(), b.into_file())
}

/// Encodes `args`, queues a duplicate of each fd argument (what `recvmsg`
/// would deliver) and decodes the bytes again.
fn round_trip(
    desc: &MessageDesc,
    args: &[Arg<'_, BorrowedFd<'_>>],
) -> (Vec<u8>, VecDeque<OwnedFd>) {
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
    let n = encode(7, 3, desc, args, &mut buf).expect("encode");
    assert_eq!(n, encoded_size(args));
    buf.truncate(n);
    let fds = args
        .iter()
        .filter_map(|a| match a {
            Arg::Fd(fd) => Some(fd.try_clone_to_owned().expect("dup")),
            _ => None,
        })
        .collect();
    (buf, fds)
}

/// Asserts that a decoded argument equals the one sent.
fn assert_same(sent: &Arg<'_, BorrowedFd<'_>>, got: &Arg<'_, OwnedFd>) {
    match (sent, got) {
        (Arg::Int(a), Arg::Int(b)) => assert_eq!(a, b),
        (Arg::Uint(a), Arg::Uint(b)) => assert_eq!(a, b),
        (Arg::Fixed(a), Arg::Fixed(b)) => assert_eq!(a, b),
        (Arg::Str(a), Arg::Str(b)) => assert_eq!(a, b),
        (Arg::Object(a), Arg::Object(b)) => assert_eq!(a, b),
        (Arg::NewId(a), Arg::NewId(b)) => assert_eq!(a, b),
        (Arg::Array(a), Arg::Array(b)) => assert_eq!(a, b),
        (Arg::Fd(a), Arg::Fd(b)) => assert_eq!(file_identity(*a), file_identity(b.as_fd())),
        (a, b) => panic!("sent {a:?}, got {b:?}"),
    }
}

fn decode_all<'a>(bytes: &'a [u8], desc: &MessageDesc, fds: &mut VecDeque<OwnedFd>) -> Message<'a> {
    let (header, whole) = split_message(bytes).expect("header").expect("complete");
    assert_eq!(whole.len(), bytes.len());
    decode(header, whole, desc, fds).expect("decode")
}

fn check_round_trip(desc: &MessageDesc, args: &[Arg<'_, BorrowedFd<'_>>]) {
    let (bytes, mut fds) = round_trip(desc, args);
    let m = decode_all(&bytes, desc, &mut fds);
    assert_eq!((m.sender, m.opcode), (7, 3));
    assert_eq!(m.args.len(), args.len());
    for (sent, got) in args.iter().zip(&m.args) {
        assert_same(sent, got);
    }
    assert!(fds.is_empty(), "every queued fd was taken");
}

fn c(s: &[u8]) -> &CStr {
    CStr::from_bytes_with_nul(s).expect("test string")
}

#[test]
fn every_kind_round_trips_with_edge_values() {
    let (fa, _) = two_files();
    let arrays: [&[u8]; 7] = [b"", b"1", b"12", b"123", b"1234", b"12345", b"1234567"];
    let strings = [
        c(b"\0"),
        c(b"x\0"),
        c(b"abc\0"),
        c(b"wl_seat\0"),
        c(b"caf\xc3\xa9\0"),
    ];
    let values = [
        (0, 0),
        (-1, 1),
        (i32::MIN, u32::MAX),
        (i32::MAX, 0x8000_0000),
    ];
    for (k, (&array, &s)) in arrays.iter().zip(strings.iter().cycle()).enumerate() {
        let (i, u) = values[k % values.len()];
        let args = [
            Arg::Int(i),
            Arg::Uint(u),
            Arg::Fixed(Fixed::from_f64(-1.5 + k as f64 / 256.0)),
            Arg::Str(Some(s)),
            Arg::Str(if k % 2 == 0 { None } else { Some(s) }),
            Arg::Object(u32::MAX - k as u32),
            Arg::Object(k as u32 % 2),
            Arg::NewId(crate::SERVER_ID_START + k as u32),
            Arg::Array(array),
            Arg::Fd(fa.as_fd()),
        ];
        check_round_trip(&EVERY_KIND, &args);
    }
}

#[test]
fn fixed_converts_negative_and_fractional_values() {
    assert_eq!(Fixed::from_f64(-1.5), Fixed(-384));
    assert_eq!(Fixed::from_f64(1.0 / 256.0), Fixed(1));
    assert_eq!(Fixed::from_f64(-1.0 / 256.0), Fixed(-1));
    assert_eq!(Fixed(-384).to_f64(), -1.5);
    assert_eq!(Fixed(640).to_f64(), 2.5);
    assert_eq!(Fixed(-384).to_string(), "-1.500000");
}

#[test]
fn fds_come_back_in_argument_order() {
    let (fa, fb) = two_files();
    assert_ne!(file_identity(fa.as_fd()), file_identity(fb.as_fd()));
    let args = [Arg::Fd(fa.as_fd()), Arg::Uint(9), Arg::Fd(fb.as_fd())];
    check_round_trip(&TWO_FDS, &args);
    // Swapped, to show the comparison tells the files apart.
    let (bytes, mut fds) = round_trip(&TWO_FDS, &args);
    fds.swap(0, 1);
    let m = decode_all(&bytes, &TWO_FDS, &mut fds);
    let Arg::Fd(first) = &m.args[0] else {
        panic!("not an fd")
    };
    assert_eq!(file_identity(first.as_fd()), file_identity(fb.as_fd()));
}

/// The native-endian bytes of `words`.
fn words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn encode_to_vec(
    sender: u32,
    opcode: u16,
    desc: &MessageDesc,
    args: &[Arg<'_, BorrowedFd<'_>>],
) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = encode(sender, opcode, desc, args, &mut buf).expect("encode");
    buf[..n].to_vec()
}

#[test]
fn real_messages_match_hand_written_bytes() {
    let get_registry = &wl_display::INTERFACE.requests[wl_display::req::GET_REGISTRY as usize];
    let bytes = encode_to_vec(
        1,
        wl_display::req::GET_REGISTRY,
        get_registry,
        &[Arg::NewId(2)],
    );
    assert_eq!(bytes, words(&[1, (12 << 16) | 1, 2]));

    let name = &wl_seat::INTERFACE.events[wl_seat::evt::NAME as usize];
    let bytes = encode_to_vec(
        5,
        wl_seat::evt::NAME,
        name,
        &[Arg::Str(Some(c(b"seat0\0")))],
    );
    let mut expected = words(&[5, (20 << 16) | 1, 6]);
    expected.extend_from_slice(b"seat0\0\0\0");
    assert_eq!(bytes, expected);

    // The fd takes no bytes: only format and size are in the body.
    let keymap = &wl_keyboard::INTERFACE.events[wl_keyboard::evt::KEYMAP as usize];
    let (file, _) = two_files();
    let args = [Arg::Uint(1), Arg::Fd(file.as_fd()), Arg::Uint(65536)];
    let bytes = encode_to_vec(0xff00_0001, wl_keyboard::evt::KEYMAP, keymap, &args);
    assert_eq!(bytes, words(&[0xff00_0001, 16 << 16, 1, 65536]));
}

#[test]
fn untyped_new_id_bind_travels_as_interface_version_id() {
    let bind = &wl_registry::INTERFACE.requests[wl_registry::req::BIND as usize];
    let args = [
        Arg::Uint(7),
        Arg::Str(Some(c(b"wl_seat\0"))),
        Arg::Uint(9),
        Arg::NewId(4),
    ];
    let bytes = encode_to_vec(2, wl_registry::req::BIND, bind, &args);
    let mut expected = words(&[2, 32 << 16, 7, 8]);
    expected.extend_from_slice(b"wl_seat\0");
    expected.extend(words(&[9, 4]));
    assert_eq!(bytes, expected);
    let m = decode_all(&bytes, bind, &mut VecDeque::new());
    assert!(matches!(m.args[1], Arg::Str(Some(s)) if s.to_bytes() == b"wl_seat"));
    assert!(matches!(m.args[3], Arg::NewId(4)));
}

const ONE_UINT: MessageDesc = msg("u", 1, &[arg("u", K::Uint)]);
const TWO_UINTS: MessageDesc = msg("uu", 1, &[arg("a", K::Uint), arg("b", K::Uint)]);
const ONE_STRING: MessageDesc = msg("s", 1, &[arg("s", K::String)]);
const UINT_STRING: MessageDesc = msg("us", 1, &[arg("u", K::Uint), arg("s", K::String)]);
const ONE_ARRAY: MessageDesc = msg("a", 1, &[arg("a", K::Array)]);
const ONE_OBJECT: MessageDesc = msg("o", 1, &[arg("o", K::Object)]);
const ONE_NEW_ID: MessageDesc = msg("n", 1, &[arg("n", K::NewId)]);

/// A message with a correct header around `body`.
fn with_body(body: &[u8]) -> Vec<u8> {
    let size = (HEADER_SIZE + body.len()) as u32;
    let mut out = words(&[3, size << 16]);
    out.extend_from_slice(body);
    out
}

/// A header claiming `size` bytes, followed by `size` bytes of zeros
/// (or 8 when smaller), so that only the size rule can fail.
fn with_size(size: u32) -> Vec<u8> {
    let mut out = words(&[3, size << 16]);
    out.resize((size as usize).max(HEADER_SIZE), 0);
    out
}

/// A length-prefixed blob, padded.
fn blob(len: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = len.to_ne_bytes().to_vec();
    out.extend_from_slice(bytes);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

fn malformed(bytes: &[u8], desc: &MessageDesc) -> Result<(), Malformed> {
    let (header, whole) = split_message(bytes)?.expect("complete message");
    match decode(header, whole, desc, &mut VecDeque::new()) {
        Ok(_) => Ok(()),
        Err(DecodeError::Malformed(m)) => Err(m),
        Err(e) => panic!("not a wire error: {e}"),
    }
}

#[test]
fn malformed_inputs_map_to_their_exact_error() {
    use Malformed::*;
    let cat = |parts: &[Vec<u8>]| parts.concat();
    // One case a line: (what, bytes, signature, expected error).
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, &MessageDesc, Malformed)> = vec![
        ("size 0", with_size(0), &ONE_UINT, SizeTooSmall(0)),
        ("size 4 < header", with_size(4), &ONE_UINT, SizeTooSmall(4)),
        ("size 6: small before unaligned", with_size(6), &ONE_UINT, SizeTooSmall(6)),
        ("size 10 unaligned", with_size(10), &ONE_UINT, SizeNotAligned(10)),
        ("size 4100 > 4096", with_size(4100), &ONE_UINT, SizeTooLarge(4100)),
        ("size 65532", with_size(65532), &ONE_UINT, SizeTooLarge(65532)),
        ("empty body for a word", with_body(&[]), &ONE_UINT, ArgPastEnd { arg: 0 }),
        ("truncated second word", with_body(&words(&[1])), &TWO_UINTS, ArgPastEnd { arg: 1 }),
        ("trailing word", with_body(&words(&[1, 2])), &ONE_UINT, TrailingBytes { extra: 4 }),
        ("string without NUL", with_body(&blob(4, b"abcd")), &ONE_STRING, StringWithoutNul { arg: 0 }),
        ("interior NUL", with_body(&blob(4, b"a\0b\0")), &ONE_STRING, StringInteriorNul { arg: 0 }),
        ("string length past end", with_body(&blob(100, b"abc\0")), &ONE_STRING, ArgPastEnd { arg: 0 }),
        ("string padding past end", with_body(&cat(&[words(&[5]), b"abcd".to_vec()])), &ONE_STRING, ArgPastEnd { arg: 0 }),
        ("string length u32::MAX", with_body(&blob(u32::MAX, b"abc\0")), &ONE_STRING, ArgPastEnd { arg: 0 }),
        ("null non-nullable string", with_body(&words(&[0])), &ONE_STRING, UnexpectedNull { arg: 0 }),
        ("second arg without NUL", with_body(&cat(&[words(&[1]), blob(2, b"ab")])), &UINT_STRING, StringWithoutNul { arg: 1 }),
        ("string missing entirely", with_body(&words(&[1])), &UINT_STRING, ArgPastEnd { arg: 1 }),
        ("array past end", with_body(&blob(12, b"12345678")), &ONE_ARRAY, ArgPastEnd { arg: 0 }),
        ("array trailing", with_body(&cat(&[blob(1, b"1"), words(&[0])])), &ONE_ARRAY, TrailingBytes { extra: 4 }),
        ("null object", with_body(&words(&[0])), &ONE_OBJECT, UnexpectedNull { arg: 0 }),
        ("null new_id", with_body(&words(&[0])), &ONE_NEW_ID, UnexpectedNull { arg: 0 }),
    ];
    assert!(cases.len() >= 15);
    for (what, bytes, desc, expected) in cases {
        assert_eq!(malformed(&bytes, desc), Err(expected), "{what}");
    }
    // The same shapes, done right, decode.
    assert_eq!(
        malformed(&with_body(&blob(4, b"abc\0")), &ONE_STRING),
        Ok(())
    );
    assert_eq!(malformed(&with_body(&blob(0, b"")), &ONE_ARRAY), Ok(()));
    assert_eq!(
        malformed(&with_body(&words(&[0])), &NULLABLE_STRING),
        Ok(())
    );
}

const NULLABLE_STRING: MessageDesc = msg("ns", 1, &[nullable(arg("s", K::String))]);

#[test]
fn need_fds_leaves_the_queue_untouched() {
    let (fa, fb) = two_files();
    let args = [Arg::Fd(fa.as_fd()), Arg::Uint(9), Arg::Fd(fb.as_fd())];
    let (bytes, mut all) = round_trip(&TWO_FDS, &args);
    let (header, whole) = split_message(&bytes).unwrap().unwrap();
    let mut queue = VecDeque::new();
    let err = decode(header, whole, &TWO_FDS, &mut queue).unwrap_err();
    assert_eq!(
        err,
        DecodeError::NeedFds {
            needed: 2,
            queued: 0
        }
    );
    queue.push_back(all.pop_front().unwrap());
    let err = decode(header, whole, &TWO_FDS, &mut queue).unwrap_err();
    assert_eq!(
        err,
        DecodeError::NeedFds {
            needed: 2,
            queued: 1
        }
    );
    assert_eq!(queue.len(), 1);
    assert_eq!(file_identity(queue[0].as_fd()), file_identity(fa.as_fd()));
    // Once the second fd arrives, the same bytes decode.
    queue.push_back(all.pop_front().unwrap());
    let m = decode(header, whole, &TWO_FDS, &mut queue).expect("decode");
    assert_same(&args[2], &m.args[2]);
    assert!(queue.is_empty());
}

#[test]
fn malformed_message_takes_no_fd() {
    let (fa, _) = two_files();
    let mut queue = VecDeque::from([fa.as_fd().try_clone_to_owned().unwrap()]);
    const FD_THEN_STRING: MessageDesc = msg("fs", 1, &[arg("fd", K::Fd), arg("s", K::String)]);
    let bytes = with_body(&blob(4, b"abcd"));
    let (header, whole) = split_message(&bytes).unwrap().unwrap();
    let err = decode(header, whole, &FD_THEN_STRING, &mut queue).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Malformed(Malformed::StringWithoutNul { arg: 1 })
    );
    assert_eq!(queue.len(), 1);
}

#[test]
fn split_message_waits_for_whole_header_and_body() {
    let mut stream = with_body(&words(&[1, 2, 3]));
    let second = with_body(&words(&[4]));
    stream.extend_from_slice(&second);
    let first_len = HEADER_SIZE + 12;
    for cut in 0..first_len {
        assert_eq!(split_message(&stream[..cut]), Ok(None), "cut at {cut}");
    }
    let (h, whole) = split_message(&stream).unwrap().unwrap();
    assert_eq!((h.sender, h.opcode, h.size as usize), (3, 0, first_len));
    assert_eq!(whole, &stream[..first_len]);
    let (h2, rest) = split_message(&stream[first_len..]).unwrap().unwrap();
    assert_eq!(h2.size, 12);
    assert_eq!(rest, &second[..]);
}

#[test]
fn encode_refuses_bad_arguments() {
    let (fa, _) = two_files();
    let mut buf = [0u8; MAX_MESSAGE_SIZE + 64];
    let mut enc =
        |desc: &MessageDesc, args: &[Arg<'_, BorrowedFd<'_>>]| encode(1, 0, desc, args, &mut buf);
    let mismatch = EncodeError::SignatureMismatch { message: "uu" };
    assert_eq!(enc(&TWO_UINTS, &[Arg::Uint(1)]), Err(mismatch));
    assert_eq!(enc(&TWO_UINTS, &[Arg::Uint(1), Arg::Int(2)]), Err(mismatch));
    assert_eq!(
        enc(&TWO_UINTS, &[Arg::Uint(1), Arg::Uint(2), Arg::Uint(3)]),
        Err(mismatch)
    );
    let fd_for_uint = [Arg::Fd(fa.as_fd())];
    assert_eq!(
        enc(&ONE_UINT, &fd_for_uint),
        Err(EncodeError::SignatureMismatch { message: "u" })
    );
    assert_eq!(
        enc(&ONE_STRING, &[Arg::Str(None)]),
        Err(EncodeError::UnexpectedNull { arg: 0 })
    );
    assert_eq!(
        enc(&ONE_OBJECT, &[Arg::Object(0)]),
        Err(EncodeError::UnexpectedNull { arg: 0 })
    );
    assert_eq!(
        enc(&ONE_NEW_ID, &[Arg::NewId(0)]),
        Err(EncodeError::UnexpectedNull { arg: 0 })
    );
    let big = vec![7u8; MAX_MESSAGE_SIZE];
    assert_eq!(
        enc(&ONE_ARRAY, &[Arg::Array(&big)]),
        Err(EncodeError::TooLarge {
            size: MAX_MESSAGE_SIZE + 12
        })
    );
    // The largest message that fits is accepted.
    let fits = &big[..MAX_MESSAGE_SIZE - 12];
    assert_eq!(enc(&ONE_ARRAY, &[Arg::Array(fits)]), Ok(MAX_MESSAGE_SIZE));
    let mut small = [0u8; 11];
    let err = encode(1, 0, &ONE_UINT, &[Arg::Uint(5)], &mut small);
    assert_eq!(err, Err(EncodeError::BufferTooSmall { needed: 12 }));
}

#[test]
fn errors_read_as_one_line_naming_their_numbers() {
    let cases: [(&dyn std::error::Error, &str); 12] = [
        (&Malformed::SizeTooSmall(4), "4"),
        (&Malformed::SizeTooLarge(4100), "4100"),
        (&Malformed::SizeNotAligned(10), "10"),
        (&Malformed::ArgPastEnd { arg: 3 }, "3"),
        (&Malformed::StringWithoutNul { arg: 5 }, "5"),
        (&Malformed::StringInteriorNul { arg: 6 }, "6"),
        (&Malformed::UnexpectedNull { arg: 7 }, "7"),
        (&Malformed::TrailingBytes { extra: 8 }, "8"),
        (
            &DecodeError::NeedFds {
                needed: 2,
                queued: 1,
            },
            "2 fds but 1",
        ),
        (
            &DecodeError::Malformed(Malformed::SizeTooSmall(4)),
            "size 4",
        ),
        (&EncodeError::UnexpectedNull { arg: 9 }, "9"),
        (&EncodeError::BufferTooSmall { needed: 12 }, "12"),
    ];
    for (e, number) in cases {
        let text = e.to_string();
        assert!(text.contains(number), "{text:?} lacks {number:?}");
        assert!(
            !text.contains('\n') && text.len() > number.len() + 8,
            "{text:?}"
        );
    }
    let mismatch = EncodeError::SignatureMismatch { message: "uu" }.to_string();
    assert!(mismatch.ends_with(" uu"), "{mismatch}");
    let too_large = EncodeError::TooLarge { size: 5000 }.to_string();
    assert!(
        too_large.contains("5000") && too_large.contains("4096"),
        "{too_large}"
    );
}
