//! The non-blocking calls of [`Session`], for an event loop.
//!
//! The blocking calls wait inside `recvmsg` or `poll`. An event loop
//! (calloop, tokio, a hand-written `poll`) instead watches the session's
//! fd ([`AsFd`]) and, when it is readable, calls
//! [`Session::dispatch_pending`]: one non-blocking `recvmsg`, every
//! complete event queued, then [`Session::pop_event`] as usual. Requests
//! are queued by [`Session::send`] and sent by
//! [`Session::flush_nonblocking`], which the loop calls before it waits
//! (and again when the fd is writable, if it returned
//! [`Flush::WouldBlock`]). `client/examples/calloop_keymap.rs` and
//! `tokio_keymap.rs` follow keymaps this way.
//!
//! What it is not: a loop of its own, or a reader that waits. The
//! blocking calls (`roundtrip`, `next_event`, `read_events`) still work
//! on the same session, between wakeups.

use log::{debug, trace};
use waypass_protocol::{ConnectionError, Flush, Recv};

use super::Session;
use crate::error::SessionError;
#[cfg(doc)]
use std::os::fd::AsFd;

impl Session {
    /// Sends what it can of the queued requests without blocking.
    ///
    /// For an event loop: call it before waiting. [`Flush::WouldBlock`]
    /// means the socket is full: wait for it to become writable (as well
    /// as readable) and call it again. A server that stopped reading
    /// (EPIPE) counts as [`Flush::Done`]: what it sent before closing is
    /// still read, and the close shows up there.
    pub fn flush_nonblocking(&mut self) -> Result<Flush, SessionError> {
        if self.write_closed {
            return Ok(Flush::Done);
        }
        self.try_flush()
    }

    /// Whether requests are still queued, waiting for room in the socket.
    pub fn has_pending_output(&self) -> bool {
        !self.write_closed && self.conn.has_pending_output()
    }

    /// Reads what the socket holds, without blocking, and queues every
    /// complete event: the non-blocking counterpart of
    /// [`Session::read_events`], for an event loop that watches this
    /// session's fd ([`AsFd`]) for readability.
    ///
    /// One non-blocking `recvmsg`. Returns the number of bytes it read:
    /// `Ok(0)` means the socket had nothing (`EAGAIN`). An edge-triggered
    /// loop (tokio's `AsyncFd`, epoll with `EPOLLET`) calls it until it
    /// returns `Ok(0)` before waiting again; a level-triggered one
    /// (calloop's `Generic` with `Mode::Level`, `poll`) may call it once
    /// per wakeup. The server closing the connection is
    /// [`SessionError::Closed`], after every event it sent before is
    /// queued (or its `wl_display.error` returned). It never flushes:
    /// see [`Session::flush_nonblocking`].
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    ///
    /// let mut session = waypass_client::Session::connect(None)?;
    /// let _callback = session.sync()?;
    /// loop {
    ///     session.flush_nonblocking()?;
    ///     let mut fds = [PollFd::new(session.as_fd(), PollFlags::POLLIN)];
    ///     poll(&mut fds, PollTimeout::NONE).expect("poll");
    ///     while session.dispatch_pending()? > 0 {}
    ///     while let Some(event) = session.pop_event() {
    ///         println!("{}.{}", event.interface.name, event.name());
    ///     }
    /// }
    /// # Ok::<(), waypass_client::SessionError>(())
    /// ```
    pub fn dispatch_pending(&mut self) -> Result<usize, SessionError> {
        let read = match self.conn.recv() {
            Ok(Recv::Data(n)) => n,
            // EAGAIN: nothing there; the loop waits for readiness again.
            Ok(Recv::WouldBlock) => return Ok(0),
            Err(ConnectionError::Closed) => {
                debug!("server closed the connection");
                return Err(SessionError::Closed);
            }
            Err(e) => return Err(SessionError::Connection(e)),
        };
        trace!("received {read} bytes");
        self.decode_all()?;
        Ok(read)
    }

    /// The number of events queued, waiting to be taken.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use std::os::fd::BorrowedFd;

    use waypass_protocol::protocols::wayland::wl_callback::{self, WlCallback};
    use waypass_protocol::{Connection, TypedMessage};

    use super::*;

    /// A session on one end of a socket pair, a bare connection on the
    /// other standing in for the server.
    fn pair() -> (Session, Connection) {
        let (client, server) = UnixStream::pair().expect("socketpair");
        let session = Session::from_stream(client).expect("session");
        (session, Connection::new(server).expect("connection"))
    }

    #[test]
    fn an_empty_socket_reads_nothing_without_waiting() {
        let (mut session, _server) = pair();
        assert_eq!(session.dispatch_pending().expect("no error"), 0);
        assert_eq!(session.queued_len(), 0);
    }

    #[test]
    fn what_arrived_is_queued_then_the_close_is_reported() {
        let (mut session, mut server) = pair();
        let callback = session.sync().expect("sync");
        assert!(session.has_pending_output());
        assert_eq!(session.flush_nonblocking().expect("flush"), Flush::Done);
        assert!(!session.has_pending_output());

        for callback_data in [7, 8] {
            let done: wl_callback::Event<'_, BorrowedFd<'_>> =
                wl_callback::Event::Done { callback_data };
            done.with_args(|opcode, args| server.send(callback.raw(), opcode, done.desc(), args))
                .expect("queue");
        }
        server.flush().expect("flush");
        assert!(session.dispatch_pending().expect("read") > 0);
        // The first done destroys the callback: the second is dropped.
        assert_eq!(session.queued_len(), 1);
        let mut event = session.pop_event().expect("done");
        assert!(event.is_from(callback));
        let wl_callback::Event::Done { callback_data } =
            event.decode::<WlCallback>().expect("done");
        assert_eq!(callback_data, 7);
        assert_eq!(session.dispatch_pending().expect("drained"), 0);

        drop(server);
        assert!(matches!(
            session.dispatch_pending(),
            Err(SessionError::Closed)
        ));
    }
}
