//! What the scanner's typed code stands on: typed object ids, the
//! [`TypedMessage`] trait that every generated `Request` and `Event` enum
//! implements, and [`InterfaceType`], the trait of the generated marker
//! types (`WlSeat`, ...).
//!
//! What it is: small, allocation-free glue between a typed message (named
//! fields, `ObjectId<WlCallback>` instead of `u32`) and the positional
//! [`Arg`] slices the codec reads and writes. What it is not: a codec (the
//! bytes are [`crate::wire`]'s), a dispatcher or an object map. Nothing
//! here checks that an id names a live object of the right interface;
//! the id's type says what the protocol promises, the object map says
//! what is true.
//!
//! # Implementation notes
//!
//! - [`ObjectId`] and [`NewId`] carry their interface as
//!   `PhantomData<fn() -> I>`: no auto-trait or drop-check effect, and the
//!   marker types are uninhabited enums anyway. Their `Clone`, `Eq`, `Hash`
//!   and ordering are written by hand so that they need nothing of `I`.
//! - Decoded messages arrive as [`Arg`]s already checked against the
//!   interface table by the codec, so [`TypedMessage::from_args`] only
//!   moves values into fields; a mismatch (a caller that built the args by
//!   hand) is still an [`ArgsMismatch`], never a panic. Fds in args it
//!   does not take are dropped, hence closed.
//! - [`TypedMessage::with_args`] builds the argument array on the stack
//!   and hands it to a closure: sending a typed message allocates nothing.

use std::ffi::CStr;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};

use crate::interface::{Interface, MessageDesc};
use crate::wire::Arg;

/// An interface as a type: the marker types the scanner generates
/// (`wl_seat::WlSeat`, ...) implement it, so that ids and messages can
/// name their interface in their type.
pub trait InterfaceType: 'static {
    /// The interface's table.
    const INTERFACE: &'static Interface;
    /// Its requests as a typed enum; `Fd` is the type of fd arguments
    /// (`OwnedFd` received, `BorrowedFd` or `OwnedFd` to send).
    type Request<'a, Fd>: TypedMessage<'a, Fd>;
    /// Its events as a typed enum.
    type Event<'a, Fd>: TypedMessage<'a, Fd>;
}

/// A request or event with named, typed fields, convertible to and from
/// the positional [`Arg`]s of the codec. The scanner implements it for
/// every generated `Request` and `Event` enum.
pub trait TypedMessage<'a, Fd>: Sized {
    /// The interface the message belongs to.
    const INTERFACE: &'static Interface;

    /// The table of its direction, `INTERFACE.requests` or
    /// `INTERFACE.events`, indexed by opcode. (A function, not a constant:
    /// a constant's pointee may be copied into each crate that uses it,
    /// and a table should have one address.)
    fn messages() -> &'static [MessageDesc];

    /// The message's opcode.
    fn opcode(&self) -> u16;

    /// The message with this opcode, from its arguments in wire order
    /// (a decoded [`crate::Message`]'s `args`).
    fn from_args<A: IntoIterator<Item = Arg<'a, Fd>>>(
        opcode: u16,
        args: A,
    ) -> Result<Self, ArgsMismatch>;

    /// The opcode and the arguments in wire order, moved out (fds
    /// included).
    fn into_args(self) -> (u16, Vec<Arg<'a, Fd>>);

    /// Calls `f` with the opcode and the arguments in wire order, built on
    /// the stack with the fds borrowed: the send path, which allocates
    /// nothing.
    fn with_args<R>(&self, f: impl FnOnce(u16, &[Arg<'_, BorrowedFd<'_>>]) -> R) -> R
    where
        Fd: AsFd;

    /// The message's entry in its interface's table.
    fn desc(&self) -> &'static MessageDesc {
        &Self::messages()[usize::from(self.opcode())]
    }

    /// The interface version that introduced the message.
    fn since(&self) -> u32 {
        self.desc().since
    }

    /// Whether the message destroys its object.
    fn is_destructor(&self) -> bool {
        self.desc().destructor
    }

    /// The message's name in the protocol XML.
    fn name(&self) -> &'static str {
        self.desc().name
    }
}

/// The id of an object of interface `I` (`ObjectId<WlSeat>`); never 0.
///
/// It says which interface the protocol promises, not that the object
/// exists: look it up in the object map for that.
#[repr(transparent)]
pub struct ObjectId<I> {
    id: u32,
    interface: PhantomData<fn() -> I>,
}

impl<I> ObjectId<I> {
    /// The id `id`, unchecked (0 is the null object, which an
    /// `ObjectId` field never holds: see [`ObjectId::new`]).
    pub const fn from_raw(id: u32) -> Self {
        ObjectId {
            id,
            interface: PhantomData,
        }
    }

    /// The id `id`, or `None` for the null object 0.
    pub fn new(id: u32) -> Option<Self> {
        (id != 0).then_some(Self::from_raw(id))
    }

    /// The number on the wire.
    pub const fn raw(self) -> u32 {
        self.id
    }
}

impl<I: InterfaceType> fmt::Debug for ObjectId<I> {
    /// `wl_seat@3`, as `WAYLAND_DEBUG` prints an object.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", I::INTERFACE.name, self.id)
    }
}

/// The id of an object of interface `I` that a message creates
/// (`NewId<WlKeyboard>` in `wl_seat.get_keyboard`).
#[repr(transparent)]
pub struct NewId<I>(ObjectId<I>);

impl<I> NewId<I> {
    /// The new id `id`, unchecked.
    pub const fn from_raw(id: u32) -> Self {
        NewId(ObjectId::from_raw(id))
    }

    /// The number on the wire.
    pub const fn raw(self) -> u32 {
        self.0.raw()
    }

    /// The id of the object, once created.
    pub const fn id(self) -> ObjectId<I> {
        self.0
    }
}

impl<I> From<NewId<I>> for ObjectId<I> {
    fn from(new: NewId<I>) -> Self {
        new.0
    }
}

impl<I: InterfaceType> fmt::Debug for NewId<I> {
    /// `new id wl_seat@3`, as `WAYLAND_DEBUG` prints a new id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "new id {:?}", self.0)
    }
}

/// `Clone`, `Copy`, `PartialEq`, `Eq`, `Hash`, `PartialOrd` and `Ord` by
/// the number alone, with no bound on the marker type.
macro_rules! id_traits {
    ($ty:ident) => {
        impl<I> Clone for $ty<I> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<I> Copy for $ty<I> {}
        impl<I> PartialEq for $ty<I> {
            fn eq(&self, other: &Self) -> bool {
                self.raw() == other.raw()
            }
        }
        impl<I> Eq for $ty<I> {}
        impl<I> Hash for $ty<I> {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.raw().hash(state)
            }
        }
        impl<I> PartialOrd for $ty<I> {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl<I> Ord for $ty<I> {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.raw().cmp(&other.raw())
            }
        }
    };
}
id_traits!(ObjectId);
id_traits!(NewId);

/// A `new_id` whose interface the message does not fix
/// (`wl_registry.bind`): on the wire, three arguments, the interface's
/// name, the version and the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnyNewId<'a> {
    /// The interface's name, e.g. `wl_seat`.
    pub interface: &'a CStr,
    /// The version asked for.
    pub version: u32,
    /// The id of the new object.
    pub id: u32,
}

impl AnyNewId<'_> {
    /// The id typed as `I`'s, when the interface named is `I`.
    pub fn typed<I: InterfaceType>(&self) -> Option<NewId<I>> {
        (self.interface.to_bytes() == I::INTERFACE.name.as_bytes())
            .then(|| NewId::from_raw(self.id))
    }
}

/// Arguments that do not make the typed message their opcode names: a
/// missing, extra or differently typed argument, a null where the
/// protocol allows none, or an opcode with no message. The codec's
/// output never mismatches; hand-built args can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgsMismatch {
    /// The interface's name.
    pub interface: &'static str,
    /// The opcode asked for.
    pub opcode: u16,
    /// The message's name, `None` when no message has this opcode.
    pub message: Option<&'static str>,
}

impl ArgsMismatch {
    /// The mismatch of `opcode` in `messages`, one direction of `interface`.
    pub fn new(
        interface: &'static Interface,
        messages: &'static [MessageDesc],
        opcode: u16,
    ) -> Self {
        ArgsMismatch {
            interface: interface.name,
            opcode,
            message: messages.get(usize::from(opcode)).map(|m| m.name),
        }
    }
}

impl fmt::Display for ArgsMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message {
            Some(name) => write!(
                f,
                "arguments do not match the signature of {}.{name}",
                self.interface
            ),
            None => write!(
                f,
                "{} has no message with opcode {}",
                self.interface, self.opcode
            ),
        }
    }
}

impl std::error::Error for ArgsMismatch {}

/// The `Debug` of a generated bitfield type: `Capability(KEYBOARD | 0x10)`,
/// the names of the flags set, then any bits no flag names, in hex;
/// `Capability(0x0)` when empty. For generated code; not a stable API.
#[doc(hidden)]
pub fn fmt_flags(
    f: &mut fmt::Formatter<'_>,
    type_name: &str,
    bits: u32,
    flags: &[(&str, u32)],
) -> fmt::Result {
    write!(f, "{type_name}(")?;
    let mut rest = bits;
    let mut first = true;
    for &(name, value) in flags {
        if value != 0 && bits & value == value && rest & value != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            rest &= !value;
            first = false;
        }
    }
    if rest != 0 || first {
        if !first {
            f.write_str(" | ")?;
        }
        write!(f, "{rest:#x}")?;
    }
    f.write_str(")")
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::os::fd::OwnedFd;

    use super::*;
    use crate::protocols::wayland::{wl_display, wl_registry, wl_seat};
    use crate::wire;

    /// typed → `with_args` → `wire::encode` → `wire::decode` →
    /// `from_args`, for messages without fds.
    fn round_trip<'b, M: TypedMessage<'b, OwnedFd>>(msg: &M, buf: &'b mut [u8]) -> M {
        let n = msg
            .with_args(|opcode, args| wire::encode(3, opcode, msg.desc(), args, buf))
            .expect("encodes");
        let (header, bytes) = wire::split_message(&buf[..n]).unwrap().unwrap();
        let decoded = wire::decode(header, bytes, msg.desc(), &mut VecDeque::new()).unwrap();
        M::from_args(decoded.opcode, decoded.args).expect("the codec's args match")
    }

    /// Equal by `Debug` (`OwnedFd` has no `PartialEq`, so neither has a
    /// message type with `Fd = OwnedFd`).
    fn same(a: &impl fmt::Debug, b: &impl fmt::Debug) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn round_trips_through_the_codec() {
        let sync = wl_display::Request::Sync {
            callback: NewId::from_raw(5),
        };
        assert!(same(&round_trip(&sync, &mut [0; 64]), &sync));
        assert_eq!(
            (sync.name(), sync.since(), sync.is_destructor()),
            ("sync", 1, false)
        );

        let bind = wl_registry::Request::Bind {
            name: 1,
            id: AnyNewId {
                interface: c"wl_seat",
                version: 7,
                id: 9,
            },
        };
        let mut buf = [0; 64];
        let back = round_trip(&bind, &mut buf);
        assert!(same(&back, &bind));
        // Bind is the only request: the hidden variant is uninhabited.
        let wl_registry::Request::Bind { id, .. } = back;
        assert_eq!(id.typed::<wl_seat::WlSeat>(), Some(NewId::from_raw(9)));
        assert_eq!(id.typed::<wl_display::WlDisplay>(), None);

        let release = wl_seat::Request::<OwnedFd>::Release;
        assert!(round_trip(&release, &mut [0; 8]).is_destructor());
    }

    #[test]
    fn ids_print_as_wayland_debug_does() {
        let seat: ObjectId<wl_seat::WlSeat> = ObjectId::from_raw(3);
        assert_eq!(format!("{seat:?}"), "wl_seat@3");
        let new: NewId<wl_seat::WlSeat> = NewId::from_raw(4);
        assert_eq!(format!("{new:?}"), "new id wl_seat@4");
        assert_eq!(ObjectId::<wl_seat::WlSeat>::new(0), None);
        assert_eq!(ObjectId::from(new), new.id());
    }

    #[test]
    fn mismatched_args_are_an_error_not_a_panic() {
        let args = [Arg::<OwnedFd>::Uint(1)];
        let err = wl_display::Request::from_args(wl_display::req::SYNC, args).unwrap_err();
        assert_eq!(
            err.to_string(),
            "arguments do not match the signature of wl_display.sync"
        );
        let err = wl_display::Request::<OwnedFd>::from_args(9, []).unwrap_err();
        assert_eq!(err.to_string(), "wl_display has no message with opcode 9");
        // A null where the protocol allows none; an extra argument.
        use crate::protocols::data_control::ext::ext_data_control_manager_v1 as manager;
        let get = manager::req::GET_DATA_DEVICE;
        let seat = [Arg::<OwnedFd>::NewId(2), Arg::Object(1)];
        assert!(manager::Request::from_args(get, seat).is_ok());
        let null = [Arg::<OwnedFd>::NewId(2), Arg::Object(0)];
        assert!(manager::Request::from_args(get, null).is_err());
        let extra = [Arg::<OwnedFd>::NewId(2), Arg::Uint(1)];
        assert!(wl_display::Request::from_args(wl_display::req::SYNC, extra).is_err());
    }
}
