//! The Wayland client the bench measures every server with: wayland-client
//! on its pure-Rust backend (`client_system` is off in this package).
//!
//! What it is: two client shapes. [`SyncClient`] does `wl_display.sync`
//! round trips. [`KeyboardClient`] does the connection flow of issue 7 —
//! connect, list globals, bind `wl_seat`, get the keyboard, receive the
//! keymap fd, close it — and can be held open for the memory measurement.
//!
//! What it is not: waypass's own client library; that side is measured
//! separately once `waypass_client` has a public API.
//!
//! # Implementation notes
//!
//! The wait loop is wayland-client's `blocking_dispatch` written out —
//! dispatch pending events, flush, `prepare_read`, `poll`, read — so the
//! syscalls per round trip are the same, but the `poll` has a timeout and a
//! dead server cannot hang the bench.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use wayland_client::protocol::{wl_callback, wl_keyboard, wl_registry, wl_seat};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum};

/// How long one wait for the server may take before it is called hung.
const PATIENCE_MS: u16 = 30_000;
/// The highest `wl_seat` version the client binds.
const SEAT_VERSION: u32 = 7;

/// What went wrong on the client side.
#[derive(Debug)]
pub enum ClientError {
    /// connect() to the server socket failed.
    Connect(io::Error),
    /// wayland-client refused the socket.
    Setup(wayland_client::ConnectError),
    /// Sending or reading failed (the server may have closed the connection).
    Io(wayland_client::backend::WaylandError),
    /// Dispatching events failed.
    Dispatch(wayland_client::DispatchError),
    /// poll() on the connection failed.
    Poll(io::Error),
    /// The server sent nothing for the patience period.
    Timeout(&'static str),
    /// The server advertises no `wl_seat`.
    NoSeat,
    /// The keymap event was not `xkb_v1` with a file at least `size` long.
    BadKeymap(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(_) => write!(f, "connect to the server failed"),
            ClientError::Setup(e) => write!(f, "wayland-client setup failed: {e}"),
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Dispatch(e) => write!(f, "dispatch failed: {e}"),
            ClientError::Poll(_) => write!(f, "poll on the connection failed"),
            ClientError::Timeout(what) => write!(f, "no {what} within {}s", PATIENCE_MS / 1000),
            ClientError::NoSeat => write!(f, "the server advertises no wl_seat"),
            ClientError::BadKeymap(why) => write!(f, "bad keymap: {why}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect(e) | ClientError::Poll(e) => Some(e),
            _ => None,
        }
    }
}

/// What the client has seen so far.
#[derive(Debug, Default)]
pub struct ClientState {
    sync_done: bool,
    globals: Vec<(u32, String, u32)>,
    keymap: Option<Result<u32, String>>,
}

fn connect(path: &Path) -> Result<(Connection, EventQueue<ClientState>), ClientError> {
    let stream = UnixStream::connect(path).map_err(ClientError::Connect)?;
    let conn = Connection::from_socket(stream).map_err(ClientError::Setup)?;
    let queue = conn.new_event_queue();
    Ok((conn, queue))
}

/// Dispatches until `done(state)`, flushing and waiting (with a timeout) as
/// needed.
fn dispatch_until(
    queue: &mut EventQueue<ClientState>,
    state: &mut ClientState,
    what: &'static str,
    done: impl Fn(&ClientState) -> bool,
) -> Result<(), ClientError> {
    loop {
        queue
            .dispatch_pending(state)
            .map_err(ClientError::Dispatch)?;
        if done(state) {
            return Ok(());
        }
        queue.flush().map_err(ClientError::Io)?;
        // None: events were queued meanwhile; dispatch them first.
        let Some(guard) = queue.prepare_read() else {
            continue;
        };
        let mut fds = [PollFd::new(guard.connection_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(PATIENCE_MS)) {
            Ok(0) => return Err(ClientError::Timeout(what)),
            Ok(_) => {
                guard.read().map_err(ClientError::Io)?;
            }
            // A signal woke us: drop the guard and wait again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(ClientError::Poll(e.into())),
        }
    }
}

/// A connection that does `wl_display.sync` round trips.
pub struct SyncClient {
    conn: Connection,
    queue: EventQueue<ClientState>,
    state: ClientState,
}

impl SyncClient {
    /// Connects to the server at `path`.
    pub fn connect(path: &Path) -> Result<SyncClient, ClientError> {
        let (conn, queue) = connect(path)?;
        Ok(SyncClient {
            conn,
            queue,
            state: ClientState::default(),
        })
    }

    /// `n` sync round trips, one after another; returns the wall time.
    pub fn round_trips(&mut self, n: u64) -> Result<Duration, ClientError> {
        let qh = self.queue.handle();
        let display = self.conn.display();
        let start = Instant::now();
        for _ in 0..n {
            self.state.sync_done = false;
            display.sync(&qh, ());
            dispatch_until(&mut self.queue, &mut self.state, "sync done", |s| {
                s.sync_done
            })?;
        }
        Ok(start.elapsed())
    }
}

/// A client that went through the keyboard flow and still holds its
/// connection, seat and keyboard. Dropping it disconnects.
pub struct KeyboardClient {
    _conn: Connection,
    _queue: EventQueue<ClientState>,
    _seat: wl_seat::WlSeat,
    _keyboard: wl_keyboard::WlKeyboard,
}

impl KeyboardClient {
    /// Connects, binds the seat, gets the keyboard and waits for the keymap
    /// (whose fd it checks and closes).
    pub fn connect(path: &Path) -> Result<KeyboardClient, ClientError> {
        let (conn, mut queue) = connect(path)?;
        let qh = queue.handle();
        let mut state = ClientState::default();
        let registry = conn.display().get_registry(&qh, ());
        conn.display().sync(&qh, ());
        dispatch_until(&mut queue, &mut state, "registry globals", |s| s.sync_done)?;
        let (name, version) = state
            .globals
            .iter()
            .find(|(_, iface, _)| iface == "wl_seat")
            .map(|(name, _, version)| (*name, *version))
            .ok_or(ClientError::NoSeat)?;
        let seat: wl_seat::WlSeat = registry.bind(name, version.min(SEAT_VERSION), &qh, ());
        let keyboard = seat.get_keyboard(&qh, ());
        dispatch_until(&mut queue, &mut state, "keymap", |s| s.keymap.is_some())?;
        if let Some(Err(why)) = state.keymap.take() {
            return Err(ClientError::BadKeymap(why));
        }
        Ok(KeyboardClient {
            _conn: conn,
            _queue: queue,
            _seat: seat,
            _keyboard: keyboard,
        })
    }
}

/// Checks what a client must check before mapping: `0 < size <= file size`.
fn check_keymap(
    format: WEnum<wl_keyboard::KeymapFormat>,
    fd: OwnedFd,
    size: u32,
) -> Result<u32, String> {
    if format != WEnum::Value(wl_keyboard::KeymapFormat::XkbV1) {
        return Err(format!("format {format:?}"));
    }
    let file_size = std::fs::File::from(fd)
        .metadata()
        .map_err(|e| format!("fstat: {e}"))?
        .len();
    if size == 0 || u64::from(size) > file_size {
        return Err(format!("size {size} for a file of {file_size} bytes"));
    }
    // The fd closes here: the bench only counts keymaps, it does not map them.
    Ok(size)
}

impl Dispatch<wl_registry::WlRegistry, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            state.globals.push((name, interface, version));
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.sync_done = true;
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for ClientState {
    fn event(
        _: &mut Self,
        _: &wl_seat::WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Capabilities and name: the flow asks for the keyboard regardless.
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_keyboard::Event::Keymap { format, fd, size } = event {
            state.keymap = Some(check_keymap(format, fd, size));
        }
    }
}
