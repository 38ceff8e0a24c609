//! Keeping a selection in the server: the file primitives behind
//! `--persist`. A [`Reader`] drains one MIME type's pipe from the copier
//! into a memfd and seals it ([`Kept`]); a [`Writer`] pours a kept file
//! into a paster's pipe; a [`Budget`] charges every byte kept to the uid
//! of the copier that caused it; [`Jobs`] lists the fds the event loop must
//! watch for them.
//!
//! What it is: non-blocking file work, one step per wakeup, with no
//! knowledge of the protocol or of the loop. What it is not: the policy
//! (which types to read, when the server takes a selection over, who may
//! paste): that is the clipboard's (`proto::clipboard::persist`), and the
//! loop's registrations are the runtime's.
//!
//! # Implementation notes
//!
//! - **Never blocking.** Pipes are read with `splice(SPLICE_F_NONBLOCK)`
//!   from a read end that is itself non-blocking, and written with
//!   `splice(SPLICE_F_NONBLOCK)` into the paster's pipe, so neither side
//!   can stall the loop; a step moves at most [`STEP_BYTES`] and then
//!   yields, so one fast peer cannot hold a wakeup either.
//! - **Pages, not heap.** The bytes go from the copier's pipe into the
//!   memfd and from the memfd into the paster's pipe by `splice`: they
//!   never pass through the server's heap, and its RSS does not count them
//!   (the memfd's pages are shared memory, charged to the budget).
//! - **A file is sealed once complete** (`F_SEAL_SHRINK | GROW | WRITE |
//!   SEAL`), as the keymap is: what a paster is served cannot change under
//!   it, and a splice from it cannot fault.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

mod jobs;
mod reader;
mod relay;
mod writer;

pub use jobs::{JobId, Jobs, Watch};
pub use reader::{Kept, ReadStep, Reader};
pub use relay::{Relay, RelayStep};
pub use writer::{WriteStep, Writer};

/// The most bytes one step of a [`Reader`] or [`Writer`] moves before it
/// yields to the loop.
pub const STEP_BYTES: usize = 1 << 20;

/// The name of every memfd a selection is kept in (`/proc/PID/fd` shows
/// `/memfd:waypass-selection (deleted)`).
pub const MEMFD_NAME: &str = "waypass-selection";

/// How many uids' worth of kept bytes the server holds at most: the two
/// selections of two uids, with room for copies that pastes still read
/// after their selection changed.
pub const TOTAL_SHARES: u64 = 4;

/// The bytes kept selections may hold: one uid at most `max`, both
/// selections and every type together, and every uid together at most
/// [`TOTAL_SHARES`] × `max`. Cheap to clone: the charges share one table.
#[derive(Debug, Clone)]
pub struct Budget {
    table: Rc<RefCell<Table>>,
}

#[derive(Debug)]
struct Table {
    max: u64,
    held: HashMap<u32, u64>,
    total: u64,
}

impl Budget {
    /// A budget of `max` bytes per uid.
    pub fn new(max: u64) -> Budget {
        Budget {
            table: Rc::new(RefCell::new(Table {
                max,
                held: HashMap::new(),
                total: 0,
            })),
        }
    }

    /// What `uid` may still take.
    pub fn left(&self, uid: u32) -> u64 {
        let table = self.table.borrow();
        let mine = table.held.get(&uid).copied().unwrap_or(0);
        let total = table.max.saturating_mul(TOTAL_SHARES);
        table
            .max
            .saturating_sub(mine)
            .min(total.saturating_sub(table.total))
    }

    /// What `uid` holds now.
    #[cfg(test)]
    pub fn held(&self, uid: u32) -> u64 {
        self.table.borrow().held.get(&uid).copied().unwrap_or(0)
    }

    /// An empty charge to `uid`, to grow as bytes come.
    pub fn open(&self, uid: u32) -> Charge {
        Charge {
            budget: self.clone(),
            uid,
            bytes: 0,
        }
    }
}

/// Bytes charged to one uid; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Budget,
    uid: u32,
    bytes: u64,
}

impl Charge {
    /// Charges `more` bytes, or nothing if the uid has not that much left.
    pub fn grow(&mut self, more: u64) -> bool {
        if self.budget.left(self.uid) < more {
            return false;
        }
        let mut table = self.budget.table.borrow_mut();
        *table.held.entry(self.uid).or_default() += more;
        table.total += more;
        self.bytes += more;
        true
    }

    /// What the uid may still add to this charge.
    pub fn left(&self) -> u64 {
        self.budget.left(self.uid)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut table = self.budget.table.borrow_mut();
        table.total = table.total.saturating_sub(self.bytes);
        if let Some(held) = table.held.get_mut(&self.uid) {
            *held = held.saturating_sub(self.bytes);
            if *held == 0 {
                table.held.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests;
