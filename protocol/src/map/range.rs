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
//!   at the tree.
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
//! - **The hot path** (a server's `get` per message, and `insert_at` and
//!   `remove` per `sync`) stays what it was with one vector, give or take a
//!   branch: the tree is reached only through `#[cold]` out-of-line calls;
//!   the tree holds `Some(T)` slots and an `absent` `None` slot stands for
//!   a missing index, so that a lookup yields a slot wherever it found it,
//!   and the caller's `match` on the result folds into the slot's own tag
//!   check, as with a plain vector (returning an `Option<&T>` from the
//!   cold call instead cost 22 more instructions per round trip); an
//!   insertion at a used index checks only the slot (the vector never
//!   reaches past the high-water mark, which never passes the bound); the
//!   own range and the cut share one branch after a removal.
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
    /// Objects at indices from `dense.len()` up (the peer's range only),
    /// each `Some`: a lookup returns a slot, wherever it is.
    sparse: BTreeMap<u32, Option<T>>,
    /// Always `None`: the slot of an index that is in neither.
    absent: Option<T>,
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
            absent: None,
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
        let slot = match self.dense.get(index as usize) {
            Some(slot) => slot,
            None => self.sparse_slot(index),
        };
        slot.as_ref()
    }

    /// The object at `index`, mutably.
    #[inline]
    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        let i = index as usize;
        if i < self.dense.len() {
            self.dense[i].as_mut()
        } else {
            self.get_sparse_mut(index)
        }
    }

    /// As [`IdRange::sparse_slot`], mutably.
    #[cold]
    #[inline(never)]
    fn get_sparse_mut(&mut self, index: u32) -> Option<&mut T> {
        self.sparse.get_mut(&index)?.as_mut()
    }

    /// A lookup past the dense part: out of line, so that the tree's
    /// search does not weigh on the usual lookup's code.
    #[cold]
    #[inline(never)]
    fn sparse_slot(&self, index: u32) -> &Option<T> {
        self.sparse.get(&index).unwrap_or(&self.absent)
    }

    /// Inserts at an index the peer chose: past the bound is `TooHigh`,
    /// past the high-water mark is `NotNext`, a live index is `InUse`.
    #[inline]
    pub(super) fn insert_at(&mut self, index: u32, value: T) -> Result<(), InsertError> {
        // The usual case, an id used before: the vector never reaches past
        // the high-water mark, which never passes the bound, so only the
        // slot needs checking.
        if let Some(slot) = self.dense.get_mut(index as usize) {
            if slot.is_some() {
                return Err(InsertError::InUse);
            }
            *slot = Some(value);
            self.live += 1;
            return Ok(());
        }
        self.insert_past_dense(index, value)
    }

    /// [`IdRange::insert_at`] past the vector's end.
    #[cold]
    #[inline(never)]
    fn insert_past_dense(&mut self, index: u32, value: T) -> Result<(), InsertError> {
        if index > self.max_index {
            return Err(InsertError::TooHigh);
        }
        if index > self.next {
            return Err(InsertError::NotNext);
        }
        let i = index as usize;
        if self.sparse.contains_key(&index) {
            return Err(InsertError::InUse);
        } else if i == self.dense.len() && self.sparse.is_empty() {
            // The next id, with nothing beyond.
            self.dense.push(Some(value));
        } else if i < 2 * (self.live + 1) + SLACK {
            self.grow_to(i + 1);
            self.dense[i] = Some(value);
        } else {
            self.sparse.insert(index, Some(value));
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
    #[inline]
    pub(super) fn remove(&mut self, index: u32) -> Option<T> {
        let i = index as usize;
        let Some(slot) = self.dense.get_mut(i) else {
            return self.remove_slow(index);
        };
        let value = slot.take()?;
        self.live -= 1;
        // One branch for both rare cases: the own range frees the index,
        // the peer's may have to cut the vector.
        if self.own | (self.dense.len() > 4 * self.live + SLACK) {
            self.after_remove(i);
        }
        Some(value)
    }

    /// What a removal from the vector may leave to do: in the own range,
    /// free the index; in the peer's, cut a vector that outgrew the bound.
    #[cold]
    #[inline(never)]
    fn after_remove(&mut self, i: usize) {
        if self.own {
            self.release_own(i);
        } else {
            self.cut();
        }
    }

    /// [`IdRange::remove`] past the vector's end.
    #[cold]
    #[inline(never)]
    fn remove_slow(&mut self, index: u32) -> Option<T> {
        let value = self.sparse.remove(&index)??;
        self.live -= 1;
        Some(value)
    }

    /// The live objects with their indices, in increasing order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let dense = self.dense.iter().enumerate();
        let dense = dense.filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)));
        let sparse = self.sparse.iter();
        dense.chain(sparse.filter_map(|(&i, v)| v.as_ref().map(|v| (i, v))))
    }

    /// Heap bytes held: the vector's capacity, the free set's and the
    /// tree's entries (not their nodes' bookkeeping).
    pub(super) fn heap_bytes(&self) -> usize {
        self.dense.capacity() * size_of::<Option<T>>()
            + self.sparse.len() * (size_of::<u32>() + size_of::<Option<T>>())
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
            self.dense[index as usize] = value;
        }
    }

    /// Cuts the vector to `2 × live + SLACK` slots, moving the live
    /// objects past that into the tree, then drops trailing empty slots.
    fn cut(&mut self) {
        let keep = 2 * self.live + SLACK;
        for (offset, slot) in self.dense.drain(keep..).enumerate() {
            if slot.is_some() {
                self.sparse.insert((keep + offset) as u32, slot);
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
        assert!(
            self.dense.len() <= self.next as usize,
            "the vector stops at the mark"
        );
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
