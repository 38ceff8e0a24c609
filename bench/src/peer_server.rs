//! The comparison servers: the same small keyboard server on wayland-rs's
//! pure-Rust backend and on libwayland, each run as a separate process by
//! `waypass-bench peer-server --backend rs|sys --socket PATH`.
//!
//! What it is: `wayland_backend::rs::server` and `wayland_backend::sys::server`
//! driven by one loop that sleeps directly in `epoll_wait` (no calloop, no
//! extra threads), advertising `wl_seat` version 7 with the keyboard
//! capability and sending every new `wl_keyboard` the keymap — one sealed
//! memfd shared by all clients. `wl_display.sync` and `wl_registry` are
//! answered by the backends themselves.
//!
//! What it is not: a compositor. No focus, keys, pointer or touch; requests
//! for those objects are accepted and ignored.
//!
//! # Implementation notes
//!
//! Both backends expose the same API from one source file, but as distinct
//! types, so the handlers are written once in a macro and instantiated per
//! backend. The listener is the bench's own (`UnixListener` +
//! `insert_client`) for both, so the two differ only in the backend.
//! After each wake-up the loop dispatches and then flushes all clients, as
//! `wl_display_run` does.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::keymap::{KeymapError, KeymapFile};

/// The backend a peer server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// wayland-rs, pure-Rust backend.
    Rs,
    /// libwayland (`wayland-server` system backend).
    Sys,
}

/// Why a peer server stopped.
#[derive(Debug)]
pub enum PeerServerError {
    /// The keymap could not be made.
    Keymap(KeymapError),
    /// The backend could not be created (libwayland missing?).
    Backend(String),
    /// Binding the listening socket failed.
    Bind(io::Error),
    /// Setting up or waiting on epoll failed.
    Epoll(io::Error),
    /// Accepting a client or handing it to the backend failed.
    Accept(io::Error),
    /// Dispatching requests failed.
    Dispatch(io::Error),
}

impl fmt::Display for PeerServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerServerError::Keymap(_) => write!(f, "cannot make the keymap"),
            PeerServerError::Backend(why) => write!(f, "cannot create the backend: {why}"),
            PeerServerError::Bind(_) => write!(f, "cannot listen on the socket"),
            PeerServerError::Epoll(_) => write!(f, "epoll failed"),
            PeerServerError::Accept(_) => write!(f, "accepting a client failed"),
            PeerServerError::Dispatch(_) => write!(f, "dispatching requests failed"),
        }
    }
}

impl std::error::Error for PeerServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PeerServerError::Keymap(e) => Some(e),
            PeerServerError::Backend(_) => None,
            PeerServerError::Bind(e)
            | PeerServerError::Epoll(e)
            | PeerServerError::Accept(e)
            | PeerServerError::Dispatch(e) => Some(e),
        }
    }
}

const EMFILE: i32 = Errno::EMFILE as i32;
const ENFILE: i32 = Errno::ENFILE as i32;

const LISTENER: u64 = 0;
const BACKEND: u64 = 1;

/// Listens on `socket`, prints its path on stdout, and serves until killed.
pub fn serve(kind: BackendKind, socket: &Path) -> Result<(), PeerServerError> {
    let keymap = KeymapFile::us().map_err(PeerServerError::Keymap)?;
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(PeerServerError::Bind)?;
    listener
        .set_nonblocking(true)
        .map_err(PeerServerError::Bind)?;
    match kind {
        BackendKind::Rs => rs_server::Server::new(keymap)?.run(listener, socket),
        BackendKind::Sys => sys_server::Server::new(keymap)?.run(listener, socket),
    }
}

/// An epoll set holding the listener and the backend's own poll fd.
fn wake_set(
    listener: &UnixListener,
    backend_fd: std::os::fd::BorrowedFd<'_>,
) -> Result<Epoll, PeerServerError> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(|e| PeerServerError::Epoll(e.into()))?;
    for (fd, token) in [(listener.as_fd(), LISTENER), (backend_fd, BACKEND)] {
        epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| PeerServerError::Epoll(e.into()))?;
    }
    Ok(epoll)
}

/// Blocks in `epoll_wait` and returns which of the two sources are ready.
fn wait(epoll: &Epoll) -> Result<(bool, bool), PeerServerError> {
    let mut events = [EpollEvent::empty(); 2];
    let n = loop {
        match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => break n,
            // A signal woke us: nothing is ready, wait again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(PeerServerError::Epoll(e.into())),
        }
    };
    let ready = |token| events[..n].iter().any(|e| e.data() == token);
    Ok((ready(LISTENER), ready(BACKEND)))
}

/// Prints the socket path on stdout: the "I listen" signal the bench waits for.
fn announce(socket: &Path) {
    use std::io::Write;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", socket.display());
    let _ = out.flush();
}

macro_rules! keyboard_server {
    ($module:ident, $($backend:ident)::+) => {
        /// The keyboard server on one backend (see the module docs).
        pub mod $module {
            use std::io;
            use std::os::fd::{AsFd, AsRawFd, OwnedFd};
            use std::os::unix::net::UnixListener;
            use std::path::Path;
            use std::sync::Arc;

            use wayland_backend::protocol::{Argument, Message};
            use wayland_client::protocol::__interfaces::{
                WL_KEYBOARD_INTERFACE, WL_SEAT_INTERFACE,
            };
            use $($backend)::+::{
                Backend, ClientData, ClientId, GlobalHandler, GlobalId, Handle, ObjectData,
                ObjectId,
            };

            use super::{announce, wait, wake_set, PeerServerError, EMFILE, ENFILE};
            use crate::keymap::KeymapFile;

            const SEAT_VERSION: u32 = 7;
            const CAPABILITY_KEYBOARD: u32 = 2;
            const SEAT_GET_KEYBOARD: u16 = 1;
            const SEAT_CAPABILITIES: u16 = 0;
            const KEYBOARD_KEYMAP: u16 = 0;
            const KEYMAP_FORMAT_XKB_V1: u32 = 1;

            /// The server: a backend plus the seat global.
            pub struct Server {
                backend: Backend<()>,
            }

            impl Server {
                /// Creates the backend and the `wl_seat` global.
                pub fn new(keymap: KeymapFile) -> Result<Server, PeerServerError> {
                    let backend = Backend::<()>::new()
                        .map_err(|e| PeerServerError::Backend(format!("{e:?}")))?;
                    let seat = Arc::new(Seat { keymap: Arc::new(keymap) });
                    backend
                        .handle()
                        .create_global::<()>(&WL_SEAT_INTERFACE, SEAT_VERSION, seat);
                    Ok(Server { backend })
                }

                /// Announces the socket and serves until killed.
                pub fn run(
                    mut self,
                    listener: UnixListener,
                    socket: &Path,
                ) -> Result<(), PeerServerError> {
                    let epoll = wake_set(&listener, self.backend.poll_fd())?;
                    announce(socket);
                    loop {
                        let (accept, dispatch) = wait(&epoll)?;
                        if accept {
                            self.accept_all(&listener)?;
                        }
                        if dispatch {
                            self.backend
                                .dispatch_all_clients(&mut ())
                                .map_err(PeerServerError::Dispatch)?;
                        }
                        // A client that went away cannot be flushed: not our error.
                        let _ = self.backend.flush(None);
                    }
                }

                fn accept_all(&mut self, listener: &UnixListener) -> Result<(), PeerServerError> {
                    loop {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                // As a real server would: drop this client
                                // (libwayland fails here with EMFILE, as it
                                // dups every client fd) and keep serving.
                                if let Err(e) =
                                    self.backend.handle().insert_client(stream, Arc::new(Client))
                                {
                                    log::warn!("client dropped: backend refused it: {e}");
                                }
                            }
                            // Every pending connection has been taken.
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                            // A signal interrupted accept: try again.
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            // Out of fds: keep serving the clients we have,
                            // backing off instead of spinning on the
                            // still-readable listener.
                            Err(e) if matches!(e.raw_os_error(), Some(EMFILE | ENFILE)) => {
                                log::warn!("accept: {e}; backing off");
                                std::thread::sleep(std::time::Duration::from_millis(10));
                                return Ok(());
                            }
                            Err(e) => return Err(PeerServerError::Accept(e)),
                        }
                    }
                }
            }

            struct Client;
            impl ClientData for Client {}

            struct Seat {
                keymap: Arc<KeymapFile>,
            }

            impl GlobalHandler<()> for Seat {
                fn bind(
                    self: Arc<Self>,
                    handle: &Handle,
                    _: &mut (),
                    _: ClientId,
                    _: GlobalId,
                    seat: ObjectId,
                ) -> Arc<dyn ObjectData<()>> {
                    let caps = Message {
                        sender_id: seat.clone(),
                        opcode: SEAT_CAPABILITIES,
                        args: [Argument::Uint(CAPABILITY_KEYBOARD)].into_iter().collect(),
                    };
                    let _ = handle.send_event(caps);
                    Arc::new(SeatObject { keymap: self.keymap.clone() })
                }
            }

            struct SeatObject {
                keymap: Arc<KeymapFile>,
            }

            impl ObjectData<()> for SeatObject {
                fn request(
                    self: Arc<Self>,
                    handle: &Handle,
                    _: &mut (),
                    _: ClientId,
                    msg: Message<ObjectId, OwnedFd>,
                ) -> Option<Arc<dyn ObjectData<()>>> {
                    let new_id = msg.args.iter().find_map(|arg| match arg {
                        Argument::NewId(id) => Some(id.clone()),
                        _ => None,
                    });
                    let new_id = new_id?;
                    if msg.opcode == SEAT_GET_KEYBOARD
                        && new_id.interface().name == WL_KEYBOARD_INTERFACE.name
                    {
                        let keymap = Message {
                            sender_id: new_id,
                            opcode: KEYBOARD_KEYMAP,
                            args: [
                                Argument::Uint(KEYMAP_FORMAT_XKB_V1),
                                // The backend dups the fd into its send queue.
                                Argument::Fd(self.keymap.as_fd().as_raw_fd()),
                                Argument::Uint(self.keymap.size()),
                            ]
                            .into_iter()
                            .collect(),
                        };
                        let _ = handle.send_event(keymap);
                    }
                    // Pointer, touch and keyboard objects need no handling.
                    Some(Arc::new(Inert))
                }

                fn destroyed(self: Arc<Self>, _: &Handle, _: &mut (), _: ClientId, _: ObjectId) {}
            }

            struct Inert;

            impl ObjectData<()> for Inert {
                fn request(
                    self: Arc<Self>,
                    _: &Handle,
                    _: &mut (),
                    _: ClientId,
                    _: Message<ObjectId, OwnedFd>,
                ) -> Option<Arc<dyn ObjectData<()>>> {
                    None
                }

                fn destroyed(self: Arc<Self>, _: &Handle, _: &mut (), _: ClientId, _: ObjectId) {}
            }
        }
    };
}

keyboard_server!(rs_server, wayland_backend::rs::server);
keyboard_server!(sys_server, wayland_backend::sys::server);
