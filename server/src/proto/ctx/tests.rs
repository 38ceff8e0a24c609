use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use nix::unistd::pipe;
use waypass_protocol::protocols::wayland::wl_keyboard::{self, WlKeyboard};

use super::*;
use crate::proto::testing::Fixture;

/// A client with a version-1 keyboard at id 2, and the peer's end.
fn client_with_keyboard(fx: &mut Fixture) -> (ClientKey, UnixStream) {
    let (key, peer) = fx.client();
    fx.get(key)
        .objects
        .insert_at(2, Object::Keyboard { version: 1 })
        .unwrap();
    (key, peer.stream().try_clone().unwrap())
}

/// `(st_dev, st_ino)` of whatever fd number `raw` names in this process,
/// if it is open.
fn identity_of_fd_number(raw: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/self/fd/{raw}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// `wl_keyboard.keymap` with `fd`, to keyboard 2.
fn keymap(cx: &mut Ctx<'_>, fd: OwnedFd) -> Result<(), Stop> {
    let keymap = wl_keyboard::Event::Keymap {
        format: wl_keyboard::KeymapFormat::XkbV1,
        fd,
        size: 1,
    };
    cx.send_owned(ObjectId::<WlKeyboard>::from_raw(2), keymap)
}

#[test]
fn send_owned_moves_the_fd_into_the_queue_without_a_dup() {
    let mut fx = Fixture::new();
    let (key, mut peer) = client_with_keyboard(&mut fx);
    let (read_end, write_end) = pipe().unwrap();
    let raw = write_end.as_raw_fd();
    let identity = identity_of_fd_number(raw).unwrap();
    fx.with(key, |cx| {
        keymap(cx, write_end).unwrap();
        // The queue holds the very fd we gave: the same number still names
        // the same pipe. A send that dups and closes ours would have closed
        // it.
        assert_eq!(identity_of_fd_number(raw), Some(identity));
        assert_eq!(cx.pending_fds(), 1, "counted as in flight");
    });
    fx.get(key).conn.flush().unwrap();
    let mut buf = [0; 16];
    peer.read_exact(&mut buf).unwrap();
    // The fd travelled with those bytes and was dropped with them: once
    // sent, no copy of the write end is left here, so the pipe reads EOF.
    drop(peer);
    let mut read_end = std::fs::File::from(read_end);
    let mut rest = Vec::new();
    assert_eq!(read_end.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn send_owned_is_refused_past_the_fds_in_flight_limit_and_closes_the_fd() {
    let mut fx = Fixture::new();
    let (key, _peer) = client_with_keyboard(&mut fx);
    let limit = fx.shared.limits.fds_in_flight;
    let mut client = fx.clients.take(key).unwrap();
    let world = World {
        clients: &mut fx.clients,
        ledger: &mut fx.ledger,
        condemned: &mut fx.condemned,
    };
    let mut cx = Ctx::for_client(&mut client, &fx.shared, world);
    for _ in 0..limit {
        let fd = std::fs::File::open("/dev/null").unwrap().into();
        keymap(&mut cx, fd).unwrap();
    }
    let (read_end, write_end) = pipe().unwrap();
    let err = keymap(&mut cx, write_end).unwrap_err();
    match err {
        Stop::Protocol(e) => assert!(
            e.message
                .starts_with("too many fds in flight: 128 held, 1 more asked"),
            "{e}"
        ),
        other => panic!("expected the in-flight limit, got {other:?}"),
    }
    // Refused, the fd was closed, not kept.
    let mut read_end = std::fs::File::from(read_end);
    let mut rest = Vec::new();
    assert_eq!(read_end.read_to_end(&mut rest).unwrap(), 0);
}
