//! The globals the server offers through `wl_registry`, and `bind`.
//!
//! This module lists globals, announces them to a new registry and checks
//! a `bind` before handing it to the global's own module. It does not
//! implement any global's interface: [`crate::proto::seat`] does `wl_seat`,
//! [`crate::proto::broker`] does `waypass_broker_v1`, and [`crate::proto::clipboard`]
//! the two data-control managers (one per protocol, for the one seat).
//!
//! A program that embeds the server adds a global with one module (a
//! [`Global`](crate::Global) implementation) and one line
//! (`ServerBuilder::global`): [`crate::proto::extension`] serves it, and
//! its registry names follow the built-in ones. A built-in global is a
//! [`GlobalKind`] variant, a row in [`GLOBALS`], an arm in
//! [`GlobalKind::interface`] and in `bind`, and an [`Object`] variant whose
//! arm in [`crate::proto::dispatch`] the compiler asks for: more places,
//! for state no extension can reach (the ledger, other clients).
//!
//! # Implementation notes
//!
//! `bind` is checked the way libwayland's `registry_bind` does, with its
//! messages, and every failure is `invalid_object` posted on the registry:
//! an unknown name (`invalid global wl_x (N)`), an interface name that is
//! not the global's (`invalid interface for global N: have A, wanted B`),
//! and a version of 0 or above the advertised one (`invalid version for
//! global wl_x (N): have A, wanted V`).

use std::ffi::CStr;

use waypass_protocol::protocols::broker::waypass_broker_v1::{self, WaypassBrokerV1};
use waypass_protocol::protocols::wayland::wl_registry::{self, WlRegistry};
use waypass_protocol::protocols::wayland::{wl_display, wl_seat};
use waypass_protocol::{AnyNewId, Interface, NewId, ObjectId};

use crate::proto::clipboard::{self, Clipboard};
use crate::proto::ctx::{c_str_is, interface_name, Ctx, ProtocolError, Stop};
use crate::proto::extension::Extensions;
use crate::proto::seat;
use crate::state::{Flavor, Object};

/// What a global is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalKind {
    /// The one `wl_seat`, with a keyboard.
    Seat,
    /// The `waypass_broker_v1` name broker.
    Broker,
    /// A data-control manager (the clipboard) of one flavor.
    DataControl(Flavor),
}

impl GlobalKind {
    /// The interface a client binds.
    pub fn interface(self) -> &'static Interface {
        match self {
            GlobalKind::Seat => &wl_seat::INTERFACE,
            GlobalKind::Broker => &waypass_broker_v1::INTERFACE,
            GlobalKind::DataControl(flavor) => flavor.manager(),
        }
    }
}

/// One global: its registry name and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    /// The numeric name announced in `wl_registry.global`.
    pub name: u32,
    /// What it is.
    pub kind: GlobalKind,
}

impl Global {
    /// The advertised version: the highest our interface tables describe.
    pub fn version(&self) -> u32 {
        self.kind.interface().version
    }
}

/// Every global, in announcement order. Names are never reused.
pub static GLOBALS: &[Global] = &[
    Global {
        name: 1,
        kind: GlobalKind::Seat,
    },
    Global {
        name: 2,
        kind: GlobalKind::Broker,
    },
    Global {
        name: 3,
        kind: GlobalKind::DataControl(Flavor::Ext),
    },
    Global {
        name: 4,
        kind: GlobalKind::DataControl(Flavor::Wlr),
    },
];

/// Who serves a global: a built-in module, or the embedding program's
/// global at this index of [`Extensions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Builtin(GlobalKind),
    Extension(u16),
}

/// One announced global: its name, who serves it, its interface and
/// version.
#[derive(Debug, Clone, Copy)]
struct Announced {
    name: u32,
    served: Served,
    interface: &'static Interface,
    version: u32,
}

/// Every global, built-in ones first, then the extensions' (named from
/// after the last built-in one), in announcement order.
fn announced(extensions: &Extensions) -> impl Iterator<Item = Announced> + '_ {
    let builtin = GLOBALS.iter().map(|g| Announced {
        name: g.name,
        served: Served::Builtin(g.kind),
        interface: g.kind.interface(),
        version: g.version(),
    });
    let first = GLOBALS.len() as u32 + 1;
    let added = extensions
        .globals()
        .enumerate()
        .map(move |(index, (interface, version))| Announced {
            name: first + index as u32,
            served: Served::Extension(index as u16),
            interface,
            version,
        });
    builtin.chain(added)
}

/// `wl_display.get_registry`: creates the registry and announces globals.
pub fn get_registry(
    cx: &mut Ctx<'_>,
    extensions: &Extensions,
    registry: NewId<WlRegistry>,
) -> Result<(), Stop> {
    let registry = cx.create(registry, Object::Registry)?;
    for global in announced(extensions) {
        let interface = interface_name(global.interface);
        let event = wl_registry::Event::Global {
            name: global.name,
            interface: interface.as_c_str(),
            version: global.version,
        };
        cx.send(registry, event)?;
    }
    Ok(())
}

/// The requests of a `wl_registry`.
pub fn request(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    extensions: &mut Extensions,
    registry: ObjectId<WlRegistry>,
    request: wl_registry::Request<'_>,
) -> Result<(), Stop> {
    match request {
        wl_registry::Request::Bind { name, id } => {
            bind(cx, clipboard, extensions, registry, name, id)
        }
    }
}

/// `wl_registry.bind(name, interface, version, id)`.
fn bind(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    extensions: &mut Extensions,
    registry: ObjectId<WlRegistry>,
    name: u32,
    new: AnyNewId<'_>,
) -> Result<(), Stop> {
    let global = check_bind(extensions, registry.raw(), name, new.interface, new.version)?;
    let version = new.version;
    // `check_bind` checked that the interface named is the global's.
    let kind = match global.served {
        Served::Extension(index) => {
            return extensions.bind(cx, usize::from(index), new.id, version)
        }
        Served::Builtin(kind) => kind,
    };
    match kind {
        GlobalKind::Seat => seat::bind(cx, NewId::from_raw(new.id), version),
        // The broker has no initial events.
        GlobalKind::Broker => cx
            .create::<WaypassBrokerV1>(NewId::from_raw(new.id), Object::Broker)
            .map(drop),
        GlobalKind::DataControl(flavor) => {
            clipboard::bind_manager(cx, clipboard, new.id, flavor, version)
        }
    }
}

/// The global a `bind` may create, or the error to post on the registry.
fn check_bind(
    extensions: &Extensions,
    registry: u32,
    name: u32,
    interface: &CStr,
    version: u32,
) -> Result<Announced, ProtocolError> {
    let error =
        |message: String| ProtocolError::new(registry, wl_display::error::INVALID_OBJECT, message);
    let asked = interface.to_string_lossy();
    let Some(global) = announced(extensions).find(|g| g.name == name) else {
        return Err(error(format!("invalid global {asked} ({name})")));
    };
    let offered = global.interface.name;
    if !c_str_is(interface, offered) {
        return Err(error(format!(
            "invalid interface for global {name}: have {asked}, wanted {offered}"
        )));
    }
    if version == 0 || version > global.version {
        return Err(error(format!(
            "invalid version for global {asked} ({name}): have {}, wanted {version}",
            global.version
        )));
    }
    Ok(global)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: u32, iface: &CStr, version: u32) -> Result<GlobalKind, ProtocolError> {
        let served = check_bind(&Extensions::default(), 2, name, iface, version)?.served;
        match served {
            Served::Builtin(kind) => Ok(kind),
            Served::Extension(_) => panic!("no extension was added"),
        }
    }

    #[test]
    fn seat_binds_at_every_advertised_version() {
        for v in 1..=wl_seat::INTERFACE.version {
            assert_eq!(check(1, c"wl_seat", v), Ok(GlobalKind::Seat));
        }
    }

    #[test]
    fn broker_is_the_second_global() {
        assert_eq!(check(2, c"waypass_broker_v1", 1), Ok(GlobalKind::Broker));
        assert!(check(2, c"waypass_broker_v1", 2).is_err());
        assert!(check(2, c"wl_seat", 1).is_err());
    }

    #[test]
    fn bad_binds_are_invalid_object_on_the_registry() {
        let too_high = wl_seat::INTERFACE.version + 1;
        let cases: &[(u32, &CStr, u32, &str)] = &[
            (7, c"wl_seat", 1, "invalid global wl_seat (7)"),
            (
                1,
                c"wl_output",
                1,
                "invalid interface for global 1: have wl_output, wanted wl_seat",
            ),
            (1, c"wl_seat", 0, "invalid version for global wl_seat (1)"),
            (
                1,
                c"wl_seat",
                too_high,
                "invalid version for global wl_seat (1)",
            ),
        ];
        for &(name, iface, version, text) in cases {
            let err = check(name, iface, version).unwrap_err();
            assert_eq!(err.object, 2);
            assert_eq!(err.code, wl_display::error::INVALID_OBJECT);
            assert!(err.message.starts_with(text), "{err}");
        }
    }
}
