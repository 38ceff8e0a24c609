//! What the loop reports for kept selections, and what follows: a read's
//! pipe readable (one step; at its end the waiting pastes are served and
//! the next type asked for), a paste's fd writable, a copier's deadline or
//! a sweep's time come.
//!
//! What it is not: the policy's entry points from requests (the parent
//! module) or the loop (the runtime calls [`job_ready`] through `Core`).

use std::ffi::CStr;
use std::rc::Rc;

use log::{info, warn};

use super::super::requests::forward;
use super::super::{Clipboard, Which};
use super::{read_more, PartState, Waiting};
use crate::persist::{JobId, ReadStep};
use crate::proto::ctx::{with_client, Shared, World};

/// The loop found job `job` ready (or its time come). Whether to keep
/// watching it.
pub fn job_ready(
    clipboard: &mut Clipboard,
    shared: &Shared,
    world: &mut World<'_>,
    job: JobId,
) -> bool {
    let persist = &mut clipboard.persist;
    if persist.pastes.is_writer(job) {
        return persist.pastes.write_ready(job);
    }
    if persist.pastes.is_sweep(job) {
        let deadline = persist.deadline;
        persist.pastes.sweep(&mut persist.jobs, job, deadline);
        return false;
    }
    if let Some(&(which, index)) = persist.reads.get(&job) {
        return read_ready(clipboard, shared, world, which, index, None);
    }
    if let Some(which) = Which::BOTH.into_iter().find(|w| {
        persist.copies[w.index()]
            .as_ref()
            .is_some_and(|c| c.deadline == Some(job))
    }) {
        deadline_passed(clipboard, shared, world, which);
    }
    false
}

/// A watch could not be set up: the job ends now, as if its pipe had
/// failed or its time had come.
pub fn job_failed(clipboard: &mut Clipboard, shared: &Shared, world: &mut World<'_>, job: JobId) {
    let persist = &mut clipboard.persist;
    if persist.pastes.is_writer(job) {
        persist.pastes.cut(job);
    } else if let Some(&(which, index)) = persist.reads.get(&job) {
        let failed = ReadStep::Failed(std::io::Error::other("the pipe cannot be watched"));
        read_ready(clipboard, shared, world, which, index, Some(failed));
    } else {
        job_ready(clipboard, shared, world, job);
    }
}

/// A read's pipe is readable: one step of it (or `forced`); when it ends,
/// its waiting pastes are served and the next type is asked for.
fn read_ready(
    clipboard: &mut Clipboard,
    shared: &Shared,
    world: &mut World<'_>,
    which: Which,
    index: usize,
    forced: Option<ReadStep>,
) -> bool {
    let persist = &mut clipboard.persist;
    let Some(copy) = persist.copies[which.index()].as_mut() else {
        return false;
    };
    let PartState::Reading { reader, .. } = &mut copy.parts[index].state else {
        return false;
    };
    let step = forced.unwrap_or_else(|| reader.read_some());
    if matches!(step, ReadStep::More) {
        return true;
    }
    let part = &mut copy.parts[index];
    let PartState::Reading {
        job,
        reader,
        waiting,
    } = std::mem::replace(&mut part.state, PartState::Lost)
    else {
        return false;
    };
    persist.reads.remove(&job);
    copy.reading -= 1;
    match step {
        ReadStep::Done => match reader.finish() {
            Ok(kept) => part.state = PartState::Kept(Rc::new(kept)),
            Err(e) => warn!("cannot seal a kept selection: {e}"),
        },
        ReadStep::OverBudget => info!(
            "not keeping {:?} of the {} selection: client ({}) went past its uid's budget",
            part.mime,
            which.name(),
            copy.who
        ),
        ReadStep::Failed(e) => warn!(
            "cannot read {:?} from client ({}): {e}",
            part.mime, copy.who
        ),
        ReadStep::More => {}
    }
    let mime = part.mime.clone();
    let kept = match &part.state {
        PartState::Kept(kept) => Some(Rc::clone(kept)),
        _ => None,
    };
    match kept {
        Some(kept) => {
            for paste in waiting {
                let kept = Rc::clone(&kept);
                let started = &mut copy.pastes;
                let deadline = persist.deadline;
                persist
                    .pastes
                    .start(&mut persist.jobs, kept, paste, started, deadline);
            }
        }
        None => send_to_copier(clipboard, shared, world, which, &mime, waiting),
    }
    let copier = clipboard.persist.copies[which.index()]
        .as_ref()
        .map(|c| (c.source.client, c.live));
    match copier {
        Some((client, true)) => {
            with_client(shared, world, client, |cx| read_more(cx, clipboard, which));
        }
        _ => clipboard.persist.log_if_complete(which),
    }
    false
}

/// The copier's time is up: every type not read by now is given up.
fn deadline_passed(
    clipboard: &mut Clipboard,
    shared: &Shared,
    world: &mut World<'_>,
    which: Which,
) {
    let persist = &mut clipboard.persist;
    let Some(copy) = persist.copies[which.index()].as_mut() else {
        return;
    };
    copy.deadline = None;
    copy.next = copy.parts.len();
    let mut unserved = Vec::new();
    for part in &mut copy.parts {
        match std::mem::replace(&mut part.state, PartState::Lost) {
            PartState::Reading { job, waiting, .. } => {
                persist.jobs.end(job);
                persist.reads.remove(&job);
                copy.reading -= 1;
                unserved.push((part.mime.clone(), waiting));
            }
            PartState::Unread | PartState::Lost => {}
            kept @ PartState::Kept(_) => part.state = kept,
        }
    }
    if !unserved.is_empty() {
        info!(
            "client ({}) did not write {} types of the {} selection in time: not kept",
            copy.who,
            unserved.len(),
            which.name()
        );
    }
    for (mime, waiting) in unserved {
        send_to_copier(clipboard, shared, world, which, &mime, waiting);
    }
    clipboard.persist.log_if_complete(which);
}

/// Pastes that waited for a read that failed: the copier serves them, if
/// it is still there; otherwise they are closed (the paster reads EOF).
fn send_to_copier(
    clipboard: &mut Clipboard,
    shared: &Shared,
    world: &mut World<'_>,
    which: Which,
    mime: &CStr,
    waiting: Vec<Waiting>,
) {
    if waiting.is_empty() {
        return;
    }
    let persist = &mut clipboard.persist;
    let source = persist.copies[which.index()]
        .as_ref()
        .filter(|c| c.live)
        .map(|c| c.source);
    let flavor = source
        .and_then(|s| clipboard.sources.get(&s))
        .map(|s| s.flavor);
    let mut fds = Vec::with_capacity(waiting.len());
    for paste in waiting {
        fds.push(persist.pastes.release_waiting(paste));
    }
    let (Some(source), Some(flavor)) = (source, flavor) else {
        return; // the fds close here
    };
    with_client(shared, world, source.client, |cx| {
        for fd in fds {
            forward(cx, source.id, flavor, mime, fd)?;
        }
        Ok(())
    });
}
