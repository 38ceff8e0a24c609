//! [`Clipboard`]: copy and paste through a compositor's data-control
//! protocol, with no surface and no display. What it is and is not, for a
//! user, is on [`Clipboard`] itself (this module is private); below is how
//! it works.
//!
//! # Implementation notes
//!
//! - The two protocols have the same wire shape, so the requests and
//!   events are named once, from ext, and sent to objects of either
//!   protocol's tables.
//! - Offers are server-created objects; the session registers them when
//!   `data_offer(new_id)` arrives. An offer that no selection uses any more
//!   is destroyed at once, as wl-clipboard does.
//! - A paste creates the pipe with `O_CLOEXEC`, sends the write end in
//!   `receive` and closes ours right after the flush: the reader then sees
//!   EOF when the source closes its end.

mod error;
mod pastes;
mod serve;

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use waypass_protocol::protocols::data_control::{ext, wlr};
use waypass_protocol::protocols::wayland::wl_registry::WlRegistry;
use waypass_protocol::protocols::wayland::wl_seat::{self, WlSeat};
use waypass_protocol::{Interface, NewId, ObjectId};

pub use error::ClipboardError;
pub use serve::{SendRequest, ServeOptions, Served, MAX_PASTES, PASTE_IDLE_TIMEOUT};

use crate::deadline::Deadline;
use crate::error::SessionError;
use crate::event::Event;
use crate::session::{Session, DEFAULT_REPLY_TIMEOUT};

use ext::ext_data_control_device_v1::{self as device, ExtDataControlDeviceV1 as Device};
use ext::ext_data_control_manager_v1::{self as manager, ExtDataControlManagerV1 as Manager};
use ext::ext_data_control_offer_v1::{self as offer, ExtDataControlOfferV1 as OfferType};
use ext::ext_data_control_source_v1::{self as source, ExtDataControlSourceV1 as Source};
use wlr::zwlr_data_control_manager_v1::ZwlrDataControlManagerV1 as WlrManager;

/// The clipboard or the primary selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The clipboard (`selection`).
    Regular,
    /// The primary selection (middle-click paste).
    Primary,
}

impl Selection {
    fn index(self) -> usize {
        match self {
            Selection::Regular => 0,
            Selection::Primary => 1,
        }
    }
}

/// The types on offer in one selection, as the server announced them.
#[derive(Debug, Clone)]
struct Offer {
    id: u32,
    types: Vec<String>,
}

/// A connection that can copy and paste, through a compositor's
/// data-control protocol, with no surface and no display.
///
/// What it is: a [`Session`] bound to `wl_seat` and a data-control manager
/// (`ext-data-control-v1` when the server offers it, else
/// `wlr-data-control-unstable-v1`), with one device. It tracks the current
/// selection and primary selection as the server announces them (the MIME
/// types on offer, [`Clipboard::types`]), pastes by handing the server the
/// write end of a pipe and returning the read end ([`Clipboard::paste`]),
/// and copies by offering types and writing into each fd the server
/// forwards ([`Clipboard::serve_file`]). What it is not: a data store (the
/// bytes go from one client to the other through the pipe) or a multi-seat
/// client (it uses one seat: the first, or the one named).
///
/// ```no_run
/// use std::io::Read;
/// use waypass_client::{Clipboard, Selection};
///
/// let mut clipboard = Clipboard::connect(None)?;
/// println!("offered: {:?}", clipboard.types(Selection::Regular));
/// let mut text = String::new();
/// clipboard.paste(Selection::Regular, "text/plain")?.read_to_string(&mut text)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Clipboard {
    session: Session,
    flavor: Flavor,
    manager: u32,
    device: u32,
    /// Offers announced but not yet named by a selection event.
    pending: Vec<Offer>,
    current: [Option<Offer>; 2],
    /// How many selection events have arrived, per selection.
    changes: [u64; 2],
    /// Our own source of each selection (regular, primary), while set.
    sources: [Option<u32>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Ext,
    Wlr { version: u32 },
}

impl Flavor {
    fn tables(self) -> [&'static Interface; 4] {
        match self {
            Flavor::Ext => [
                &ext::ext_data_control_manager_v1::INTERFACE,
                &ext::ext_data_control_device_v1::INTERFACE,
                &ext::ext_data_control_source_v1::INTERFACE,
                &ext::ext_data_control_offer_v1::INTERFACE,
            ],
            Flavor::Wlr { .. } => [
                &wlr::zwlr_data_control_manager_v1::INTERFACE,
                &wlr::zwlr_data_control_device_v1::INTERFACE,
                &wlr::zwlr_data_control_source_v1::INTERFACE,
                &wlr::zwlr_data_control_offer_v1::INTERFACE,
            ],
        }
    }

    fn has_primary(self) -> bool {
        !matches!(self, Flavor::Wlr { version: 1 })
    }
}

impl Clipboard {
    /// Connects (as [`Session::connect`]: `None` for the usual
    /// `WAYLAND_DISPLAY` search), binds the first seat and the
    /// data-control manager, and learns the current selections, within the
    /// session's default reply timeout.
    pub fn connect(display: Option<&str>) -> Result<Clipboard, ClipboardError> {
        Clipboard::connect_to_seat(display, None)
    }

    /// As [`Clipboard::connect`], on the seat named `seat` (`wl_seat.name`;
    /// `None`: the first seat). No seat of that name is
    /// [`ClipboardError::NoSuchSeat`].
    pub fn connect_to_seat(
        display: Option<&str>,
        seat: Option<&str>,
    ) -> Result<Clipboard, ClipboardError> {
        Clipboard::on_seat(
            Session::connect(display)?,
            Deadline::after(DEFAULT_REPLY_TIMEOUT),
            seat,
        )
    }

    /// Sets up the clipboard on an existing session, by `deadline`, on the
    /// first seat.
    pub fn new(session: Session, deadline: Deadline) -> Result<Clipboard, ClipboardError> {
        Clipboard::on_seat(session, deadline, None)
    }

    /// Sets up the clipboard on an existing session, by `deadline`, on the
    /// seat named `seat` (`None`: the first seat).
    pub fn on_seat(
        mut session: Session,
        deadline: Deadline,
        seat: Option<&str>,
    ) -> Result<Clipboard, ClipboardError> {
        let globals = session.globals_by(deadline)?;
        let registry = globals.registry();
        let seats: Vec<u32> = globals
            .all::<WlSeat>()
            .filter(|g| g.version >= 2)
            .map(|g| g.name)
            .collect();
        let ext_manager = globals.find::<Manager>().map(|g| (g.name, g.version));
        let wlr_manager = globals.find::<WlrManager>().map(|g| (g.name, g.version));
        let (flavor, (name, version)) = match (ext_manager, wlr_manager) {
            (Some(m), _) => (Flavor::Ext, m),
            (None, Some((n, v))) => (Flavor::Wlr { version: v.min(2) }, (n, v)),
            (None, None) => return Err(ClipboardError::NoDataControl),
        };
        let [manager_iface, device_iface, ..] = flavor.tables();
        let version = version.min(manager_iface.version);
        let seat = bind_seat(&mut session, registry, &seats, seat, deadline)?;
        let manager = match flavor {
            Flavor::Ext => session.bind::<Manager>(registry, name, version)?.raw(),
            Flavor::Wlr { .. } => session.bind::<WlrManager>(registry, name, version)?.raw(),
        };
        let device = session.allocate(device_iface, version)?;
        let get_device = manager::Request::GetDataDevice {
            id: NewId::from_raw(device),
            seat,
        };
        session.send_as::<Manager>(manager, get_device)?;
        let mut clipboard = Clipboard {
            session,
            flavor,
            manager,
            device,
            pending: Vec::new(),
            current: [None, None],
            changes: [0, 0],
            sources: [None, None],
        };
        // The device gets the current selections at once.
        clipboard.session.roundtrip_by(deadline)?;
        clipboard.absorb()?;
        Ok(clipboard)
    }

    /// The types the `which` selection offers, `None` when it is empty.
    pub fn types(&self, which: Selection) -> Option<&[String]> {
        self.current[which.index()]
            .as_ref()
            .map(|o| o.types.as_slice())
    }

    /// How many times the `which` selection has changed since connecting
    /// (the initial announcement counts as one).
    pub fn changes(&self, which: Selection) -> u64 {
        self.changes[which.index()]
    }

    /// Whether the server's protocol has a primary selection.
    pub fn has_primary(&self) -> bool {
        self.flavor.has_primary()
    }

    /// Asks for the `which` selection as `mime`; returns the read end of a
    /// pipe the source writes into. Read it to EOF.
    pub fn paste(&mut self, which: Selection, mime: &str) -> Result<File, ClipboardError> {
        self.check_primary(which)?;
        let offer = self.current[which.index()]
            .as_ref()
            .ok_or(ClipboardError::Empty)?;
        if !offer.types.iter().any(|t| t == mime) {
            return Err(ClipboardError::NoSuchType(mime.to_owned()));
        }
        let id = offer.id;
        let mime = c_string(mime)?;
        let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| ClipboardError::Pipe(e.into()))?;
        let receive = offer::Request::Receive {
            mime_type: &mime,
            fd: write.as_fd(),
        };
        self.session.send_as::<OfferType>(id, receive)?;
        self.session.flush()?;
        drop(write); // the source holds the only write end now
        Ok(File::from(read))
    }

    /// Waits until the `which` selection changes (a new offer, or empty),
    /// for up to `timeout` (`None`: forever). Returns whether it changed.
    pub fn wait_for_change(
        &mut self,
        which: Selection,
        timeout: Option<Duration>,
    ) -> Result<bool, ClipboardError> {
        self.check_primary(which)?;
        let before = self.changes[which.index()];
        let deadline = timeout.map(Deadline::after);
        while self.changes[which.index()] == before {
            if !self.session.read_events(deadline.map(Deadline::at))? {
                return Ok(false);
            }
            self.absorb()?;
        }
        Ok(true)
    }

    /// Makes a new source offering `types` the `which` selection (or clears
    /// it, with no types). Serve pastes with [`Clipboard::serve`].
    pub fn copy(&mut self, which: Selection, types: &[&str]) -> Result<(), ClipboardError> {
        self.check_primary(which)?;
        let set = |source: Option<u32>| {
            let source = source.and_then(ObjectId::new);
            match which {
                Selection::Regular => device::Request::SetSelection { source },
                Selection::Primary => device::Request::SetPrimarySelection { source },
            }
        };
        // Our previous source is destroyed only after the new selection is
        // set: destroyed first, it would clear the selection, and every
        // paster would see an empty one in between (a `--watch` would run
        // its command for nothing).
        let old = self.sources[which.index()].take();
        if types.is_empty() {
            self.session.send_as::<Device>(self.device, set(None))?;
        } else {
            let source_iface = self.flavor.tables()[2];
            let version = self.session.object(self.manager).map_or(1, |o| o.version);
            let id = self.session.allocate(source_iface, version)?;
            let create = manager::Request::CreateDataSource {
                id: NewId::from_raw(id),
            };
            self.session.send_as::<Manager>(self.manager, create)?;
            for t in types {
                let mime_type = &c_string(t)?;
                let offer = source::Request::Offer { mime_type };
                self.session.send_as::<Source>(id, offer)?;
            }
            self.session.send_as::<Device>(self.device, set(Some(id)))?;
            self.sources[which.index()] = Some(id);
        }
        if let Some(old) = old {
            self.session
                .send_as::<Source>(old, source::Request::Destroy)?;
        }
        self.session.roundtrip()?;
        self.absorb()
    }

    /// Takes in, without blocking, what the server sent: for an event loop
    /// that watches this clipboard's fd ([`AsFd`]) for readability. Sends
    /// queued requests as far as the socket takes them, reads until the
    /// socket is empty ([`Session::dispatch_pending`] until it reads
    /// nothing, so an edge-triggered loop may wait again), and updates the
    /// selections. Returns whether either selection changed
    /// ([`Clipboard::changes`] tells which). The paste requests for our
    /// own selections it read wait in [`Clipboard::take_sends`]; reading
    /// a paste's pipe is the caller's, at its own pace.
    pub fn poll_changes(&mut self) -> Result<bool, ClipboardError> {
        let before = self.changes;
        self.session.flush_nonblocking()?;
        while self.session.dispatch_pending()? > 0 {
            self.absorb()?;
        }
        self.absorb()?;
        Ok(self.changes != before)
    }

    /// The session, e.g. to register its fd with an event loop.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn check_primary(&self, which: Selection) -> Result<(), ClipboardError> {
        if which == Selection::Primary && !self.flavor.has_primary() {
            return Err(ClipboardError::NoPrimary);
        }
        Ok(())
    }

    /// Takes the device's and offers' queued events into the state.
    fn absorb(&mut self) -> Result<(), ClipboardError> {
        let [_, device_iface, _, offer_iface] = self.flavor.tables();
        let device_id = self.device;
        let mine = |e: &Event| e.interface == device_iface || e.interface == offer_iface;
        while let Some(mut ev) = self.session.take_event(mine) {
            if ev.interface == offer_iface {
                let object = ev.object;
                let offer::Event::Offer { mime_type } =
                    ev.decode_as::<OfferType>().map_err(SessionError::from)?;
                if let Some(o) = self.pending.iter_mut().find(|o| o.id == object) {
                    o.types.push(mime_type.to_string_lossy().into_owned());
                }
                continue;
            }
            if ev.object != device_id {
                continue;
            }
            match ev.decode_as::<Device>().map_err(SessionError::from)? {
                device::Event::DataOffer { id } => self.pending.push(Offer {
                    id: id.raw(),
                    types: Vec::new(),
                }),
                device::Event::Selection { id } => {
                    self.select(Selection::Regular, id.map(ObjectId::raw))?
                }
                device::Event::PrimarySelection { id } => {
                    self.select(Selection::Primary, id.map(ObjectId::raw))?
                }
                // The seat went away; nothing more will come.
                device::Event::Finished => {}
            }
        }
        Ok(())
    }

    /// `which` is now offer `id` (0: empty); the offer it replaces is
    /// destroyed.
    fn select(&mut self, which: Selection, id: Option<u32>) -> Result<(), ClipboardError> {
        let new = match id {
            Some(id) if id != 0 => {
                let at = self.pending.iter().position(|o| o.id == id);
                at.map(|i| self.pending.remove(i))
            }
            _ => None,
        };
        self.changes[which.index()] += 1;
        if let Some(old) = std::mem::replace(&mut self.current[which.index()], new) {
            let still_used = self.current.iter().flatten().any(|o| o.id == old.id);
            if !still_used {
                self.session
                    .send_as::<OfferType>(old.id, offer::Request::Destroy)?;
            }
        }
        Ok(())
    }
}

impl AsFd for Clipboard {
    /// The connection's socket, to watch for readability; then
    /// [`Clipboard::poll_changes`].
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.session.as_fd()
    }
}

/// Binds the seat named `wanted` among the `wl_seat` globals `seats`
/// (version 2, which sends the name), or the first one; returns its id.
fn bind_seat(
    session: &mut Session,
    registry: ObjectId<WlRegistry>,
    seats: &[u32],
    wanted: Option<&str>,
    deadline: Deadline,
) -> Result<ObjectId<WlSeat>, ClipboardError> {
    let Some(wanted) = wanted else {
        let first = *seats.first().ok_or(ClipboardError::NoSeat)?;
        return Ok(session.bind(registry, first, 2)?);
    };
    let mut bound = Vec::with_capacity(seats.len());
    for &global in seats {
        bound.push(session.bind::<WlSeat>(registry, global, 2)?);
    }
    session.roundtrip_by(deadline)?;
    let mut found = None;
    while let Some(mut ev) = session.take_event(|e| bound.iter().any(|&s| e.is_from(s))) {
        let seat = ObjectId::from_raw(ev.object);
        if let wl_seat::Event::Name { name } = ev.decode::<WlSeat>().map_err(SessionError::from)? {
            if found.is_none() && name.to_bytes() == wanted.as_bytes() {
                found = Some(seat);
            }
        }
    }
    found.ok_or_else(|| ClipboardError::NoSuchSeat(wanted.to_owned()))
}

fn c_string(s: &str) -> Result<std::ffi::CString, ClipboardError> {
    std::ffi::CString::new(s).map_err(|_| ClipboardError::BadType(s.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_connection_types_are_debug() {
        fn is_debug<T: std::fmt::Debug>() {}
        is_debug::<super::Clipboard>();
        is_debug::<crate::Broker>();
        is_debug::<crate::KeymapWatcher>();
        is_debug::<crate::Session>();
    }
}
