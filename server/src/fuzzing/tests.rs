use std::os::fd::AsFd;

use waypass_protocol::protocols::wayland::{wl_display, wl_keyboard, wl_registry};
use waypass_protocol::{inspect_fd, wire};

use super::*;

fn word(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn string(text: &str) -> Vec<u8> {
    let mut out = word(text.len() as u32 + 1);
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    while out.len() & 3 != 0 {
        out.push(0);
    }
    out
}

fn message(sender: u32, opcode: u16, args: &[Vec<u8>]) -> Vec<u8> {
    let body = args.concat();
    let size = 8 + body.len() as u32;
    [word(sender), word((size << 16) | u32::from(opcode)), body].concat()
}

/// get_registry(2), bind(seat 1, v7) as 3, get_keyboard(4).
fn keyboard_stream() -> Vec<u8> {
    [
        message(1, 1, &[word(2)]),
        message(2, 0, &[word(1), string("wl_seat"), word(7), word(3)]),
        message(3, 1, &[word(4)]),
    ]
    .concat()
}

/// (sender, opcode) of every message in `bytes`.
fn headers(mut bytes: &[u8]) -> Vec<(u32, u16)> {
    let mut out = Vec::new();
    while let Some((header, _)) = wire::split_message(bytes).expect("well-formed output") {
        out.push((header.sender, header.opcode));
        bytes = &bytes[usize::from(header.size)..];
    }
    assert!(bytes.is_empty(), "no partial message");
    out
}

#[test]
fn keyboard_stream_gets_a_keymap_fd() {
    let outcome = dispatch_stream(&keyboard_stream(), Vec::new()).unwrap();
    assert!(outcome.disconnect.is_none(), "{:?}", outcome.disconnect);
    let sent = headers(&outcome.sent);
    assert!(sent.contains(&(2, wl_registry::evt::GLOBAL)));
    assert!(sent.contains(&(4, wl_keyboard::evt::KEYMAP)), "{sent:?}");
    assert_eq!(outcome.fds.len(), 1);
    let info = inspect_fd(outcome.fds[0].as_fd()).unwrap();
    assert!(info.size > 0);
}

#[test]
fn any_split_of_the_stream_gives_the_same_output() {
    let stream = keyboard_stream();
    let whole = dispatch_stream(&stream, Vec::new()).unwrap();
    let mut server = FuzzServer::new().unwrap();
    for cut in [1, 7, 8, 13, stream.len() - 1] {
        let client = server.connect().unwrap();
        assert!(server.feed(client, &stream[..cut], Vec::new()));
        assert!(server.feed(client, &stream[cut..], Vec::new()));
        let outcome = server.finish(client);
        // Serials differ between runs; the messages do not.
        assert_eq!(headers(&outcome.sent), headers(&whole.sent), "cut at {cut}");
        assert_eq!(outcome.fds.len(), 1);
    }
}

#[test]
fn garbage_is_a_protocol_error_and_a_disconnect() {
    // A size field of 0xffff: over the 4096-byte limit.
    let outcome = dispatch_stream(&[0xff; 32], Vec::new()).unwrap();
    let err = outcome.protocol_error().expect("a protocol error");
    assert_eq!(err.code, wl_display::error::INVALID_METHOD);
    // The error was sent too, as the last message.
    let sent = headers(&outcome.sent);
    assert_eq!(sent.last(), Some(&(1, wl_display::evt::ERROR)));
}

#[test]
fn unused_fds_are_closed_and_names_released() {
    let mut server = FuzzServer::new().unwrap();
    let register = [
        message(1, 1, &[word(2)]),
        message(
            2,
            0,
            &[word(2), string("waypass_broker_v1"), word(1), word(3)],
        ),
        message(3, 1, &[word(4), string("alice")]),
    ]
    .concat();
    let (a, b) = UnixStream::pair().unwrap();
    let client = server.connect().unwrap();
    // `a` rides along with no message to take it.
    assert!(server.feed(client, &register, vec![a.into()]));
    assert_eq!(server.broker_names(), 1);
    server.finish(client);
    assert_eq!(server.broker_names(), 0, "released on disconnect");
    // The server's copy of `a` is closed: `b` reads end-of-file.
    b.set_nonblocking(true).unwrap();
    assert_eq!(std::io::Read::read(&mut &b, &mut [0u8; 4]).unwrap(), 0);
}

/// The events a seat and keyboard bound at `version` receive, in order.
fn seat_events_at(version: u32) -> Vec<(u32, u16)> {
    let stream = [
        message(1, 1, &[word(2)]),
        message(2, 0, &[word(1), string("wl_seat"), word(version), word(3)]),
        message(3, 1, &[word(4)]),
    ]
    .concat();
    let outcome = dispatch_stream(&stream, Vec::new()).unwrap();
    assert!(outcome.disconnect.is_none(), "{:?}", outcome.disconnect);
    headers(&outcome.sent)
        .into_iter()
        .filter(|(id, _)| *id == 3 || *id == 4)
        .collect()
}

#[test]
fn events_newer_than_the_bound_version_are_never_sent() {
    use waypass_protocol::protocols::wayland::wl_seat;
    // wl_seat.name is since 2, wl_keyboard.repeat_info since 4.
    assert_eq!(
        seat_events_at(1),
        [
            (3, wl_seat::evt::CAPABILITIES),
            (4, wl_keyboard::evt::KEYMAP)
        ]
    );
    assert_eq!(
        seat_events_at(3),
        [
            (3, wl_seat::evt::CAPABILITIES),
            (3, wl_seat::evt::NAME),
            (4, wl_keyboard::evt::KEYMAP)
        ]
    );
    assert_eq!(
        seat_events_at(4),
        [
            (3, wl_seat::evt::CAPABILITIES),
            (3, wl_seat::evt::NAME),
            (4, wl_keyboard::evt::KEYMAP),
            (4, wl_keyboard::evt::REPEAT_INFO)
        ]
    );
}

#[test]
fn a_client_creating_objects_for_ever_is_stopped_at_the_cap() {
    let limit = Limits::default().objects as u32;
    // wl_display.get_registry over and over: each registry stays alive.
    let stream: Vec<u8> = (0..limit + 10)
        .flat_map(|i| message(1, 1, &[word(2 + i)]))
        .collect();
    let outcome = dispatch_stream(&stream, Vec::new()).unwrap();
    let reason = format!("{:?}", outcome.disconnect.expect("disconnected"));
    assert!(reason.contains("too many objects"), "{reason}");
    let last = headers(&outcome.sent).last().copied();
    assert_eq!(last, Some((1, wl_display::evt::ERROR)));
}

/// The fuzzer's clipboard seed, as a regression test: both managers, a
/// device each, a source set as the selection, a paste of it (with a
/// pipe's write end), `set_primary_selection` on the wlr device, then
/// everything destroyed. The client's own paste comes back to it as
/// `send(mime, fd)`: the fd it gave goes in and comes out again.
#[test]
fn the_clipboard_seed_round_trips_its_paste_fd() {
    use waypass_protocol::protocols::data_control::ext;
    let seed = include_bytes!("../../../fuzz/seeds/server_dispatch/clipboard.bin");
    assert_eq!(seed[0], 1, "the seed carries one fd");
    let (_read, write) = nix::unistd::pipe().unwrap();
    let outcome = dispatch_stream(&seed[1..], vec![write]).unwrap();
    assert!(outcome.disconnect.is_none(), "{:?}", outcome.disconnect);
    let sent = headers(&outcome.sent);
    use ext::{ext_data_control_device_v1 as device, ext_data_control_source_v1 as source};
    assert!(sent.contains(&(6, device::evt::DATA_OFFER)), "{sent:?}");
    assert!(sent.contains(&(6, device::evt::SELECTION)), "{sent:?}");
    assert!(
        sent.contains(&(7, device::evt::PRIMARY_SELECTION)),
        "{sent:?}"
    );
    assert!(sent.contains(&(8, source::evt::SEND)), "{sent:?}");
    assert_eq!(outcome.fds.len(), 1, "the paste fd, forwarded");
}

/// The outcome of script client `client`'s first connection.
fn of(outcomes: &[(usize, Outcome)], client: usize) -> &Outcome {
    &outcomes.iter().find(|(c, _)| *c == client).unwrap().1
}

/// (sender, opcode) of every message `outcome` got.
fn got(outcome: &Outcome) -> Vec<(u32, u16)> {
    headers(&outcome.sent)
}

#[test]
fn the_broker_seed_joins_two_clients() {
    use waypass_protocol::protocols::broker::{waypass_connection_v1, waypass_name_v1};
    let seed = include_bytes!("../../../fuzz/seeds/server_clients/broker.bin");
    let spare = std::fs::File::open("/dev/null").unwrap();
    let outcomes = dispatch_clients(seed, spare.as_fd()).unwrap();
    let (owner, requester) = (of(&outcomes, 0), of(&outcomes, 1));
    assert!(owner.disconnect.is_none() && requester.disconnect.is_none());
    assert!(
        got(owner).contains(&(4, waypass_name_v1::evt::PEER)),
        "{:?}",
        got(owner)
    );
    assert!(got(requester).contains(&(4, waypass_connection_v1::evt::ESTABLISHED)));
    // The two ends of one socketpair.
    assert_eq!((owner.fds.len(), requester.fds.len()), (1, 1));
    let (a, b) = (&owner.fds[0], &requester.fds[0]);
    nix::unistd::write(a, b"hi").unwrap();
    let mut buf = [0u8; 2];
    nix::unistd::read(b, &mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}

#[test]
fn the_clipboard_seed_forwards_a_paste_to_the_other_client() {
    use waypass_protocol::protocols::data_control::ext::{
        ext_data_control_device_v1 as device, ext_data_control_source_v1 as source,
    };
    let seed = include_bytes!("../../../fuzz/seeds/server_clients/clipboard.bin");
    let spare = std::fs::File::open("/dev/null").unwrap();
    let outcomes = dispatch_clients(seed, spare.as_fd()).unwrap();
    let (copier, paster) = (of(&outcomes, 0), of(&outcomes, 1));
    assert!(copier.disconnect.is_none(), "{:?}", copier.disconnect);
    assert!(paster.disconnect.is_none(), "{:?}", paster.disconnect);
    // The paster's device was told of the copier's selection. The copier
    // was asked twice: by the server keeping the selection (the harness
    // runs with persistence; it holds that pipe's write end open, so the
    // read never ends), then, once the deadline passed (at once, in the
    // harness), for the paste that waited for that read: the paster's fd.
    assert!(got(paster).contains(&(5, device::evt::DATA_OFFER)));
    let sends = got(copier)
        .iter()
        .filter(|&&e| e == (6, source::evt::SEND))
        .count();
    assert_eq!(sends, 2, "{:?}", got(copier));
    assert_eq!(copier.fds.len(), 2);
}

#[test]
fn the_burst_seed_tells_the_watcher_once() {
    use waypass_protocol::protocols::data_control::ext::ext_data_control_device_v1 as device;
    let seed = include_bytes!("../../../fuzz/seeds/server_clients/burst.bin");
    let spare = std::fs::File::open("/dev/null").unwrap();
    let outcomes = dispatch_clients(seed, spare.as_fd()).unwrap();
    let watcher = got(of(&outcomes, 1));
    let count = |event| watcher.iter().filter(|&&e| e == (5, event)).count();
    // Three changes, each a source set then destroyed, in one step (one
    // loop pass): the watcher is told once, of the end state (none), after
    // its first `selection(null)`. Before, it got three offers and six
    // selections.
    assert_eq!(count(device::evt::SELECTION), 2, "{watcher:?}");
    assert_eq!(count(device::evt::DATA_OFFER), 0, "{watcher:?}");
    assert!(of(&outcomes, 1).disconnect.is_none());
}

/// A client with a seat at 3, an ext manager at 4 and `devices` devices
/// from 5.
fn clipboard_client(devices: u32) -> Vec<u8> {
    let mut bytes = [
        message(1, 1, &[word(2)]),
        message(2, 0, &[word(1), string("wl_seat"), word(2), word(3)]),
        message(
            2,
            0,
            &[
                word(3),
                string("ext_data_control_manager_v1"),
                word(1),
                word(4),
            ],
        ),
    ]
    .concat();
    for d in 0..devices {
        bytes.extend(message(4, 1, &[word(5 + d), word(3)]));
    }
    bytes
}

#[test]
fn a_burst_arriving_over_many_reads_is_announced_once_or_twice() {
    use waypass_protocol::protocols::data_control::ext::ext_data_control_device_v1 as device;
    let mut server = FuzzServer::new().unwrap();
    let watcher = server.connect().unwrap();
    assert!(server.feed(watcher, &clipboard_client(1), Vec::new()));
    let copier = server.connect().unwrap();
    // 1,000 changes, 76 KB: the server reads it 4 KiB per wakeup, 19
    // wakeups, each one loop pass.
    let mut burst = clipboard_client(1);
    for i in 0..1000u32 {
        burst.extend(message(4, 0, &[word(6)])); // create_data_source
        burst.extend(message(6, 0, &[string(&format!("text/x-{i}"))]));
        burst.extend(message(5, 0, &[word(6)])); // set_selection
        burst.extend(message(6, 1, &[])); // destroy
    }
    assert!(server.feed(copier, &burst, Vec::new()));
    let told = headers(&server.outcome(watcher).sent)
        .iter()
        .filter(|&&e| e == (5, device::evt::SELECTION))
        .count();
    // Its first selection(null), then the burst. Without waiting for the
    // rest of a burst: once per read (19).
    assert!(told <= 1 + 2, "told {told} times");
    assert!(server.is_connected(watcher));
}

#[test]
fn a_kept_selection_outlives_its_copier_and_the_server_serves_it() {
    use waypass_protocol::protocols::data_control::ext::ext_data_control_source_v1 as source;
    let mut server = FuzzServer::new().unwrap();
    let (copier, asked) = start_copy(&mut server, "text/plain");
    // The server asks the copier for its type, as a paster would.
    assert!(headers(&server.outcome(copier).sent).contains(&(6, source::evt::SEND)));
    nix::unistd::write(&asked, b"kept bytes").unwrap();
    drop(asked);
    // One more pass (a sync) reads it whole; then the copier goes.
    assert!(server.feed(copier, &message(1, 0, &[word(7)]), Vec::new()));
    server.hang_up(copier);
    let paster = server.connect().unwrap();
    let mut paste = clipboard_client(1);
    // receive("text/plain", fd) on the offer its device was given.
    paste.extend(message(0xff00_0000, 0, &[string("text/plain")]));
    let (read, write) = nix::unistd::pipe().unwrap();
    assert!(server.feed(paster, &paste, vec![write]));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut got).unwrap();
    assert_eq!(got, b"kept bytes");
    assert!(server.is_connected(paster));
}

/// A copier with a device at 5 that sets source 6 offering `mime`.
fn copier_stream(mime: &str) -> Vec<u8> {
    let mut copy = clipboard_client(1);
    copy.extend(message(4, 0, &[word(6)])); // create_data_source(6)
    copy.extend(message(6, 0, &[string(mime)])); // offer
    copy.extend(message(5, 0, &[word(6)])); // set_selection(6)
    copy
}

/// A paster with a device at 5 that pastes `mime` from the offer it was
/// given; returns the read end of its pipe, non-blocking.
fn paste_now(server: &mut FuzzServer, mime: &str) -> std::fs::File {
    let paster = server.connect().unwrap();
    let mut paste = clipboard_client(1);
    paste.extend(message(0xff00_0000, 0, &[string(mime)]));
    let (read, write) = nix::unistd::pipe().unwrap();
    let fed = server.feed(paster, &paste, vec![write]);
    assert!(fed, "{:?}", server.outcome(paster).disconnect);
    nix::fcntl::fcntl(
        &read,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    std::fs::File::from(read)
}

/// A copier that sets a selection offering `mime`, and the write end of
/// the pipe the server asked it to fill (the server's own read).
fn start_copy(server: &mut FuzzServer, mime: &str) -> (usize, OwnedFd) {
    let copier = server.connect().unwrap();
    assert!(server.feed(copier, &copier_stream(mime), Vec::new()));
    let asked = server.peers[copier].outcome.fds.pop();
    (copier, asked.expect("the read's pipe"))
}

/// One more harness call for `peer`, then what `pipe` holds now, appended
/// to `got`; whether the pipe has ended.
fn pass_and_read(
    server: &mut FuzzServer,
    peer: usize,
    pipe: &mut std::fs::File,
    got: &mut Vec<u8>,
) -> bool {
    use std::io::Read;
    sync(server, peer);
    let mut buf = [0u8; 1 << 14];
    match pipe.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => {
            got.extend_from_slice(&buf[..n]);
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("{e}"),
    }
}

/// `wl_display.sync` as 7 (free again once done): one more harness call.
fn sync(server: &mut FuzzServer, peer: usize) {
    let fed = server.feed(peer, &message(1, 0, &[word(7)]), Vec::new());
    assert!(fed, "{:?}", server.outcome(peer).disconnect);
}

#[test]
fn a_paste_of_a_copy_still_being_read_gets_its_first_bytes_before_the_copy_ends() {
    use std::io::{Read, Write};
    let mut server = FuzzServer::new().unwrap();
    server.hold_deadlines(true);
    let (copier, asked) = start_copy(&mut server, "text/plain");
    let mut pipe = paste_now(&mut server, "text/plain");
    let mut asked = std::fs::File::from(asked);
    asked.write_all(b"first ").unwrap();
    sync(&mut server, copier);
    let mut got = [0u8; 64];
    let n = pipe
        .read(&mut got)
        .expect("the first bytes, before the copier's close");
    assert_eq!(&got[..n], b"first ");
    asked.write_all(b"and last").unwrap();
    drop(asked);
    sync(&mut server, copier);
    let mut rest = Vec::new();
    pipe.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"and last");
    // The copier was asked once: by the server; the paste never reached it.
    assert_eq!(server.peers[copier].outcome.fds.len(), 0);
}

#[test]
fn a_paste_that_followed_a_copy_over_the_budget_is_finished_by_a_relay_from_the_copier() {
    use std::io::Write;
    use waypass_protocol::protocols::data_control::ext::ext_data_control_source_v1 as source;
    // Past the harness's 1 MiB budget by more than a pipe holds.
    let data: Vec<u8> = (0..(5u32 << 18)).map(|i| (i % 251) as u8).collect();
    let mut server = FuzzServer::new().unwrap();
    server.hold_deadlines(true);
    let (copier, asked) = start_copy(&mut server, "application/x-big");
    let mut pipe = paste_now(&mut server, "application/x-big");
    let first = data.clone();
    let writer = std::thread::spawn(move || std::fs::File::from(asked).write_all(&first));
    let mut got = Vec::new();
    let sends = |server: &FuzzServer| {
        headers(&server.outcome(copier).sent)
            .iter()
            .filter(|&&e| e == (6, source::evt::SEND))
            .count()
    };
    // The paste follows the read until the read goes past the budget.
    for _ in 0..10_000 {
        pass_and_read(&mut server, copier, &mut pipe, &mut got);
        if sends(&server) == 2 {
            break;
        }
    }
    assert_eq!(sends(&server), 2, "the copier is asked again for the paste");
    // The server's own read saw EPIPE once over the budget.
    assert!(writer.join().unwrap().is_err());
    assert!(
        !got.is_empty() && got.len() < data.len(),
        "{} bytes before",
        got.len()
    );
    let relay = server.peers[copier]
        .outcome
        .fds
        .pop()
        .expect("the relay's pipe");
    let whole = data.clone();
    let copier_writes = std::thread::spawn(move || std::fs::File::from(relay).write_all(&whole));
    for _ in 0..100_000 {
        if pass_and_read(&mut server, copier, &mut pipe, &mut got) {
            break;
        }
    }
    copier_writes.join().unwrap().unwrap();
    assert!(
        got == data,
        "{} bytes pasted, {} copied",
        got.len(),
        data.len()
    );
}
