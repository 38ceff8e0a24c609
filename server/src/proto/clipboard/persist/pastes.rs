//! Pastes served from kept selections: who may have how many, the
//! writers in progress (some following a copy still being read), the
//! relays that finish a paste whose copy failed, and the sweep that cuts a
//! paste of a dropped copy that stopped making progress.
//!
//! What it is not: the file work ([`crate::persist::Writer`]) or the
//! choice of what to serve (the parent module).
//!
//! # Implementation notes
//!
//! - **The paster pays.** Each paste following a read, being written into
//!   a full pipe, or relayed from the copier holds the paster's fd: it counts against that
//!   client (`pastes`), and against the server-wide `total-pastes`, of
//!   which a uid other than the server's may hold half at most. Past any
//!   of them, the paste is dropped (its fd closed: the paster reads EOF),
//!   and nobody else notices. A paste written whole at once (anything
//!   that fits the pipe) holds nothing after its request.
//! - **After the paster leaves** its pastes go on: a paster may hand the
//!   pipe to another process and hang up (wl-clipboard-rs returns the
//!   pipe after closing its connection). They stay counted for its uid
//!   and in total until they end, and, as the pastes of a dropped copy,
//!   each must make progress within `persist-deadline-ms` or is cut: a
//!   client that reconnects to get round its `pastes` holds its fds that
//!   long at most.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use log::debug;
use rustc_hash::FxHashMap;

use crate::persist::{JobId, Jobs, Kept, Relay, RelayStep, Watch, WriteStep, Writer};
use crate::proto::ctx::Ctx;
use crate::state::ClientKey;

/// A paste admitted and not written yet: the paster's fd, and who pays.
#[derive(Debug)]
pub struct Waiting {
    client: ClientKey,
    uid: u32,
    fd: OwnedFd,
}

/// One connected client's pastes: how many, and which are being written.
#[derive(Debug, Default)]
struct Mine {
    count: u64,
    writers: Vec<JobId>,
}

#[derive(Debug)]
struct Active {
    client: ClientKey,
    uid: u32,
    writer: Writer,
}

#[derive(Debug)]
struct Relaying {
    client: ClientKey,
    uid: u32,
    relay: Relay,
    /// What the loop watches now: the copier's pipe, or the paster's fd.
    reading: bool,
}

/// A paste that followed a copy which then failed: its fd (a duplicate of
/// the paster's), who pays, and how much it was already sent.
#[derive(Debug)]
pub struct Stranded {
    pub waiting: Waiting,
    pub written: u64,
}

/// The pastes in progress and their counts.
#[derive(Debug, Default)]
pub struct Pastes {
    per_client: u64,
    total_limit: u64,
    server_uid: u32,
    writers: FxHashMap<JobId, Active>,
    /// Writers that wrote all a copy still being read holds, by that copy:
    /// the reader wakes them ([`Pastes::grown`]).
    idle: FxHashMap<*const Kept, Vec<Active>>,
    /// Watched writers of a copy still being read, by that copy (some may
    /// have ended or caught up since).
    following: FxHashMap<*const Kept, Vec<JobId>>,
    relays: FxHashMap<JobId, Relaying>,
    /// Sweep timers: each with the pastes of a dropped copy and what each
    /// had written when it was armed.
    sweeps: FxHashMap<JobId, Vec<(JobId, u64)>>,
    by_client: FxHashMap<ClientKey, Mine>,
    by_uid: HashMap<u32, u64>,
    total: u64,
}

impl Pastes {
    /// Pastes of at most `per_client` per client and `total` server-wide.
    pub fn new(per_client: u64, total: u64, server_uid: u32) -> Pastes {
        Pastes {
            per_client,
            total_limit: total,
            server_uid,
            ..Pastes::default()
        }
    }

    /// Counts a paste of `cx`'s client, or drops it (closing `fd`) when
    /// that client, its uid or the server has no room for one more.
    pub fn admit(&mut self, cx: &Ctx<'_>, fd: OwnedFd) -> Option<Waiting> {
        let (client, uid) = (cx.key, cx.uid());
        let mine = self.by_client.get(&client).map_or(0, |m| m.count);
        let uid_held = self.by_uid.get(&uid).copied().unwrap_or(0);
        let uid_limit = if uid == self.server_uid {
            self.total_limit
        } else {
            self.total_limit / 2
        };
        if mine >= self.per_client || self.total >= self.total_limit || uid_held >= uid_limit {
            debug!(
                "a paste is dropped: client ({}) holds {mine} pastes, its uid {uid_held}, \
                 the server {} of {}",
                cx.who(),
                self.total,
                self.total_limit
            );
            return None;
        }
        self.by_client.entry(client).or_default().count += 1;
        *self.by_uid.entry(uid).or_default() += 1;
        self.total += 1;
        Some(Waiting { client, uid, fd })
    }

    fn uncount(&mut self, client: ClientKey, uid: u32) {
        if let Some(mine) = self.by_client.get_mut(&client) {
            mine.count -= 1;
            if mine.count == 0 {
                self.by_client.remove(&client);
            }
        }
        if let Some(n) = self.by_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.by_uid.remove(&uid);
            }
        }
        self.total -= 1;
    }

    /// A waiting paste that will not be served: its fd closes.
    pub fn close_waiting(&mut self, paste: Waiting) {
        self.uncount(paste.client, paste.uid);
    }

    /// A waiting paste handed to someone else: its fd, uncounted.
    pub fn release_waiting(&mut self, paste: Waiting) -> OwnedFd {
        self.uncount(paste.client, paste.uid);
        paste.fd
    }

    /// Serves `paste` from `kept`: what the pipe takes now is written at
    /// once; the rest when the loop finds it writable (job noted in
    /// `started`), or, while `kept` is still being read, as it grows.
    pub fn start(
        &mut self,
        jobs: &mut Jobs,
        kept: Rc<Kept>,
        paste: Waiting,
        started: &mut Vec<JobId>,
        deadline: Duration,
    ) {
        let Waiting { client, uid, fd } = paste;
        let active = Active {
            client,
            uid,
            writer: Writer::new(kept, fd),
        };
        self.step(jobs, active, started, deadline);
    }

    /// One step of a writer that is not watched; then it is watched, idle
    /// until its copy grows, or ended.
    fn step(
        &mut self,
        jobs: &mut Jobs,
        mut active: Active,
        started: &mut Vec<JobId>,
        deadline: Duration,
    ) {
        match active.writer.write_some() {
            WriteStep::Blocked => self.watch(jobs, active, started, deadline),
            WriteStep::CaughtUp => {
                let key = Rc::as_ptr(active.writer.kept());
                self.idle.entry(key).or_default().push(active);
            }
            WriteStep::Done => self.uncount(active.client, active.uid),
            WriteStep::Gone(e) => {
                debug!("a paste ended early: {e}");
                self.uncount(active.client, active.uid);
            }
        }
    }

    fn watch(
        &mut self,
        jobs: &mut Jobs,
        active: Active,
        started: &mut Vec<JobId>,
        deadline: Duration,
    ) {
        let client = active.client;
        let job = jobs.add(Watch::Writable(Rc::clone(active.writer.fd())));
        let kept = Rc::clone(active.writer.kept());
        self.writers.insert(job, active);
        started.retain(|j| self.writers.contains_key(j));
        started.push(job);
        if !kept.is_sealed() {
            let writers = &self.writers;
            let following = self.following.entry(Rc::as_ptr(&kept)).or_default();
            following.retain(|j| writers.contains_key(j));
            following.push(job);
        }
        match self.by_client.get_mut(&client) {
            Some(mine) => {
                let writers = &self.writers;
                mine.writers.retain(|j| writers.contains_key(j));
                mine.writers.push(job);
            }
            // Its paster has left: it must make progress.
            None => self.orphan(jobs, vec![job], deadline),
        }
    }

    /// `kept` grew (or is complete): its idle writers write on.
    pub fn grown(
        &mut self,
        jobs: &mut Jobs,
        kept: &Rc<Kept>,
        started: &mut Vec<JobId>,
        deadline: Duration,
    ) {
        let key = Rc::as_ptr(kept);
        if kept.is_sealed() {
            self.following.remove(&key);
        }
        for active in self.idle.remove(&key).unwrap_or_default() {
            self.step(jobs, active, started, deadline);
        }
    }

    /// `kept` will not be complete (its read failed or was dropped): the
    /// pastes that followed it, with what each was sent, for the caller to
    /// finish some other way; their watches end.
    pub fn strand(&mut self, jobs: &mut Jobs, kept: &Rc<Kept>) -> Vec<Stranded> {
        let key = Rc::as_ptr(kept);
        let mut actives = self.idle.remove(&key).unwrap_or_default();
        for job in self.following.remove(&key).unwrap_or_default() {
            if let Some(active) = self.writers.remove(&job) {
                jobs.end(job);
                actives.push(active);
            }
        }
        let mut stranded = Vec::new();
        for Active {
            client,
            uid,
            writer,
        } in actives
        {
            let written = writer.written();
            // The loop may still hold the fd until the end of the pass:
            // a duplicate carries the paste on.
            match writer.fd().try_clone() {
                Ok(fd) => stranded.push(Stranded {
                    waiting: Waiting { client, uid, fd },
                    written,
                }),
                Err(e) => {
                    debug!("a paste is cut: {e}");
                    self.uncount(client, uid);
                }
            }
        }
        stranded
    }

    /// Finishes `paste` with what the copier writes into the pipe whose
    /// write end this returns, dropping the first `skip` bytes (the
    /// paster has them). `None` (the paste cut) if no pipe can be made.
    pub fn relay(&mut self, jobs: &mut Jobs, paste: Waiting, skip: u64) -> Option<OwnedFd> {
        let Waiting { client, uid, fd } = paste;
        match Relay::new(fd, skip) {
            Ok((relay, write_end)) => {
                let job = jobs.add(Watch::Readable(Rc::clone(relay.from())));
                let reading = true;
                self.relays.insert(
                    job,
                    Relaying {
                        client,
                        uid,
                        relay,
                        reading,
                    },
                );
                Some(write_end)
            }
            Err(e) => {
                debug!("a paste is cut: cannot relay it: {e}");
                self.uncount(client, uid);
                None
            }
        }
    }

    /// Whether `job` is a relay's watch.
    pub fn is_relay(&self, job: JobId) -> bool {
        self.relays.contains_key(&job)
    }

    /// A relay's watch is ready: one step; its watch moves to the other end
    /// when it must. Whether to keep watching `job`.
    pub fn relay_ready(&mut self, jobs: &mut Jobs, job: JobId) -> bool {
        let Some(relaying) = self.relays.get_mut(&job) else {
            return false;
        };
        let reading = match relaying.relay.step() {
            RelayStep::Read => true,
            RelayStep::Write => false,
            RelayStep::Done => return self.end_relay(job),
            RelayStep::Gone(e) => {
                debug!("a relayed paste ended early: {e}");
                return self.end_relay(job);
            }
        };
        if reading == relaying.reading {
            return true;
        }
        let watch = match reading {
            true => Watch::Readable(Rc::clone(relaying.relay.from())),
            false => Watch::Writable(Rc::clone(relaying.relay.to())),
        };
        if let Some(mut relaying) = self.relays.remove(&job) {
            relaying.reading = reading;
            let next = jobs.add(watch);
            self.relays.insert(next, relaying);
        }
        false
    }

    fn end_relay(&mut self, job: JobId) -> bool {
        if let Some(relaying) = self.relays.remove(&job) {
            self.uncount(relaying.client, relaying.uid);
        }
        false
    }

    /// Whether `job` is a paste being written.
    pub fn is_writer(&self, job: JobId) -> bool {
        self.writers.contains_key(&job)
    }

    /// A paste's fd is writable: one step. Whether to keep watching.
    pub fn write_ready(&mut self, job: JobId) -> bool {
        let Some(active) = self.writers.get_mut(&job) else {
            return false;
        };
        match active.writer.write_some() {
            WriteStep::Blocked => return true,
            WriteStep::CaughtUp => {
                // Wait for the reader now, not for the fd.
                if let Some(active) = self.writers.remove(&job) {
                    let key = Rc::as_ptr(active.writer.kept());
                    self.idle.entry(key).or_default().push(active);
                }
                return false;
            }
            WriteStep::Done => {}
            WriteStep::Gone(e) => debug!("a paste ended early: {e}"),
        }
        self.end(job);
        false
    }

    /// Ends a paste in progress, or a relay, now (its fd closes).
    pub fn cut(&mut self, job: JobId) {
        self.end(job);
        self.end_relay(job);
    }

    fn end(&mut self, job: JobId) {
        if let Some(active) = self.writers.remove(&job) {
            self.uncount(active.client, active.uid);
        }
    }

    /// The pastes of a copy just dropped: they go on, but each must make
    /// progress within `deadline`, or it is cut.
    pub fn orphan(&mut self, jobs: &mut Jobs, pastes: Vec<JobId>, deadline: Duration) {
        let watched: Vec<(JobId, u64)> = pastes
            .into_iter()
            .filter_map(|job| Some((job, self.writers.get(&job)?.writer.written())))
            .collect();
        if !watched.is_empty() {
            let timer = jobs.add(Watch::Timeout(deadline));
            self.sweeps.insert(timer, watched);
        }
    }

    /// Whether `job` is a sweep's timer.
    pub fn is_sweep(&self, job: JobId) -> bool {
        self.sweeps.contains_key(&job)
    }

    /// A sweep's time is up: a paste that wrote nothing since is cut; the
    /// others are watched again.
    pub fn sweep(&mut self, jobs: &mut Jobs, timer: JobId, deadline: Duration) {
        let Some(watched) = self.sweeps.remove(&timer) else {
            return;
        };
        let mut again = Vec::new();
        for (job, before) in watched {
            let Some(written) = self.writers.get(&job).map(|a| a.writer.written()) else {
                continue;
            };
            if written == before {
                debug!("a paste of a replaced selection made no progress: cut");
                self.end(job);
                jobs.end(job);
            } else {
                again.push(job);
            }
        }
        self.orphan(jobs, again, deadline);
    }

    /// A client left: its pastes no longer count per client, and those
    /// being written must make progress within `deadline`.
    pub fn client_gone(&mut self, jobs: &mut Jobs, key: ClientKey, deadline: Duration) {
        if let Some(mine) = self.by_client.remove(&key) {
            self.orphan(jobs, mine.writers, deadline);
        }
    }
}
