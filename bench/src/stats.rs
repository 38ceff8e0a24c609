//! Runs, medians and number formatting for the report.
//!
//! What it is: the arithmetic every measurement shares — a [`Run`] records
//! how many operations one timed run did, its wall time and (when a server
//! process was involved) the server's CPU time; a [`Series`] holds the runs
//! of one side and gives their medians.
//!
//! What it is not: a statistics package. There are no means, no confidence
//! intervals and no outlier rejection: the issue asks for the median of a few
//! runs after a warm-up, and for ratios measured in the same process run.

use std::time::Duration;

/// One timed run of one side of a measurement.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Operations done in the run (round trips, fds, clients).
    pub ops: u64,
    /// Wall time of the run.
    pub wall: Duration,
    /// CPU time (user + system) the server process used during the run.
    pub server_cpu: Option<Duration>,
}

impl Run {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    /// Wall seconds per operation.
    pub fn wall_per_op(&self) -> f64 {
        self.wall.as_secs_f64() / self.ops as f64
    }

    /// Server CPU seconds per operation.
    pub fn cpu_per_op(&self) -> Option<f64> {
        self.server_cpu
            .map(|cpu| cpu.as_secs_f64() / self.ops as f64)
    }
}

/// The measured runs of one side (the warm-up is not in here).
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The runs, in the order they were made.
    pub runs: Vec<Run>,
}

impl Series {
    /// The median rate (operations per second).
    pub fn median_rate(&self) -> f64 {
        median(self.runs.iter().map(Run::rate).collect())
    }

    /// The median wall seconds per operation.
    pub fn median_wall_per_op(&self) -> f64 {
        median(self.runs.iter().map(Run::wall_per_op).collect())
    }

    /// The median server CPU seconds per operation, when every run has one.
    pub fn median_cpu_per_op(&self) -> Option<f64> {
        let cpu: Option<Vec<f64>> = self.runs.iter().map(Run::cpu_per_op).collect();
        cpu.map(median)
    }
}

/// The median of `values`: the middle one, or the mean of the two middle ones.
/// NaN for an empty list.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The `q` quantile (`0 < q ≤ 1`) of `values` by nearest rank: the
/// smallest value with at least a fraction `q` of them at or below it
/// (p99 of 2,000 round trips is the 1,980th fastest). NaN for an empty list.
pub fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// `1234567.8` as `1,234,568`.
pub fn fmt_count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `ns`, `µs`, `ms` or `s` with three significant digits.
pub fn fmt_secs(secs: f64) -> String {
    let (value, unit) = if secs < 1e-6 {
        (secs * 1e9, "ns")
    } else if secs < 1e-3 {
        (secs * 1e6, "µs")
    } else if secs < 1.0 {
        (secs * 1e3, "ms")
    } else {
        (secs, "s")
    };
    format!("{} {unit}", three_digits(value))
}

/// A ratio as `0.873×`.
pub fn fmt_ratio(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.3}×", ratio)
    } else {
        "n/a".to_string()
    }
}

/// KiB with one decimal.
pub fn fmt_kib(kib: f64) -> String {
    format!("{kib:.1} KiB")
}

fn three_digits(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(quantile(values.clone(), 0.5), 100.0);
        assert_eq!(quantile(values.clone(), 0.99), 198.0);
        assert_eq!(quantile(values, 1.0), 200.0);
        assert_eq!(quantile(vec![3.0], 0.99), 3.0);
        assert!(quantile(Vec::new(), 0.5).is_nan());
    }

    #[test]
    fn series_medians_use_each_run() {
        let run = |ops, ms, cpu_ms: Option<u64>| Run {
            ops,
            wall: Duration::from_millis(ms),
            server_cpu: cpu_ms.map(Duration::from_millis),
        };
        let series = Series {
            runs: vec![
                run(100, 100, Some(10)),
                run(100, 50, Some(30)),
                run(100, 200, Some(20)),
            ],
        };
        assert_eq!(series.median_rate(), 1000.0);
        assert_eq!(series.median_wall_per_op(), 0.001);
        assert_eq!(series.median_cpu_per_op(), Some(0.0002));
        let partial = Series {
            runs: vec![run(1, 1, None), run(1, 1, Some(1))],
        };
        assert_eq!(partial.median_cpu_per_op(), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_count(1234567.8), "1,234,568");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_secs(0.0000123), "12.3 µs");
        assert_eq!(fmt_secs(0.25), "250 ms");
        assert_eq!(fmt_secs(2.5e-7), "250 ns");
        assert_eq!(fmt_ratio(0.8734), "0.873×");
        assert_eq!(fmt_ratio(f64::NAN), "n/a");
    }
}
