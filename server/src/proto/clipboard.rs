//! The clipboard, headless: `ext-data-control-v1` and
//! `wlr-data-control-unstable-v1` (version 2, with primary selection).
//!
//! What it is: the server-wide selection state ([`Clipboard`]) here, and
//! the handlers of the four interfaces of both protocols (manager, device,
//! source, offer) in `requests`. A client that copies creates a source, `offer`s MIME
//! types and `set_selection`s it on its device; every device of every
//! client then gets a new server-created `data_offer`, its types and
//! `selection`. A client that pastes sends `receive(mime, fd)` on an
//! offer with the write end of a pipe; the server forwards that fd to the
//! source's client as `send(mime, fd)`, moving it, not duplicating it. The data
//! then flows from one client to the other without touching the server.
//! What it is not: a clipboard manager (it keeps no data, only who
//! offers what), and it knows no sockets: output for other clients is left
//! as [`Delivery`]s for the runtime ([`crate::runtime`]) to queue.
//!
//! # Implementation notes
//!
//! - **Semantics** follow wlroots' `types/wlr_data_control_v1.c` and
//!   `ext_data_control_v1.c` (sway, Hyprland) where the protocol text is
//!   silent: `set_selection` cancels the replaced source; a destroyed
//!   source that was the selection clears it (every device gets
//!   `selection(null)`); a new device gets the current selections at once;
//!   the primary selection is the same machinery under another name; a
//!   source can be set once (`used_source`), and `offer` after that is
//!   `invalid_offer`; offers of a replaced selection stay alive until the
//!   client destroys them, but are inert: a `receive` on one closes the fd,
//!   which the paster reads as EOF.
//! - **One implementation, two protocols.** Both have the same wire shape
//!   (checked in waypass-protocol), so an object only records its
//!   [`Flavor`] to pick the interface table. A device sees offers of its
//!   own flavor; a source of either flavor can be the selection.
//! - **Server-created ids.** Offers take ids from `0xff000000` up, from the
//!   client's own object map, as libwayland does. Their destructor frees
//!   the id with no `delete_id` (libwayland sends it only for client ids).
//! - **Order.** Events for the client being dispatched are queued at once,
//!   so that a `sync` after `get_data_device` or `set_selection` answers
//!   after them. Events for other clients become [`Delivery`]s.
//! - **Limits** (see [`MAX_MIME_TYPES`](crate::config::MAX_MIME_TYPES) and the others) bound what one
//!   client can make the server hold. A `receive` whose source's client
//!   already has [`MAX_PENDING_SENDS`](crate::config::MAX_PENDING_SENDS) fds queued or unread is dropped
//!   (its fd closed) rather than forwarded: a paster flooding receives
//!   must not push the copier past the server's limit of fds in flight,
//!   which would cost the copier its connection.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;

use waypass_protocol::protocols::data_control::ext;

use crate::state::{ClientKey, Flavor};

mod requests;

pub use requests::{bind_manager, deliver, request};

// The opcodes are the same in both protocols (a waypass-protocol test
// checks the shapes); name them once, from ext.
use ext::ext_data_control_device_v1 as device;
use ext::ext_data_control_manager_v1 as manager;
use ext::ext_data_control_offer_v1 as offer;
use ext::ext_data_control_source_v1 as source;

/// The regular selection or the primary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// The clipboard (`selection`).
    Regular,
    /// The primary selection (`primary_selection`).
    Primary,
}

impl Which {
    fn index(self) -> usize {
        match self {
            Which::Regular => 0,
            Which::Primary => 1,
        }
    }

    /// The device event that announces this selection.
    fn event(self) -> u16 {
        match self {
            Which::Regular => device::evt::SELECTION,
            Which::Primary => device::evt::PRIMARY_SELECTION,
        }
    }
}

/// A source, by its client and object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// The client that created it.
    pub client: ClientKey,
    /// Its object id in that client.
    pub id: u32,
}

#[derive(Debug)]
struct Source {
    flavor: Flavor,
    mimes: Vec<CString>,
    /// Set once `set_selection` or `set_primary_selection` took it.
    used: bool,
}

#[derive(Debug, Clone, Copy)]
struct Device {
    client: ClientKey,
    id: u32,
    flavor: Flavor,
    version: u32,
}

/// Output for a client other than the one being dispatched.
#[derive(Debug)]
pub enum Delivery {
    /// Announce `which` selection (or its absence) on a device.
    Selection {
        /// The device's client.
        client: ClientKey,
        /// The device.
        device: u32,
        /// Which selection.
        which: Which,
    },
    /// Forward a paster's fd to a source: `send(mime, fd)`.
    Send {
        /// The source.
        source: SourceKey,
        /// The MIME type asked for.
        mime: CString,
        /// The write end the paster gave.
        fd: OwnedFd,
    },
    /// Tell a replaced source it is no longer the selection.
    Cancelled {
        /// The source.
        source: SourceKey,
    },
}

impl Delivery {
    /// The client the delivery is for.
    pub fn client(&self) -> ClientKey {
        match self {
            Delivery::Selection { client, .. } => *client,
            Delivery::Send { source, .. } | Delivery::Cancelled { source } => source.client,
        }
    }
}

/// The server-wide clipboard: live sources, devices and offers, the two
/// selections, and the output waiting for other clients.
#[derive(Debug, Default)]
pub struct Clipboard {
    sources: HashMap<SourceKey, Source>,
    devices: Vec<Device>,
    /// Each live offer's source, `None` once inert.
    offers: HashMap<(ClientKey, u32), Option<SourceKey>>,
    selection: [Option<SourceKey>; 2],
    deliveries: Vec<Delivery>,
}

impl Clipboard {
    /// The output left for other clients since the last call.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// The current selection's source, if any.
    pub fn selection(&self, which: Which) -> Option<SourceKey> {
        self.selection[which.index()]
    }

    /// Forgets everything of a client that has gone: its sources (clearing
    /// a selection one of them held, for every other device), devices and
    /// offers.
    pub fn client_gone(&mut self, client: ClientKey) {
        self.devices.retain(|d| d.client != client);
        self.offers.retain(|(c, _), _| *c != client);
        let gone: Vec<SourceKey> = self
            .sources
            .keys()
            .filter(|k| k.client == client)
            .copied()
            .collect();
        for key in gone {
            self.remove_source(key);
        }
    }

    fn sources_of(&self, client: ClientKey) -> usize {
        self.sources.keys().filter(|k| k.client == client).count()
    }

    fn offers_of(&self, client: ClientKey) -> usize {
        self.offers.keys().filter(|(c, _)| *c == client).count()
    }

    /// Removes a source; if it was a selection, that selection is cleared
    /// and every device told.
    fn remove_source(&mut self, key: SourceKey) {
        self.sources.remove(&key);
        for which in [Which::Regular, Which::Primary] {
            if self.selection[which.index()] == Some(key) {
                self.set(which, None);
            }
        }
    }

    /// Makes `new` the `which` selection: the old source is cancelled,
    /// offers of it go inert, and every device is to be told.
    fn set(&mut self, which: Which, new: Option<SourceKey>) {
        let old = std::mem::replace(&mut self.selection[which.index()], new);
        if let Some(old) = old.filter(|o| Some(*o) != new) {
            for target in self.offers.values_mut() {
                if *target == Some(old) {
                    *target = None;
                }
            }
            if self.sources.contains_key(&old) {
                self.deliveries.push(Delivery::Cancelled { source: old });
            }
        }
        for d in &self.devices {
            if which == Which::Regular || has_primary(d.flavor, d.version) {
                self.deliveries.push(Delivery::Selection {
                    client: d.client,
                    device: d.id,
                    which,
                });
            }
        }
    }
}

/// Whether a device of this flavor and version has primary selection
/// (ext: always; wlr: from version 2).
fn has_primary(flavor: Flavor, version: u32) -> bool {
    flavor == Flavor::Ext || version >= 2
}
