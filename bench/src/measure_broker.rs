//! Measurement 5: a channel brokered by waypass-server, against a raw
//! socketpair, and what setting one up costs against a `sync` round trip.
//!
//! What it is: two interleaved measurements against one waypass-server.
//!
//! - **Ping-pong.** Three sides, each between the bench and another process:
//!   the raw socketpair ping-pong (the reference); the same 8-byte
//!   ping-pong code over a brokered socket (the server handed out both ends
//!   and is out of the path, so this should be 1.0×); and a `PeerChannel`
//!   round trip, `text` one way and `ack` back, which adds waypass's peer
//!   protocol on top of the same socket.
//! - **Set-up.** `Broker::connect_to` to a registered name, channel
//!   received, dropped; against one `wl_display.sync` round trip on the
//!   same server (the reference).
//!
//! What it is not: file passing (measurement 6, `measure_files`). The
//! [`Comparison`] type both share lives here.
//!
//! # Implementation notes
//!
//! The owner of the name in the set-up measurement is a second broker
//! connection in the bench process. Between batches of set-ups, with the
//! clock stopped, it takes the channels the server handed it and closes
//! them, so the server never queues more than one batch of fds for it (a
//! separate owner process that fell behind by its outgoing fd cap would be
//! cut off, and the server refuses connects to an owner with more than
//! `--max-pending-peers` unread channels: a batch stays under its default).
//! The timed part is exactly what the requester waits for.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use waypass_client::{Broker, BrokerError, ConnectOptions, PeerChannel, Session};

use crate::broker_peer::{self, PeerMode};
use crate::process::{RawPeer, ServerProcess};
use crate::raw::{self, IO_PATIENCE};
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{Run, Series};

/// The global our server advertises for the broker extension.
const BROKER_GLOBAL: &str = "waypass_broker_v1";
/// Set-ups per batch between two drains of the owner's channels. It must
/// stay under waypass-server's `--max-pending-peers` (default 64, the
/// bench starts the server with the default): the owner reads none of a
/// batch's channels until the batch ends, and a connect to an owner with
/// that many unread channels is refused with `busy`.
const SETUP_BATCH: u64 = 50;

/// A target from the issue on one row: its rate ÷ the reference's rate
/// must be at least `min_rate_ratio`.
#[derive(Debug, Clone, Copy)]
pub struct RateTarget {
    /// The goal as the targets table words it.
    pub goal: &'static str,
    /// The lowest rate ratio that hits it.
    pub min_rate_ratio: f64,
}

/// One side of a [`Comparison`].
#[derive(Debug, Clone)]
pub struct Row {
    /// How the side is named in the report.
    pub label: String,
    /// Its runs, or why it has none.
    pub outcome: Result<Series, String>,
    /// The target for this side, if it has one.
    pub target: Option<RateTarget>,
}

/// Sides measured in the same interleaved rounds; `rows[0]` is the
/// reference the others are divided by.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The table's heading.
    pub title: String,
    /// What one operation is, for the rate column ("round trips/s").
    pub unit: &'static str,
    /// The reference first.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// The reference's runs, if it was measured.
    pub fn reference(&self) -> Option<&Series> {
        self.rows.first().and_then(|r| r.outcome.as_ref().ok())
    }
}

/// Runs measurement 5.
pub fn measure(plan: &Plan, servers: &ServerSet) -> Vec<Comparison> {
    let server = match start_broker_server(servers) {
        Ok(server) => server,
        Err(why) => {
            return vec![
                pending(ping_pong_title(plan), "round trips/s", &why),
                pending(setup_title(plan), "set-ups/s", &why),
            ]
        }
    };
    vec![ping_pong(plan, &server), setup(plan, &server)]
}

/// Starts waypass-server and checks that it advertises the broker.
pub fn start_broker_server(servers: &ServerSet) -> Result<ServerProcess, String> {
    let server = servers.start(ServerKind::Ours)?;
    let session = Session::connect_path(server.socket())
        .map_err(|e| format!("failed: cannot connect to waypass-server: {e}"))?;
    match Broker::new(session) {
        Ok(_) => Ok(server),
        Err(BrokerError::NoBroker) => Err(format!(
            "pending: waypass-server does not advertise {BROKER_GLOBAL}"
        )),
        Err(e) => Err(format!("failed: cannot bind {BROKER_GLOBAL}: {e}")),
    }
}

/// A comparison with no rows measured, and why.
pub fn pending(title: String, unit: &'static str, why: &str) -> Comparison {
    Comparison {
        title,
        unit,
        rows: vec![Row {
            label: "all sides".to_string(),
            outcome: Err(why.to_string()),
            target: None,
        }],
    }
}

fn ping_pong_title(plan: &Plan) -> String {
    format!(
        "5. Ping-pong over a brokered channel ({} round trips per run)",
        crate::stats::fmt_count(plan.ping_pongs as f64)
    )
}

fn setup_title(plan: &Plan) -> String {
    format!(
        "5. Setting up a channel ({} per run), against `wl_display.sync`",
        crate::stats::fmt_count(plan.setups as f64)
    )
}

enum PingPong {
    Raw(RawPeer),
    Bytes {
        _peer: ServerProcess,
        stream: UnixStream,
    },
    Text {
        _peer: ServerProcess,
        channel: Box<PeerChannel>,
    },
}

fn ping_pong(plan: &Plan, server: &ServerProcess) -> Comparison {
    let socket = server.socket();
    let mut sides = vec![
        Side::from_setup(
            "raw socketpair ping-pong, 8 bytes",
            RawPeer::start("peer-echo")
                .map(PingPong::Raw)
                .map_err(|e| format!("failed: {e}")),
        ),
        Side::from_setup(
            "brokered socket, the same 8-byte ping-pong",
            brokered(socket, PeerMode::Echo).and_then(|(peer, channel)| {
                let stream =
                    broker_peer::blocking_socket(channel).map_err(|e| format!("failed: {e}"))?;
                Ok(PingPong::Bytes {
                    _peer: peer,
                    stream,
                })
            }),
        ),
        Side::from_setup(
            "PeerChannel: text one way, ack back",
            brokered(socket, PeerMode::TextEcho).map(|(peer, channel)| PingPong::Text {
                _peer: peer,
                channel: Box::new(channel),
            }),
        ),
    ];
    let n = plan.ping_pongs;
    interleave(
        "brokered ping-pong",
        &mut sides,
        plan.warmup,
        plan.runs,
        |side| {
            let wall = match side {
                PingPong::Raw(peer) => raw::ping_pong(&mut peer.stream, n).map_err(err)?,
                PingPong::Bytes { stream, .. } => raw::ping_pong(stream, n).map_err(err)?,
                PingPong::Text { channel, .. } => text_ping_pong(channel, n).map_err(err)?,
            };
            Ok(timed(n, wall))
        },
    );
    let targets = [
        None,
        Some(RateTarget {
            goal: "5. brokered channel ≥ 0.95× raw: the same ping-pong over a brokered socket",
            min_rate_ratio: 0.95,
        }),
        Some(RateTarget {
            goal: "5. brokered channel ≥ 0.95× raw: PeerChannel text → ack",
            min_rate_ratio: 0.95,
        }),
    ];
    Comparison {
        title: ping_pong_title(plan),
        unit: "round trips/s",
        rows: rows(&sides, &targets),
    }
}

/// Starts a broker peer in `mode` and opens a channel to it.
pub fn brokered(server: &Path, mode: PeerMode) -> Result<(ServerProcess, PeerChannel), String> {
    let peer = broker_peer::start(server, mode)?;
    let channel = broker_peer::connect(server, &peer).map_err(|e| format!("failed: {e}"))?;
    Ok((peer, channel))
}

fn text_ping_pong(channel: &mut PeerChannel, n: u64) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..n {
        let serial = channel.send_text("ping").map_err(err)?;
        channel.wait_ack(serial, Some(IO_PATIENCE)).map_err(err)?;
    }
    Ok(start.elapsed())
}

enum Setup {
    /// wl_display.sync on a session of its own (the reference).
    Sync(Box<Session>),
    /// A requester, and the owner of `name`.
    Connect {
        requester: Box<Broker>,
        owner: Box<Broker>,
        name: String,
    },
}

fn setup(plan: &Plan, server: &ServerProcess) -> Comparison {
    let socket = server.socket();
    let sync = Session::connect_path(socket)
        .map(|s| Setup::Sync(Box::new(s)))
        .map_err(|e| format!("failed: {e}"));
    let mut sides = vec![
        Side::from_setup("one wl_display.sync round trip", sync),
        Side::from_setup("Broker::connect_to, channel received", connect_pair(socket)),
    ];
    let n = plan.setups;
    interleave(
        "channel set-up",
        &mut sides,
        plan.warmup,
        plan.runs,
        |side| match side {
            Setup::Sync(session) => {
                let start = Instant::now();
                for _ in 0..n {
                    session.roundtrip().map_err(err)?;
                }
                Ok(timed(n, start.elapsed()))
            }
            Setup::Connect {
                requester,
                owner,
                name,
            } => connect_run(requester, owner, name, n),
        },
    );
    Comparison {
        title: setup_title(plan),
        unit: "set-ups/s",
        rows: rows(&sides, &[None, None]),
    }
}

fn connect_pair(socket: &Path) -> Result<Setup, String> {
    let open = || -> Result<Broker, String> {
        Broker::new(Session::connect_path(socket).map_err(err)?).map_err(err)
    };
    let (requester, mut owner) = (open()?, open()?);
    let name = format!("bench-setup-{}", std::process::id());
    owner
        .register_and_wait(&name, IO_PATIENCE)
        .map_err(|e| format!("failed: register {name}: {e}"))?;
    Ok(Setup::Connect {
        requester: Box::new(requester),
        owner: Box::new(owner),
        name,
    })
}

/// `n` set-ups, timed in batches; the owner's channels are closed
/// between batches, off the clock.
fn connect_run(
    requester: &mut Broker,
    owner: &mut Broker,
    name: &str,
    n: u64,
) -> Result<Run, String> {
    let mut options = ConnectOptions::default();
    options.reply_timeout = IO_PATIENCE;
    let mut wall = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let batch = SETUP_BATCH.min(n - done);
        let start = Instant::now();
        for _ in 0..batch {
            drop(requester.connect_to(name, options).map_err(err)?);
        }
        wall += start.elapsed();
        for _ in 0..batch {
            let peer = owner.next_peer(Some(IO_PATIENCE)).map_err(err)?;
            drop(peer.ok_or("failed: the owner got no channel")?);
        }
        done += batch;
    }
    Ok(timed(n, wall))
}

/// A run of `ops` operations in `wall`, with no server CPU time.
pub fn timed(ops: u64, wall: Duration) -> Run {
    Run {
        ops,
        wall,
        server_cpu: None,
    }
}

/// The rows of a comparison from its sides, with their targets.
pub fn rows<T>(sides: &[Side<T>], targets: &[Option<RateTarget>]) -> Vec<Row> {
    sides
        .iter()
        .zip(targets)
        .map(|(side, target)| Row {
            label: side.label.clone(),
            outcome: side.outcome(),
            target: *target,
        })
        .collect()
}

/// Any error as the report's "failed: …" text.
pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
