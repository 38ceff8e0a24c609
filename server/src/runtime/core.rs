//! The server without its event loop: the client table and what happens
//! to it on each event: a client admitted, a client's wakeup (one `recv`,
//! every complete message dispatched, one flush), the end of a loop pass
//! (selections announced, other clients flushed, condemned ones cut off),
//! a client leaving, a keymap reload.
//!
//! What it is: the code the event loop ([`crate::runtime::server`]) and the
//! fuzz harness (`crate::fuzzing`) share, so that the harness drives
//! exactly what the server runs. What it is not: calloop. The loop owns
//! the registrations and applies what [`Core`] says about each client
//! (watch for writability, stop watching, check a cut-off client later).
//!
//! # Implementation notes
//!
//! - **One wakeup, one `recvmsg`, one `sendmsg`.** A readable client gets
//!   exactly one [`Connection::recv`](waypass_protocol::Connection::recv),
//!   then every complete message is dispatched and its replies queued,
//!   then one `flush`. A `wl_display.sync` round trip costs one wakeup, one
//!   `recvmsg` and one `sendmsg`, and allocates nothing: the client borrows
//!   the server's buffers ([`SharedBuffers`]) for the wakeup.
//! - **Caps from the ledger.** Before a wakeup the client's caps on queued
//!   output and on fds left waiting are set from its share
//!   ([`crate::ledger`]); after it, what it holds is recorded.
//! - **Other clients.** Handlers queue output for other clients directly
//!   (through the table); those clients are flushed once, at the end of
//!   the loop pass ([`Core::end_of_pass`]), with the round of selection
//!   announcements. A client that could not take what others caused is
//!   condemned by the handler and cut off there, never the actor.
//! - **Leaving with fds in flight.** The kernel charges every fd sent and
//!   not read to the server's user until the receiver reads it or closes
//!   its socket, even after we close ours. A client cut off with fds
//!   still in flight therefore stays in the table as *cut off*: its
//!   objects, names and clipboard are released, its socket is shut down
//!   for writing (it reads EOF after what is queued), and it keeps its
//!   ledger charge until it hangs up or has read them
//!   ([`Core::check_cut_off`], which the loop calls with a back-off).

use std::fmt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use log::{debug, error, info, warn};
use waypass_protocol::{error_chain, ConnectionError, Credentials, Flush, Recv, Tracer};

use waypass_protocol::__private::SharedBuffers;
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::wire::MAX_MESSAGE_SIZE;
use waypass_protocol::DISPLAY_ID;

use crate::keymap::Keymap;
use crate::ledger::{Account, Ledger, OverBudget, Resource};
use crate::persist::JobId;
use crate::proto::broker::Broker;
use crate::proto::clipboard::{self, Clipboard};
use crate::proto::ctx::{post_error, with_client, Ctx, ProtocolError, Shared, Stop, World};
use crate::proto::dispatch::dispatch_pending;
use crate::proto::extension::Extensions;
use crate::proto::seat;
use crate::runtime::trim;
use crate::state::{Client, ClientKey, Clients};

/// Loop passes in a row whose round of announcements may wait for a burst
/// of selection changes that is still arriving (a client that changed the
/// selection and filled its 4 KiB read): a burst of any length costs each
/// device at most one announcement per this many passes, plus one.
pub const MAX_DEFERRED_ROUNDS: u32 = 16;

/// Why a client went away.
#[derive(Debug)]
pub enum Disconnect {
    /// Receiving failed, or the client hung up ([`ConnectionError::Closed`]).
    Recv(ConnectionError),
    /// Sending failed, or the client hung up.
    Send(ConnectionError),
    /// Its output could not be queued (over its cap: it does not read).
    Queue(ConnectionError),
    /// It broke the protocol, or went over a limit; this error was posted.
    Protocol(ProtocolError),
    /// The server could not serve it (an error was posted and logged).
    Server,
}

// `Display` already prints the cause's chain (a disconnect is logged as one
// line), so `source()` stays `None`: nothing is printed twice.
impl std::error::Error for Disconnect {}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A hang-up is the normal way to leave.
            Disconnect::Recv(ConnectionError::Closed)
            | Disconnect::Send(ConnectionError::Closed) => f.write_str("hung up"),
            Disconnect::Recv(e) | Disconnect::Send(e) => f.write_str(&error_chain(e)),
            Disconnect::Queue(e) => write!(f, "cannot queue output: {}", error_chain(e)),
            Disconnect::Protocol(err) => write!(f, "protocol {err}"),
            Disconnect::Server => f.write_str("the server could not serve it"),
        }
    }
}

/// What the loop should do with a client after the core handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep watching: readable only (`false`) or also writable (`true`).
    Watch {
        /// Whether output is waiting for the socket to drain.
        writable: bool,
    },
    /// Cut off with fds in flight: keep watching it for reading (its
    /// hang-up), and call [`Core::check_cut_off`] later.
    CutOff,
    /// Stop watching: the client is gone from the table.
    Close,
}

/// Why a new connection was refused.
#[derive(Debug)]
pub enum Refused {
    /// The ledger has no room: too many connections (for its uid).
    Budget(OverBudget),
    /// Setting the stream up failed.
    Io(std::io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Budget(over) => write!(f, "{over}"),
            Refused::Io(e) => write!(f, "cannot set up the connection: {e}"),
        }
    }
}

/// The server's state without the loop (see the module notes).
#[derive(Debug)]
pub struct Core {
    /// What request handlers read: keymap, settings, limits, serials.
    pub shared: Shared,
    /// The broker's name table.
    pub broker: Broker,
    /// The selections and who offers them.
    pub clipboard: Clipboard,
    /// The globals the embedding program added.
    pub extensions: Extensions,
    /// What every client holds.
    pub ledger: Ledger,
    /// Every client.
    pub clients: Clients,
    buffers: SharedBuffers,
    tracer: Tracer,
    condemned: Vec<(ClientKey, Stop)>,
    /// Why each client left, for a harness that asks
    /// ([`Core::record_departures`]).
    departures: Option<Vec<(ClientKey, Disconnect)>>,
    /// This pass, a client changed the selection and filled its read.
    burst: bool,
    /// Passes in a row whose announcements waited for a burst.
    deferred_rounds: u32,
}

impl Core {
    /// A server with no clients yet.
    pub fn new(shared: Shared, ledger: Ledger, tracer: Tracer, extensions: Extensions) -> Core {
        Core {
            shared,
            broker: Broker::default(),
            clipboard: Clipboard::default(),
            extensions,
            ledger,
            clients: Clients::default(),
            buffers: SharedBuffers::default(),
            tracer,
            condemned: Vec::new(),
            departures: None,
            burst: false,
            deferred_rounds: 0,
        }
    }

    /// Keeps why each client leaves, for [`Core::take_departures`] (the
    /// fuzz harness reports it).
    #[cfg(feature = "fuzzing")]
    pub fn record_departures(&mut self) {
        self.departures = Some(Vec::new());
    }

    /// Why the clients that left since the last call left.
    #[cfg(feature = "fuzzing")]
    pub fn take_departures(&mut self) -> Vec<(ClientKey, Disconnect)> {
        self.departures
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Takes in a connected stream whose peer is `creds`, if its uid has
    /// room for one more connection. A refused peer is told why with
    /// `wl_display.error` (best effort) and closed.
    pub fn admit(
        &mut self,
        stream: UnixStream,
        creds: Option<Credentials>,
    ) -> Result<(ClientKey, Arc<UnixStream>), Refused> {
        let key = self.clients.next_key();
        let mut client = Client::new(key, stream, self.tracer, creds, Account::default())
            .map_err(Refused::Io)?;
        client.account = match self.ledger.open(client.uid()) {
            Ok(account) => account,
            Err(over) => {
                warn!(
                    "refused a connection ({}): {over}; {}",
                    client.who(),
                    self.ledger.summary()
                );
                let error =
                    ProtocolError::new(DISPLAY_ID, wl_display::error::NO_MEMORY, over.to_string());
                let world = World {
                    clients: &mut self.clients,
                    ledger: &mut self.ledger,
                    condemned: &mut self.condemned,
                };
                let mut cx = Ctx::for_client(&mut client, &self.shared, world);
                if post_error(&mut cx, &error).is_ok() {
                    let _ = client.conn.flush();
                }
                return Err(Refused::Budget(over));
            }
        };
        let socket = client.conn.shared_stream();
        self.clients.insert(client);
        Ok((key, socket))
    }

    /// One wakeup of client `key`: one `recv` and a dispatch if readable,
    /// then one flush.
    pub fn serve(&mut self, key: ClientKey, readable: bool) -> Next {
        let Some(mut client) = self.clients.take(key) else {
            return Next::Close;
        };
        if client.cut_off {
            self.clients.restore(client);
            return self.check_cut_off(key, readable);
        }
        client.conn.borrow_buffers(&mut self.buffers);
        let result = self.serve_taken(&mut client, readable);
        client.conn.return_buffers(&mut self.buffers);
        self.clients.restore(client);
        match result {
            Ok(writable) => Next::Watch { writable },
            Err(reason) => self.leave(key, reason),
        }
    }

    /// [`Core::serve`]'s work on the client taken out of the table.
    fn serve_taken(&mut self, client: &mut Client, readable: bool) -> Result<bool, Disconnect> {
        // Fds it was sent and has read since no longer count against it.
        let unread = client.refresh_in_flight();
        self.broker.owner_unread(client.key, unread);
        self.open_caps(client);
        let mut world = World {
            clients: &mut self.clients,
            ledger: &mut self.ledger,
            condemned: &mut self.condemned,
        };
        // Selections changed before this wakeup are announced before
        // anything it asks is answered.
        if clipboard::is_behind(&self.clipboard, client.key) {
            let mut cx = Ctx::for_client(client, &self.shared, world.reborrow());
            let caught_up = clipboard::catch_up(&mut cx, &mut self.clipboard);
            caught_up.map_err(|stop| post_stop(client, &self.shared, &mut world, stop))?;
        }
        if readable {
            let received = client.conn.recv().map_err(Disconnect::Recv)?;
            let generation = self.clipboard.generation();
            // A spurious wakeup (nothing new) dispatches nothing.
            let dispatched = dispatch_pending(
                client,
                &self.shared,
                &mut world,
                &mut self.broker,
                &mut self.clipboard,
                &mut self.extensions,
            );
            dispatched.map_err(|stop| post_stop(client, &self.shared, &mut world, stop))?;
            // It changed the selection and filled the read: more of a burst
            // is likely on its way.
            if received == Recv::Data(MAX_MESSAGE_SIZE) && self.clipboard.generation() != generation
            {
                self.burst = true;
            }
        }
        let writable = flush(client).map_err(Disconnect::Send)?;
        settle(client, &mut self.ledger);
        Ok(writable)
    }

    /// Sets `client`'s caps for one wakeup from its shares.
    #[inline]
    fn open_caps(&mut self, client: &mut Client) {
        let ledger = &mut self.ledger;
        let waiting = client.conn.split().0.queued_fds() as u64;
        let queued = client.conn.split().1.queued_bytes() as u64;
        ledger.set(&mut client.account, Resource::Fds, waiting);
        ledger.set(&mut client.account, Resource::OutputBytes, queued);
        let out = queued + ledger.allowance(&client.account, Resource::OutputBytes);
        let fds = waiting + ledger.allowance(&client.account, Resource::Fds);
        client.conn.set_caps(to_usize(out), to_usize(fds));
    }

    /// The end of a loop pass: the round of selection announcements, then
    /// every client with output queued by others is flushed, and every
    /// condemned client cut off. Returns what the loop must change for
    /// clients other than the ones it just served.
    #[inline]
    pub fn end_of_pass(&mut self) -> Vec<(ClientKey, Next)> {
        if self.pass_is_quiet() {
            return Vec::new();
        }
        self.others_after_pass()
    }

    /// The common pass: a client served, nothing for anyone else, and no
    /// watch of a kept selection to change. A few loads, on every pass.
    #[inline]
    pub fn pass_is_quiet(&mut self) -> bool {
        !self.clipboard.has_changed()
            && !self.burst
            && self.condemned.is_empty()
            && !self.clients.has_unflushed()
            && !self.clipboard.persist.jobs().has_changes()
    }

    /// [`Core::end_of_pass`] when there is something to do.
    fn others_after_pass(&mut self) -> Vec<(ClientKey, Next)> {
        let mut changes = Vec::new();
        // A burst still arriving is announced once it has, or after
        // MAX_DEFERRED_ROUNDS passes.
        let burst = std::mem::take(&mut self.burst);
        let announce = !burst || self.deferred_rounds >= MAX_DEFERRED_ROUNDS;
        self.deferred_rounds = if announce {
            0
        } else {
            self.deferred_rounds + 1
        };
        loop {
            let mut world = World {
                clients: &mut self.clients,
                ledger: &mut self.ledger,
                condemned: &mut self.condemned,
            };
            if announce {
                clipboard::deliver_round(&mut self.clipboard, &self.shared, &mut world);
            }
            let condemned = std::mem::take(&mut self.condemned);
            for (key, stop) in condemned {
                if let Some(reason) = self.post_stop_other(key, stop) {
                    changes.push((key, self.leave(key, reason)));
                }
            }
            for key in self.clients.take_unflushed() {
                let Some(client) = self.clients.get_mut(key) else {
                    continue;
                };
                if client.cut_off {
                    continue;
                }
                match flush(client) {
                    Ok(writable) => {
                        settle(client, &mut self.ledger);
                        changes.push((key, Next::Watch { writable }));
                    }
                    Err(e) => changes.push((key, self.leave(key, Disconnect::Send(e)))),
                }
            }
            // Leaving may clear a selection or condemn more: once more.
            if self.condemned.is_empty() && !(announce && self.clipboard.has_changed()) {
                return changes;
            }
        }
    }

    /// Posts `stop` to client `key` (not being served) and says why it
    /// goes; `None` if it has gone already.
    fn post_stop_other(&mut self, key: ClientKey, stop: Stop) -> Option<Disconnect> {
        let mut client = self.clients.take(key)?;
        let mut world = World {
            clients: &mut self.clients,
            ledger: &mut self.ledger,
            condemned: &mut self.condemned,
        };
        let reason = post_stop(&mut client, &self.shared, &mut world, stop);
        self.clients.restore(client);
        Some(reason)
    }

    /// Client `key` must go for `reason`: its objects, names and clipboard
    /// are released at once; it leaves the table now, or, with fds still
    /// in flight, once it has read them or hung up.
    pub fn leave(&mut self, key: ClientKey, reason: Disconnect) -> Next {
        let Some(client) = self.clients.get_mut(key) else {
            return Next::Close;
        };
        let who = client.who();
        log_disconnect(&who, &reason);
        // Its heap is freed now (its output and objects), and given back
        // to the system once enough was (`trim`).
        let held = std::mem::size_of::<Client>() + client.conn.heap_bytes();
        trim::client_left(held + client.objects.heap_bytes());
        // What was not sent never will be: its fds close now.
        client.conn.discard();
        let in_flight = client.refresh_in_flight();
        self.extensions.client_left(key, client.objects.iter());
        release(
            client,
            &mut self.broker,
            &mut self.clipboard,
            &mut self.ledger,
        );
        let account = &mut client.account;
        self.ledger
            .set(account, Resource::FdsInFlight, in_flight as u64);
        let hung_up = matches!(
            reason,
            Disconnect::Recv(ConnectionError::Closed) | Disconnect::Send(ConnectionError::Closed)
        );
        if in_flight > 0 && !hung_up {
            client.cut_off = true;
            // It reads EOF once it has read what is queued.
            let _ = client.conn.stream().shutdown(std::net::Shutdown::Write);
        }
        if let Some(departures) = self.departures.as_mut() {
            departures.push((key, reason));
        }
        if in_flight == 0 || hung_up {
            self.close_one(key);
            return Next::Close;
        }
        debug!(
            "client ({who}) cut off with {in_flight} fds in flight: \
             charged until it reads them or hangs up"
        );
        Next::CutOff
    }

    /// A cut-off client: drops what it sends, and leaves the table once it
    /// hangs up or has read every fd in flight. [`Next::CutOff`] while it
    /// has not.
    pub fn check_cut_off(&mut self, key: ClientKey, readable: bool) -> Next {
        let Some(client) = self.clients.get_mut(key) else {
            return Next::Close;
        };
        let hung_up = readable && drain(client);
        let in_flight = client.refresh_in_flight() as u64;
        self.ledger
            .set(&mut client.account, Resource::FdsInFlight, in_flight);
        if hung_up || in_flight == 0 {
            debug!("cut-off client ({}) is gone", client.who());
            self.close_one(key);
            return Next::Close;
        }
        Next::CutOff
    }

    /// Removes client `key` from the table and closes its account.
    pub fn close_one(&mut self, key: ClientKey) {
        if let Some(mut client) = self.clients.remove(key) {
            self.ledger.close(&mut client.account);
        }
    }

    /// Closes every client (at shutdown).
    pub fn close_all(&mut self) {
        match self.clients.len() {
            0 => {}
            1 => info!("closing 1 client"),
            n => info!("closing {n} clients"),
        }
        for key in self.clients.keys() {
            self.close_one(key);
        }
    }

    /// A watch of a kept selection (`--persist`) is ready, or its time
    /// has come. Whether the loop should keep watching it.
    pub fn job_ready(&mut self, job: JobId) -> bool {
        let mut world = World {
            clients: &mut self.clients,
            ledger: &mut self.ledger,
            condemned: &mut self.condemned,
        };
        clipboard::persist::job_ready(&mut self.clipboard, &self.shared, &mut world, job)
    }

    /// A watch of a kept selection could not be set up: the job ends as if
    /// its pipe had failed (or its time had come).
    pub fn job_failed(&mut self, job: JobId) {
        let mut world = World {
            clients: &mut self.clients,
            ledger: &mut self.ledger,
            condemned: &mut self.condemned,
        };
        clipboard::persist::job_failed(&mut self.clipboard, &self.shared, &mut world, job);
    }

    /// A new keymap: every keyboard of every client gets it once. Returns
    /// how many keyboards were told, and the clients cut off meanwhile.
    pub fn reload_keymap(&mut self, keymap: Keymap) -> (usize, Vec<(ClientKey, Next)>) {
        self.shared.keymap = keymap;
        let mut told = 0;
        for key in self.clients.keys() {
            let mut world = World {
                clients: &mut self.clients,
                ledger: &mut self.ledger,
                condemned: &mut self.condemned,
            };
            // A cut-off client is skipped; one that cannot take it is condemned.
            told += with_client(&self.shared, &mut world, key, seat::push_keymap).unwrap_or(0);
        }
        (told, self.end_of_pass())
    }
}

/// Records what `client` holds after a flush.
fn settle(client: &mut Client, ledger: &mut Ledger) {
    let (incoming, out) = client.conn.split();
    let account = &mut client.account;
    ledger.set(account, Resource::Fds, incoming.queued_fds() as u64);
    ledger.set(account, Resource::OutputBytes, out.queued_bytes() as u64);
    ledger.set(account, Resource::FdsInFlight, out.fds_in_flight() as u64);
    ledger.set(account, Resource::Objects, client.objects.len() as u64);
}

/// Reads and drops what a cut-off client sends (its fds close), one
/// `recvmsg` per wakeup as for any client (the level-triggered source
/// wakes again for the rest, so a flood cannot hold the loop); whether it
/// has hung up.
fn drain(client: &mut Client) -> bool {
    match client.conn.recv() {
        // Nothing it sends is read any more: drop it whole.
        Ok(Recv::Data(_)) => {
            client.conn.discard();
            false
        }
        Ok(Recv::WouldBlock) => false,
        Err(_) => true,
    }
}

/// Posts the error a [`Stop`] carries, if any, flushes once (best effort:
/// a client that does not read loses it), and says why the client goes.
fn post_stop(
    client: &mut Client,
    shared: &Shared,
    world: &mut World<'_>,
    stop: Stop,
) -> Disconnect {
    let (err, reason) = match stop {
        Stop::Protocol(err) => (err.clone(), Disconnect::Protocol(err)),
        Stop::Server(err) => {
            error!("cannot serve client ({}): {}", client.who(), err.message);
            (err, Disconnect::Server)
        }
        Stop::Queue(e) => return Disconnect::Queue(e),
    };
    // The error must get out even past the share: lift the cap.
    client.conn.set_caps(usize::MAX, 0);
    let mut cx = Ctx::for_client(client, shared, world.reborrow());
    if post_error(&mut cx, &err).is_ok() {
        let _ = client.conn.flush();
    }
    reason
}

/// Logs why a client went: a hang-up is `info`, anything else `warn`.
pub fn log_disconnect(who: &str, reason: &Disconnect) {
    match reason {
        Disconnect::Recv(ConnectionError::Closed) | Disconnect::Send(ConnectionError::Closed) => {
            info!("client disconnected ({who})")
        }
        Disconnect::Recv(_) | Disconnect::Send(_) => {
            warn!("client disconnected ({who}): {reason}")
        }
        _ => warn!("disconnecting client ({who}): {reason}"),
    }
}

/// One flush. `Ok(true)` means output is left and the source must also
/// wait for writability.
pub fn flush(client: &mut Client) -> Result<bool, ConnectionError> {
    match client.conn.flush()? {
        Flush::Done => Ok(false),
        Flush::WouldBlock => {
            debug!("client ({}) is not reading; waiting to write", client.who());
            Ok(true)
        }
    }
}

/// Releases what a client that goes held server-wide: its broker names,
/// its clipboard sources, devices and offers (which may clear a
/// selection, announced at the end of the pass), and every charge but its
/// connection and its fds in flight.
fn release(
    client: &mut Client,
    broker: &mut Broker,
    clipboard: &mut Clipboard,
    ledger: &mut Ledger,
) {
    let names = std::mem::take(&mut client.session.names);
    broker.release_all(client.key, client.uid(), &names);
    clipboard.client_gone(client.key);
    let account = &mut client.account;
    for resource in [
        Resource::Fds,
        Resource::OutputBytes,
        Resource::Names,
        Resource::Objects,
    ] {
        ledger.set(account, resource, 0);
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
