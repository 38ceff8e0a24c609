//! The Wayland wire codec: messages to bytes and back.
//!
//! This module is pure: it works on byte slices and an fd queue, and does no
//! I/O and no `unsafe`. [`crate::Connection`] moves the bytes and fds across
//! the socket; this module only says what they mean.
//!
//! A message is two header words in host byte order — the sender object id,
//! then `(size << 16) | opcode` — followed by its arguments, each padded to
//! 4 bytes. `fd` arguments take no bytes: they travel as `SCM_RIGHTS`
//! ancillary data and are taken, in argument order, from a separate queue.
//!
//! # Implementation notes
//!
//! - Encoding writes into a caller's buffer and allocates nothing.
//! - Decoding borrows strings and arrays from the input slice, and takes
//!   fds out of the queue only once the whole message has parsed, so that a
//!   message whose fds have not arrived yet ([`DecodeError::NeedFds`]) can be
//!   retried after the next `recvmsg`.
//! - "Wait for more" ([`split_message`] returning `Ok(None)`,
//!   [`DecodeError::NeedFds`]) is kept apart from "malformed: disconnect"
//!   ([`Malformed`]).

use std::collections::VecDeque;
use std::ffi::CStr;
use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::interface::{ArgKind, MessageDesc};

/// Size of the message header in bytes.
pub const HEADER_SIZE: usize = 8;
/// The largest message libwayland accepts, header included.
pub const MAX_MESSAGE_SIZE: usize = 4096;
/// The most fds libwayland sends in one `sendmsg`.
pub const MAX_FDS_OUT: usize = 28;

/// A signed 24.8 fixed-point number, as `wl_fixed_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fixed(pub i32);

impl Fixed {
    /// The nearest fixed-point value to `v` (as `wl_fixed_from_double`).
    pub fn from_f64(v: f64) -> Self {
        Fixed((v * 256.0).round() as i32)
    }

    /// The value as a float (as `wl_fixed_to_double`).
    pub fn to_f64(self) -> f64 {
        f64::from(self.0) / 256.0
    }
}

impl fmt::Display for Fixed {
    /// Prints like libwayland's `%f` in `WAYLAND_DEBUG` traces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}", self.to_f64())
    }
}

/// One argument value.
///
/// `Fd` is [`BorrowedFd`] for messages being sent (the sender keeps its fd)
/// and [`OwnedFd`] for messages received (the receiver owns what arrived).
#[derive(Debug)]
pub enum Arg<'a, Fd> {
    /// `int`.
    Int(i32),
    /// `uint`.
    Uint(u32),
    /// `fixed`.
    Fixed(Fixed),
    /// `string`; `None` is the null string.
    Str(Option<&'a CStr>),
    /// `object`; 0 is the null object.
    Object(u32),
    /// `new_id`.
    NewId(u32),
    /// `array`.
    Array(&'a [u8]),
    /// `fd`.
    Fd(Fd),
}

impl<Fd> Arg<'_, Fd> {
    /// The wire type of this value.
    pub fn kind(&self) -> ArgKind {
        match self {
            Arg::Int(_) => ArgKind::Int,
            Arg::Uint(_) => ArgKind::Uint,
            Arg::Fixed(_) => ArgKind::Fixed,
            Arg::Str(_) => ArgKind::String,
            Arg::Object(_) => ArgKind::Object,
            Arg::NewId(_) => ArgKind::NewId,
            Arg::Array(_) => ArgKind::Array,
            Arg::Fd(_) => ArgKind::Fd,
        }
    }
}

mod args;
pub use args::{Args, IntoIter as ArgsIntoIter, INLINE_ARGS};

/// A decoded message: strings and arrays borrow the input, fds are owned.
#[derive(Debug)]
pub struct Message<'a> {
    /// The object the message is sent to (request) or from (event).
    pub sender: u32,
    /// The opcode within that object's interface.
    pub opcode: u16,
    /// The arguments in signature order (inline: decoding allocates
    /// nothing for up to [`INLINE_ARGS`] of them).
    pub args: Args<'a>,
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender (or target) object id.
    pub sender: u32,
    /// The opcode.
    pub opcode: u16,
    /// The whole message's size in bytes, header included.
    pub size: u16,
}

impl Header {
    /// Reads a header from the first 8 bytes of `bytes`, checking the size
    /// rules. `Ok(None)` means fewer than 8 bytes are available yet.
    pub fn parse(bytes: &[u8]) -> Result<Option<Header>, Malformed> {
        if bytes.len() < HEADER_SIZE {
            return Ok(None);
        }
        let sender = word(bytes, 0);
        let second = word(bytes, 4);
        let size = second >> 16;
        if (size as usize) < HEADER_SIZE {
            return Err(Malformed::SizeTooSmall(size));
        }
        if size & 3 != 0 {
            return Err(Malformed::SizeNotAligned(size));
        }
        // A u16 cannot exceed 65535, but libwayland's cap is 4096.
        if size as usize > MAX_MESSAGE_SIZE {
            return Err(Malformed::SizeTooLarge(size));
        }
        Ok(Some(Header {
            sender,
            opcode: (second & 0xffff) as u16,
            size: size as u16,
        }))
    }

    /// Writes the two header words into `out[..8]`.
    #[inline]
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.sender.to_ne_bytes());
        let second = (u32::from(self.size) << 16) | u32::from(self.opcode);
        out[4..8].copy_from_slice(&second.to_ne_bytes());
    }
}

/// Splits the first complete message off `bytes`.
///
/// Returns `Ok(None)` while the header or the body is still incomplete,
/// and the header plus the whole message (header included) otherwise.
pub fn split_message(bytes: &[u8]) -> Result<Option<(Header, &[u8])>, Malformed> {
    match Header::parse(bytes)? {
        Some(h) if bytes.len() >= h.size as usize => Ok(Some((h, &bytes[..h.size as usize]))),
        _ => Ok(None),
    }
}

/// A rule of the wire format that a received message broke. The peer must
/// be disconnected: the stream can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The header's size is below the 8-byte header.
    SizeTooSmall(u32),
    /// The header's size is above 4096 bytes.
    SizeTooLarge(u32),
    /// The header's size is not a multiple of 4.
    SizeNotAligned(u32),
    /// Argument `arg` runs past the end of the message.
    ArgPastEnd {
        /// The argument's index in the signature.
        arg: usize,
    },
    /// String argument `arg` does not end with a NUL.
    StringWithoutNul {
        /// The argument's index in the signature.
        arg: usize,
    },
    /// String argument `arg` has a NUL before its end.
    StringInteriorNul {
        /// The argument's index in the signature.
        arg: usize,
    },
    /// Argument `arg` is null but the signature does not allow null.
    UnexpectedNull {
        /// The argument's index in the signature.
        arg: usize,
    },
    /// The message has bytes left over after its last argument.
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::SizeTooSmall(s) => write!(f, "message size {s} is below the 8-byte header"),
            Malformed::SizeTooLarge(s) => {
                write!(
                    f,
                    "message size {s} is above the {MAX_MESSAGE_SIZE}-byte limit"
                )
            }
            Malformed::SizeNotAligned(s) => write!(f, "message size {s} is not a multiple of 4"),
            Malformed::ArgPastEnd { arg } => write!(f, "argument {arg} runs past the message end"),
            Malformed::StringWithoutNul { arg } => {
                write!(f, "string argument {arg} is not NUL-terminated")
            }
            Malformed::StringInteriorNul { arg } => {
                write!(f, "string argument {arg} has an interior NUL")
            }
            Malformed::UnexpectedNull { arg } => {
                write!(f, "argument {arg} is null but must not be")
            }
            Malformed::TrailingBytes { extra } => {
                write!(f, "{extra} bytes left after the last argument")
            }
        }
    }
}

impl std::error::Error for Malformed {}

/// Why a complete message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message needs more fds than are queued: receive more, then retry.
    NeedFds {
        /// Fds the message carries.
        needed: usize,
        /// Fds in the queue now.
        queued: usize,
    },
    /// The message broke a wire rule.
    Malformed(Malformed),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NeedFds { needed, queued } => {
                write!(f, "message needs {needed} fds but {queued} are queued")
            }
            DecodeError::Malformed(m) => m.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<Malformed> for DecodeError {
    fn from(m: Malformed) -> Self {
        DecodeError::Malformed(m)
    }
}

/// Decodes the arguments of one whole message (as returned by
/// [`split_message`]) against its signature, taking its fds from `fds`.
///
/// On [`DecodeError::NeedFds`] nothing is taken from the queue.
pub fn decode<'a>(
    header: Header,
    message: &'a [u8],
    desc: &MessageDesc,
    fds: &mut VecDeque<OwnedFd>,
) -> Result<Message<'a>, DecodeError> {
    let needed = desc.fd_count();
    if fds.len() < needed {
        return Err(DecodeError::NeedFds {
            needed,
            queued: fds.len(),
        });
    }
    let body = &message[HEADER_SIZE..header.size as usize];
    let mut args = Args::new();
    let mut pos = 0;
    let mut fd_index = 0;
    for (i, a) in desc.args.iter().enumerate() {
        let value = match a.kind {
            ArgKind::Fd => {
                fd_index += 1;
                // Placeholder, replaced below once the whole message parsed.
                Arg::Int(0)
            }
            ArgKind::String => {
                let bytes = read_blob(body, &mut pos, i)?;
                Arg::Str(parse_string(bytes, a.nullable, i)?)
            }
            ArgKind::Array => Arg::Array(read_blob(body, &mut pos, i)?),
            kind => {
                let w = read_word(body, &mut pos, i)?;
                match kind {
                    ArgKind::Int => Arg::Int(w as i32),
                    ArgKind::Uint => Arg::Uint(w),
                    ArgKind::Fixed => Arg::Fixed(Fixed(w as i32)),
                    ArgKind::Object if w == 0 && !a.nullable => {
                        return Err(Malformed::UnexpectedNull { arg: i }.into())
                    }
                    ArgKind::Object => Arg::Object(w),
                    ArgKind::NewId if w == 0 => {
                        return Err(Malformed::UnexpectedNull { arg: i }.into())
                    }
                    _ => Arg::NewId(w),
                }
            }
        };
        args.push(value);
    }
    if pos != body.len() {
        return Err(Malformed::TrailingBytes {
            extra: body.len() - pos,
        }
        .into());
    }
    debug_assert_eq!(fd_index, needed);
    if needed > 0 {
        for (slot, a) in args.iter_mut().zip(desc.args) {
            if a.kind == ArgKind::Fd {
                // The length check above guarantees the queue has enough.
                *slot = Arg::Fd(fds.pop_front().expect("fd count checked"));
            }
        }
    }
    Ok(Message {
        sender: header.sender,
        opcode: header.opcode,
        args,
    })
}

/// Why a message could not be encoded. These are bugs in the caller, not
/// peer misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The arguments do not match the signature (count or types).
    SignatureMismatch {
        /// The message being encoded.
        message: &'static str,
    },
    /// A null value for an argument that does not allow null.
    UnexpectedNull {
        /// The argument's index.
        arg: usize,
    },
    /// The encoded message would exceed 4096 bytes.
    TooLarge {
        /// The size it would have.
        size: usize,
    },
    /// The caller's buffer is too small for the message.
    BufferTooSmall {
        /// The size the message needs.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::SignatureMismatch { message } => {
                write!(f, "arguments do not match the signature of {message}")
            }
            EncodeError::UnexpectedNull { arg } => write!(f, "argument {arg} must not be null"),
            EncodeError::TooLarge { size } => {
                write!(f, "message of {size} bytes exceeds {MAX_MESSAGE_SIZE}")
            }
            EncodeError::BufferTooSmall { needed } => write!(f, "buffer needs {needed} bytes"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// The encoded size of a message with these arguments, header included.
pub fn encoded_size<Fd>(args: &[Arg<'_, Fd>]) -> usize {
    HEADER_SIZE + args.iter().map(arg_size).sum::<usize>()
}

/// The bytes one argument takes on the wire (an fd takes none).
fn arg_size<Fd>(arg: &Arg<'_, Fd>) -> usize {
    match arg {
        Arg::Str(None) => 4,
        Arg::Str(Some(s)) => 4 + pad4(s.to_bytes_with_nul().len()),
        Arg::Array(b) => 4 + pad4(b.len()),
        Arg::Fd(_) => 0,
        _ => 4,
    }
}

/// What [`layout`] found of a message about to be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Its encoded size, header included.
    pub size: usize,
    /// The fds it carries.
    pub fds: usize,
}

/// Checks `args` against the signature (count, types, nulls, the size
/// cap) and measures the message, in one pass over the arguments.
#[inline]
pub(crate) fn layout<Fd>(desc: &MessageDesc, args: &[Arg<'_, Fd>]) -> Result<Layout, EncodeError> {
    if args.len() != desc.args.len() {
        return Err(EncodeError::SignatureMismatch { message: desc.name });
    }
    let (mut size, mut fds) = (HEADER_SIZE, 0);
    for (i, (v, d)) in args.iter().zip(desc.args).enumerate() {
        if v.kind() != d.kind {
            return Err(EncodeError::SignatureMismatch { message: desc.name });
        }
        let null = matches!(v, Arg::Str(None) | Arg::Object(0) | Arg::NewId(0));
        if null && !d.nullable {
            return Err(EncodeError::UnexpectedNull { arg: i });
        }
        fds += usize::from(matches!(v, Arg::Fd(_)));
        size += arg_size(v);
    }
    if size > MAX_MESSAGE_SIZE {
        return Err(EncodeError::TooLarge { size });
    }
    Ok(Layout { size, fds })
}

/// Encodes one message into `out`, returning the number of bytes written.
/// The fds are not written anywhere: the caller queues the `Arg::Fd` values
/// for the ancillary data, in argument order.
pub fn encode(
    sender: u32,
    opcode: u16,
    desc: &MessageDesc,
    args: &[Arg<'_, BorrowedFd<'_>>],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let layout = layout(desc, args)?;
    if out.len() < layout.size {
        return Err(EncodeError::BufferTooSmall {
            needed: layout.size,
        });
    }
    write_checked(sender, opcode, args, layout, out);
    Ok(layout.size)
}

/// Writes a message that [`layout`] checked and measured into
/// `out[..layout.size]`.
///
/// # Panics
///
/// If `out` is shorter than `layout.size`.
#[inline]
pub(crate) fn write_checked<Fd>(
    sender: u32,
    opcode: u16,
    args: &[Arg<'_, Fd>],
    layout: Layout,
    out: &mut [u8],
) {
    let out = &mut out[..layout.size];
    Header {
        sender,
        opcode,
        size: layout.size as u16,
    }
    .write(out);
    let mut pos = HEADER_SIZE;
    for a in args {
        match a {
            Arg::Int(v) => put_word(out, &mut pos, *v as u32),
            Arg::Uint(v) | Arg::Object(v) | Arg::NewId(v) => put_word(out, &mut pos, *v),
            Arg::Fixed(v) => put_word(out, &mut pos, v.0 as u32),
            Arg::Str(None) => put_word(out, &mut pos, 0),
            Arg::Str(Some(s)) => put_blob(out, &mut pos, s.to_bytes_with_nul()),
            Arg::Array(b) => put_blob(out, &mut pos, b),
            Arg::Fd(_) => {}
        }
    }
    debug_assert_eq!(pos, layout.size);
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// The word at `at`; the callers have checked that it lies in `bytes`.
/// One range check (which they make redundant), not one per byte.
#[inline]
fn word(bytes: &[u8], at: usize) -> u32 {
    let w: [u8; 4] = bytes[at..at + 4].try_into().expect("a 4-byte range");
    u32::from_ne_bytes(w)
}

fn read_word(body: &[u8], pos: &mut usize, arg: usize) -> Result<u32, Malformed> {
    if body.len() < *pos + 4 {
        return Err(Malformed::ArgPastEnd { arg });
    }
    let w = word(body, *pos);
    *pos += 4;
    Ok(w)
}

/// Reads a length-prefixed, padded blob (string or array).
fn read_blob<'a>(body: &'a [u8], pos: &mut usize, arg: usize) -> Result<&'a [u8], Malformed> {
    let len = read_word(body, pos, arg)? as usize;
    let padded = pad4(len);
    if body.len() - *pos < padded {
        return Err(Malformed::ArgPastEnd { arg });
    }
    let bytes = &body[*pos..*pos + len];
    *pos += padded;
    Ok(bytes)
}

fn parse_string(bytes: &[u8], nullable: bool, arg: usize) -> Result<Option<&CStr>, Malformed> {
    if bytes.is_empty() {
        return if nullable {
            Ok(None)
        } else {
            Err(Malformed::UnexpectedNull { arg })
        };
    }
    match CStr::from_bytes_with_nul(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(_) if bytes.last() != Some(&0) => Err(Malformed::StringWithoutNul { arg }),
        Err(_) => Err(Malformed::StringInteriorNul { arg }),
    }
}

fn put_word(out: &mut [u8], pos: &mut usize, w: u32) {
    out[*pos..*pos + 4].copy_from_slice(&w.to_ne_bytes());
    *pos += 4;
}

fn put_blob(out: &mut [u8], pos: &mut usize, bytes: &[u8]) {
    put_word(out, pos, bytes.len() as u32);
    out[*pos..*pos + bytes.len()].copy_from_slice(bytes);
    let padded = pad4(bytes.len());
    out[*pos + bytes.len()..*pos + padded].fill(0);
    *pos += padded;
}

#[cfg(test)]
mod tests;
