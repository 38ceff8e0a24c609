//! The clipboard: pastes through waypass-server, from a live copier and
//! from a selection the server persisted (`--persist`, the copier gone),
//! against the same bytes through a plain pipe, at two sizes; the latency
//! from telling a copier to copy to the first byte pasted, as a multiple of
//! one `sync` round trip, with and without `--persist`, against sway 1.7
//! headless (wlroots' data-control) as an anchor; and what a persisted
//! selection costs the server in memory (`clipboard_persist`).
//!
//! What it is: the bench process as the paster, against the peers of
//! `clipboard_peers` (a copier, a pipe writer). What it is not: a test of
//! correctness (the clipboard tests are); each paste's length is checked,
//! nothing more.
//!
//! # Implementation notes
//!
//! - Every throughput side is set up once (a server, a selection set, the
//!   persisted one's copier gone) and then only pastes are timed, from the
//!   `receive` (or the line to the pipe writer) to the last byte read.
//!   Each side has its own server: two copiers on one seat would replace
//!   each other's selection.
//! - The live copier's server runs without `--persist`: with it, the
//!   server would serve its pastes from its own copy, copier alive or not.
//! - Latency is timed from the line that tells the copier to copy (one
//!   pipe write) to the first byte read from the paste's pipe: the copier's
//!   `set_selection`, the server's offer to the paster, the paster's
//!   `receive`, then the server's `send` to the copier and its first write
//!   (without `--persist`), or the server's write from its memfd (with it:
//!   the copier got the server's own `send` at `set_selection`, and writes
//!   its 4 KiB at once).
//! - The three latency sides (waypass-server, waypass-server `--persist`,
//!   sway) run at once, each with its own copier and paster, interleaved
//!   run by run as the throughput sides are: a slow spell of the machine
//!   then falls on all three, not on one server's runs.
//! - sway is started by [`Sway`]; without sway or setpriv its
//!   side is reported as not measured, with the reason.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use waypass_client::Clipboard;

use crate::clipboard_peers::{drain, paste, DataFile, Pair, PipeWriter};
use crate::clipboard_persist::{self, PersistedRss};
use crate::process::ServerProcess;
use crate::procfs;
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{Run, Series};
use waypass_test_support::sway::Sway;

/// What measurement 9 found.
pub struct ClipboardResults {
    /// The throughput sides, largest paste first, each size's sides
    /// together: live copier, persisted, plain pipe.
    pub throughput: Vec<ThroughputRow>,
    /// `--persist-max` of the persisted throughput sides' servers.
    pub persist_budget: String,
    /// Per server: latency and round-trip series, and its RSS afterwards.
    pub latency: Vec<LatencyRow>,
    /// The server's memory with a persisted selection.
    pub rss: Result<PersistedRss, String>,
}

/// How the bytes of a throughput side travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// A live copier splices them into the pipe the server forwarded.
    Live,
    /// The server splices them from its memfd; the copier has left.
    Persisted,
    /// A process splices them into a plain pipe (the reference).
    Pipe,
}

/// One side of the throughput table.
pub struct ThroughputRow {
    /// Bytes per paste.
    pub bytes: u64,
    /// Pastes per run.
    pub pastes: u64,
    /// How the bytes travel.
    pub way: Way,
    /// How the report names it.
    pub label: String,
    /// Its runs (ops: bytes), or why there are none.
    pub outcome: Result<Series, String>,
    /// For a persisted side: from telling the copier to copy to the
    /// server's log line saying the copy was complete (not timed finely:
    /// the log is polled every millisecond).
    pub copy_took: Option<Duration>,
}

/// Which server a latency row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyServer {
    /// waypass-server as by default.
    Ours,
    /// waypass-server with `--persist`.
    OursPersist,
    /// sway 1.7 headless.
    Sway,
}

/// One row of the latency table.
pub struct LatencyRow {
    /// Which server.
    pub server: LatencyServer,
    /// How the report names it.
    pub label: String,
    /// Its figures, or why there are none.
    pub outcome: Result<LatencyResult, String>,
}

/// One server's latency figures.
pub struct LatencyResult {
    /// Seconds from "copy" to the first byte pasted (one op per round).
    pub first_byte: Series,
    /// `wl_display.sync` round trips on the same server.
    pub sync: Series,
    /// The server's resident memory after the runs, in KiB.
    pub server_rss_kib: Option<u64>,
}

/// Runs measurement 9.
pub fn measure(plan: &Plan, servers: &ServerSet) -> ClipboardResults {
    let budget = clipboard_persist::size_flag(plan.clipboard_bytes.max(1 << 30));
    ClipboardResults {
        throughput: throughput(plan, servers, &budget),
        persist_budget: budget,
        latency: latency(plan, servers),
        rss: clipboard_persist::measure_rss(servers, plan.persist_rss_bytes),
    }
}

/// A throughput side's live state. The clients come before their server:
/// fields drop in order, and a copier whose server went first would log
/// the hang-up as a failure.
enum Feed {
    Live {
        pair: Pair,
        _server: ServerProcess,
    },
    Persisted {
        paster: Clipboard,
        _server: ServerProcess,
    },
    Pipe(PipeWriter),
}

struct Sender<'d> {
    data: &'d DataFile,
    pastes: u64,
    feed: Feed,
}

impl Sender<'_> {
    /// One paste, timed from asking to the last byte.
    fn paste_once(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        let got = match &mut self.feed {
            Feed::Live { pair, .. } => drain(&mut paste(&mut pair.paster)?)?,
            Feed::Persisted { paster, .. } => drain(&mut paste(paster)?)?,
            Feed::Pipe(writer) => writer.send_once()?,
        };
        let took = started.elapsed();
        if got != self.data.bytes {
            return Err(format!("{got} bytes arrived, {} sent", self.data.bytes));
        }
        if let Feed::Live { pair, .. } = &mut self.feed {
            pair.copier.expect("served")?;
        }
        Ok(took)
    }
}

fn throughput(plan: &Plan, servers: &ServerSet, budget: &str) -> Vec<ThroughputRow> {
    let sizes = [
        (plan.clipboard_bytes, 1),
        (plan.clipboard_small_bytes, plan.clipboard_small_pastes),
    ];
    let data: Vec<Result<DataFile, String>> = sizes
        .iter()
        .map(|&(bytes, _)| {
            DataFile::new(bytes).map_err(|e| format!("failed: cannot make the data file: {e}"))
        })
        .collect();
    let mut sides = Vec::new();
    let mut shape = Vec::new();
    let mut copy_took = Vec::new();
    for (&(bytes, pastes), data) in sizes.iter().zip(&data) {
        let size = fmt_size(bytes);
        for way in [Way::Live, Way::Persisted, Way::Pipe] {
            let label = match way {
                Way::Live => format!(
                    "{size}: live copier through waypass-server (copier → server-brokered pipe → paster)"
                ),
                Way::Persisted => format!(
                    "{size}: persisted by waypass-server --persist, copier gone (server's memfd → paster)"
                ),
                Way::Pipe => format!("{size}: plain pipe between two processes (the reference)"),
            };
            let mut took = None;
            let setup = data.as_ref().map_err(Clone::clone).and_then(|data| {
                let feed = match way {
                    Way::Live => live(servers, data)?,
                    Way::Persisted => {
                        let (server, paster, copy) =
                            clipboard_persist::persisted(servers, data, budget)?;
                        took = Some(copy);
                        Feed::Persisted {
                            paster,
                            _server: server,
                        }
                    }
                    Way::Pipe => Feed::Pipe(PipeWriter::start(data)?),
                };
                Ok(Sender { data, pastes, feed })
            });
            sides.push(Side::from_setup(label, setup));
            shape.push((bytes, pastes, way));
            copy_took.push(took);
        }
    }
    interleave(
        "clipboard throughput",
        &mut sides,
        plan.warmup,
        plan.runs,
        |sender| {
            let mut wall = Duration::ZERO;
            for _ in 0..sender.pastes {
                wall += sender.paste_once()?;
            }
            Ok(Run {
                ops: sender.data.bytes * sender.pastes,
                wall,
                server_cpu: None,
            })
        },
    );
    sides
        .iter()
        .zip(shape)
        .zip(copy_took)
        .map(|((side, (bytes, pastes, way)), copy_took)| ThroughputRow {
            bytes,
            pastes,
            way,
            label: side.label.clone(),
            outcome: side.outcome(),
            copy_took,
        })
        .collect()
}

/// A live copier's side: a server as by default, a selection set.
fn live(servers: &ServerSet, data: &DataFile) -> Result<Feed, String> {
    let server = servers.start(ServerKind::Ours)?;
    let mut pair = Pair::start(server.socket(), &data.path)?;
    pair.copy()?;
    Ok(Feed::Live {
        pair,
        _server: server,
    })
}

/// A latency side's server: ours, or sway.
enum Host {
    Ours(ServerProcess),
    Sway(Sway),
}

impl Host {
    fn socket(&self) -> &Path {
        match self {
            Host::Ours(server) => server.socket(),
            Host::Sway(sway) => &sway.socket,
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Host::Ours(server) => server.pid(),
            Host::Sway(sway) => sway.pid(),
        }
    }
}

/// The three servers' latency, interleaved round by round: each run is
/// `clipboard_rounds` copies → first byte, then as many `sync` round trips.
fn latency(plan: &Plan, servers: &ServerSet) -> Vec<LatencyRow> {
    let rows = [
        (LatencyServer::Ours, "waypass-server"),
        (
            LatencyServer::OursPersist,
            "waypass-server --persist (the paste served from its memfd)",
        ),
        (
            LatencyServer::Sway,
            "sway 1.7 headless (wlroots, zwlr_data_control_manager_v1 v2)",
        ),
    ];
    let small = DataFile::new(4096).map_err(|e| format!("failed: {e}"));
    let mut sides: Vec<Side<(Pair, Host), (Run, Run)>> = rows
        .iter()
        .map(|&(server, label)| {
            let setup = small.as_ref().map_err(Clone::clone).and_then(|data| {
                let host = match server {
                    LatencyServer::Ours => Host::Ours(servers.start(ServerKind::Ours)?),
                    LatencyServer::OursPersist => {
                        Host::Ours(servers.start_with(ServerKind::Ours, &["--persist"], "warn")?)
                    }
                    LatencyServer::Sway => Host::Sway(Sway::start()?),
                };
                Ok((Pair::start(host.socket(), &data.path)?, host))
            });
            Side::from_setup(label, setup)
        })
        .collect();
    let rounds = plan.clipboard_rounds;
    interleave(
        "clipboard latency",
        &mut sides,
        plan.warmup,
        plan.runs,
        |(pair, _)| latency_run(pair, rounds),
    );
    rows.iter()
        .zip(&mut sides)
        .map(|(&(server, label), side)| {
            let rss = side
                .state_mut()
                .and_then(|(_, host)| procfs::rss_kib(host.pid()).ok());
            let outcome = side.results().map(|runs| LatencyResult {
                first_byte: Series {
                    runs: runs.iter().map(|(paste, _)| *paste).collect(),
                },
                sync: Series {
                    runs: runs.iter().map(|(_, sync)| *sync).collect(),
                },
                server_rss_kib: rss,
            });
            LatencyRow {
                server,
                label: label.into(),
                outcome,
            }
        })
        .collect()
}

/// One run on one server: `rounds` copies → first byte, then `rounds`
/// `sync` round trips.
fn latency_run(pair: &mut Pair, rounds: u64) -> Result<(Run, Run), String> {
    let mut pastes = Duration::ZERO;
    for _ in 0..rounds {
        pastes += first_byte_once(pair)?;
    }
    let started = Instant::now();
    for _ in 0..rounds {
        pair.paster
            .session()
            .roundtrip()
            .map_err(|e| format!("sync: {e}"))?;
    }
    let run = |wall| Run {
        ops: rounds,
        wall,
        server_cpu: None,
    };
    Ok((run(pastes), run(started.elapsed())))
}

/// One round: the time from "copy" to the first byte. The copier's one
/// `send` of the round (the paster's, or with `--persist` the server's)
/// is waited for, not timed.
fn first_byte_once(pair: &mut Pair) -> Result<Duration, String> {
    let started = Instant::now();
    pair.copy()?;
    let mut pipe = paste(&mut pair.paster)?;
    let mut byte = [0u8; 1];
    pipe.read_exact(&mut byte)
        .map_err(|e| format!("first byte: {e}"))?;
    let took = started.elapsed();
    drop(pipe);
    pair.copier.expect("served")?;
    Ok(took)
}

/// `1 GiB`, `1 MiB`, or bytes with one decimal in MiB.
pub fn fmt_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
    }
}
