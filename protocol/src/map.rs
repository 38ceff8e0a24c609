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
//! use waypass_protocol::{InsertError, ObjectMap, Side, SERVER_ID_START};
//!
//! // The server's view of one client.
//! let mut objects = ObjectMap::new(Side::Server);
//! objects.insert_at(1, "wl_display").unwrap();
//! objects.insert_at(2, "wl_registry").unwrap();
//! assert_eq!(objects.insert_at(4, "gap"), Err(InsertError::NotNext));
//! assert_eq!(objects.allocate("server object"), SERVER_ID_START);
//! assert_eq!(objects.get(2), Some(&"wl_registry"));
//! assert_eq!(objects.remove(2), Some("wl_registry"));
//! objects.insert_at(2, "reused").unwrap();
//! ```
//!
//! # Implementation notes
//!
//! - Storage is one `Vec<Option<T>>` per range, indexed by the id's offset
//!   in its range (`id - 1` for client ids, `id - SERVER_ID_START` for
//!   server ids). A vector never shrinks: its length is one past the highest
//!   id ever used in that range, which is exactly what libwayland's
//!   `wl_map_insert_at` checks to refuse gaps ([`InsertError::NotNext`]).
//! - [`ObjectMap::allocate`] takes the lowest free slot of this side's
//!   range, so freed ids are reused before the range grows. (libwayland
//!   reuses the most recently freed one; either keeps the table dense.)
//! - A live count is kept so that [`ObjectMap::len`] does not scan.
//! - [`InsertError`] values are the peer's fault: the caller answers them
//!   with a protocol error (`wl_display.error`, `invalid_object`).
//!
//! [`allocates`]: ObjectMap::allocate
//! [`inserts`]: ObjectMap::insert_at

use std::fmt;

/// The id of `wl_display`, the object every connection starts with.
pub const DISPLAY_ID: u32 = 1;

/// The first id of the server-allocated range.
pub const SERVER_ID_START: u32 = 0xff00_0000;

/// Why an id could not be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// Id 0 is null.
    Null,
    /// The id is live already.
    InUse,
    /// The id is not the next free one in its range (libwayland's rule: no gaps).
    NotNext,
    /// The id is in the other side's range.
    WrongRange,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::Null => "id 0 is the null object",
            InsertError::InUse => "the id is already in use",
            InsertError::NotNext => "the id skips ids never used in its range",
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
    client: Vec<Option<T>>,
    server: Vec<Option<T>>,
    live: usize,
}

impl<T> ObjectMap<T> {
    /// An empty map for `side`.
    pub fn new(side: Side) -> Self {
        ObjectMap {
            side,
            client: Vec::new(),
            server: Vec::new(),
            live: 0,
        }
    }

    /// The side this map allocates for.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The object with this id.
    pub fn get(&self, id: u32) -> Option<&T> {
        let (range, index) = self.slot(id)?;
        range.get(index)?.as_ref()
    }

    /// The object with this id, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        let (range, index) = self.slot_mut(id)?;
        range.get_mut(index)?.as_mut()
    }

    /// Inserts an object at an id the other side chose.
    ///
    /// As libwayland's `wl_map_insert_at`: the id must be non-zero, in the
    /// other side's range, not live, and at most one past the highest id
    /// ever used in that range. A freed id may be used again.
    pub fn insert_at(&mut self, id: u32, value: T) -> Result<(), InsertError> {
        if id == 0 {
            return Err(InsertError::Null);
        }
        if Side::of_id(id) == self.side {
            return Err(InsertError::WrongRange);
        }
        let (range, index) = self.slot_mut(id).ok_or(InsertError::Null)?;
        let used = range.len();
        match range.get_mut(index) {
            Some(Some(_)) => return Err(InsertError::InUse),
            Some(slot) => *slot = Some(value),
            None if index == used => range.push(Some(value)),
            None => return Err(InsertError::NotNext),
        }
        self.live += 1;
        Ok(())
    }

    /// Inserts an object at the lowest free id of this side's range.
    ///
    /// # Panics
    ///
    /// If every id of the range is live (2³² − 2²⁴ − 1 client ids, 2²⁴
    /// server ids): memory runs out long before.
    pub fn allocate(&mut self, value: T) -> u32 {
        let (range, base, size) = match self.side {
            Side::Client => (&mut self.client, 1, SERVER_ID_START - 1),
            Side::Server => (
                &mut self.server,
                SERVER_ID_START,
                u32::MAX - SERVER_ID_START + 1,
            ),
        };
        let index = match range.iter().position(Option::is_none) {
            Some(free) => {
                range[free] = Some(value);
                free
            }
            None => {
                assert!(
                    (range.len() as u64) < u64::from(size),
                    "object id range exhausted"
                );
                range.push(Some(value));
                range.len() - 1
            }
        };
        self.live += 1;
        base + index as u32
    }

    /// Removes and returns the object with this id. The id becomes free:
    /// the other side may insert it again, and [`ObjectMap::allocate`] may
    /// hand it out again.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let (range, index) = self.slot_mut(id)?;
        let value = range.get_mut(index)?.take()?;
        self.live -= 1;
        Some(value)
    }

    /// Live objects.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live objects with their ids, client range first, each range in
    /// increasing id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let client = live_entries(&self.client, 1);
        client.chain(live_entries(&self.server, SERVER_ID_START))
    }

    /// The vector holding `id` and the id's index in it; `None` for id 0.
    fn slot(&self, id: u32) -> Option<(&Vec<Option<T>>, usize)> {
        match (id, Side::of_id(id)) {
            (0, _) => None,
            (_, Side::Client) => Some((&self.client, (id - 1) as usize)),
            (_, Side::Server) => Some((&self.server, (id - SERVER_ID_START) as usize)),
        }
    }

    /// As [`ObjectMap::slot`], mutably.
    fn slot_mut(&mut self, id: u32) -> Option<(&mut Vec<Option<T>>, usize)> {
        match (id, Side::of_id(id)) {
            (0, _) => None,
            (_, Side::Client) => Some((&mut self.client, (id - 1) as usize)),
            (_, Side::Server) => Some((&mut self.server, (id - SERVER_ID_START) as usize)),
        }
    }
}

fn live_entries<T>(range: &[Option<T>], base: u32) -> impl Iterator<Item = (u32, &T)> + '_ {
    range
        .iter()
        .enumerate()
        .filter_map(move |(i, v)| v.as_ref().map(|v| (base + i as u32, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_map_allocates_from_one_and_reuses_the_lowest_free_id() {
        let mut map = ObjectMap::new(Side::Client);
        assert_eq!(map.allocate('a'), 1);
        assert_eq!(map.allocate('b'), 2);
        assert_eq!(map.allocate('c'), 3);
        assert_eq!(map.remove(2), Some('b'));
        assert_eq!(map.remove(1), Some('a'));
        assert_eq!(map.allocate('d'), 1);
        assert_eq!(map.allocate('e'), 2);
        assert_eq!(map.allocate('f'), 4);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(3), Some(&'c'));
    }

    #[test]
    fn server_map_allocates_from_server_id_start() {
        let mut map = ObjectMap::new(Side::Server);
        assert_eq!(map.allocate(10), SERVER_ID_START);
        assert_eq!(map.allocate(11), SERVER_ID_START + 1);
        assert_eq!(map.get(SERVER_ID_START + 1), Some(&11));
        assert_eq!(map.remove(SERVER_ID_START), Some(10));
        assert_eq!(map.allocate(12), SERVER_ID_START);
        assert_eq!(map.get(u32::MAX), None);
    }

    #[test]
    fn insert_at_follows_wl_map_insert_at() {
        let mut map = ObjectMap::new(Side::Server);
        assert_eq!(map.insert_at(0, "null"), Err(InsertError::Null));
        assert_eq!(
            map.insert_at(SERVER_ID_START, "own"),
            Err(InsertError::WrongRange)
        );
        assert_eq!(map.insert_at(2, "gap"), Err(InsertError::NotNext));
        map.insert_at(1, "display").unwrap();
        assert_eq!(map.insert_at(1, "again"), Err(InsertError::InUse));
        map.insert_at(2, "registry").unwrap();
        map.insert_at(3, "callback").unwrap();
        assert_eq!(map.insert_at(5, "gap"), Err(InsertError::NotNext));
        // A freed id may be reused, and the highest id ever used still counts.
        assert_eq!(map.remove(3), Some("callback"));
        assert_eq!(map.insert_at(5, "gap"), Err(InsertError::NotNext));
        map.insert_at(4, "next").unwrap();
        map.insert_at(3, "reused").unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(3), Some(&"reused"));
    }

    #[test]
    fn client_map_inserts_server_ids_only() {
        let mut map = ObjectMap::new(Side::Client);
        assert_eq!(map.insert_at(1, ()), Err(InsertError::WrongRange));
        assert_eq!(
            map.insert_at(SERVER_ID_START + 1, ()),
            Err(InsertError::NotNext)
        );
        map.insert_at(SERVER_ID_START, ()).unwrap();
        map.insert_at(SERVER_ID_START + 1, ()).unwrap();
        assert_eq!(map.insert_at(SERVER_ID_START, ()), Err(InsertError::InUse));
        // Allocation in the own range is independent of the other range.
        assert_eq!(map.allocate(()), 1);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn get_mut_remove_and_len_track_live_objects() {
        let mut map = ObjectMap::new(Side::Server);
        assert!(map.is_empty());
        map.insert_at(1, 1).unwrap();
        *map.get_mut(1).unwrap() += 41;
        assert_eq!(map.get(1), Some(&42));
        assert_eq!(map.get(0), None);
        assert_eq!(map.get_mut(7), None);
        assert_eq!(map.remove(1), Some(42));
        assert_eq!(map.remove(1), None);
        assert_eq!(map.remove(0), None);
        assert_eq!(map.remove(SERVER_ID_START + 9), None);
        assert!(map.is_empty());
    }

    #[test]
    fn iter_lists_live_objects_in_id_order() {
        let mut map = ObjectMap::new(Side::Server);
        for id in 1..=3 {
            map.insert_at(id, id * 10).unwrap();
        }
        let s = map.allocate(99);
        map.remove(2);
        let all: Vec<_> = map.iter().map(|(id, v)| (id, *v)).collect();
        assert_eq!(all, vec![(1, 10), (3, 30), (s, 99)]);
    }

    #[test]
    fn side_of_id_splits_at_server_id_start() {
        assert_eq!(Side::of_id(1), Side::Client);
        assert_eq!(Side::of_id(SERVER_ID_START - 1), Side::Client);
        assert_eq!(Side::of_id(SERVER_ID_START), Side::Server);
        assert_eq!(Side::of_id(u32::MAX), Side::Server);
    }

    #[test]
    fn errors_describe_themselves() {
        assert!(InsertError::NotNext.to_string().contains("skips"));
        assert!(InsertError::WrongRange.to_string().contains("range"));
    }
}
