//! Every limit of the server, in one table, with one name each: what one
//! client may hold ([`Limits`]'s per-client rows) and what all clients
//! together may hold (the server-wide budgets the [`crate::ledger`]
//! shares out). [`Limits::check`] tests them against each other at
//! start-up, so that no flag can promise what another limit breaks.
//!
//! What it is not: the accounting ([`crate::ledger`] charges and shares
//! the budgets) or the place that enforces a row (each handler checks its
//! own, by name, from here).
//!
//! ```
//! use waypass_server::Limits;
//!
//! let mut limits = Limits::default();
//! limits.set("pending-peers", 200).unwrap();
//! // 200 unread channels could not be in flight under 128 fds in flight:
//! assert!(limits.check().is_err());
//! limits.set("fds-in-flight", 300).unwrap();
//! assert!(limits.check().is_ok());
//! ```
//!
//! # Implementation notes
//!
//! - **Per-client rows** bound one connection, whatever else happens:
//!   they are what a client's own requests run into, as a protocol error
//!   (`no_memory`) or a `failed` event.
//! - **Server-wide budgets** bound the sum over all connections. The fd
//!   budgets are derived from `RLIMIT_NOFILE` at start-up
//!   ([`Limits::budgets`]): the fd table is shared by client sockets, the
//!   fds clients leave waiting and the fds queued to them, and the kernel
//!   charges every fd in flight to the server's user against the same
//!   limit. [`RESERVE_FDS`] stay outside every budget, so that `accept`,
//!   a keymap open and a socketpair always find a free fd.
//! - **Share-free base.** Each budget has a per-connection base that a
//!   connection may use without any share check (a keymap in flight, its
//!   socket, a few objects): what every well-behaved client needs. Above
//!   the base, a connection gets only a share of what is left (see
//!   [`crate::ledger`]).

use std::fmt;

/// Fds kept outside every budget for `accept`, keymap opens and
/// socketpairs: 1/16 of the fd limit, between 2 and [`RESERVE_FDS`].
pub const RESERVE_FDS: u64 = 64;

/// The reserve under an fd limit of `fd_limit`.
pub fn reserve_fds(fd_limit: u64) -> u64 {
    (fd_limit / 16).clamp(2, RESERVE_FDS)
}

/// The limits, by name. Per-client rows first, then server-wide budgets
/// (0 in a budget row means "derived from `RLIMIT_NOFILE`").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `objects`: live objects one client may hold. Real clients of this
    /// server hold a handful; past it, `no_memory`, as libwayland when its
    /// map cannot grow.
    pub objects: u64,
    /// `keyboards`: keyboards one client may hold; each costs an fd in
    /// flight at creation and at each keymap reload.
    pub keyboards: u64,
    /// `data-devices`: data-control devices one client may hold; each is
    /// told of every selection change.
    pub data_devices: u64,
    /// `data-sources`: live data sources one client may hold.
    pub data_sources: u64,
    /// `data-offers`: live data offers one client may hold; past it, new
    /// selections wait until it destroys old offers.
    pub data_offers: u64,
    /// `mime-types`: MIME types one source may offer (wl-copy offers 5 for
    /// text, browsers about 10).
    pub mime_types: u64,
    /// `mime-length`: the longest MIME type, in bytes (RFC 6838: 127 for
    /// each of type and subtype, plus the slash).
    pub mime_length: u64,
    /// `pending-sends`: fds a copier may have queued or unread before
    /// further pastes from it are dropped (the paster reads EOF).
    pub pending_sends: u64,
    /// `pastes`: pastes served from a kept selection (`--persist`) that one
    /// client may have waiting or in progress, each holding the paster's
    /// fd; past it, a further paste is dropped (the paster reads EOF).
    pub pastes: u64,
    /// `persist-deadline-ms`: how long a copier has, from `set_selection`,
    /// to write every type the server reads from it (`--persist`); the
    /// types not finished by then are not kept. It also bounds how long a
    /// paste of a replaced copy may make no progress.
    pub persist_deadline_ms: u64,
    /// `fds-in-flight`: fds queued to one client or sent and not read.
    pub fds_in_flight: u64,
    /// `waiting-fds`: fds one client may leave waiting for their message
    /// between two wakeups (libwayland sends at most 28 per `sendmsg`).
    pub waiting_fds: u64,
    /// `output-bytes`: bytes queued to one client that it has not read.
    pub output_bytes: u64,
    /// `names`: broker names one client may own at once
    /// (`too_many_names`).
    pub names: u64,
    /// `pending-connects`: live `waypass_connection_v1` objects one client
    /// may hold (`too_many_pending`).
    pub pending_connects: u64,
    /// `pending-peers`: channels handed to one owner that it has not read
    /// (`busy` to further requesters).
    pub pending_peers: u64,
    /// `total-connections`: connected clients (0: derived).
    pub total_connections: u64,
    /// `total-fds`: server fds held for clients: their sockets, the fds
    /// they left waiting and the fds queued to them (0: derived).
    pub total_fds: u64,
    /// `total-fds-in-flight`: fds in flight to all clients (0: derived).
    pub total_fds_in_flight: u64,
    /// `total-pastes`: pastes from kept selections waiting or in
    /// progress, server-wide, each holding an fd (0: derived, an eighth of
    /// the fd table, taken from a derived `total-fds`; none without
    /// `--persist`).
    pub total_pastes: u64,
    /// `total-output-bytes`: bytes queued to all clients.
    pub total_output_bytes: u64,
    /// `total-names`: broker names, server-wide.
    pub total_names: u64,
    /// `total-objects`: live objects, server-wide.
    pub total_objects: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            objects: 16_384,
            keyboards: 32,
            data_devices: 16,
            data_sources: 32,
            data_offers: 256,
            mime_types: 64,
            mime_length: 255,
            pending_sends: 16,
            pastes: 16,
            persist_deadline_ms: 5000,
            fds_in_flight: 128,
            waiting_fds: 28,
            output_bytes: 1024 * 1024,
            names: 16,
            pending_connects: 64,
            pending_peers: 64,
            total_connections: 0,
            total_fds: 0,
            total_fds_in_flight: 0,
            total_pastes: 0,
            total_output_bytes: 64 * 1024 * 1024,
            total_names: 65_536,
            total_objects: 4 * 1024 * 1024,
        }
    }
}

/// One row of the table: its name, what it bounds, and where it lives.
struct Row {
    name: &'static str,
    about: &'static str,
    field: fn(&mut Limits) -> &mut u64,
}

/// The table, in `--help` order.
const ROWS: &[Row] = &[
    Row {
        name: "objects",
        about: "live objects per client",
        field: |l| &mut l.objects,
    },
    Row {
        name: "keyboards",
        about: "keyboards per client",
        field: |l| &mut l.keyboards,
    },
    Row {
        name: "data-devices",
        about: "data-control devices per client",
        field: |l| &mut l.data_devices,
    },
    Row {
        name: "data-sources",
        about: "data sources per client",
        field: |l| &mut l.data_sources,
    },
    Row {
        name: "data-offers",
        about: "live data offers per client",
        field: |l| &mut l.data_offers,
    },
    Row {
        name: "mime-types",
        about: "MIME types per data source",
        field: |l| &mut l.mime_types,
    },
    Row {
        name: "mime-length",
        about: "bytes per MIME type",
        field: |l| &mut l.mime_length,
    },
    Row {
        name: "pending-sends",
        about: "paste fds queued or unread per copier",
        field: |l| &mut l.pending_sends,
    },
    Row {
        name: "pastes",
        about: "pastes from kept selections in progress per client",
        field: |l| &mut l.pastes,
    },
    Row {
        name: "persist-deadline-ms",
        about: "ms a copier has to write what --persist reads",
        field: |l| &mut l.persist_deadline_ms,
    },
    Row {
        name: "fds-in-flight",
        about: "fds queued or unread per client",
        field: |l| &mut l.fds_in_flight,
    },
    Row {
        name: "waiting-fds",
        about: "fds waiting for their message per client",
        field: |l| &mut l.waiting_fds,
    },
    Row {
        name: "output-bytes",
        about: "bytes queued and unread per client",
        field: |l| &mut l.output_bytes,
    },
    Row {
        name: "names",
        about: "broker names per client",
        field: |l| &mut l.names,
    },
    Row {
        name: "pending-connects",
        about: "live connection objects per client",
        field: |l| &mut l.pending_connects,
    },
    Row {
        name: "pending-peers",
        about: "unread channels per name owner",
        field: |l| &mut l.pending_peers,
    },
    Row {
        name: "total-connections",
        about: "clients, server-wide (0: from RLIMIT_NOFILE)",
        field: |l| &mut l.total_connections,
    },
    Row {
        name: "total-fds",
        about: "fds held for clients, server-wide (0: from RLIMIT_NOFILE)",
        field: |l| &mut l.total_fds,
    },
    Row {
        name: "total-fds-in-flight",
        about: "fds in flight, server-wide (0: from RLIMIT_NOFILE)",
        field: |l| &mut l.total_fds_in_flight,
    },
    Row {
        name: "total-pastes",
        about: "pastes from kept selections, server-wide (0: from RLIMIT_NOFILE)",
        field: |l| &mut l.total_pastes,
    },
    Row {
        name: "total-output-bytes",
        about: "bytes queued, server-wide",
        field: |l| &mut l.total_output_bytes,
    },
    Row {
        name: "total-names",
        about: "broker names, server-wide",
        field: |l| &mut l.total_names,
    },
    Row {
        name: "total-objects",
        about: "live objects, server-wide",
        field: |l| &mut l.total_objects,
    },
];

/// The fds one `recvmsg` may bring (`SCM_MAX_FD`).
const SCM_MAX_FD: u64 = 253;

impl Limits {
    /// Sets the row called `name`.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), LimitsError> {
        let row = ROWS
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| LimitsError::UnknownName(name.to_string()))?;
        *(row.field)(self) = value;
        Ok(())
    }

    /// The value of the row called `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        let mut copy = *self;
        ROWS.iter()
            .find(|r| r.name == name)
            .map(|r| *(r.field)(&mut copy))
    }

    /// `name  value  what it bounds`, one line per row, for `--help`.
    pub fn table(&self) -> String {
        let mut copy = *self;
        ROWS.iter()
            .map(|r| {
                format!(
                    "  {:<20} {:>10}  {}\n",
                    r.name,
                    (r.field)(&mut copy),
                    r.about
                )
            })
            .collect()
    }

    /// Checks the rows against each other: every promise one row makes
    /// must hold under the others.
    pub fn check(&self) -> Result<(), LimitsError> {
        let conflict = |why: String| Err(LimitsError::Conflict(why));
        let mut copy = *self;
        for row in ROWS {
            let value = *(row.field)(&mut copy);
            if value == 0 && !row.name.starts_with("total-") {
                return conflict(format!("{} must be at least 1", row.name));
            }
        }
        // An owner that reads late can be owed every unread channel plus
        // every keyboard's keymap twice (at bind and after a reload): the
        // in-flight cap must not cut off the owner that pending-peers
        // promises to keep.
        let owed = self.pending_peers + 2 * self.keyboards;
        if owed > self.fds_in_flight {
            return conflict(format!(
                "pending-peers {} + 2 x keyboards {} = {owed} fds a client that reads late \
                 can be owed, more than fds-in-flight {}",
                self.pending_peers, self.keyboards, self.fds_in_flight
            ));
        }
        if self.pending_sends >= self.fds_in_flight {
            return conflict(format!(
                "pending-sends {} must stay below fds-in-flight {}, or a paster's flood \
                 would cut the copier off",
                self.pending_sends, self.fds_in_flight
            ));
        }
        if self.waiting_fds > SCM_MAX_FD {
            return conflict(format!(
                "waiting-fds {} is more than one recvmsg can bring ({SCM_MAX_FD})",
                self.waiting_fds
            ));
        }
        if self.mime_length + 8 > 4096 - 8 {
            return conflict(format!(
                "mime-length {} does not fit in one 4096-byte message",
                self.mime_length
            ));
        }
        if self.data_offers < self.data_devices * 2 {
            return conflict(format!(
                "data-offers {} must be at least twice data-devices {}: each device holds \
                 the offer of both selections",
                self.data_offers, self.data_devices
            ));
        }
        let pairs = [
            (
                "total-output-bytes",
                self.total_output_bytes,
                "output-bytes",
                self.output_bytes,
            ),
            ("total-names", self.total_names, "names", self.names),
            ("total-objects", self.total_objects, "objects", self.objects),
        ];
        for (total_name, total, each_name, each) in pairs {
            if total < each {
                return conflict(format!(
                    "{total_name} {total} is less than {each_name} {each}: one client \
                     could take it all"
                ));
            }
        }
        Ok(())
    }

    /// The server-wide budgets, with the fd rows derived from the fd
    /// table: `fd_limit` (the soft `RLIMIT_NOFILE`) less the fds already
    /// open at start-up and a reserve (1/16 of the limit, 2 to 64 fds).
    pub fn budgets(&self, fd_limit: u64, open_fds: u64) -> Result<Budgets, LimitsError> {
        let reserve = reserve_fds(fd_limit);
        let table = fd_limit.saturating_sub(open_fds + reserve);
        let or = |value: u64, derived: u64| if value == 0 { derived } else { value };
        // Pastes from kept selections hold an fd each: an eighth of the
        // table, out of what clients may otherwise hold.
        let pastes = or(self.total_pastes, table / 8);
        let budgets = Budgets {
            // Each connection is an fd of the table; the rest is for the
            // fds clients leave waiting and the fds queued to them.
            connections: or(self.total_connections, table * 5 / 8),
            fds: or(self.total_fds, table.saturating_sub(pastes)),
            pastes,
            // The limit the kernel counts the server's user against, less
            // the reserve: its other processes may send fds too.
            fds_in_flight: or(self.total_fds_in_flight, fd_limit.saturating_sub(reserve)),
            output_bytes: self.total_output_bytes,
            names: self.total_names,
            objects: self.total_objects,
        };
        if budgets.fds + budgets.pastes > table {
            return Err(LimitsError::Conflict(format!(
                "total-fds {} and total-pastes {} are more than the {table} fds \
                 RLIMIT_NOFILE leaves ({fd_limit}, less {open_fds} open and {reserve} in reserve)",
                budgets.fds, budgets.pastes
            )));
        }
        if budgets.connections < 1 {
            return Err(LimitsError::Conflict(format!(
                "RLIMIT_NOFILE {fd_limit} leaves no room for one client \
                 ({open_fds} open, {reserve} in reserve)"
            )));
        }
        Ok(budgets)
    }
}

/// The server-wide budgets, resolved at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Connected clients.
    pub connections: u64,
    /// Server fds held for clients.
    pub fds: u64,
    /// Pastes from kept selections (an fd each).
    pub pastes: u64,
    /// Fds in flight to all clients.
    pub fds_in_flight: u64,
    /// Bytes queued to all clients.
    pub output_bytes: u64,
    /// Broker names.
    pub names: u64,
    /// Live objects.
    pub objects: u64,
}

impl Budgets {
    /// The budgets of a server that keeps no selection (no `--persist`):
    /// no fd is set aside for pastes, and a derived `total-fds` gets them
    /// back.
    pub fn without_pastes(mut self, limits: &Limits) -> Budgets {
        if limits.total_fds == 0 {
            self.fds += self.pastes;
        }
        self.pastes = 0;
        self
    }
}

/// Why a set of limits cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitsError {
    /// No row has this name.
    UnknownName(String),
    /// Two rows contradict each other, or a row is out of range.
    Conflict(String),
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitsError::UnknownName(name) => {
                let names: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
                write!(
                    f,
                    "no limit is called {name:?} (the limits: {})",
                    names.join(", ")
                )
            }
            LimitsError::Conflict(why) => write!(f, "inconsistent limits: {why}"),
        }
    }
}

impl std::error::Error for LimitsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_agree_with_each_other() {
        assert_eq!(Limits::default().check(), Ok(()));
    }

    #[test]
    fn every_row_is_named_once_and_reachable() {
        let mut names: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ROWS.len());
        let mut limits = Limits::default();
        for (i, row) in ROWS.iter().enumerate() {
            limits.set(row.name, 1000 + i as u64).unwrap();
        }
        for (i, row) in ROWS.iter().enumerate() {
            assert_eq!(limits.get(row.name), Some(1000 + i as u64), "{}", row.name);
        }
    }

    #[test]
    fn an_unknown_name_lists_the_real_ones() {
        let err = Limits::default().set("fds", 3).unwrap_err();
        assert!(err.to_string().contains("waiting-fds"), "{err}");
    }

    #[test]
    fn more_pending_peers_than_fds_in_flight_is_refused_at_start_up() {
        let mut limits = Limits::default();
        limits.set("pending-peers", 200).unwrap();
        let err = limits.check().unwrap_err();
        assert!(err.to_string().contains("fds-in-flight 128"), "{err}");
    }

    #[test]
    fn a_zero_per_client_row_is_refused() {
        let mut limits = Limits::default();
        limits.set("names", 0).unwrap();
        assert!(limits.check().is_err());
        let mut limits = Limits::default();
        limits.set("total-fds", 0).unwrap();
        assert!(limits.check().is_ok(), "0 in a budget row means derived");
    }

    #[test]
    fn fd_budgets_come_from_the_fd_limit_with_a_reserve() {
        let budgets = Limits::default().budgets(20_000, 10).unwrap();
        let table = 20_000 - 10 - RESERVE_FDS;
        assert_eq!(budgets.pastes, table / 8);
        assert_eq!(budgets.fds + budgets.pastes, table);
        let unkept = budgets.without_pastes(&Limits::default());
        assert_eq!((unkept.fds, unkept.pastes), (table, 0));
        assert_eq!(budgets.connections, table * 5 / 8);
        assert_eq!(budgets.fds_in_flight, 20_000 - RESERVE_FDS);
        assert!(Limits::default().budgets(20, 12).is_ok(), "a reserve of 2");
        assert!(Limits::default().budgets(14, 12).is_err());
        let mut limits = Limits::default();
        limits.set("total-fds", 100_000).unwrap();
        assert!(limits.budgets(20_000, 10).is_err());
    }
}
