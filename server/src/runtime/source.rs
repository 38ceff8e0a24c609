//! The calloop event source of one client: its socket, level-triggered.
//!
//! What it is: the registration of a [`Client`] with the event loop, and
//! the one place that reaches into calloop's `Generic` for it. What it is
//! not: per-client state ([`crate::state`]) or what happens on a wakeup
//! ([`crate::runtime::wakeup`]).
//!
//! # Implementation notes
//!
//! - **Why a wrapper around `Generic`.** The socket is watched by a calloop
//!   [`Generic`] source, registered `READ` and switched to `READ | WRITE`
//!   only while a flush returned `WouldBlock`. calloop's `Generic` owns its
//!   fd and only lets the callback see it through `NoIoDrop`, and its
//!   `interest` can only be changed by whoever owns the source. So the
//!   [`Client`] itself (which owns the socket through its `Connection`) is
//!   the `Generic`'s file, and [`ClientSource`] owns that `Generic`: after
//!   the callback it applies the interest the callback asked for and returns
//!   `PostAction::Reregister` only when it changed. Code outside the
//!   callback (a keymap reload) reaches a client through the
//!   `calloop::Dispatcher` kept in the server's client table and calls
//!   [`ClientSource::client_mut`] / [`ClientSource::set_interest`].
//!   This costs no extra fd per client: a `dup` of each socket for the
//!   watcher would halve how many clients fit under `RLIMIT_NOFILE`.
//! - **Why `client_mut` is an `unsafe fn`.** A `&mut Client` lets its holder
//!   replace the whole client, and with it the registered socket, which is
//!   exactly what `Generic::get_mut` forbids. Making `Client::conn` private
//!   would not close that hole (a `Client` can be built and swapped in), so
//!   the contract stays with the caller, spelled out in `# Safety`, and
//!   each call site says why it holds.

use std::io;

use calloop::generic::Generic;
use calloop::{EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory};

use crate::state::Client;

/// What a client's callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep watching: readable only (`false`) or also writable (`true`).
    Watch {
        /// Whether output is waiting for the socket to drain.
        writable: bool,
    },
    /// Remove the source: the client is gone.
    Close,
}

/// The event source of one client: its socket, level-triggered.
#[derive(Debug)]
pub struct ClientSource {
    inner: Generic<Client>,
}

impl ClientSource {
    /// Watches `client` for reading.
    pub fn new(client: Client) -> Self {
        ClientSource {
            inner: Generic::new(client, Interest::READ, Mode::Level),
        }
    }

    /// The client, for code outside its own callback.
    ///
    /// # Safety
    ///
    /// The caller must not replace or move out of the returned client (no
    /// `*client = ...`, `mem::replace`, `mem::swap` or `mem::take` on it or on
    /// its connection): its socket is registered with the event loop by
    /// fd, and a replaced socket would leave the old fd registered, to be
    /// closed under the poller, or a new one never watched. Calling methods
    /// on it and changing its other fields is fine. This is the contract of
    /// calloop's `Generic::get_mut`, which this forwards.
    pub unsafe fn client_mut(&mut self) -> &mut Client {
        // SAFETY: our caller takes on `get_mut`'s contract (see above).
        unsafe { self.inner.get_mut() }
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
    type Metadata = Client;
    type Ret = Next;
    type Error = io::Error;

    fn process_events<C>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: C,
    ) -> Result<PostAction, io::Error>
    where
        C: FnMut(Readiness, &mut Client) -> Next,
    {
        let mut next = None;
        self.inner
            .process_events(readiness, token, |readiness, client| {
                // SAFETY: `get_mut`'s contract (see `client_mut`): the callback
                // is the server's `client_ready`, which calls methods on the
                // client and never replaces it or its connection.
                let client = unsafe { client.get_mut() };
                next = Some(callback(readiness, client));
                Ok(PostAction::Continue)
            })?;
        Ok(match next {
            // Not our token: nothing happened.
            None => PostAction::Continue,
            Some(Next::Close) => PostAction::Remove,
            Some(Next::Watch { writable }) if self.set_interest(writable) => PostAction::Reregister,
            Some(Next::Watch { .. }) => PostAction::Continue,
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
