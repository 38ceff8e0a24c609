//! Measurements 3 and 4: what a connecting client costs the server in time,
//! and what a connected client costs it in memory.
//!
//! What it is: (3) clients one after another, each connecting, binding the
//! seat, getting the keyboard and receiving the keymap fd, then
//! disconnecting — the server's CPU time and the wall time per client; (4)
//! a fresh server per run, one warm-up client, then N more clients held
//! open by the bench, and the server's RSS growth per client, plus the
//! number of distinct memfds (keymap copies) in its fds and mappings.
//!
//! What it is not: a test of the keymap's contents; the client checks only
//! that the announced size fits the file (see `wl_client`).

use crate::measure_wire::server_run;
use crate::process::ServerProcess;
use crate::procfs::{fd_usage, memfd_census, rss_kib};
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{median, Series};
use crate::wl_client::{ClientError, KeyboardClient};
use std::time::Instant;

/// The results of measurement 3, per server.
pub type ConnectResults = Vec<(ServerKind, Result<Series, String>)>;

/// Runs measurement 3 against every server.
pub fn measure_connect(plan: &Plan, servers: &ServerSet) -> ConnectResults {
    let mut sides: Vec<Side<ServerProcess>> = ServerKind::ALL
        .iter()
        .map(|&kind| Side::from_setup(kind.label(), servers.start(kind)))
        .collect();
    interleave(
        "connection cost",
        &mut sides,
        plan.warmup,
        plan.runs,
        |server| {
            server_run(server, plan.clients, || {
                let start = Instant::now();
                for _ in 0..plan.clients {
                    // Dropping the client disconnects it before the next one comes.
                    KeyboardClient::connect(server.socket())?;
                }
                Ok::<_, ClientError>(start.elapsed())
            })
        },
    );
    ServerKind::ALL
        .into_iter()
        .zip(&sides)
        .map(|(kind, side)| (kind, side.outcome()))
        .collect()
}

/// One memory run: a fresh server with `clients` held open.
#[derive(Debug, Clone)]
pub struct MemorySample {
    /// Server RSS with only the warm-up client connected.
    pub rss_before_kib: u64,
    /// Server RSS with the warm-up client and `clients` more connected.
    pub rss_after_kib: u64,
    /// Clients connected after the first reading.
    pub clients: u64,
    /// Distinct memfds in the server's fds and mappings, with their names.
    pub memfds: Vec<String>,
}

impl MemorySample {
    /// RSS growth per client, KiB.
    pub fn kib_per_client(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) / self.clients as f64
    }
}

/// Memory results for one server at one client count.
#[derive(Debug, Clone)]
pub struct MemoryResult {
    /// The server.
    pub kind: ServerKind,
    /// Clients held open.
    pub clients: u64,
    /// The runs, or why there are none.
    pub samples: Result<Vec<MemorySample>, String>,
}

impl MemoryResult {
    /// The median KiB per client over the runs.
    pub fn median_kib_per_client(&self) -> Option<f64> {
        let samples = self.samples.as_ref().ok()?;
        Some(median(
            samples.iter().map(MemorySample::kib_per_client).collect(),
        ))
    }

    /// The most keymap copies any run saw.
    pub fn keymap_copies(&self) -> Option<usize> {
        let samples = self.samples.as_ref().ok()?;
        samples.iter().map(|s| s.memfds.len()).max()
    }
}

/// Runs measurement 4: for each client count, `memory_runs` rounds, each
/// starting a fresh server per side.
pub fn measure_memory(plan: &Plan, servers: &ServerSet) -> Vec<MemoryResult> {
    let mut results = Vec::new();
    for &clients in &plan.memory_clients {
        let mut sides: Vec<Side<ServerKind, MemorySample>> = ServerKind::ALL
            .iter()
            .map(|&kind| match (kind, &servers.ours) {
                (ServerKind::Ours, Err(why)) => Side::unavailable(kind.label(), why.clone()),
                (ServerKind::Baseline, _) => match &servers.baseline {
                    Err(why) => Side::unavailable(kind.label(), why.clone()),
                    Ok(_) => Side::ready(kind.label(), kind),
                },
                _ => Side::ready(kind.label(), kind),
            })
            .collect();
        let what = format!("memory, {clients} clients");
        interleave(&what, &mut sides, 0, plan.memory_runs, |kind| {
            memory_run(servers, *kind, clients)
        });
        for (kind, side) in ServerKind::ALL.into_iter().zip(&sides) {
            results.push(MemoryResult {
                kind,
                clients,
                samples: side.results(),
            });
        }
    }
    results
}

fn memory_run(servers: &ServerSet, kind: ServerKind, clients: u64) -> Result<MemorySample, String> {
    let mut server = servers.start(kind)?;
    let connect = |server: &ServerProcess| -> Result<KeyboardClient, String> {
        KeyboardClient::connect(server.socket()).map_err(|e: ClientError| e.to_string())
    };
    let warm_up = connect(&server)?;
    let rss_before_kib = rss_kib(server.pid()).map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(clients as usize);
    for i in 0..clients {
        match connect(&server) {
            Ok(client) => held.push(client),
            Err(e) => {
                // Say why the server stopped taking clients, if it can tell.
                let mut server_side = match fd_usage(server.pid()) {
                    Ok((open, Some(limit))) if server.is_running() => {
                        format!("server holds {open} fds, limit {limit}")
                    }
                    _ => "server exited".to_string(),
                };
                let log = server.log_tail();
                if !log.is_empty() {
                    server_side.push_str(&format!("; its stderr ends: {log}"));
                }
                return Err(format!("client {} of {clients}: {e}; {server_side}", i + 1));
            }
        }
    }
    let rss_after_kib = rss_kib(server.pid()).map_err(|e| e.to_string())?;
    let census = memfd_census(server.pid()).map_err(|e| e.to_string())?;
    if !server.is_running() {
        return Err("server exited during the run".to_string());
    }
    drop(held);
    drop(warm_up);
    Ok(MemorySample {
        rss_before_kib,
        rss_after_kib,
        clients,
        memfds: census.files.into_values().collect(),
    })
}
