//! The clipboard's fan-out: what a burst of selection changes by one
//! client costs the server, and a good client waiting on it, with 1,000
//! and 10,000 data-control devices connected; waypass-server against
//! sway 1.7 headless (wlroots tells every device of every change).
//!
//! What it is: per server and device count, one server, one device farm
//! (`device_farm`, a separate process reading everything and destroying
//! each replaced offer), one copier and one good client in the bench. A
//! round: the copier queues N changes (each a new source: create, offer
//! one MIME type, `set_selection`, destroy the one before) and writes them
//! at once; the good client at once sends `wl_display.sync` and times its
//! `done` (the stall); then the bench waits until every device has been
//! told of the last change. The server's CPU time from before the write
//! to that moment, read each time once the server is at rest (so the
//! destroys of replaced offers count too), is the burst's cost. The farm
//! counts the offers its devices got. What it is not: a measure of how fast devices learn (they
//! only need the latest selection).
//!
//! # Implementation notes
//!
//! - Devices are 16 per connection on both servers: waypass-server allows
//!   no more per client (`--limit data-devices`), and sway gets the same
//!   spread for a like-for-like comparison.
//! - A cell (server, devices, burst) runs the warm-up and measured rounds
//!   of the plan, but stops recording once it has spent its time budget
//!   (at least one recorded round): sway's largest cells take seconds per
//!   round. The report gives each cell's round count.
//! - The copier reads what it was told (its own device's offers, its
//!   sources' `cancelled`) after each round, outside the measured window.
//! - wlroots (libwayland before 1.23) closes a client whose socket stays
//!   full: a farm that falls behind a long burst loses devices. The round
//!   in which that happens is recorded with the count, measures the server
//!   only until the devices still connected were told, and ends the
//!   session: its later cells say why they were not measured. The farm
//!   runs at the bench's priority, so that it falls behind as rarely as
//!   this machine allows.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use waypass_protocol::protocols::data_control::wlr::{
    zwlr_data_control_device_v1 as device, zwlr_data_control_manager_v1 as manager,
    zwlr_data_control_offer_v1 as offer, zwlr_data_control_source_v1 as source,
};
use waypass_protocol::protocols::wayland::wl_seat;
use waypass_protocol::Arg;

use crate::device_farm::mime_for;
use crate::line_peer::{LinePeer, Priority};
use crate::procfs;
use crate::raw_wayland::RawClient;
use crate::runner::Plan;
use crate::servers::{ServerKind, ServerSet};
use crate::stats::median;
use crate::wire_env::Pinning;
use crate::wl_client::SyncClient;
use waypass_test_support::sway::Sway;

/// Devices per farm connection (waypass-server's default limit).
pub const DEVICES_PER_CONNECTION: usize = 16;
/// How long the server may take to come to rest around a burst.
const REST_PATIENCE: Duration = Duration::from_secs(5);
/// How long the farm may take to connect, or to hear of a burst.
const FARM_PATIENCE: Duration = Duration::from_secs(120);

/// One measured round.
#[derive(Debug, Clone, Copy)]
pub struct BurstSample {
    /// The server's CPU time (user + system) for the burst.
    pub cpu: Duration,
    /// The good client's `sync` sent just after the burst, to its `done`.
    pub stall: Duration,
    /// Offers the farm's devices received.
    pub offers: u64,
    /// Farm devices still connected at the end.
    pub live: u64,
    /// Farm connections the server had closed by the end.
    pub closed: u64,
}

/// One cell: a server, a device count, a burst length.
pub struct BurstCell {
    /// The server's label.
    pub server: &'static str,
    /// Devices connected.
    pub devices: u64,
    /// Changes per burst.
    pub burst: u64,
    /// The recorded rounds, or why there are none.
    pub samples: Result<Vec<BurstSample>, String>,
}

impl BurstCell {
    /// Median server CPU per burst, in seconds.
    pub fn cpu(&self) -> Option<f64> {
        self.figure(|s| s.cpu.as_secs_f64())
    }

    /// Median stall, in seconds.
    pub fn stall(&self) -> Option<f64> {
        self.figure(|s| s.stall.as_secs_f64())
    }

    /// Median offers per connected device per burst.
    pub fn offers_per_device(&self) -> Option<f64> {
        self.figure(|s| s.offers as f64 / s.live.max(1) as f64)
    }

    /// Whether the server closed device connections during the cell.
    pub fn was_cut(&self) -> bool {
        self.samples
            .as_ref()
            .is_ok_and(|s| s.iter().any(|s| s.closed > 0))
    }

    fn figure(&self, f: impl Fn(&BurstSample) -> f64) -> Option<f64> {
        let samples = self.samples.as_ref().ok()?;
        Some(median(samples.iter().map(f).collect()))
    }
}

/// The label of the sway side.
pub const SWAY: &str = "sway 1.7 headless";
/// The label of our side.
pub const OURS: &str = "waypass-server";

/// Runs the measurement: every cell of both servers.
pub fn measure(plan: &Plan, servers: &ServerSet) -> Vec<BurstCell> {
    let pinning = Pinning::new();
    let mut cells = Vec::new();
    for &devices in &plan.fanout_devices {
        for server in [OURS, SWAY] {
            let mut session = Session::start(server, servers, devices, pinning.as_ref());
            for &burst in &plan.fanout_bursts {
                let samples = match &mut session {
                    Ok(session) => session
                        .cell(plan, burst)
                        .map_err(|e| format!("failed: {e}")),
                    Err(why) => Err(why.clone()),
                };
                if let Err(why) = &samples {
                    log::warn!("fan-out: {server} @ {devices} devices, burst {burst}: {why}");
                    // Its state is unknown now: the next cells say why.
                    session = Err(why.clone());
                }
                if let Some(closed) = session.as_ref().ok().map(|s| s.closed).filter(|&n| n > 0) {
                    log::warn!("fan-out: {server} closed {closed} device connections");
                    session = Err(format!(
                        "not measured: {server} had closed {closed} device connections \
                         in a shorter burst"
                    ));
                }
                cells.push(BurstCell {
                    server,
                    devices,
                    burst,
                    samples,
                });
            }
        }
    }
    cells
}

/// The server under test, whichever it is.
enum Host {
    Ours(crate::process::ServerProcess),
    Sway(Sway),
}

impl Host {
    fn pid(&self) -> u32 {
        match self {
            Host::Ours(s) => s.pid(),
            Host::Sway(s) => s.pid(),
        }
    }

    fn socket(&self) -> &Path {
        match self {
            Host::Ours(s) => s.socket(),
            Host::Sway(s) => &s.socket,
        }
    }
}

/// One server with its farm, copier and good client.
struct Session {
    // Dropped first: the farm and the clients before their server.
    farm: LinePeer,
    copier: Copier,
    good: SyncClient,
    host: Host,
    devices: u64,
    /// Device connections the server has closed (the farm could not read
    /// fast enough): the session measures no more.
    closed: u64,
}

impl Session {
    fn start(
        server: &'static str,
        servers: &ServerSet,
        devices: u64,
        pinning: Option<&Pinning>,
    ) -> Result<Session, String> {
        let host = if server == OURS {
            Host::Ours(servers.start(ServerKind::Ours)?)
        } else {
            Host::Sway(Sway::start()?)
        };
        if let Some(p) = pinning {
            p.pin_server(host.pid());
        }
        log::info!("fan-out: {server}: connecting {devices} devices");
        let args = farm_args(host.socket(), devices);
        // At the bench's priority: a farm that falls behind a flood is cut off
        // by wlroots, and the figures would measure the farm.
        let mut farm = LinePeer::start("device farm", &args, Priority::Same)?;
        farm.expect("ready", FARM_PATIENCE)?;
        let copier = Copier::connect(host.socket())?;
        let good = SyncClient::connect(host.socket()).map_err(|e| format!("good client: {e}"))?;
        Ok(Session {
            farm,
            copier,
            good,
            host,
            devices,
            closed: 0,
        })
    }

    /// The rounds of one burst length, within the cell's time budget.
    fn cell(&mut self, plan: &Plan, burst: u64) -> Result<Vec<BurstSample>, String> {
        let started = Instant::now();
        let mut samples = Vec::new();
        for round in 0..plan.warmup + plan.runs {
            log::info!(
                "fan-out: {} devices, burst {burst}: round {}",
                self.devices,
                round + 1
            );
            let sample = self.round(burst)?;
            let spent = started.elapsed() > plan.fanout_budget;
            // A warm-up round that alone took the budget is recorded: a
            // round that long has nothing left to warm up. So is the round
            // in which the server closed devices: it is the cell's last.
            let cut = sample.closed > 0;
            if round >= plan.warmup || spent || cut {
                samples.push(sample);
            }
            if cut {
                self.closed = sample.closed;
                break;
            }
            if spent {
                break;
            }
        }
        Ok(samples)
    }

    fn round(&mut self, burst: u64) -> Result<BurstSample, String> {
        let last = self.copier.queue_burst(burst)?;
        let pid = self.host.pid();
        let before = procfs::cpu_time_at_rest(pid, REST_PATIENCE).map_err(|e| e.to_string())?;
        self.copier.client.flush_all()?;
        let stall = self
            .good
            .round_trips(1)
            .map_err(|e| format!("good client: {e}"))?;
        self.farm.send(&format!("wait {last}"))?;
        let done = self.farm.expect("done", FARM_PATIENCE)?;
        // At rest: the destroys of the replaced offers are the burst's too.
        let after = procfs::cpu_time_at_rest(pid, REST_PATIENCE).map_err(|e| e.to_string())?;
        self.copier.catch_up()?;
        let words: Vec<u64> = done
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [offers, live, closed] = words[..] else {
            return Err(format!("the farm said {done:?}"));
        };
        let sample = BurstSample {
            cpu: after.saturating_sub(before),
            stall,
            offers,
            live,
            closed,
        };
        log::debug!("fan-out: burst of {burst}: {sample:?}");
        Ok(sample)
    }
}

/// The client that changes the selection.
struct Copier {
    client: RawClient,
    manager: u32,
    device: u32,
    /// The source of the selection now (destroyed by the next change).
    current: Option<u32>,
    seq: u64,
}

impl Copier {
    fn connect(socket: &Path) -> Result<Copier, String> {
        let mut client = RawClient::connect(socket).map_err(|e| format!("copier: {e}"))?;
        let seat = client.bind(&wl_seat::INTERFACE, 1)?;
        let manager = client.bind(&manager::INTERFACE, 2)?;
        let device = client.create(&device::INTERFACE);
        let req = manager::req::GET_DATA_DEVICE;
        client.request(manager, req, &[Arg::NewId(device), Arg::Object(seat)])?;
        let mut copier = Copier {
            client,
            manager,
            device,
            current: None,
            seq: 0,
        };
        copier.catch_up()?;
        Ok(copier)
    }

    /// Queues `n` changes; the sequence number of the last.
    fn queue_burst(&mut self, n: u64) -> Result<u64, String> {
        for _ in 0..n {
            self.seq += 1;
            let mime = std::ffi::CString::new(mime_for(self.seq)).map_err(|e| e.to_string())?;
            let c = &mut self.client;
            let new = c.create(&source::INTERFACE);
            c.request(
                self.manager,
                manager::req::CREATE_DATA_SOURCE,
                &[Arg::NewId(new)],
            )?;
            c.request(new, source::req::OFFER, &[Arg::Str(Some(&mime))])?;
            c.request(self.device, device::req::SET_SELECTION, &[Arg::Object(new)])?;
            if let Some(old) = self.current.replace(new) {
                c.request(old, source::req::DESTROY, &[])?;
            }
        }
        Ok(self.seq)
    }

    /// Reads what it was told, destroying every offer it got.
    fn catch_up(&mut self) -> Result<(), String> {
        let mut offers = Vec::new();
        self.client.roundtrip(|_, event| {
            let is_device = std::ptr::eq(event.interface, &device::INTERFACE);
            if is_device && event.opcode == device::evt::DATA_OFFER {
                offers.push(event.words[0]);
            }
        })?;
        for id in offers {
            self.client.request(id, offer::req::DESTROY, &[])?;
        }
        self.client.flush_all()
    }
}

/// `peer-devices`: see [`crate::device_farm`].
pub fn farm_args(socket: &Path, devices: u64) -> Vec<OsString> {
    vec![
        "peer-devices".into(),
        "--socket".into(),
        socket.into(),
        "--devices".into(),
        devices.to_string().into(),
        "--per-connection".into(),
        DEVICES_PER_CONNECTION.to_string().into(),
    ]
}
