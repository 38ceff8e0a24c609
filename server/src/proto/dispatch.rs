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
//! - A request that the tables describe but no handler covers is a bug of
//!   ours, reported to the client as `implementation` rather than a panic.

use waypass_protocol::protocols::broker::{
    waypass_broker_v1, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::{
    wl_callback, wl_display, wl_keyboard, wl_registry, wl_seat,
};
use waypass_protocol::{
    Arg, DecodeError, Direction, Header, LookupError, Message, MessageDesc, NextError, DISPLAY_ID,
};

use crate::proto::broker::{self, Broker};
use crate::proto::clipboard::{self, Clipboard};
use crate::proto::ctx::{bug, Ctx, ProtocolError, Shared, Stop, World};
use crate::proto::{globals, seat};
use crate::state::{Client, Object};

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
            // A lookup failure of a later protocol crate.
            LookupFailure::Method(h, obj, e) => ProtocolError::new(
                DISPLAY_ID,
                code,
                format!(
                    "invalid method {}, object {}@{}: {e}",
                    h.opcode,
                    obj.interface().name,
                    h.sender
                ),
            ),
        }
    }
}

/// Decodes and handles every complete message buffered in `client`'s
/// connection, queuing the replies, on it or (brokered channels,
/// clipboard events) on the other clients in `world`. `Ok` means "wait for
/// more bytes".
pub fn dispatch_pending(
    client: &mut Client,
    shared: &Shared,
    world: &mut World<'_>,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
) -> Result<(), Stop> {
    let tracer = client.tracer;
    let (key, creds) = (client.key, client.creds);
    let session = &mut client.session;
    let account = &mut client.account;
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
        let world = world.reborrow();
        let mut cx = Ctx::from_parts(
            out, objects, tracer, shared, key, creds, session, account, world,
        );
        handle(&mut cx, broker, clipboard, obj, msg)?;
    }
}

fn invalid_arguments(
    target: Option<(Header, Object, &MessageDesc)>,
    e: DecodeError,
) -> ProtocolError {
    let what = match e {
        DecodeError::NeedFds { .. } => "missing fd".to_string(),
        DecodeError::Malformed(m) => m.to_string(),
        other => other.to_string(),
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
    msg: Message<'_>,
) -> Result<(), Stop> {
    use Arg::{NewId, Str, Uint};
    if let Object::DataManager { .. }
    | Object::DataDevice { .. }
    | Object::DataSource { .. }
    | Object::DataOffer { .. } = obj
    {
        // The clipboard takes the message whole: a `receive` fd is moved
        // on to the copying client, not duplicated.
        return clipboard::request(cx, clipboard, obj, msg);
    }
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
        ) => globals::bind(cx, clipboard, id, *name, iface, *version, *new),
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
        _ => Err(bug(format!(
            "no handler for {}@{id} opcode {}",
            obj.interface().name,
            msg.opcode
        ))),
    }
}

/// `wl_display.sync`: `done` at once, then `delete_id`.
fn sync(cx: &mut Ctx<'_>, callback: u32) -> Result<(), Stop> {
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
