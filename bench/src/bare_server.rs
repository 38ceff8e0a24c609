//! The bare epoll server: the floor for any server that waits in epoll
//! (issue 14's reference peer, `waypass-bench peer-bare`).
//!
//! What it is: `epoll_wait`, then one `recvmsg` on the ready client, then
//! one `sendmsg` with a `wl_callback.done` and a `wl_display.delete_id` for
//! each `wl_display.sync` read: three syscalls per round trip, no library.
//!
//! What it is not: a Wayland server. It answers `sync` only; every other
//! request (`get_registry` included, so a client sees no globals) is read
//! and ignored, and fds a client sends are closed. It prints its socket path
//! on stdout once it listens, like the other peers.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessageOwned, MsgFlags};

/// The epoll token of the listening socket; clients get 0, 1, 2...
const LISTENER: u64 = u64::MAX;

struct Client {
    stream: UnixStream,
    /// The start of a message whose end has not come yet.
    partial: Vec<u8>,
}

/// Serves `wl_display.sync` on `socket` until killed.
pub fn serve(socket: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    writeln!(io::stdout(), "{}", socket.display())?;
    io::stdout().flush()?;

    let mut clients: HashMap<u64, Client> = HashMap::new();
    let mut next_token = 0u64;
    let mut serial = 0u32;
    let mut events = [EpollEvent::empty(); 32];
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            let token = event.data();
            if token == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true)?;
                    epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, next_token))?;
                    let partial = Vec::new();
                    clients.insert(next_token, Client { stream, partial });
                    next_token += 1;
                }
                continue;
            }
            let Some(client) = clients.get_mut(&token) else {
                continue;
            };
            let fd = client.stream.as_raw_fd();
            let mut cmsg = cmsg_space!([RawFd; 28]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
            let got = match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), flags) {
                Ok(msg) => {
                    for c in msg.cmsgs().into_iter().flatten() {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // Not ours to keep: close them now.
                            fds.into_iter().for_each(|fd| drop(owned(fd)));
                        }
                    }
                    msg.bytes
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(_) => 0,
            };
            if got == 0 {
                let _ = epoll.delete(&client.stream);
                clients.remove(&token);
                continue;
            }
            client.partial.extend_from_slice(&buf[..got]);
            out.clear();
            let used = answer_syncs(&client.partial, &mut serial, &mut out);
            client.partial.drain(..used);
            if !out.is_empty() {
                // A client that does not read its replies loses them: the
                // reference measures round trips, not back-pressure.
                let _ = sendmsg::<()>(
                    fd,
                    &[IoSlice::new(&out)],
                    &[],
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                    None,
                );
            }
        }
    }
}

/// Appends the replies to every complete `wl_display.sync` in `input` to
/// `out`; returns how many bytes of `input` were complete messages.
fn answer_syncs(input: &[u8], serial: &mut u32, out: &mut Vec<u8>) -> usize {
    let word = |at: usize| u32::from_ne_bytes(input[at..at + 4].try_into().unwrap());
    let mut at = 0;
    while input.len() - at >= 8 {
        let (object, size_opcode) = (word(at), word(at + 4));
        let size = (size_opcode >> 16) as usize;
        if size < 8 || !size.is_multiple_of(4) {
            // A bad size can never complete: drop everything.
            return input.len();
        }
        if input.len() - at < size {
            return at;
        }
        if object == 1 && size_opcode & 0xffff == 0 && size == 12 {
            let callback = word(at + 8);
            *serial = serial.wrapping_add(1);
            for w in [callback, 12 << 16, *serial, 1, (12 << 16) | 1, callback] {
                out.extend_from_slice(&w.to_ne_bytes());
            }
        }
        at += size;
    }
    at
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel just installed this fd for us with SCM_RIGHTS;
    // nothing else refers to it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn each_sync_gets_done_then_delete_id_and_a_partial_one_waits() {
        let mut input = msg(&[1, 12 << 16, 7, 1, (12 << 16) | 1, 2, 1, 12 << 16, 9]);
        input.extend_from_slice(&msg(&[1, 12 << 16])); // half a sync
        let (mut serial, mut out) = (0, Vec::new());
        let used = answer_syncs(&input, &mut serial, &mut out);
        assert_eq!(used, input.len() - 8);
        let expect = msg(&[
            7,
            12 << 16,
            1,
            1,
            (12 << 16) | 1,
            7,
            9,
            12 << 16,
            2,
            1,
            (12 << 16) | 1,
            9,
        ]);
        assert_eq!(out, expect);
    }
}
