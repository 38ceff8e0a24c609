//! Decoding a client's requests and answering them: the core of the
//! protocol side of the server.
//!
//! This module knows interfaces, not sockets. It takes a [`Client`] whose
//! connection has already received bytes, decodes every complete message,
//! runs its handler, and queues the replies in the connection's
//! [`Outgoing`](waypass_protocol::Outgoing) half. It never calls `recvmsg` or `sendmsg`, never
//! disconnects anyone, and never panics on client input: every failure is
//! returned as a [`Stop`] for the runtime layer ([`crate::runtime`]) to act on.
//!
//! `wl_display` requests are handled here; `wl_registry` in
//! [`crate::proto::globals`]; `wl_seat` and `wl_keyboard` in [`crate::proto::seat`]; the
//! broker's interfaces in [`crate::proto::broker`]; the clipboard's in
//! [`crate::proto::clipboard`].
//!
//! # Implementation notes
//!
//! - Errors follow libwayland's server word for word where it has one:
//!   `invalid object N`, `invalid method N, object wl_x@N`, `invalid method N
//!   (since V < S), object wl_x@N`, `invalid arguments for wl_x@N.name`, all
//!   posted on `wl_display@1`. Bind errors are posted on the registry.
//! - A new id that the object map refuses (in use, in the server's range, or
//!   not the next free id) is `invalid_object` with `invalid new id N`.
//! - **Typed requests.** Each object's interface picks the generated
//!   `Request` enum its message parses into, and the interface's handler
//!   is one exhaustive `match` over it: a request the tables describe and
//!   no handler covers does not compile. (The clipboard's two flavors
//!   parse into one set of enums first, in [`crate::proto::clipboard::flavor`].)
//!   Parsing cannot fail on what the codec decoded against the same
//!   table; if it did, that is a bug of ours, reported to the client as
//!   `implementation` in one place (`mismatch`), never a panic.
//! - **The hot path** is `wl_display.sync`: decode, create the callback,
//!   `done`, `delete_id`. `dispatch_pending` is kept out of line so that
//!   the decoder and `handle` inline into it, and `parse` takes each
//!   argument out of its slot instead of moving the argument array into an
//!   iterator (callgrind counts both, see BENCHMARKS.md).

use std::os::fd::OwnedFd;

use waypass_protocol::protocols::wayland::wl_callback::{self, WlCallback};
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{
    Arg, ArgsMismatch, DecodeError, Direction, Header, Interface, LookupError, Message,
    MessageDesc, NewId, NextError, ObjectId, TypedMessage, DISPLAY_ID,
};

use crate::proto::broker::{self, Broker};
use crate::proto::clipboard::{self, flavor, Clipboard};
use crate::proto::ctx::{bug, Ctx, ProtocolError, Shared, Stop, World};
use crate::proto::extension::Extensions;
use crate::proto::{globals, seat};
use crate::state::{Client, Object};

/// Why a header could not be matched to a request.
enum LookupFailure {
    UnknownObject(u32),
    /// The header, the object's interface and version, and why.
    Method(Header, &'static Interface, u32, LookupError),
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
            LookupFailure::Method(h, iface, _, LookupError::UnknownOpcode) => ProtocolError::new(
                DISPLAY_ID,
                code,
                format!(
                    "invalid method {}, object {}@{}",
                    h.opcode, iface.name, h.sender
                ),
            ),
            LookupFailure::Method(h, iface, version, LookupError::NotAtVersion { since }) => {
                ProtocolError::new(
                    DISPLAY_ID,
                    code,
                    format!(
                        "invalid method {} (since {version} < {since}), object {}@{}",
                        h.opcode, iface.name, h.sender
                    ),
                )
            }
            // A lookup failure of a later protocol crate.
            LookupFailure::Method(h, iface, _, e) => ProtocolError::new(
                DISPLAY_ID,
                code,
                format!(
                    "invalid method {}, object {}@{}: {e}",
                    h.opcode, iface.name, h.sender
                ),
            ),
        }
    }
}

/// Decodes and handles every complete message buffered in `client`'s
/// connection, queuing the replies, on it or (brokered channels,
/// clipboard events) on the other clients in `world`. `Ok` means "wait for
/// more bytes".
///
/// Kept out of its caller: the decoder and the handlers inline here, the
/// hot path of every request (see BENCHMARKS.md's instruction count).
#[inline(never)]
pub fn dispatch_pending(
    client: &mut Client,
    shared: &Shared,
    world: &mut World<'_>,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
    extensions: &mut Extensions,
) -> Result<(), Stop> {
    let tracer = client.tracer;
    let extension_interfaces = &shared.extension_interfaces[..];
    let (key, creds) = (client.key, client.creds);
    let session = &mut client.session;
    let account = &mut client.account;
    let objects = &mut client.objects;
    let (incoming, out) = client.conn.split();
    loop {
        let mut target: Option<(Header, Object, &'static Interface, &'static MessageDesc)> = None;
        let next = incoming.next_message(|h| {
            let obj = *objects
                .get(h.sender)
                .ok_or(LookupFailure::UnknownObject(h.sender))?;
            let iface = obj.interface(extension_interfaces);
            let desc = iface
                .request(h.opcode, obj.version())
                .map_err(|e| LookupFailure::Method(*h, iface, obj.version(), e))?;
            target = Some((*h, obj, iface, desc));
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
        let Some((_, obj, iface, desc)) = target else {
            return Err(bug("a message was decoded without a lookup".into()));
        };
        if tracer.enabled() {
            let objects = &*objects;
            tracer.trace(
                Direction::Received,
                iface,
                msg.sender,
                desc,
                &msg.args,
                &|o| {
                    let obj = objects.get(o)?;
                    Some(obj.interface(extension_interfaces).name)
                },
            );
        }
        let world = world.reborrow();
        let mut cx = Ctx::from_parts(
            out, objects, tracer, shared, key, creds, session, account, world,
        );
        handle(&mut cx, broker, clipboard, extensions, obj, msg)?;
    }
}

fn invalid_arguments(
    target: Option<(Header, Object, &'static Interface, &MessageDesc)>,
    e: DecodeError,
) -> ProtocolError {
    let what = match e {
        DecodeError::NeedFds { .. } => "missing fd".to_string(),
        DecodeError::Malformed(m) => m.to_string(),
        other => other.to_string(),
    };
    let message = match target {
        Some((h, _, iface, desc)) => format!(
            "invalid arguments for {}@{}.{}: {what}",
            iface.name, h.sender, desc.name
        ),
        None => format!("invalid arguments: {what}"),
    };
    ProtocolError::new(DISPLAY_ID, wl_display::error::INVALID_METHOD, message)
}

/// Runs the handler of one decoded request: the object's interface picks
/// the typed request the message parses into, and its handler.
#[inline(always)]
fn handle(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
    extensions: &mut Extensions,
    obj: Object,
    msg: Message<'_>,
) -> Result<(), Stop> {
    let id = msg.sender;
    match obj {
        Object::Display => display(cx, extensions, parse(msg)?),
        // No requests: the lookup refused every opcode already.
        Object::Callback => match parse::<wl_callback::Request>(msg)? {},
        Object::Registry => {
            let registry = ObjectId::from_raw(id);
            globals::request(cx, clipboard, extensions, registry, parse(msg)?)
        }
        Object::Seat { version } => seat::seat(cx, ObjectId::from_raw(id), version, parse(msg)?),
        Object::Keyboard { .. } => seat::keyboard(cx, ObjectId::from_raw(id), parse(msg)?),
        Object::Broker => broker::broker(cx, broker, ObjectId::from_raw(id), parse(msg)?),
        Object::Name => broker::name(cx, broker, ObjectId::from_raw(id), parse(msg)?),
        Object::Connection => broker::connection(cx, ObjectId::from_raw(id), parse(msg)?),
        Object::DataManager { flavor, version } => {
            let request = flavor::manager(flavor, msg).map_err(mismatch)?;
            clipboard::manager(cx, clipboard, id, flavor, version, request)
        }
        Object::DataDevice { flavor, .. } => {
            let request = flavor::device(flavor, msg).map_err(mismatch)?;
            clipboard::device(cx, clipboard, id, request)
        }
        Object::DataSource { flavor, .. } => {
            let request = flavor::source(flavor, msg).map_err(mismatch)?;
            clipboard::source(cx, clipboard, id, request)
        }
        Object::DataOffer { flavor, .. } => {
            let request = flavor::offer(flavor, msg).map_err(mismatch)?;
            clipboard::offer(cx, clipboard, id, request)
        }
        Object::Extension { index, version, .. } => extensions.request(cx, index, id, version, msg),
    }
}

/// `msg` as the typed request of its object's interface.
#[inline]
fn parse<'a, R: TypedMessage<'a, OwnedFd>>(mut msg: Message<'a>) -> Result<R, Stop> {
    // Each argument is taken out of its slot (which keeps a placeholder
    // that owns nothing) rather than the inline array moved into an
    // iterator: fewer copies on the hot path. Fds left over close with
    // `msg`.
    let args = msg
        .args
        .iter_mut()
        .map(|arg| std::mem::replace(arg, Arg::Int(0)));
    R::from_args(msg.opcode, args).map_err(mismatch)
}

/// Arguments that do not make the typed request: the codec checked them
/// against the same table, so this is a bug of ours.
#[cold]
fn mismatch(e: ArgsMismatch) -> Stop {
    bug(e.to_string())
}

/// The requests of `wl_display`.
#[inline]
fn display(
    cx: &mut Ctx<'_>,
    extensions: &Extensions,
    request: wl_display::Request<'_>,
) -> Result<(), Stop> {
    match request {
        wl_display::Request::Sync { callback } => sync(cx, callback),
        wl_display::Request::GetRegistry { registry } => {
            globals::get_registry(cx, extensions, registry)
        }
    }
}

/// `wl_display.sync`: `done` at once, then `delete_id`.
#[inline]
fn sync(cx: &mut Ctx<'_>, callback: NewId<WlCallback>) -> Result<(), Stop> {
    let callback = cx.create(callback, Object::Callback)?;
    let callback_data = cx.shared.next_serial();
    cx.send(callback, wl_callback::Event::Done { callback_data })?;
    cx.destroy(callback)
}
