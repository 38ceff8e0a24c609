//! The clipboard's section of the report: throughput against a plain pipe,
//! latency as a multiple of a `sync` round trip, and sway as an anchor.

use std::fmt::Write;

use super::table;
use crate::measure_clipboard::ClipboardResults;
use crate::stats::{fmt_kib, fmt_ratio, fmt_secs};

/// Throughput through the server over the plain pipe's, or why not.
pub fn throughput_ratio(results: &ClipboardResults) -> (Option<f64>, String) {
    let ours = results.throughput.first().map(|(_, s)| s);
    let pipe = results.throughput.get(1).map(|(_, s)| s);
    match (ours, pipe) {
        (Some(Ok(o)), Some(Ok(p))) => (Some(o.median_rate() / p.median_rate()), String::new()),
        (Some(Err(why)), _) | (_, Some(Err(why))) => (None, why.clone()),
        _ => (None, "not measured".into()),
    }
}

/// Writes section `n`.
pub fn section(out: &mut String, n: usize, results: &ClipboardResults) {
    let mib = results.bytes as f64 / f64::from(1u32 << 20);
    let _ = writeln!(out, "## {n}. The clipboard\n");
    let _ = writeln!(
        out,
        "A paste of {mib:.0} MiB: a copier process splices a file into the pipe the \
         paster gave the server in `receive`; the server only forwards the fd. The \
         reference splices the same file into a plain pipe between two processes.\n"
    );
    let reference = results.throughput.get(1).and_then(|(_, s)| s.as_ref().ok());
    let rows: Vec<Vec<String>> = results
        .throughput
        .iter()
        .map(|(label, series)| match series {
            Ok(s) => vec![
                label.clone(),
                format!("{:.0} MiB/s", s.median_rate() / f64::from(1u32 << 20)),
                reference.map_or(String::new(), |r| {
                    fmt_ratio(s.median_rate() / r.median_rate())
                }),
            ],
            Err(why) => vec![label.clone(), why.clone(), String::new()],
        })
        .collect();
    table(
        out,
        &["side", "throughput (median)", "vs the plain pipe"],
        &rows,
    );
    let _ = writeln!(
        out,
        "Latency: from telling the copier to copy to the first byte pasted (the \
         copier's `set_selection`, the offer to the paster, its `receive`, the \
         `send` to the copier, the first write), against one `wl_display.sync` \
         round trip on the same server, same client. sway runs headless as \
         `nobody` (it refuses root); its RSS includes its renderer.\n"
    );
    let rows: Vec<Vec<String>> = results
        .latency
        .iter()
        .map(|(label, result)| match result {
            Ok(r) => {
                let paste = r.first_byte.median_wall_per_op();
                let sync = r.sync.median_wall_per_op();
                vec![
                    label.clone(),
                    fmt_secs(paste),
                    fmt_secs(sync),
                    fmt_ratio(paste / sync),
                    r.server_rss_kib.map_or("?".into(), |k| fmt_kib(k as f64)),
                ]
            }
            Err(why) => vec![
                label.clone(),
                why.clone(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    table(
        out,
        &[
            "server",
            "copy → first byte",
            "sync round trip",
            "in round trips",
            "server RSS",
        ],
        &rows,
    );
}
