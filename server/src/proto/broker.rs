//! The `waypass_broker_v1` global: names, and channels brokered between the
//! client that asks for a name and the client that owns it.
//!
//! This module keeps the server-wide table of names and answers
//! `register`, `connect`, `withdraw` and the destructors. It creates the
//! socketpair of a channel and queues the requester's end. It does not
//! reach other clients: the owner's end leaves this module as a
//! [`Delivery`], which the runtime ([`crate::runtime`]) hands to the owner's connection
//! once the requester's dispatch is over (a handler only ever holds one
//! client).
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
//! - **Checks in a fixed order.** `register`: invalid name, then the
//!   client's name limit, then taken (so a client at its limit learns
//!   nothing about other clients' names). `connect`: invalid name, unknown
//!   name, self connect, the pending limit, then the owner's backlog
//!   (`busy`). Every new connection object
//!   counts against the limit, failed ones included, until destroyed: the
//!   limit bounds live objects, as the protocol says.
//! - **The channel.** `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`
//!   through nix. `established(end_a, ...)` is queued to the requester at
//!   once and `end_b` travels in a [`Delivery`] until the runtime has
//!   queued `peer(end_b, ...)` on the owner's name object, in the same event
//!   loop callback. Both ends move into their queues without a `dup`
//!   ([`Ctx::send_owned`]), so after the two flushes the server holds no
//!   copy.
//! - **A busy owner.** Each channel end queued for an owner is an fd in
//!   flight to it until it reads its socket. The broker counts, per owner,
//!   the channels handed over that it may not have read
//!   ([`Broker::owner_unread`], which the runtime ([`crate::runtime`]) calls with the fds
//!   the owner's connection counts as unread); past
//!   [`BrokerLimits::max_backlog`] a connect fails with `busy`, sent to the
//!   requester, and the owner keeps its connection and its name. Before the
//!   limit the server disconnected the *owner* once a connect flood filled
//!   its output queue. The server re-checks the owners with a backlog
//!   ([`Broker::owners_with_backlog`], one `ioctl` each) before each
//!   client's requests are dispatched, so an owner that has caught up takes
//!   channels again. Owners that read promptly leave the list at the first
//!   check; a stuck owner costs one `ioctl` per wakeup.
//! - **Credentials.** `pid`, `uid` and `gid` come from `SO_PEERCRED`, read
//!   when the client connected (for a `--spawn` child: the child's pid). If
//!   that failed, which only happens for a socket that is not AF_UNIX, the
//!   event carries pid 0 and uid / gid `u32::MAX`, the kernel's "no id".

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::OwnedFd;

use log::{debug, info};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use waypass_protocol::protocols::broker::{
    waypass_broker_v1::failure, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{Arg, Credentials, DISPLAY_ID};

use crate::config::BrokerLimits;
use crate::proto::ctx::{Ctx, ProtocolError, Stop};
use crate::state::{ClientKey, Object};

/// The longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Who owns a name.
#[derive(Debug, Clone, Copy)]
struct Owner {
    client: ClientKey,
    /// The owner's `waypass_name_v1` object.
    object: u32,
    creds: Option<Credentials>,
}

/// The owner's half of a brokered channel, on its way to the owner's
/// connection: `waypass_name_v1.peer` to queue on `object` of `owner`.
#[derive(Debug)]
pub struct Delivery {
    /// The client that owns the name.
    pub owner: ClientKey,
    /// Its `waypass_name_v1` object.
    pub object: u32,
    /// The owner's end of the socketpair.
    pub fd: OwnedFd,
    /// The requester's first registered name, if any.
    pub peer_name: Option<CString>,
    /// The requester's credentials.
    pub creds: Option<Credentials>,
    /// For the log line: the name connected to and the requester's label.
    pub log_line: String,
}

/// The server-wide name table and the channels waiting to be delivered.
#[derive(Debug, Default)]
pub struct Broker {
    limits: BrokerLimits,
    owners: HashMap<Box<str>, Owner>,
    deliveries: Vec<Delivery>,
    /// Per owner, the channels handed over that it may not have read.
    backlog: HashMap<ClientKey, usize>,
}

impl Broker {
    /// An empty broker with these limits.
    pub fn new(limits: BrokerLimits) -> Broker {
        Broker {
            limits,
            ..Broker::default()
        }
    }

    /// How many names are owned, server-wide.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn name_count(&self) -> usize {
        self.owners.len()
    }

    /// Takes the channels brokered since the last call, for their owners.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// Releases every name `client` owns (it is disconnecting).
    pub fn release_all(&mut self, client: ClientKey, names: &[(u32, Box<str>)]) {
        for (object, name) in names {
            self.release(client, *object, name);
        }
        self.backlog.remove(&client);
    }

    /// The owners with channels they may not have read yet: the server
    /// re-counts their unread fds before each dispatch and passes them to
    /// [`Broker::owner_unread`].
    pub fn owners_with_backlog(&self) -> Vec<ClientKey> {
        self.backlog.keys().copied().collect()
    }

    /// `owner` has `unread` fds sent to it that it has not read: no more of
    /// the channels handed to it than that are unread.
    pub fn owner_unread(&mut self, owner: ClientKey, unread: usize) {
        if let Some(backlog) = self.backlog.get_mut(&owner) {
            *backlog = (*backlog).min(unread);
            if *backlog == 0 {
                self.backlog.remove(&owner);
            }
        }
    }

    /// Channels handed to `owner` that it may not have read.
    pub fn backlog(&self, owner: ClientKey) -> usize {
        self.backlog.get(&owner).copied().unwrap_or(0)
    }

    /// Removes `name` from the table if `client`'s `object` owns it.
    fn release(&mut self, client: ClientKey, object: u32, name: &str) {
        match self.owners.get(name) {
            Some(o) if o.client == client && o.object == object => {
                self.owners.remove(name);
                debug!("name {name} released");
            }
            // The table and the client disagree: keep the table's owner.
            _ => log::error!("bug: {name} is not owned by waypass_name_v1@{object}"),
        }
    }
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

/// The `(pid, uid, gid)` arguments for `creds`.
fn cred_args<Fd>(creds: Option<Credentials>) -> [Arg<'static, Fd>; 3] {
    let (pid, uid, gid) = creds.map_or((0, u32::MAX, u32::MAX), |c| (c.pid, c.uid, c.gid));
    [Arg::Int(pid), Arg::Uint(uid), Arg::Uint(gid)]
}

/// `waypass_broker_v1.register(id, name)`.
pub fn register(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32, name: &CStr) -> Result<(), Stop> {
    cx.create(id, Object::Name)?;
    let bytes = name.to_bytes();
    let refused = if !valid_name(bytes) {
        Some(failure::INVALID_NAME)
    } else if cx.session.names.len() >= broker.limits.max_names {
        Some(failure::TOO_MANY_NAMES)
    } else if name_str(bytes).is_some_and(|n| broker.owners.contains_key(n)) {
        Some(failure::NAME_TAKEN)
    } else {
        None
    };
    let Some(name) = name_str(bytes).filter(|_| refused.is_none()) else {
        let reason = refused.unwrap_or(failure::INVALID_NAME);
        debug!("register refused ({}): {}", cx.who(), Failure(reason));
        return send_name_failed(cx, id, reason);
    };
    let owner = Owner {
        client: cx.key,
        object: id,
        creds: cx.creds,
    };
    broker.owners.insert(name.into(), owner);
    cx.session.names.push((id, name.into()));
    info!("name {name} registered ({})", cx.who());
    cx.send(
        id,
        &waypass_name_v1::INTERFACE,
        waypass_name_v1::evt::REGISTERED,
        &[],
    )
}

/// `waypass_name_v1.withdraw`: releases the name if the object owns one.
pub fn withdraw(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32) -> Result<(), Stop> {
    if let Some(at) = cx.session.names.iter().position(|(o, _)| *o == id) {
        let (_, name) = cx.session.names.remove(at);
        broker.release(cx.key, id, &name);
        info!("name {name} withdrawn ({})", cx.who());
    }
    cx.destroy(id)
}

/// `waypass_connection_v1.destroy`: the object stops counting as pending.
pub fn destroy_connection(cx: &mut Ctx<'_>, id: u32) -> Result<(), Stop> {
    cx.session.connections = cx.session.connections.saturating_sub(1);
    cx.destroy(id)
}

/// `waypass_broker_v1.connect(id, name)`: a channel to the name's owner.
pub fn connect(cx: &mut Ctx<'_>, broker: &mut Broker, id: u32, asked: &CStr) -> Result<(), Stop> {
    cx.create(id, Object::Connection)?;
    let over_limit = cx.session.connections >= broker.limits.max_pending;
    cx.session.connections += 1;
    let bytes = asked.to_bytes();
    let Some(name) = name_str(bytes).filter(|_| valid_name(bytes)) else {
        return refuse_connect(cx, id, failure::INVALID_NAME);
    };
    let owner = match broker.owners.get(name) {
        None => return refuse_connect(cx, id, failure::UNKNOWN_NAME),
        Some(o) if o.client == cx.key => return refuse_connect(cx, id, failure::SELF_CONNECT),
        Some(_) if over_limit => return refuse_connect(cx, id, failure::TOO_MANY_PENDING),
        Some(o) if broker.backlog(o.client) >= broker.limits.max_backlog => {
            return refuse_connect(cx, id, failure::BUSY)
        }
        Some(o) => *o,
    };
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
            format!("cannot create a channel for waypass_connection_v1@{id}: {e}"),
        ))
    })?;
    let [pid, uid, gid] = cred_args(owner.creds);
    // The requester's end goes into its queue as it is (no dup).
    cx.send_owned(
        id,
        &waypass_connection_v1::INTERFACE,
        waypass_connection_v1::evt::ESTABLISHED,
        vec![Arg::Fd(end_a), Arg::Str(Some(asked)), pid, uid, gid],
    )?;
    let requester = cx.session.first_name();
    let log_line = format!(
        "brokered channel {} <-> {}",
        label(requester, cx.creds),
        label(Some(name), owner.creds)
    );
    broker.deliveries.push(Delivery {
        owner: owner.client,
        object: owner.object,
        fd: end_b,
        // Registered names are checked ASCII without NUL: never `None`.
        peer_name: requester.and_then(|n| CString::new(n).ok()),
        creds: cx.creds,
        log_line,
    });
    *broker.backlog.entry(owner.client).or_default() += 1;
    Ok(())
}

/// Queues `waypass_name_v1.peer` for a [`Delivery`] on the owner's
/// connection. Returns the delivery's log line.
pub fn deliver(cx: &mut Ctx<'_>, delivery: Delivery) -> Result<String, Stop> {
    let [pid, uid, gid] = cred_args(delivery.creds);
    // The owner's end goes into the queue as it is (no dup), and closes
    // once sent or if it is refused.
    cx.send_owned(
        delivery.object,
        &waypass_name_v1::INTERFACE,
        waypass_name_v1::evt::PEER,
        vec![
            Arg::Fd(delivery.fd),
            Arg::Str(delivery.peer_name.as_deref()),
            pid,
            uid,
            gid,
        ],
    )?;
    Ok(delivery.log_line)
}

fn refuse_connect(cx: &mut Ctx<'_>, id: u32, reason: u32) -> Result<(), Stop> {
    debug!("connect refused ({}): {}", cx.who(), Failure(reason));
    cx.send(
        id,
        &waypass_connection_v1::INTERFACE,
        waypass_connection_v1::evt::FAILED,
        &[Arg::Uint(reason)],
    )
}

fn send_name_failed(cx: &mut Ctx<'_>, id: u32, reason: u32) -> Result<(), Stop> {
    cx.send(
        id,
        &waypass_name_v1::INTERFACE,
        waypass_name_v1::evt::FAILED,
        &[Arg::Uint(reason)],
    )
}

/// A valid name as `&str` (valid names are ASCII).
fn name_str(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// A `failure` code, named for log lines.
struct Failure(u32);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            failure::INVALID_NAME => "invalid_name",
            failure::NAME_TAKEN => "name_taken",
            failure::TOO_MANY_NAMES => "too_many_names",
            failure::UNKNOWN_NAME => "unknown_name",
            failure::SELF_CONNECT => "self_connect",
            failure::TOO_MANY_PENDING => "too_many_pending",
            failure::BUSY => "busy",
            _ => "unknown failure",
        })
    }
}

#[cfg(test)]
mod tests;
