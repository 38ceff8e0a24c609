//! Measurements 1 and 2: the kernel's limit, and `wl_display.sync` round
//! trips against each server.
//!
//! What it is: the raw ping-pong is a side of the round-trip measurement
//! itself, interleaved with the Wayland sides round by round, so that the
//! "ratio to the raw limit" compares runs made in the same minutes. The
//! `SCM_RIGHTS` stream is measured on its own as the reference for fd
//! passing.
//!
//! Every Wayland side uses the same wayland-rs client code, except the last,
//! which is waypass's own client library (`Session::roundtrip`) against
//! waypass-server.
//!
//! What it is not: the brokered-channel or file-passing measurements (5, 6),
//! which need the broker extension (see `measure_broker`).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use waypass_client::Session;

use crate::process::{RawPeer, ServerProcess};
use crate::procfs::cpu_time;
use crate::raw;
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{Run, Series};
use crate::wl_client::SyncClient;

/// Who does the round trips of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTripSide {
    /// 8-byte socketpair ping-pong between two processes.
    Raw,
    /// The wayland-rs client against a server.
    WaylandRsClient(ServerKind),
    /// waypass's own client against waypass-server.
    OurClient,
}

impl RoundTripSide {
    /// The name used in the report.
    pub fn label(self) -> String {
        match self {
            RoundTripSide::Raw => "raw socketpair ping-pong, 8 bytes".to_string(),
            RoundTripSide::WaylandRsClient(kind) => {
                format!("wayland-rs client → {}", kind.label())
            }
            RoundTripSide::OurClient => "waypass client → waypass-server".to_string(),
        }
    }
}

/// The results of measurements 1 and 2.
#[derive(Debug, Clone)]
pub struct WireResults {
    /// Each round-trip side and its runs (or why it has none).
    pub round_trips: Vec<(RoundTripSide, Result<Series, String>)>,
    /// The `SCM_RIGHTS` stream, one fd per message.
    pub fd_stream: Result<Series, String>,
}

impl WireResults {
    /// The runs of one round-trip side, if it was measured.
    pub fn side(&self, side: RoundTripSide) -> Option<&Series> {
        self.round_trips
            .iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, outcome)| outcome.as_ref().ok())
    }
}

enum Target {
    Raw(RawPeer),
    Wayland(ServerProcess, SyncClient),
    Ours(ServerProcess, Box<Session>),
}

fn start_sync(servers: &ServerSet, kind: ServerKind) -> Result<Target, String> {
    let server = servers.start(kind)?;
    let client = SyncClient::connect(server.socket()).map_err(|e| format!("failed: {e}"))?;
    Ok(Target::Wayland(server, client))
}

fn start_our_client(servers: &ServerSet) -> Result<Target, String> {
    let server = servers.start(ServerKind::Ours)?;
    let session = Session::connect_path(server.socket()).map_err(|e| format!("failed: {e}"))?;
    Ok(Target::Ours(server, Box::new(session)))
}

/// Runs measurements 1 and 2.
pub fn measure(plan: &Plan, servers: &ServerSet) -> WireResults {
    let mut order = vec![RoundTripSide::Raw];
    order.extend(ServerKind::ALL.map(RoundTripSide::WaylandRsClient));
    order.push(RoundTripSide::OurClient);
    let mut sides: Vec<Side<Target>> = order
        .iter()
        .map(|&side| {
            let setup = match side {
                RoundTripSide::Raw => RawPeer::start("peer-echo")
                    .map(Target::Raw)
                    .map_err(|e| format!("failed: {e}")),
                RoundTripSide::WaylandRsClient(kind) => start_sync(servers, kind),
                RoundTripSide::OurClient => start_our_client(servers),
            };
            Side::from_setup(side.label(), setup)
        })
        .collect();
    interleave(
        "round trips",
        &mut sides,
        plan.warmup,
        plan.runs,
        |target| round_trip_run(target, plan),
    );
    let round_trips = order
        .into_iter()
        .zip(&sides)
        .map(|(side, s)| (side, s.outcome()))
        .collect();
    WireResults {
        round_trips,
        fd_stream: measure_fd_stream(plan),
    }
}

fn round_trip_run(target: &mut Target, plan: &Plan) -> Result<Run, String> {
    match target {
        Target::Raw(peer) => {
            let wall = raw::ping_pong(&mut peer.stream, plan.ping_pongs)
                .map_err(|e| format!("ping-pong: {e}"))?;
            Ok(Run {
                ops: plan.ping_pongs,
                wall,
                server_cpu: None,
            })
        }
        Target::Wayland(server, client) => {
            server_run(server, plan.syncs, || client.round_trips(plan.syncs))
        }
        Target::Ours(server, session) => server_run(server, plan.syncs, || {
            let start = Instant::now();
            for _ in 0..plan.syncs {
                session.roundtrip()?;
            }
            Ok::<_, waypass_client::SessionError>(start.elapsed())
        }),
    }
}

/// Times `ops` operations done by `work`, with the server's CPU time.
pub fn server_run<E: std::fmt::Display>(
    server: &ServerProcess,
    ops: u64,
    work: impl FnOnce() -> Result<Duration, E>,
) -> Result<Run, String> {
    let before = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    let wall = work().map_err(|e| e.to_string())?;
    let after = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    Ok(Run {
        ops,
        wall,
        server_cpu: Some(after.saturating_sub(before)),
    })
}

fn measure_fd_stream(plan: &Plan) -> Result<Series, String> {
    let file = memfd::MemfdOptions::default()
        .create("bench-passed-fd")
        .map_err(|e| format!("failed: memfd_create: {e}"))?;
    let peer = RawPeer::start("peer-fd-sink").map_err(|e| format!("failed: {e}"));
    let mut sides = [Side::from_setup("SCM_RIGHTS stream", peer)];
    interleave("fd stream", &mut sides, plan.warmup, plan.runs, |peer| {
        let wall: Duration = raw::send_fds(&mut peer.stream, file.as_file().as_fd(), plan.fds)
            .map_err(|e| format!("fd stream: {e}"))?;
        Ok(Run {
            ops: plan.fds,
            wall,
            server_cpu: None,
        })
    });
    sides[0].outcome()
}
