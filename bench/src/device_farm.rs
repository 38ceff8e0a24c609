//! The device farm: a peer process holding many data-control devices on a
//! server, spread over connections, reading everything it is told, as the
//! clipboard clients of a desktop would (wl-paste --watch, clipboard
//! managers).
//!
//! What it is: `peer-devices --socket S --devices N --per-connection P`.
//! Each connection binds `wl_seat` and `zwlr_data_control_manager_v1`
//! (version 2: sway has no other) and makes P devices. Every offer is
//! read; when a device is told of a new selection, the offer it held
//! before is destroyed, so no client of the farm ever holds more than one
//! live offer per device (a device that kept them would stop being told on
//! waypass, past 256). On stdin it takes `wait SEQ`: it answers
//! `done OFFERS LIVE CLOSED` once every device still connected has been
//! told of a selection whose MIME type carries a sequence number of at
//! least SEQ ([`mime_for`]), with the offers received since the last
//! answer, the devices still connected and the connections the server
//! closed. What it is not: a paster (it never receives data).
//!
//! # Implementation notes
//!
//! One thread, one epoll set over stdin and every connection; every
//! readable connection is drained (`recv` until `EAGAIN`) and its destroy
//! requests flushed. It stops when stdin closes (the bench is done with
//! it) and dies with the bench (`PR_SET_PDEATHSIG`, set by `main`).

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use std::path::Path;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use waypass_protocol::protocols::data_control::wlr::{
    zwlr_data_control_device_v1 as device, zwlr_data_control_manager_v1 as manager,
    zwlr_data_control_offer_v1 as offer,
};
use waypass_protocol::protocols::wayland::wl_seat;
use waypass_protocol::Arg;

use crate::raw_wayland::{Event, RawClient};

/// The epoll token of stdin; connections get their index.
const STDIN: u64 = u64::MAX;

/// The MIME type of change number `seq` of a burst (fixed length, so
/// every announcement has the same size).
pub fn mime_for(seq: u64) -> String {
    format!("text/x-waypass-bench-{seq:010}")
}

/// The sequence number in a MIME type made by [`mime_for`].
fn seq_of(mime: &str) -> Option<u64> {
    mime.strip_prefix("text/x-waypass-bench-")?.parse().ok()
}

struct Device {
    id: u32,
    /// The offer of the current selection (0: none).
    current: u32,
    /// The sequence number of the latest selection it was told of.
    seq: u64,
}

struct Member {
    client: RawClient,
    devices: Vec<Device>,
    /// Live offers and the sequence number each stands for.
    offers: HashMap<u32, u64>,
    closed: bool,
}

/// The farm's counters.
#[derive(Default)]
struct Tally {
    offers: u64,
    closed: u64,
}

/// Runs the farm (see the module notes).
pub fn serve(
    socket: &Path,
    devices: usize,
    per_connection: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let per_connection = per_connection.max(1);
    let mut members = Vec::new();
    let mut left = devices;
    while left > 0 {
        let n = left.min(per_connection);
        members.push(Member::connect(socket, n)?);
        left -= n;
    }
    let mut tally = Tally::default();
    for member in &mut members {
        member.settle(&mut tally)?;
    }
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let stdin = io::stdin();
    epoll.add(stdin.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STDIN))?;
    for (i, member) in members.iter().enumerate() {
        epoll.add(
            member.client.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
        )?;
    }
    let mut out = io::stdout().lock();
    writeln!(out, "ready {devices}")?;
    out.flush()?;
    tally.offers = 0;
    let mut lines = stdin.lock().lines();
    let mut target: Option<u64> = None;
    let mut events = vec![EpollEvent::empty(); 256];
    loop {
        let n = epoll.wait(&mut events, EpollTimeout::NONE)?;
        for event in &events[..n] {
            let token = event.data();
            if token == STDIN {
                match lines.next() {
                    None => return Ok(()),
                    Some(line) => target = parse_wait(&line?)?,
                }
                continue;
            }
            let member = &mut members[token as usize];
            if let Err(e) = member.drain(&mut tally) {
                // The server may end a connection with an error: a device
                // lost, as a closed connection.
                log::warn!("a farm connection failed: {e}");
                member.closed = true;
                tally.closed += 1;
            }
            if member.closed {
                epoll.delete(member.client.as_fd())?;
            }
        }
        if let Some(seq) = target {
            if members
                .iter()
                .all(|m| m.closed || m.devices.iter().all(|d| d.seq >= seq))
            {
                let live: usize = members
                    .iter()
                    .filter(|m| !m.closed)
                    .map(|m| m.devices.len())
                    .sum();
                writeln!(out, "done {} {live} {}", tally.offers, tally.closed)?;
                out.flush()?;
                tally.offers = 0;
                target = None;
            }
        }
    }
}

fn parse_wait(line: &str) -> Result<Option<u64>, String> {
    match line.split_once(' ') {
        Some(("wait", seq)) => seq
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{line:?}: {e}")),
        _ => Err(format!("unknown command {line:?}")),
    }
}

impl Member {
    /// Connects and asks for `n` devices (answered by [`Member::settle`]).
    fn connect(socket: &Path, n: usize) -> Result<Member, String> {
        let mut client = RawClient::connect(socket)?;
        let seat = client.bind(&wl_seat::INTERFACE, 1)?;
        let manager = client.bind(&manager::INTERFACE, 2)?;
        let mut devices = Vec::with_capacity(n);
        for _ in 0..n {
            let id = client.create(&device::INTERFACE);
            let req = manager::req::GET_DATA_DEVICE;
            client.request(manager, req, &[Arg::NewId(id), Arg::Object(seat)])?;
            devices.push(Device {
                id,
                current: 0,
                seq: 0,
            });
        }
        Ok(Member {
            client,
            devices,
            offers: HashMap::new(),
            closed: false,
        })
    }

    /// One round trip: the devices exist and were told the selection.
    fn settle(&mut self, tally: &mut Tally) -> Result<(), String> {
        let mut pending = Vec::new();
        self.client.roundtrip(|_, event| pending.push(event))?;
        for event in pending {
            self.on_event(event, tally)?;
        }
        self.client.flush_all()
    }

    /// Reads until the socket is empty, answers, flushes.
    fn drain(&mut self, tally: &mut Tally) -> Result<(), String> {
        loop {
            let got = self.client.receive()?;
            while let Some(event) = self.client.next_event()? {
                self.on_event(event, tally)?;
            }
            if !got {
                break;
            }
        }
        if self.client.hung_up {
            self.closed = true;
            tally.closed += 1;
            return Ok(());
        }
        // A full socket is flushed at the next wakeup: the server reads.
        self.client.flush()?;
        Ok(())
    }

    fn on_event(&mut self, event: Event, tally: &mut Tally) -> Result<(), String> {
        let word = event.words.first().copied().unwrap_or(0);
        if std::ptr::eq(event.interface, &offer::INTERFACE) {
            if event.opcode == offer::evt::OFFER {
                let seq = event.text.as_deref().and_then(seq_of).unwrap_or(0);
                self.offers.insert(event.sender, seq);
            }
            return Ok(());
        }
        if !std::ptr::eq(event.interface, &device::INTERFACE) {
            return Ok(());
        }
        match event.opcode {
            device::evt::DATA_OFFER => {
                tally.offers += 1;
                self.offers.insert(word, 0);
            }
            device::evt::SELECTION => {
                let Some(d) = self.devices.iter_mut().find(|d| d.id == event.sender) else {
                    return Ok(());
                };
                let old = std::mem::replace(&mut d.current, word);
                if word != 0 {
                    d.seq = self.offers.get(&word).copied().unwrap_or(d.seq);
                }
                if old != 0 && old != word {
                    self.destroy_offer(old)?;
                }
            }
            device::evt::PRIMARY_SELECTION if word != 0 => self.destroy_offer(word)?,
            _ => {}
        }
        Ok(())
    }

    fn destroy_offer(&mut self, id: u32) -> Result<(), String> {
        self.offers.remove(&id);
        self.client.request(id, offer::req::DESTROY, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_through_mime_types() {
        assert_eq!(seq_of(&mime_for(42)), Some(42));
        assert_eq!(mime_for(1).len(), mime_for(9_999_999_999).len());
        assert_eq!(seq_of("text/plain"), None);
        assert_eq!(parse_wait("wait 7"), Ok(Some(7)));
        assert!(parse_wait("stop").is_err());
    }
}
