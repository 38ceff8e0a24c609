//! Decoding a client's requests and answering them: the core of the
//! protocol side of the server.
//!
//! This module knows interfaces, not sockets. It takes a [`Client`] whose
//! connection has already received bytes, decodes every complete message,
//! runs its handler, and queues the replies in the connection's
//! [`Outgoing`] half. It never calls `recvmsg` or `sendmsg`, never
//! disconnects anyone, and never panics on client input: every failure is
//! returned as a [`Stop`] for [`crate::server`] to act on.
//!
//! `wl_display` requests are handled here; `wl_registry` in
//! [`crate::globals`]; `wl_seat` and `wl_keyboard` in [`crate::seat`]; the
//! broker's interfaces in [`crate::broker`]; the clipboard's in
//! [`crate::clipboard`].
//!
//! # Implementation notes
//!
//! - Errors follow libwayland's server word for word where it has one:
//!   `invalid object N`, `invalid method N, object wl_x@N`, `invalid method N
//!   (since V < S), object wl_x@N`, `invalid arguments for wl_x@N.name`, all
//!   posted on `wl_display@1`. Bind errors are posted on the registry.
//! - A new id that the object map refuses (in use, in the server's range, or
//!   not the next free id) is `invalid_object` with `invalid new id N`.
//! - A request that the tables describe but no handler covers is a bug of
//!   ours, reported to the client as `implementation` rather than a panic.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::BorrowedFd;

use waypass_protocol::protocols::broker::{
    waypass_broker_v1, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::{wl_display, wl_keyboard, wl_registry, wl_seat};
use waypass_protocol::{
    Arg, ConnectionError, DecodeError, Direction, Header, Interface, LookupError, Message,
    MessageDesc, NextError, ObjectMap, Outgoing, Tracer,
};

use crate::broker::Broker;
use crate::cli::Settings;
use crate::client::{
    BrokerSession, Client, ClientKey, Creds, Object, DISPLAY_ID, MAX_FDS_IN_FLIGHT,
};
use crate::clipboard::{self, Clipboard};
use crate::keymap::Keymap;
use crate::{broker, globals, seat};

/// The longest `wl_display.error` message we send, in bytes: a message
/// quoting client strings must still fit in one 4096-byte message.
const MAX_ERROR_TEXT: usize = 1024;

/// Live objects one client may hold. Ids can only grow one at a time (the
/// `wl_map` no-gap rule), but a client can still create objects for ever
/// (e.g. registries, or inert broker objects), and each costs server
/// memory; past this it is disconnected with `no_memory`, as libwayland does
/// when its map cannot grow. Real clients of this server hold a handful.
pub const MAX_OBJECTS_PER_CLIENT: usize = 16_384;

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
    pub creds: Option<Creds>,
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
            let version = self.objects.get(id).map_or(0, |o| o.version());
            return Err(bug(format!(
                "{}@{id}: event {opcode} is not in version {version}",
                interface.name
            )));
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
        let version = match self.objects.get(id) {
            Some(object) => object.version(),
            None => return Err(bug(format!("{}@{id} is not a live object", interface.name))),
        };
        let desc = match interface.event(opcode, version) {
            Ok(desc) => desc,
            Err(LookupError::NotAtVersion { .. }) => return Ok(false),
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
        if self.tracer.enabled() {
            let objects = &*self.objects;
            self.tracer
                .trace(Direction::Sent, interface, id, desc, args, &|o| {
                    objects.get(o).map(|obj| obj.interface().name)
                });
        }
        self.out.send(id, opcode, desc, args).map_err(Stop::Queue)?;
        Ok(true)
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

/// A bug of ours, reported to the client as `implementation`.
fn bug(message: String) -> Stop {
    log::error!("bug: {message}");
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        message,
    ))
}

/// Why a header could not be matched to a request.
enum LookupFailure {
    UnknownObject(u32),
    Method(Header, Object, LookupError),
}

impl LookupFailure {
    fn into_error(self) -> ProtocolError {
        let code = wl_display::error::INVALID_METHOD;
        match self {
            LookupFailure::UnknownObject(id) => ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::INVALID_OBJECT,
                format!("invalid object {id}"),
            ),
            LookupFailure::Method(h, obj, LookupError::UnknownOpcode) => ProtocolError::new(
                DISPLAY_ID,
                code,
                format!(
                    "invalid method {}, object {}@{}",
                    h.opcode,
                    obj.interface().name,
                    h.sender
                ),
            ),
            LookupFailure::Method(h, obj, LookupError::NotAtVersion { since }) => {
                ProtocolError::new(
                    DISPLAY_ID,
                    code,
                    format!(
                        "invalid method {} (since {} < {since}), object {}@{}",
                        h.opcode,
                        obj.version(),
                        obj.interface().name,
                        h.sender
                    ),
                )
            }
        }
    }
}

/// Decodes and handles every complete message buffered in `client`'s
/// connection, queuing the replies. `Ok` means "wait for more bytes".
///
/// Channels brokered for other clients are left in `broker`
/// ([`Broker::take_deliveries`]) for the caller to hand over.
pub fn dispatch_pending(
    client: &mut Client,
    shared: &Shared,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
) -> Result<(), Stop> {
    let tracer = client.tracer;
    let (key, creds) = (client.key, client.creds);
    let session = &mut client.session;
    let objects = &mut client.objects;
    let (incoming, out) = client.conn.split();
    loop {
        let mut target: Option<(Header, Object, &'static MessageDesc)> = None;
        let next = incoming.next_message(|h| {
            let obj = *objects
                .get(h.sender)
                .ok_or(LookupFailure::UnknownObject(h.sender))?;
            let desc = obj
                .interface()
                .request(h.opcode, obj.version())
                .map_err(|e| LookupFailure::Method(*h, obj, e))?;
            target = Some((*h, obj, desc));
            Ok::<_, LookupFailure>(desc)
        });
        let msg = match next {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(NextError::Malformed(m)) => {
                return Err(ProtocolError::new(
                    DISPLAY_ID,
                    wl_display::error::INVALID_METHOD,
                    format!("invalid message: {m}"),
                )
                .into())
            }
            Err(NextError::Lookup(failure)) => return Err(failure.into_error().into()),
            Err(NextError::Decode(e)) => return Err(invalid_arguments(target, e).into()),
            // Fds sent with requests that take none (already closed).
            Err(NextError::Connection(e)) => {
                return Err(ProtocolError::new(
                    DISPLAY_ID,
                    wl_display::error::INVALID_METHOD,
                    format!("invalid fds: {e}"),
                )
                .into())
            }
        };
        let Some((_, obj, desc)) = target else {
            return Err(bug("a message was decoded without a lookup".into()));
        };
        if tracer.enabled() {
            let objects = &*objects;
            tracer.trace(
                Direction::Received,
                obj.interface(),
                msg.sender,
                desc,
                &msg.args,
                &|o| objects.get(o).map(|obj| obj.interface().name),
            );
        }
        let mut cx = Ctx {
            out,
            objects,
            tracer,
            shared,
            key,
            creds,
            session,
        };
        handle(&mut cx, broker, clipboard, obj, &msg)?;
    }
}

fn invalid_arguments(
    target: Option<(Header, Object, &MessageDesc)>,
    e: DecodeError,
) -> ProtocolError {
    let what = match e {
        DecodeError::NeedFds { .. } => "missing fd".to_string(),
        DecodeError::Malformed(m) => m.to_string(),
    };
    let message = match target {
        Some((h, obj, desc)) => format!(
            "invalid arguments for {}@{}.{}: {what}",
            obj.interface().name,
            h.sender,
            desc.name
        ),
        None => format!("invalid arguments: {what}"),
    };
    ProtocolError::new(DISPLAY_ID, wl_display::error::INVALID_METHOD, message)
}

/// Runs the handler of one decoded request.
fn handle(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
    obj: Object,
    msg: &Message<'_>,
) -> Result<(), Stop> {
    use Arg::{NewId, Str, Uint};
    let id = msg.sender;
    match (obj, msg.opcode, msg.args.as_slice()) {
        (Object::Display, wl_display::req::SYNC, [NewId(callback)]) => sync(cx, *callback),
        (Object::Display, wl_display::req::GET_REGISTRY, [NewId(registry)]) => {
            globals::get_registry(cx, *registry)
        }
        (
            Object::Registry,
            wl_registry::req::BIND,
            [Uint(name), Str(Some(iface)), Uint(version), NewId(new)],
        ) => globals::bind(cx, id, *name, iface, *version, *new),
        (Object::Seat { version }, wl_seat::req::GET_KEYBOARD, [NewId(keyboard)]) => {
            seat::get_keyboard(cx, *keyboard, version)
        }
        (Object::Seat { .. }, wl_seat::req::GET_POINTER, [NewId(_)]) => {
            Err(seat::missing_capability(id, "pointer").into())
        }
        (Object::Seat { .. }, wl_seat::req::GET_TOUCH, [NewId(_)]) => {
            Err(seat::missing_capability(id, "touch").into())
        }
        (Object::Seat { .. }, wl_seat::req::RELEASE, [])
        | (Object::Keyboard { .. }, wl_keyboard::req::RELEASE, [])
        | (Object::Broker, waypass_broker_v1::req::DESTROY, []) => cx.destroy(id),
        (Object::Broker, waypass_broker_v1::req::REGISTER, [NewId(new), Str(Some(name))]) => {
            broker::register(cx, broker, *new, name)
        }
        (Object::Broker, waypass_broker_v1::req::CONNECT, [NewId(new), Str(Some(name))]) => {
            broker::connect(cx, broker, *new, name)
        }
        (Object::Name, waypass_name_v1::req::WITHDRAW, []) => broker::withdraw(cx, broker, id),
        (Object::Connection, waypass_connection_v1::req::DESTROY, []) => {
            broker::destroy_connection(cx, id)
        }
        (
            Object::DataManager { .. }
            | Object::DataDevice { .. }
            | Object::DataSource { .. }
            | Object::DataOffer { .. },
            _,
            _,
        ) => clipboard::request(cx, clipboard, obj, msg),
        _ => Err(bug(format!(
            "no handler for {}@{id} opcode {}",
            obj.interface().name,
            msg.opcode
        ))),
    }
}

/// `wl_display.sync`: `done` at once, then `delete_id`.
fn sync(cx: &mut Ctx<'_>, callback: u32) -> Result<(), Stop> {
    use waypass_protocol::protocols::wayland::wl_callback;
    cx.create(callback, Object::Callback)?;
    let serial = cx.shared.next_serial();
    cx.send(
        callback,
        &wl_callback::INTERFACE,
        wl_callback::evt::DONE,
        &[Arg::Uint(serial)],
    )?;
    cx.destroy(callback)
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
