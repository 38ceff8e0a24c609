//! What the event loop must watch for kept selections: a pipe to read, a
//! pipe to write, or a deadline, each under a [`JobId`]. The clipboard
//! adds and ends jobs as it goes; the runtime takes the changes once per
//! loop pass ([`Jobs::take`]) and registers or removes its sources.
//!
//! What it is not: the work itself (the clipboard does it when the
//! runtime reports a job ready) or calloop (the runtime's).

use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

/// One watched thing, by a number never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What to watch.
#[derive(Debug)]
pub enum Watch {
    /// A copier's pipe, until it is readable.
    Readable(Rc<OwnedFd>),
    /// A paster's pipe, until it is writable.
    Writable(Rc<OwnedFd>),
    /// Once, after this long.
    Timeout(Duration),
}

/// Jobs added and ended since the runtime last looked.
#[derive(Debug, Default)]
pub struct Jobs {
    next: u64,
    added: Vec<(JobId, Watch)>,
    ended: Vec<JobId>,
    /// Something was added or ended since the last [`Jobs::take`]: one
    /// flag for the check every loop pass makes.
    changed: bool,
}

impl Jobs {
    /// A new job: the loop starts watching at the end of this pass.
    pub fn add(&mut self, watch: Watch) -> JobId {
        self.next += 1;
        self.changed = true;
        let id = JobId(self.next);
        self.added.push((id, watch));
        id
    }

    /// The loop stops watching `id` (a job added this pass is never
    /// registered).
    pub fn end(&mut self, id: JobId) {
        self.changed = true;
        if let Some(at) = self.added.iter().position(|(added, _)| *added == id) {
            self.added.swap_remove(at);
        } else {
            self.ended.push(id);
        }
    }

    /// Whether the runtime has anything to do (checked once per loop
    /// pass).
    #[inline]
    pub fn has_changes(&self) -> bool {
        self.changed
    }

    /// The jobs to register and the jobs to remove, since the last call.
    pub fn take(&mut self) -> (Vec<(JobId, Watch)>, Vec<JobId>) {
        self.changed = false;
        (
            std::mem::take(&mut self.added),
            std::mem::take(&mut self.ended),
        )
    }
}
