//! The client side of the `waypass_broker_v1` name broker: register names,
//! receive peers that connect to them, and connect to other clients' names.
//!
//! What it is: [`Broker`], which owns a [`Session`], binds the broker
//! global on it, and turns the `waypass_name_v1` and
//! `waypass_connection_v1` events into states and [`Peer`]s. Each peer is a
//! [`PeerChannel`](waypass_protocol::PeerChannel) over one end of a
//! socketpair the server made; once it is here the server is out of the
//! path. What it is not: the peer protocol (text, files, acks: see
//! `PeerChannel`), an event loop, or thread-safe.
//!
//! ```no_run
//! use std::time::Duration;
//! use waypass_client::{Broker, ConnectOptions};
//!
//! // Bob registers a name and waits for a peer.
//! let mut bob = Broker::connect(Some("wayland-0"))?;
//! let name = bob.register_and_wait("bob", Duration::from_secs(5))?;
//! # let _ = name;
//!
//! // Alice connects to it (retrying for up to 2 s while nobody owns it).
//! let mut alice = Broker::connect(Some("wayland-0"))?;
//! let mut options = ConnectOptions::default();
//! options.wait_for_name = Some(Duration::from_secs(2));
//! let mut to_bob = alice.connect_to("bob", options)?;
//! let serial = to_bob.channel.send_text("coucou").expect("fits in a message");
//!
//! let incoming = bob.next_peer(Some(Duration::from_secs(5)))?.expect("alice connected");
//! println!("{} connected to us", incoming.peer.label());
//! # let _ = serial;
//! # Ok::<(), waypass_client::BrokerError>(())
//! ```
//!
//! # Implementation notes
//!
//! - The broker owns its session and is the only reader of its events:
//!   [`Broker::dispatch`] handles every queued event for its objects and
//!   drops the rest (events of objects bound before, e.g. a keyboard whose
//!   keymap was already read) with a trace line, so nothing piles up.
//! - A name whose registration failed is inert; [`Broker::wait_registered`]
//!   withdraws it at once so its id is freed.
//! - A connection object is destroyed as soon as its one event arrived, so
//!   it stops counting against the server's pending limit.
//! - Retrying a connect on `unknown_name` sends a new `connect` after
//!   [`ConnectOptions::retry_interval`], reading events meanwhile; the
//!   protocol has no "name appeared" event to wait for instead.
//! - Each call makes one [`Deadline`] from the timeout it was given and
//!   every wait inside it (round trip, answers, retries) ends there, so
//!   the timeout bounds the whole call and its error names that timeout.

mod error;

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use log::{debug, trace};
use waypass_protocol::protocols::broker::waypass_broker_v1::{self, WaypassBrokerV1};
use waypass_protocol::protocols::broker::waypass_connection_v1::{self, WaypassConnectionV1};
use waypass_protocol::protocols::broker::waypass_name_v1::{self, WaypassNameV1};
use waypass_protocol::ObjectId;

pub use error::{BrokerError, Failure, Request};

use error::reason_text;

use crate::deadline::Deadline;
use crate::error::SessionError;
use crate::event::Event;
use crate::peer::Peer;
use crate::session::Session;
use waypass_protocol::Credentials;

/// A name this client asked to own: a `waypass_name_v1` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameHandle {
    id: ObjectId<WaypassNameV1>,
}

impl NameHandle {
    /// The `waypass_name_v1` object id.
    pub fn id(self) -> u32 {
        self.id.raw()
    }
}

/// Another client connected to one of our names (`waypass_name_v1.peer`).
#[derive(Debug)]
pub struct IncomingPeer {
    /// Which of our names it connected to.
    pub to: NameHandle,
    /// The peer.
    pub peer: Peer,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// No answer from the server yet.
    Pending,
    /// The name is ours until withdrawn or until we disconnect.
    Registered,
    /// The server refused it; the object is inert.
    Failed(Failure),
}

/// How [`Broker::connect_to`] waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long the whole call may take, retries included: every answer
    /// must come before this much time after the call began
    /// ([`BrokerError::NoAnswer`] names it otherwise). Default: 10 s.
    pub reply_timeout: Duration,
    /// Keep retrying while the name is unknown, for up to this long: for a
    /// sender started before its listener registers. `None`: fail at once.
    /// Retries also stop at `reply_timeout`, which bounds the whole call.
    pub wait_for_name: Option<Duration>,
    /// The pause between two tries.
    pub retry_interval: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            reply_timeout: Duration::from_secs(10),
            wait_for_name: None,
            retry_interval: Duration::from_millis(50),
        }
    }
}

/// The answer to one `connect`.
#[derive(Debug)]
enum Outcome {
    Waiting,
    Established(Box<Peer>),
    Failed(Failure),
}

/// A session with the `waypass_broker_v1` global bound.
#[derive(Debug)]
pub struct Broker {
    session: Session,
    broker: ObjectId<WaypassBrokerV1>,
    /// Our live name objects, by id.
    names: HashMap<ObjectId<WaypassNameV1>, (String, NameState)>,
    /// Connection objects awaiting or holding their one event, by id.
    connections: HashMap<ObjectId<WaypassConnectionV1>, Outcome>,
    /// Peers that connected to our names, oldest first.
    incoming: VecDeque<IncomingPeer>,
}

impl Broker {
    /// Connects to `display` (see [`Session::connect`]) and binds the
    /// broker, within the session's default reply timeout
    /// ([`crate::DEFAULT_REPLY_TIMEOUT`]).
    pub fn connect(display: Option<&str>) -> Result<Broker, BrokerError> {
        Broker::new(Session::connect(display)?)
    }

    /// [`Broker::connect`], all within `timeout`: a server that never
    /// answers is [`SessionError::Timeout`](crate::SessionError::Timeout)
    /// naming `timeout`.
    pub fn connect_within(display: Option<&str>, timeout: Duration) -> Result<Broker, BrokerError> {
        let deadline = Deadline::after(timeout);
        Broker::new_by(Session::connect(display)?, deadline)
    }

    /// Binds `waypass_broker_v1` on an existing session, with a registry of
    /// its own and one round trip (within the session's reply timeout).
    /// [`BrokerError::NoBroker`] if the server does not advertise it.
    pub fn new(session: Session) -> Result<Broker, BrokerError> {
        let deadline = Deadline::after(session.reply_timeout());
        Broker::new_by(session, deadline)
    }

    /// [`Broker::new`], ending at `deadline`.
    pub fn new_by(mut session: Session, deadline: Deadline) -> Result<Broker, BrokerError> {
        let broker = match session.bind_global_by::<WaypassBrokerV1>(u32::MAX, deadline) {
            Err(SessionError::NoGlobal { .. }) => return Err(BrokerError::NoBroker),
            bound => bound?,
        };
        Ok(Broker {
            session,
            broker,
            names: HashMap::new(),
            connections: HashMap::new(),
            incoming: VecDeque::new(),
        })
    }

    /// The underlying session.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Asks to own `name`; the answer comes later (see
    /// [`Broker::name_state`], [`Broker::wait_registered`]).
    pub fn register(&mut self, name: &str) -> Result<NameHandle, BrokerError> {
        let handle = self.queue_register(name)?;
        self.session.flush()?;
        Ok(handle)
    }

    /// Queues a `register` without flushing: the wait that follows flushes
    /// within its deadline.
    fn queue_register(&mut self, name: &str) -> Result<NameHandle, BrokerError> {
        let text = wire_name(name, Request::Register)?;
        let id = self.session.new_object::<WaypassNameV1>(1)?;
        let register = waypass_broker_v1::Request::Register { id, name: &text };
        self.session.send(self.broker, register)?;
        let id = id.id();
        self.names
            .insert(id, (name.to_string(), NameState::Pending));
        Ok(NameHandle { id })
    }

    /// Where the registration of `handle` stands (`None`: withdrawn).
    pub fn name_state(&self, handle: NameHandle) -> Option<NameState> {
        self.names.get(&handle.id).map(|(_, state)| *state)
    }

    /// The name `handle` asked for.
    pub fn name_of(&self, handle: NameHandle) -> Option<&str> {
        self.names.get(&handle.id).map(|(name, _)| name.as_str())
    }

    /// Waits for the answer to a registration. A refusal withdraws the inert
    /// object and is [`BrokerError::Refused`].
    pub fn wait_registered(
        &mut self,
        handle: NameHandle,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let deadline = Deadline::after(timeout).at();
        loop {
            self.dispatch_queued()?;
            match self.names.get(&handle.id) {
                None => return Err(BrokerError::UnknownHandle),
                Some((_, NameState::Registered)) => return Ok(()),
                Some((name, NameState::Failed(reason))) => {
                    let err = BrokerError::Refused {
                        request: Request::Register,
                        name: name.clone(),
                        reason: *reason,
                    };
                    self.withdraw(handle)?;
                    return Err(err);
                }
                Some((_, NameState::Pending)) => {}
            }
            if !self.session.read_events(Some(deadline))? {
                return Err(BrokerError::NoAnswer {
                    waiting_for: "answer to waypass_broker_v1.register",
                    waited: timeout,
                });
            }
        }
    }

    /// [`Broker::register`], then [`Broker::wait_registered`], the whole
    /// within `timeout`.
    pub fn register_and_wait(
        &mut self,
        name: &str,
        timeout: Duration,
    ) -> Result<NameHandle, BrokerError> {
        let handle = self.queue_register(name)?;
        self.wait_registered(handle, timeout)?;
        Ok(handle)
    }

    /// Releases a name (`waypass_name_v1.withdraw`). Peers already received
    /// keep their channels.
    pub fn withdraw(&mut self, handle: NameHandle) -> Result<(), BrokerError> {
        if self.names.remove(&handle.id).is_none() {
            return Err(BrokerError::UnknownHandle);
        }
        self.session
            .send(handle.id, waypass_name_v1::Request::Withdraw)?;
        self.session.flush()?;
        Ok(())
    }

    /// Asks for a channel to the owner of `name` and waits for it. On
    /// `unknown_name` it retries as [`ConnectOptions::wait_for_name`] says;
    /// any other refusal is [`BrokerError::Refused`] at once. The whole call
    /// ends within [`ConnectOptions::reply_timeout`].
    pub fn connect_to(&mut self, name: &str, options: ConnectOptions) -> Result<Peer, BrokerError> {
        let text = wire_name(name, Request::Connect)?;
        let deadline = Deadline::after(options.reply_timeout);
        let give_up = options
            .wait_for_name
            .map(|w| deadline.min_with(Deadline::after(w).at()));
        loop {
            let reason = match self.connect_once(&text, deadline)? {
                Ok(peer) => return Ok(peer),
                Err(reason) => reason,
            };
            let refused = BrokerError::Refused {
                request: Request::Connect,
                name: name.to_string(),
                reason,
            };
            let Some(until) = give_up.filter(|&t| Instant::now() < t) else {
                return Err(refused);
            };
            if reason != Failure::UnknownName {
                return Err(refused);
            }
            trace!("\"{name}\" is not registered yet; retrying");
            let pause = Instant::now().checked_add(options.retry_interval);
            self.pump_until(pause.map_or(until, |p| until.min(p)))?;
            if Instant::now() >= until {
                // Nobody registered the name within the time to retry.
                return Err(refused);
            }
        }
    }

    /// The next peer that connected to one of our names, reading the socket
    /// for up to `timeout` (forever with `None`). `Ok(None)`: time ran out.
    pub fn next_peer(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<IncomingPeer>, BrokerError> {
        let deadline = timeout.map(|t| Deadline::after(t).at());
        loop {
            self.dispatch_queued()?;
            if let Some(peer) = self.incoming.pop_front() {
                return Ok(Some(peer));
            }
            if !self.session.read_events(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads the socket once if it becomes readable before `deadline`
    /// (`None`: wait for it) and handles what arrived; for callers that poll
    /// the broker's fd beside others. Returns whether anything was read.
    /// Take the peers that arrived with [`Broker::take_peer`].
    pub fn dispatch(&mut self, deadline: Option<Instant>) -> Result<bool, BrokerError> {
        let read = self.session.read_events(deadline)?;
        self.dispatch_queued()?;
        Ok(read)
    }

    /// The oldest peer already received, without reading the socket.
    pub fn take_peer(&mut self) -> Option<IncomingPeer> {
        self.incoming.pop_front()
    }

    /// Sends one `connect` and waits for its answer; destroys the object.
    fn connect_once(
        &mut self,
        name: &CString,
        deadline: Deadline,
    ) -> Result<Result<Peer, Failure>, BrokerError> {
        let new = self.session.new_object::<WaypassConnectionV1>(1)?;
        let connect = waypass_broker_v1::Request::Connect { id: new, name };
        self.session.send(self.broker, connect)?;
        let id = new.id();
        self.connections.insert(id, Outcome::Waiting);
        let outcome = loop {
            self.dispatch_queued()?;
            if !matches!(self.connections.get(&id), Some(Outcome::Waiting)) {
                break self.connections.remove(&id);
            }
            if !self.session.read_events(Some(deadline.at()))? {
                self.connections.remove(&id);
                return Err(BrokerError::NoAnswer {
                    waiting_for: "answer to waypass_broker_v1.connect",
                    waited: deadline.timeout(),
                });
            }
        };
        self.session
            .send(id, waypass_connection_v1::Request::Destroy)?;
        self.session.flush()?;
        match outcome {
            Some(Outcome::Established(peer)) => Ok(Ok(*peer)),
            Some(Outcome::Failed(reason)) => Ok(Err(reason)),
            Some(Outcome::Waiting) | None => Err(BrokerError::UnknownHandle),
        }
    }

    /// Handles events until `until`, for a pause between retries.
    fn pump_until(&mut self, until: Instant) -> Result<(), BrokerError> {
        while self.session.read_events(Some(until))? {
            self.dispatch_queued()?;
        }
        self.dispatch_queued()
    }

    /// Handles every queued event, without reading the socket.
    fn dispatch_queued(&mut self) -> Result<(), BrokerError> {
        while let Some(ev) = self.session.pop_event() {
            let (name, connection) = (ObjectId::from_raw(ev.object), ObjectId::from_raw(ev.object));
            if ev.is_from(name) && self.names.contains_key(&name) {
                self.on_name_event(name, ev)?;
            } else if ev.is_from(connection) && self.connections.contains_key(&connection) {
                self.on_connection_event(connection, ev)?;
            } else {
                trace!(
                    "broker: dropping {}@{}.{}",
                    ev.interface.name,
                    ev.object,
                    ev.name()
                );
            }
        }
        Ok(())
    }

    fn on_name_event(
        &mut self,
        id: ObjectId<WaypassNameV1>,
        mut ev: Event,
    ) -> Result<(), BrokerError> {
        let Some((name, state)) = self.names.get_mut(&id) else {
            return Ok(());
        };
        match ev.decode::<WaypassNameV1>().map_err(SessionError::from)? {
            waypass_name_v1::Event::Registered => {
                debug!("registered name \"{name}\"");
                *state = NameState::Registered;
            }
            waypass_name_v1::Event::Failed { reason } => {
                debug!("name \"{name}\" refused: {}", reason_text(reason));
                *state = NameState::Failed(reason);
            }
            waypass_name_v1::Event::Peer {
                fd,
                peer_name,
                pid,
                uid,
                gid,
            } => {
                let credentials = Credentials { pid, uid, gid };
                let peer_name = peer_name.map(|n| n.to_string_lossy().into_owned());
                debug!("peer {peer_name:?} ({credentials}) connected to \"{name}\"");
                let peer =
                    Peer::from_fd(fd, peer_name, credentials).map_err(BrokerError::ChannelSetup)?;
                let to = NameHandle { id };
                self.incoming.push_back(IncomingPeer { to, peer });
            }
        }
        Ok(())
    }

    fn on_connection_event(
        &mut self,
        id: ObjectId<WaypassConnectionV1>,
        mut ev: Event,
    ) -> Result<(), BrokerError> {
        let outcome = match ev
            .decode::<WaypassConnectionV1>()
            .map_err(SessionError::from)?
        {
            waypass_connection_v1::Event::Established {
                fd,
                peer_name,
                pid,
                uid,
                gid,
            } => {
                let credentials = Credentials { pid, uid, gid };
                let name = Some(peer_name.to_string_lossy().into_owned());
                debug!("channel established to {name:?} ({credentials})");
                Outcome::Established(Box::new(
                    Peer::from_fd(fd, name, credentials).map_err(BrokerError::ChannelSetup)?,
                ))
            }
            waypass_connection_v1::Event::Failed { reason } => Outcome::Failed(reason),
        };
        self.connections.insert(id, outcome);
        Ok(())
    }
}

impl AsFd for Broker {
    /// The server connection, to poll beside peer channels; call
    /// [`Broker::dispatch`] when it is readable.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.session.as_fd()
    }
}

/// A name as a wire string; one holding a NUL cannot be sent and is
/// refused here as the server would refuse it.
fn wire_name(name: &str, request: Request) -> Result<CString, BrokerError> {
    CString::new(name).map_err(|_| BrokerError::Refused {
        request,
        name: name.escape_default().to_string(),
        reason: Failure::InvalidName,
    })
}

#[cfg(test)]
mod tests;
