//! The targets table's rows: each measurement's figures turned into a
//! goal, the figure measured against it, and a verdict (sections 2 to 11).
//!
//! What it is: the arithmetic between medians of one run and the lines
//! the goals draw. What it is not: the table's formatting
//! (`targets_section` in the parent) or the figures' sections.

use super::round_trips::{self, cpu_ratio, rate_ratio};
use super::{
    attacks, clipboard, clipboard_section, compare, compare_with, fanout, unnumbered, Results,
    Target, Verdict, FIRST_COMPARISON,
};
use crate::measure_clients::MemoryResult;
use crate::measure_wire::RoundTripSide;
use crate::servers::ServerKind;
use crate::stats::{fmt_count, fmt_kib, fmt_ratio};

/// Every target of the run, in section order.
pub(super) fn targets(results: &Results) -> Vec<Target> {
    let wire = &results.wire;
    let ours = wire.side(RoundTripSide::WaylandRsClient(ServerKind::Ours));
    let libwayland = wire.side(RoundTripSide::WaylandRsClient(ServerKind::Libwayland));
    let our_client = wire.side(RoundTripSide::OurClient(ServerKind::Ours));
    let our_client_bare = wire.side(RoundTripSide::OurClient(ServerKind::Bare));
    let bare_rs = wire.side(RoundTripSide::WaylandRsClient(ServerKind::Bare));
    let raw = wire.side(RoundTripSide::Raw);
    let pending_of = |side: RoundTripSide| -> String {
        wire.round_trips
            .iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, o)| o.as_ref().err().cloned())
            .unwrap_or_else(|| "not measured".to_string())
    };
    let mut list = round_trips::targets(wire);
    list.extend([
        compare(
            2,
            "round trips, wayland-rs client: rate ≥ 1.1× libwayland server's",
            rate_ratio(ours, libwayland),
            |r| r >= 1.1,
            pending_of(RoundTripSide::WaylandRsClient(ServerKind::Ours)),
        ),
        floor_note(
            compare(
                2,
                "round trips, wayland-rs client: server CPU per round trip ≤ 0.7× libwayland's",
                cpu_ratio(ours, libwayland),
                |r| r <= 0.7,
                pending_of(RoundTripSide::WaylandRsClient(ServerKind::Ours)),
            ),
            "the bare epoll server's own",
            cpu_ratio(bare_rs, libwayland),
            |r| r <= 0.7,
        ),
        compare(
            2,
            "round trips, wayland-rs client: server CPU per round trip ≤ 1.10× the bare epoll server's",
            cpu_ratio(ours, bare_rs),
            |r| r <= 1.10,
            pending_of(RoundTripSide::WaylandRsClient(ServerKind::Ours)),
        ),
        floor_note(
            compare(
                2,
                "round trips, our client → our server: ≥ 0.85× raw ping-pong",
                rate_ratio(our_client, raw),
                |r| r >= 0.85,
                pending_of(RoundTripSide::OurClient(ServerKind::Ours)),
            ),
            "our client → the bare epoll server",
            rate_ratio(our_client_bare, raw),
            |r| r >= 0.85,
        ),
        compare(
            2,
            "round trips, our client → our server: ≥ 0.95× our client → the bare epoll server",
            rate_ratio(our_client, our_client_bare),
            |r| r >= 0.95,
            pending_of(RoundTripSide::OurClient(ServerKind::Ours)),
        ),
    ]);
    // No regression against the baseline build, when one was measured.
    let baseline = wire.side(RoundTripSide::CClient(ServerKind::Baseline));
    let ours_c = wire.side(RoundTripSide::CClient(ServerKind::Ours));
    if baseline.is_some() {
        list.push(compare(
            2,
            "no regression, libwayland C client: server CPU per round trip ≤ 1.05× the baseline build's",
            cpu_ratio(ours_c, baseline),
            |r| r <= 1.05,
            pending_of(RoundTripSide::CClient(ServerKind::Ours)),
        ));
        list.push(compare(
            2,
            "no regression, libwayland C client: round-trip rate ≥ 0.95× the baseline build's",
            rate_ratio(ours_c, baseline),
            |r| r >= 0.95,
            pending_of(RoundTripSide::CClient(ServerKind::Ours)),
        ));
    }
    for clients in memory_counts(&results.memory) {
        let find = |kind| {
            results
                .memory
                .iter()
                .find(|r| r.kind == kind && r.clients == clients)
        };
        let ours = find(ServerKind::Ours);
        let why = ours
            .and_then(|r| r.samples.as_ref().err().cloned())
            .unwrap_or_else(|| "not measured".to_string());
        // libwayland may not reach this count (it needs two fds per
        // client): then compare with the largest count it did reach, and say so.
        let libwayland = find(ServerKind::Libwayland)
            .and_then(MemoryResult::median_kib_per_client)
            .map(|kib| (kib, clients))
            .or_else(|| libwayland_fallback(&results.memory));
        let mut target = compare(
            4,
            &format!(
                "memory per client ≤ 0.25× libwayland's ({} clients)",
                fmt_count(clients as f64)
            ),
            ours.and_then(MemoryResult::median_kib_per_client)
                .zip(libwayland)
                .map(|(o, (l, _))| o / l),
            |r| r <= 0.25,
            why.clone(),
        );
        if let Some((kib, at)) = libwayland.filter(|(_, at)| *at != clients) {
            target.measured.push_str(&format!(
                " (vs libwayland's {} at {} clients: it could not hold {})",
                fmt_kib(kib),
                fmt_count(at as f64),
                fmt_count(clients as f64)
            ));
        }
        list.push(target);
        if clients == *memory_counts(&results.memory).last().unwrap_or(&0) {
            let copies = ours.and_then(MemoryResult::keymap_copies);
            list.push(Target {
                section: 4,
                goal: "one keymap copy whatever the number of clients".to_string(),
                measured: copies.map_or(String::new(), |c| {
                    format!("{c} at {} clients", fmt_count(clients as f64))
                }),
                verdict: match copies {
                    Some(1) => Verdict::Hit,
                    Some(_) => Verdict::Missed,
                    None => Verdict::Pending(why),
                },
            });
        }
    }
    for (i, c) in results.broker.iter().chain(&results.files).enumerate() {
        let section = FIRST_COMPARISON + i;
        let reference = c.reference();
        for row in &c.rows {
            let Some(target) = row.target else { continue };
            let value = row
                .outcome
                .as_ref()
                .ok()
                .zip(reference)
                .map(|(s, r)| s.median_rate() / r.median_rate());
            let why = match (&row.outcome, &c.rows[0].outcome) {
                (Err(why), _) | (_, Err(why)) => why.clone(),
                _ => "not measured".to_string(),
            };
            let min = target.min_rate_ratio;
            let goal = unnumbered(target.goal);
            list.push(compare_with(section, goal, value, |r| r >= min, why));
        }
    }
    // A pending measurement has no rows with targets: say so once.
    for (i, c) in results.broker.iter().chain(&results.files).enumerate() {
        if let [only] = &c.rows[..] {
            if let Err(why) = &only.outcome {
                list.push(Target {
                    section: FIRST_COMPARISON + i,
                    goal: unnumbered(&c.title).to_string(),
                    measured: String::new(),
                    verdict: Verdict::Pending(why.clone()),
                });
            }
        }
    }
    let (ratio, why) = clipboard::throughput_ratio(&results.clipboard);
    list.push(compare(
        clipboard_section(results),
        "clipboard: a paste through waypass-server ≥ 0.95× a plain pipe's throughput",
        ratio,
        |r| r >= 0.95,
        why,
    ));
    let (ratio, why) = clipboard::persist_latency_ratio(&results.clipboard);
    list.push(compare(
        clipboard_section(results),
        "clipboard: copy → first byte with --persist ≤ 0.8× sway 1.7's",
        ratio,
        |r| r <= clipboard::PERSIST_LATENCY_GOAL,
        why,
    ));
    let section = clipboard_section(results);
    list.extend(fanout::targets(section + 1, &results.fanout));
    list.extend(attacks::targets(section + 2, &results.attacks));
    list
}

/// libwayland's KiB per client at the largest client count it was measured at.
fn libwayland_fallback(memory: &[MemoryResult]) -> Option<(f64, u64)> {
    memory
        .iter()
        .filter(|r| r.kind == ServerKind::Libwayland)
        .filter_map(|r| r.median_kib_per_client().map(|kib| (kib, r.clients)))
        .max_by_key(|(_, clients)| *clients)
}

fn memory_counts(memory: &[MemoryResult]) -> Vec<u64> {
    let mut counts: Vec<u64> = memory.iter().map(|r| r.clients).collect();
    counts.dedup();
    counts
}

/// Adds to a missed target what the bare epoll server, the floor for any
/// server that waits in epoll, measured on the same scale in the same run,
/// when it misses the target too: that miss is the target's, not the code's.
fn floor_note(mut target: Target, floor: &str, value: Option<f64>, ok: fn(f64) -> bool) -> Target {
    if let (Verdict::Missed, Some(v)) = (&target.verdict, value.filter(|v| !ok(*v))) {
        target
            .measured
            .push_str(&format!(" (below the floor: {floor} is {})", fmt_ratio(v)));
    }
    target
}
