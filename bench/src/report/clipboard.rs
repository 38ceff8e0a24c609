//! The clipboard's section of the report: paste throughput from a live
//! copier and from a persisted selection against a plain pipe, latency as
//! a multiple of a `sync` round trip with sway as an anchor, and what a
//! persisted selection costs the server in memory.
//!
//! What it is not: the measurement (`measure_clipboard`,
//! `clipboard_persist`) or the targets' verdicts (`targets`), which take
//! their ratios from here.

use std::fmt::Write;

use super::table;
use crate::clipboard_persist::{MemoryPoint, PersistedRss};
use crate::measure_clipboard::{fmt_size, ClipboardResults, LatencyServer, ThroughputRow, Way};
use crate::stats::{fmt_kib, fmt_ratio, fmt_secs, Series};

/// The goal of the issue "The clipboard outlives its copier": copy → first
/// byte with `--persist` at most this many times sway's.
pub const PERSIST_LATENCY_GOAL: f64 = 0.8;

/// Throughput of the largest paste through a live copier over the plain
/// pipe's, or why not.
pub fn throughput_ratio(results: &ClipboardResults) -> (Option<f64>, String) {
    let largest = results.throughput.iter().map(|r| r.bytes).max();
    let find = |way: Way| {
        results
            .throughput
            .iter()
            .find(|r| Some(r.bytes) == largest && r.way == way)
            .map(|r| &r.outcome)
    };
    ratio_of(find(Way::Live), find(Way::Pipe))
}

/// Copy → first byte with `--persist` over sway's, or why not.
pub fn persist_latency_ratio(results: &ClipboardResults) -> (Option<f64>, String) {
    let find = |server: LatencyServer| {
        results
            .latency
            .iter()
            .find(|r| r.server == server)
            .map(|r| r.outcome.as_ref().map(|l| &l.first_byte))
    };
    match (find(LatencyServer::OursPersist), find(LatencyServer::Sway)) {
        (Some(Ok(ours)), Some(Ok(sway))) => (
            Some(ours.median_wall_per_op() / sway.median_wall_per_op()),
            String::new(),
        ),
        (Some(Err(why)), _) | (_, Some(Err(why))) => (None, why.clone()),
        _ => (None, "not measured".into()),
    }
}

fn ratio_of(
    side: Option<&Result<Series, String>>,
    reference: Option<&Result<Series, String>>,
) -> (Option<f64>, String) {
    match (side, reference) {
        (Some(Ok(s)), Some(Ok(r))) => (Some(s.median_rate() / r.median_rate()), String::new()),
        (Some(Err(why)), _) | (_, Some(Err(why))) => (None, why.clone()),
        _ => (None, "not measured".into()),
    }
}

/// Writes section `n`.
pub fn section(out: &mut String, n: usize, results: &ClipboardResults) {
    let _ = writeln!(out, "## {n}. The clipboard\n");
    throughput_table(out, results);
    latency_table(out, results);
    memory_table(out, &results.rss);
}

fn throughput_table(out: &mut String, results: &ClipboardResults) {
    let _ = writeln!(
        out,
        "Pastes, each timed from the paste's request to its last byte read. A live \
         copier process splices a file into the pipe the paster gave the server in \
         `receive` (the server only forwards the fd; it runs without `--persist`). A \
         persisted selection was copied into a server started with `--persist \
         --persist-max {}` (its own `send` to the copier, read into a sealed memfd), \
         then its copier was killed: the server splices from its memfd into the \
         paster's pipe. The reference is one process that splices the same file into a \
         plain pipe to the bench each time the bench asks (one line on its stdin): one \
         pipe for all its pastes, where a paste makes a new one and goes through the \
         server's `receive` and `send`, a cost that shows at 1 MiB. Each side has its \
         own server; ratios are to the plain pipe at the same size.\n",
        results.persist_budget
    );
    let rows: Vec<Vec<String>> = results
        .throughput
        .iter()
        .map(|row| {
            let reference = results
                .throughput
                .iter()
                .find(|r| r.bytes == row.bytes && r.way == Way::Pipe)
                .map(|r| &r.outcome);
            match &row.outcome {
                Ok(s) => vec![
                    row.label.clone(),
                    row.pastes.to_string(),
                    format!("{:.0} MiB/s", s.median_rate() / f64::from(1u32 << 20)),
                    ratio_of(Some(&row.outcome), reference)
                        .0
                        .map_or(String::new(), fmt_ratio),
                ],
                Err(why) => vec![row.label.clone(), why.clone(), String::new(), String::new()],
            }
        })
        .collect();
    table(
        out,
        &[
            "side",
            "pastes per run",
            "throughput (median)",
            "vs the plain pipe",
        ],
        &rows,
    );
    let copies: Vec<String> = results
        .throughput
        .iter()
        .filter_map(|r: &ThroughputRow| {
            let took = r.copy_took?;
            Some(format!(
                "{}: {}",
                fmt_size(r.bytes),
                fmt_secs(took.as_secs_f64())
            ))
        })
        .collect();
    if !copies.is_empty() {
        let _ = writeln!(
            out,
            "Not in those figures: the copy into the server, from telling the copier to \
             copy to the server's log line saying the copy was complete (polled every \
             millisecond), took {}.\n",
            copies.join(", ")
        );
    }
}

fn latency_table(out: &mut String, results: &ClipboardResults) {
    let _ = writeln!(
        out,
        "Latency: from telling the copier to copy to the first byte pasted (the \
         copier's `set_selection`, the offer to the paster, its `receive`, then the \
         `send` to the copier and its first write; with `--persist`, the copier \
         answers the server's own `send` at once and the server writes the paste from \
         its memfd), against one `wl_display.sync` round trip on the same server, same \
         client. sway runs headless as `nobody` (it refuses root); its RSS includes its \
         renderer.\n"
    );
    let sway = results
        .latency
        .iter()
        .find(|r| r.server == LatencyServer::Sway)
        .and_then(|r| r.outcome.as_ref().ok())
        .map(|r| r.first_byte.median_wall_per_op());
    let rows: Vec<Vec<String>> = results
        .latency
        .iter()
        .map(|row| match &row.outcome {
            Ok(r) => {
                let paste = r.first_byte.median_wall_per_op();
                let sync = r.sync.median_wall_per_op();
                vec![
                    row.label.clone(),
                    fmt_secs(paste),
                    fmt_secs(sync),
                    fmt_ratio(paste / sync),
                    match (row.server, sway) {
                        (LatencyServer::Sway, _) | (_, None) => String::new(),
                        (_, Some(sway)) => fmt_ratio(paste / sway),
                    },
                    r.server_rss_kib.map_or("?".into(), |k| fmt_kib(k as f64)),
                ]
            }
            Err(why) => {
                let mut cells = vec![row.label.clone(), why.clone()];
                cells.resize(6, String::new());
                cells
            }
        })
        .collect();
    table(
        out,
        &[
            "server",
            "copy → first byte",
            "sync round trip",
            "in round trips",
            "÷ sway's",
            "server RSS",
        ],
        &rows,
    );
    let verdict = match persist_latency_ratio(results) {
        (Some(r), _) if r <= PERSIST_LATENCY_GOAL => format!("{}: met", fmt_ratio(r)),
        (Some(r), _) => format!("{}: not met", fmt_ratio(r)),
        (None, why) => format!("not measured ({why})"),
    };
    let _ = writeln!(
        out,
        "The goal of the issue \"The clipboard outlives its copier\": with `--persist`, \
         copy → first byte ≤ {PERSIST_LATENCY_GOAL}× sway's. Measured: {verdict}.\n"
    );
}

fn memory_table(out: &mut String, rss: &Result<PersistedRss, String>) {
    let rss = match rss {
        Ok(rss) => rss,
        Err(why) => {
            let _ = writeln!(
                out,
                "The server's memory with a persisted selection: {why}.\n"
            );
            return;
        }
    };
    let _ = writeln!(
        out,
        "The server's memory with a persisted {} selection (`--persist --persist-max {}`), \
         from `/proc/PID/status`: `RssAnon` is its heap (anonymous pages), `RssShmem` \
         the shared memory it maps. The selection's bytes live in memfds named \
         `waypass-selection`, which are not the server's heap: their pages are \
         counted from the files (`st_blocks` × 512 of each such fd of the server), \
         whether the server maps them or not.\n",
        fmt_size(rss.bytes),
        rss.budget
    );
    let row = |when: &str, p: &MemoryPoint| {
        vec![
            when.to_string(),
            fmt_kib(p.status.rss as f64),
            fmt_kib(p.status.anon as f64),
            fmt_kib(p.status.file as f64),
            fmt_kib(p.status.shmem as f64),
            p.memfds.files.to_string(),
            fmt_kib(p.memfds.allocated as f64 / 1024.0),
        ]
    };
    let rows = vec![
        row("before the copy (copier and paster connected)", &rss.before),
        row("selection persisted, its copier killed", &rss.persisted),
        row("after one paste of it from the server", &rss.after_paste),
    ];
    table(
        out,
        &[
            "when",
            "VmRSS",
            "RssAnon (heap)",
            "RssFile",
            "RssShmem",
            "selection memfds",
            "their pages",
        ],
        &rows,
    );
}
