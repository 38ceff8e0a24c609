//! The head of BENCHMARKS.md: the title, the fixed text (how to run, the
//! method: `bench/src/method.md`), and what identifies this run: the date,
//! the command, the machine, the rounds, and how long the measurements took.
//!
//! What it is: formatting, plus two readings of the clock (the UTC date, and
//! this process's age from `/proc`). What it is not: a place for figures;
//! the method text states none, so it cannot contradict a run.

use std::fmt::Write;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::machine::Machine;
use crate::runner::Plan;

/// The fixed text between the title and this run: no figures in it.
const METHOD: &str = include_str!("../method.md");

/// Writes the title, the fixed text and the "This run" section.
pub fn head(out: &mut String, machine: &Machine, command: &str, plan: &Plan, quick: bool) {
    let _ = writeln!(
        out,
        "# Benchmarks\n\n<!-- Written by `make bench` (bench/run.sh, bench/src/report.rs) \
         from one run. Do not edit: run `make bench` again. -->\n"
    );
    if quick {
        let _ = writeln!(
            out,
            "**A `--quick` run: every count divided by 10, to check that the harness runs. \
             Its figures mean nothing and no target is judged.**\n"
        );
    }
    let _ = writeln!(out, "{METHOD}");
    let _ = writeln!(out, "## This run\n");
    let _ = writeln!(out, "- date: {}", utc_date(SystemTime::now()));
    let _ = writeln!(out, "- command: `{command}` (run by `make bench`)");
    let took = own_age_secs().map_or("unknown".to_string(), fmt_duration);
    let _ = writeln!(
        out,
        "- measurements took: {took} (after the release builds)"
    );
    let _ = writeln!(
        out,
        "- rounds: {} warm-up, then {} measured per side, interleaved round by round",
        plan.warmup, plan.runs
    );
    let _ = writeln!(out, "{}", machine.markdown());
}

/// `2026-12-01 23:10 UTC`.
pub fn utc_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds since this process started: `/proc/uptime` minus field 22 of
/// `/proc/self/stat` (clock ticks after boot).
fn own_age_secs() -> Option<f64> {
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which ends at the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(uptime - start_ticks / hz as f64)
}

/// `3 min 8 s`, or `42 s`.
fn fmt_duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs / 60 {
        0 => format!("{secs} s"),
        min => format!("{min} min {} s", secs % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        // 2026-12-01 23:10:05 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_796_166_605);
        assert_eq!(utc_date(t), "2026-12-01 23:10 UTC");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_date(t), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(fmt_duration(42.4), "42 s");
        assert_eq!(fmt_duration(188.0), "3 min 8 s");
    }

    #[test]
    fn this_process_has_an_age() {
        let age = own_age_secs().expect("/proc is readable");
        assert!(age >= 0.0, "{age}");
    }
}
