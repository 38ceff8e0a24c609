//! Object id allocation and lookup (skeleton).

use std::fmt;

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
        todo!()
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

/// Live objects of one connection, indexed by id.
#[derive(Debug)]
pub struct ObjectMap<T> {
    side: Side,
    client: Vec<Option<T>>,
    server: Vec<Option<T>>,
}

impl<T> ObjectMap<T> {
    /// An empty map for `side`.
    pub fn new(side: Side) -> Self {
        ObjectMap {
            side,
            client: Vec::new(),
            server: Vec::new(),
        }
    }
    /// The object with this id.
    pub fn get(&self, id: u32) -> Option<&T> {
        todo!()
    }
    /// The object with this id, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        todo!()
    }
    /// Inserts an object at an id the other side chose.
    pub fn insert_at(&mut self, id: u32, value: T) -> Result<(), InsertError> {
        todo!()
    }
    /// Inserts an object at the lowest free id of this side's range.
    pub fn allocate(&mut self, value: T) -> u32 {
        todo!()
    }
    /// Removes and returns the object with this id.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        todo!()
    }
    /// Live objects.
    pub fn len(&self) -> usize {
        todo!()
    }
    /// Whether no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
