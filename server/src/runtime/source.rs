//! The calloop event source of one client: its socket, level-triggered,
//! read always, written only while output waits.
//!
//! What it is: the registration of a client's socket with the event loop.
//! What it is not: the client ([`crate::state::Client`], owned by the
//! core's table) or what happens on a wakeup ([`crate::runtime::core`]).
//!
//! # Implementation notes
//!
//! - **The socket is shared, not duplicated.** The client's connection
//!   owns the socket in an `Arc`; the source holds the second handle
//!   (`Connection::shared_stream`), so the fd stays open, and registered,
//!   until both are dropped, and costs no extra fd (a `dup` per client
//!   would halve how many clients fit under `RLIMIT_NOFILE`).
//! - **Why a wrapper around `Generic`.** calloop's `Generic` only lets its
//!   owner change its `interest`. [`ClientSource`] owns it: after the
//!   callback it applies the interest the callback's [`Next`] asks for and
//!   returns `PostAction::Reregister` only when it changed; code outside
//!   the callback reaches it through the `calloop::Dispatcher` the server
//!   keeps ([`ClientSource::set_interest`], then `LoopHandle::update`).

use std::io;

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use calloop::generic::Generic;
use calloop::{EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory};

use crate::runtime::core::Next;

/// The event source of one client: its socket, level-triggered.
#[derive(Debug)]
pub struct ClientSource {
    inner: Generic<Arc<UnixStream>>,
}

impl ClientSource {
    /// Watches `socket` for reading.
    pub fn new(socket: Arc<UnixStream>) -> Self {
        ClientSource {
            inner: Generic::new(socket, Interest::READ, Mode::Level),
        }
    }

    /// Sets whether to also wait for writability. Returns whether this
    /// changed the registration, in which case the caller must call
    /// `LoopHandle::update` for the source's token.
    pub fn set_interest(&mut self, writable: bool) -> bool {
        let changed = self.inner.interest.writable != writable;
        self.inner.interest = Interest {
            readable: true,
            writable,
        };
        changed
    }
}

impl EventSource for ClientSource {
    type Event = Readiness;
    type Metadata = ();
    type Ret = Next;
    type Error = io::Error;

    fn process_events<C>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: C,
    ) -> Result<PostAction, io::Error>
    where
        C: FnMut(Readiness, &mut ()) -> Next,
    {
        let mut next = None;
        self.inner
            .process_events(readiness, token, |readiness, _socket| {
                next = Some(callback(readiness, &mut ()));
                Ok(PostAction::Continue)
            })?;
        Ok(match next {
            // Not our token: nothing happened.
            None => PostAction::Continue,
            Some(Next::Close) => PostAction::Remove,
            Some(Next::Watch { writable }) if self.set_interest(writable) => PostAction::Reregister,
            Some(Next::Watch { .. }) => PostAction::Continue,
            // Read only, for its hang-up.
            Some(Next::CutOff) if self.set_interest(false) => PostAction::Reregister,
            Some(Next::CutOff) => PostAction::Continue,
        })
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.inner.unregister(poll)
    }
}
