//! Serving the pastes of our own selection: [`Clipboard::serve_file`]
//! (every paster at once, none able to hold up another),
//! [`Clipboard::serve`] (a callback per paste, one at a time) and
//! [`Clipboard::take_sends`] (the requests alone, for an event loop).
//!
//! What it is: the copier's side of a paste. The server forwards each
//! paster's `receive(mime, fd)` to us as `send(mime, fd)` on our source;
//! we write the data into that fd and close it. What it is not: the
//! writing itself (`clipboard::pastes`) or the bookkeeping of selections
//! (`clipboard`).
//!
//! # Implementation notes
//!
//! - A paster chooses the fd we write into, so it can hand us a pipe it
//!   never reads, a read-only file, or a thousand pipes. `serve_file`
//!   therefore writes without blocking, driven by one `poll` over the
//!   connection and every open paste, with the bounds of
//!   [`ServeOptions`]; an error on one paste ends that paste only.
//! - `serve` keeps the simple blocking callback for data that is not in
//!   a file; a paster that never reads holds it up, which its
//!   documentation says.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use log::{debug, warn};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::Flush;

use super::pastes::Pastes;
use super::{source, Clipboard, ClipboardError, Selection, Source};
use crate::deadline::Deadline;
use crate::error::SessionError;
use crate::event::Event;

/// At most this many pastes are written at once by
/// [`Clipboard::serve_file`] (the default of [`ServeOptions::max_pastes`]).
pub const MAX_PASTES: usize = 16;

/// A paste whose reader takes nothing for this long is dropped by
/// [`Clipboard::serve_file`] (the default of
/// [`ServeOptions::idle_timeout`]).
pub const PASTE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`Clipboard::serve`] and [`Clipboard::serve_file`] ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Another selection replaced ours (`cancelled`).
    Replaced,
    /// The time given ran out with our selection still set.
    TimedOut,
    /// [`ServeOptions::paste_once`]: one paste was served and our
    /// selection withdrawn.
    PastedOnce,
}

/// A paster's request, forwarded by the server: write the data as `mime`
/// into `fd`, then close it.
#[derive(Debug)]
pub struct SendRequest {
    /// Which of our selections it is for.
    pub selection: Selection,
    /// The MIME type asked for (one we offered, if the server checks).
    pub mime: String,
    /// The write end the paster gave: usually a pipe, but whatever the
    /// paster chose.
    pub fd: OwnedFd,
}

/// The bounds of [`Clipboard::serve_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Pastes written at once; one more drops the paste that has waited
    /// longest for its reader. Default [`MAX_PASTES`].
    pub max_pastes: usize,
    /// A paste whose reader takes nothing for this long is dropped (its
    /// fd closed). Default [`PASTE_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Serve the first paste only (later ones get their fd closed at
    /// once), then withdraw our selection, as `wl-copy --paste-once`.
    pub paste_once: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_pastes: MAX_PASTES,
            idle_timeout: PASTE_IDLE_TIMEOUT,
            paste_once: false,
        }
    }
}

impl Clipboard {
    /// Whether a selection of ours is still set (not yet replaced).
    pub fn is_serving(&self) -> bool {
        self.sources.iter().any(Option::is_some)
    }

    /// Takes the paste requests for our sources among the events already
    /// read, without blocking, and forgets the sources another selection
    /// replaced. For an event loop: after [`Clipboard::poll_changes`].
    pub fn take_sends(&mut self) -> Result<Vec<SendRequest>, ClipboardError> {
        let source_iface = self.flavor.tables()[2];
        let mut sends = Vec::new();
        for (slot, selection) in [Selection::Regular, Selection::Primary]
            .into_iter()
            .enumerate()
        {
            let Some(id) = self.sources[slot] else {
                continue;
            };
            let mine = |e: &Event| e.object == id && e.interface == source_iface;
            while let Some(mut ev) = self.session.take_event(mine) {
                match ev.decode_as::<Source>().map_err(SessionError::from)? {
                    source::Event::Cancelled if self.sources[slot].is_some() => {
                        self.session
                            .send_as::<Source>(id, source::Request::Destroy)?;
                        self.session.flush()?;
                        self.sources[slot] = None;
                    }
                    source::Event::Cancelled => {}
                    source::Event::Send { mime_type, fd } => sends.push(SendRequest {
                        selection,
                        mime: mime_type.to_string_lossy().into_owned(),
                        fd,
                    }),
                }
            }
        }
        Ok(sends)
    }

    /// Serves pastes of our sources with the contents of `data` (its
    /// whole length, from offset 0, read with `pread`: the file's own
    /// offset is left alone), every paste at once and none able to hold
    /// up another: a paster that does not read is dropped after
    /// [`ServeOptions::idle_timeout`], one that gives a bad fd at its
    /// first write, and at most [`ServeOptions::max_pastes`] are open.
    ///
    /// Ends when another selection replaced ours and every paste begun
    /// before has ended, or after the first paste with
    /// [`ServeOptions::paste_once`].
    ///
    /// ```no_run
    /// use std::fs::File;
    /// use waypass_client::{Clipboard, Selection, ServeOptions};
    ///
    /// let data = File::open("notes.txt")?;
    /// let mut clipboard = Clipboard::connect(None)?;
    /// clipboard.copy(Selection::Regular, &["text/plain"])?;
    /// clipboard.serve_file(&data, &ServeOptions::default())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve_file(
        &mut self,
        data: &File,
        options: &ServeOptions,
    ) -> Result<Served, ClipboardError> {
        let len = data.metadata().map_err(ClipboardError::Data)?.len();
        let mut pastes = Pastes::new(data, len, options.max_pastes, options.idle_timeout);
        let mut taken = 0u64;
        loop {
            let now = Instant::now();
            for send in self.take_sends()? {
                if options.paste_once && taken > 0 {
                    debug!("paste once: a later paste of {:?} gets nothing", send.mime);
                    continue; // its fd closes here: that paster reads EOF
                }
                taken += 1;
                pastes.add(send.mime, send.fd, now);
            }
            if options.paste_once && taken > 0 && pastes.is_empty() {
                self.withdraw()?;
                return Ok(Served::PastedOnce);
            }
            if !self.is_serving() && pastes.is_empty() {
                return Ok(Served::Replaced);
            }
            let full = matches!(self.session.flush_nonblocking()?, Flush::WouldBlock);
            self.wait_and_write(&mut pastes, full)?;
        }
    }

    /// One turn of [`Clipboard::serve_file`]: waits for the connection or
    /// a paste's fd (or the next paste's deadline), writes what the
    /// pastes take, drops the expired ones, and reads what the server
    /// sent.
    fn wait_and_write(
        &mut self,
        pastes: &mut Pastes<'_>,
        socket_full: bool,
    ) -> Result<(), ClipboardError> {
        let timeout = match pastes.next_deadline() {
            // Rounded up to the next millisecond: never a busy loop.
            Some(at) => PollTimeout::try_from(
                at.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
            )
            .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut flags = PollFlags::POLLIN;
        if socket_full {
            flags |= PollFlags::POLLOUT;
        }
        let mut ready = Vec::with_capacity(1 + pastes.len());
        {
            let mut fds = Vec::with_capacity(1 + pastes.len());
            fds.push(PollFd::new(self.session.as_fd(), flags));
            fds.extend(pastes.fds().map(|fd| PollFd::new(fd, PollFlags::POLLOUT)));
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                // A signal: go round again.
                Err(Errno::EINTR) => return Ok(()),
                Err(e) => return Err(ClipboardError::Poll(e.into())),
            }
            // POLLERR and POLLHUP count: the write then says what is wrong.
            ready.extend(
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty())),
            );
        }
        let now = Instant::now();
        pastes.write_ready(&ready[1..], now);
        pastes.expire(now);
        if ready[0] {
            while self.session.dispatch_pending()? > 0 {}
            self.absorb()?;
        }
        Ok(())
    }

    /// Serves pastes of our sources: for each `send(mime, fd)`, calls
    /// `write(mime, pipe)`, then closes the pipe. Ends when another
    /// selection replaces ours, or after `timeout` (`None`: never).
    ///
    /// `write` failing ends that paste only: a paster that closes its end
    /// early (a broken pipe) is its own business, other errors are logged,
    /// and serving goes on. Pastes are served one at a time, each until
    /// `write` returns: a paster that never reads holds up the others.
    /// For data in a file, [`Clipboard::serve_file`] has no such weakness.
    pub fn serve(
        &mut self,
        timeout: Option<Duration>,
        mut write: impl FnMut(&str, &mut File) -> io::Result<()>,
    ) -> Result<Served, ClipboardError> {
        let deadline = timeout.map(Deadline::after);
        loop {
            for send in self.take_sends()? {
                let mut pipe = File::from(send.fd);
                match write(&send.mime, &mut pipe) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                    Err(e) => warn!("a paste of {:?} failed: {e}", send.mime),
                }
                let _ = pipe.flush();
            }
            if !self.is_serving() {
                return Ok(Served::Replaced);
            }
            if !self.session.read_events(deadline.map(Deadline::at))? {
                return Ok(Served::TimedOut);
            }
            self.absorb()?;
        }
    }

    /// Destroys our sources: the selections they hold become empty.
    pub fn withdraw(&mut self) -> Result<(), ClipboardError> {
        for slot in &mut self.sources {
            if let Some(id) = slot.take() {
                self.session
                    .send_as::<Source>(id, source::Request::Destroy)?;
            }
        }
        self.session.flush()?;
        Ok(())
    }
}
