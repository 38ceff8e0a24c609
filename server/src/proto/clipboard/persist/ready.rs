//! What the loop reports for kept selections, and what follows: a read's
//! pipe readable (one step; the pastes following it write on; at its end
//! the next type is asked for), a paste's fd writable, a relay's end
//! ready, a copier's deadline or a sweep's time come. A read that fails
//! strands the pastes that followed it: one sent nothing yet goes to the
//! copier as a plain paste; one sent some bytes is finished by a relay
//! from the copier that drops what it already has.
//!
//! What it is not: the policy's entry points from requests (the parent
//! module) or the loop (the runtime calls [`job_ready`] through `Core`).

use std::ffi::CStr;
use std::rc::Rc;

use log::{info, warn};

use super::super::flavor::{send_source, SourceEvent};
use super::super::requests::{copier_has_room, forward};
use super::super::{Clipboard, Which};
use super::{read_more, PartState, Stranded};
use crate::persist::{JobId, Kept, ReadStep};
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
    if persist.pastes.is_relay(job) {
        return persist.pastes.relay_ready(&mut persist.jobs, job);
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
    if persist.pastes.is_writer(job) || persist.pastes.is_relay(job) {
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
    let before = reader.kept().len();
    let step = forced.unwrap_or_else(|| reader.read_some());
    if matches!(step, ReadStep::More) {
        if reader.kept().len() > before {
            // The pastes that follow the read write what came.
            let kept = Rc::clone(reader.kept());
            let deadline = persist.deadline;
            let started = &mut copy.pastes;
            persist
                .pastes
                .grown(&mut persist.jobs, &kept, started, deadline);
        }
        return true;
    }
    let part = &mut copy.parts[index];
    let PartState::Reading { job, reader } = std::mem::replace(&mut part.state, PartState::Lost)
    else {
        return false;
    };
    persist.reads.remove(&job);
    let following = Rc::clone(reader.kept());
    match step {
        ReadStep::Done => match reader.finish() {
            Ok(kept) => part.state = PartState::Kept(kept),
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
    if matches!(part.state, PartState::Kept(_)) {
        let deadline = persist.deadline;
        let started = &mut copy.pastes;
        persist
            .pastes
            .grown(&mut persist.jobs, &following, started, deadline);
    } else {
        strand(clipboard, shared, world, which, &mime, &following);
    }
    let copier = clipboard.persist.copies[which.index()]
        .as_ref()
        .map(|c| (c.source.client, c.is_live()));
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
            PartState::Reading { job, reader } => {
                persist.jobs.end(job);
                persist.reads.remove(&job);
                unserved.push((part.mime.clone(), Rc::clone(reader.kept())));
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
    for (mime, following) in unserved {
        strand(clipboard, shared, world, which, &mime, &following);
    }
    clipboard.persist.log_if_complete(which);
}

/// The read of `mime` (into `following`) failed: the pastes that followed
/// it are finished by the copier, if it is still there (a paste sent
/// nothing yet as a plain paste; one sent some bytes through a relay that
/// drops them); otherwise they are cut (the paster reads EOF).
fn strand(
    clipboard: &mut Clipboard,
    shared: &Shared,
    world: &mut World<'_>,
    which: Which,
    mime: &CStr,
    following: &Rc<Kept>,
) {
    let persist = &mut clipboard.persist;
    let stranded = persist.pastes.strand(&mut persist.jobs, following);
    if stranded.is_empty() {
        return;
    }
    let source = persist.copies[which.index()]
        .as_ref()
        .filter(|c| c.is_live())
        .map(|c| c.source);
    let flavor = source
        .and_then(|s| clipboard.sources.get(&s))
        .map(|s| s.flavor);
    let (Some(source), Some(flavor)) = (source, flavor) else {
        for Stranded { waiting, .. } in stranded {
            persist.pastes.close_waiting(waiting);
        }
        return;
    };
    let pastes = &mut persist.pastes;
    let jobs = &mut persist.jobs;
    with_client(shared, world, source.client, |cx| {
        for Stranded { waiting, written } in stranded {
            if written == 0 {
                let fd = pastes.release_waiting(waiting);
                forward(cx, source.id, flavor, mime, fd)?;
                continue;
            }
            if !copier_has_room(cx, mime) {
                pastes.close_waiting(waiting);
                continue;
            }
            if let Some(fd) = pastes.relay(jobs, waiting, written) {
                let send = SourceEvent::Send {
                    mime_type: mime,
                    fd,
                };
                send_source(cx, flavor, source.id, send)?;
            }
        }
        Ok(())
    });
}
