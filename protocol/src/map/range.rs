//! The storage of one id range of an [`ObjectMap`](super::ObjectMap): a
//! table from an id's index in its range to the object.
//!
//! What it is: [`IdRange`], which keeps its memory in proportion to the
//! objects live in it, not to the highest id ever used, while a lookup of a
//! low id stays one bounds check and one load. What it is not: the id rules
//! of Wayland (null ids, which side owns which range, the bound): the map
//! checks those and hands this module indices.
//!
//! # Implementation notes
//!
//! - **Dense and sparse.** Indices below `dense.len()` live in a
//!   `Vec<Option<T>>`; indices from there up in a `BTreeMap`. An index has
//!   exactly one home, decided by `dense.len()`: growing the vector moves
//!   the entries it now covers out of the tree (`BTreeMap::split_off`),
//!   and cutting it moves the live entries it no longer covers into the
//!   tree. A lookup first tries the vector; only a miss past its end looks
//!   at the tree, and only if the tree is not empty.
//! - **The waste bound.** An insertion past the vector's end grows it only
//!   to `2 × (live + 1) + SLACK` slots; an index further out goes to the
//!   tree. A removal that leaves the vector longer than `4 × live + SLACK`
//!   cuts it to `2 × live + SLACK` (then drops trailing empty slots) and
//!   gives capacity back. The gap between the two thresholds means that
//!   one insertion and one removal never cut and regrow the vector: a cut
//!   takes about `live / 2` removals since the last growth, so its cost is
//!   paid for by them. So the vector holds at most `4 × live + SLACK`
//!   slots, whatever ids the peer used.
//! - **The high-water mark** of the no-gap rule is the counter `next`, not
//!   the vector's length: a peer that used ids up to a million and destroyed
//!   them leaves a counter, not a million slots.
//! - **Own range.** Ids this side allocates are taken lowest first, so the
//!   range never has more indices than the most objects ever live in it at
//!   once (a number this side controls); it keeps no tree. Free indices
//!   below the vector's end are kept in a `BTreeSet` so that
//!   [`IdRange::allocate`] does not scan, and a removal at the end drops the
//!   trailing empty slots (and their entries in the set) at once.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::size_of;

use super::InsertError;

/// Slots the dense vector may hold beyond twice (growing) or four times
/// (cutting) the live objects: small tables never move to the tree.
const SLACK: usize = 64;

/// The objects of one id range, by index in the range.
#[derive(Debug)]
pub(super) struct IdRange<T> {
    /// Objects at indices below `dense.len()`.
    dense: Vec<Option<T>>,
    /// Objects at indices from `dense.len()` up (the peer's range only).
    sparse: BTreeMap<u32, T>,
    /// Free indices below `dense.len()` (this side's own range only).
    free: BTreeSet<u32>,
    /// Live objects, in both.
    live: usize,
    /// One past the highest index ever inserted: the no-gap rule's mark.
    next: u32,
    /// The highest index an object may have.
    max_index: u32,
    /// Whether this side allocates here ([`IdRange::allocate`]) rather
    /// than inserting the peer's ids ([`IdRange::insert_at`]).
    own: bool,
}

impl<T> IdRange<T> {
    /// An empty range whose indices go up to `max_index`.
    pub(super) fn new(own: bool, max_index: u32) -> Self {
        IdRange {
            dense: Vec::new(),
            sparse: BTreeMap::new(),
            free: BTreeSet::new(),
            live: 0,
            next: 0,
            max_index,
            own,
        }
    }

    /// Live objects.
    pub(super) fn len(&self) -> usize {
        self.live
    }

    /// The object at `index`.
    #[inline]
    pub(super) fn get(&self, index: u32) -> Option<&T> {
        match self.dense.get(index as usize) {
            Some(slot) => slot.as_ref(),
            None => self.get_sparse(index),
        }
    }

    /// The object at `index`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        match self.dense.get_mut(index as usize) {
            Some(slot) => slot.as_mut(),
            None if self.sparse.is_empty() => None,
            None => self.sparse.get_mut(&index),
        }
    }

    /// A lookup past the dense part.
    fn get_sparse(&self, index: u32) -> Option<&T> {
        if self.sparse.is_empty() {
            return None;
        }
        self.sparse.get(&index)
    }

    /// Inserts at an index the peer chose: past the bound is `TooHigh`,
    /// past the high-water mark is `NotNext`, a live index is `InUse`.
    pub(super) fn insert_at(&mut self, index: u32, value: T) -> Result<(), InsertError> {
        if index > self.max_index {
            return Err(InsertError::TooHigh);
        }
        if index > self.next {
            return Err(InsertError::NotNext);
        }
        let i = index as usize;
        let len = self.dense.len();
        if i < len {
            let slot = &mut self.dense[i];
            if slot.is_some() {
                return Err(InsertError::InUse);
            }
            *slot = Some(value);
        } else if self.sparse.contains_key(&index) {
            return Err(InsertError::InUse);
        } else if i == len && self.sparse.is_empty() {
            // The usual case: the next id, with nothing beyond.
            self.dense.push(Some(value));
        } else if i < 2 * (self.live + 1) + SLACK {
            self.grow_to(i + 1);
            self.dense[i] = Some(value);
        } else {
            self.sparse.insert(index, value);
        }
        if index == self.next {
            self.next += 1;
        }
        self.live += 1;
        Ok(())
    }

    /// Inserts at the lowest free index; `None` if every index up to the
    /// bound is live (`value` is then dropped).
    pub(super) fn allocate(&mut self, value: T) -> Option<u32> {
        debug_assert!(self.own && self.sparse.is_empty());
        let index = match self.free.pop_first() {
            Some(index) => {
                self.dense[index as usize] = Some(value);
                index
            }
            None => {
                let index = u32::try_from(self.dense.len()).ok()?;
                if index > self.max_index {
                    return None;
                }
                self.dense.push(Some(value));
                index
            }
        };
        self.next = self.next.max(index + 1);
        self.live += 1;
        Some(index)
    }

    /// Removes and returns the object at `index`.
    pub(super) fn remove(&mut self, index: u32) -> Option<T> {
        let i = index as usize;
        let value = if i < self.dense.len() {
            self.dense[i].take()?
        } else if self.sparse.is_empty() {
            return None;
        } else {
            self.sparse.remove(&index)?
        };
        self.live -= 1;
        if self.own {
            self.release_own(i);
        } else if self.dense.len() > 4 * self.live + SLACK {
            self.cut();
        }
        Some(value)
    }

    /// The live objects with their indices, in increasing order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let dense = self.dense.iter().enumerate();
        let dense = dense.filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)));
        dense.chain(self.sparse.iter().map(|(&i, v)| (i, v)))
    }

    /// Heap bytes held: the vector's capacity, the free set's and the
    /// tree's entries (not their nodes' bookkeeping).
    pub(super) fn heap_bytes(&self) -> usize {
        self.dense.capacity() * size_of::<Option<T>>()
            + self.sparse.len() * (size_of::<u32>() + size_of::<T>())
            + self.free.len() * size_of::<u32>()
    }

    /// Lengthens the vector to `len` slots, moving the tree's entries it
    /// now covers into it.
    fn grow_to(&mut self, len: usize) {
        self.dense.resize_with(len, || None);
        if self.sparse.is_empty() {
            return;
        }
        // Every key is at least the old length, so `low` is what moved in.
        let high = self.sparse.split_off(&(len as u32));
        let low = std::mem::replace(&mut self.sparse, high);
        for (index, value) in low {
            self.dense[index as usize] = Some(value);
        }
    }

    /// Cuts the vector to `2 × live + SLACK` slots, moving the live
    /// objects past that into the tree, then drops trailing empty slots.
    fn cut(&mut self) {
        let keep = 2 * self.live + SLACK;
        for (offset, slot) in self.dense.drain(keep..).enumerate() {
            if let Some(value) = slot {
                self.sparse.insert((keep + offset) as u32, value);
            }
        }
        self.drop_trailing_empty();
    }

    /// After freeing `i` in the own range: the index joins the free set,
    /// or, at the end, the vector drops its trailing empty slots.
    fn release_own(&mut self, i: usize) {
        if i + 1 < self.dense.len() {
            self.free.insert(i as u32);
            return;
        }
        self.drop_trailing_empty();
        if !self.free.is_empty() {
            // Free indices at or past the new end are no longer slots.
            self.free.split_off(&(self.dense.len() as u32));
        }
    }

    /// Pops empty slots off the end, and gives capacity back when the
    /// vector holds more than twice what it could grow to soon.
    fn drop_trailing_empty(&mut self) {
        while matches!(self.dense.last(), Some(None)) {
            self.dense.pop();
        }
        let enough = 2 * self.dense.len() + SLACK;
        if self.dense.capacity() > 2 * enough {
            self.dense.shrink_to(enough);
        }
    }
}

#[cfg(test)]
impl<T> IdRange<T> {
    /// Panics unless the invariants the module notes promise hold.
    pub(super) fn check_invariants(&self) {
        let dense_live = self.dense.iter().filter(|v| v.is_some()).count();
        assert_eq!(self.live, dense_live + self.sparse.len(), "live count");
        let end = self.dense.len() as u32;
        assert!(self.sparse.keys().all(|&k| k >= end), "one home per index");
        assert!(self.sparse.keys().all(|&k| k < self.next), "no gaps");
        for &i in &self.free {
            assert!(self.dense[i as usize].is_none(), "free index {i} is live");
        }
        if self.own {
            assert!(self.sparse.is_empty(), "own range has no tree");
            let empty = self.dense.iter().filter(|v| v.is_none()).count();
            assert_eq!(self.free.len(), empty, "every empty slot is free");
        } else {
            assert!(self.free.is_empty(), "peer range keeps no free set");
            assert!(self.dense.len() <= 4 * self.live + SLACK, "waste bound");
        }
    }

    /// As if the peer had used and freed every index below `next`.
    pub(super) fn skip_to(&mut self, next: u32) {
        self.next = next;
    }

    /// Slots in the vector.
    pub(super) fn dense_len(&self) -> usize {
        self.dense.len()
    }

    /// Entries in the tree.
    pub(super) fn sparse_len(&self) -> usize {
        self.sparse.len()
    }
}
