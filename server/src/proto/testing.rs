//! What the protocol layer's unit tests share: a [`Fixture`] with the
//! server-wide state a handler needs (shared state, ledger, client table)
//! and clients over socket pairs whose other ends the tests read.
//!
//! What it is not: the fuzz harness (`crate::fuzzing`, which runs the
//! whole wakeup); here a test calls handlers directly.

use std::os::unix::net::UnixStream;

use waypass_protocol::{Connection, Credentials, TraceSide, Tracer};

use crate::config::Settings;
use crate::keymap::{Keymap, KeymapSource};
use crate::ledger::Ledger;
use crate::limits::Limits;
use crate::proto::ctx::{Ctx, Shared, Stop, World};
use crate::state::{Client, ClientKey, Clients};

/// The server-wide state of a unit test.
pub struct Fixture {
    pub shared: Shared,
    pub ledger: Ledger,
    pub clients: Clients,
    pub condemned: Vec<(ClientKey, Stop)>,
}

impl Fixture {
    /// The embedded keymap, default settings and limits.
    pub fn new() -> Fixture {
        Fixture::with_limits(Limits::default())
    }

    /// The embedded keymap, default settings, and `limits`.
    pub fn with_limits(limits: Limits) -> Fixture {
        let keymap = Keymap::load(&KeymapSource::Embedded).unwrap();
        let shared = Shared::new(keymap, Settings::default(), limits).unwrap();
        let budgets = limits.budgets(4096, 0).unwrap();
        Fixture {
            shared,
            ledger: Ledger::new(&limits, budgets, nix::unistd::getuid().as_raw()),
            clients: Clients::default(),
            condemned: Vec::new(),
        }
    }

    /// A new client in the table, and the client's end as a connection.
    pub fn client(&mut self) -> (ClientKey, Connection) {
        let (server_end, client_end) = UnixStream::pair().unwrap();
        let creds = Credentials::of_peer(&server_end).ok();
        let tracer = Tracer::from_debug_value(TraceSide::Server, None);
        let key = self.clients.next_key();
        let mut client = Client::new(key, server_end, tracer, creds, Default::default()).unwrap();
        client.account = self.ledger.open(client.uid()).unwrap();
        self.clients.insert(client);
        (key, Connection::new(client_end).unwrap())
    }

    /// Runs `f` with a context of client `key`, as a handler would.
    pub fn with<R>(&mut self, key: ClientKey, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        let mut client = self.clients.take(key).unwrap();
        let world = World {
            clients: &mut self.clients,
            ledger: &mut self.ledger,
            condemned: &mut self.condemned,
        };
        let r = f(&mut Ctx::for_client(&mut client, &self.shared, world));
        self.clients.restore(client);
        r
    }

    /// Client `key` itself.
    pub fn get(&mut self, key: ClientKey) -> &mut Client {
        self.clients.get_mut(key).unwrap()
    }
}
