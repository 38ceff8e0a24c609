//! [`SpareChunks`]: the sent output chunks an [`Outgoing`](super::Outgoing)
//! queue keeps for its next messages, at most [`FREE_CHUNKS_MAX`].
//!
//! What it is: two inline slots. What it is not: a pool that grows, or a
//! list on the heap: slots in place cost no allocation of their own to
//! give back when a connection goes idle, and lending them for a wakeup
//! (`Connection::borrow_buffers`) is a swap of four words, where a `Vec`
//! was a swap, a truncation and a drop.

/// Sent chunks kept for reuse while the queue is not empty.
pub(super) const FREE_CHUNKS_MAX: usize = 2;

/// Up to [`FREE_CHUNKS_MAX`] spare chunks (see the module notes).
#[derive(Default)]
pub(super) struct SpareChunks([Option<Box<[u8]>>; FREE_CHUNKS_MAX]);

impl SpareChunks {
    /// A spare chunk, if one is kept.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<Box<[u8]>> {
        self.0.iter_mut().rev().find_map(Option::take)
    }

    /// Keeps `chunk` if a slot is free; drops it otherwise.
    #[inline]
    pub(super) fn push(&mut self, chunk: Box<[u8]>) {
        if let Some(slot) = self.0.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(chunk);
        }
    }

    /// How many chunks are kept.
    pub(super) fn len(&self) -> usize {
        self.0.iter().filter(|slot| slot.is_some()).count()
    }

    /// Whether none is kept.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// Drops every chunk kept.
    pub(super) fn clear(&mut self) {
        self.0 = Default::default();
    }

    /// The first chunk kept, for tests that follow an allocation round.
    #[cfg(test)]
    pub(super) fn first(&self) -> Option<&[u8]> {
        self.0.iter().find_map(|slot| slot.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(byte: u8) -> Box<[u8]> {
        vec![byte; 4].into_boxed_slice()
    }

    #[test]
    fn keeps_at_most_two_and_gives_each_back_once() {
        let mut spare = SpareChunks::default();
        assert!(spare.is_empty());
        for byte in 1..=3 {
            spare.push(chunk(byte));
        }
        // The third did not fit: dropped.
        assert_eq!(spare.len(), 2);
        let mut popped: Vec<u8> = std::iter::from_fn(|| spare.pop()).map(|c| c[0]).collect();
        popped.sort_unstable();
        assert_eq!(popped, [1, 2]);
        assert!(spare.is_empty());
        spare.push(chunk(4));
        assert_eq!(spare.first(), Some(&[4u8; 4][..]));
        spare.clear();
        assert_eq!(spare.len(), 0);
    }
}
