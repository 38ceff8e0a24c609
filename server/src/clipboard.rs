//! The clipboard, headless: `ext-data-control-v1` and
//! `wlr-data-control-unstable-v1` (version 2, with primary selection).
//!
//! What it is: the server-wide selection state ([`Clipboard`]) and the
//! handlers of the four interfaces of both protocols (manager, device,
//! source, offer). A client that copies creates a source, `offer`s MIME
//! types and `set_selection`s it on its device; every device of every
//! client then gets a new server-created `data_offer`, its types and
//! `selection`. A client that pastes sends `receive(mime, fd)` on an
//! offer with the write end of a pipe; the server forwards that fd to the
//! source's client as `send(mime, fd)` and closes its own copy. The data
//! then flows from one client to the other without touching the server.
//! What it is not: a clipboard manager (it keeps no data, only who
//! offers what), and it knows no sockets: output for other clients is left
//! as [`Delivery`]s for [`crate::server`] to queue.
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
//! - **Limits** (see [`MAX_MIME_TYPES`] and the others) bound what one
//!   client can make the server hold. A `receive` whose source's client
//!   already has [`MAX_PENDING_SENDS`] fds queued or unread is dropped
//!   (its fd closed) rather than forwarded: a paster flooding receives
//!   must not push the copier past the server's limit of fds in flight,
//!   which would cost the copier its connection.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};

use log::debug;
use waypass_protocol::protocols::data_control::{ext, wlr};
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{Arg, Interface, Message};

use crate::client::{ClientKey, Object, DISPLAY_ID};
use crate::dispatch::{Ctx, ProtocolError, Stop};

/// The most MIME types one source may offer (wl-copy offers 5 for text,
/// browsers about 10).
pub const MAX_MIME_TYPES: usize = 64;
/// The longest MIME type, in bytes (RFC 6838: 127 for each of type and
/// subtype, plus the slash).
pub const MAX_MIME_LEN: usize = 255;
/// The most live sources one client may hold.
pub const MAX_SOURCES_PER_CLIENT: usize = 32;
/// The most live offers one client may hold: it must destroy the offers of
/// past selections.
pub const MAX_OFFERS_PER_CLIENT: usize = 256;
/// The most fds a source's client may have queued or unread before further
/// `receive`s for it are dropped (well below the server's in-flight limit,
/// so that a paster's flood never gets the copier disconnected).
pub const MAX_PENDING_SENDS: usize = 16;

/// Which of the two protocols an object speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `ext-data-control-v1`.
    Ext,
    /// `wlr-data-control-unstable-v1`.
    Wlr,
}

impl Flavor {
    /// The manager global's interface.
    pub fn manager(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_manager_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_manager_v1::INTERFACE,
        }
    }

    /// The device interface.
    pub fn device(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_device_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_device_v1::INTERFACE,
        }
    }

    /// The source interface.
    pub fn source(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_source_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_source_v1::INTERFACE,
        }
    }

    /// The offer interface.
    pub fn offer(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_offer_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_offer_v1::INTERFACE,
        }
    }
}

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

/// Binds a manager global.
pub fn bind_manager(cx: &mut Ctx<'_>, id: u32, flavor: Flavor, version: u32) -> Result<(), Stop> {
    cx.create(id, Object::DataManager { flavor, version })
}

/// Handles a request to a manager, device, source or offer.
pub fn request(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    obj: Object,
    msg: &Message<'_>,
) -> Result<(), Stop> {
    use Arg::{NewId, Object as Obj, Str};
    let id = msg.sender;
    match (obj, msg.opcode, msg.args.as_slice()) {
        (
            Object::DataManager { flavor, version },
            manager::req::CREATE_DATA_SOURCE,
            [NewId(new)],
        ) => create_source(cx, clipboard, *new, flavor, version),
        (
            Object::DataManager { flavor, version },
            manager::req::GET_DATA_DEVICE,
            [NewId(new), Obj(seat)],
        ) => get_device(cx, clipboard, *new, *seat, flavor, version),
        (Object::DataManager { .. }, manager::req::DESTROY, []) => cx.destroy(id),
        (Object::DataDevice { .. }, device::req::SET_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Regular)
        }
        (Object::DataDevice { .. }, device::req::SET_PRIMARY_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Primary)
        }
        (Object::DataDevice { .. }, device::req::DESTROY, []) => {
            let key = cx.key;
            clipboard.devices.retain(|d| (d.client, d.id) != (key, id));
            cx.destroy(id)
        }
        (Object::DataSource { .. }, source::req::OFFER, [Str(Some(mime))]) => {
            offer_type(cx, clipboard, id, mime)
        }
        (Object::DataSource { .. }, source::req::DESTROY, []) => {
            clipboard.remove_source(SourceKey { client: cx.key, id });
            cx.destroy(id)?;
            flush_own(cx, clipboard)
        }
        (Object::DataOffer { .. }, offer::req::RECEIVE, [Str(Some(mime)), Arg::Fd(fd)]) => {
            receive(cx, clipboard, id, mime, fd)
        }
        (Object::DataOffer { .. }, offer::req::DESTROY, []) => {
            clipboard.offers.remove(&(cx.key, id));
            // A server-created id: freed with no delete_id, as libwayland.
            cx.objects.remove(id);
            Ok(())
        }
        _ => Err(Stop::Protocol(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::IMPLEMENTATION,
            format!(
                "no handler for {}@{id} opcode {}",
                obj.interface().name,
                msg.opcode
            ),
        ))),
    }
}

fn create_source(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    if clipboard.sources_of(cx.key) >= MAX_SOURCES_PER_CLIENT {
        return Err(no_memory(format!(
            "too many data sources (the limit is {MAX_SOURCES_PER_CLIENT})"
        )));
    }
    cx.create(id, Object::DataSource { flavor, version })?;
    let key = SourceKey { client: cx.key, id };
    clipboard.sources.insert(
        key,
        Source {
            flavor,
            mimes: Vec::new(),
            used: false,
        },
    );
    Ok(())
}

fn get_device(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    seat: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    if !matches!(cx.objects.get(seat), Some(Object::Seat { .. })) {
        return Err(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::INVALID_OBJECT,
            format!("invalid object {seat}"),
        )
        .into());
    }
    cx.create(id, Object::DataDevice { flavor, version })?;
    clipboard.devices.push(Device {
        client: cx.key,
        id,
        flavor,
        version,
    });
    // A new device learns the current selections at once.
    announce(cx, clipboard, id, Which::Regular)?;
    if has_primary(flavor, version) {
        announce(cx, clipboard, id, Which::Primary)?;
    }
    Ok(())
}

fn offer_type(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    mime: &CStr,
) -> Result<(), Stop> {
    let Some(source) = clipboard.sources.get_mut(&SourceKey { client: cx.key, id }) else {
        return Err(bug(cx, id));
    };
    if source.used {
        return Err(ProtocolError::new(
            id,
            source::error::INVALID_OFFER,
            "cannot offer a MIME type after set_selection",
        )
        .into());
    }
    if mime.to_bytes().len() > MAX_MIME_LEN {
        return Err(no_memory(format!(
            "MIME type longer than {MAX_MIME_LEN} bytes"
        )));
    }
    if source.mimes.iter().any(|m| m.as_c_str() == mime) {
        return Ok(()); // offered twice: once is enough
    }
    if source.mimes.len() >= MAX_MIME_TYPES {
        return Err(no_memory(format!(
            "too many MIME types on one data source (the limit is {MAX_MIME_TYPES})"
        )));
    }
    source.mimes.push(mime.to_owned());
    Ok(())
}

fn set_selection(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    device_id: u32,
    source_id: u32,
    which: Which,
) -> Result<(), Stop> {
    let new = if source_id == 0 {
        None
    } else {
        let key = SourceKey {
            client: cx.key,
            id: source_id,
        };
        let Some(source) = clipboard.sources.get_mut(&key) else {
            // Not a live source of this client (or not a source at all).
            return Err(ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::INVALID_OBJECT,
                format!("invalid object {source_id}"),
            )
            .into());
        };
        if source.used {
            return Err(ProtocolError::new(
                device_id,
                device::error::USED_SOURCE,
                "cannot use a data source in set_selection more than once",
            )
            .into());
        }
        source.used = true;
        Some(key)
    };
    clipboard.set(which, new);
    flush_own(cx, clipboard)
}

fn receive(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    offer_id: u32,
    mime: &CStr,
    fd: &OwnedFd,
) -> Result<(), Stop> {
    let Some(Some(source)) = clipboard.offers.get(&(cx.key, offer_id)).copied() else {
        // An inert offer (its selection was replaced) or a gone source:
        // the fd closes with the request, and the paster reads EOF.
        debug!("receive on an inert offer ({}): fd closed", cx.who());
        return Ok(());
    };
    // Ours closes with the request once the copy is queued.
    let fd = fd.try_clone().map_err(|e| {
        Stop::Server(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::NO_MEMORY,
            format!("cannot duplicate the receive fd: {e}"),
        ))
    })?;
    clipboard.deliveries.push(Delivery::Send {
        source,
        mime: mime.to_owned(),
        fd,
    });
    flush_own(cx, clipboard)
}

/// Queues, on `cx`'s own client, the deliveries meant for it, leaving the
/// others for [`crate::server`].
fn flush_own(cx: &mut Ctx<'_>, clipboard: &mut Clipboard) -> Result<(), Stop> {
    let all = clipboard.take_deliveries();
    let (own, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.client() == cx.key);
    clipboard.deliveries = others;
    for d in own {
        deliver(cx, clipboard, d)?;
    }
    Ok(())
}

/// Queues one delivery on its client (`cx`).
pub fn deliver(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    delivery: Delivery,
) -> Result<(), Stop> {
    match delivery {
        Delivery::Selection { device, which, .. } => {
            if matches!(cx.objects.get(device), Some(Object::DataDevice { .. })) {
                announce(cx, clipboard, device, which)?;
            }
            Ok(())
        }
        Delivery::Send { source, mime, fd } => {
            let Some(flavor) = clipboard.sources.get(&source).map(|s| s.flavor) else {
                return Ok(()); // gone meanwhile: the fd closes, EOF
            };
            if cx.pending_fds() >= MAX_PENDING_SENDS {
                debug!(
                    "a paste is dropped: the copying client ({}) has {MAX_PENDING_SENDS} fds unread",
                    cx.who()
                );
                return Ok(());
            }
            cx.send(
                source.id,
                flavor.source(),
                source::evt::SEND,
                &[Arg::Str(Some(&mime)), Arg::Fd(fd.as_fd())],
            )
        }
        Delivery::Cancelled { source } => {
            let Some(flavor) = clipboard.sources.get(&source).map(|s| s.flavor) else {
                return Ok(());
            };
            cx.send(source.id, flavor.source(), source::evt::CANCELLED, &[])
        }
    }
}

/// Tells `device` of `cx`'s client what the `which` selection is now: a
/// new offer with its types, then `selection(offer)`, or `selection(null)`.
fn announce(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    device: u32,
    which: Which,
) -> Result<(), Stop> {
    let Some(Object::DataDevice { flavor, version }) = cx.objects.get(device).copied() else {
        return Ok(());
    };
    let current = clipboard.selection(which);
    let offer_id = match current {
        Some(source) => {
            if clipboard.offers_of(cx.key) >= MAX_OFFERS_PER_CLIENT {
                return Err(no_memory(format!(
                    "too many live data offers (the limit is {MAX_OFFERS_PER_CLIENT}): destroy old ones"
                )));
            }
            let offer_id = cx.objects.allocate(Object::DataOffer { flavor, version });
            clipboard.offers.insert((cx.key, offer_id), Some(source));
            cx.send(
                device,
                flavor.device(),
                device::evt::DATA_OFFER,
                &[Arg::NewId(offer_id)],
            )?;
            let mimes = clipboard
                .sources
                .get(&source)
                .map(|s| s.mimes.clone())
                .unwrap_or_default();
            for mime in &mimes {
                cx.send(
                    offer_id,
                    flavor.offer(),
                    offer::evt::OFFER,
                    &[Arg::Str(Some(mime))],
                )?;
            }
            offer_id
        }
        None => 0,
    };
    cx.send(
        device,
        flavor.device(),
        which.event(),
        &[Arg::Object(offer_id)],
    )
}

fn no_memory(message: String) -> Stop {
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::NO_MEMORY,
        message,
    ))
}

fn bug(cx: &Ctx<'_>, id: u32) -> Stop {
    log::error!(
        "bug: data source {id} of {} is not in the clipboard",
        cx.who()
    );
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        format!("data source {id} is unknown to the server"),
    ))
}
