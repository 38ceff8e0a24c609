//! Measurements 1 and 2: the kernel's limit, and `wl_display.sync` round
//! trips against each server.
//!
//! What it is: the raw ping-pong is a side of the round-trip measurement
//! itself, interleaved with the Wayland sides round by round, so that the
//! "ratio to the raw limit" compares runs made in the same minutes. The
//! `SCM_RIGHTS` stream is measured on its own as the reference for fd
//! passing.
//!
//! Every server (waypass-server, the wayland-rs and libwayland peers, and
//! the bare epoll server of issue 14) is measured with two clients:
//! libwayland-client's `wl_display_roundtrip` (C) and wayland-rs. waypass's
//! own client (`Session::roundtrip`) is measured against waypass-server and
//! against the bare epoll server: the latter is its limit. Where the bench
//! may use two CPUs, the client and the servers run on different ones, and
//! runs with steal time on the servers' CPU are discarded (`wire_env`).
//! After the measured runs, each server's syscalls per round trip are
//! counted with `strace -c` when strace is installed, and its user-space
//! instructions per round trip with callgrind when valgrind is (each server
//! started again under valgrind, see `callgrind`).
//!
//! What it is not: the brokered-channel or file-passing measurements (5, 6),
//! which need the broker extension (see `measure_broker`).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use waypass_client::Session;

use crate::c_client::CClient;
use crate::callgrind::{instructions_per_round_trip, valgrind_present};
use crate::process::{RawPeer, ServerProcess};
use crate::procfs::cpu_time;
use crate::raw;
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{Run, Series};
use crate::wire_env::{count_syscalls, steal_ticks, strace_present, Pinning};
use crate::wl_client::SyncClient;

/// The servers of the round-trip measurement, in report order.
pub const ROUND_TRIP_SERVERS: [ServerKind; 5] = [
    ServerKind::Ours,
    ServerKind::Baseline,
    ServerKind::WaylandRs,
    ServerKind::Libwayland,
    ServerKind::Bare,
];

/// Who does the round trips of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTripSide {
    /// 8-byte socketpair ping-pong between two processes.
    Raw,
    /// libwayland-client's `wl_display_roundtrip` against a server.
    CClient(ServerKind),
    /// The wayland-rs client against a server.
    WaylandRsClient(ServerKind),
    /// waypass's own client (`Session::roundtrip`) against a server
    /// (waypass-server, or the bare epoll server).
    OurClient(ServerKind),
}

impl RoundTripSide {
    /// The name used in the report.
    pub fn label(self) -> String {
        match self {
            RoundTripSide::Raw => "raw socketpair ping-pong, 8 bytes".to_string(),
            RoundTripSide::CClient(kind) => format!("libwayland C client → {}", kind.label()),
            RoundTripSide::WaylandRsClient(kind) => {
                format!("wayland-rs client → {}", kind.label())
            }
            RoundTripSide::OurClient(kind) => format!("waypass client → {}", kind.label()),
        }
    }

    /// Every side, in report order.
    pub fn all() -> Vec<RoundTripSide> {
        let mut order = vec![RoundTripSide::Raw];
        order.extend(ROUND_TRIP_SERVERS.map(RoundTripSide::CClient));
        order.extend(ROUND_TRIP_SERVERS.map(RoundTripSide::WaylandRsClient));
        order.push(RoundTripSide::OurClient(ServerKind::Ours));
        order.push(RoundTripSide::OurClient(ServerKind::Bare));
        order
    }
}

/// The results of measurements 1 and 2.
#[derive(Debug, Clone)]
pub struct WireResults {
    /// Each round-trip side and its kept runs (or why it has none).
    pub round_trips: Vec<(RoundTripSide, Result<Series, String>)>,
    /// The `SCM_RIGHTS` stream, one fd per message.
    pub fd_stream: Result<Series, String>,
    /// How the client and the servers were placed on the CPUs.
    pub pinning: String,
    /// Recorded round-trip runs kept, and made (runs with steal time on the
    /// server's CPU are discarded).
    pub kept: (usize, usize),
    /// Syscalls per round trip each server made, counted with `strace -c`
    /// (libwayland C client, or why not counted).
    pub syscalls: Vec<(ServerKind, Result<f64, String>)>,
    /// User-space instructions per round trip each server executed, counted
    /// by callgrind (libwayland C client, or why not counted).
    pub instructions: Vec<(ServerKind, Result<f64, String>)>,
}

impl WireResults {
    /// The runs of one round-trip side, if it was measured.
    pub fn side(&self, side: RoundTripSide) -> Option<&Series> {
        self.round_trips
            .iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, outcome)| outcome.as_ref().ok())
    }

    /// The syscalls per round trip of one server, if they were counted.
    pub fn syscalls_of(&self, kind: ServerKind) -> Result<f64, String> {
        self.syscalls
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(Err("not counted".to_string()), |(_, r)| r.clone())
    }

    /// The user-space instructions per round trip of one server, if they
    /// were counted.
    pub fn instructions_of(&self, kind: ServerKind) -> Result<f64, String> {
        self.instructions
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(Err("not counted".to_string()), |(_, r)| r.clone())
    }
}

enum Target {
    Raw(RawPeer),
    C(ServerProcess, CClient),
    Wayland(ServerProcess, SyncClient),
    Ours(ServerProcess, Box<Session>),
}

impl Target {
    fn server_pid(&self) -> u32 {
        match self {
            Target::Raw(peer) => peer.pid(),
            Target::C(s, _) | Target::Wayland(s, _) | Target::Ours(s, _) => s.pid(),
        }
    }
}

fn start(servers: &ServerSet, side: RoundTripSide) -> Result<Target, String> {
    let failed = |e: &dyn std::fmt::Display| format!("failed: {e}");
    Ok(match side {
        RoundTripSide::Raw => Target::Raw(RawPeer::start("peer-echo").map_err(|e| failed(&e))?),
        RoundTripSide::CClient(kind) => {
            let server = servers.start(kind)?;
            let client = CClient::connect(server.socket()).map_err(|e| failed(&e))?;
            Target::C(server, client)
        }
        RoundTripSide::WaylandRsClient(kind) => {
            let server = servers.start(kind)?;
            let client = SyncClient::connect(server.socket()).map_err(|e| failed(&e))?;
            Target::Wayland(server, client)
        }
        RoundTripSide::OurClient(kind) => {
            let server = servers.start(kind)?;
            let session = Session::connect_path(server.socket()).map_err(|e| failed(&e))?;
            Target::Ours(server, Box::new(session))
        }
    })
}

/// A client of the `peer-sync` subcommand.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ClientKind {
    /// libwayland-client's `wl_display_roundtrip`.
    C,
    /// wayland-rs, pure-Rust backend.
    WaylandRs,
    /// waypass's own `Session::roundtrip`.
    Ours,
}

/// `count` round trips by one client against the server at `socket`; prints
/// the rate.
pub fn sync_client(
    client: ClientKind,
    socket: &std::path::Path,
    count: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let wall = match client {
        ClientKind::C => CClient::connect(socket)?.round_trips(count)?,
        ClientKind::WaylandRs => SyncClient::connect(socket)?.round_trips(count)?,
        ClientKind::Ours => {
            let mut session = Session::connect_path(socket)?;
            let start = Instant::now();
            for _ in 0..count {
                session.roundtrip()?;
            }
            start.elapsed()
        }
    };
    println!("{:.0} round trips/s", count as f64 / wall.as_secs_f64());
    Ok(())
}

/// Runs measurements 1 and 2.
pub fn measure(plan: &Plan, servers: &ServerSet) -> WireResults {
    let pinning = Pinning::new();
    let order = RoundTripSide::all();
    let mut sides: Vec<Side<Target, Option<Run>>> = order
        .iter()
        .map(|&side| {
            let setup = start(servers, side);
            if let (Ok(target), Some(pinning)) = (&setup, &pinning) {
                pinning.pin_server(target.server_pid());
            }
            Side::from_setup(side.label(), setup)
        })
        .collect();
    let steal_cpu = pinning.as_ref().map(|p| p.server_cpu);
    interleave(
        "round trips",
        &mut sides,
        plan.warmup,
        plan.runs,
        |target| {
            let before = steal_cpu.and_then(steal_ticks);
            let run = round_trip_run(target, plan)?;
            let after = steal_cpu.and_then(steal_ticks);
            let stolen = before.zip(after).is_some_and(|(b, a)| a > b);
            Ok((!stolen).then_some(run))
        },
    );
    let (mut kept, mut made) = (0, 0);
    let round_trips = order
        .iter()
        .copied()
        .zip(&sides)
        .map(|(side, s)| {
            let outcome = s.results().and_then(|runs| {
                made += runs.len();
                let runs: Vec<Run> = runs.into_iter().flatten().collect();
                kept += runs.len();
                if runs.is_empty() {
                    return Err("failed: every run had steal time".to_string());
                }
                Ok(Series { runs })
            });
            (side, outcome)
        })
        .collect();
    let syscalls = count_server_syscalls(plan, &order, &mut sides);
    drop(sides);
    let instructions = count_server_instructions(plan, servers, pinning.as_ref());
    let pinning_text = Pinning::describe(pinning.as_ref());
    drop(pinning);
    WireResults {
        round_trips,
        fd_stream: measure_fd_stream(plan),
        pinning: pinning_text,
        kept: (kept, made),
        syscalls,
        instructions,
    }
}

/// User-space instructions per round trip of each server, counted by
/// callgrind: each server started afresh under valgrind, `plan.syncs`
/// counted round trips after `plan.callgrind_warmups` uncounted ones, with
/// the libwayland C client.
fn count_server_instructions(
    plan: &Plan,
    servers: &ServerSet,
    pinning: Option<&Pinning>,
) -> Vec<(ServerKind, Result<f64, String>)> {
    let present = valgrind_present();
    ROUND_TRIP_SERVERS
        .iter()
        .map(|&kind| {
            if !present {
                return (kind, Err("not counted: valgrind is not installed".into()));
            }
            log::info!("callgrind: {}", kind.label());
            let counted = instructions_per_round_trip(
                servers,
                kind,
                pinning,
                plan.callgrind_warmups,
                plan.syncs,
            );
            (kind, counted)
        })
        .collect()
}

/// Syscalls per round trip of each server, with the libwayland C client
/// (the wayland-rs client where the C side could not run): a pass of
/// `plan.syncs` round trips made after the measured runs, with strace
/// attached, so that tracing slows no measured run.
fn count_server_syscalls(
    plan: &Plan,
    order: &[RoundTripSide],
    sides: &mut [Side<Target, Option<Run>>],
) -> Vec<(ServerKind, Result<f64, String>)> {
    let present = strace_present();
    ROUND_TRIP_SERVERS
        .iter()
        .map(|&kind| {
            if !present {
                return (kind, Err("not counted: strace is not installed".into()));
            }
            let candidates = [
                RoundTripSide::CClient(kind),
                RoundTripSide::WaylandRsClient(kind),
            ];
            let index = candidates.iter().find_map(|want| {
                let i = order.iter().position(|s| s == want)?;
                sides[i].state_mut().is_some().then_some(i)
            });
            let Some(target) = index.and_then(|i| sides[i].state_mut()) else {
                return (kind, Err("not counted: the server did not run".into()));
            };
            let pid = target.server_pid();
            let counted = count_syscalls(pid, || round_trip_run(target, plan).map(drop));
            (kind, counted.map(|calls| calls as f64 / plan.syncs as f64))
        })
        .collect()
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
        Target::C(server, client) => {
            server_run(server, plan.syncs, || client.round_trips(plan.syncs))
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
