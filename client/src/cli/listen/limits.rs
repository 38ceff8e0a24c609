//! What `listen` may hold at once, in one table: how many channels (in
//! all, per peer process, per other user) and the fds each may carry, and
//! the accounting that keeps to it, so that no flood of peers can take the
//! fds its server connection needs.
//!
//! What it is: [`Limits`], worked out once at start-up from
//! `RLIMIT_NOFILE` and the fds held then, and [`Admission`], which admits
//! a new channel, charged to the pid and uid the server reported for it,
//! or says why not. What it is not: the loop (`listen` closes a refused
//! channel, and drops one that holds more than [`MAX_QUEUED_FDS`] fds
//! after its turn).
//!
//! # Implementation notes
//!
//! - **Why.** Channels to `listen bob`, each with a `text` carrying 28 fds
//!   (the most a channel may leave unclaimed), filled the listener's
//!   1,024-fd table; the server could then not hand it the next channel
//!   (`MSG_CTRUNC` on the server connection), the connection failed, and
//!   the name `bob` was free for the attacker to take.
//! - **What a channel costs at worst**, [`FDS_PER_CHANNEL`] (58): its
//!   socket; [`MAX_QUEUED_FDS`] (56) fds received and not yet taken by a
//!   message between two of its turns (the connection lets 28 wait for
//!   their message, and one `sendmsg` of a well-behaved peer brings at most
//!   28 more); and the offered file a worker reads. Every admitted channel
//!   is charged that much up front, as dbus-broker charges a quota: an
//!   admitted peer is never cut off for want of fds, a new one is refused.
//! - **Kept in reserve**, never given to channels: [`SERVER_FDS`] for the
//!   server connection (28 waiting and 28 in one `recvmsg`: the channels
//!   the server hands over); [`RECV_BURST`] (253, `SCM_MAX_FD`) for the one
//!   `recvmsg` on the channel being served, which may bring that many
//!   before the channel is dropped for them; [`FDS_PER_WORKER`] per file
//!   worker (the reopened offer and the file being saved); and [`SPARE`].
//! - **How many.** At most [`MAX_CHANNELS`] channels, and no more than the
//!   fds left fit: under the usual 1,024-fd limit that is 11. The soft
//!   `RLIMIT_NOFILE` is first raised towards what [`MAX_CHANNELS`] needs,
//!   within the hard limit (`listen` never calls `select`). One process
//!   (one pid as the server saw it) may hold [`MAX_CHANNELS_PER_PID`]; the
//!   processes of one uid other than ours a quarter of the channels.
//! - **Logging.** A refusal is logged at the 1st, 2nd, 4th, 8th... one, so
//!   that a flood costs a log line per doubling, not one per channel.

use std::collections::HashMap;

use waypass_client::waypass_protocol::{wire::MAX_FDS_OUT, Connection};
use waypass_client::Credentials;

/// The most channels `listen` keeps open at once, whatever the fd limit.
pub(super) const MAX_CHANNELS: usize = 64;

/// The most channels from one process (one pid, as the server reported).
pub(super) const MAX_CHANNELS_PER_PID: usize = 4;

/// The most fds a channel may hold, received and not taken by a message,
/// at the end of its turn; more and it is dropped.
pub(super) const MAX_QUEUED_FDS: usize = 2 * MAX_FDS_OUT;

/// What one channel may cost at worst: its socket, [`MAX_QUEUED_FDS`] and
/// the offered file being read.
pub(super) const FDS_PER_CHANNEL: usize = 1 + MAX_QUEUED_FDS + 1;

/// Kept for the server connection: fds waiting for their message and one
/// `recvmsg` more.
pub(super) const SERVER_FDS: usize = 2 * MAX_FDS_OUT;

/// Kept for the one `recvmsg` on the channel being served.
pub(super) const RECV_BURST: usize = Connection::RECV_FD_CAPACITY;

/// Kept for each file worker: the reopened offer and the file saved.
pub(super) const FDS_PER_WORKER: usize = 2;

/// Kept for anything else (logging, `/proc` reads).
pub(super) const SPARE: usize = 16;

/// How many channels `listen` may hold: [`Limits::for_process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Channels in all.
    pub channels: usize,
    /// Channels from one process.
    pub per_pid: usize,
    /// Channels from the processes of one uid other than ours.
    pub per_other_uid: usize,
}

impl Limits {
    /// The limits of this process, with `workers` file workers: reads (and
    /// raises, within the hard limit) `RLIMIT_NOFILE` and counts the fds
    /// held now.
    pub fn for_process(workers: usize) -> Limits {
        let held = fds_held();
        let limit = raise_fd_limit(held + reserve(workers) + MAX_CHANNELS * FDS_PER_CHANNEL);
        let limits = Limits::from_fds(limit, held, workers);
        log::debug!("fd limit {limit}, {held} held at start: {limits:?}");
        limits
    }

    /// The limits for a table of `limit` fds of which `held` are taken.
    /// At least one channel: below that a warning says what it risks.
    fn from_fds(limit: usize, held: usize, workers: usize) -> Limits {
        let room = limit.saturating_sub(held + reserve(workers));
        let fitting = room / FDS_PER_CHANNEL;
        if fitting == 0 {
            log::warn!(
                "the fd limit ({limit}) leaves no room for a channel and its reserve: \
                 serving one at a time, and a peer that sends many fds may make a save fail"
            );
        }
        let channels = fitting.clamp(1, MAX_CHANNELS);
        Limits {
            channels,
            per_pid: MAX_CHANNELS_PER_PID.min(channels),
            per_other_uid: (channels / 4).max(1),
        }
    }
}

/// Everything kept out of the channels' reach.
fn reserve(workers: usize) -> usize {
    SERVER_FDS + RECV_BURST + workers * FDS_PER_WORKER + SPARE
}

/// The fds this process holds, from `/proc/self/fd` (a generous guess
/// without `/proc`).
fn fds_held() -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        // Less the directory's own fd.
        Ok(entries) => entries.count().saturating_sub(1),
        Err(e) => {
            log::debug!("cannot count our fds ({e}); assuming 64");
            64
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to `wanted` if it is lower, within the
/// hard limit; returns the soft limit then in force.
fn raise_fd_limit(wanted: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let wanted = (wanted as u64).min(hard);
    if soft >= wanted {
        return usize::try_from(soft).unwrap_or(usize::MAX);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
        Ok(()) => {
            log::debug!("raised the fd limit from {soft} to {wanted}");
            usize::try_from(wanted).unwrap_or(usize::MAX)
        }
        Err(e) => {
            log::debug!("cannot raise the fd limit from {soft} to {wanted}: {e}");
            usize::try_from(soft).unwrap_or(usize::MAX)
        }
    }
}

/// The channels open now, counted in all, per pid and per uid.
#[derive(Debug)]
pub(super) struct Admission {
    limits: Limits,
    our_uid: u32,
    total: usize,
    by_pid: HashMap<i32, usize>,
    by_uid: HashMap<u32, usize>,
    refused: u64,
}

impl Admission {
    /// Nothing admitted yet; `our_uid` has no share of its own.
    pub fn new(limits: Limits, our_uid: u32) -> Admission {
        Admission {
            limits,
            our_uid,
            total: 0,
            by_pid: HashMap::new(),
            by_uid: HashMap::new(),
            refused: 0,
        }
    }

    /// Admits a channel from `who` and charges it, or says which bound it
    /// would break (and logs it, at the 1st, 2nd, 4th... refusal).
    pub fn admit(&mut self, who: &Credentials) -> Result<(), String> {
        let from_pid = self.by_pid.get(&who.pid).copied().unwrap_or(0);
        let from_uid = self.by_uid.get(&who.uid).copied().unwrap_or(0);
        let broken = if self.total >= self.limits.channels {
            Some(format!("{} channels open, the most", self.total))
        } else if from_pid >= self.limits.per_pid {
            Some(format!(
                "{from_pid} channels from that process, the most one may hold"
            ))
        } else if who.uid != self.our_uid && from_uid >= self.limits.per_other_uid {
            Some(format!(
                "{from_uid} channels from uid {}, the most another user may hold",
                who.uid
            ))
        } else {
            None
        };
        if let Some(reason) = broken {
            self.refused += 1;
            if self.refused.is_power_of_two() {
                log::warn!(
                    "refusing a channel from pid {} (uid {}): {reason}; {} refused so far",
                    who.pid,
                    who.uid,
                    self.refused
                );
            }
            return Err(reason);
        }
        self.total += 1;
        *self.by_pid.entry(who.pid).or_default() += 1;
        *self.by_uid.entry(who.uid).or_default() += 1;
        Ok(())
    }

    /// A channel from `who` is gone, and so is the file it had in work.
    pub fn release(&mut self, who: &Credentials) {
        self.total = self.total.saturating_sub(1);
        let pid = decrement(&mut self.by_pid, who.pid);
        let uid = decrement(&mut self.by_uid, who.uid);
        debug_assert!(
            pid.is_some() && uid.is_some(),
            "released more than admitted"
        );
    }
}

/// Takes one from `key`'s count, forgetting the key at zero.
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) -> Option<()> {
    let count = counts.get_mut(&key)?;
    *count -= 1;
    if *count == 0 {
        counts.remove(&key);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(pid: i32, uid: u32) -> Credentials {
        Credentials { pid, uid, gid: uid }
    }

    #[test]
    fn the_usual_1024_fds_leave_room_for_11_channels() {
        let limits = Limits::from_fds(1024, 12, 2);
        assert_eq!(limits.channels, 11);
        // The worst case of all of them and the reserve fit in the table.
        let worst = 12 + reserve(2) + limits.channels * FDS_PER_CHANNEL;
        assert!(worst <= 1024, "{worst}");
        assert_eq!(limits.per_pid, 4);
        assert_eq!(limits.per_other_uid, 2);
        assert_eq!(Limits::from_fds(1 << 20, 12, 2).channels, MAX_CHANNELS);
        assert_eq!(Limits::from_fds(256, 12, 2).channels, 1, "at least one");
    }

    #[test]
    fn channels_are_bounded_in_all_per_pid_and_per_other_uid() {
        let limits = Limits {
            channels: 10,
            per_pid: 4,
            per_other_uid: 2,
        };
        let mut a = Admission::new(limits, 1000);
        for _ in 0..4 {
            a.admit(&who(7, 1000))
                .expect("ours, within the pid's share");
        }
        let e = a.admit(&who(7, 1000)).unwrap_err();
        assert!(e.contains("from that process"), "{e}");
        a.admit(&who(8, 2000)).expect("another user");
        a.admit(&who(9, 2000))
            .expect("another user, another process");
        let e = a.admit(&who(10, 2000)).unwrap_err();
        assert!(e.contains("uid 2000"), "{e}");
        for pid in 11..15 {
            a.admit(&who(pid, 1000)).expect("ours");
        }
        let e = a.admit(&who(20, 1000)).unwrap_err();
        assert!(e.contains("10 channels open"), "{e}");
        a.release(&who(7, 1000));
        a.admit(&who(7, 1000)).expect("room again");
        assert_eq!(a.refused, 3);
    }
}
