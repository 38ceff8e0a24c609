//! The Markdown report, which `make bench` writes as BENCHMARKS.md: the
//! fixed text and this run's date, command and machine (`run_info`), the
//! targets with their verdicts, then one numbered section per measurement.
//!
//! What it is: formatting only. Every ratio is computed here from medians
//! measured in the same process run, and every verdict from those ratios;
//! nothing is measured here, and a side that was not measured shows its
//! reason instead of a number. Each verdict is stated once, in the targets
//! table, which bench/run.sh quotes into README.md between the
//! `TARGETS_BEGIN` and `TARGETS_END` markers.
//!
//! What it is not: a judge of noise. A target is "hit" or "missed" on the
//! medians of this run alone; a `--quick` run judges none.

mod attacks;
mod clipboard;
mod fanout;
mod round_trips;
mod run_info;
mod targets;

use round_trips::cpu_ratio;

use std::fmt::Write;

use crate::machine::Machine;
use crate::measure_attacks::AttackResult;
use crate::measure_broker::Comparison;
use crate::measure_clients::{ConnectResults, MemoryResult};
use crate::measure_clipboard::ClipboardResults;
use crate::measure_fanout::BurstCell;
use crate::measure_wire::{RoundTripSide, WireResults};
use crate::runner::Plan;
use crate::servers::ServerKind;
use crate::stats::{fmt_count, fmt_kib, fmt_ratio, fmt_secs, Series};

/// Everything one bench run measured.
pub struct Results {
    /// Measurements 1 and 2.
    pub wire: WireResults,
    /// Measurement 3.
    pub connect: ConnectResults,
    /// Measurement 4.
    pub memory: Vec<MemoryResult>,
    /// Measurement 5.
    pub broker: Vec<Comparison>,
    /// Measurement 6.
    pub files: Vec<Comparison>,
    /// The clipboard: throughput and latency.
    pub clipboard: ClipboardResults,
    /// The clipboard's fan-out: bursts against devices.
    pub fanout: Vec<BurstCell>,
    /// The attacks: a good client's round trips, the server's memory.
    pub attacks: Vec<(String, Result<AttackResult, String>)>,
}

/// The markers around the targets table, which bench/run.sh copies into
/// README.md between the same two lines.
pub const TARGETS_BEGIN: &str = "<!-- targets: begin (written by make bench) -->";
/// See [`TARGETS_BEGIN`].
pub const TARGETS_END: &str = "<!-- targets: end -->";

/// The first section number of the brokered-channel comparisons (1 to 4 are
/// the raw limit, sync round trips, connection cost and memory).
const FIRST_COMPARISON: usize = 5;

/// How a target fared.
enum Verdict {
    Hit,
    Missed,
    Pending(String),
}

struct Target {
    /// The report section that holds its figures.
    section: usize,
    goal: String,
    measured: String,
    verdict: Verdict,
}

/// Renders the whole report: BENCHMARKS.md.
pub fn render(machine: &Machine, command: &str, plan: &Plan, results: &Results) -> String {
    let quick = command.split_whitespace().any(|arg| arg == "--quick");
    let mut out = String::new();
    run_info::head(&mut out, machine, command, plan, quick);
    targets_section(&mut out, &targets::targets(results), quick);
    raw_section(&mut out, plan, &results.wire);
    round_trips::section(&mut out, plan, &results.wire);
    connect_section(&mut out, plan, &results.connect);
    memory_section(&mut out, plan, &results.memory);
    for (i, comparison) in results.broker.iter().chain(&results.files).enumerate() {
        comparison_section(&mut out, FIRST_COMPARISON + i, comparison);
    }
    clipboard::section(&mut out, clipboard_section(results), &results.clipboard);
    fanout::section(&mut out, clipboard_section(results) + 1, &results.fanout);
    attacks::section(
        &mut out,
        clipboard_section(results) + 2,
        plan,
        &results.attacks,
    );
    out
}

/// The clipboard's section alone, numbered as in a full report of today's
/// measurements (`--only-clipboard`).
pub fn clipboard_alone(results: &ClipboardResults) -> String {
    let mut out = String::new();
    clipboard::section(&mut out, 9, results);
    out
}

/// The clipboard's section number: after every comparison.
fn clipboard_section(results: &Results) -> usize {
    FIRST_COMPARISON + results.broker.len() + results.files.len()
}

/// A title without the "5. " its measurement module numbered it with: the
/// report numbers its sections itself, once.
fn unnumbered(title: &str) -> &str {
    match title.split_once(". ") {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => title,
    }
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        // A reason quoting a server's log may hold a `|`, which would end
        // the cell.
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// A row whose side was not measured: the reason, then empty cells.
fn reason_row(label: String, why: &str, width: usize) -> Vec<String> {
    let mut row = vec![label, why.to_string()];
    row.resize(width, String::new());
    row
}

fn raw_section(out: &mut String, plan: &Plan, wire: &WireResults) {
    let _ = writeln!(out, "## 1. Raw limit (two processes)\n");
    let pp = wire
        .round_trips
        .iter()
        .find(|(s, _)| *s == RoundTripSide::Raw);
    let rows = [
        (
            format!(
                "socketpair ping-pong, 8 bytes ({} per run)",
                fmt_count(plan.ping_pongs as f64)
            ),
            pp.map(|(_, o)| o.clone()).unwrap_or(Err("not run".into())),
            "round trips/s",
        ),
        (
            format!(
                "SCM_RIGHTS, 1 fd per 8-byte message, streamed ({} per run)",
                fmt_count(plan.fds as f64)
            ),
            wire.fd_stream.clone(),
            "fds/s",
        ),
    ];
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(label, outcome, unit)| match outcome {
            Ok(s) => vec![
                label,
                format!("{} {unit}", fmt_count(s.median_rate())),
                fmt_secs(s.median_wall_per_op()),
                s.runs.len().to_string(),
            ],
            Err(why) => reason_row(label, &why, 4),
        })
        .collect();
    table(
        out,
        &["measurement", "median rate", "time per op", "runs"],
        &rows,
    );
}

fn ratio(a: Option<&Series>, b: Option<&Series>, f: fn(&Series) -> f64) -> String {
    match (a, b) {
        (Some(a), Some(b)) => fmt_ratio(f(a) / f(b)),
        _ => "n/a".to_string(),
    }
}

/// [`cpu_ratio`] for a table cell: "n/a" where either side has no figure.
fn cpu_ratio_cell(a: Option<&Series>, b: Option<&Series>) -> String {
    cpu_ratio(a, b).map_or("n/a".to_string(), fmt_ratio)
}

fn connect_section(out: &mut String, plan: &Plan, connect: &ConnectResults) {
    let _ = writeln!(
        out,
        "## 3. Connection cost ({} clients one after another per run)\n\nEach client connects, \
         lists globals (one sync), binds `wl_seat`, gets the keyboard, receives the keymap fd, \
         checks its size, closes it and disconnects.\n",
        fmt_count(plan.clients as f64)
    );
    let reference = connect
        .iter()
        .find(|(k, _)| *k == ServerKind::WaylandRs)
        .and_then(|(_, o)| o.as_ref().ok());
    let rows: Vec<Vec<String>> = connect
        .iter()
        .map(|(kind, outcome)| match outcome {
            Ok(s) => vec![
                kind.label().to_string(),
                fmt_secs(s.median_wall_per_op()),
                s.median_cpu_per_op().map_or("n/a".into(), fmt_secs),
                ratio(Some(s), reference, Series::median_wall_per_op),
                cpu_ratio_cell(Some(s), reference),
            ],
            Err(why) => reason_row(kind.label().to_string(), why, 5),
        })
        .collect();
    table(
        out,
        &[
            "server",
            "wall per client",
            "server CPU per client",
            "wall ÷ wayland-rs",
            "CPU ÷ wayland-rs",
        ],
        &rows,
    );
}

fn memory_section(out: &mut String, plan: &Plan, memory: &[MemoryResult]) {
    let _ = writeln!(
        out,
        "## 4. Server memory per connected client with a keyboard\n\nA fresh server per run \
         ({} runs per count): one warm-up client, RSS read, then N more clients held open by \
         the bench, RSS read again. Keymap copies: distinct (dev, ino) memfds among the \
         server's fds and mappings.\n",
        plan.memory_runs
    );
    let mut rows = Vec::new();
    for result in memory {
        let label = format!(
            "{} @ {}",
            result.kind.label(),
            fmt_count(result.clients as f64)
        );
        let libwayland = memory
            .iter()
            .find(|r| r.kind == ServerKind::Libwayland && r.clients == result.clients)
            .and_then(MemoryResult::median_kib_per_client);
        match &result.samples {
            Ok(samples) => {
                let per = result.median_kib_per_client().unwrap_or(f64::NAN);
                let first = &samples[0];
                let mut names: Vec<String> =
                    samples.iter().flat_map(|s| s.memfds.clone()).collect();
                names.sort();
                names.dedup();
                rows.push(vec![
                    label,
                    format!("{} → {} KiB", first.rss_before_kib, first.rss_after_kib),
                    fmt_kib(per),
                    libwayland.map_or("n/a".into(), |l| fmt_ratio(per / l)),
                    format!(
                        "{} ({})",
                        result.keymap_copies().unwrap_or(0),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                ]);
            }
            Err(why) => rows.push(reason_row(label, why, 5)),
        }
    }
    table(
        out,
        &[
            "server @ clients",
            "RSS before → after (first run)",
            "median per client",
            "÷ libwayland",
            "keymap copies (memfd names)",
        ],
        &rows,
    );
}

fn comparison_section(out: &mut String, number: usize, c: &Comparison) {
    let _ = writeln!(
        out,
        "## {number}. {}\n\nThe first row is the reference; the sides ran interleaved in the \
         same rounds.\n",
        unnumbered(&c.title)
    );
    let reference = c.reference();
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|row| match &row.outcome {
            Ok(s) => vec![
                row.label.clone(),
                format!("{} {}", fmt_count(s.median_rate()), c.unit),
                fmt_secs(s.median_wall_per_op()),
                ratio(Some(s), reference, Series::median_rate),
                ratio(Some(s), reference, Series::median_wall_per_op),
            ],
            Err(why) => reason_row(row.label.clone(), why, 5),
        })
        .collect();
    table(
        out,
        &[
            "side",
            "median rate",
            "time per op",
            "rate ÷ reference",
            "time ÷ reference",
        ],
        &rows,
    );
}

fn compare(
    section: usize,
    goal: &str,
    value: Option<f64>,
    ok: fn(f64) -> bool,
    why: String,
) -> Target {
    compare_with(section, goal, value, ok, why)
}

fn compare_with(
    section: usize,
    goal: &str,
    value: Option<f64>,
    ok: impl Fn(f64) -> bool,
    why: String,
) -> Target {
    match value {
        Some(v) => Target {
            section,
            goal: goal.to_string(),
            measured: fmt_ratio(v),
            verdict: if ok(v) { Verdict::Hit } else { Verdict::Missed },
        },
        None => Target {
            section,
            goal: goal.to_string(),
            measured: String::new(),
            verdict: Verdict::Pending(why),
        },
    }
}

fn targets_section(out: &mut String, targets: &[Target], quick: bool) {
    let _ = writeln!(
        out,
        "## Targets\n\nEach verdict compares this run's figure with the target; § is the \
         section below that holds the figures.\n\n{TARGETS_BEGIN}\n"
    );
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            let verdict = match &t.verdict {
                Verdict::Hit | Verdict::Missed if quick => "not judged (--quick)".to_string(),
                Verdict::Hit => "hit".to_string(),
                Verdict::Missed => "**missed**".to_string(),
                Verdict::Pending(why) => why.clone(),
            };
            vec![
                t.section.to_string(),
                t.goal.clone(),
                t.measured.clone(),
                verdict,
            ]
        })
        .collect();
    table(out, &["§", "target", "measured", "verdict"], &rows);
    let _ = writeln!(out, "{TARGETS_END}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_numbers_are_dropped_from_titles() {
        assert_eq!(
            unnumbered("5. Setting up a channel"),
            "Setting up a channel"
        );
        assert_eq!(
            unnumbered("6. fd passing ≥ 0.9× raw"),
            "fd passing ≥ 0.9× raw"
        );
        assert_eq!(unnumbered("1.5× faster. Or not"), "1.5× faster. Or not");
        assert_eq!(unnumbered("No number"), "No number");
    }

    #[test]
    fn verdicts_are_computed_and_quick_runs_judge_none() {
        let hit = compare(2, "rate ≥ 1.1×", Some(1.2), |r| r >= 1.1, String::new());
        let missed = compare(2, "CPU ≤ 0.7×", Some(1.06), |r| r <= 0.7, String::new());
        let pending = compare(4, "memory", None, |r| r <= 0.25, "not run".into());
        let targets = [hit, missed, pending];
        let mut out = String::new();
        targets_section(&mut out, &targets, false);
        assert!(out.contains("| 2 | rate ≥ 1.1× | 1.200× | hit |"), "{out}");
        assert!(
            out.contains("| 2 | CPU ≤ 0.7× | 1.060× | **missed** |"),
            "{out}"
        );
        assert!(out.contains("| 4 | memory |  | not run |"), "{out}");
        let mut quoted = String::new();
        let log = compare(9, "paste", None, |r| r >= 0.95, "stderr ends: a | b".into());
        targets_section(&mut quoted, &[log], false);
        assert!(quoted.contains("| stderr ends: a \\| b |"), "{quoted}");
        let begin = out.find(TARGETS_BEGIN).expect("begin marker");
        let end = out.find(TARGETS_END).expect("end marker");
        assert!(begin < out.find("| § |").unwrap() && out.find("| § |").unwrap() < end);

        let mut quick = String::new();
        targets_section(&mut quick, &targets, true);
        assert!(
            !quick.contains("| hit |") && !quick.contains("missed"),
            "{quick}"
        );
        assert!(
            quick.contains("| 1.200× | not judged (--quick) |"),
            "{quick}"
        );
    }
}
