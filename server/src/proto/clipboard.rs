//! The clipboard, headless: `ext-data-control-v1` and
//! `wlr-data-control-unstable-v1` (version 2, with primary selection).
//!
//! What it is: the server-wide selection state ([`Clipboard`]) here, the
//! handlers of the four interfaces of both protocols (manager, device,
//! source, offer) in `requests`, and the announcement of selections to
//! devices in `announce`. A client that copies creates a source, `offer`s
//! MIME types and `set_selection`s it on its device; every device of every
//! client is then told of the new selection with a new server-created
//! `data_offer`, its types and `selection`. A client that pastes sends
//! `receive(mime, fd)` on an offer with the write end of a pipe; the
//! server forwards that fd to the source's client as `send(mime, fd)`,
//! moving it, not duplicating it. The data then flows from one client to
//! the other without touching the server. What it is not: a clipboard
//! manager (it keeps no data, only who offers what), and it knows no
//! sockets.
//!
//! # Implementation notes
//!
//! - **Semantics** follow wlroots' `types/wlr_data_control_v1.c` and
//!   `ext_data_control_v1.c` (sway, Hyprland) where the protocol text is
//!   silent: `set_selection` cancels the replaced source; a destroyed
//!   source that was the selection clears it (devices are told
//!   `selection(null)`); a new device gets the current selections at once;
//!   the primary selection is the same machinery under another name; a
//!   source can be set once (`used_source`), and `offer` after that is
//!   `invalid_offer`; offers of a replaced selection stay alive until the
//!   client destroys them, but are inert: a `receive` on one closes the
//!   fd, which the paster reads as EOF. Setting the selection it already
//!   has (`set_selection(null)` on an empty one) changes nothing and tells
//!   nobody, as in wlroots.
//! - **Coalesced announcements.** Only the latest selection matters to a
//!   device. A change bumps the selection's generation; each device
//!   remembers the generation it was last told of. The actor's own devices
//!   are told at once (so that its `sync` after `set_selection` answers
//!   after them); every other device once per loop pass
//!   ([`announce::deliver_round`]), or, while a burst of changes is still
//!   arriving (its client filled its read), once per 17 passes at most
//!   (`runtime::core`). A burst of N changes costs each device one or two
//!   announcements, not N. A device skipped for lack of room is told at
//!   its client's next wakeup.
//! - **The actor pays, never the recipient.** A device whose client holds
//!   [`Limits::data_offers`](crate::limits::Limits) live offers, or whose
//!   share of the output budget cannot take the announcement, is not told
//!   yet: it keeps its stale generation and is told of the latest selection
//!   once it has room (its own next wakeup, or the next round). It is
//!   never disconnected for what others did. The actor's side is bounded:
//!   data-control managers and devices per client, sources per client,
//!   types per source, bytes per type.
//! - **One implementation, two protocols.** Both have the same messages
//!   (checked in waypass-protocol), so an object records its [`Flavor`],
//!   and [`flavor`] turns each flavor's typed requests into one set of
//!   request enums and the clipboard's events into each flavor's: the
//!   handlers in `requests` and `announce` never name a flavor's
//!   messages. A device sees offers of its own flavor; a source of either
//!   flavor can be the selection.
//! - **Server-created ids.** Offers take ids from `0xff000000` up, from the
//!   client's own object map, as libwayland does. Their destructor frees
//!   the id with no `delete_id` (libwayland sends it only for client ids).
//! - **Pastes.** A `receive` whose source's client already has
//!   [`Limits::pending_sends`](crate::limits::Limits) fds queued or unread,
//!   or no share of fds in flight left, is dropped (its fd closed, the
//!   paster reads EOF) rather than forwarded: a paster's flood costs the
//!   paster, never the copier's connection.

use std::collections::HashMap;
use std::ffi::CString;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use waypass_protocol::protocols::data_control::ext;

use crate::state::{ClientKey, Flavor};
use persist::Persistence;

mod announce;
pub mod flavor;
pub mod persist;
mod requests;

pub use announce::{catch_up, deliver_round, is_behind};
pub use requests::{bind_manager, device, manager, offer, source};

// The error codes are the same in both protocols; name them once, from ext.
use ext::ext_data_control_device_v1 as device_v1;
use ext::ext_data_control_source_v1 as source_v1;

/// The regular selection or the primary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// The clipboard (`selection`).
    Regular,
    /// The primary selection (`primary_selection`).
    Primary,
}

impl Which {
    const BOTH: [Which; 2] = [Which::Regular, Which::Primary];

    fn index(self) -> usize {
        match self {
            Which::Regular => 0,
            Which::Primary => 1,
        }
    }

    /// "regular" or "primary", for logs.
    pub fn name(self) -> &'static str {
        match self {
            Which::Regular => "regular",
            Which::Primary => "primary",
        }
    }

    /// The device event that announces this selection: `offer`, or none.
    fn event(self, offer: Option<u32>) -> flavor::DeviceEvent {
        match self {
            Which::Regular => flavor::DeviceEvent::Selection { id: offer },
            Which::Primary => flavor::DeviceEvent::PrimarySelection { id: offer },
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
    /// Shared with announcements in progress once the source is used.
    mimes: Rc<Vec<CString>>,
    /// Set once `set_selection` or `set_primary_selection` took it.
    used: bool,
}

#[derive(Debug, Clone, Copy)]
struct Device {
    id: u32,
    flavor: Flavor,
    version: u32,
    /// The generation of each selection it was last told of.
    seen: [u64; 2],
}

impl Device {
    /// Whether it has primary selection (ext: always; wlr: from version 2).
    fn has(&self, which: Which) -> bool {
        which == Which::Regular || self.flavor == Flavor::Ext || self.version >= 2
    }
}

/// What an offer stands for: the selection it announced, at the
/// generation it announced. It is inert once that selection has changed.
#[derive(Debug, Clone, Copy)]
struct Offer {
    source: SourceKey,
    which: Which,
    generation: u64,
}

/// One client's clipboard objects.
#[derive(Debug, Default)]
struct Member {
    /// The clipboard's total generation when all its devices were last
    /// told; `u64::MAX` when a new device has not been told yet.
    seen: u64,
    managers: u64,
    devices: Vec<Device>,
    /// Its live sources' ids.
    sources: Vec<u32>,
    /// Its live offers, by (server-allocated) id.
    offers: FxHashMap<u32, Offer>,
}

impl Member {
    fn is_empty(&self) -> bool {
        self.managers == 0
            && self.devices.is_empty()
            && self.sources.is_empty()
            && self.offers.is_empty()
    }
}

/// The server-wide clipboard: live sources, each client's devices and
/// offers, and the two selections with their generations.
#[derive(Debug, Default)]
pub struct Clipboard {
    /// By client and client-chosen id: SipHash, as for anything a peer
    /// picks.
    sources: HashMap<SourceKey, Source>,
    /// By the server's own client keys: a fast hash (looked up on every
    /// wakeup, and per device in a round).
    members: FxHashMap<ClientKey, Member>,
    selection: [Option<SourceKey>; 2],
    /// Bumped at each change of the selection.
    generation: [u64; 2],
    /// A change since the last round.
    changed: bool,
    /// The kept copies (`--persist`).
    pub persist: Persistence,
}

impl Clipboard {
    /// A clipboard that keeps selections as `persist` says.
    pub fn new(persist: Persistence) -> Clipboard {
        Clipboard {
            persist,
            ..Clipboard::default()
        }
    }

    /// Whether the selection changed since the last round of
    /// announcements.
    pub fn has_changed(&self) -> bool {
        self.changed
    }

    /// The current selection's source, if any.
    pub fn selection(&self, which: Which) -> Option<SourceKey> {
        self.selection[which.index()]
    }

    /// Both generations in one number: it changes whenever either
    /// selection does.
    pub fn generation(&self) -> u64 {
        self.generation[0].wrapping_add(self.generation[1])
    }

    /// An offer of `client` that still stands for the selection; `None`
    /// if it is unknown or inert.
    fn live_offer(&self, client: ClientKey, offer: u32) -> Option<Offer> {
        let offer = self.members.get(&client)?.offers.get(&offer)?;
        (self.generation[offer.which.index()] == offer.generation).then_some(*offer)
    }

    /// Forgets everything of a client that has gone: its sources (clearing
    /// a selection one of them held), devices and offers. Returns the
    /// sources of other clients to tell `cancelled` (none: a client's own
    /// source is what it loses).
    pub fn client_gone(&mut self, client: ClientKey) {
        let Some(member) = self.members.remove(&client) else {
            return;
        };
        for id in member.sources {
            self.remove_source(SourceKey { client, id });
        }
        self.persist.client_gone(client);
    }

    fn member(&mut self, client: ClientKey) -> &mut Member {
        self.members.entry(client).or_default()
    }

    /// Forgets `client`'s entry once it holds nothing.
    fn tidy(&mut self, client: ClientKey) {
        if self.members.get(&client).is_some_and(Member::is_empty) {
            self.members.remove(&client);
        }
    }

    /// Removes a source; if it was a selection, the server takes that
    /// selection over when it kept it (`--persist`), or clears it.
    fn remove_source(&mut self, key: SourceKey) {
        let Some(source) = self.sources.remove(&key) else {
            return;
        };
        if let Some(member) = self.members.get_mut(&key.client) {
            member.sources.retain(|&id| id != key.id);
        }
        for which in Which::BOTH {
            if self.selection[which.index()] == Some(key)
                && !persist::hand_over(self, which, key, &source)
            {
                self.set(which, None);
            }
        }
    }

    /// Makes `new` the `which` selection. Returns the replaced source,
    /// still live, that must be told `cancelled`, if any. Offers of the
    /// old one go inert by the generation; devices learn of the change by
    /// it too.
    fn set(&mut self, which: Which, new: Option<SourceKey>) -> Option<SourceKey> {
        let i = which.index();
        if self.selection[i] == new {
            return None;
        }
        let old = std::mem::replace(&mut self.selection[i], new);
        self.generation[i] += 1;
        self.changed = true;
        self.persist.drop_copy(which, "the selection changed");
        if let Some(ours) = old.filter(|o| o.client == ClientKey::SERVER) {
            // A selection the server took over: nobody to tell.
            self.sources.remove(&ours);
        }
        old.filter(|o| self.sources.contains_key(o))
    }
}
