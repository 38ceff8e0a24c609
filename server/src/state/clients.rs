//! The client table: every connected [`Client`], owned in one place, so
//! that a request handler serving one client can queue output for any
//! other directly (as wayland-backend's `ClientStore` lets it), and a list
//! of the clients whose output waits to be flushed.
//!
//! What it is not: the event loop's side of a client (its calloop source
//! lives in [`crate::runtime`]) or an accountant (the
//! [`Ledger`](crate::ledger::Ledger) is).
//!
//! # Implementation notes
//!
//! - **Slots with generations.** A [`ClientKey`] is a slot index and the
//!   slot's generation, so a lookup is an index, not a hash, and a key kept
//!   after its client left never finds the client that took the slot.
//! - **Taking a client out.** While one client is served, it is taken out
//!   of its slot ([`Clients::take`]) and put back after
//!   ([`Clients::restore`]): the handler holds `&mut Client` for it and
//!   `&mut Clients` for everyone else, with no `unsafe` and no `RefCell`.
//!   A lookup of the client being served finds nothing, which is right:
//!   output for itself goes through its own context.
//! - **Unflushed output.** Output queued on a client outside its own
//!   wakeup marks it once ([`Clients::mark_unflushed`]); the runtime
//!   flushes those clients after the wakeup. Nobody re-walks other
//!   clients' pending work.

use crate::state::{Client, ClientKey};

/// One slot of the table.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    /// `None` while free, or while its client is taken out to be served.
    client: Option<Box<Client>>,
    /// Whether a client holds the slot (taken out or not).
    occupied: bool,
}

/// Every connected client (see the module notes).
#[derive(Debug, Default)]
pub struct Clients {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    unflushed: Vec<ClientKey>,
}

impl Clients {
    /// The key the next [`Clients::insert`] will use.
    pub fn next_key(&self) -> ClientKey {
        match self.free.last() {
            Some(&slot) => ClientKey {
                slot,
                generation: self.slots[slot as usize].generation,
            },
            None => ClientKey {
                slot: u32::try_from(self.slots.len()).unwrap_or(u32::MAX),
                generation: 0,
            },
        }
    }

    /// Adds a client built for [`Clients::next_key`]; returns its key.
    pub fn insert(&mut self, client: Client) -> ClientKey {
        let key = self.next_key();
        debug_assert_eq!(client.key, key, "a client built for another key");
        let slot = match self.free.pop() {
            Some(slot) => &mut self.slots[slot as usize],
            None => {
                self.slots.push(Slot::default());
                self.slots.last_mut().expect("just pushed")
            }
        };
        slot.client = Some(Box::new(client));
        slot.occupied = true;
        self.len += 1;
        key
    }

    /// The client `key`, unless it has gone or is taken out.
    pub fn get_mut(&mut self, key: ClientKey) -> Option<&mut Client> {
        self.slot_mut(key)?.client.as_deref_mut()
    }

    /// Takes client `key` out to serve it; [`Clients::restore`] puts it
    /// back.
    #[inline]
    pub fn take(&mut self, key: ClientKey) -> Option<Box<Client>> {
        self.slot_mut(key)?.client.take()
    }

    /// Puts back a client that [`Clients::take`] took out.
    #[inline]
    pub fn restore(&mut self, client: Box<Client>) {
        let key = client.key;
        match self.slot_mut(key) {
            Some(slot) if slot.client.is_none() => slot.client = Some(client),
            _ => not_waiting(key),
        }
    }

    /// Puts back a client that [`Clients::take`] took out to queue output
    /// on it outside its own wakeup, and marks it for a flush.
    pub fn restore_marked(&mut self, mut client: Box<Client>) {
        Self::mark_unflushed(&mut client, &mut self.unflushed);
        self.restore(client);
    }

    /// Removes client `key` for good (taken out or not); returns it if it
    /// was in its slot.
    pub fn remove(&mut self, key: ClientKey) -> Option<Box<Client>> {
        let slot = self.slot_mut(key)?;
        let client = slot.client.take();
        slot.occupied = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.slot);
        self.len -= 1;
        client
    }

    /// Connected clients.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The keys of every connected client.
    pub fn keys(&self) -> Vec<ClientKey> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.occupied)
            .map(|(i, s)| ClientKey {
                slot: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// Notes that `client` has output queued outside its own wakeup.
    pub fn mark_unflushed(client: &mut Client, list: &mut Vec<ClientKey>) {
        if !client.unflushed {
            client.unflushed = true;
            list.push(client.key);
        }
    }

    /// Whether some client was marked since the last
    /// [`Clients::take_unflushed`].
    pub fn has_unflushed(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// The clients marked since the last call, each once, unmarked.
    pub fn take_unflushed(&mut self) -> Vec<ClientKey> {
        let keys = std::mem::take(&mut self.unflushed);
        for &key in &keys {
            if let Some(client) = self.get_mut(key) {
                client.unflushed = false;
            }
        }
        keys
    }

    #[inline]
    fn slot_mut(&mut self, key: ClientKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|s| s.occupied && s.generation == key.generation)
    }
}

/// A client put back where none was taken out: a bug of ours; the client
/// is dropped (its socket closes).
#[cold]
fn not_waiting(key: ClientKey) {
    log::error!("bug: client slot {key:?} was not waiting for its client");
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use waypass_protocol::{TraceSide, Tracer};

    use super::*;
    use crate::ledger::Account;

    fn client(clients: &Clients) -> Client {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let tracer = Tracer::from_debug_value(TraceSide::Server, None);
        Client::new(clients.next_key(), ours, tracer, None, Account::default()).unwrap()
    }

    #[test]
    fn a_key_of_a_client_that_left_never_finds_the_next_one() {
        let mut clients = Clients::default();
        let a = clients.insert(client(&clients));
        assert!(clients.remove(a).is_some());
        let b = clients.insert(client(&clients));
        assert_eq!(a.slot, b.slot);
        assert_ne!(a, b);
        assert!(clients.get_mut(a).is_none());
        assert!(clients.get_mut(b).is_some());
        assert_eq!(clients.len(), 1);
    }

    #[test]
    fn a_client_taken_out_is_not_found_until_restored() {
        let mut clients = Clients::default();
        let a = clients.insert(client(&clients));
        let taken = clients.take(a).unwrap();
        assert!(clients.get_mut(a).is_none());
        clients.restore(taken);
        assert!(clients.get_mut(a).is_some());
        // Removed while taken out: the slot is free, the client is ours.
        let taken = clients.take(a).unwrap();
        assert!(clients.remove(a).is_none());
        assert_eq!(clients.len(), 0);
        drop(taken);
    }

    #[test]
    fn each_client_is_listed_for_a_flush_once() {
        let mut clients = Clients::default();
        let a = clients.insert(client(&clients));
        let b = clients.insert(client(&clients));
        for key in [a, b, a, a] {
            let client = clients.take(key).unwrap();
            clients.restore_marked(client);
        }
        assert_eq!(clients.take_unflushed(), vec![a, b]);
        assert!(clients.take_unflushed().is_empty());
        let client = clients.take(a).unwrap();
        clients.restore_marked(client);
        assert_eq!(clients.take_unflushed(), vec![a]);
    }
}
