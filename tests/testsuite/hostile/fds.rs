//! End-to-end: the fds a hostile client can make `waypass-server` hold,
//! counted in `/proc/PID/fd` of the server and in what the client receives.
//!
//! What it checks:
//! - fds sent with requests that take none (`wl_display.sync` carrying 253
//!   fds) are refused with `wl_display.error` and
//!   closed, and a well-behaved client still fetches the keymap meanwhile;
//! - a client may leave at most 28 fds waiting for a message, so each
//!   connection costs the server at most 29 fds (its socket and those 28)
//!   between wakeups: measured with ten such clients;
//! - a client that asks for keymaps and never reads gets at most 128 fds in
//!   flight (not one per keyboard: it asks for 1,000 here), and at most 32
//!   keyboards; cut off, it keeps its socket at the server (one fd, and its
//!   charge) until it has read them, then the server lets it go;
//! - under a 512-fd limit, such a client does not make every later
//!   `sendmsg` with an fd fail with `ETOOMANYREFS`: a good client still gets
//!   its keymap. The kernel charges fds in flight to the sender's user
//!   against the sender's `RLIMIT_NOFILE`, except for a process with
//!   `CAP_SYS_RESOURCE` or `CAP_SYS_ADMIN`, so the server runs without them
//!   (`setpriv`, from util-linux, which Debian marks essential).
//!
//! What it is not: the malformed-input suite (`hardening_malformed.rs`,
//! which also has the 253-fd case) or the busy-owner test
//! (`hostile_busy_owner.rs`).

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::Command;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use waypass_protocol::protocols::wayland::{wl_display, wl_keyboard, wl_registry, wl_seat};
use waypass_test_support::raw::{display_error, msg, parse_events, s, u, Raw};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{bin, eventually, Server, TempDir};

/// `Limits::max_unclaimed_fds`: libwayland's fds per sendmsg.
const UNCLAIMED_MAX: usize = 28;
/// `MAX_FDS_IN_FLIGHT` of the server.
const IN_FLIGHT_MAX: usize = 128;
/// `MAX_KEYBOARDS_PER_CLIENT` of the server.
const KEYBOARDS_MAX: usize = 32;

fn sync(id: u32) -> Vec<u8> {
    msg(1, wl_display::req::SYNC, &[u(id)])
}

/// `wl_registry` at 2 and `wl_seat` (global 1) at 3, version 7.
fn seat() -> Vec<u8> {
    let registry = msg(1, wl_display::req::GET_REGISTRY, &[u(2)]);
    let args = [u(1), s("wl_seat"), u(7), u(3)];
    [registry, msg(2, wl_registry::req::BIND, &args)].concat()
}

fn get_keyboard(id: u32) -> Vec<u8> {
    msg(3, wl_seat::req::GET_KEYBOARD, &[u(id)])
}

fn release_keyboard(id: u32) -> Vec<u8> {
    msg(id, wl_keyboard::req::RELEASE, &[])
}

/// Reads until the server hangs up, with `recvmsg`: the bytes, and how
/// many fds came with them (closed here).
fn read_counting_fds(stream: &UnixStream) -> (Vec<u8>, usize) {
    let (mut bytes, mut fds) = (Vec::new(), 0);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let mut control = nix::cmsg_space!([RawFd; 253]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let flags = MsgFlags::MSG_CMSG_CLOEXEC;
        let received = match recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut control), flags)
        {
            Ok(r) => r,
            Err(nix::errno::Errno::ECONNRESET) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("recvmsg: {e}"),
        };
        let n = received.bytes;
        for c in received.cmsgs().expect("no MSG_CTRUNC") {
            if let ControlMessageOwned::ScmRights(raw) = c {
                fds += raw.len();
                for fd in raw {
                    // SAFETY: the kernel just installed this fd for us
                    // (SCM_RIGHTS); nothing else owns it.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    (bytes, fds)
}

/// A good client fetches the keymap and releases the keyboard.
fn fetch_keymap(good: &mut WlClient) {
    let k = good.get_keyboard();
    assert!(good.seen.keymaps[k].text().starts_with("xkb_keymap"));
    good.seen.keymaps.pop();
    if let Some(keyboard) = good.seen.keyboards.pop() {
        keyboard.release();
    }
}

#[test]
fn fds_sent_with_a_sync_are_refused_and_closed() {
    let server = Server::start(&[]);
    let mut good = WlClient::connect(&server.socket);
    fetch_keymap(&mut good);
    good.roundtrip();
    let base = server.fd_count();

    let spare = File::open("/dev/null").unwrap();
    let many: Vec<_> = (0..253).map(|_| spare.as_fd()).collect();
    // Seven connections of four such sendmsgs each took 7 x 1,012 fds.
    let mut hostile: Vec<Raw> = (0..7).map(|_| Raw::connect(&server.socket)).collect();
    for raw in &mut hostile {
        for _ in 0..4 {
            if !raw.try_send_with_fds(&sync(2), &many) {
                break;
            }
        }
    }
    // While they are still connected at our end, the server holds none.
    let bounded = eventually(|| server.fd_count() <= base);
    let held = server.fd_count();
    fetch_keymap(&mut good);
    for raw in &mut hostile {
        let events = raw.read_until_hangup();
        let e = display_error(&events).expect("wl_display.error");
        assert_eq!(e.code, wl_display::error::INVALID_METHOD, "{e:?}");
        assert!(
            e.message
                .starts_with("invalid fds: fds that no message takes: 253 left"),
            "{e:?}"
        );
    }
    println!("server fds: {base} before, {held} with 7 hostile clients connected");
    assert!(bounded, "server fds {held}, baseline {base}");
    assert!(eventually(|| server.fd_count() == base));
    fetch_keymap(&mut good);
}

#[test]
fn a_connection_costs_the_server_at_most_29_fds() {
    const CLIENTS: usize = 10;
    let server = Server::start(&[]);
    let mut good = WlClient::connect(&server.socket);
    good.roundtrip();
    let base = server.fd_count();

    let spare = File::open("/dev/null").unwrap();
    let allowed: Vec<_> = (0..UNCLAIMED_MAX).map(|_| spare.as_fd()).collect();
    let mut clients: Vec<Raw> = (0..CLIENTS).map(|_| Raw::connect(&server.socket)).collect();
    for raw in &mut clients {
        // 28 fds may wait for a message that has not arrived yet: served.
        raw.send_with_fds(&sync(2), &allowed);
        let mut reply = [0u8; 24]; // wl_callback.done and delete_id
        raw.stream.read_exact(&mut reply).unwrap();
        let events = parse_events(&reply);
        assert_eq!((events[0].sender, events[0].opcode), (2, 0), "{events:?}");
    }
    let held = server.fd_count();
    let per_client = (held - base) as f64 / CLIENTS as f64;
    println!("server fds: {base} before, {held} with {CLIENTS} clients: {per_client} each");
    assert_eq!(held, base + CLIENTS * (1 + UNCLAIMED_MAX));

    // One more fd, and the 29 are closed with the connection.
    for raw in &mut clients {
        raw.send_with_fds(&sync(2), &[spare.as_fd()]);
        let e = display_error(&raw.read_until_hangup()).expect("wl_display.error");
        assert!(e.message.contains("29 left, at most 28"), "{e:?}");
    }
    assert!(eventually(|| server.fd_count() == base));
    fetch_keymap(&mut good);
}

#[test]
fn a_client_that_never_reads_gets_at_most_128_fds_in_flight() {
    let server = Server::start(&[]);
    let mut good = WlClient::connect(&server.socket);
    good.roundtrip();
    let base = server.fd_count();

    let raw = thousand_keyboards_unread(&server);
    assert!(
        eventually(|| server.log_text().contains("too many fds in flight")),
        "the server cut it off"
    );
    // Cut off, it is still charged while its fds are in flight: the server
    // keeps its socket (one fd) until it reads them or hangs up.
    assert_eq!(server.fd_count(), base + 1);
    fetch_keymap(&mut good);
    // It reads to the end: the server shut its side down for writing.
    let (bytes, fds) = read_counting_fds(&raw.stream);
    println!("keymap fds in flight to a client that never reads: {fds}");
    assert_eq!(fds, IN_FLIGHT_MAX);
    let e = display_error(&parse_events(&bytes)).expect("wl_display.error");
    assert_eq!(e.code, wl_display::error::NO_MEMORY, "{e:?}");
    assert!(e.message.starts_with("too many fds in flight"), "{e:?}");
    // All read: the server lets it go, though its socket is still open.
    assert!(eventually(|| server.fd_count() == base));
    drop(raw);
}

/// 1,000 keyboards, one at a time, and not one byte read meanwhile.
fn thousand_keyboards_unread(server: &Server) -> Raw {
    let mut raw = Raw::connect(&server.socket);
    let mut bytes = seat();
    for _ in 0..1000 {
        bytes.extend(get_keyboard(4));
        bytes.extend(release_keyboard(4));
    }
    raw.send(&bytes);
    raw
}

#[test]
fn under_a_low_fd_limit_a_client_that_never_reads_costs_others_nothing() {
    const LIMIT: usize = 512;
    let dir = TempDir::new("in-flight");
    let socket = dir.join("wayland-test");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set=-sys_admin,-sys_resource", "--", "prlimit"])
        .arg(format!("--nofile={LIMIT}:{LIMIT}"))
        .arg("--")
        .arg(bin("waypass-server"))
        .arg("--socket")
        .arg(&socket);
    let server = Server::spawn(cmd, dir, |_| {});
    let base = server.fd_count();

    let hostile = thousand_keyboards_unread(&server);
    assert!(
        eventually(|| server.log_text().contains("too many fds in flight")),
        "the server cut it off"
    );
    assert_eq!(server.fd_count(), base + 1, "cut off and still charged");
    // Its unread keymaps are still in flight, charged to the server's user.
    let mut good = WlClient::connect(&server.socket);
    fetch_keymap(&mut good);
    fetch_keymap(&mut good);
    // At most: the kernel's count is per user, and other processes of
    // ours may have fds in flight meanwhile.
    let (_, fds) = read_counting_fds(&hostile.stream);
    assert!(fds <= IN_FLIGHT_MAX, "{fds}");
    assert!(!server.log_text().contains("Too many references"));
}

#[test]
fn a_client_may_hold_32_keyboards() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(&server.socket);
    let mut bytes = seat();
    for id in 4..4 + KEYBOARDS_MAX as u32 + 1 {
        bytes.extend(get_keyboard(id));
    }
    raw.send(&bytes);
    let (bytes, fds) = read_counting_fds(&raw.stream);
    assert_eq!(fds, KEYBOARDS_MAX);
    let e = display_error(&parse_events(&bytes)).expect("wl_display.error");
    assert_eq!(e.code, wl_display::error::NO_MEMORY, "{e:?}");
    assert_eq!(e.message, "too many keyboards (the limit is 32)");
}
