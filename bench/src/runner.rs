//! Running the sides of one measurement in turn: one warm-up round, then
//! several measured rounds, each round visiting every side once.
//!
//! What it is: the loop that makes "ratios measured in the same process run"
//! hold — the sides are interleaved round by round, so slow spells of a
//! noisy machine are spread over all of them instead of hitting one.
//!
//! What it is not: aware of what is measured. A side's state (a server
//! process, a connected client) and the timed operation are the caller's.

use std::time::Duration;

use crate::stats::{Run, Series};

/// How many rounds and operations each measurement does: fixed counts, so
/// the whole bench takes a bounded time.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Unrecorded rounds before the measured ones.
    pub warmup: usize,
    /// Measured rounds; the report gives their median.
    pub runs: usize,
    /// Round trips per run of the raw ping-pong.
    pub ping_pongs: u64,
    /// Fds per run of the raw `SCM_RIGHTS` stream.
    pub fds: u64,
    /// `wl_display.sync` round trips per run.
    pub syncs: u64,
    /// Unrecorded round trips before callgrind's counters are zeroed.
    pub callgrind_warmups: u64,
    /// Clients per run of the connection cost.
    pub clients: u64,
    /// Client counts held open for the memory measurement.
    pub memory_clients: Vec<u64>,
    /// Fresh-server runs per memory client count.
    pub memory_runs: usize,
    /// Channel set-ups (and `sync` round trips) per run of measurement 5.
    pub setups: u64,
    /// 64 MiB files sent as bytes, or read by the receiver, per run.
    pub big_copies: u64,
    /// 64 MiB files handed over as an fd per run.
    pub big_handovers: u64,
    /// Bytes per paste of the clipboard throughput measurement (one paste
    /// per run).
    pub clipboard_bytes: u64,
    /// Bytes per paste of its second, small size.
    pub clipboard_small_bytes: u64,
    /// Pastes per run at the small size.
    pub clipboard_small_pastes: u64,
    /// The persisted selection whose cost in the server's memory is read
    /// (and the server's `--persist-max`).
    pub persist_rss_bytes: u64,
    /// Copy-to-first-byte pastes (and `sync`s) per run.
    pub clipboard_rounds: u64,
    /// Data-control devices connected in the fan-out measurement.
    pub fanout_devices: Vec<u64>,
    /// Selection changes per burst in the fan-out measurement.
    pub fanout_bursts: Vec<u64>,
    /// Time after which a fan-out cell records no more rounds (it keeps
    /// at least one).
    pub fanout_budget: Duration,
    /// Devices connected during the clipboard attacks.
    pub attack_devices: u64,
    /// Name owners of attack 4.
    pub attack_owners: usize,
    /// Connections that never read, attack 8.
    pub attack_readers: usize,
    /// Good-client round trips per phase of the attack measurement.
    pub attack_syncs: u64,
    /// The longest a phase of the attack measurement takes.
    pub attack_phase: Duration,
}

/// One side of a measurement: its label, its live state (or why it has
/// none), and the results of its recorded runs.
pub struct Side<T, R = Run> {
    /// How the side is named in the report.
    pub label: String,
    state: Result<T, String>,
    results: Vec<R>,
}

impl<T, R: Clone> Side<T, R> {
    /// A side ready to run.
    pub fn ready(label: impl Into<String>, state: T) -> Self {
        Side {
            label: label.into(),
            state: Ok(state),
            results: Vec::new(),
        }
    }

    /// A side that cannot run, and why (it is reported, never measured).
    pub fn unavailable(label: impl Into<String>, why: impl Into<String>) -> Self {
        Side {
            label: label.into(),
            state: Err(why.into()),
            results: Vec::new(),
        }
    }

    /// A side from the result of setting it up.
    pub fn from_setup(label: impl Into<String>, setup: Result<T, String>) -> Self {
        match setup {
            Ok(state) => Side::ready(label, state),
            Err(why) => Side::unavailable(label, why),
        }
    }

    /// The live state, if the side is still able to run.
    pub fn state_mut(&mut self) -> Option<&mut T> {
        self.state.as_mut().ok()
    }

    /// The results of the recorded runs, or why there are none.
    pub fn results(&self) -> Result<Vec<R>, String> {
        match &self.state {
            Ok(_) if self.results.is_empty() => Err("failed: no runs recorded".to_string()),
            Ok(_) => Ok(self.results.clone()),
            Err(why) => Err(why.clone()),
        }
    }
}

impl<T> Side<T, Run> {
    /// The recorded runs as a [`Series`], or why there are none.
    pub fn outcome(&self) -> Result<Series, String> {
        self.results().map(|runs| Series { runs })
    }
}

/// `warmup` unrecorded rounds then `runs` recorded ones; each round calls
/// `once` on every side still able to run. A side whose run fails stops
/// there, and its error becomes its outcome.
pub fn interleave<T, R: Clone>(
    what: &str,
    sides: &mut [Side<T, R>],
    warmup: usize,
    runs: usize,
    mut once: impl FnMut(&mut T) -> Result<R, String>,
) {
    for round in 0..warmup + runs {
        let recorded = round >= warmup;
        for side in sides.iter_mut() {
            let Ok(state) = &mut side.state else {
                continue;
            };
            log::info!(
                "{what}: {} {} ({})",
                if recorded { "run" } else { "warm-up" },
                round + 1,
                side.label
            );
            match once(state) {
                Ok(result) if recorded => side.results.push(result),
                Ok(_) => {}
                Err(why) => {
                    log::warn!("{what}: {} failed: {why}", side.label);
                    side.state = Err(format!("failed: {why}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_is_not_recorded_and_a_failure_stops_a_side() {
        let mut sides: Vec<Side<u32>> = vec![Side::ready("a", 0), Side::ready("b", 0)];
        sides.push(Side::unavailable("c", "pending: not written"));
        let mut calls = 0;
        interleave("test", &mut sides[..2], 1, 3, |count| {
            calls += 1;
            *count += 1;
            if *count == 3 && calls % 2 == 0 {
                return Err("boom".into());
            }
            Ok(Run {
                ops: 1,
                wall: Duration::from_millis(1),
                server_cpu: None,
            })
        });
        assert_eq!(sides[0].outcome().unwrap().runs.len(), 3);
        assert_eq!(sides[1].outcome().unwrap_err(), "failed: boom");
        assert_eq!(sides[2].outcome().unwrap_err(), "pending: not written");
    }
}
