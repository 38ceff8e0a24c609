//! `waypass-client listen` against a flood of channels, each holding fds:
//! under a 1,024-fd limit (`prlimit`, util-linux), many channels to bob,
//! each with a `text` carrying 28 fds (the most a channel may leave
//! unclaimed), from one process and from many. Before the fix they filled
//! the listener's fd table, its server connection failed, and the name
//! `bob` was free for the attacker to take.
//!
//! After each flood the test tops the listener's table up to the limit, as
//! an attacker reading `/proc/PID/fd` can, with channels whose text carries
//! just as many fds as are free. Checked then: a new peer's text is acked
//! (the server could hand the listener its channel), the listener still
//! runs and still owns `bob` (a second `register bob` is refused), and it
//! said why it refused channels.
//!
//! Also checked: a channel cannot keep 252 fds that no message takes
//! behind a file offer, while the file is read and the channel is not.
//!
//! What it is not: the other hostile peers (`listen_hostile.rs`).

mod common;
mod listen_support;
mod running;

use std::io::{IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, Stdio};

use common::{eventually, fd_count, run_client, Server, PATIENCE};
use listen_support::{listen_with, Running};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use waypass_client::{Broker, BrokerError, ConnectOptions, Failure, Peer};
use waypass_protocol::protocols::broker::waypass_peer_v1::req;

/// The listener's fd limit, soft and hard: the usual default.
const FD_LIMIT: usize = 1024;

/// Fds attached to each hostile text: libwayland's most per `sendmsg`,
/// and the most a channel may leave unclaimed.
const FDS_PER_TEXT: usize = 28;

/// `text(serial 1, "x")` to object 1, as raw bytes.
fn text_message() -> Vec<u8> {
    let words = [1u32, 20 << 16 | u32::from(req::TEXT), 1, 2];
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    bytes.extend_from_slice(b"x\0\0\0");
    bytes
}

/// Opens up to `n` channels to bob on `socket`, each with a text carrying
/// 28 fds; returns those the server established (the listener may close
/// them at once). A channel the server refuses (`busy`) is skipped.
fn flood(socket: &str, n: usize) -> (Broker, Vec<Peer>) {
    let mut broker = Broker::connect(Some(socket)).expect("broker");
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let fds = [file.as_raw_fd(); FDS_PER_TEXT];
    let bytes = text_message();
    let mut peers = Vec::new();
    for _ in 0..n {
        let mut options = ConnectOptions::default();
        options.reply_timeout = PATIENCE;
        let peer = match broker.connect_to("bob", options) {
            Ok(peer) => peer,
            Err(BrokerError::Refused {
                reason: Failure::Busy,
                ..
            }) => continue,
            Err(e) => panic!("connect: {e}"),
        };
        let socket = peer.channel.as_fd().as_raw_fd();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        // The listener may have closed the channel already (EPIPE).
        let _ = sendmsg::<()>(
            socket,
            &[IoSlice::new(&bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        peers.push(peer);
    }
    (broker, peers)
}

/// Run in its own process by [`many_processes_flooding_channels_cannot_take_the_name`]:
/// floods bob on `$WAYPASS_TEST_FLOOD_SOCKET`, says `READY`, and holds its
/// channels until stdin closes. Does nothing in a normal run.
#[test]
fn flood_helper() {
    let Some(socket) = std::env::var_os("WAYPASS_TEST_FLOOD_SOCKET") else {
        return;
    };
    let (_broker, _peers) = flood(socket.to_str().expect("utf-8"), 8);
    println!("READY");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// A process running [`flood_helper`].
fn flood_process(server: &Server) -> Child {
    let exe = std::env::current_exe().expect("test exe");
    Command::new(exe)
        .args(["--exact", "flood_helper", "--nocapture", "--test-threads=1"])
        .env("WAYPASS_TEST_FLOOD_SOCKET", &server.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("flood helper")
}

/// Waits until `child` printed `READY`.
fn ready(child: &mut Child) {
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("READY") {
        let n = out.read(&mut buf).expect("read helper");
        assert!(n > 0, "the helper ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// `listen bob` under a 1,024-fd limit.
fn limited_listener(server: &Server) -> Running {
    let nofile = format!("--nofile={FD_LIMIT}:{FD_LIMIT}");
    listen_with(server, &["prlimit", &nofile, "--"], &[])
}

/// Tops the listener's fd table up to its limit, as an attacker that
/// reads `/proc/PID/fd` can: channels whose text carries just as many fds
/// as are free (at most 253 per `sendmsg`, 10 channels in all).
fn fill_up(server: &Server, listener: &Running) -> (Broker, Vec<Peer>) {
    let mut broker = Broker::connect(Some(server.socket_arg())).expect("broker");
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let bytes = text_message();
    let mut peers = Vec::new();
    for _ in 0..10 {
        let free = FD_LIMIT.saturating_sub(fd_count(listener.pid() as i32));
        // One slot for the channel's own socket.
        if free < 2 {
            break;
        }
        let Ok(peer) = broker.connect_to("bob", ConnectOptions::default()) else {
            break;
        };
        let fds = vec![file.as_raw_fd(); (free - 1).min(253)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let socket = peer.channel.as_fd().as_raw_fd();
        let _ = sendmsg::<()>(
            socket,
            &[IoSlice::new(&bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        // Answered (or closed) once the listener has read it.
        let mut channel = peer.channel;
        let _ = channel.wait_ack(1, Some(PATIENCE));
        peers.push(Peer { channel, ..peer });
    }
    (broker, peers)
}

/// `waypass-client send bob TEXT` from a process of its own: whether the
/// listener acked it.
fn send_from_another_process(server: &Server, text: &str) -> bool {
    let args = ["--socket", server.socket_arg(), "send", "bob", text];
    let out = run_client(&[&args[..], &["--timeout-ms", "30s"]].concat());
    out.status.success()
}

/// The listener survived: running, and still the owner of bob.
fn still_owns_bob(server: &Server, listener: &mut Running) {
    assert!(listener.alive(), "the listener died");
    let mut thief = Broker::connect(Some(server.socket_arg())).expect("broker");
    let taken = thief.register_and_wait("bob", PATIENCE);
    assert!(
        matches!(
            taken,
            Err(BrokerError::Refused {
                reason: Failure::NameTaken,
                ..
            })
        ),
        "bob was free to take: {taken:?}"
    );
    let fds = fd_count(listener.pid() as i32);
    println!("listener fds after the flood: {fds} (limit {FD_LIMIT})");
}

#[test]
fn one_process_flooding_channels_cannot_take_the_name() {
    let server = Server::start(&[]);
    let mut listener = limited_listener(&server);
    let (_broker, peers) = flood(server.socket_arg(), 60);
    // Every channel before it has been read or closed.
    assert!(send_from_another_process(&server, "after the flood"));
    let full = fill_up(&server, &listener);
    // The server hands the listener this channel's fd: what failed when
    // the flood had filled its table.
    assert!(send_from_another_process(&server, "still bob?"));
    listener.expect_line("with the text", |l| l.ends_with(": still bob?"));
    still_owns_bob(&server, &mut listener);
    drop((peers, full));
    let (_, stderr) = listener.kill();
    assert!(stderr.contains("refusing a channel from pid"), "{stderr}");
}

#[test]
fn many_processes_flooding_channels_cannot_take_the_name() {
    let server = Server::start(&[]);
    let mut listener = limited_listener(&server);
    let mut helpers: Vec<Child> = (0..12).map(|_| flood_process(&server)).collect();
    for helper in &mut helpers {
        ready(helper);
    }
    let full = fill_up(&server, &listener);
    // While the flood holds every channel the listener allows, new peers
    // are refused; the name stays.
    assert!(!send_from_another_process(&server, "refused"));
    still_owns_bob(&server, &mut listener);
    drop(full);
    for helper in &mut helpers {
        let _ = helper.kill();
        let _ = helper.wait();
    }
    // Their channels closed: peers are served again, and the listener is
    // back to what it held before.
    assert!(eventually(|| send_from_another_process(
        &server,
        "after the flood"
    )));
    listener.expect_line("with the text", |l| l.ends_with(": after the flood"));
    let pid = listener.pid() as i32;
    assert!(eventually(|| fd_count(pid) < 64), "{}", fd_count(pid));
    let (_, stderr) = listener.kill();
    assert!(stderr.contains("refusing a channel from pid"), "{stderr}");
}

/// `file(serial 1, fd, "big", size)` to object 1, as raw bytes.
fn file_message(size: u64) -> Vec<u8> {
    let words = [
        1u32,
        28 << 16 | u32::from(req::FILE),
        1,
        4,
        u32::from_ne_bytes(*b"big\0"),
        (size >> 32) as u32,
        size as u32,
    ];
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

#[test]
fn a_channel_cannot_keep_fds_behind_a_file_being_read() {
    // A file that takes far longer to read than the test: a 1 TiB hole.
    const SIZE: u64 = 1 << 40;
    let server = Server::start(&[]);
    let max = (2 * SIZE).to_string();
    let mut listener = listen_with(&server, &[], &["--max-file-size", &max]);
    let pid = listener.pid() as i32;
    let base = fd_count(pid);
    let (_b, p) = listen_support::peer(&server);
    let memfd = memfd_create("big", MFdFlags::MFD_CLOEXEC).expect("memfd");
    nix::unistd::ftruncate(&memfd, SIZE as i64).expect("1 TiB");
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    // The offer's own fd, then 252 that no message takes: while the file
    // is read the channel is not, so they would wait there all that time.
    let mut fds = vec![memfd.as_raw_fd()];
    fds.extend([null.as_raw_fd(); 252]);
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let bytes = file_message(SIZE);
    let socket = p.channel.as_fd().as_raw_fd();
    sendmsg::<()>(
        socket,
        &[IoSlice::new(&bytes)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
    // Once the listener has read it (the channel ends, or the worker's
    // first progress comes), the channel is dropped; a worker still reads
    // the offered file through its fd and a reopen of it.
    let mut channel = p.channel;
    let _ = channel.recv(Some(PATIENCE));
    assert!(
        eventually(|| fd_count(pid) <= base + 2),
        "base {base}, now {}",
        fd_count(pid)
    );
    let (_b2, mut q) = listen_support::peer(&server);
    assert_eq!(
        listen_support::say(&mut q.channel, "others are served"),
        listen_support::Answer::Acked
    );
    listener.expect_line("with the text", |l| l.ends_with(": others are served"));
    let (_, stderr) = listener.kill();
    assert!(
        stderr.contains("holds 252 fds that no message has taken"),
        "{stderr}"
    );
}
