//! The clipboard fan-out's section of the report and its targets: a burst
//! of selection changes against 1,000 and 10,000 devices, waypass-server
//! beside sway, each cell's server CPU per burst, the good client's stall,
//! and the offers each device got.
//!
//! What it is: formatting and the ratios between cells of the same run
//! (`measure_fanout`). What it is not: a measurement.

use std::fmt::Write;

use super::{compare_with, table, Target};
use crate::measure_fanout::{BurstCell, DEVICES_PER_CONNECTION, OURS, SWAY};
use crate::stats::{fmt_count, fmt_ratio, fmt_secs};

/// A burst of N changes may cost at most this many times a burst of one,
/// and still be called flat in the burst's length.
const FLAT: f64 = 2.0;

/// The cell of `server` at `devices` and `burst`.
fn find<'a>(
    cells: &'a [BurstCell],
    server: &str,
    devices: u64,
    burst: u64,
) -> Option<&'a BurstCell> {
    cells
        .iter()
        .find(|c| c.server == server && c.devices == devices && c.burst == burst)
}

/// The device counts and burst lengths measured, in order.
fn axes(cells: &[BurstCell]) -> (Vec<u64>, Vec<u64>) {
    let mut devices: Vec<u64> = cells.iter().map(|c| c.devices).collect();
    let mut bursts: Vec<u64> = cells.iter().map(|c| c.burst).collect();
    devices.dedup();
    bursts.sort_unstable();
    bursts.dedup();
    (devices, bursts)
}

/// Writes section `n`.
pub fn section(out: &mut String, n: usize, cells: &[BurstCell]) {
    let _ = writeln!(
        out,
        "## {n}. The clipboard's fan-out: bursts of selection changes against many devices\n\n\
         One copier client writes a burst of N selection changes at once (each a new source: \
         `create_data_source`, one `offer`, `set_selection`, the previous source destroyed); \
         a good client at once sends `wl_display.sync` and times its `done` (the stall). The \
         devices, {DEVICES_PER_CONNECTION} per connection, belong to a separate process that \
         reads everything it is told and destroys each replaced offer, as clipboard clients \
         do. Server CPU: user + system time of the server process from just before the burst \
         is written until every device has been told of its last change. Offers per device: \
         what each device was sent for the burst (the latest selection is all a device \
         needs). Both servers ran with the bench on one CPU and the server on the other; \
         ratios are to sway's cell of the same size in this run. A server that closed \
         device connections (wlroots closes a client whose socket stays full) was measured \
         only until the devices still connected had been told: its CPU is then marked ≥, \
         and its later cells were not measured.\n"
    );
    let rows: Vec<Vec<String>> = cells
        .iter()
        .map(|cell| {
            let label = format!(
                "{} @ {} devices",
                cell.server,
                fmt_count(cell.devices as f64)
            );
            let burst = fmt_count(cell.burst as f64);
            let samples = match &cell.samples {
                Ok(samples) => samples,
                Err(why) => {
                    let mut row = vec![label, burst, why.clone()];
                    row.resize(9, String::new());
                    return row;
                }
            };
            let sway = find(cells, SWAY, cell.devices, cell.burst).filter(|_| cell.server != SWAY);
            let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
                (Some(o), Some(t)) => fmt_ratio(o / t),
                _ => String::new(),
            };
            let live = samples.iter().map(|s| s.live).min().unwrap_or(0);
            let closed = samples.iter().map(|s| s.closed).max().unwrap_or(0);
            vec![
                label,
                burst,
                cell.cpu().map_or("n/a".into(), |cpu| {
                    let bound = if closed > 0 { "≥ " } else { "" };
                    format!("{bound}{}", fmt_secs(cpu))
                }),
                ratio(cell.cpu(), sway.and_then(BurstCell::cpu)),
                cell.stall().map_or("n/a".into(), fmt_secs),
                ratio(cell.stall(), sway.and_then(BurstCell::stall)),
                cell.offers_per_device()
                    .map_or("n/a".into(), |o| format!("{o:.1}")),
                if closed == 0 {
                    fmt_count(live as f64)
                } else {
                    format!(
                        "{} ({closed} connections closed by the server)",
                        fmt_count(live as f64)
                    )
                },
                samples.len().to_string(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "server @ devices",
            "changes per burst",
            "server CPU per burst",
            "÷ sway's",
            "stall: sync just after",
            "÷ sway's",
            "offers per device",
            "devices still connected",
            "rounds",
        ],
        &rows,
    );
}

/// The fan-out's targets: flat in the burst's length, below sway's at
/// every size (CPU and stall), per device count.
pub fn targets(n: usize, cells: &[BurstCell]) -> Vec<Target> {
    let (devices, bursts) = axes(cells);
    let (Some(&shortest), Some(&longest)) = (bursts.first(), bursts.last()) else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for d in devices {
        let at = |server: &'static str, burst: u64| find(cells, server, d, burst);
        let why = |server: &'static str| {
            bursts
                .iter()
                .find_map(|&b| at(server, b).and_then(|c| c.samples.as_ref().err().cloned()))
                .unwrap_or_else(|| "not measured".to_string())
        };
        let count = fmt_count(d as f64);
        let flat = at(OURS, longest)
            .and_then(BurstCell::cpu)
            .zip(at(OURS, shortest).and_then(BurstCell::cpu))
            .map(|(long, short)| long / short);
        list.push(compare_with(
            n,
            &format!(
                "fan-out, {count} devices: server CPU for a burst of {} changes ≤ {FLAT}× a \
                 burst of {}'s (flat in the burst's length)",
                fmt_count(longest as f64),
                fmt_count(shortest as f64)
            ),
            flat,
            |r| r <= FLAT,
            why(OURS),
        ));
        for (what, figure) in [
            (
                "server CPU per burst",
                BurstCell::cpu as fn(&BurstCell) -> Option<f64>,
            ),
            ("the good client's stall", BurstCell::stall),
        ] {
            let ratios: Option<Vec<f64>> = bursts
                .iter()
                .map(|&b| Some(figure(at(OURS, b)?)? / figure(at(SWAY, b)?)?))
                .collect();
            let goal =
                format!("fan-out, {count} devices: {what} below sway's at every burst length");
            let target = match ratios {
                Some(r) => {
                    let worst = r.iter().copied().fold(f64::NAN, f64::max);
                    let mut t = compare_with(n, &goal, Some(worst), |r| r < 1.0, String::new());
                    t.measured = format!("{} at worst", fmt_ratio(worst));
                    let cut: Vec<String> = bursts
                        .iter()
                        .filter(|&&b| at(SWAY, b).is_some_and(BurstCell::was_cut))
                        .map(|&b| fmt_count(b as f64))
                        .collect();
                    if !cut.is_empty() {
                        t.measured.push_str(&format!(
                            " (sway closed devices in its burst of {}: its figure there is a \
                             lower bound)",
                            cut.join(", ")
                        ));
                    }
                    t
                }
                None => {
                    let why = match at(OURS, shortest).map(|c| &c.samples) {
                        Some(Err(why)) => why.clone(),
                        _ => why(SWAY),
                    };
                    compare_with(n, &goal, None, |_| true, why)
                }
            };
            list.push(target);
        }
    }
    list
}
