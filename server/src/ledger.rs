//! The server's accounting: one [`Ledger`] of every resource clients make
//! it hold, charged to the connection (an [`Account`]) and to the uid
//! that caused it, after dbus-broker's user accounting
//! (`src/util/user.c`).
//!
//! What it is: the arithmetic of budgets and shares, and the one error a
//! charge over them gives ([`OverBudget`]). What it is not: a meter. The
//! callers measure (fds waiting in a connection, bytes queued, fds in
//! flight) and charge or [`Ledger::set`] what they measured; the ledger
//! does no I/O and knows no client.
//!
//! # Implementation notes
//!
//! - **Two pools per resource.** Every connection may hold a small
//!   *base* without any share check (its socket, the keymap in flight, a
//!   few objects and output bytes): the base pool is sized for the most
//!   connections the server takes, so no one can use it up for others.
//!   What a connection holds above its base comes from the *shared* pool.
//! - **Shares of the shared pool** follow dbus-broker's rule: a taker that
//!   holds `s` and asks for `a` more gets it only if
//!   `(n + 1) × (s + a) − s ≤ remaining`, with `n` the takers holding some
//!   of the pool, itself included. So a taker gets between 1/n and 1/n² of
//!   the pool, a flood of takers leaves the last ones less and less, and
//!   a newcomer asking for `a` is served while `remaining ≥ (n + 1) × a`.
//! - **Two levels.** The rule holds among connections (most deployments
//!   run every client under one uid, where a per-uid ledger alone would
//!   protect nothing), and, for a uid other than the server's, among
//!   foreign uids too: another user may take only a share of what the
//!   server's user has left. The server's own uid is never share-limited
//!   as a uid (dbus-broker: "never apply quotas on self-charge"), only its
//!   connections are.
//! - **Measured resources** (bytes queued, fds in flight) change without
//!   a charge when a client reads: [`Ledger::set`] records the measured
//!   value, and [`Ledger::allowance`] tells a caller how much more a
//!   connection may take now, to use as a cap for one wakeup.

use std::collections::HashMap;
use std::fmt;

use crate::limits::{Budgets, Limits};

/// What the ledger accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Connected clients (their sockets).
    Connections,
    /// Fds a client sent that the server holds: left waiting for their
    /// message between two wakeups.
    Fds,
    /// Fds queued to a client or sent and not read yet: the kernel charges
    /// them to the server's user, against its `RLIMIT_NOFILE`.
    FdsInFlight,
    /// Bytes queued to a client that it has not read.
    OutputBytes,
    /// Broker names.
    Names,
    /// Live protocol objects.
    Objects,
}

const COUNT: usize = 6;

impl Resource {
    /// Every resource, in table order.
    pub const ALL: [Resource; COUNT] = [
        Resource::Connections,
        Resource::Fds,
        Resource::FdsInFlight,
        Resource::OutputBytes,
        Resource::Names,
        Resource::Objects,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The resource as error messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Resource::Connections => "connections",
            Resource::Fds => "fds waiting for their message",
            Resource::FdsInFlight => "fds in flight",
            Resource::OutputBytes => "bytes of unread output",
            Resource::Names => "broker names",
            Resource::Objects => "objects",
        }
    }
}

/// One resource's numbers: the per-connection cap, the share-free base,
/// and the two pools.
#[derive(Debug, Clone, Copy)]
struct Quota {
    per_connection: u64,
    base: u64,
    /// The shared pool's size: the budget less every connection's base.
    shared: u64,
}

/// Which bound a charge ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The per-client limit.
    Client,
    /// The client's share of what the server has left.
    Share,
    /// The share of the server's budget that this (other) uid may take.
    Uid(u32),
}

/// A charge that would go over a limit: nothing was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// What was asked for.
    pub resource: Resource,
    /// The bound that refused it.
    pub scope: Scope,
    /// What the connection (or uid) holds.
    pub held: u64,
    /// What it asked for in addition.
    pub asked: u64,
    /// The most it may hold under that bound now.
    pub limit: u64,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OverBudget {
            resource,
            held,
            asked,
            limit,
            ..
        } = *self;
        let what = resource.describe();
        match self.scope {
            Scope::Client => write!(
                f,
                "too many {what}: {held} held, {asked} more asked (the limit is {limit} per client)"
            ),
            Scope::Share => write!(
                f,
                "too many {what}: {held} held, {asked} more asked; this client's share of \
                 what the server has left is {limit}"
            ),
            Scope::Uid(uid) => write!(
                f,
                "too many {what} for uid {uid}: it holds {held}, {asked} more asked; its share \
                 of the server's budget is {limit}"
            ),
        }
    }
}

impl std::error::Error for OverBudget {}

/// What one connection holds, charged to its uid: kept in the client,
/// given back with [`Ledger::close`].
#[derive(Debug, Default)]
pub struct Account {
    uid: u32,
    held: [u64; COUNT],
    open: bool,
}

impl Account {
    /// What the connection holds of `resource`.
    pub fn held(&self, resource: Resource) -> u64 {
        self.held[resource.index()]
    }
}

/// What one uid holds above its connections' bases, and how many of its
/// connections are open.
#[derive(Debug, Default, Clone, Copy)]
struct UidUsage {
    shared: [u64; COUNT],
    connections: u64,
}

/// The server-wide ledger (see the module notes).
#[derive(Debug)]
pub struct Ledger {
    server_uid: u32,
    quotas: [Quota; COUNT],
    /// The connections budget (no base: one per connection).
    connections: u64,
    /// Connections open.
    open: u64,
    /// Held above base, server-wide.
    shared_used: [u64; COUNT],
    /// Connections holding some of the shared pool.
    takers: [u64; COUNT],
    uids: HashMap<u32, UidUsage>,
    /// Uids other than the server's holding some of the shared pool, and
    /// (for connections) holding connections.
    foreign_takers: [u64; COUNT],
}

/// The share-free base of each resource: what a well-behaved client holds.
const fn base(resource: Resource) -> u64 {
    match resource {
        Resource::Connections => 1,
        // A client that sends fds with their messages leaves none waiting.
        Resource::Fds => 0,
        // The keymap.
        Resource::FdsInFlight => 1,
        // A few replies not yet read (the socket's own buffer, some
        // 200 KiB, takes what a reading client is sent).
        Resource::OutputBytes => 1024,
        // One name.
        Resource::Names => 1,
        // wl_display, a registry, a seat, a keyboard and a few more.
        Resource::Objects => 16,
    }
}

impl Ledger {
    /// A ledger for these limits and budgets; `server_uid` is never
    /// share-limited as a uid.
    pub fn new(limits: &Limits, budgets: Budgets, server_uid: u32) -> Ledger {
        let connections = budgets.connections;
        let quota = |resource: Resource, per_connection: u64, total: u64| {
            // Every connection's base must fit in the budget.
            let base = base(resource)
                .min(per_connection)
                .min(total / connections.max(1));
            Quota {
                per_connection,
                base,
                shared: total.saturating_sub(connections.saturating_mul(base)),
            }
        };
        let quotas = [
            quota(Resource::Connections, 1, connections),
            quota(Resource::Fds, limits.waiting_fds, budgets.fds),
            quota(
                Resource::FdsInFlight,
                limits.fds_in_flight,
                budgets.fds_in_flight,
            ),
            quota(
                Resource::OutputBytes,
                limits.output_bytes,
                budgets.output_bytes,
            ),
            quota(Resource::Names, limits.names, budgets.names),
            quota(Resource::Objects, limits.objects, budgets.objects),
        ];
        Ledger {
            server_uid,
            quotas,
            connections,
            open: 0,
            shared_used: [0; COUNT],
            takers: [0; COUNT],
            uids: HashMap::new(),
            foreign_takers: [0; COUNT],
        }
    }

    /// Opens an account for a new connection of `uid`: charges one
    /// connection to it.
    pub fn open(&mut self, uid: u32) -> Result<Account, OverBudget> {
        let index = Resource::Connections.index();
        let usage = self.uids.get(&uid).copied().unwrap_or_default();
        let over = |limit: u64, scope: Scope, held: u64| OverBudget {
            resource: Resource::Connections,
            scope,
            held,
            asked: 1,
            limit,
        };
        if self.open >= self.connections {
            return Err(over(self.connections, Scope::Share, self.open));
        }
        if uid != self.server_uid {
            let remaining = self.connections - self.open;
            let takers = self.foreign_takers[index] + u64::from(usage.connections == 0);
            let limit = share_limit(remaining, takers, usage.connections);
            if usage.connections + 1 > limit {
                return Err(over(limit, Scope::Uid(uid), usage.connections));
            }
            if usage.connections == 0 {
                self.foreign_takers[index] += 1;
            }
        }
        self.open += 1;
        self.uids.entry(uid).or_default().connections += 1;
        let mut held = [0; COUNT];
        held[index] = 1;
        Ok(Account {
            uid,
            held,
            open: true,
        })
    }

    /// Gives back everything `account` holds, and its connection.
    pub fn close(&mut self, account: &mut Account) {
        if !account.open {
            return;
        }
        for resource in Resource::ALL {
            if resource != Resource::Connections {
                self.set(account, resource, 0);
            }
        }
        account.open = false;
        account.held[Resource::Connections.index()] = 0;
        self.open -= 1;
        let uid = account.uid;
        let Some(usage) = self.uids.get_mut(&uid) else {
            return;
        };
        usage.connections -= 1;
        if usage.connections == 0 {
            if uid != self.server_uid {
                self.foreign_takers[Resource::Connections.index()] -= 1;
            }
            self.uids.remove(&uid);
        }
    }

    /// Charges `amount` more of `resource` to `account`, or refuses it
    /// whole.
    #[inline]
    pub fn charge(
        &mut self,
        account: &mut Account,
        resource: Resource,
        amount: u64,
    ) -> Result<(), OverBudget> {
        let i = resource.index();
        let held = account.held[i];
        // Within the share-free base (the case of every well-behaved
        // client): nothing to share out.
        if held + amount <= self.quotas[i].base && account.open {
            account.held[i] = held + amount;
            return Ok(());
        }
        self.charge_shared(account, resource, amount)
    }

    /// [`Ledger::charge`] past the base: the shares decide.
    #[cold]
    fn charge_shared(
        &mut self,
        account: &mut Account,
        resource: Resource,
        amount: u64,
    ) -> Result<(), OverBudget> {
        let held = account.held(resource);
        let allowance = self.allowance_with_scope(account, resource);
        if amount > allowance.0 {
            return Err(OverBudget {
                resource,
                scope: allowance.1,
                held: match allowance.1 {
                    Scope::Uid(uid) => self.uid_shared(uid, resource),
                    _ => held,
                },
                asked: amount,
                limit: match allowance.1 {
                    Scope::Uid(uid) => self.uid_shared(uid, resource) + allowance.0,
                    _ => held + allowance.0,
                },
            });
        }
        self.set(account, resource, held + amount);
        Ok(())
    }

    /// Gives back `amount` of `resource`.
    pub fn release(&mut self, account: &mut Account, resource: Resource, amount: u64) {
        let held = account.held(resource);
        self.set(account, resource, held.saturating_sub(amount));
    }

    /// Records that `account` holds `value` of `resource`, as measured,
    /// with no check (for what changes without a request: output a client
    /// has read, fds it has received).
    #[inline]
    pub fn set(&mut self, account: &mut Account, resource: Resource, value: u64) {
        let i = resource.index();
        let base = self.quotas[i].base;
        // Unchanged, or moving within the base: only the account changes.
        if account.held[i] == value || (account.held[i] <= base && value <= base) {
            if account.open && resource != Resource::Connections {
                account.held[i] = value;
            }
            return;
        }
        self.set_shared(account, resource, value);
    }

    /// [`Ledger::set`] across or above the base: the pools change.
    #[cold]
    fn set_shared(&mut self, account: &mut Account, resource: Resource, value: u64) {
        if !account.open || resource == Resource::Connections {
            return;
        }
        let i = resource.index();
        let base = self.quotas[i].base;
        let old = account.held[i].saturating_sub(base);
        let new = value.saturating_sub(base);
        account.held[i] = value;
        if old == new {
            return;
        }
        self.shared_used[i] = self.shared_used[i] - old + new;
        match (old, new) {
            (0, _) => self.takers[i] += 1,
            (_, 0) => self.takers[i] -= 1,
            _ => {}
        }
        let uid = account.uid;
        if uid == self.server_uid {
            return;
        }
        let usage = self.uids.entry(uid).or_default();
        let was = usage.shared[i];
        usage.shared[i] = was - old + new;
        match (was, usage.shared[i]) {
            (0, 0) => {}
            (0, _) => self.foreign_takers[i] += 1,
            (_, 0) => self.foreign_takers[i] -= 1,
            _ => {}
        }
    }

    /// How much more of `resource` `account` may take now.
    #[inline]
    pub fn allowance(&self, account: &Account, resource: Resource) -> u64 {
        let i = resource.index();
        let quota = self.quotas[i];
        // The shares cannot bind while what is left would give every taker
        // and one more the whole per-client limit: the common case. (An
        // upper bound of the takers, both levels counted together.)
        let remaining = quota.shared.saturating_sub(self.shared_used[i]);
        let takers = self.takers[i] + self.foreign_takers[i] + 2;
        if account.open
            && resource != Resource::Connections
            && remaining / takers >= quota.per_connection
        {
            return quota.per_connection.saturating_sub(account.held[i]);
        }
        self.allowance_with_scope(account, resource).0
    }

    /// What `uid` holds of the shared pool of `resource`.
    fn uid_shared(&self, uid: u32, resource: Resource) -> u64 {
        self.uids
            .get(&uid)
            .map_or(0, |u| u.shared[resource.index()])
    }

    /// The allowance and the bound that sets it.
    #[cold]
    fn allowance_with_scope(&self, account: &Account, resource: Resource) -> (u64, Scope) {
        let i = resource.index();
        let quota = self.quotas[i];
        let held = account.held[i];
        if !account.open || resource == Resource::Connections {
            return (0, Scope::Client);
        }
        let mut best = (quota.per_connection.saturating_sub(held), Scope::Client);
        let free_base = quota.base.saturating_sub(held);
        let remaining = quota.shared.saturating_sub(self.shared_used[i]);
        let above = held.saturating_sub(quota.base);
        let takers = self.takers[i] + u64::from(above == 0);
        let share = free_base + share_limit(remaining, takers, above).saturating_sub(above);
        if share < best.0 {
            best = (share, Scope::Share);
        }
        if account.uid != self.server_uid {
            let mine = self.uid_shared(account.uid, resource);
            let takers = self.foreign_takers[i] + u64::from(mine == 0);
            let uid_share = free_base + share_limit(remaining, takers, mine).saturating_sub(mine);
            if uid_share < best.0 {
                best = (uid_share, Scope::Uid(account.uid));
            }
        }
        best
    }

    /// Connections open, and fds, output bytes and objects held above the
    /// bases, for log lines and tests.
    pub fn summary(&self) -> String {
        format!(
            "{} connections; shared pools used: {} waiting fds, {} fds in flight, \
             {} output bytes, {} names, {} objects",
            self.open,
            self.shared_used[Resource::Fds.index()],
            self.shared_used[Resource::FdsInFlight.index()],
            self.shared_used[Resource::OutputBytes.index()],
            self.shared_used[Resource::Names.index()],
            self.shared_used[Resource::Objects.index()],
        )
    }
}

/// The most a taker holding `held` of a pool with `remaining` left may
/// hold, with `takers` takers (itself included): the largest `h` with
/// `(takers + 1) × h − held ≤ remaining` (dbus-broker's
/// `user_charge_check`, solved for the new total).
fn share_limit(remaining: u64, takers: u64, held: u64) -> u64 {
    (remaining + held) / (takers + 1)
}

#[cfg(test)]
mod tests;
