//! The `waypass_broker_v1` global: names, and channels brokered between the
//! client that asks for a name and the client that owns it.
//!
//! This module keeps the server-wide table of names and answers
//! `register`, `connect`, `withdraw` and the destructors. It creates the
//! socketpair of a channel, queues the requester's end on the requester
//! and the owner's end on the owner ([`Ctx::with_other`]): the server
//! holds no copy once both are flushed.
//!
//! # Implementation notes
//!
//! - **Failures are events, never protocol errors.** An invalid, taken or
//!   over-limit name, an unknown name, a connect to oneself or too many
//!   live connection objects are answered with `failed(reason)` on the new
//!   object, which then stays inert until the client destroys it. Only real
//!   protocol violations (unknown object, bad opcode, malformed message)
//!   disconnect, and those are caught by [`crate::proto::dispatch`] before any
//!   handler here runs.
//! - **Names belong to uids.** The table is keyed by (uid, name): a name
//!   registered by a client of another user takes nothing from yours, and
//!   `connect` finds names of the caller's own uid unless it asks for
//!   `NAME@UID`. So another local user cannot squat a name before its
//!   owner starts, and a sender never reaches another user's listener by
//!   accident.
//! - **Checks in a fixed order.** `register`: invalid name, then the
//!   client's share of names (`too_many_names`), then taken (so a client at
//!   its limit learns nothing about other clients' names). `connect`:
//!   invalid name, unknown name, self connect, the pending limit, then the
//!   owner's room (`busy`). Every new connection object counts against the
//!   limit, failed ones included, until destroyed.
//! - **A busy owner.** Each channel end queued for an owner is an fd in
//!   flight to it until it reads its socket. The broker counts, per owner,
//!   the channels handed over that it may not have read; past
//!   [`Limits::pending_peers`](crate::limits::Limits), or when the owner's
//!   share of fds in flight or of output is used up, a connect fails with
//!   `busy`, sent to the requester: the actor is refused, the owner keeps
//!   its connection and its name. The count is corrected by the owner's
//!   own wakeups ([`Broker::owner_unread`]) and, when a connect finds the
//!   owner at the limit, by one look at that owner's socket: no wakeup
//!   rechecks every owner.
//! - **Credentials.** `pid`, `uid` and `gid` come from `SO_PEERCRED`, read
//!   when the client connected (for a `--spawn` child: the child's pid). If
//!   that failed, which only happens for a socket that is not AF_UNIX, the
//!   event carries pid 0 and uid / gid `u32::MAX`, the kernel's "no id".

use std::collections::HashMap;
use std::ffi::{CStr, CString};

use log::{debug, info};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use rustc_hash::FxHashMap;
use waypass_protocol::protocols::broker::waypass_broker_v1::{self, Failure, WaypassBrokerV1};
use waypass_protocol::protocols::broker::waypass_connection_v1::{self, WaypassConnectionV1};
use waypass_protocol::protocols::broker::waypass_name_v1::{self, WaypassNameV1};
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{Credentials, NewId, ObjectId, DISPLAY_ID};

use crate::ledger::Resource;
use crate::proto::ctx::{Ctx, ProtocolError, Stop};
use crate::state::{uid_of, ClientKey, Object};

/// The longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Who owns a name.
#[derive(Debug, Clone, Copy)]
struct Owner {
    client: ClientKey,
    /// The owner's `waypass_name_v1` object.
    object: ObjectId<WaypassNameV1>,
    creds: Option<Credentials>,
}

/// The server-wide name table, by (uid, name), and the channels each
/// owner may not have read yet.
#[derive(Debug, Default)]
pub struct Broker {
    owners: HashMap<(u32, Box<str>), Owner>,
    /// Per owner, the channels handed over that it may not have read (by
    /// the server's own keys: a fast hash, looked up on every wakeup).
    backlog: FxHashMap<ClientKey, u64>,
}

impl Broker {
    /// How many names are owned, server-wide.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn name_count(&self) -> usize {
        self.owners.len()
    }

    /// Releases every name `client` of `uid` owns (it is disconnecting).
    pub fn release_all(
        &mut self,
        client: ClientKey,
        uid: u32,
        names: &[(ObjectId<WaypassNameV1>, Box<str>)],
    ) {
        for (object, name) in names {
            self.release(client, uid, *object, name);
        }
        self.backlog.remove(&client);
    }

    /// `owner` has `unread` fds sent to it that it has not read: no more of
    /// the channels handed to it than that are unread.
    pub fn owner_unread(&mut self, owner: ClientKey, unread: usize) {
        if let Some(backlog) = self.backlog.get_mut(&owner) {
            *backlog = (*backlog).min(unread as u64);
            if *backlog == 0 {
                self.backlog.remove(&owner);
            }
        }
    }

    /// Channels handed to `owner` that it may not have read.
    pub fn backlog(&self, owner: ClientKey) -> u64 {
        self.backlog.get(&owner).copied().unwrap_or(0)
    }

    /// Removes `name` of `uid` from the table if `client`'s `object` owns it.
    fn release(
        &mut self,
        client: ClientKey,
        uid: u32,
        object: ObjectId<WaypassNameV1>,
        name: &str,
    ) {
        let key = (uid, Box::from(name));
        match self.owners.get(&key) {
            Some(o) if o.client == client && o.object == object => {
                self.owners.remove(&key);
                debug!("name {name} of uid {uid} released");
            }
            // The table and the client disagree: keep the table's owner.
            _ => log::error!("bug: {name} is not owned by {object:?}"),
        }
    }
}

/// A name as `connect` asks for it: `NAME` (the caller's uid) or
/// `NAME@UID`.
fn parse_target(asked: &[u8], own_uid: u32) -> Option<(u32, &str)> {
    let text = std::str::from_utf8(asked).ok()?;
    let (name, uid) = match text.split_once('@') {
        None => (text, own_uid),
        Some((name, uid)) => {
            let digits = !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit());
            (name, uid.parse().ok().filter(|_| digits)?)
        }
    };
    valid_name(name.as_bytes()).then_some((uid, name))
}

/// Whether `name` follows the rule: 1 to 64 bytes of `[A-Za-z0-9._-]`.
pub fn valid_name(name: &[u8]) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A client for log lines: "alice(pid 12)", or "pid 12" without a name.
fn label(name: Option<&str>, creds: Option<Credentials>) -> String {
    let pid = creds.map_or_else(|| "pid ?".to_string(), |c| format!("pid {}", c.pid));
    match name {
        Some(name) => format!("{name}({pid})"),
        None => pid,
    }
}

/// The `(pid, uid, gid)` of `creds`, as the events carry them.
fn cred_values(creds: Option<Credentials>) -> (i32, u32, u32) {
    creds.map_or((0, u32::MAX, u32::MAX), |c| (c.pid, c.uid, c.gid))
}

/// The requests of a `waypass_broker_v1`.
pub fn broker(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    id: ObjectId<WaypassBrokerV1>,
    request: waypass_broker_v1::Request<'_>,
) -> Result<(), Stop> {
    match request {
        waypass_broker_v1::Request::Destroy => cx.destroy(id),
        waypass_broker_v1::Request::Register { id, name } => register(cx, broker, id, name),
        waypass_broker_v1::Request::Connect { id, name } => connect(cx, broker, id, name),
    }
}

/// The requests of a `waypass_name_v1`.
pub fn name(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    id: ObjectId<WaypassNameV1>,
    request: waypass_name_v1::Request<'_>,
) -> Result<(), Stop> {
    match request {
        waypass_name_v1::Request::Withdraw => withdraw(cx, broker, id),
    }
}

/// The requests of a `waypass_connection_v1`.
pub fn connection(
    cx: &mut Ctx<'_>,
    id: ObjectId<WaypassConnectionV1>,
    request: waypass_connection_v1::Request<'_>,
) -> Result<(), Stop> {
    match request {
        waypass_connection_v1::Request::Destroy => destroy_connection(cx, id),
    }
}

/// `waypass_broker_v1.register(id, name)`.
pub fn register(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    id: NewId<WaypassNameV1>,
    name: &CStr,
) -> Result<(), Stop> {
    let id = cx.create(id, Object::Name)?;
    let bytes = name.to_bytes();
    let uid = uid_of(cx.creds);
    let refused = if !valid_name(bytes) {
        Some(Failure::InvalidName)
    } else if cx.allowance(Resource::Names) == 0 {
        Some(Failure::TooManyNames)
    } else if name_str(bytes).is_some_and(|n| broker.owners.contains_key(&(uid, n.into()))) {
        Some(Failure::NameTaken)
    } else {
        None
    };
    let Some(name) = name_str(bytes).filter(|_| refused.is_none()) else {
        let reason = refused.unwrap_or(Failure::InvalidName);
        debug!(
            "register refused ({}): {}",
            cx.who(),
            reason.xml_name().unwrap_or("unknown failure")
        );
        return cx.send(id, waypass_name_v1::Event::Failed { reason });
    };
    if cx.charge(Resource::Names, 1).is_err() {
        let reason = Failure::TooManyNames;
        return cx.send(id, waypass_name_v1::Event::Failed { reason });
    }
    let owner = Owner {
        client: cx.key,
        object: id,
        creds: cx.creds,
    };
    broker.owners.insert((uid, name.into()), owner);
    cx.session.names.push((id, name.into()));
    info!("name {name} registered ({})", cx.who());
    cx.send(id, waypass_name_v1::Event::Registered)
}

/// `waypass_name_v1.withdraw`: releases the name if the object owns one.
pub fn withdraw(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    id: ObjectId<WaypassNameV1>,
) -> Result<(), Stop> {
    if let Some(at) = cx.session.names.iter().position(|(o, _)| *o == id) {
        let (_, name) = cx.session.names.remove(at);
        broker.release(cx.key, uid_of(cx.creds), id, &name);
        cx.release(Resource::Names, 1);
        info!("name {name} withdrawn ({})", cx.who());
    }
    cx.destroy(id)
}

/// `waypass_connection_v1.destroy`: the object stops counting as pending.
pub fn destroy_connection(cx: &mut Ctx<'_>, id: ObjectId<WaypassConnectionV1>) -> Result<(), Stop> {
    cx.session.connections = cx.session.connections.saturating_sub(1);
    cx.destroy(id)
}

/// `waypass_broker_v1.connect(id, name)`: a channel to the name's owner.
pub fn connect(
    cx: &mut Ctx<'_>,
    broker: &mut Broker,
    id: NewId<WaypassConnectionV1>,
    asked: &CStr,
) -> Result<(), Stop> {
    let id = cx.create(id, Object::Connection)?;
    let over_limit = cx.session.connections >= cx.shared.limits.pending_connects;
    cx.session.connections += 1;
    let Some((uid, name)) = parse_target(asked.to_bytes(), uid_of(cx.creds)) else {
        return refuse_connect(cx, id, Failure::InvalidName);
    };
    let owner = match broker.owners.get(&(uid, name.into())) {
        None => return refuse_connect(cx, id, Failure::UnknownName),
        Some(o) if o.client == cx.key => return refuse_connect(cx, id, Failure::SelfConnect),
        Some(_) if over_limit => return refuse_connect(cx, id, Failure::TooManyPending),
        Some(o) => *o,
    };
    if !owner_has_room(cx, broker, owner) {
        return refuse_connect(cx, id, Failure::Busy);
    }
    let (end_a, end_b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| {
        Stop::Server(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::NO_MEMORY,
            format!("cannot create a channel for {id:?}: {e}"),
        ))
    })?;
    let (pid, uid, gid) = cred_values(owner.creds);
    // The requester's end goes into its queue as it is (no dup).
    let established = waypass_connection_v1::Event::Established {
        fd: end_a,
        peer_name: asked,
        pid,
        uid,
        gid,
    };
    cx.send_owned(id, established)?;
    let requester = cx.session.first_name();
    let line = format!(
        "brokered channel {} <-> {}",
        label(requester, cx.creds),
        label(Some(name), owner.creds)
    );
    // Registered names are checked ASCII without NUL: never `None`.
    let peer_name = requester.and_then(|n| CString::new(n).ok());
    let (pid, uid, gid) = cred_values(cx.creds);
    let delivered = cx.with_other(owner.client, |owner_cx| {
        // The owner's end goes into its queue as it is (no dup), and
        // closes once sent or if the owner goes.
        let peer = waypass_name_v1::Event::Peer {
            fd: end_b,
            peer_name: peer_name.as_deref(),
            pid,
            uid,
            gid,
        };
        owner_cx.send_owned(owner.object, peer)
    });
    if delivered.is_some() {
        *broker.backlog.entry(owner.client).or_default() += 1;
        info!("{line}");
    }
    Ok(())
}

/// Whether the owner can take one more channel: under its backlog (looked
/// at again, with one `ioctl`, only when at the limit), and with a share
/// of fds in flight and of output left. Refusing is `busy` to the
/// requester: the owner is never cut off for what requesters do.
fn owner_has_room(cx: &mut Ctx<'_>, broker: &mut Broker, owner: Owner) -> bool {
    let limit = cx.shared.limits.pending_peers;
    let room = cx.with_other(owner.client, |o| {
        let unread = o.pending_fds();
        let fds = o.allowance(Resource::FdsInFlight);
        let bytes = o.allowance(Resource::OutputBytes);
        Ok((unread, fds > 0 && bytes >= PEER_EVENT_BYTES))
    });
    let Some((unread, share)) = room else {
        return false;
    };
    broker.owner_unread(owner.client, unread);
    share && broker.backlog(owner.client) < limit
}

/// The most bytes a `waypass_name_v1.peer` event takes: the header, a
/// 64-byte name with its length, NUL and padding, and three words.
const PEER_EVENT_BYTES: u64 = 8 + 4 + 68 + 12;

fn refuse_connect(
    cx: &mut Ctx<'_>,
    id: ObjectId<WaypassConnectionV1>,
    reason: Failure,
) -> Result<(), Stop> {
    debug!(
        "connect refused ({}): {}",
        cx.who(),
        reason.xml_name().unwrap_or("unknown failure")
    );
    cx.send(id, waypass_connection_v1::Event::Failed { reason })
}

/// A valid name as `&str` (valid names are ASCII).
fn name_str(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests;
