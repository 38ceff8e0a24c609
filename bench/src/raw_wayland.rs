//! A bare Wayland client over `waypass_protocol::Connection`: object ids,
//! requests encoded from the protocol crate's tables, and events decoded
//! into owned values the caller matches on. The fan-out and attack
//! measurements drive their many connections with it, because they need
//! what a toolkit hides: a burst of requests written in one `sendmsg`,
//! ever-new ids, a socket that is never read.
//!
//! What it is not: a toolkit (no proxies, no dispatch, no event queue), nor
//! the client whose round trips are timed (`wl_client`, wayland-client).
//!
//! # Implementation notes
//!
//! - Ids follow libwayland's client rules: an id freed by `delete_id` is
//!   reused first, then the next one ([`RawClient::create`]).
//! - An id stays known after its destructor until `delete_id` (client
//!   ids) or until the server reuses it (server ids, as offers): events
//!   already in flight to it still decode.
//! - `wl_display.delete_id`, `wl_display.error` and the registry's
//!   `global`s are handled here; everything else is the caller's.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};
use waypass_protocol::{Arg, Connection, ConnectionError, Flush, Interface, Recv};

/// How long a blocking step waits before the server is called hung.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One event, with what the measurements read of it.
#[derive(Debug)]
pub struct Event {
    /// The object it came from.
    pub sender: u32,
    /// That object's interface.
    pub interface: &'static Interface,
    /// The event's opcode.
    pub opcode: u16,
    /// The integer, object and new-id arguments, in order.
    pub words: Vec<u32>,
    /// The first string argument, if any (`None` also for a null string).
    pub text: Option<String>,
    /// The fds it carried.
    pub fds: Vec<OwnedFd>,
}

/// A global the registry advertised.
#[derive(Debug, Clone)]
pub struct Global {
    /// Its numeric name.
    pub name: u32,
    /// Its interface name.
    pub interface: String,
    /// Its highest version.
    pub version: u32,
}

/// A connection with its object ids (see the module notes).
pub struct RawClient {
    conn: Connection,
    objects: HashMap<u32, &'static Interface>,
    next_id: u32,
    free: Vec<u32>,
    registry: u32,
    /// What the registry advertised.
    pub globals: Vec<Global>,
    /// The server closed the connection.
    pub hung_up: bool,
}

impl RawClient {
    /// Connects and lists the globals (one round trip).
    pub fn connect(socket: &Path) -> Result<RawClient, String> {
        let stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
        let conn = Connection::new(stream).map_err(|e| format!("connection: {e}"))?;
        let mut client = RawClient {
            conn,
            objects: HashMap::from([(1, &wl_display::INTERFACE)]),
            next_id: 2,
            free: Vec::new(),
            registry: 0,
            globals: Vec::new(),
            hung_up: false,
        };
        client.registry = client.get_registry()?;
        client.roundtrip(|_, _| {})?;
        Ok(client)
    }

    /// `wl_display.get_registry`: the new registry's id. Its globals go to
    /// [`RawClient::globals`] only for the first registry.
    pub fn get_registry(&mut self) -> Result<u32, String> {
        let registry = self.create(&wl_registry::INTERFACE);
        let req = wl_display::req::GET_REGISTRY;
        self.request(1, req, &[Arg::NewId(registry)])?;
        Ok(registry)
    }

    /// A new client id for `interface`: a freed one first, as libwayland.
    pub fn create(&mut self, interface: &'static Interface) -> u32 {
        let id = self.free.pop().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        self.objects.insert(id, interface);
        id
    }

    /// The lowest id this connection has never used: where a writer of
    /// raw `new_id`s that are each "the next one" starts.
    pub fn next_unused_id(&self) -> u32 {
        self.next_id
    }

    /// The socket, for raw reads and writes once the requests queued
    /// here are flushed.
    pub fn stream(&self) -> &UnixStream {
        self.conn.stream()
    }

    /// Queues a request to object `id` (sent at the next flush).
    pub fn request(
        &mut self,
        id: u32,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), String> {
        let interface = *self
            .objects
            .get(&id)
            .ok_or_else(|| format!("request to unknown object {id}"))?;
        let desc = interface
            .requests
            .get(usize::from(opcode))
            .ok_or_else(|| format!("{} has no request {opcode}", interface.name))?;
        self.conn
            .send(id, opcode, desc, args)
            .map_err(|e| format!("queue {}.{}: {e}", interface.name, desc.name))
    }

    /// Binds the first global called `interface.name` at `version` (or
    /// the global's own version, if lower): the new object's id.
    pub fn bind(&mut self, interface: &'static Interface, version: u32) -> Result<u32, String> {
        let global = self
            .globals
            .iter()
            .find(|g| g.interface == interface.name)
            .cloned()
            .ok_or_else(|| format!("the server has no {}", interface.name))?;
        let id = self.create(interface);
        let name = std::ffi::CString::new(interface.name).map_err(|e| e.to_string())?;
        let args = [
            Arg::Uint(global.name),
            Arg::Str(Some(name.as_c_str())),
            Arg::Uint(version.min(global.version)),
            Arg::NewId(id),
        ];
        self.request(self.registry, wl_registry::req::BIND, &args)?;
        Ok(id)
    }

    /// Queues `wl_display.sync`: the callback's id.
    pub fn sync(&mut self) -> Result<u32, String> {
        let callback = self.create(&wl_callback::INTERFACE);
        self.request(1, wl_display::req::SYNC, &[Arg::NewId(callback)])?;
        Ok(callback)
    }

    /// One flush, without waiting: whether everything went out.
    pub fn flush(&mut self) -> Result<bool, String> {
        match self.conn.flush() {
            Ok(Flush::Done) => Ok(true),
            Ok(Flush::WouldBlock) => Ok(false),
            Err(ConnectionError::Closed) => {
                self.hung_up = true;
                Ok(true)
            }
            Err(e) => Err(format!("flush: {e}")),
        }
    }

    /// Flushes, waiting for the socket to drain (reading nothing).
    pub fn flush_all(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        while !self.flush()? {
            self.wait(PollFlags::POLLOUT, deadline)?;
        }
        Ok(())
    }

    /// One non-blocking receive: whether anything arrived. A hang-up sets
    /// [`RawClient::hung_up`].
    pub fn receive(&mut self) -> Result<bool, String> {
        match self.conn.recv() {
            Ok(Recv::Data(_)) => Ok(true),
            Ok(Recv::WouldBlock) => Ok(false),
            Err(ConnectionError::Closed) => {
                self.hung_up = true;
                Ok(false)
            }
            Err(e) => Err(format!("recv: {e}")),
        }
    }

    /// The next event already received, if any (see the module notes for
    /// the ones handled here).
    pub fn next_event(&mut self) -> Result<Option<Event>, String> {
        loop {
            let objects = &self.objects;
            let message = self
                .conn
                .next_message(|h| {
                    let interface = objects
                        .get(&h.sender)
                        .ok_or("event from an unknown object")?;
                    interface
                        .events
                        .get(usize::from(h.opcode))
                        .ok_or("unknown event")
                })
                .map_err(|e| format!("bad event: {e}"))?;
            let Some(message) = message else {
                return Ok(None);
            };
            let interface = self.objects[&message.sender];
            let desc = &interface.events[usize::from(message.opcode)];
            let mut event = Event {
                sender: message.sender,
                interface,
                opcode: message.opcode,
                words: Vec::new(),
                text: None,
                fds: Vec::new(),
            };
            for (arg, arg_desc) in message.args.into_iter().zip(desc.args) {
                match arg {
                    Arg::NewId(id) => {
                        if let Some(new) = arg_desc.interface {
                            self.objects.insert(id, new);
                        }
                        event.words.push(id);
                    }
                    Arg::Int(v) => event.words.push(v as u32),
                    Arg::Uint(v) | Arg::Object(v) => event.words.push(v),
                    Arg::Str(s) if event.text.is_none() => {
                        event.text = s.map(|s| s.to_string_lossy().into_owned())
                    }
                    Arg::Fd(fd) => event.fds.push(fd),
                    Arg::Str(_) | Arg::Fixed(_) | Arg::Array(_) => {}
                }
            }
            if !self.handled_here(&event)? {
                return Ok(Some(event));
            }
        }
    }

    /// `delete_id`, `error` and the first registry's globals.
    fn handled_here(&mut self, event: &Event) -> Result<bool, String> {
        if event.sender == 1 && event.opcode == wl_display::evt::DELETE_ID {
            let id = event.words[0];
            if self.objects.remove(&id).is_some() {
                self.free.push(id);
            }
            return Ok(true);
        }
        if event.sender == 1 && event.opcode == wl_display::evt::ERROR {
            return Err(format!(
                "protocol error on object {}: {}",
                event.words.first().copied().unwrap_or(0),
                event.text.as_deref().unwrap_or("")
            ));
        }
        if event.sender == self.registry && event.opcode == wl_registry::evt::GLOBAL {
            self.globals.push(Global {
                name: event.words[0],
                interface: event.text.clone().unwrap_or_default(),
                version: event.words[1],
            });
            return Ok(true);
        }
        Ok(false)
    }

    /// Sends a `sync` and hands every event before its `done` to `on`.
    pub fn roundtrip(&mut self, mut on: impl FnMut(&mut RawClient, Event)) -> Result<(), String> {
        let callback = self.sync()?;
        self.flush_all()?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            while let Some(event) = self.next_event()? {
                if event.sender == callback {
                    return Ok(());
                }
                on(self, event);
            }
            if self.hung_up {
                return Err("the server closed the connection".into());
            }
            if !self.receive()? {
                self.wait(PollFlags::POLLIN, deadline)?;
            }
        }
    }

    /// Waits until the socket is ready for `what`, or fails at `deadline`.
    pub fn wait(&self, what: PollFlags, deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(self.conn.as_fd(), what)];
        match poll(&mut fds, ms) {
            Ok(0) => Err(format!(
                "the server did not answer within {}s",
                PATIENCE.as_secs()
            )),
            Ok(_) => Ok(()),
            Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(format!("poll: {e}")),
        }
    }
}

impl AsFd for RawClient {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}
