//! `--persist`: the server keeps each selection, so that it outlives the
//! client that copied it. When a source becomes a selection, the server
//! asks its client for every offered type, as a paster would
//! (`send(mime, fd)` with the write end of a pipe of its own), and reads
//! each pipe into a sealed memfd without blocking ([`crate::persist`]).
//! When the source goes, the server becomes the source: devices keep
//! their offer (or get one of the types kept, if some were not), and
//! pastes are served from the memfds.
//!
//! What it is: the policy over the file primitives — which types to read,
//! when a copy is complete, kept or dropped, who may paste, and what each
//! costs whom. What it is not: the file work ([`crate::persist`]), the
//! pastes' bookkeeping (`pastes`), what follows a watch's readiness
//! (`ready`), or the loop's watches (the runtime's, through [`Jobs`]).
//!
//! # Implementation notes
//!
//! - **Costs.** Every byte kept is charged to the copier's uid
//!   ([`Budget`], `--persist-max`, and every uid together at most
//!   [`TOTAL_SHARES`](crate::persist::TOTAL_SHARES) times that); a type
//!   that would go past what the uid has left is not kept (its pipe is closed, and the copier's writer sees
//!   `EPIPE`). A copier that never writes costs its own budget until
//!   `persist-deadline-ms`, when its unfinished types are given up. The
//!   reads are the copier's own pastes: each `send` counts against its
//!   `pending-sends` and fds in flight, and [`PARALLEL_READS`] types are
//!   read at once. A paster's fd, waiting for a type being read or being
//!   written into, is charged to the paster (`pastes`, per client, per
//!   uid and in total), never to the copier.
//! - **Serving from the copy at once.** A paste of a type that is kept is
//!   served by the server even while the copier lives: the bytes are the
//!   same, and the paster waits one hop less. A paste of a type still
//!   being read *follows* the read: what has been read is written at once,
//!   the rest as it comes (copied, not spliced, until the copy is sealed:
//!   a page spliced into a pipe stays pinned until read, and a pinned page
//!   makes `F_SEAL_WRITE` fail). Any other paste goes to the copier as
//!   without `--persist`.
//! - **A read that fails** (over the budget, past the deadline) strands
//!   the pastes that followed it. One that was sent nothing yet goes to
//!   the copier as a plain paste. One that was sent some bytes is finished
//!   by a relay: the copier is asked again, and the server passes on what
//!   it writes, less the bytes the paster already has. So a paste is never
//!   cut short while its copier lives; once the copier has gone, it is cut
//!   (as a live copier's paste is when the copier dies).
//! - **Handing over.** When the source is destroyed or its client leaves:
//!   if every read has ended, the server becomes the source, under a key
//!   of its own ([`ClientKey::SERVER`]). If every offered type was kept,
//!   nothing changes for devices (the offers they hold keep working: they
//!   are checked by the selection's generation, which is unchanged);
//!   otherwise the generation moves on and devices are told of an offer of
//!   the kept types only. A copy whose reads are still going is dropped,
//!   and the selection is cleared as without `--persist`: it is never half
//!   served.
//! - **Dropping.** Any change of a selection drops its copy: reads stop,
//!   and the pastes following them are cut (the paster reads EOF, as from
//!   a cancelled source). A paste already being written goes on from the old file,
//!   which lives (and stays charged to its copier) until that paste ends;
//!   one that makes no progress for `persist-deadline-ms` is cut then.
//! - **Passwords.** A source that offers `x-kde-passwordManagerHint` (the
//!   convention of KeePassXC and KDE's clipboard) is never copied.

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, info, warn};
use rustc_hash::FxHashMap;

use super::flavor::{send_source, SourceEvent};
use super::requests::copier_has_room;
use super::{Clipboard, Offer, Source, SourceKey, Which};
use crate::limits::{Budgets, Limits};
use crate::persist::{Budget, JobId, Jobs, Kept, Reader, Watch};
use crate::proto::ctx::{Ctx, Stop};
use crate::state::ClientKey;

mod pastes;
mod ready;

use pastes::{Pastes, Stranded};
pub use ready::{job_failed, job_ready};

/// Types of one selection read at once.
pub const PARALLEL_READS: usize = 4;

/// What password managers offer beside their data, so that clipboard
/// managers leave it alone.
const PASSWORD_HINT: &[u8] = b"x-kde-passwordManagerHint";

/// The kept selections and everything in flight for them.
#[derive(Debug, Default)]
pub struct Persistence {
    /// `None` without `--persist`.
    budget: Option<Budget>,
    deadline: Duration,
    copies: [Option<Copy>; 2],
    /// Read jobs: which selection's part.
    reads: FxHashMap<JobId, (Which, usize)>,
    pastes: Pastes,
    jobs: Jobs,
    /// The last id given to a source the server took over.
    taken_over: u32,
}

/// One selection's copy: its types, read or being read.
#[derive(Debug)]
struct Copy {
    /// The selection's generation it stands for.
    generation: u64,
    /// The source it is read from; the server's own key once handed over.
    source: SourceKey,
    uid: u32,
    who: String,
    /// The copier's time to write, while reads go on.
    deadline: Option<JobId>,
    parts: Vec<Part>,
    /// The next part to read.
    next: usize,
    /// Pastes started from this copy (some may have ended).
    pastes: Vec<JobId>,
    logged: bool,
}

#[derive(Debug)]
struct Part {
    mime: CString,
    state: PartState,
}

#[derive(Debug)]
enum PartState {
    /// Not asked for yet.
    Unread,
    /// Its pipe is being read; pastes of it follow the read.
    Reading {
        job: JobId,
        reader: Reader,
    },
    Kept(Rc<Kept>),
    /// Over the budget, past the deadline, or failed: not kept.
    Lost,
}

impl Copy {
    fn complete(&self) -> bool {
        self.next == self.parts.len() && self.reading() == 0
    }

    /// Whether its source is still a client's (not the server's own).
    fn is_live(&self) -> bool {
        self.source.client != ClientKey::SERVER
    }

    /// Parts being read now.
    fn reading(&self) -> usize {
        let reading = |p: &&Part| matches!(p.state, PartState::Reading { .. });
        self.parts.iter().filter(reading).count()
    }

    fn kept(&self) -> impl Iterator<Item = (&CString, &Rc<Kept>)> {
        self.parts.iter().filter_map(|p| match &p.state {
            PartState::Kept(kept) => Some((&p.mime, kept)),
            _ => None,
        })
    }

    fn summary(&self) -> (usize, u64) {
        self.kept()
            .fold((0, 0), |(n, bytes), (_, kept)| (n + 1, bytes + kept.len()))
    }
}

impl Persistence {
    /// Keeps nothing unless `max_bytes` is given (`--persist`).
    pub fn new(
        max_bytes: Option<u64>,
        limits: &Limits,
        budgets: &Budgets,
        server_uid: u32,
    ) -> Persistence {
        Persistence {
            budget: max_bytes.map(Budget::new),
            deadline: Duration::from_millis(limits.persist_deadline_ms),
            pastes: Pastes::new(limits.pastes, budgets.pastes, server_uid),
            ..Persistence::default()
        }
    }

    /// The watches to add and remove, for the runtime.
    #[inline]
    pub fn jobs(&mut self) -> &mut Jobs {
        &mut self.jobs
    }

    /// A client left: its pastes go on (a paster may hand the pipe to
    /// another process and hang up) while they make progress, and no
    /// longer count per client.
    pub fn client_gone(&mut self, key: ClientKey) {
        self.pastes.client_gone(&mut self.jobs, key, self.deadline);
    }

    /// Drops the copy of `which`, if any (see the module notes).
    pub(super) fn drop_copy(&mut self, which: Which, reason: &str) {
        let Some(copy) = self.copies[which.index()].take() else {
            return;
        };
        if let Some(deadline) = copy.deadline {
            self.jobs.end(deadline);
        }
        for part in copy.parts {
            if let PartState::Reading { job, reader } = part.state {
                self.jobs.end(job);
                self.reads.remove(&job);
                // Pastes that followed the read are cut where they are.
                for stranded in self.pastes.strand(&mut self.jobs, reader.kept()) {
                    self.pastes.close_waiting(stranded.waiting);
                }
            }
        }
        self.pastes
            .orphan(&mut self.jobs, copy.pastes, self.deadline);
        info!(
            "dropped the copy of the {} selection: {reason}",
            which.name()
        );
    }

    /// Logs a copy once complete, and ends its deadline.
    fn log_if_complete(&mut self, which: Which) {
        let Some(copy) = self.copies[which.index()].as_mut() else {
            return;
        };
        if copy.logged || !copy.complete() {
            return;
        }
        copy.logged = true;
        if let Some(deadline) = copy.deadline.take() {
            self.jobs.end(deadline);
        }
        let (kept, bytes) = copy.summary();
        info!(
            "persisted the {} selection of client ({}): {kept} of {} types, {bytes} bytes",
            which.name(),
            copy.who,
            copy.parts.len()
        );
    }
}

/// The `which` selection is now `new` (set by `cx`'s client): its copy
/// starts, if `--persist` is on. The old copy went with the change.
// Out of line, as `paste`: inlined into the dispatch of every request,
// they cost a sync round trip 5 instructions (callgrind).
#[inline(never)]
pub fn selection_set(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    which: Which,
    new: Option<SourceKey>,
) -> Result<(), Stop> {
    let Some(key) = new else {
        return Ok(());
    };
    let persist = &mut clipboard.persist;
    if persist.budget.is_none() {
        return Ok(());
    }
    let Some(source) = clipboard.sources.get(&key) else {
        return Ok(());
    };
    if source.mimes.is_empty() {
        return Ok(());
    }
    if source.mimes.iter().any(|m| m.as_bytes() == PASSWORD_HINT) {
        debug!(
            "not keeping a selection marked as a password ({})",
            cx.who()
        );
        return Ok(());
    }
    let parts = source
        .mimes
        .iter()
        .map(|mime| Part {
            mime: mime.clone(),
            state: PartState::Unread,
        })
        .collect();
    let deadline = persist.jobs.add(Watch::Timeout(persist.deadline));
    persist.copies[which.index()] = Some(Copy {
        generation: clipboard.generation[which.index()],
        source: key,
        uid: cx.uid(),
        who: cx.who(),
        deadline: Some(deadline),
        parts,
        next: 0,
        pastes: Vec::new(),
        logged: false,
    });
    read_more(cx, clipboard, which)
}

/// Asks the copier (`cx`'s client) for the next types of `which`, up to
/// [`PARALLEL_READS`] at once, as its room for `send`s allows.
fn read_more(cx: &mut Ctx<'_>, clipboard: &mut Clipboard, which: Which) -> Result<(), Stop> {
    let Clipboard {
        persist, sources, ..
    } = clipboard;
    let Persistence {
        budget,
        copies,
        reads,
        jobs,
        ..
    } = persist;
    let (Some(budget), Some(copy)) = (budget.as_ref(), copies[which.index()].as_mut()) else {
        return Ok(());
    };
    let Some(flavor) = sources.get(&copy.source).map(|s| s.flavor) else {
        return Ok(());
    };
    while copy.is_live() && copy.reading() < PARALLEL_READS && copy.next < copy.parts.len() {
        let index = copy.next;
        copy.next += 1;
        let part = &mut copy.parts[index];
        if !copier_has_room(cx, &part.mime) {
            debug!(
                "not keeping {:?}: the copier ({}) has no room for one more send",
                part.mime, copy.who
            );
            part.state = PartState::Lost;
            continue;
        }
        let (reader, write) = match Reader::new(budget.open(copy.uid)) {
            Ok(made) => made,
            Err(e) => {
                warn!("cannot read a selection to keep it: {e}");
                part.state = PartState::Lost;
                continue;
            }
        };
        let send = SourceEvent::Send {
            mime_type: &part.mime,
            fd: write,
        };
        send_source(cx, flavor, copy.source.id, send)?;
        let job = jobs.add(Watch::Readable(Rc::clone(reader.pipe())));
        reads.insert(job, (which, index));
        part.state = PartState::Reading { job, reader };
    }
    persist.log_if_complete(which);
    Ok(())
}

/// Source `key` of the `which` selection is going. Whether the server
/// took the selection over (otherwise the caller clears it).
pub(super) fn hand_over(
    clipboard: &mut Clipboard,
    which: Which,
    key: SourceKey,
    gone: &Source,
) -> bool {
    let i = which.index();
    let persist = &mut clipboard.persist;
    let Some(copy) = persist.copies[i]
        .as_mut()
        .filter(|c| c.is_live() && c.source == key)
    else {
        return false;
    };
    if !copy.complete() {
        persist.drop_copy(which, "its copier left before every type was read");
        return false;
    }
    let mimes: Vec<CString> = copy.kept().map(|(mime, _)| mime.clone()).collect();
    if mimes.is_empty() {
        persist.drop_copy(which, "its copier left, and no type was kept");
        return false;
    }
    let whole = mimes.len() == copy.parts.len();
    persist.taken_over = persist.taken_over.wrapping_add(1);
    let ours = SourceKey {
        client: ClientKey::SERVER,
        id: persist.taken_over,
    };
    let (kept, bytes) = copy.summary();
    copy.source = ours;
    clipboard.sources.insert(
        ours,
        Source {
            flavor: gone.flavor,
            mimes: Rc::new(mimes),
            used: true,
        },
    );
    clipboard.selection[i] = Some(ours);
    if !whole {
        // Devices must not be offered what cannot be served.
        clipboard.generation[i] += 1;
        clipboard.changed = true;
        copy.generation = clipboard.generation[i];
    }
    info!(
        "the server now serves the {} selection ({kept} types, {bytes} bytes): its copier left",
        which.name()
    );
    true
}

/// A paste of `mime` on `offer` by `cx`'s client: served from the copy
/// (now, or once its read ends), or handed back (`Some(fd)`) for the
/// copier to serve.
#[inline(never)]
pub(super) fn paste(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    offer: Offer,
    mime: &CStr,
    fd: OwnedFd,
) -> Option<OwnedFd> {
    let Persistence {
        copies,
        pastes,
        jobs,
        deadline,
        ..
    } = &mut clipboard.persist;
    let deadline = *deadline;
    let Some(copy) = copies[offer.which.index()]
        .as_mut()
        .filter(|c| c.generation == offer.generation)
    else {
        return Some(fd);
    };
    let Some(part) = copy.parts.iter_mut().find(|p| p.mime.as_c_str() == mime) else {
        return Some(fd);
    };
    match &mut part.state {
        PartState::Kept(kept) => {
            let kept = Rc::clone(kept);
            if let Some(paste) = pastes.admit(cx, fd) {
                pastes.start(jobs, kept, paste, &mut copy.pastes, deadline);
            }
            None
        }
        // It follows the read: what is read is written as it comes.
        PartState::Reading { reader, .. } => {
            let kept = Rc::clone(reader.kept());
            if let Some(paste) = pastes.admit(cx, fd) {
                pastes.start(jobs, kept, paste, &mut copy.pastes, deadline);
            }
            None
        }
        PartState::Unread | PartState::Lost => Some(fd),
    }
}
