//! Section 2 of the report, `wl_display.sync` round trips, and issue 14's
//! targets: every server with the libwayland C client and the wayland-rs
//! client, each against the libwayland server and the bare epoll server with
//! the same client; our client against its limit (the bare epoll server with
//! our client); and each server's syscalls per round trip (strace) and
//! user-space instructions per round trip (callgrind).
//!
//! What it is: formatting and arithmetic on medians measured in one run
//! (`measure_wire`). What it is not: a judge of noise (see the report).

use std::fmt::Write;

use super::{compare, reason_row, table, Target, Verdict};
use crate::measure_wire::{RoundTripSide, WireResults, ROUND_TRIP_SERVERS};
use crate::runner::Plan;
use crate::servers::ServerKind;
use crate::stats::{fmt_count, fmt_ratio, fmt_secs, Series};

/// The most syscalls per round trip that still counts as the 3 of the
/// target: the strace pass also sees a few calls of its own start and end.
const SYSCALLS_SLACK: f64 = 3.05;

/// waypass-server's user-space instructions per round trip before the
/// server core was rewritten (callgrind, the run of record of 2026-12-02):
/// the rewrite must not cost the round trip more.
const INSTRUCTIONS_BEFORE: f64 = 2_357.0;

/// The same client's side against another server.
fn same_client(side: RoundTripSide, server: ServerKind) -> Option<RoundTripSide> {
    match side {
        RoundTripSide::Raw => None,
        RoundTripSide::CClient(_) => Some(RoundTripSide::CClient(server)),
        RoundTripSide::WaylandRsClient(_) => Some(RoundTripSide::WaylandRsClient(server)),
        RoundTripSide::OurClient(_) => Some(RoundTripSide::OurClient(server)),
    }
}

/// `a`'s median rate over `b`'s.
pub(super) fn rate_ratio(a: Option<&Series>, b: Option<&Series>) -> Option<f64> {
    a.zip(b).map(|(a, b)| a.median_rate() / b.median_rate())
}

/// `a`'s median server CPU per operation over `b`'s.
pub(super) fn cpu_ratio(a: Option<&Series>, b: Option<&Series>) -> Option<f64> {
    a.and_then(Series::median_cpu_per_op)
        .zip(b.and_then(Series::median_cpu_per_op))
        .map(|(a, b)| a / b)
}

fn cell(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), fmt_ratio)
}

/// Writes section 2.
pub fn section(out: &mut String, plan: &Plan, wire: &WireResults) {
    let _ = writeln!(
        out,
        "## 2. `wl_display.sync` round trips ({} per run)\n\nThe raw ping-pong ran as one more \
         side of this same interleaved measurement. CPUs: {}. Runs kept: {} of {} (a run is \
         discarded when `/proc/stat` shows steal time on the servers' CPU during it). Ratios \
         compare the same client against another server: a client that is not libwayland's \
         or wayland-rs's has no libwayland-server figure.\n",
        fmt_count(plan.syncs as f64),
        wire.pinning,
        wire.kept.0,
        wire.kept.1,
    );
    let raw = wire.side(RoundTripSide::Raw);
    let rows: Vec<Vec<String>> = wire
        .round_trips
        .iter()
        .filter(|(side, _)| *side != RoundTripSide::Raw)
        .map(|(side, outcome)| {
            let reference = |kind| {
                same_client(*side, kind)
                    .filter(|s| s != side)
                    .and_then(|s| wire.side(s))
            };
            let (libwayland, bare) = (
                reference(ServerKind::Libwayland),
                reference(ServerKind::Bare),
            );
            match outcome {
                Ok(s) => vec![
                    side.label(),
                    fmt_count(s.median_rate()),
                    cell(rate_ratio(Some(s), raw)),
                    cell(rate_ratio(Some(s), libwayland)),
                    cell(rate_ratio(Some(s), bare)),
                    s.median_cpu_per_op().map_or("n/a".into(), fmt_secs),
                    cell(cpu_ratio(Some(s), libwayland)),
                    cell(cpu_ratio(Some(s), bare)),
                ],
                Err(why) => reason_row(side.label(), why, 8),
            }
        })
        .collect();
    table(
        out,
        &[
            "client → server",
            "round trips/s",
            "÷ raw ping-pong",
            "÷ libwayland server",
            "÷ bare epoll server",
            "server CPU per round trip",
            "CPU ÷ libwayland server's",
            "CPU ÷ bare epoll server's",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "Syscalls the server makes per round trip, counted by `strace -f -c` attached to it \
         over a separate pass of {} round trips (libwayland C client):\n",
        fmt_count(plan.syncs as f64)
    );
    let rows: Vec<Vec<String>> = ROUND_TRIP_SERVERS
        .iter()
        .map(|&kind| {
            let counted = wire.syscalls_of(kind);
            vec![
                kind.label().to_string(),
                counted.map_or_else(|why| why, |n| format!("{n:.2}")),
            ]
        })
        .collect();
    table(out, &["server", "syscalls per round trip"], &rows);
    instructions_table(out, plan, wire);
    let _ = writeln!(
        out,
        "Our client's limit: its rate against waypass-server is {} its rate against the bare \
         epoll server (the same client; the floor for any server that waits in epoll).\n",
        cell(our_client_limit(wire))
    );
}

/// Each server's user-space instructions per round trip, counted by
/// callgrind, and their ratio to the bare epoll server's.
fn instructions_table(out: &mut String, plan: &Plan, wire: &WireResults) {
    let _ = writeln!(
        out,
        "User-space instructions the server executes per round trip, counted by callgrind \
         over {} round trips after {} uncounted ones, each server started again under \
         valgrind (libwayland C client). The count repeats from run to run, whatever the \
         machine does; the kernel's share is not in it.\n",
        fmt_count(plan.syncs as f64),
        fmt_count(plan.callgrind_warmups as f64),
    );
    let bare = wire.instructions_of(ServerKind::Bare).ok();
    let rows: Vec<Vec<String>> = ROUND_TRIP_SERVERS
        .iter()
        .map(|&kind| match wire.instructions_of(kind) {
            Ok(n) => vec![
                kind.label().to_string(),
                fmt_count(n),
                cell(bare.filter(|_| kind != ServerKind::Bare).map(|b| n / b)),
            ],
            Err(why) => reason_row(kind.label().to_string(), &why, 3),
        })
        .collect();
    table(
        out,
        &[
            "server",
            "user-space instructions per round trip",
            "÷ bare epoll server",
        ],
        &rows,
    );
}

/// Issue 14's targets, computed from this run.
pub fn targets(wire: &WireResults) -> Vec<Target> {
    let c = |kind| wire.side(RoundTripSide::CClient(kind));
    let why = |side: RoundTripSide| -> String {
        wire.round_trips
            .iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, o)| o.as_ref().err().cloned())
            .unwrap_or_else(|| "not measured".to_string())
    };
    let ours_c = RoundTripSide::CClient(ServerKind::Ours);
    let syscalls = match wire.syscalls_of(ServerKind::Ours) {
        Ok(n) => Target {
            section: 2,
            goal: "waypass-server: 3 syscalls per round trip (strace -c)".to_string(),
            measured: format!("{n:.2}"),
            verdict: if n <= SYSCALLS_SLACK {
                Verdict::Hit
            } else {
                Verdict::Missed
            },
        },
        Err(why) => Target {
            section: 2,
            goal: "waypass-server: 3 syscalls per round trip (strace -c)".to_string(),
            measured: String::new(),
            verdict: Verdict::Pending(why),
        },
    };
    let instructions = wire.instructions_of(ServerKind::Ours);
    let instructions = match instructions {
        Ok(n) => Target {
            section: 2,
            goal: format!(
                "waypass-server: user-space instructions per round trip ≤ {} (callgrind; \
                 the count before the core rewrite)",
                fmt_count(INSTRUCTIONS_BEFORE)
            ),
            measured: fmt_count(n),
            verdict: if n <= INSTRUCTIONS_BEFORE {
                Verdict::Hit
            } else {
                Verdict::Missed
            },
        },
        Err(why) => Target {
            section: 2,
            goal: "waypass-server: user-space instructions per round trip (callgrind)".into(),
            measured: String::new(),
            verdict: Verdict::Pending(why),
        },
    };
    vec![
        syscalls,
        instructions,
        compare(
            2,
            "libwayland C client: server CPU per round trip ≤ 1.10× the bare epoll server's",
            cpu_ratio(c(ServerKind::Ours), c(ServerKind::Bare)),
            |r| r <= 1.10,
            why(ours_c),
        ),
        compare(
            2,
            "libwayland C client: server CPU per round trip ≤ 0.90× libwayland's",
            cpu_ratio(c(ServerKind::Ours), c(ServerKind::Libwayland)),
            |r| r <= 0.90,
            why(ours_c),
        ),
        compare(
            2,
            "libwayland C client: round-trip rate ≥ 1.1× libwayland server's",
            rate_ratio(c(ServerKind::Ours), c(ServerKind::Libwayland)),
            |r| r >= 1.1,
            why(ours_c),
        ),
    ]
}

/// Our client's rate against waypass-server over its rate against the bare
/// epoll server: the limit for any server that waits in epoll.
pub fn our_client_limit(wire: &WireResults) -> Option<f64> {
    rate_ratio(
        wire.side(RoundTripSide::OurClient(ServerKind::Ours)),
        wire.side(RoundTripSide::OurClient(ServerKind::Bare)),
    )
}
