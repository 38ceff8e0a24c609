//! What a request handler works with: [`Ctx`] (one client's objects,
//! outgoing queue, identity, broker share and ledger account, plus the
//! server-wide [`Shared`] state and the [`World`] of other clients), and
//! the checks every event passes before it is queued.
//!
//! What it is not: a decoder ([`crate::proto::dispatch`] decodes) or a
//! socket: sending here only queues on a connection's [`Outgoing`] half,
//! and the runtime layer flushes. Events are typed: [`Ctx::send`] takes an
//! [`ObjectId<I>`](ObjectId) and `I`'s generated `Event`, so an event of
//! another interface, or with wrong arguments, does not compile. The
//! checks every event passes are here, once: the object is live, the
//! event exists at its bound version (the `since` of the typed event),
//! and the client has room for more fds in flight.
//!
//! # Implementation notes
//!
//! - **Other clients.** [`Ctx::with_other`] takes another client out of
//!   the table, gives the closure a [`Ctx`] of its own (with its caps set
//!   from its ledger share), settles its account afterwards and marks it
//!   for a flush. A failure to queue on it never stops the client being
//!   served: the other client is condemned ([`World::condemned`]) and the
//!   runtime disconnects it after the wakeup.
//! - **One body for every send.** The typed sends are thin generic
//!   wrappers that build the arguments on the stack and call one
//!   non-generic `queue`, so the queue's code is compiled once, not once
//!   per event type.
//! - **Ledger.** Objects are charged as they are created (the count is
//!   re-read from the object map first, so no removal path can leak a
//!   charge); fds in flight before each event that carries fds; output
//!   bytes through the per-wakeup cap the runtime sets, and settled after.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, OwnedFd};

use waypass_protocol::protocols::wayland::wl_display::{self, WlDisplay};
use waypass_protocol::{
    Arg, Credentials, Direction, Interface, InterfaceType, MessageDesc, NewId, ObjectId, ObjectMap,
    Outgoing, Tracer, TypedMessage, DISPLAY_ID,
};

use crate::config::Settings;
use crate::keymap::Keymap;
use crate::ledger::{Account, Ledger, OverBudget, Resource};
use crate::limits::Limits;
pub use crate::proto::stop::{bug, no_memory, over_budget, ProtocolError, Stop};
use crate::state::{BrokerSession, Client, ClientKey, Clients, Object};

/// `wl_display`, id 1: where `delete_id` and `error` come from.
pub const DISPLAY: ObjectId<WlDisplay> = ObjectId::from_raw(DISPLAY_ID);

/// The longest `wl_display.error` message we send, in bytes: a message
/// quoting client strings must still fit in one 4096-byte message.
const MAX_ERROR_TEXT: usize = 1024;

/// Server-wide state that request handlers read.
#[derive(Debug)]
pub struct Shared {
    /// The current keymap.
    pub keymap: Keymap,
    /// Repeat settings and seat name.
    pub settings: Settings,
    /// `settings.seat_name` as sent in `wl_seat.name`.
    pub seat_name: CString,
    /// Every limit, by name.
    pub limits: Limits,
    /// The interface of each extension global, by index
    /// ([`Object::interface`] reads it).
    pub extension_interfaces: Vec<&'static Interface>,
    /// The last serial handed out.
    serial: Cell<u32>,
}

impl Shared {
    /// Builds the shared state; fails if the seat name holds a NUL byte.
    pub fn new(
        keymap: Keymap,
        settings: Settings,
        limits: Limits,
    ) -> Result<Shared, std::ffi::NulError> {
        let seat_name = CString::new(settings.seat_name.clone())?;
        Ok(Shared {
            keymap,
            settings,
            seat_name,
            limits,
            extension_interfaces: Vec::new(),
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

/// The server-wide state a handler may touch besides its own client: the
/// other clients, the ledger, and the clients condemned meanwhile.
#[derive(Debug)]
pub struct World<'a> {
    /// Every other client (the one being served is taken out).
    pub clients: &'a mut Clients,
    /// The server's accounting.
    pub ledger: &'a mut Ledger,
    /// Other clients that could not take what was queued for them, with
    /// the reason: the runtime disconnects them after the wakeup.
    pub condemned: &'a mut Vec<(ClientKey, Stop)>,
}

impl World<'_> {
    /// The same world for a shorter borrow.
    pub fn reborrow(&mut self) -> World<'_> {
        World {
            clients: &mut *self.clients,
            ledger: &mut *self.ledger,
            condemned: &mut *self.condemned,
        }
    }
}

/// What a handler works with: the client's objects, outgoing queue,
/// identity, broker share and account, the server-wide state, and the
/// other clients.
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
    /// What the client holds, in the ledger.
    pub account: &'a mut Account,
    /// Everyone else.
    pub world: World<'a>,
}

impl<'a> Ctx<'a> {
    /// A context over `client`'s outgoing half, for queuing events outside
    /// of request dispatch (keymap reloads, errors, other clients).
    pub fn for_client(client: &'a mut Client, shared: &'a Shared, world: World<'a>) -> Ctx<'a> {
        Ctx {
            out: client.conn.split().1,
            objects: &mut client.objects,
            tracer: client.tracer,
            shared,
            key: client.key,
            creds: client.creds,
            session: &mut client.session,
            account: &mut client.account,
            world,
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
        account: &'a mut Account,
        world: World<'a>,
    ) -> Ctx<'a> {
        Ctx {
            out,
            objects,
            tracer,
            shared,
            key,
            creds,
            session,
            account,
            world,
        }
    }

    /// Runs `f` with a context of client `key` (not the one being
    /// served): its output cap set from its share, its account settled
    /// after, and the client marked for a flush. A [`Stop`] from `f` is
    /// the other client's: it is condemned, not this one. `None` if `key`
    /// has gone (or failed).
    pub fn with_other<R>(
        &mut self,
        key: ClientKey,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<R, Stop>,
    ) -> Option<R> {
        with_client(self.shared, &mut self.world, key, f)
    }

    /// Sets the output cap from the client's share of the output budget.
    pub fn open_output_cap(&mut self) {
        let queued = self.out.queued_bytes() as u64;
        self.world
            .ledger
            .set(self.account, Resource::OutputBytes, queued);
        let allowance = self
            .world
            .ledger
            .allowance(self.account, Resource::OutputBytes);
        self.out
            .set_max_bytes(usize::try_from(queued + allowance).unwrap_or(usize::MAX));
    }

    /// Records in the ledger the output queued and the fds in flight, as
    /// the queue counts them now.
    pub fn settle(&mut self) {
        let (bytes, fds) = (self.out.queued_bytes(), self.out.fds_in_flight());
        let ledger = &mut *self.world.ledger;
        ledger.set(self.account, Resource::OutputBytes, bytes as u64);
        ledger.set(self.account, Resource::FdsInFlight, fds as u64);
    }

    /// How much more of `resource` this client may take now.
    pub fn allowance(&mut self, resource: Resource) -> u64 {
        if resource == Resource::FdsInFlight {
            let fds = self.out.fds_in_flight() as u64;
            self.world.ledger.set(self.account, resource, fds);
        }
        self.world.ledger.allowance(self.account, resource)
    }

    /// Charges `amount` of `resource` to this client.
    pub fn charge(&mut self, resource: Resource, amount: u64) -> Result<(), OverBudget> {
        self.world.ledger.charge(self.account, resource, amount)
    }

    /// Gives back `amount` of `resource`.
    pub fn release(&mut self, resource: Resource, amount: u64) {
        self.world.ledger.release(self.account, resource, amount);
    }

    /// The client's uid (`u32::MAX` when `SO_PEERCRED` failed).
    pub fn uid(&self) -> u32 {
        crate::state::uid_of(self.creds)
    }

    /// The client for log lines, as [`Client::who`].
    pub fn who(&self) -> String {
        match self.creds {
            Some(c) => c.to_string(),
            None => "unknown peer".into(),
        }
    }

    /// Traces and queues `event` from object `id`.
    ///
    /// The event must exist at the object's bound version: sending one the
    /// client did not bind for is a bug of ours, reported as
    /// `implementation`. Use [`Ctx::send_if_supported`] for events that only
    /// some versions have.
    #[inline(always)]
    pub fn send<I: InterfaceType>(
        &mut self,
        id: ObjectId<I>,
        event: I::Event<'_, BorrowedFd<'_>>,
    ) -> Result<(), Stop> {
        let desc = event.desc();
        if !self.send_if_supported(id, event)? {
            return Err(self.not_at_version(id.raw(), I::INTERFACE, desc));
        }
        Ok(())
    }

    /// Like [`Ctx::send`], but an event that the object's bound version
    /// does not have is skipped (`Ok(false)`) instead of sent: the version
    /// rule comes from the event's `since` in the interface table, not from
    /// constants repeated here.
    #[inline(always)]
    pub fn send_if_supported<I: InterfaceType>(
        &mut self,
        id: ObjectId<I>,
        event: I::Event<'_, BorrowedFd<'_>>,
    ) -> Result<bool, Stop> {
        let desc = event.desc();
        event.with_args(|opcode, args| self.queue(id.raw(), I::INTERFACE, desc, opcode, args))
    }

    /// Checks, traces and queues one event with borrowed fds: the one
    /// non-generic body of every typed send, so that the queue's code is
    /// compiled into it once.
    fn queue(
        &mut self,
        id: u32,
        interface: &'static Interface,
        desc: &'static MessageDesc,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<bool, Stop> {
        if !self.check_event(id, interface, desc)? {
            return Ok(false);
        }
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
    pub fn send_owned<I: InterfaceType>(
        &mut self,
        id: ObjectId<I>,
        event: I::Event<'_, OwnedFd>,
    ) -> Result<(), Stop> {
        let desc = event.desc();
        if !self.check_event(id.raw(), I::INTERFACE, desc)? {
            return Err(self.not_at_version(id.raw(), I::INTERFACE, desc));
        }
        if self.tracer.enabled() {
            event.with_args(|_, args| self.trace(id.raw(), I::INTERFACE, desc, args));
        }
        let (opcode, args) = event.into_args();
        self.out
            .send_owned(id.raw(), opcode, desc, args)
            .map_err(Stop::Queue)
    }

    /// The checks every event passes before it is queued: `id` is a live
    /// object of `interface`, the event exists at its version (`false` if
    /// not), and the client has room for the event's fds.
    #[inline(always)]
    fn check_event(
        &mut self,
        id: u32,
        interface: &'static Interface,
        desc: &'static MessageDesc,
    ) -> Result<bool, Stop> {
        let Some(object) = self.objects.get(id) else {
            return Err(bug(format!("{}@{id} is not a live object", interface.name)));
        };
        // The id's type says the interface; the map agrees, unless a
        // handler built an id of the wrong type from a number.
        let extensions = &self.shared.extension_interfaces;
        debug_assert!(std::ptr::eq(object.interface(extensions), interface));
        if desc.since > object.version() {
            return Ok(false);
        }
        // Fds queued or unread as of the client's last refresh, plus what
        // was queued since: an upper bound (see `Client::refresh_in_flight`).
        let fds = desc.fd_count();
        if fds > 0 {
            let in_flight = self.out.fds_in_flight() as u64;
            let ledger = &mut *self.world.ledger;
            ledger.set(self.account, Resource::FdsInFlight, in_flight);
            ledger
                .charge(self.account, Resource::FdsInFlight, fds as u64)
                .map_err(over_budget)?;
        }
        Ok(true)
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
        let extensions = &self.shared.extension_interfaces;
        self.tracer
            .trace(Direction::Sent, interface, id, desc, args, &|o| {
                objects.get(o).map(|obj| obj.interface(extensions).name)
            });
    }

    /// The bug of sending an event the object's version does not have.
    #[cold]
    fn not_at_version(&self, id: u32, interface: &Interface, desc: &MessageDesc) -> Stop {
        let version = self.objects.get(id).map_or(0, |o| o.version());
        bug(format!(
            "{}@{id}: event {} is not in version {version}",
            interface.name, desc.name
        ))
    }

    /// Creates `object` at the client-chosen id `id`; returns its id.
    #[inline(always)]
    pub fn create<I>(&mut self, id: NewId<I>, object: Object) -> Result<ObjectId<I>, Stop> {
        self.create_raw(id.raw(), object)?;
        Ok(id.id())
    }

    /// [`Ctx::create`] by number, for objects whose interface is known
    /// only at run time (the clipboard's two flavors).
    #[inline]
    pub fn create_raw(&mut self, id: u32, object: Object) -> Result<(), Stop> {
        self.charge_object()?;
        self.objects.insert_at(id, object).map_err(|_| {
            ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::INVALID_OBJECT,
                format!("invalid new id {id}"),
            )
            .into()
        })
    }

    /// Creates `object` at a server-allocated id.
    pub fn allocate(&mut self, object: Object) -> Result<u32, Stop> {
        self.charge_object()?;
        self.objects
            .allocate(object)
            .ok_or_else(|| no_memory("no free server object id"))
    }

    /// Charges one more object, after re-reading the live count (every
    /// removal path gives its objects back this way).
    #[inline]
    fn charge_object(&mut self) -> Result<(), Stop> {
        let live = self.objects.len() as u64;
        let ledger = &mut *self.world.ledger;
        ledger.set(self.account, Resource::Objects, live);
        ledger
            .charge(self.account, Resource::Objects, 1)
            .map_err(over_budget)
    }

    /// Fds queued to this client, or sent and maybe not read yet, as of the
    /// last `Client::refresh_in_flight` (an upper bound).
    pub fn pending_fds(&self) -> usize {
        self.out.fds_in_flight()
    }

    /// Destroys client object `id` and tells the client with `delete_id`.
    #[inline(always)]
    pub fn destroy<I>(&mut self, id: ObjectId<I>) -> Result<(), Stop> {
        self.destroy_raw(id.raw())
    }

    /// [`Ctx::destroy`] by number, for objects whose interface is known
    /// only at run time (the clipboard's two flavors).
    #[inline(always)]
    pub fn destroy_raw(&mut self, id: u32) -> Result<(), Stop> {
        self.objects.remove(id);
        self.send(DISPLAY, wl_display::Event::DeleteId { id })
    }
}

/// Queues `wl_display.error` for `err`, as the last message to the client.
pub fn post_error(cx: &mut Ctx<'_>, err: &ProtocolError) -> Result<(), Stop> {
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
    cx.send(
        DISPLAY,
        wl_display::Event::Error {
            object_id: object,
            code: err.code,
            message: text.as_c_str(),
        },
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

/// Runs `f` with a context of client `key`, outside that client's own
/// wakeup: its output cap set from its share, its account settled after,
/// and the client marked for a flush. A [`Stop`] from `f` condemns that
/// client (in `world`). `None` if `key` has gone, is cut off, or failed.
pub fn with_client<R>(
    shared: &Shared,
    world: &mut World<'_>,
    key: ClientKey,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<R, Stop>,
) -> Option<R> {
    let mut other = world.clients.take(key)?;
    if other.cut_off {
        world.clients.restore(other);
        return None;
    }
    // What it has read since its last wakeup no longer counts (one
    // `ioctl`, only while fds may be unread).
    other.refresh_in_flight();
    let result = {
        let mut cx = Ctx::for_client(&mut other, shared, world.reborrow());
        cx.open_output_cap();
        let result = f(&mut cx);
        cx.settle();
        result
    };
    world.clients.restore_marked(other);
    match result {
        Ok(r) => Some(r),
        Err(stop) => {
            world.condemned.push((key, stop));
            None
        }
    }
}

#[cfg(test)]
mod tests;
