//! Object ids of one connection: allocation, insertion and lookup.
//!
//! What it is: [`ObjectMap`], a table from object id to whatever the owner
//! stores per object (an interface and version, a handler, ...), following
//! libwayland's `wl_map` rules. Ids below [`SERVER_ID_START`] are chosen by
//! the client, ids from it up by the server; each side [`allocates`] in its
//! own range and [`inserts`] the ids the other side chose. What it is not:
//! the object lifecycle. It sends no `delete_id`, knows no interface and
//! does no I/O; the connection's owner decides when an id is freed.
//!
//! ```
//! use waypass_protocol::{InsertError, ObjectMap, Side, MAX_CLIENT_ID, SERVER_ID_START};
//!
//! // The server's view of one client.
//! let mut objects = ObjectMap::new(Side::Server);
//! objects.insert_at(1, "wl_display").unwrap();
//! objects.insert_at(2, "wl_registry").unwrap();
//! assert_eq!(objects.insert_at(4, "gap"), Err(InsertError::NotNext));
//! assert_eq!(objects.insert_at(MAX_CLIENT_ID + 1, "far"), Err(InsertError::TooHigh));
//! assert_eq!(objects.allocate("server object"), Some(SERVER_ID_START));
//! assert_eq!(objects.get(2), Some(&"wl_registry"));
//! assert_eq!(objects.remove(2), Some("wl_registry"));
//! objects.insert_at(2, "reused").unwrap();
//! ```
//!
//! # Implementation notes
//!
//! - Each range is an [`IdRange`](range::IdRange) indexed by the id's
//!   offset in it (`id - 1` for client ids, `id - SERVER_ID_START` for
//!   server ids). Its memory follows the objects live in it, not the highest
//!   id ever used: low ids sit in a vector (a lookup is one bounds check),
//!   ids far past the live ones in a tree, and the no-gap rule's high-water
//!   mark is a counter. `range.rs` explains the bound on the vector's waste.
//! - As libwayland's `wl_map_insert_at` and `wl_map_reserve_new`: a new id
//!   must be free and at most one past the highest id ever used in its
//!   range ([`InsertError::NotNext`]), and at most `WL_MAP_MAX_OBJECTS`
//!   (0x00f00000) past the range's start ([`InsertError::TooHigh`]):
//!   [`MAX_CLIENT_ID`] and [`MAX_SERVER_ID`].
//! - [`ObjectMap::allocate`] takes the lowest free id of this side's range
//!   without a scan, so freed ids are reused before the range grows.
//!   (libwayland reuses the most recently freed one; either keeps the table
//!   dense.) It returns `None`, never panics, when the range is full.
//! - [`InsertError`] values are the peer's fault: the caller answers them
//!   with a protocol error (`wl_display.error`).
//!
//! [`allocates`]: ObjectMap::allocate
//! [`inserts`]: ObjectMap::insert_at

mod range;

use std::fmt;

use range::IdRange;

/// The id of `wl_display`, the object every connection starts with.
pub const DISPLAY_ID: u32 = 1;

/// The first id of the server-allocated range.
pub const SERVER_ID_START: u32 = 0xff00_0000;

/// libwayland's `WL_MAP_MAX_OBJECTS`: how far past its start a range's ids
/// may go.
const WL_MAP_MAX_OBJECTS: u32 = 0x00f0_0000;

/// The highest client-chosen id libwayland accepts (15,728,640).
pub const MAX_CLIENT_ID: u32 = WL_MAP_MAX_OBJECTS;

/// The highest server-chosen id libwayland accepts.
pub const MAX_SERVER_ID: u32 = SERVER_ID_START + WL_MAP_MAX_OBJECTS;

/// Why an id could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertError {
    /// Id 0 is null.
    Null,
    /// The id is live already.
    InUse,
    /// The id is not the next free one in its range (libwayland's rule: no gaps).
    NotNext,
    /// The id is past [`MAX_CLIENT_ID`] or [`MAX_SERVER_ID`], libwayland's
    /// bound on the ids of a range.
    TooHigh,
    /// The id is in the other side's range.
    WrongRange,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Null => "id 0 is the null object",
            InsertError::InUse => "the id is already in use",
            InsertError::NotNext => "the id skips ids never used in its range",
            InsertError::TooHigh => {
                "the id is past the last one its range allows (0xf00000 past the range's start)"
            }
            InsertError::WrongRange => "the id is in this side's own range",
        })
    }
}

impl std::error::Error for InsertError {}

/// Which side allocates new ids with [`ObjectMap::allocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Allocates from 1 up, below `SERVER_ID_START`.
    Client,
    /// Allocates from `SERVER_ID_START` up.
    Server,
}

impl Side {
    /// The side whose range holds `id` (id 0 counts as the client's).
    pub fn of_id(id: u32) -> Side {
        if id < SERVER_ID_START {
            Side::Client
        } else {
            Side::Server
        }
    }
}

/// Live objects of one connection, indexed by id.
#[derive(Debug)]
pub struct ObjectMap<T> {
    side: Side,
    client: IdRange<T>,
    server: IdRange<T>,
}

impl<T> ObjectMap<T> {
    /// An empty map for `side`.
    pub fn new(side: Side) -> Self {
        ObjectMap {
            side,
            client: IdRange::new(side == Side::Client, MAX_CLIENT_ID - 1),
            server: IdRange::new(side == Side::Server, MAX_SERVER_ID - SERVER_ID_START),
        }
    }

    /// The side this map allocates for.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The object with this id.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&T> {
        let (range, index) = self.slot(id)?;
        range.get(index)
    }

    /// The object with this id, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        let (range, index) = self.slot_mut(id)?;
        range.get_mut(index)
    }

    /// Inserts an object at an id the other side chose.
    ///
    /// As libwayland's `wl_map_insert_at`: the id must be non-zero, in the
    /// other side's range, at most [`MAX_CLIENT_ID`] (or [`MAX_SERVER_ID`]),
    /// not live, and at most one past the highest id ever used in that
    /// range. A freed id may be used again.
    #[inline]
    pub fn insert_at(&mut self, id: u32, value: T) -> Result<(), InsertError> {
        if id == 0 {
            return Err(InsertError::Null);
        }
        if Side::of_id(id) == self.side {
            return Err(InsertError::WrongRange);
        }
        let (range, index) = self.slot_mut(id).ok_or(InsertError::Null)?;
        range.insert_at(index, value)
    }

    /// Inserts an object at the lowest free id of this side's range and
    /// returns the id; `None` (and `value` dropped) if every id up to
    /// [`MAX_CLIENT_ID`] (or [`MAX_SERVER_ID`]) is live.
    pub fn allocate(&mut self, value: T) -> Option<u32> {
        let (range, base) = match self.side {
            Side::Client => (&mut self.client, 1),
            Side::Server => (&mut self.server, SERVER_ID_START),
        };
        range.allocate(value).map(|index| base + index)
    }

    /// Removes and returns the object with this id. The id becomes free:
    /// the other side may insert it again, and [`ObjectMap::allocate`] may
    /// hand it out again.
    // Out of line: inlined, its cold calls made a server's `destroy` too
    // large to inline in turn (measured: 12 more instructions per `sync`).
    #[inline(never)]
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let (range, index) = self.slot_mut(id)?;
        range.remove(index)
    }

    /// Live objects.
    #[inline]
    pub fn len(&self) -> usize {
        self.client.len() + self.server.len()
    }

    /// Whether no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live objects with their ids, client range first, each range in
    /// increasing id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let client = self.client.iter().map(|(i, v)| (i + 1, v));
        client.chain(self.server.iter().map(|(i, v)| (i + SERVER_ID_START, v)))
    }

    /// Heap bytes the map holds for its objects: its tables' capacity,
    /// counting the entries of its trees but not their nodes' bookkeeping.
    /// It follows the live objects, not the highest id ever used.
    pub fn heap_bytes(&self) -> usize {
        self.client.heap_bytes() + self.server.heap_bytes()
    }

    /// The range holding `id` and the id's index in it; `None` for id 0.
    #[inline]
    fn slot(&self, id: u32) -> Option<(&IdRange<T>, u32)> {
        match (id, Side::of_id(id)) {
            (0, _) => None,
            (_, Side::Client) => Some((&self.client, id - 1)),
            (_, Side::Server) => Some((&self.server, id - SERVER_ID_START)),
        }
    }

    /// As [`ObjectMap::slot`], mutably.
    #[inline]
    fn slot_mut(&mut self, id: u32) -> Option<(&mut IdRange<T>, u32)> {
        match (id, Side::of_id(id)) {
            (0, _) => None,
            (_, Side::Client) => Some((&mut self.client, id - 1)),
            (_, Side::Server) => Some((&mut self.server, id - SERVER_ID_START)),
        }
    }
}

#[cfg(test)]
mod tests;
