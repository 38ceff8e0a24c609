//! The memory of an [`Outgoing`] queue: lending a server's spare chunks
//! and chunk queue to it for one wakeup ([`SharedChunks`]), and giving
//! room back once it drains.
//!
//! What it is: `borrow_chunks`/`return_chunks`, `release` and the
//! shrinking of drained queues. What it is not: the spare chunks
//! themselves ([`SpareChunks`], in `spare`), nor what decides that a
//! chunk was sent (`flush`).
//!
//! # Implementation notes
//!
//! - Memory follows what is queued: a chunk is freed once sent (up to
//!   `FREE_CHUNKS_MAX` are kept for reuse, in `spare`, while output is pending), a queue
//!   that drained to a quarter of its room gives most of the room back at
//!   the end of a wakeup that leaves output queued (`shrink_queues`, from
//!   `return_chunks`: never on the path of a reply that leaves at once),
//!   and an empty queue frees everything unless told to keep it. Measured
//!   over a server's wakeups: a queue drained from 1 MiB to 1,136 bytes
//!   holds 4,608 heap bytes (its chunk and 512 bytes of queue room), where
//!   it held 20,480 before `shrink_queues` (16 KiB of room for 512 chunks).

use std::collections::VecDeque;
use std::fmt;

use super::super::spare::SpareChunks;
use super::{Chunk, Outgoing};

/// Entries a queue keeps room for however far it drains (see `shrink_queue`).
const QUEUE_FLOOR: usize = 16;

impl Outgoing {
    /// Takes `shared`'s spare chunks, and its empty chunk queue, for this
    /// wakeup, when this queue has none of its own: the replies of a wakeup
    /// are encoded into chunks that are neither allocated nor zeroed for
    /// it, queued in a queue that is not allocated for it either.
    pub(in crate::connection) fn borrow_chunks(&mut self, shared: &mut SharedChunks) {
        if !self.lent && self.free.is_empty() {
            std::mem::swap(&mut self.free, &mut shared.free);
            self.lent = true;
        }
        if !self.lent_queue && self.chunks.capacity() == 0 {
            std::mem::swap(&mut self.chunks, &mut shared.queue);
            self.lent_queue = true;
        }
    }

    /// Gives back the spare chunks (sent ones included, up to
    /// `FREE_CHUNKS_MAX`), and the queue if nothing is left in it; chunks
    /// still queued stay with this queue.
    pub(in crate::connection) fn return_chunks(&mut self, shared: &mut SharedChunks) {
        if self.lent {
            self.lent = false;
            // Ours was empty when it was lent: empty again.
            std::mem::swap(&mut self.free, &mut shared.free);
        }
        if self.lent_queue {
            self.lent_queue = false;
            if self.chunks.is_empty() {
                std::mem::swap(&mut self.chunks, &mut shared.queue);
            }
        }
        if self.queued_bytes() == 0 {
            self.release();
        } else {
            self.shrink_queues();
        }
    }

    /// Frees every buffer of an empty queue, unless told to keep them (or
    /// its spare chunks are lent and must go back).
    ///
    /// Inline, and nothing but tests while there is nothing to free: the
    /// case of every wakeup that gave its lent buffers back.
    #[inline]
    pub(super) fn release(&mut self) {
        debug_assert!(self.fds.is_empty() && self.marks.is_empty());
        let own_chunks = !self.lent_queue && self.chunks.capacity() > 0;
        let own_free = !self.lent && !self.free.is_empty();
        let fd_room = self.fds.capacity() > 0 || self.marks.capacity() > 0;
        if !self.keep && (own_chunks || own_free || fd_room) {
            self.free_room();
        }
    }

    /// [`Outgoing::release`] when there is something to free.
    #[cold]
    fn free_room(&mut self) {
        if !self.lent_queue && self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
        if !self.lent {
            self.free.clear();
        }
        if self.fds.capacity() > 0 {
            self.fds = VecDeque::new();
        }
        if self.marks.capacity() > 0 {
            self.marks = VecDeque::new();
        }
    }

    /// Gives back the room of queues that drained most of the way. Called
    /// when a wakeup leaves output queued (the peer reads slowly, if at
    /// all); a queue that empties is freed whole instead.
    #[cold]
    fn shrink_queues(&mut self) {
        shrink_queue(&mut self.chunks);
        shrink_queue(&mut self.fds);
        shrink_queue(&mut self.marks);
    }
}

/// What a single-threaded server lends each connection's output for one
/// wakeup (see [`SharedBuffers`](super::super::SharedBuffers)).
#[derive(Default)]
pub(in crate::connection) struct SharedChunks {
    /// Spare chunks.
    free: SpareChunks,
    /// An empty queue with room for a few chunks.
    queue: VecDeque<Chunk>,
}

#[cfg(test)]
impl SharedChunks {
    /// The first spare chunk's address, and where the queue's buffer is
    /// (null while it has none), to check that the same allocations go round.
    pub(in crate::connection) fn addresses(&self) -> (*const u8, *const Chunk) {
        let free = self.free.first().map_or(std::ptr::null(), |c| c.as_ptr());
        let queue = if self.queue.capacity() == 0 {
            std::ptr::null()
        } else {
            self.queue.as_slices().0.as_ptr()
        };
        (free, queue)
    }
}

impl fmt::Debug for SharedChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedChunks")
            .field("free", &self.free.len())
            .field("queue_capacity", &self.queue.capacity())
            .finish()
    }
}

/// Gives back most of a queue's room once it holds under a quarter of
/// what it has room for: a queue that drained from hundreds of entries to
/// a few does not keep room for the hundreds until it is empty. Each
/// shrink halves the room at least, so its cost is paid by the pops
/// before it.
fn shrink_queue<T>(queue: &mut VecDeque<T>) {
    if queue.capacity() > QUEUE_FLOOR && queue.capacity() > 4 * queue.len() {
        queue.shrink_to((2 * queue.len()).max(QUEUE_FLOOR));
    }
}
