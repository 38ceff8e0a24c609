//! The hostile clients of the attack measurement, each a peer process
//! (`peer-attacker --attack KIND`) that sets its attack up, prints
//! `attacking DETAIL`, and keeps it going until it is killed; it prints
//! `lost REASON` and exits if the server cuts it off.
//!
//! What it is: five attacks from the issue "What one client does costs
//! that client alone" (numbered as there):
//!
//! - 1, [`Attack::NullSelections`]: one connection with a device writes
//!   341 × `set_selection(null)` (4,092 bytes) per write, without end.
//! - 2, [`Attack::SelectionChanges`]: 6 connections keep their sockets full
//!   of selection changes (create a source, offer a type, `set_selection`,
//!   destroy the one before): the server reads 4 KiB of changes from each
//!   per wakeup.
//! - 4, [`Attack::UnreadChannels`]: N owners register a name each; a
//!   requester opens one channel to each; the owners never read.
//! - 8, [`Attack::UnreadOutput`]: N connections that never read each ask
//!   for the kernel's socket buffer plus ~80 KiB of `wl_registry` globals,
//!   so the server holds ~80 KiB of output for each.
//! - 7, [`Attack::NewIds`]: one connection sends `sync`s with ever-new ids
//!   (341 per write) and reads the answers, so that it is never cut off
//!   for not reading.
//!
//! What it is not: the measurement (`measure_attacks` times the good
//! client and reads the server's memory).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::broker::{
    waypass_broker_v1 as broker, waypass_connection_v1 as connection, waypass_name_v1 as name,
};
use waypass_protocol::protocols::data_control::wlr::{
    zwlr_data_control_device_v1 as device, zwlr_data_control_manager_v1 as manager,
    zwlr_data_control_source_v1 as source,
};
use waypass_protocol::protocols::wayland::{wl_display, wl_registry, wl_seat};
use waypass_protocol::Arg;

use crate::raw_wayland::RawClient;

/// The attacks, named as on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attack {
    /// 1: 341 × `set_selection(null)` per write.
    NullSelections,
    /// 2: 6 connections × a socket full of selection changes.
    SelectionChanges,
    /// 4: owners with one unread channel each.
    UnreadChannels,
    /// 8: connections that never read, each with ~80 KiB of output queued.
    UnreadOutput,
    /// 7: `sync` with ever-new ids.
    NewIds,
}

/// Requests per write in attacks 1 and 7: 341 × 12 bytes = 4,092.
const PER_WRITE: u32 = 341;
/// The output attack 8 leaves queued in the server per connection.
const OUTPUT_KIB: usize = 80;
/// The MIME type of attack 2's sources.
const MIME: &std::ffi::CStr = c"text/plain;charset=utf-8";

/// Runs `attack` against the server at `socket` until killed.
pub fn run(attack: Attack, socket: &Path, count: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut streams = Vec::new();
    let detail = match attack {
        Attack::NullSelections => {
            let (client, _, device) = with_device(socket)?;
            let pattern = Pattern::repeat(&null_selection(device), PER_WRITE);
            streams.push(Flood::new(client, pattern)?);
            format!("{PER_WRITE} set_selection(null) per write")
        }
        Attack::SelectionChanges => {
            let mut changes = 0;
            for _ in 0..count {
                let (mut client, manager, device) = with_device(socket)?;
                let ids = [
                    client.create(&source::INTERFACE),
                    client.create(&source::INTERFACE),
                ];
                let (primer, pattern, per_write) = Pattern::changes(manager, device, ids);
                changes = per_write;
                let mut flood = Flood::new(client, pattern)?;
                flood.pending = primer;
                streams.push(flood);
            }
            format!("{count} connections, each writing {changes} changes per 4 KiB")
        }
        Attack::UnreadChannels => {
            let owners = unread_channels(socket, count)?;
            report(&format!("{} owners", owners.len()))?;
            idle()
        }
        Attack::UnreadOutput => {
            let (clients, queued_kib) = unread_output(socket, count)?;
            report(&format!(
                "{} connections, {queued_kib} KiB queued in the server each (median)",
                clients.len()
            ))?;
            idle()
        }
        Attack::NewIds => {
            let client = RawClient::connect(socket)?;
            let next = client.next_unused_id();
            streams.push(Flood::new(client, Pattern::NewIds { next })?);
            format!("{PER_WRITE} syncs per write, each with a new id")
        }
    };
    report(&detail)?;
    flood(&mut streams)
}

fn report(detail: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "attacking {detail}")?;
    out.flush()
}

/// Holds what was set up until the process is killed.
fn idle() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A connection with a seat, a wlr data-control manager and one device:
/// the client, the manager and the device.
fn with_device(socket: &Path) -> Result<(RawClient, u32, u32), String> {
    let mut client = RawClient::connect(socket)?;
    let seat = client.bind(&wl_seat::INTERFACE, 1)?;
    let manager = client.bind(&manager::INTERFACE, 2)?;
    let device = client.create(&device::INTERFACE);
    let req = manager::req::GET_DATA_DEVICE;
    client.request(manager, req, &[Arg::NewId(device), Arg::Object(seat)])?;
    client.roundtrip(|_, _| {})?;
    Ok((client, manager, device))
}

/// One message's bytes: header and words.
fn message(sender: u32, opcode: u16, words: &[u32]) -> Vec<u8> {
    let size = 8 + 4 * words.len() as u32;
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&sender.to_ne_bytes());
    bytes.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
    for w in words {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    bytes
}

fn null_selection(device: u32) -> Vec<u8> {
    message(device, device::req::SET_SELECTION, &[0])
}

/// `offer(MIME)` on `source`.
fn offer(source: u32) -> Vec<u8> {
    let text = MIME.to_bytes_with_nul();
    let mut words = vec![text.len() as u32];
    let mut padded = text.to_vec();
    padded.resize(text.len().next_multiple_of(4), 0);
    words.extend(
        padded
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
    );
    message(source, source::req::OFFER, &words)
}

/// The bytes a flooding connection writes.
enum Pattern {
    /// The same block again and again.
    Repeat(Vec<u8>),
    /// `sync`s, each with a new id.
    NewIds { next: u32 },
}

impl Pattern {
    fn repeat(one: &[u8], times: u32) -> Pattern {
        Pattern::Repeat(one.repeat(times as usize))
    }

    /// Changes that alternate between two source ids, `a` made first:
    /// each creates one, offers a type, sets it, and destroys the other
    /// (which the server has freed by the time the next change makes it
    /// again). The primer sets `a`, so that each change has one to destroy.
    /// Also returns the changes per write.
    fn changes(manager: u32, device: u32, [a, b]: [u32; 2]) -> (Vec<u8>, Pattern, usize) {
        let set = |new: u32| {
            let mut bytes = message(manager, manager::req::CREATE_DATA_SOURCE, &[new]);
            bytes.extend(offer(new));
            bytes.extend(message(device, device::req::SET_SELECTION, &[new]));
            bytes
        };
        let mut pair = set(b);
        pair.extend(message(a, source::req::DESTROY, &[]));
        pair.extend(set(a));
        pair.extend(message(b, source::req::DESTROY, &[]));
        let per_write = (4096 / pair.len()).max(1);
        (
            set(a),
            Pattern::Repeat(pair.repeat(per_write)),
            2 * per_write,
        )
    }

    /// The bytes of one write into `buf`.
    fn next(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        match self {
            Pattern::Repeat(block) => buf.extend_from_slice(block),
            Pattern::NewIds { next } => {
                for _ in 0..PER_WRITE {
                    buf.extend(message(1, wl_display::req::SYNC, &[*next]));
                    *next += 1;
                }
            }
        }
    }
}

/// A connection writing its pattern as fast as the server reads it, and
/// reading (and dropping) everything it is sent.
struct Flood {
    client: RawClient,
    pattern: Pattern,
    pending: Vec<u8>,
    at: usize,
}

impl Flood {
    /// Writes what `client` has queued: from here on its socket is
    /// written and read raw.
    fn new(mut client: RawClient, pattern: Pattern) -> Result<Flood, String> {
        client.flush_all()?;
        Ok(Flood {
            client,
            pattern,
            pending: Vec::new(),
            at: 0,
        })
    }

    fn stream(&self) -> &UnixStream {
        self.client.stream()
    }
}

/// Floods on every stream until one is cut off.
fn flood(streams: &mut [Flood]) -> Result<(), Box<dyn std::error::Error>> {
    // The connections' sockets are non-blocking (`Connection::new`).
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let mut fds: Vec<PollFd> = streams
            .iter()
            .map(|f| PollFd::new(f.stream().as_fd(), PollFlags::POLLIN | PollFlags::POLLOUT))
            .collect();
        poll(&mut fds, PollTimeout::NONE)?;
        let ready: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        for (f, revents) in streams.iter_mut().zip(ready) {
            if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                // Read first: a flooder that does not read is cut off.
                loop {
                    match f.stream().read(&mut sink) {
                        Ok(0) => return lost("the server closed the connection"),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return lost(&e.to_string()),
                    }
                }
            }
            if revents.contains(PollFlags::POLLOUT) {
                if f.at == f.pending.len() {
                    f.pattern.next(&mut f.pending);
                    f.at = 0;
                }
                match f.stream().write(&f.pending[f.at..]) {
                    Ok(n) => f.at += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return lost(&e.to_string()),
                }
            }
        }
    }
}

fn lost(why: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = io::stdout().lock();
    writeln!(out, "lost {why}")?;
    out.flush()?;
    Ok(())
}

/// Attack 4's set-up: `count` owners, each with one channel it never reads.
fn unread_channels(socket: &Path, count: usize) -> Result<Vec<RawClient>, String> {
    const BATCH: usize = 50;
    let mut owners = Vec::with_capacity(count);
    let names: Vec<std::ffi::CString> = (0..count)
        .map(|i| std::ffi::CString::new(format!("bench-owner-{i}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for name in &names {
        let mut owner = RawClient::connect(socket)?;
        let broker = owner.bind(&broker::INTERFACE, 1)?;
        let id = owner.create(&name::INTERFACE);
        owner.request(
            broker,
            broker::req::REGISTER,
            &[Arg::NewId(id), Arg::Str(Some(name))],
        )?;
        let mut registered = false;
        owner
            .roundtrip(|_, e| registered |= e.sender == id && e.opcode == name::evt::REGISTERED)?;
        if !registered {
            return Err(format!(
                "owner {} of {count}: {name:?} was not registered",
                owners.len() + 1
            ));
        }
        owners.push(owner);
    }
    let mut requester = RawClient::connect(socket)?;
    let broker = requester.bind(&broker::INTERFACE, 1)?;
    for batch in names.chunks(BATCH) {
        let mut ids = Vec::new();
        for name in batch {
            let id = requester.create(&connection::INTERFACE);
            requester.request(
                broker,
                broker::req::CONNECT,
                &[Arg::NewId(id), Arg::Str(Some(name))],
            )?;
            ids.push(id);
        }
        let mut established = 0;
        // The requester's ends close as the events drop.
        requester.roundtrip(|_, e| {
            if std::ptr::eq(e.interface, &connection::INTERFACE)
                && e.opcode == connection::evt::ESTABLISHED
            {
                established += 1;
            }
        })?;
        if established != batch.len() {
            return Err(format!(
                "{established} of {} channels established",
                batch.len()
            ));
        }
        for id in ids {
            requester.request(id, connection::req::DESTROY, &[])?;
        }
    }
    requester.roundtrip(|_, _| {})?;
    Ok(owners)
}

/// Attack 8's set-up: `count` connections that never read, each with
/// about [`OUTPUT_KIB`] KiB of output queued in the server. Returns them
/// and the median KiB the server holds for each (what was asked for, less
/// what waits in the connection's socket).
fn unread_output(socket: &Path, count: usize) -> Result<(Vec<RawClient>, usize), String> {
    let mut probe = RawClient::connect(socket)?;
    let per_registry: usize = probe
        .globals
        .iter()
        .map(|g| 8 + 4 + 4 + (g.interface.len() + 1).next_multiple_of(4) + 4)
        .sum();
    // What one socket holds: ask for far more than it can, let it settle.
    for _ in 0..(512 << 10) / per_registry.max(1) {
        let id = probe.create(&wl_registry::INTERFACE);
        probe.request(1, wl_display::req::GET_REGISTRY, &[Arg::NewId(id)])?;
    }
    probe.flush_all()?;
    let kernel = settled_unread(&[probe.stream().as_fd()])?;
    drop(probe);
    let requests = (kernel + OUTPUT_KIB * 1024).div_ceil(per_registry);
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let mut client = RawClient::connect(socket)?;
        for _ in 0..requests {
            let id = client.create(&wl_registry::INTERFACE);
            client.request(1, wl_display::req::GET_REGISTRY, &[Arg::NewId(id)])?;
        }
        client.flush_all()?;
        clients.push(client);
    }
    let fds: Vec<BorrowedFd> = clients.iter().map(|c| c.stream().as_fd()).collect();
    settled_unread(&fds)?;
    let mut queued: Vec<usize> = fds
        .iter()
        .map(|fd| unread_bytes(*fd).map(|k| (requests * per_registry).saturating_sub(k)))
        .collect::<Result<_, _>>()?;
    queued.sort_unstable();
    let median = queued.get(queued.len() / 2).copied().unwrap_or(0);
    Ok((clients, median / 1024))
}

/// Waits until the bytes waiting in these sockets stop growing (the
/// server has written all it will); the first socket's count.
fn settled_unread(fds: &[BorrowedFd]) -> Result<usize, String> {
    let started = Instant::now();
    let mut last = usize::MAX;
    let mut still = 0;
    while still < 5 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
        let total: usize = fds
            .iter()
            .map(|fd| unread_bytes(*fd))
            .sum::<Result<_, _>>()?;
        still = if total == last { still + 1 } else { 0 };
        last = total;
    }
    fds.first().map_or(Ok(0), |fd| unread_bytes(*fd))
}

// FIONREAD: the bytes waiting in a socket's receive queue (nix has a
// macro for the ioctl, no wrapper).
nix::ioctl_read_bad!(fionread, nix::libc::FIONREAD, nix::libc::c_int);

fn unread_bytes(fd: BorrowedFd) -> Result<usize, String> {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to
    // `n`, alive for the call; `fd` is a socket kept open by its borrow.
    unsafe { fionread(fd.as_raw_fd(), &mut n) }.map_err(|e| format!("FIONREAD: {e}"))?;
    Ok(usize::try_from(n).unwrap_or(0))
}
