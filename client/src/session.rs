//! A small blocking Wayland client session over [`Connection`].
//!
//! A [`Session`] owns the connection, the client's object map (interface and
//! version per id), a queue of received events, and the `WAYLAND_DEBUG`
//! tracer. It sends requests, reads events with `poll` and a timeout, and
//! does `wl_display.sync` round trips. Requests are the scanner's typed
//! messages, sent to typed ids ([`Session::send`]); events come back as
//! [`Event`]s that decode into the typed event of their interface
//! ([`Event::decode`]). It handles the two `wl_display` events itself:
//! `error` becomes [`SessionError::Protocol`], and `delete_id` frees the
//! id; and the events of its own registry, which keep [`Globals`] up to
//! date (`session/globals.rs`). Every other event waits in the queue, in
//! arrival order, until the caller takes it ([`Session::next_event`],
//! [`Session::next_event_from`], [`Session::take_event`]).
//!
//! It is not an event loop, knows nothing of keyboards or keymaps (see
//! [`crate::fetch`]), and is not thread-safe: one thread drives it.
//!
//! It can also be driven by an event loop, without blocking: see
//! [`Session::dispatch_pending`].
//!
//! # Implementation notes
//!
//! - Reading: flush first. With nothing left to send, one blocking
//!   `recvmsg` waits for the reply ([`Connection::recv_wait`], its receive
//!   timeout never past the deadline), so a round trip costs `sendmsg` and
//!   `recvmsg`, as a raw ping-pong does. With output still queued, `poll`
//!   for readable and writable, then one non-blocking `recv()`. Then decode
//!   every complete message. A signal (`EINTR`) or an early end of the
//!   receive timeout waits again with the time left.
//! - Ids follow libwayland's rules: a destructor request or event turns the
//!   object into a zombie, which still decodes (so its fds are consumed and
//!   closed) but whose events are dropped; the id is reused only after the
//!   server's `delete_id`.
//! - If the peer closed while we were writing (EPIPE), the session still
//!   reads what the server sent before closing, so a `wl_display.error`
//!   is reported rather than a bare "closed".

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use log::{debug, trace};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::wayland::{wl_display, wl_registry};
use waypass_protocol::{
    connect_to_display, connect_to_path, Connection, ConnectionError, Direction, Flush, Interface,
    InterfaceType, Message, NextError, ObjectId, ObjectMap, Recv, Side, TraceSide, Tracer,
    TypedMessage, SERVER_ID_START,
};

use crate::deadline::Deadline;
use crate::error::{ProtocolError, SessionError};
use crate::event::Event;

mod globals;
mod nonblocking;
mod requests;

pub use globals::{Global, Globals};

pub use waypass_protocol::DISPLAY_ID;

/// How long [`Session::roundtrip`] waits by default.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the session knows about one live id.
#[derive(Debug, Clone, Copy)]
pub struct ObjectInfo {
    /// The object's interface.
    pub interface: &'static Interface,
    /// The version it was created at.
    pub version: u32,
    /// False once a destructor was sent or received; the id stays taken
    /// until the server's `delete_id`.
    pub alive: bool,
}

/// A blocking Wayland client connection with an object map and an event queue.
///
/// ```no_run
/// use waypass_client::Session;
///
/// let mut session = Session::connect(None)?;
/// for global in session.globals()?.iter() {
///     println!("{} v{}", global.interface, global.version);
/// }
/// # Ok::<(), waypass_client::SessionError>(())
/// ```
///
/// A protocol of one's own: its XML through `interfaces!`, then its typed
/// requests and events. With `examples/custom-protocol/protocol/hello-v1.xml` (one
/// global, `greet(name)` answered by `greeting(text)`):
///
/// ```no_run
/// use waypass_client::{waypass_protocol, Session};
///
/// mod hello {
///     // The path is relative to the crate's Cargo.toml.
///     waypass_client::waypass_protocol::interfaces!(
///         "../examples/custom-protocol/protocol/hello-v1.xml",
///         crate = waypass_client::waypass_protocol
///     );
/// }
/// use hello::hello_v1::{self, HelloV1};
///
/// let mut session = Session::connect(Some("hello.sock"))?;
/// let hello = session.bind_global::<HelloV1>(1)?;
/// session.send(hello, hello_v1::Request::Greet { name: c"alice" })?;
/// let mut ev = session.next_event_from(hello)?;
/// match ev.decode::<HelloV1>()? {
///     hello_v1::Event::Greeting { text } => println!("{}", text.to_string_lossy()),
/// }
/// # Ok::<(), waypass_client::SessionError>(())
/// ```
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    objects: ObjectMap<ObjectInfo>,
    queue: VecDeque<Event>,
    tracer: Tracer,
    reply_timeout: Duration,
    /// The peer refused our writes (EPIPE): only reading is left.
    write_closed: bool,
    /// The session's own registry and what it advertised.
    globals: Option<Globals>,
}

impl Session {
    /// Connects the way libwayland does (see
    /// [`waypass_protocol::connect_to_display`]): `name` (a name under
    /// `XDG_RUNTIME_DIR` or an absolute path), else `WAYLAND_SOCKET`, else
    /// `WAYLAND_DISPLAY`, else `wayland-0`.
    pub fn connect(name: Option<&str>) -> Result<Session, SessionError> {
        let stream = connect_to_display(name).map_err(SessionError::Connect)?;
        Session::from_stream(stream)
    }

    /// Connects to the socket at `path`.
    pub fn connect_path(path: &std::path::Path) -> Result<Session, SessionError> {
        let stream = connect_to_path(path).map_err(SessionError::Connect)?;
        Session::from_stream(stream)
    }

    /// Starts a session on an already-connected stream.
    pub fn from_stream(stream: UnixStream) -> Result<Session, SessionError> {
        let mut conn = Connection::new(stream).map_err(SessionError::Setup)?;
        // One connection per client: reusing its buffers beats freeing them.
        conn.keep_buffers(true);
        let mut objects = ObjectMap::new(Side::Client);
        let display = objects.allocate(ObjectInfo {
            interface: &wl_display::INTERFACE,
            version: 1,
            alive: true,
        });
        debug_assert_eq!(display, Some(DISPLAY_ID));
        Ok(Session {
            conn,
            objects,
            queue: VecDeque::new(),
            tracer: Tracer::from_env(TraceSide::Client),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            write_closed: false,
            globals: None,
        })
    }

    /// Sets how long [`Session::roundtrip`] waits for the server.
    pub fn set_reply_timeout(&mut self, timeout: Duration) {
        self.reply_timeout = timeout;
    }

    /// How long [`Session::roundtrip`] waits for the server.
    pub fn reply_timeout(&self) -> Duration {
        self.reply_timeout
    }

    /// Replaces the tracer (by default from `WAYLAND_DEBUG`).
    pub fn set_tracer(&mut self, tracer: Tracer) {
        self.tracer = tracer;
    }

    /// What the session knows about object `id`.
    pub fn object(&self, id: u32) -> Option<&ObjectInfo> {
        self.objects.get(id)
    }

    /// The version `object` was created at, while its id is taken.
    pub fn version<I: InterfaceType>(&self, object: ObjectId<I>) -> Option<u32> {
        self.objects.get(object.raw()).map(|o| o.version)
    }

    /// Sends `wl_display.sync` and reads until its `done` arrives, so that
    /// every event the server sent before handling our requests is queued.
    /// Waits at most the reply timeout ([`Session::set_reply_timeout`]).
    pub fn roundtrip(&mut self) -> Result<(), SessionError> {
        self.roundtrip_by(Deadline::after(self.reply_timeout))
    }

    /// [`Session::roundtrip`], ending at `deadline`: the deadline of the
    /// whole call this round trip is part of. Running out of time is
    /// [`SessionError::Timeout`] naming the deadline's timeout.
    pub fn roundtrip_by(&mut self, deadline: Deadline) -> Result<(), SessionError> {
        let callback = self.sync()?;
        loop {
            // `done` is wl_callback's only event.
            if self.take_event(|e| e.is_from(callback)).is_some() {
                return Ok(());
            }
            if !self.read_events(Some(deadline.at()))? {
                return Err(SessionError::Timeout {
                    waiting_for: "wl_display.sync",
                    waited: deadline.timeout(),
                });
            }
        }
    }

    /// Sends everything queued, waiting for the socket while it is full.
    pub fn flush(&mut self) -> Result<(), SessionError> {
        while self.conn.has_pending_output() && !self.write_closed {
            if self.try_flush()? == Flush::Done {
                break;
            }
            self.wait(PollFlags::POLLOUT, None)?;
        }
        Ok(())
    }

    /// [`Session::flush`], waiting for room in the socket only until
    /// `deadline`: running out of time is [`SessionError::Timeout`].
    pub(crate) fn flush_by(&mut self, deadline: Deadline) -> Result<(), SessionError> {
        while self.has_pending_output() {
            if self.try_flush()? == Flush::Done {
                break;
            }
            if self
                .wait(PollFlags::POLLOUT, Some(deadline.at()))?
                .is_empty()
            {
                return Err(SessionError::Timeout {
                    waiting_for: "room in the socket",
                    waited: deadline.timeout(),
                });
            }
        }
        Ok(())
    }

    /// Takes the oldest queued event, without reading the socket.
    pub fn pop_event(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// The oldest queued event, left in the queue.
    pub fn peek_event(&self) -> Option<&Event> {
        self.queue.front()
    }

    /// Takes the oldest queued event that matches `pred`, leaving the others
    /// in order.
    pub fn take_event(&mut self, pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let index = self.queue.iter().position(pred)?;
        self.queue.remove(index)
    }

    /// The queued events, oldest first.
    pub fn queued_events(&self) -> impl Iterator<Item = &Event> {
        self.queue.iter()
    }

    /// The oldest event, reading the socket for up to `timeout` (forever
    /// with `None`) if none is queued. `Ok(None)` means the time ran out.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, SessionError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Ok(Some(ev));
            }
            if !self.read_events(deadline)? {
                return Ok(None);
            }
        }
    }

    /// The oldest event from `object`, reading the socket for up to the
    /// reply timeout if none is queued; events of other objects stay
    /// queued. Running out of time is [`SessionError::Timeout`].
    pub fn next_event_from<I: InterfaceType>(
        &mut self,
        object: ObjectId<I>,
    ) -> Result<Event, SessionError> {
        self.next_event_from_by(object, Deadline::after(self.reply_timeout))
    }

    /// [`Session::next_event_from`], ending at `deadline`.
    pub fn next_event_from_by<I: InterfaceType>(
        &mut self,
        object: ObjectId<I>,
        deadline: Deadline,
    ) -> Result<Event, SessionError> {
        loop {
            if let Some(ev) = self.take_event(|e| e.is_from(object)) {
                return Ok(ev);
            }
            if !self.read_events(Some(deadline.at()))? {
                return Err(SessionError::Timeout {
                    waiting_for: I::INTERFACE.name,
                    waited: deadline.timeout(),
                });
            }
        }
    }

    /// Flushes, waits until input arrives or `deadline` passes, then queues
    /// every complete event that came with one `recvmsg`. Returns
    /// `Ok(false)` if the deadline passed first.
    ///
    /// With everything flushed, the wait happens inside that `recvmsg`
    /// ([`Connection::recv_wait`]); with output still waiting for room, it
    /// is a `poll` for both directions.
    pub fn read_events(&mut self, deadline: Option<Instant>) -> Result<bool, SessionError> {
        let received = if !self.write_closed && self.try_flush()? == Flush::WouldBlock {
            // Wait for room or for input; either way come back here.
            let ready = self.wait(PollFlags::POLLOUT | PollFlags::POLLIN, deadline)?;
            if !ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                return Ok(!ready.is_empty());
            }
            self.conn.recv()
        } else {
            self.recv_until(deadline)
        };
        match received {
            Ok(Recv::Data(n)) => trace!("received {n} bytes"),
            // Readable but nothing there: a spurious wakeup; poll again.
            Ok(Recv::WouldBlock) if self.wait_ended_early(deadline) => {}
            Ok(Recv::WouldBlock) => return Ok(false),
            Err(ConnectionError::Closed) => {
                // Whatever arrived before the close is decoded already; a
                // wl_display.error among it has been returned.
                debug!("server closed the connection");
                return Err(SessionError::Closed);
            }
            Err(e) => return Err(SessionError::Connection(e)),
        }
        self.decode_all()?;
        Ok(true)
    }

    /// Blocking `recvmsg`s until something arrives or `deadline` passes
    /// (`Recv::WouldBlock`). The socket's receive timeout and signals end a
    /// wait early; the loop then waits again with the time left.
    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Recv, ConnectionError> {
        loop {
            match self.conn.recv_wait(deadline)? {
                Recv::WouldBlock if self.wait_ended_early(deadline) => continue,
                received => return Ok(received),
            }
        }
    }

    /// Whether `deadline` is still ahead (always, for `None`).
    fn wait_ended_early(&self, deadline: Option<Instant>) -> bool {
        !matches!(deadline, Some(d) if Instant::now() >= d)
    }

    fn try_flush(&mut self) -> Result<Flush, SessionError> {
        match self.conn.flush() {
            Ok(f) => Ok(f),
            // EPIPE: the server hung up, perhaps after a wl_display.error
            // that is still unread. Stop writing and let reading tell.
            Err(ConnectionError::Closed) => {
                debug!("server stopped reading; still draining its output");
                self.write_closed = true;
                Ok(Flush::Done)
            }
            Err(e) => Err(SessionError::Connection(e)),
        }
    }

    /// Polls the socket for `events`; returns what is ready (empty on timeout).
    fn wait(
        &self,
        events: PollFlags,
        deadline: Option<Instant>,
    ) -> Result<PollFlags, SessionError> {
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => poll_timeout(d.saturating_duration_since(Instant::now())),
            };
            let mut fds = [PollFd::new(self.conn.as_fd(), events)];
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(PollFlags::empty()),
                Ok(_) => return Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
                // A signal arrived: poll again with the time that is left.
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(SessionError::Poll(e.into())),
            }
        }
    }

    /// Decodes every complete message in the input buffer.
    fn decode_all(&mut self) -> Result<(), SessionError> {
        loop {
            let objects = &self.objects;
            let mut found = None;
            let next = self.conn.next_message(|h| {
                let info = objects
                    .get(h.sender)
                    .ok_or(SessionError::UnknownObject { id: h.sender })?;
                let desc = info.interface.event(h.opcode, info.version).map_err(|_| {
                    SessionError::UnknownEvent {
                        object: h.sender,
                        interface: info.interface.name,
                        opcode: h.opcode,
                    }
                })?;
                found = Some((*info, desc));
                Ok(desc)
            });
            let message = match next {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(NextError::Lookup(e)) => return Err(e),
                Err(NextError::Malformed(m)) => return Err(SessionError::Malformed(m)),
                Err(NextError::Decode(d)) => return Err(SessionError::Decode(d)),
                Err(NextError::Connection(e)) => return Err(SessionError::Connection(e)),
            };
            let (info, desc) = found.expect("lookup ran for a decoded message");
            if self.tracer.enabled() {
                self.tracer.trace(
                    Direction::Received,
                    info.interface,
                    message.sender,
                    desc,
                    &message.args,
                    &|id| objects.get(id).map(|o| o.interface.name),
                );
            }
            if message.sender == DISPLAY_ID {
                handle_display_event(&mut self.objects, message)?;
            } else if let Some(globals) = self
                .globals
                .as_mut()
                .filter(|g| g.is_registry(message.sender))
            {
                match wl_registry::Event::from_args(message.opcode, message.args) {
                    Ok(event) => globals.absorb(event),
                    // The codec checked the args against this table.
                    Err(e) => debug!("registry event dropped: {e}"),
                }
            } else {
                let event = Event::from_message(message, info.interface, desc);
                self.handle(event, info)?;
            }
        }
    }

    /// Handles `wl_display` events and server-created objects; queues the rest.
    fn handle(&mut self, event: Event, info: ObjectInfo) -> Result<(), SessionError> {
        if !info.alive {
            trace!(
                "dropping {}.{} for a zombie",
                info.interface.name,
                event.name()
            );
            return Ok(());
        }
        // Objects the server creates in an event (new_id arguments).
        for (id, iface) in event.new_ids() {
            let child = ObjectInfo {
                interface: iface,
                version: info.version.min(iface.version),
                alive: true,
            };
            // A server id the client destroyed and the server has
            // reused: the old object is gone for both sides.
            if matches!(self.objects.get(id), Some(o) if !o.alive && id >= SERVER_ID_START) {
                self.objects.remove(id);
            }
            if let Err(e) = self.objects.insert_at(id, child) {
                debug!("server-created id {id} refused: {e}");
                return Err(SessionError::UnknownObject { id });
            }
        }
        if event.desc().destructor {
            self.mark_dead(event.object);
        }
        self.queue.push_back(event);
        Ok(())
    }

    fn mark_dead(&mut self, id: u32) {
        if let Some(info) = self.objects.get_mut(id) {
            info.alive = false;
        }
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

/// `wl_display.error` ends the session; `delete_id` frees the id.
fn handle_display_event(
    objects: &mut ObjectMap<ObjectInfo>,
    message: Message<'_>,
) -> Result<(), SessionError> {
    let opcode = message.opcode;
    match wl_display::Event::from_args(opcode, message.args) {
        Ok(wl_display::Event::Error {
            object_id,
            code,
            message,
        }) => {
            let interface = objects
                .get(object_id)
                .map_or("unknown", |o| o.interface.name)
                .to_string();
            Err(SessionError::Protocol(ProtocolError {
                object: object_id,
                interface,
                code,
                message: message.to_string_lossy().into_owned(),
            }))
        }
        Ok(wl_display::Event::DeleteId { id }) => {
            if objects.remove(id).is_none() {
                debug!("delete_id for unknown id {id}");
            }
            Ok(())
        }
        Ok(wl_display::Event::__Unused(never, _)) => match never {},
        // The codec checked the args against this very table.
        Err(_) => Err(SessionError::UnknownEvent {
            object: DISPLAY_ID,
            interface: wl_display::INTERFACE.name,
            opcode,
        }),
    }
}

/// A poll timeout that rounds up to whole milliseconds, so that a
/// sub-millisecond remainder waits instead of spinning.
fn poll_timeout(left: Duration) -> PollTimeout {
    let millis = left.as_micros().div_ceil(1000);
    PollTimeout::try_from(millis.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}
