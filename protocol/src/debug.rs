//! `WAYLAND_DEBUG` protocol tracing in libwayland's format.
//!
//! One line per message, byte for byte as libwayland 1.21–1.23 prints it
//! (`wl_closure_print` in `src/connection.c`), so that tools and eyes used
//! to libwayland traces read ours the same way:
//!
//! ```text
//! [1915098.433]  -> wl_display@1.get_registry(new id wl_registry@2)
//! [1915098.501] wl_registry@2.global(1, "wl_seat", 9)
//! ```
//!
//! This module formats and prints; it is not a logger (use `log` for
//! lifecycle events) and it decides nothing about dispatch. The caller tells
//! it the direction, the target object and the message description.
//! [`parse_trace_line`] reads a line back, for tests (not API: exported
//! only as `waypass_protocol::__private`).
//!
//! # Implementation notes
//!
//! - **Timestamp.** libwayland reads `CLOCK_REALTIME`, computes
//!   microseconds into an `unsigned int` (so it wraps every ~71.6 minutes)
//!   and prints `[%7u.%03u] ` of `time / 1000` and `time % 1000`. The same
//!   truncation is done here; [`std::time::SystemTime`] is `CLOCK_REALTIME`
//!   on Linux.
//! - **Arguments.** `uint` `%u`, `int` `%d`, `string` quoted or `nil`,
//!   `object` `iface@id` or `nil`, `new_id` `new id iface@id` (`[unknown]`
//!   when the signature fixes no interface, `nil` for id 0), `array`
//!   `array[N]`, `fd` `fd N`. `fixed` is printed exactly as libwayland 1.21+
//!   does, `%d.%08d` of the 24.8 value with `390625 = 10^8 / 256`, not
//!   with `%f` as releases before 1.21 did.
//! - **One write.** [`Tracer::trace`] formats the whole line, newline
//!   included, and writes it with one `write_all` under the stderr lock, so
//!   lines of concurrent threads never interleave.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::interface::{ArgKind, Interface, MessageDesc};
use crate::wire::{Arg, Fixed};

/// Which end of the connection this process is, for `WAYLAND_DEBUG=client|server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSide {
    /// A client: traces with `WAYLAND_DEBUG=1`, `all` or `client`.
    Client,
    /// A server: traces with `WAYLAND_DEBUG=1`, `all` or `server`.
    Server,
}

/// Whether a message was sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by this process (printed with ` -> `).
    Sent,
    /// Received by this process.
    Received,
}

/// Prints messages to stderr when `WAYLAND_DEBUG` asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Tracer {
    enabled: bool,
}

impl Tracer {
    /// Reads `WAYLAND_DEBUG` for `side`.
    pub fn from_env(side: TraceSide) -> Self {
        let value = std::env::var_os("WAYLAND_DEBUG");
        let value = value.as_deref().map(|v| v.to_string_lossy());
        Self::from_debug_value(side, value.as_deref())
    }

    /// Decides from a `WAYLAND_DEBUG` value (`None`: unset), as libwayland
    /// does: on when the value contains `1` or the side's name (`client`,
    /// `server`); `all` is accepted too.
    pub fn from_debug_value(side: TraceSide, value: Option<&str>) -> Self {
        let word = match side {
            TraceSide::Client => "client",
            TraceSide::Server => "server",
        };
        let enabled =
            value.is_some_and(|v| v.contains(word) || v.contains('1') || v.contains("all"));
        Tracer { enabled }
    }

    /// A tracer that is on or off regardless of the environment.
    pub fn new(enabled: bool) -> Self {
        Tracer { enabled }
    }

    /// Whether tracing is on: check before building arguments.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Prints one message line to stderr, if enabled. `object_interface`
    /// names the interface of an object id, for `object` arguments.
    pub fn trace<Fd: AsRawFd>(
        &self,
        direction: Direction,
        interface: &Interface,
        id: u32,
        desc: &MessageDesc,
        args: &[Arg<'_, Fd>],
        object_interface: &dyn Fn(u32) -> Option<&'static str>,
    ) {
        if !self.enabled {
            return;
        }
        let mut line = format_trace(
            now_micros(),
            direction,
            interface,
            id,
            desc,
            args,
            object_interface,
        );
        line.push('\n');
        // A failed write to stderr has nowhere better to be reported.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Microseconds since the epoch on `CLOCK_REALTIME`, as libwayland reads it.
fn now_micros() -> u64 {
    // A clock before 1970 prints as 0, as harmless as libwayland's wrap.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs() * 1_000_000 + u64::from(since.subsec_micros())
}

/// Formats one trace line (without the trailing newline) at time `micros`
/// (microseconds, as libwayland's clock reading).
pub(crate) fn format_trace<Fd: AsRawFd>(
    micros: u64,
    direction: Direction,
    interface: &Interface,
    id: u32,
    desc: &MessageDesc,
    args: &[Arg<'_, Fd>],
    object_interface: &dyn Fn(u32) -> Option<&'static str>,
) -> String {
    // libwayland stores the microseconds in an unsigned int: keep the low
    // 32 bits, then split.
    let time = micros as u32;
    let arrow = match direction {
        Direction::Sent => " -> ",
        Direction::Received => "",
    };
    let mut line = format!(
        "[{:7}.{:03}] {arrow}{}@{id}.{}(",
        time / 1000,
        time % 1000,
        interface.name,
        desc.name
    );
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        let declared = desc.args.get(i).and_then(|d| match d.kind {
            ArgKind::NewId | ArgKind::Object => d.interface.map(|iface| iface.name),
            _ => None,
        });
        write_arg(&mut line, arg, declared, object_interface);
    }
    line.push(')');
    line
}

/// Appends one argument the way `wl_closure_print` does. `declared` is the
/// interface the signature fixes for a `new_id`.
fn write_arg<Fd: AsRawFd>(
    out: &mut String,
    arg: &Arg<'_, Fd>,
    declared: Option<&'static str>,
    object_interface: &dyn Fn(u32) -> Option<&'static str>,
) {
    // Writing into a String cannot fail.
    let _ = match arg {
        Arg::Uint(v) => write!(out, "{v}"),
        Arg::Int(v) => write!(out, "{v}"),
        Arg::Fixed(v) => write_fixed(out, *v),
        Arg::Str(Some(s)) => write!(out, "\"{}\"", String::from_utf8_lossy(s.to_bytes())),
        Arg::Str(None) | Arg::Object(0) => write!(out, "nil"),
        Arg::Object(obj) => {
            let name = object_interface(*obj).unwrap_or("[unknown]");
            write!(out, "{name}@{obj}")
        }
        Arg::NewId(new) => {
            let name = declared.unwrap_or("[unknown]");
            if *new == 0 {
                write!(out, "new id {name}@nil")
            } else {
                write!(out, "new id {name}@{new}")
            }
        }
        Arg::Array(bytes) => write!(out, "array[{}]", bytes.len()),
        Arg::Fd(fd) => write!(out, "fd {}", fd.as_raw_fd()),
    };
}

/// libwayland's exact decimal rendering of a 24.8 fixed-point value:
/// `%d.%08d` of the integer part and the fraction in units of 10^-8.
fn write_fixed(out: &mut String, value: Fixed) -> std::fmt::Result {
    // i64: `-i32::MIN` and 390625 * 255 must not overflow.
    let raw = i64::from(value.0);
    if raw >= 0 {
        write!(out, "{}.{:08}", raw / 256, 390_625 * (raw % 256))
    } else {
        // C's `%` keeps the dividend's sign, as Rust's does.
        write!(out, "-{}.{:08}", raw / -256, -390_625 * (raw % 256))
    }
}

/// One trace line taken apart by [`parse_trace_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// Whether the line has the ` -> ` arrow of a sent message.
    pub sent: bool,
    /// The target object's interface, e.g. `wl_display`.
    pub interface: String,
    /// The target object's id.
    pub id: u32,
    /// The request or event name, e.g. `get_registry`.
    pub message: String,
    /// The text between the parentheses, e.g. `new id wl_registry@2`.
    pub args: String,
}

/// Parses a trace line (without its newline), checking that it matches
/// `^\[ *\d+\.\d{3}\] ( -> )?[a-z_0-9]+@\d+\.[a-z_0-9]+\(.*\)$`.
///
/// ```
/// # use waypass_protocol::__private::parse_trace_line;
/// let line = parse_trace_line("[1915098.433]  -> wl_display@1.get_registry(new id wl_registry@2)").unwrap();
/// assert!(line.sent);
/// assert_eq!((line.interface.as_str(), line.id), ("wl_display", 1));
/// assert_eq!(line.message, "get_registry");
/// assert_eq!(line.args, "new id wl_registry@2");
/// assert!(parse_trace_line("wl_display@1.sync(new id wl_callback@3)").is_none());
/// ```
pub fn parse_trace_line(line: &str) -> Option<TraceLine> {
    let rest = line.strip_prefix('[')?;
    let rest = rest.trim_start_matches(' ');
    let (whole, rest) = split_while(rest, |c| c.is_ascii_digit());
    if whole.is_empty() {
        return None;
    }
    let rest = rest.strip_prefix('.')?;
    let (millis, rest) = split_while(rest, |c| c.is_ascii_digit());
    if millis.len() != 3 {
        return None;
    }
    let rest = rest.strip_prefix("] ")?;
    let (sent, rest) = match rest.strip_prefix(" -> ") {
        Some(after) => (true, after),
        None => (false, rest),
    };
    let (interface, rest) = split_name(rest)?;
    let rest = rest.strip_prefix('@')?;
    let (id, rest) = split_while(rest, |c| c.is_ascii_digit());
    let id = id.parse::<u32>().ok()?;
    let rest = rest.strip_prefix('.')?;
    let (message, rest) = split_name(rest)?;
    let args = rest.strip_prefix('(')?.strip_suffix(')')?;
    // `.` in the pattern matches anything but a newline.
    if args.contains('\n') {
        return None;
    }
    Some(TraceLine {
        sent,
        interface: interface.to_owned(),
        id,
        message: message.to_owned(),
        args: args.to_owned(),
    })
}

/// Splits off the longest prefix of `s` whose chars satisfy `pred`.
fn split_while(s: &str, pred: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !pred(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// Splits off a non-empty `[a-z_0-9]+` name.
fn split_name(s: &str) -> Option<(&str, &str)> {
    let (name, rest) = split_while(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    });
    (!name.is_empty()).then_some((name, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::wayland::{wl_display, wl_keyboard, wl_pointer, wl_registry, wl_seat};
    use Direction::{Received, Sent};

    /// An fd stand-in with a known number, so lines can be compared exactly.
    struct FakeFd(i32);

    impl AsRawFd for FakeFd {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            self.0
        }
    }

    /// Formats `iface@id.name(args)` from the real tables (a request when
    /// sent, an event when received), at time `micros`, with an object
    /// table that knows only id 3, a `wl_keyboard`.
    fn line(
        micros: u64,
        dir: Direction,
        iface: &Interface,
        id: u32,
        name: &str,
        args: &[Arg<'_, FakeFd>],
    ) -> String {
        let desc = match dir {
            Sent => &iface.requests[usize::from(iface.request_opcode(name).unwrap())],
            Received => &iface.events[usize::from(iface.event_opcode(name).unwrap())],
        };
        let names = |obj: u32| (obj == 3).then_some("wl_keyboard");
        format_trace(micros, dir, iface, id, desc, args, &names)
    }

    #[test]
    fn lines_match_libwayland_byte_for_byte() {
        let (display, registry) = (&wl_display::INTERFACE, &wl_registry::INTERFACE);
        let (keyboard, pointer) = (&wl_keyboard::INTERFACE, &wl_pointer::INTERFACE);
        let seat = c"wl_seat";
        let cases = [
            (
                line(
                    1_915_098_433,
                    Sent,
                    display,
                    1,
                    "get_registry",
                    &[Arg::NewId(2)],
                ),
                "[1915098.433]  -> wl_display@1.get_registry(new id wl_registry@2)",
            ),
            (
                line(5, Sent, display, 1, "sync", &[Arg::NewId(0)]),
                "[      0.005]  -> wl_display@1.sync(new id wl_callback@nil)",
            ),
            (
                line(
                    5_000_001,
                    Received,
                    registry,
                    2,
                    "global",
                    &[Arg::Uint(u32::MAX), Arg::Str(Some(seat)), Arg::Uint(9)],
                ),
                "[   5000.001] wl_registry@2.global(4294967295, \"wl_seat\", 9)",
            ),
            (
                line(
                    1_000,
                    Sent,
                    registry,
                    2,
                    "bind",
                    &[
                        Arg::Uint(1),
                        Arg::Str(Some(seat)),
                        Arg::Uint(7),
                        Arg::NewId(3),
                    ],
                ),
                "[      1.000]  -> wl_registry@2.bind(1, \"wl_seat\", 7, new id [unknown]@3)",
            ),
            (
                line(
                    999,
                    Received,
                    keyboard,
                    3,
                    "keymap",
                    &[Arg::Uint(1), Arg::Fd(FakeFd(7)), Arg::Uint(65_536)],
                ),
                "[      0.999] wl_keyboard@3.keymap(1, fd 7, 65536)",
            ),
            (
                line(
                    2_000,
                    Received,
                    keyboard,
                    3,
                    "enter",
                    &[Arg::Uint(8), Arg::Object(0), Arg::Array(&[1, 2, 3, 4, 5])],
                ),
                "[      2.000] wl_keyboard@3.enter(8, nil, array[5])",
            ),
            (
                line(
                    3_000,
                    Received,
                    keyboard,
                    3,
                    "repeat_info",
                    &[Arg::Int(25), Arg::Int(-600)],
                ),
                "[      3.000] wl_keyboard@3.repeat_info(25, -600)",
            ),
            (
                line(
                    4_000,
                    Received,
                    pointer,
                    5,
                    "motion",
                    &[Arg::Uint(10), Arg::Fixed(Fixed(-384)), Arg::Fixed(Fixed(1))],
                ),
                "[      4.000] wl_pointer@5.motion(10, -1.50000000, 0.00390625)",
            ),
            (
                line(
                    5_000,
                    Received,
                    display,
                    1,
                    "error",
                    &[Arg::Object(3), Arg::Uint(1), Arg::Str(Some(c"bad"))],
                ),
                "[      5.000] wl_display@1.error(wl_keyboard@3, 1, \"bad\")",
            ),
            (
                line(
                    6_000,
                    Received,
                    display,
                    1,
                    "error",
                    &[Arg::Object(99), Arg::Uint(0), Arg::Str(None)],
                ),
                "[      6.000] wl_display@1.error([unknown]@99, 0, nil)",
            ),
            (
                line(
                    7_000,
                    Received,
                    &wl_seat::INTERFACE,
                    4,
                    "name",
                    &[Arg::Str(Some(c"seat0"))],
                ),
                "[      7.000] wl_seat@4.name(\"seat0\")",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
            // Every line we print is one the end-to-end tests can read back.
            assert!(parse_trace_line(&got).is_some(), "{got}");
        }
    }

    #[test]
    fn time_is_truncated_to_32_bits_like_libwayland() {
        let at = |micros| {
            line(
                micros,
                Sent,
                &wl_display::INTERFACE,
                1,
                "get_registry",
                &[Arg::NewId(2)],
            )
        };
        assert!(at((1 << 32) + 1_915_098_433).starts_with("[1915098.433]  -> "));
        assert!(at(u64::from(u32::MAX)).starts_with("[4294967.295]  -> "));
    }

    #[test]
    fn fixed_is_printed_exactly() {
        let cases = [
            (0, "0.00000000"),
            (1, "0.00390625"),
            (256, "1.00000000"),
            (384, "1.50000000"),
            (-1, "-0.00390625"),
            (-256, "-1.00000000"),
            (-384, "-1.50000000"),
            (i32::MAX, "8388607.99609375"),
            (i32::MIN, "-8388608.00000000"),
        ];
        for (raw, text) in cases {
            let mut out = String::new();
            write_fixed(&mut out, Fixed(raw)).unwrap();
            assert_eq!(out, text, "fixed {raw}");
        }
    }

    #[test]
    fn wayland_debug_values() {
        use TraceSide::{Client, Server};
        let cases = [
            (None, false, false),
            (Some(""), false, false),
            (Some("0"), false, false),
            (Some("yes"), false, false),
            (Some("1"), true, true),
            (Some("all"), true, true),
            (Some("client"), true, false),
            (Some("server"), false, true),
            (Some("client,server"), true, true),
        ];
        for (value, client, server) in cases {
            let on = |side| Tracer::from_debug_value(side, value).enabled();
            assert_eq!((on(Client), on(Server)), (client, server), "{value:?}");
        }
    }

    #[test]
    fn from_env_reads_wayland_debug() {
        let env = crate::display::tests::EnvGuard::new();
        assert!(!Tracer::from_env(TraceSide::Client).enabled());
        env.set("WAYLAND_DEBUG", "server");
        assert!(!Tracer::from_env(TraceSide::Client).enabled());
        assert!(Tracer::from_env(TraceSide::Server).enabled());
    }

    #[test]
    fn trace_lines_are_taken_apart() {
        let got =
            parse_trace_line("[1915098.433]  -> wl_display@1.get_registry(new id wl_registry@2)");
        let want = TraceLine {
            sent: true,
            interface: "wl_display".into(),
            id: 1,
            message: "get_registry".into(),
            args: "new id wl_registry@2".into(),
        };
        assert_eq!(got, Some(want));
        let got = parse_trace_line("[1.000] wl_keyboard@3.keymap(1, fd 12, 10)").unwrap();
        assert!(!got.sent);
        assert_eq!((got.interface.as_str(), got.id), ("wl_keyboard", 3));
        assert_eq!(
            (got.message.as_str(), got.args.as_str()),
            ("keymap", "1, fd 12, 10")
        );
    }

    #[test]
    fn lines_that_do_not_match_are_refused() {
        let bad = [
            "",
            "wl_seat@4.name()",
            "[ .000] wl_seat@4.name()",
            "[1.00] wl_seat@4.name()",
            "[1.0000] wl_seat@4.name()",
            "[1.000]wl_seat@4.name()",
            "[1.000]  wl_seat@4.name()",
            "[1.000] -> wl_seat@4.name()",
            "[1.000] Wl_seat@4.name()",
            "[1.000] wl_seat@.name()",
            "[1.000] wl_seat@4294967296.name()",
            "[1.000] wl_seat@4.()",
            "[1.000] wl_seat@4.name(",
            "[1.000] wl_seat@4.name()x",
            "[1.000] wl_seat@4.name(a\nb)",
            "[1.000] wl_seat@4.name()\n",
            "[1.000] discarded [zombie]@4.[event 1](0 fd, 8 byte)",
        ];
        for text in bad {
            assert!(parse_trace_line(text).is_none(), "{text:?}");
        }
    }
}
