//! What a request handler works with: [`Ctx`] (one client's objects,
//! outgoing queue, identity and broker share, plus the server-wide
//! [`Shared`] state), and how a handler says the client must go ([`Stop`],
//! [`ProtocolError`]).
//!
//! What it is not: a decoder ([`crate::proto::dispatch`] decodes) or a
//! socket: sending here only queues on the connection's [`Outgoing`] half,
//! and the runtime layer flushes. The checks every event passes are here,
//! once: the object is live, the event exists at its bound version, and
//! the client has room for more fds in flight.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{
    Arg, ConnectionError, Credentials, Direction, Interface, LookupError, MessageDesc, ObjectMap,
    Outgoing, Tracer, DISPLAY_ID,
};

use crate::config::{Settings, MAX_FDS_IN_FLIGHT, MAX_OBJECTS_PER_CLIENT};
use crate::keymap::Keymap;
use crate::state::{BrokerSession, Client, ClientKey, Object};

/// The longest `wl_display.error` message we send, in bytes: a message
/// quoting client strings must still fit in one 4096-byte message.
const MAX_ERROR_TEXT: usize = 1024;

/// A protocol error to post with `wl_display.error` before disconnecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The object the error is about.
    pub object: u32,
    /// The error code, in the object's interface's `error` enum.
    pub code: u32,
    /// A human-readable description.
    pub message: String,
}

impl ProtocolError {
    /// An error about `object` with `code` and `message`.
    pub fn new(object: u32, code: u32, message: impl Into<String>) -> Self {
        ProtocolError {
            object,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error {} on object {}: {}",
            self.code, self.object, self.message
        )
    }
}

/// Why dispatching stopped and the client must go.
#[derive(Debug)]
pub enum Stop {
    /// The client broke the protocol: post the error, flush, disconnect.
    Protocol(ProtocolError),
    /// The server could not serve the client (e.g. no fd left for its
    /// keymap): post the error, flush, disconnect, and tell the operator.
    Server(ProtocolError),
    /// Queuing a reply failed: over the outgoing cap (the client does not
    /// read) or a local failure. Nothing more can be sent.
    Queue(ConnectionError),
}

impl std::error::Error for ProtocolError {}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Self {
        Stop::Protocol(e)
    }
}

/// Server-wide state that request handlers read.
#[derive(Debug)]
pub struct Shared {
    /// The current keymap.
    pub keymap: Keymap,
    /// Repeat settings and seat name.
    pub settings: Settings,
    /// `settings.seat_name` as sent in `wl_seat.name`.
    pub seat_name: CString,
    /// The last serial handed out.
    serial: Cell<u32>,
}

impl Shared {
    /// Builds the shared state; fails if the seat name holds a NUL byte.
    pub fn new(keymap: Keymap, settings: Settings) -> Result<Shared, std::ffi::NulError> {
        let seat_name = CString::new(settings.seat_name.clone())?;
        Ok(Shared {
            keymap,
            settings,
            seat_name,
            serial: Cell::new(0),
        })
    }

    /// The next serial (wrapping, as libwayland's).
    pub fn next_serial(&self) -> u32 {
        let serial = self.serial.get().wrapping_add(1);
        self.serial.set(serial);
        serial
    }
}

/// What a handler works with: the client's objects, outgoing queue,
/// identity and broker share, and the server-wide state.
pub struct Ctx<'a> {
    out: &'a mut Outgoing,
    /// The client's live objects.
    pub objects: &'a mut ObjectMap<Object>,
    tracer: Tracer,
    /// Server-wide state.
    pub shared: &'a Shared,
    /// The client's key in the server's table.
    pub key: ClientKey,
    /// The client's credentials.
    pub creds: Option<Credentials>,
    /// The client's broker names and connection count.
    pub session: &'a mut BrokerSession,
}

impl<'a> Ctx<'a> {
    /// A context over `client`'s outgoing half, for queuing events outside
    /// of request dispatch (keymap reloads, errors).
    pub fn for_client(client: &'a mut Client, shared: &'a Shared) -> Ctx<'a> {
        Ctx {
            out: client.conn.split().1,
            objects: &mut client.objects,
            tracer: client.tracer,
            shared,
            key: client.key,
            creds: client.creds,
            session: &mut client.session,
        }
    }

    /// A context over the parts of a client that dispatch has split apart
    /// (its connection's outgoing half, borrowed beside the incoming one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        out: &'a mut Outgoing,
        objects: &'a mut ObjectMap<Object>,
        tracer: Tracer,
        shared: &'a Shared,
        key: ClientKey,
        creds: Option<Credentials>,
        session: &'a mut BrokerSession,
    ) -> Ctx<'a> {
        Ctx {
            out,
            objects,
            tracer,
            shared,
            key,
            creds,
            session,
        }
    }

    /// The client for log lines, as [`Client::who`].
    pub fn who(&self) -> String {
        match self.creds {
            Some(c) => c.to_string(),
            None => "unknown peer".into(),
        }
    }

    /// Traces and queues event `opcode` of `interface` from object `id`.
    ///
    /// The event must exist at the object's bound version: sending one the
    /// client did not bind for is a bug of ours, reported as
    /// `implementation`. Use [`Ctx::send_if_supported`] for events that only
    /// some versions have.
    pub fn send(
        &mut self,
        id: u32,
        interface: &'static Interface,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), Stop> {
        if !self.send_if_supported(id, interface, opcode, args)? {
            return Err(self.not_at_version(id, interface, opcode));
        }
        Ok(())
    }

    /// Like [`Ctx::send`], but an event that the object's bound version
    /// does not have is skipped (`Ok(false)`) instead of sent: the version
    /// rule comes from the interface table's `since`, not from constants
    /// repeated here.
    pub fn send_if_supported(
        &mut self,
        id: u32,
        interface: &'static Interface,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<bool, Stop> {
        let Some(desc) = self.check_event(id, interface, opcode, args)? else {
            return Ok(false);
        };
        if self.tracer.enabled() {
            self.trace(id, interface, desc, args);
        }
        self.out.send(id, opcode, desc, args).map_err(Stop::Queue)?;
        Ok(true)
    }

    /// Like [`Ctx::send`], for fds that are ours to give away (a fresh
    /// keymap open, a brokered channel end, a forwarded paste fd): the
    /// queue takes them as they are, with no `dup`, and closes them once
    /// sent. Refused, they close here. They count as fds in flight as
    /// [`Ctx::send`]'s do.
    pub fn send_owned(
        &mut self,
        id: u32,
        interface: &'static Interface,
        opcode: u16,
        args: Vec<Arg<'_, OwnedFd>>,
    ) -> Result<(), Stop> {
        let Some(desc) = self.check_event(id, interface, opcode, &args)? else {
            return Err(self.not_at_version(id, interface, opcode));
        };
        if self.tracer.enabled() {
            let view: Vec<Arg<'_, BorrowedFd<'_>>> = args.iter().map(borrow_arg).collect();
            self.trace(id, interface, desc, &view);
        }
        self.out
            .send_owned(id, opcode, desc, args)
            .map_err(Stop::Queue)
    }

    /// The checks every event passes before it is queued: `id` is live,
    /// the event exists (`None` if not at the object's version), and the
    /// client has room for its fds.
    fn check_event<Fd>(
        &self,
        id: u32,
        interface: &'static Interface,
        opcode: u16,
        args: &[Arg<'_, Fd>],
    ) -> Result<Option<&'static MessageDesc>, Stop> {
        let version = match self.objects.get(id) {
            Some(object) => object.version(),
            None => return Err(bug(format!("{}@{id} is not a live object", interface.name))),
        };
        let desc = match interface.event(opcode, version) {
            Ok(desc) => desc,
            Err(LookupError::NotAtVersion { .. }) => return Ok(None),
            Err(LookupError::UnknownOpcode) => {
                return Err(bug(format!(
                    "{}.event {opcode} does not exist",
                    interface.name
                )))
            }
        };
        // Fds queued or unread as of the client's last refresh, plus what
        // was queued since: an upper bound (see `Client::refresh_in_flight`).
        let fds = args.iter().filter(|a| matches!(a, Arg::Fd(_))).count();
        let in_flight = self.out.fds_in_flight();
        if fds > 0 && in_flight + fds > MAX_FDS_IN_FLIGHT {
            return Err(ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::NO_MEMORY,
                format!(
                    "too many fds in flight: {in_flight} sent and not read \
                     (the limit is {MAX_FDS_IN_FLIGHT})"
                ),
            )
            .into());
        }
        Ok(Some(desc))
    }

    /// `WAYLAND_DEBUG=server`: one line per event sent. Callers check
    /// `self.tracer.enabled()` first, off the hot path.
    #[cold]
    fn trace(
        &self,
        id: u32,
        interface: &'static Interface,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) {
        let objects = &*self.objects;
        self.tracer
            .trace(Direction::Sent, interface, id, desc, args, &|o| {
                objects.get(o).map(|obj| obj.interface().name)
            });
    }

    /// The bug of sending an event the object's version does not have.
    fn not_at_version(&self, id: u32, interface: &Interface, opcode: u16) -> Stop {
        let version = self.objects.get(id).map_or(0, |o| o.version());
        bug(format!(
            "{}@{id}: event {opcode} is not in version {version}",
            interface.name
        ))
    }

    /// Creates `object` at the client-chosen id `id`.
    pub fn create(&mut self, id: u32, object: Object) -> Result<(), Stop> {
        if self.objects.len() >= MAX_OBJECTS_PER_CLIENT {
            return Err(ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::NO_MEMORY,
                format!("too many objects (the limit is {MAX_OBJECTS_PER_CLIENT})"),
            )
            .into());
        }
        self.objects.insert_at(id, object).map_err(|_| {
            ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::INVALID_OBJECT,
                format!("invalid new id {id}"),
            )
            .into()
        })
    }

    /// Fds queued to this client, or sent and maybe not read yet, as of the
    /// last `Client::refresh_in_flight` (an upper bound).
    pub fn pending_fds(&self) -> usize {
        self.out.fds_in_flight()
    }

    /// Destroys client object `id` and tells the client with `delete_id`.
    pub fn destroy(&mut self, id: u32) -> Result<(), Stop> {
        self.objects.remove(id);
        self.send(
            DISPLAY_ID,
            &wl_display::INTERFACE,
            wl_display::evt::DELETE_ID,
            &[Arg::Uint(id)],
        )
    }
}

/// A view of an owned-fd argument with its fd borrowed, for tracing.
fn borrow_arg<'a>(arg: &'a Arg<'_, OwnedFd>) -> Arg<'a, BorrowedFd<'a>> {
    match arg {
        Arg::Int(v) => Arg::Int(*v),
        Arg::Uint(v) => Arg::Uint(*v),
        Arg::Fixed(v) => Arg::Fixed(*v),
        Arg::Str(v) => Arg::Str(*v),
        Arg::Object(v) => Arg::Object(*v),
        Arg::NewId(v) => Arg::NewId(*v),
        Arg::Array(v) => Arg::Array(v),
        Arg::Fd(fd) => Arg::Fd(fd.as_fd()),
    }
}

/// A bug of ours, reported to the client as `implementation`.
pub(crate) fn bug(message: String) -> Stop {
    log::error!("bug: {message}");
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        message,
    ))
}

/// Queues `wl_display.error` for `err`, as the last message to the client.
pub fn post_error(client: &mut Client, shared: &Shared, err: &ProtocolError) -> Result<(), Stop> {
    let mut text = err.message.replace('\0', "\u{fffd}");
    if text.len() > MAX_ERROR_TEXT {
        let mut end = MAX_ERROR_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    let text = CString::new(text).unwrap_or_default();
    // `object` must not be null on the wire; errors never name id 0, but
    // a bug must not turn into an encode failure.
    let object = if err.object == 0 {
        DISPLAY_ID
    } else {
        err.object
    };
    Ctx::for_client(client, shared).send(
        DISPLAY_ID,
        &wl_display::INTERFACE,
        wl_display::evt::ERROR,
        &[
            Arg::Object(object),
            Arg::Uint(err.code),
            Arg::Str(Some(text.as_c_str())),
        ],
    )
}

/// A C string of an interface name, for `wl_registry.global`.
pub fn interface_name(interface: &Interface) -> CString {
    // Interface names come from our own tables and never hold a NUL.
    CString::new(interface.name).unwrap_or_default()
}

/// Whether `s` equals `name` byte for byte.
pub fn c_str_is(s: &CStr, name: &str) -> bool {
    s.to_bytes() == name.as_bytes()
}

#[cfg(test)]
mod tests;
