//! The server's state on the event loop: the client table, and what
//! happens when a client's socket is ready, when a client must go, and when
//! the keymap is reloaded.
//!
//! This module is the socket side: the client table, a client's wakeup
//! ([`crate::runtime::wakeup`] does the one `recv`, dispatch and `flush`),
//! output for clients other than the one being served, and disconnects.
//! It does not decode requests ([`crate::proto::dispatch`]), accept
//! connections ([`crate::runtime::accept`]), handle signals
//! ([`crate::runtime::signals`]) or start children
//! ([`crate::runtime::spawn`]).
//!
//! # Implementation notes
//!
//! - **One wakeup, one `recvmsg`, one `sendmsg`.** A readable client gets
//!   exactly one [`Connection::recv`](waypass_protocol::Connection::recv),
//!   then every complete message is dispatched and its replies queued, then
//!   one `flush`. A `wl_display.sync` round trip therefore costs one wakeup,
//!   one `recvmsg` and one `sendmsg`. If the receive buffer filled up, the
//!   level-triggered source simply wakes us again.
//! - **Write interest only while blocked.** A flush that returns
//!   `WouldBlock` switches the source to `READ | WRITE`; the next flush that
//!   drains the queue switches it back. A client that never reads hits the
//!   connection's outgoing cap and is disconnected; no other client waits.
//! - **Protocol errors** are queued as `wl_display.error`, flushed once
//!   (best effort: the client may not be reading) and the client closed.
//!   Others carry on.
//! - **The client table** holds a `calloop::Dispatcher` per client, so code
//!   outside a client's own callback (a keymap reload, a brokered channel)
//!   can reach it; see [`crate::runtime::source`] for why the client lives inside its
//!   source.
//! - **Output for other clients.** A dispatch on one client can queue output
//!   for another: `waypass_broker_v1.connect` queues `established` to the
//!   requester and leaves the owner's `peer` as a [`Delivery`]. After each
//!   dispatch batch the deliveries are queued on their owners, and every
//!   owner that got one is flushed at once (its own source would not wake:
//!   it has nothing to read). The owner is never the client being
//!   dispatched (`self_connect` is refused), so its `Dispatcher` is free to
//!   borrow. An owner does not get more than `--max-pending-peers`
//!   channels it has not read (the broker answers `busy` to requesters
//!   instead), so a connect flood cannot cut a busy owner off; an owner
//!   that still cannot take the event (over its outgoing cap, or over
//!   [`MAX_FDS_IN_FLIGHT`](crate::config::MAX_FDS_IN_FLIGHT)) is
//!   disconnected like any client that does not read.
//! - **Fds in flight** are re-counted from the socket
//!   ([`Client::refresh_in_flight`]) at each wakeup of a client, before a
//!   channel is delivered to it and before a keymap reload; owners with a
//!   broker backlog are re-checked before each dispatch.
//! - **Leaving** releases the client's broker names, whether it hung up,
//!   broke the protocol or was cut off while another client was served.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;

use calloop::{Dispatcher, LoopHandle, LoopSignal, Readiness, RegistrationToken};
use log::{error, info, warn};
use waypass_protocol::{error_chain, Credentials, SharedBuffers, Tracer};

use crate::keymap::{Keymap, KeymapSource};
use crate::proto::broker::{self, Broker, Delivery};
use crate::proto::clipboard::{self, Clipboard};
use crate::proto::ctx::{Ctx, Shared, Stop};
use crate::proto::seat;
use crate::runtime::source::{ClientSource, Next};
use crate::runtime::spawn::Children;
use crate::runtime::wakeup::{flush, log_disconnect, post_stop, release, serve_input, Disconnect};
use crate::state::{Client, ClientKey};

/// A client as the table sees it: its source and registration.
struct ClientEntry {
    dispatcher: Dispatcher<'static, ClientSource, State>,
    token: RegistrationToken,
}

/// Everything the event loop's callbacks share.
pub struct State {
    /// What request handlers read: keymap, settings, serials.
    pub shared: Shared,
    /// The broker's name table.
    pub broker: Broker,
    /// The selections and who offers them.
    pub clipboard: Clipboard,
    /// The receive buffer and output chunks lent to the client being
    /// served (see `waypass_protocol::SharedBuffers`).
    buffers: SharedBuffers,
    /// The `--spawn` children still running.
    pub children: Children,
    /// Where the keymap comes from, for reloads.
    keymap_source: KeymapSource,
    clients: HashMap<ClientKey, ClientEntry>,
    next_key: u64,
    tracer: Tracer,
    handle: LoopHandle<'static, State>,
    stop: LoopSignal,
    /// The listening socket's source, while it is registered.
    pub listener_token: Option<RegistrationToken>,
}

impl State {
    /// A server with no clients yet.
    pub fn new(
        shared: Shared,
        broker: Broker,
        keymap_source: KeymapSource,
        tracer: Tracer,
        handle: LoopHandle<'static, State>,
        stop: LoopSignal,
    ) -> State {
        State {
            shared,
            broker,
            clipboard: Clipboard::default(),
            buffers: SharedBuffers::default(),
            children: Children::default(),
            keymap_source,
            clients: HashMap::new(),
            next_key: 0,
            tracer,
            handle,
            stop,
            listener_token: None,
        }
    }

    /// The loop handle, for sources that need to (re)arm others.
    pub fn handle(&self) -> &LoopHandle<'static, State> {
        &self.handle
    }

    /// Takes in a newly accepted connection.
    pub fn add_client(&mut self, stream: UnixStream) {
        let key = self.new_key();
        match Client::new(key, stream, self.tracer) {
            Ok(client) => self.insert(client),
            Err(e) => warn!("cannot set up a new client: {e}"),
        }
    }

    /// Takes in the server's end of a spawned child's socketpair, with the
    /// child's credentials (`SO_PEERCRED` would name the server).
    pub fn add_spawned_client(
        &mut self,
        stream: UnixStream,
        creds: Credentials,
    ) -> std::io::Result<()> {
        let key = self.new_key();
        let client = Client::with_creds(key, stream, self.tracer, Some(creds))?;
        self.insert(client);
        Ok(())
    }

    fn new_key(&mut self) -> ClientKey {
        let key = ClientKey(self.next_key);
        self.next_key += 1;
        key
    }

    fn insert(&mut self, client: Client) {
        let (key, who) = (client.key, client.who());
        let dispatcher = Dispatcher::new(ClientSource::new(client), |readiness, client, state| {
            State::client_ready(state, readiness, client)
        });
        match self.handle.register_dispatcher(dispatcher.clone()) {
            Ok(token) => {
                info!("client connected ({who})");
                self.clients.insert(key, ClientEntry { dispatcher, token });
            }
            // The client is dropped, which closes its socket.
            Err(e) => warn!("cannot watch new client ({who}): {e}"),
        }
    }

    /// A client's socket is ready: one recv, dispatch all, hand brokered
    /// channels to their owners, one flush.
    fn client_ready(&mut self, readiness: Readiness, client: &mut Client) -> Next {
        // The wakeup receives into and encodes into the server's own
        // buffers; the client keeps only what it still needs afterwards.
        client.conn.borrow_buffers(&mut self.buffers);
        let next = self.serve_ready(readiness, client);
        client.conn.return_buffers(&mut self.buffers);
        next
    }

    /// [`State::client_ready`]'s work, with the buffers lent.
    fn serve_ready(&mut self, readiness: Readiness, client: &mut Client) -> Next {
        if readiness.readable || readiness.error {
            self.recheck_busy_owners(client.key);
            let served = serve_input(client, &self.shared, &mut self.broker, &mut self.clipboard);
            if let Err(gone) = served {
                // Channels it asked for in this batch die with it.
                drop(self.broker.take_deliveries());
                return self.close(client, gone);
            }
            self.deliver_channels(client.key);
        }
        if let Err(stop) = self.deliver_clipboard(Some(client)) {
            let gone = post_stop(client, &self.shared, stop);
            return self.close(client, gone);
        }
        match flush(client) {
            Ok(writable) => Next::Watch { writable },
            Err(e) => self.close(client, Disconnect::Send(e)),
        }
    }

    /// Owners with a broker backlog: the channels they have read since no
    /// longer count. `current` is the client being served (its
    /// `Dispatcher` is borrowed; [`serve_input`] checks it).
    fn recheck_busy_owners(&mut self, current: ClientKey) {
        for owner in self.broker.owners_with_backlog() {
            if owner == current {
                continue;
            }
            if let Some(unread) = self.with_client(owner, |client, _| client.refresh_in_flight()) {
                self.broker.owner_unread(owner, unread);
            }
        }
    }

    /// Forgets a client; its source is removed when the callback returns
    /// [`Next::Close`], which closes the socket and every queued fd.
    fn close(&mut self, client: &Client, reason: Disconnect) -> Next {
        self.clients.remove(&client.key);
        crate::runtime::trim::client_left(client.conn.heap_bytes() + client.objects.heap_bytes());
        release(client, &mut self.broker, &mut self.clipboard);
        log_disconnect(&client.who(), &reason);
        // Its selection, if it held one, is cleared for everyone else.
        let _ = self.deliver_clipboard(None);
        Next::Close
    }

    /// Queues the clipboard's pending output on its clients (`current`,
    /// the client being dispatched, directly; the others through the
    /// table) and flushes the others. A client that cannot take its output
    /// is disconnected, which may clear a selection and make more output:
    /// the loop runs until none is left. An error for `current` is
    /// returned for the caller to post.
    fn deliver_clipboard(&mut self, mut current: Option<&mut Client>) -> Result<(), Stop> {
        let mut touched: Vec<ClientKey> = Vec::new();
        let mut result = Ok(());
        loop {
            let deliveries = self.clipboard.take_deliveries();
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries {
                let key = delivery.client();
                if let Some(client) = current.as_deref_mut().filter(|c| c.key == key) {
                    let mut cx = Ctx::for_client(client, &self.shared);
                    if let Err(stop) = clipboard::deliver(&mut cx, &mut self.clipboard, delivery) {
                        result = Err(stop);
                        current = None; // it goes: nothing more for it
                    }
                    continue;
                }
                // A client that has gone drops its delivery (an fd closes).
                let Some(entry) = self.clients.get(&key) else {
                    continue;
                };
                let outcome = {
                    let mut source = entry.dispatcher.as_source_mut();
                    // SAFETY: `client_mut`'s contract: `clipboard::deliver`
                    // only queues on the client; it is not replaced.
                    let client = unsafe { source.client_mut() };
                    // A `send` fd is forwarded only to a client that reads:
                    // count what it has read since its last wakeup.
                    client.refresh_in_flight();
                    let mut cx = Ctx::for_client(client, &self.shared);
                    clipboard::deliver(&mut cx, &mut self.clipboard, delivery)
                };
                match outcome {
                    Ok(()) if !touched.contains(&key) => touched.push(key),
                    Ok(()) => {}
                    Err(stop) => self.stop_other(key, stop),
                }
            }
        }
        for key in touched {
            self.flush_other(key);
        }
        result
    }

    /// Runs `f` on client `key`, outside of that client's own callback.
    fn with_client<R>(
        &self,
        key: ClientKey,
        f: impl FnOnce(&mut Client, &Shared) -> R,
    ) -> Option<R> {
        let entry = self.clients.get(&key)?;
        let mut source = entry.dispatcher.as_source_mut();
        // SAFETY: `client_mut`'s contract: every `f` here (refresh, push
        // a keymap, deliver a channel, post an error) calls methods on the
        // client and changes its objects, never the client or its socket.
        let client = unsafe { source.client_mut() };
        Some(f(client, &self.shared))
    }

    /// Queues each pending [`Delivery`] on its owner, then flushes every
    /// owner that got one. `requester` is the client being dispatched.
    fn deliver_channels(&mut self, requester: ClientKey) {
        let mut touched: Vec<ClientKey> = Vec::new();
        for delivery in self.broker.take_deliveries() {
            let owner = delivery.owner;
            if owner == requester {
                // Refused as self_connect; its Dispatcher is borrowed now.
                error!("bug: a channel brokered to its own requester");
                continue;
            }
            match self.with_client(owner, |client, shared| deliver(client, shared, delivery)) {
                Some(Ok(line)) => {
                    info!("{line}");
                    if !touched.contains(&owner) {
                        touched.push(owner);
                    }
                }
                Some(Err(stop)) => self.stop_other(owner, stop),
                // The table is updated on every disconnect, so an owner
                // cannot be missing; the fd closes with the delivery.
                None => error!("bug: the owner of a brokered channel is gone"),
            }
        }
        for key in touched {
            self.flush_other(key);
        }
    }

    /// Flushes client `key` from outside its callback, updating its
    /// write interest or disconnecting it.
    fn flush_other(&mut self, key: ClientKey) {
        let Some(entry) = self.clients.get(&key) else {
            return;
        };
        let mut source = entry.dispatcher.as_source_mut();
        // SAFETY: `client_mut`'s contract: `flush` only writes its queue.
        match flush(unsafe { source.client_mut() }) {
            Ok(writable) => {
                if source.set_interest(writable) {
                    drop(source);
                    if let Err(e) = self.handle.update(&entry.token) {
                        warn!("cannot update client registration: {e}");
                    }
                }
            }
            Err(e) => {
                drop(source);
                self.drop_other(key, Disconnect::Send(e));
            }
        }
    }

    /// Posts what `stop` carries to client `key` and disconnects it, from
    /// outside its callback.
    fn stop_other(&mut self, key: ClientKey, stop: Stop) {
        if let Some(reason) =
            self.with_client(key, |client, shared| post_stop(client, shared, stop))
        {
            self.drop_other(key, reason);
        }
    }

    /// Disconnects client `key` from outside its callback.
    fn drop_other(&mut self, key: ClientKey, reason: Disconnect) {
        let Some(entry) = self.clients.remove(&key) else {
            return;
        };
        {
            let mut source = entry.dispatcher.as_source_mut();
            // SAFETY: `client_mut`'s contract: read only, until the
            // source is removed below.
            let client = unsafe { source.client_mut() };
            crate::runtime::trim::client_left(
                client.conn.heap_bytes() + client.objects.heap_bytes(),
            );
            log_disconnect(&client.who(), &reason);
            // What this clears for others is delivered by the caller's
            // `deliver_clipboard`.
            release(client, &mut self.broker, &mut self.clipboard);
        }
        // Dropping the source closes the socket and every queued fd.
        self.handle.remove(entry.token);
    }

    /// SIGHUP: recompiles the keymap from its source. On success every
    /// keyboard of every client gets the new keymap once, and the old
    /// sealed file goes as soon as no queue holds a dup of it.
    pub fn reload_keymap(&mut self) {
        let keymap = match Keymap::load(&self.keymap_source) {
            Ok(keymap) => keymap,
            Err(e) => {
                error!(
                    "reloading {} failed, keeping the old keymap: {}",
                    self.keymap_source,
                    error_chain(&e)
                );
                return;
            }
        };
        self.shared.keymap = keymap;
        let mut told = 0;
        let keys: Vec<ClientKey> = self.clients.keys().copied().collect();
        for key in keys {
            let push = |client: &mut Client, shared: &Shared| {
                client.refresh_in_flight();
                seat::push_keymap(client, shared)
            };
            match self.with_client(key, push) {
                Some(Ok(n)) => {
                    told += n;
                    self.flush_other(key);
                }
                Some(Err(stop)) => self.stop_other(key, stop),
                None => {}
            }
        }
        info!(
            "reloaded {}; sent it to {told} keyboards",
            self.keymap_source
        );
        // Clients cut off above may have held a selection.
        let _ = self.deliver_clipboard(None);
    }

    /// SIGCHLD: reaps exited children; with `--exit-with-children`, stops
    /// the loop once none is left.
    pub fn reap_children(&mut self) {
        if self.children.reap() {
            info!("every spawned child has exited: shutting down");
            self.request_stop();
        }
    }

    /// SIGINT / SIGTERM: leave the loop.
    pub fn request_stop(&mut self) {
        self.stop.stop();
    }

    /// Closes every client (at shutdown).
    pub fn close_all(&mut self) {
        match self.clients.len() {
            0 => {}
            1 => info!("closing 1 client"),
            n => info!("closing {n} clients"),
        }
        for (_, entry) in self.clients.drain() {
            self.handle.remove(entry.token);
        }
    }
}

/// Queues one brokered channel's `peer` event on its owner.
fn deliver(client: &mut Client, shared: &Shared, delivery: Delivery) -> Result<String, Stop> {
    client.refresh_in_flight();
    broker::deliver(&mut Ctx::for_client(client, shared), delivery)
}
