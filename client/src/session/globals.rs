//! The globals a server advertises, read once per session through the
//! session's own `wl_registry`, and the binding of one by its marker type.
//!
//! What it is: [`Globals`] (name, interface, version of each global, kept
//! up to date by `global` and `global_remove` events, which the session
//! absorbs rather than queues) and the [`Session`] calls that fetch it and
//! bind from it ([`Session::globals`], [`Session::bind_global`]). Fetching
//! the keymap, the broker, the clipboard and the command line all find
//! their globals here. What it is not: a registry of the caller's own
//! ([`Session::get_registry`] still makes one, whose events are queued
//! as any other's).

use waypass_protocol::protocols::wayland::wl_registry::{self, WlRegistry};
use waypass_protocol::{InterfaceType, ObjectId};

use super::Session;
use crate::deadline::Deadline;
use crate::error::SessionError;

/// One global: its registry name, interface and the version advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// The registry's name for it, to pass to [`Session::bind`].
    pub name: u32,
    /// The interface's name, e.g. `wl_seat`.
    pub interface: String,
    /// The highest version the server offers.
    pub version: u32,
}

impl Global {
    /// Whether this global is of interface `I`.
    pub fn is<I: InterfaceType>(&self) -> bool {
        self.interface == I::INTERFACE.name
    }
}

/// The globals of a server, in the order it advertised them.
#[derive(Debug, Clone)]
pub struct Globals {
    registry: ObjectId<WlRegistry>,
    list: Vec<Global>,
}

impl Globals {
    /// The session's registry, to [`Session::bind`] a global found here.
    pub fn registry(&self) -> ObjectId<WlRegistry> {
        self.registry
    }

    /// Every global, in the order advertised.
    pub fn iter(&self) -> impl Iterator<Item = &Global> {
        self.list.iter()
    }

    /// The first global of interface `I`.
    pub fn find<I: InterfaceType>(&self) -> Option<&Global> {
        self.list.iter().find(|g| g.is::<I>())
    }

    /// Every global of interface `I` (several seats, say).
    pub fn all<I: InterfaceType>(&self) -> impl Iterator<Item = &Global> {
        self.list.iter().filter(|g| g.is::<I>())
    }

    /// Whether `object` is the session's registry.
    pub(super) fn is_registry(&self, object: u32) -> bool {
        self.registry.raw() == object
    }

    /// Takes in a `global` or `global_remove` event of the registry.
    pub(super) fn absorb(&mut self, event: wl_registry::Event<'_>) {
        match event {
            wl_registry::Event::Global {
                name,
                interface,
                version,
            } => self.list.push(Global {
                name,
                interface: interface.to_string_lossy().into_owned(),
                version,
            }),
            wl_registry::Event::GlobalRemove { name } => self.list.retain(|g| g.name != name),
            wl_registry::Event::__Unused(never, _) => match never {},
        }
    }
}

impl Session {
    /// The server's globals: the first call sends `get_registry` and
    /// waits one round trip (within the reply timeout); later calls
    /// return the list as the registry's events have kept it.
    pub fn globals(&mut self) -> Result<&Globals, SessionError> {
        self.globals_by(Deadline::after(self.reply_timeout))
    }

    /// [`Session::globals`], ending at `deadline`.
    pub fn globals_by(&mut self, deadline: Deadline) -> Result<&Globals, SessionError> {
        if self.globals.is_none() {
            let registry = self.get_registry()?;
            // From here its events are absorbed, not queued.
            self.globals = Some(Globals {
                registry,
                list: Vec::new(),
            });
            self.roundtrip_by(deadline)?;
        }
        // Set above and never unset.
        self.globals.as_ref().ok_or(SessionError::NoGlobal {
            interface: wl_registry::INTERFACE.name,
        })
    }

    /// Binds the first global of interface `I` at the highest version
    /// both sides speak, at most `version` (and at least 1): see
    /// [`Session::object`] for the version bound. A server without the
    /// global is [`SessionError::NoGlobal`].
    pub fn bind_global<I: InterfaceType>(
        &mut self,
        version: u32,
    ) -> Result<ObjectId<I>, SessionError> {
        self.bind_global_by(version, Deadline::after(self.reply_timeout))
    }

    /// [`Session::bind_global`], ending at `deadline`.
    pub fn bind_global_by<I: InterfaceType>(
        &mut self,
        version: u32,
        deadline: Deadline,
    ) -> Result<ObjectId<I>, SessionError> {
        let globals = self.globals_by(deadline)?;
        let registry = globals.registry;
        let Some(global) = globals.find::<I>() else {
            return Err(SessionError::NoGlobal {
                interface: I::INTERFACE.name,
            });
        };
        let version = version.min(global.version).min(I::INTERFACE.version).max(1);
        let name = global.name;
        log::debug!(
            "binding {} global {name} at v{version} (advertised v{})",
            I::INTERFACE.name,
            global.version
        );
        self.bind(registry, name, version)
    }
}
