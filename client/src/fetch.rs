//! The keymap handshake: registry, `wl_seat`, `wl_keyboard`, and the
//! `keymap` and `repeat_info` events, once or in follow mode.
//!
//! [`fetch_keymap`] connects, gets one keymap and hangs up.
//! [`KeymapWatcher`] keeps the connection and yields each keymap the server
//! pushes ([`KeymapWatcher::next_keymap`], or as an [`Iterator`]) until the
//! server goes away, or, in an event loop that watches its fd ([`AsFd`]),
//! whenever [`KeymapWatcher::poll_keymap`] finds one. Both are built on
//! [`Session`] and hand the fd to
//! [`ReceivedKeymap::from_fd`]; this module decides what to wait for and for
//! how long, and nothing about mapping or parsing.
//!
//! # Implementation notes
//!
//! - The seat is bound at `min(advertised, our table's version)`. With
//!   several seats the first one the registry lists is used, like most
//!   single-seat tools do.
//! - One [`Deadline`], made from [`FetchOptions::timeout`] when the call
//!   starts, bounds the whole setup and the first keymap: the registry
//!   round trip, the keyboard capability (normally sent right after the
//!   bind) and the wait for the keymap. An error names that timeout.
//! - `keymap` and `repeat_info` are accepted in either order (Weston sends
//!   `repeat_info` first, sway `keymap` first). `repeat_info` exists from
//!   `wl_keyboard` version 4; when the keymap comes first at v4+, one
//!   round trip collects a `repeat_info` sent right behind it, and no more
//!   waiting is done, because some compositors never send one.
//! - Events are handled in arrival order up to the next `keymap`, so a
//!   later keymap's events are not mixed into an earlier one.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use log::debug;
use waypass_protocol::protocols::wayland::wl_keyboard::{self, WlKeyboard};
use waypass_protocol::protocols::wayland::wl_seat::{self, WlSeat};
use waypass_protocol::ObjectId;

use crate::deadline::Deadline;
use crate::error::{FetchError, SessionError};
use crate::event::Event;
use crate::keymap::{KeymapOrigin, ParseOptions, ReceivedKeymap, RepeatInfo};
use crate::session::Session;

/// How long to wait, and what to require, when fetching a keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchOptions {
    /// How long the whole call may take, from its start to the first
    /// keymap: the round trips, the keyboard capability and the keymap
    /// ([`fetch_keymap`], or [`KeymapWatcher::connect`] then
    /// [`KeymapWatcher::first_keymap`]). Default: 5 s.
    pub timeout: Duration,
    /// Checks on the keymap fd.
    pub parse: ParseOptions,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(5),
            parse: ParseOptions::default(),
        }
    }
}

impl FetchOptions {
    /// The default options with `timeout` for the whole call.
    pub fn with_timeout(timeout: Duration) -> FetchOptions {
        FetchOptions {
            timeout,
            ..FetchOptions::default()
        }
    }
}

/// Connects to `display` (see [`Session::connect`]), fetches one keymap and
/// disconnects.
///
/// ```no_run
/// let keymap = waypass_client::fetch_keymap(Some("wayland-1"), Default::default())?;
/// println!("layouts: {:?}", keymap.layouts());
/// # Ok::<(), waypass_client::FetchError>(())
/// ```
pub fn fetch_keymap(
    display: Option<&str>,
    options: FetchOptions,
) -> Result<ReceivedKeymap, FetchError> {
    KeymapWatcher::connect(display, options)?.first_keymap()
}

/// A keymap event whose fd has not been parsed yet.
#[derive(Debug)]
struct PendingKeymap {
    format: u32,
    fd: OwnedFd,
    size: u32,
}

/// A connection holding a `wl_keyboard`, yielding each keymap it receives.
#[derive(Debug)]
pub struct KeymapWatcher {
    session: Session,
    seat: ObjectId<WlSeat>,
    /// `None` until the seat has a keyboard.
    keyboard: Option<ObjectId<WlKeyboard>>,
    keyboard_version: u32,
    seat_name: Option<String>,
    capabilities: wl_seat::Capability,
    repeat: Option<RepeatInfo>,
    options: FetchOptions,
    /// The deadline of the call that set the keyboard up, which
    /// [`KeymapWatcher::first_keymap`] also ends at.
    setup_deadline: Deadline,
    /// The server hung up; keymaps already received are still yielded.
    closed: bool,
    /// A session error ended the iterator.
    failed: bool,
}

impl KeymapWatcher {
    /// Connects to `display` and sets up the keyboard: registry, seat,
    /// capability, `get_keyboard`, all within [`FetchOptions::timeout`];
    /// [`KeymapWatcher::first_keymap`] ends at the same deadline. It
    /// returns with `get_keyboard` sent, so an event loop may wait for the
    /// fd to be readable before its first [`KeymapWatcher::poll_keymap`].
    pub fn connect(display: Option<&str>, options: FetchOptions) -> Result<Self, FetchError> {
        let deadline = Deadline::after(options.timeout);
        KeymapWatcher::new_by(Session::connect(display)?, options, deadline)
    }

    /// Sets up the keyboard on an existing session (which should not have
    /// bound a seat yet), within [`FetchOptions::timeout`].
    pub fn new(session: Session, options: FetchOptions) -> Result<Self, FetchError> {
        KeymapWatcher::new_by(session, options, Deadline::after(options.timeout))
    }

    /// [`KeymapWatcher::new`], ending at `deadline` (of a call that did
    /// more before, e.g. connecting).
    pub fn new_by(
        mut session: Session,
        options: FetchOptions,
        deadline: Deadline,
    ) -> Result<Self, FetchError> {
        let seat = match session.bind_global_by::<WlSeat>(u32::MAX, deadline) {
            Err(SessionError::NoGlobal { .. }) => return Err(FetchError::NoSeat),
            bound => bound?,
        };
        let version = session.version(seat).unwrap_or(1);
        let mut watcher = KeymapWatcher {
            session,
            seat,
            keyboard: None,
            keyboard_version: version,
            seat_name: None,
            capabilities: wl_seat::Capability::default(),
            repeat: None,
            options,
            setup_deadline: deadline,
            closed: false,
            failed: false,
        };
        watcher.wait_for_keyboard(deadline)?;
        let id = watcher.session.new_object::<WlKeyboard>(version)?;
        let get_keyboard = wl_seat::Request::GetKeyboard { id };
        watcher.session.send(seat, get_keyboard)?;
        watcher.keyboard = Some(id.id());
        // Sent now, not at the next read: an event loop that waits for the
        // fd to be readable before its first poll_keymap would wait for a
        // keymap the server was never asked for.
        watcher.session.flush_by(deadline)?;
        Ok(watcher)
    }

    /// The seat's name, once the compositor has sent it.
    pub fn seat_name(&self) -> Option<&str> {
        self.seat_name.as_deref()
    }

    /// The session, e.g. to bind more globals.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Ends watching and hands back the session, e.g. to bind the broker on
    /// the same connection ([`crate::Broker::new`]). The keyboard stays
    /// bound; its later events are for the new owner to drop.
    pub fn into_session(self) -> Session {
        self.session
    }

    /// The first keymap, waiting until the deadline of the call that set
    /// the keyboard up ([`KeymapWatcher::connect`] or
    /// [`KeymapWatcher::new`]): [`FetchOptions::timeout`] bounds the setup
    /// and this wait together. The server going away first is
    /// [`SessionError::Closed`].
    pub fn first_keymap(&mut self) -> Result<ReceivedKeymap, FetchError> {
        match self.next_keymap_by(Some(self.setup_deadline))? {
            Some(keymap) => Ok(keymap),
            None => Err(FetchError::Session(SessionError::Closed)),
        }
    }

    /// The next keymap, waiting up to `timeout` (forever with `None`).
    /// `Ok(None)` means the server went away; running out of time is
    /// [`FetchError::NoKeymap`].
    pub fn next_keymap(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<ReceivedKeymap>, FetchError> {
        self.next_keymap_by(timeout.map(Deadline::after))
    }

    /// The next keymap, waiting until `deadline` (forever with `None`).
    pub fn next_keymap_by(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<Option<ReceivedKeymap>, FetchError> {
        loop {
            if let Some(pending) = self.pump(true) {
                // Events already queued behind it (a repeat_info) belong to it.
                self.pump(false);
                self.collect_repeat_info(deadline)?;
                return self.build(pending).map(Some);
            }
            if self.closed {
                return Ok(None);
            }
            match self.session.read_events(deadline.map(Deadline::at)) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(FetchError::NoKeymap {
                        waited: deadline.map(Deadline::timeout).unwrap_or_default(),
                    })
                }
                Err(SessionError::Closed) => self.closed = true,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next keymap if one has arrived, without blocking: for an event
    /// loop that watches this watcher's fd ([`AsFd`]) for readability.
    ///
    /// It first sends queued requests as far as the socket takes them
    /// (the setup has sent its own), then takes a keymap already
    /// queued, else reads until one arrives or the socket is empty
    /// ([`Session::dispatch_pending`] until it reads nothing).
    /// `Ok(Some(keymap))`: call again, more may be there. `Ok(None)`: the
    /// socket is drained, so even an edge-triggered loop (tokio's
    /// `AsyncFd`) may wait for readiness again. The server going away is
    /// [`SessionError::Closed`] once the keymaps it sent are taken.
    ///
    /// Unlike [`KeymapWatcher::next_keymap`] it does no round trip for a
    /// `repeat_info` sent after the keymap: the keymap carries the repeat
    /// settings received so far. With [`Session::has_pending_output`] still
    /// true after a call, wait for the fd to be writable too.
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    /// use waypass_client::{FetchOptions, KeymapWatcher};
    ///
    /// let mut watcher = KeymapWatcher::connect(None, FetchOptions::default())?;
    /// loop {
    ///     while let Some(keymap) = watcher.poll_keymap()? {
    ///         println!("{:?}", keymap.layouts());
    ///     }
    ///     let mut fds = [PollFd::new(watcher.as_fd(), PollFlags::POLLIN)];
    ///     poll(&mut fds, PollTimeout::NONE).expect("poll");
    /// }
    /// # Ok::<(), waypass_client::FetchError>(())
    /// ```
    pub fn poll_keymap(&mut self) -> Result<Option<ReceivedKeymap>, FetchError> {
        self.session.flush_nonblocking()?;
        loop {
            if let Some(pending) = self.pump(true) {
                // Events already queued behind it (a repeat_info) belong to it.
                self.pump(false);
                return self.build(pending).map(Some);
            }
            if self.session.dispatch_pending()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Waits for the keyboard bit in `wl_seat.capabilities`.
    fn wait_for_keyboard(&mut self, deadline: Deadline) -> Result<(), FetchError> {
        loop {
            self.pump(false);
            if self.capabilities.contains(wl_seat::Capability::KEYBOARD) {
                return Ok(());
            }
            if !self.session.read_events(Some(deadline.at()))? {
                return Err(FetchError::NoKeyboard {
                    seat: self.seat_name.clone(),
                    waited: deadline.timeout(),
                });
            }
        }
    }

    /// With the keymap first at v4+ and no repeat_info yet, one round trip
    /// (within `deadline`, if any) collects a repeat_info sent right behind
    /// it.
    fn collect_repeat_info(&mut self, deadline: Option<Deadline>) -> Result<(), FetchError> {
        if self.keyboard_version < 4 || self.repeat.is_some() || self.closed {
            return Ok(());
        }
        let done = match deadline {
            Some(deadline) => self.session.roundtrip_by(deadline),
            None => self.session.roundtrip(),
        };
        match done {
            Ok(()) => {}
            // The keymap is here; report it, and end at the next call.
            Err(SessionError::Closed) => self.closed = true,
            // The keymap is here and the time is up: report it without
            // repeat settings rather than lose it.
            Err(SessionError::Timeout { .. }) => {
                debug!("no round trip for repeat_info before the deadline")
            }
            Err(e) => return Err(e.into()),
        }
        self.pump(false);
        Ok(())
    }

    /// Handles queued events in order up to the next `keymap`, which is
    /// taken and returned if `take_keymap`, else left queued.
    fn pump(&mut self, take_keymap: bool) -> Option<PendingKeymap> {
        while let Some(ev) = self.session.peek_event() {
            let is_keymap = self.keyboard.is_some_and(|k| ev.is_from(k)) && ev.name() == "keymap";
            if is_keymap && !take_keymap {
                return None;
            }
            let ev = self.session.pop_event()?;
            if let Some(pending) = self.handle(ev) {
                return Some(pending);
            }
        }
        None
    }

    /// Takes in a seat or keyboard event; a keymap is returned, not kept.
    fn handle(&mut self, mut ev: Event) -> Option<PendingKeymap> {
        if ev.is_from(self.seat) {
            match ev.decode::<WlSeat>() {
                Ok(wl_seat::Event::Capabilities { capabilities }) => {
                    self.capabilities = capabilities
                }
                Ok(wl_seat::Event::Name { name }) => {
                    self.seat_name = Some(name.to_string_lossy().into_owned())
                }
                Ok(wl_seat::Event::__Unused(never, _)) => match never {},
                Err(e) => debug!("{e}"),
            }
        } else if self.keyboard.is_some_and(|k| ev.is_from(k)) {
            match ev.decode::<WlKeyboard>() {
                Ok(wl_keyboard::Event::Keymap { format, fd, size }) => {
                    let format = u32::from(format);
                    return Some(PendingKeymap { format, fd, size });
                }
                Ok(wl_keyboard::Event::RepeatInfo { rate, delay }) => {
                    self.repeat = Some(RepeatInfo { rate, delay })
                }
                Ok(_) => {} // focus and keys: a keymap reader has no surface
                Err(e) => debug!("{e}"),
            }
        } else {
            log::trace!("ignoring {}.{}", ev.interface.name, ev.name());
        }
        None
    }

    fn build(&self, pending: PendingKeymap) -> Result<ReceivedKeymap, FetchError> {
        let origin = KeymapOrigin {
            seat: self.seat_name.clone(),
            repeat: self.repeat,
        };
        ReceivedKeymap::from_fd(
            pending.fd,
            pending.format,
            u64::from(pending.size),
            origin,
            self.options.parse,
        )
    }
}

impl AsFd for KeymapWatcher {
    /// The connection's socket, to watch for readability; then
    /// [`KeymapWatcher::poll_keymap`].
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.session.as_fd()
    }
}

impl Iterator for KeymapWatcher {
    type Item = Result<ReceivedKeymap, FetchError>;

    /// Waits without limit for the next keymap. A bad keymap (size, format,
    /// parse) is yielded as an error and watching goes on; a session error
    /// is yielded and ends the iteration, as does the server going away.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_keymap(None) {
            Ok(Some(keymap)) => Some(Ok(keymap)),
            Ok(None) => None,
            Err(e) => {
                self.failed = matches!(e, FetchError::Session(_));
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
