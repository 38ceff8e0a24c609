//! The attacks' section of the report: a good client's `sync` round trips
//! (p50, p99) with no attacker and under each attack, and the server's
//! RSS and fd count before the attacker came, while it attacked and after
//! it left.
//!
//! What it is: formatting, and the targets that the server gives back
//! what an attacker made it hold. What it is not: a measurement
//! (`measure_attacks`).

use std::fmt::Write;

use super::{reason_row, table, Target, Verdict};
use crate::measure_attacks::{AttackResult, Usage};
use crate::runner::Plan;
use crate::stats::{fmt_count, fmt_ratio, fmt_secs, quantile};

/// RSS the server may keep after an attacker left and still be called
/// back where it was (allocator slack, a grown client table).
pub const RSS_SLACK_KIB: u64 = 4 * 1024;

type Attacks = [(String, Result<AttackResult, String>)];

/// Writes section `n`.
pub fn section(out: &mut String, n: usize, plan: &Plan, attacks: &Attacks) {
    let _ = writeln!(
        out,
        "## {n}. What an attack costs a good client, and what it leaves behind\n\n\
         One fresh waypass-server per attack. A good client (wayland-client, in the bench) \
         times each `wl_display.sync` round trip on its own, with no attacker (the \
         clipboard attacks' devices connected all along) and while the attacker, a separate \
         process, runs: attacks that keep sending (1, 2, 7) are paused and resumed every \
         100 round trips, so idle and attacked blocks alternate; attacks that build a state \
         (4, 8) are timed after their idle phase. {} round trips or {} s per side, \
         whichever ends first. The attacks are those of the issue \"What one client does \
         costs that client alone\", by its numbers. p99 is the nearest-rank 99th \
         percentile; on this shared machine an idle p99 moves between a few hundred \
         microseconds and a few milliseconds from run to run.\n",
        fmt_count(plan.attack_syncs as f64),
        plan.attack_phase.as_secs()
    );
    let rows: Vec<Vec<String>> = attacks
        .iter()
        .map(|(label, result)| match result {
            Ok(r) => {
                let idle = (
                    quantile(r.idle.clone(), 0.5),
                    quantile(r.idle.clone(), 0.99),
                );
                let hit = (
                    quantile(r.attacked.clone(), 0.5),
                    quantile(r.attacked.clone(), 0.99),
                );
                let mut setup = r.detail.clone();
                if let Some(why) = &r.cut_off {
                    setup.push_str(&format!("; the attacker was cut off: {why}"));
                }
                vec![
                    label.clone(),
                    setup,
                    fmt_secs(idle.0),
                    fmt_secs(idle.1),
                    fmt_secs(hit.0),
                    fmt_secs(hit.1),
                    fmt_ratio(hit.0 / idle.0),
                    fmt_ratio(hit.1 / idle.1),
                    format!("{} / {}", r.idle.len(), r.attacked.len()),
                ]
            }
            Err(why) => reason_row(label.clone(), why, 9),
        })
        .collect();
    table(
        out,
        &[
            "attack",
            "what the attacker held",
            "idle p50",
            "idle p99",
            "attacked p50",
            "attacked p99",
            "p50 ÷ idle",
            "p99 ÷ idle",
            "round trips (idle / attacked)",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "The server's resident memory and open fds before the attacker came, at the end of \
         the attacked phase, and after the attacker left (once the fd count was back to \
         before's, or 10 s, plus 200 ms).\n"
    );
    let kib = |u: &Option<Usage>| {
        u.map_or("?".into(), |u| {
            format!("{} KiB", fmt_count(u.rss_kib as f64))
        })
    };
    let fds = |u: &Option<Usage>| u.map_or("?".into(), |u| u.fds.to_string());
    let rows: Vec<Vec<String>> = attacks
        .iter()
        .map(|(label, result)| match result {
            Ok(r) => {
                let [before, during, after] = &r.usage;
                let kept = before.zip(*after).map_or("?".into(), |(b, a)| {
                    signed_kib(a.rss_kib as i64 - b.rss_kib as i64)
                });
                vec![
                    label.clone(),
                    kib(before),
                    kib(during),
                    kib(after),
                    kept,
                    fds(before),
                    fds(during),
                    fds(after),
                ]
            }
            Err(why) => reason_row(label.clone(), why, 8),
        })
        .collect();
    table(
        out,
        &[
            "attack",
            "RSS before",
            "RSS attacked",
            "RSS after",
            "after − before",
            "fds before",
            "fds attacked",
            "fds after",
        ],
        &rows,
    );
}

fn signed_kib(kib: i64) -> String {
    let sign = if kib < 0 { "−" } else { "+" };
    format!("{sign}{} KiB", fmt_count(kib.unsigned_abs() as f64))
}

/// Once every attacker has left: the server's fds back to before's, and
/// its RSS within [`RSS_SLACK_KIB`] of before's.
pub fn targets(n: usize, attacks: &Attacks) -> Vec<Target> {
    let measured: Vec<(Usage, Usage)> = attacks
        .iter()
        .filter_map(|(_, r)| {
            let [before, _, after] = r.as_ref().ok()?.usage;
            before.zip(after)
        })
        .collect();
    let why = attacks
        .iter()
        .find_map(|(_, r)| r.as_ref().err().cloned())
        .unwrap_or_else(|| "not measured".to_string());
    let total = attacks.len();
    let judge = |goal: String, ok: &dyn Fn(&(Usage, Usage)) -> bool| {
        if measured.len() < total {
            return Target {
                section: n,
                goal,
                measured: format!("{} of {total} attacks measured", measured.len()),
                verdict: Verdict::Pending(why.clone()),
            };
        }
        let good = measured.iter().filter(|m| ok(m)).count();
        Target {
            section: n,
            goal,
            measured: format!("{good} of {total}"),
            verdict: if good == total {
                Verdict::Hit
            } else {
                Verdict::Missed
            },
        }
    };
    vec![
        judge(
            "after each attacker leaves, the server's fds are back to before's".to_string(),
            &|(b, a)| a.fds <= b.fds,
        ),
        judge(
            format!(
                "after each attacker leaves, the server's RSS is within {} MiB of before's",
                RSS_SLACK_KIB / 1024
            ),
            &|(b, a)| a.rss_kib <= b.rss_kib + RSS_SLACK_KIB,
        ),
    ]
}
