//! The server's state on the event loop: the client table, and what
//! happens when a client's socket is ready, when a client must go, and when
//! the keymap is reloaded.
//!
//! This module is the socket side: one `recv`, dispatch, one `flush`, and
//! disconnects. It does not decode requests ([`crate::dispatch`]), accept
//! connections ([`crate::accept`]) or handle signals ([`crate::signals`]).
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
//!   outside a client's own callback (a keymap reload) can reach it; see
//!   [`crate::client`] for why the client lives inside its source.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;

use calloop::{Dispatcher, LoopHandle, LoopSignal, Readiness, RegistrationToken};
use log::{debug, error, info, warn};
use waypass_protocol::{ConnectionError, Flush, Recv, Tracer};

use crate::client::{Client, ClientKey, ClientSource, Next};
use crate::dispatch::{self, Shared, Stop};
use crate::keymap::{Keymap, KeymapSource};
use crate::{describe, seat};

/// A client as the table sees it: its source and registration.
struct ClientEntry {
    dispatcher: Dispatcher<'static, ClientSource, State>,
    token: RegistrationToken,
}

/// Everything the event loop's callbacks share.
pub struct State {
    /// What request handlers read: keymap, settings, serials.
    pub shared: Shared,
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
        keymap_source: KeymapSource,
        tracer: Tracer,
        handle: LoopHandle<'static, State>,
        stop: LoopSignal,
    ) -> State {
        State {
            shared,
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
        let key = ClientKey(self.next_key);
        self.next_key += 1;
        let client = match Client::new(key, stream, self.tracer) {
            Ok(client) => client,
            Err(e) => {
                warn!("cannot set up a new client: {e}");
                return;
            }
        };
        let who = client.who();
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

    /// A client's socket is ready: one recv, dispatch all, one flush.
    fn client_ready(&mut self, readiness: Readiness, client: &mut Client) -> Next {
        if readiness.readable || readiness.error {
            match client.conn.recv() {
                Ok(Recv::Data(_)) => {}
                // Spurious wakeup: nothing to read, maybe something to flush.
                Ok(Recv::WouldBlock) => {}
                Err(e) => return self.close(client, Reason::Recv(e)),
            }
            if let Err(stop) = dispatch::dispatch_pending(client, &self.shared) {
                return self.stop_client(client, stop);
            }
        }
        match flush(client) {
            Ok(writable) => Next::Watch { writable },
            Err(e) => self.close(client, Reason::Send(e)),
        }
    }

    /// Posts the error a [`Stop`] carries, if any, and closes the client.
    fn stop_client(&mut self, client: &mut Client, stop: Stop) -> Next {
        match stop {
            Stop::Protocol(err) => {
                if dispatch::post_error(client, &self.shared, &err).is_ok() {
                    // Best effort: a client that does not read loses it.
                    let _ = client.conn.flush();
                }
                self.close(client, Reason::Protocol(err))
            }
            Stop::Server(err) => {
                error!("cannot serve client ({}): {}", client.who(), err.message);
                if dispatch::post_error(client, &self.shared, &err).is_ok() {
                    let _ = client.conn.flush();
                }
                self.close(client, Reason::Server)
            }
            Stop::Queue(e) => self.close(client, Reason::Queue(e)),
        }
    }

    /// Forgets a client; its source is removed when the callback returns
    /// [`Next::Close`], which closes the socket and every queued fd.
    fn close(&mut self, client: &Client, reason: Reason) -> Next {
        self.clients.remove(&client.key);
        log_disconnect(&client.who(), &reason);
        Next::Close
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
                    describe(&e)
                );
                return;
            }
        };
        self.shared.keymap = keymap;
        let mut told = 0;
        let mut gone = Vec::new();
        for (key, entry) in &self.clients {
            let mut source = entry.dispatcher.as_source_mut();
            let client = source.client_mut();
            let result = match seat::push_keymap(client, &self.shared) {
                Ok(n) => {
                    told += n;
                    flush(client).map_err(Reason::Send)
                }
                Err(Stop::Queue(e)) => Err(Reason::Queue(e)),
                Err(Stop::Protocol(e) | Stop::Server(e)) => {
                    error!(
                        "cannot send the new keymap ({}): {}",
                        client.who(),
                        e.message
                    );
                    Err(Reason::Server)
                }
            };
            match result {
                Ok(writable) => {
                    if source.set_interest(writable) {
                        drop(source);
                        if let Err(e) = self.handle.update(&entry.token) {
                            warn!("cannot update client registration: {e}");
                        }
                    }
                }
                Err(reason) => {
                    log_disconnect(&client.who(), &reason);
                    gone.push(*key);
                }
            }
        }
        for key in gone {
            if let Some(entry) = self.clients.remove(&key) {
                self.handle.remove(entry.token);
            }
        }
        info!(
            "reloaded {}; sent it to {told} keyboards",
            self.keymap_source
        );
    }

    /// SIGINT / SIGTERM: leave the loop.
    pub fn request_stop(&mut self) {
        self.stop.stop();
    }

    /// Closes every client (at shutdown).
    pub fn close_all(&mut self) {
        if !self.clients.is_empty() {
            info!("closing {} clients", self.clients.len());
        }
        for (_, entry) in self.clients.drain() {
            self.handle.remove(entry.token);
        }
    }
}

/// Why a client went away.
enum Reason {
    Recv(ConnectionError),
    Send(ConnectionError),
    Queue(ConnectionError),
    Protocol(dispatch::ProtocolError),
    Server,
}

fn log_disconnect(who: &str, reason: &Reason) {
    match reason {
        // A hang-up is the normal way to leave.
        Reason::Recv(ConnectionError::Closed) | Reason::Send(ConnectionError::Closed) => {
            info!("client disconnected ({who})")
        }
        Reason::Recv(e) | Reason::Send(e) => {
            warn!("client disconnected ({who}): {}", describe(e))
        }
        Reason::Queue(e) => {
            warn!(
                "disconnecting client ({who}): cannot queue output: {}",
                describe(e)
            )
        }
        Reason::Protocol(err) => warn!("disconnecting client ({who}): protocol {err}"),
        Reason::Server => warn!("disconnecting client ({who}): the server could not serve it"),
    }
}

/// One flush. `Ok(true)` means output is left and the source must also
/// wait for writability.
fn flush(client: &mut Client) -> Result<bool, ConnectionError> {
    match client.conn.flush()? {
        Flush::Done => Ok(false),
        Flush::WouldBlock => {
            debug!("client ({}) is not reading; waiting to write", client.who());
            Ok(true)
        }
    }
}
