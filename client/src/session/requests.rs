//! The requests of [`Session`]: new ids, typed sends, and the three
//! requests every client makes (`get_registry`, `bind`, `sync`).
//!
//! What it is: the send path, from a typed request (the scanner's
//! `Request` enum of the object's interface) through its arguments on the
//! stack to the connection's queue, with the object checked live, of the
//! right interface, and at a version that has the request. What it is
//! not: the reading side ([`super`]) or the flushing of the queue.

use std::os::fd::BorrowedFd;

use waypass_protocol::protocols::wayland::wl_callback::WlCallback;
use waypass_protocol::protocols::wayland::wl_display::{self, WlDisplay};
use waypass_protocol::protocols::wayland::wl_registry::{self, WlRegistry};
use waypass_protocol::{
    AnyNewId, Arg, Direction, Interface, InterfaceType, NewId, ObjectId, TypedMessage,
};

use super::{ObjectInfo, Session, DISPLAY_ID};
use crate::error::SessionError;

impl Session {
    /// Allocates a client id for a new object of interface `I` at
    /// `version`, to pass as the `new_id` of the request that creates it.
    /// [`SessionError::NoFreeId`] if every id up to
    /// [`waypass_protocol::MAX_CLIENT_ID`] is live.
    pub fn new_object<I: InterfaceType>(&mut self, version: u32) -> Result<NewId<I>, SessionError> {
        let id = self.allocate(I::INTERFACE, version)?;
        Ok(NewId::from_raw(id))
    }

    /// A new client id for an object of `interface`: for the clipboard,
    /// whose twin protocols share one set of typed messages.
    pub(crate) fn allocate(
        &mut self,
        interface: &'static Interface,
        version: u32,
    ) -> Result<u32, SessionError> {
        let info = ObjectInfo {
            interface,
            version,
            alive: true,
        };
        self.objects.allocate(info).ok_or(SessionError::NoFreeId)
    }

    /// Queues `request` on `object`. A destructor request makes the object
    /// a zombie until the server's `delete_id`. The object must be live
    /// and of interface `I` ([`SessionError::NoSuchObject`]), and the
    /// request must exist at its version ([`SessionError::UnknownRequest`]).
    pub fn send<I: InterfaceType>(
        &mut self,
        object: ObjectId<I>,
        request: I::Request<'_, BorrowedFd<'_>>,
    ) -> Result<(), SessionError> {
        match self.objects.get(object.raw()) {
            Some(info) if info.interface.name == I::INTERFACE.name => {}
            _ => return Err(SessionError::NoSuchObject { id: object.raw() }),
        }
        self.send_as::<I>(object.raw(), request)
    }

    /// [`Session::send`] to an object whose interface has the same
    /// requests as `I`, the check left to the object's own table (the
    /// twin data-control protocols).
    pub(crate) fn send_as<I: InterfaceType>(
        &mut self,
        object: u32,
        request: I::Request<'_, BorrowedFd<'_>>,
    ) -> Result<(), SessionError> {
        request.with_args(|opcode, args| self.send_args(object, opcode, args))
    }

    fn send_args(
        &mut self,
        object: u32,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), SessionError> {
        let info = match self.objects.get(object) {
            Some(info) if info.alive => *info,
            _ => return Err(SessionError::NoSuchObject { id: object }),
        };
        let desc = info.interface.request(opcode, info.version).map_err(|_| {
            SessionError::UnknownRequest {
                object,
                interface: info.interface.name,
                opcode,
            }
        })?;
        if self.tracer.enabled() {
            let objects = &self.objects;
            self.tracer
                .trace(Direction::Sent, info.interface, object, desc, args, &|id| {
                    objects.get(id).map(|o| o.interface.name)
                });
        }
        self.conn
            .send(object, opcode, desc, args)
            .map_err(SessionError::Connection)?;
        if desc.destructor {
            self.mark_dead(object);
        }
        Ok(())
    }

    /// Sends `wl_display.get_registry`; returns the registry's id. Its
    /// events are queued for the caller; [`Session::globals`] reads them
    /// through a registry of the session's own instead.
    pub fn get_registry(&mut self) -> Result<ObjectId<WlRegistry>, SessionError> {
        let registry = self.new_object::<WlRegistry>(1)?;
        let request = wl_display::Request::GetRegistry { registry };
        self.send(ObjectId::<WlDisplay>::from_raw(DISPLAY_ID), request)?;
        Ok(registry.id())
    }

    /// Sends `wl_registry.bind` for global `name` at `version`; returns the
    /// new object's id.
    pub fn bind<I: InterfaceType>(
        &mut self,
        registry: ObjectId<WlRegistry>,
        name: u32,
        version: u32,
    ) -> Result<ObjectId<I>, SessionError> {
        let id = self.new_object::<I>(version)?;
        let interface =
            std::ffi::CString::new(I::INTERFACE.name).expect("interface names have no NUL");
        let bind = wl_registry::Request::Bind {
            name,
            id: AnyNewId {
                interface: &interface,
                version,
                id: id.raw(),
            },
        };
        self.send(registry, bind)?;
        Ok(id.id())
    }

    /// Sends `wl_display.sync`; returns the callback's id.
    pub fn sync(&mut self) -> Result<ObjectId<WlCallback>, SessionError> {
        let callback = self.new_object::<WlCallback>(1)?;
        let request = wl_display::Request::Sync { callback };
        self.send(ObjectId::<WlDisplay>::from_raw(DISPLAY_ID), request)?;
        Ok(callback.id())
    }
}
