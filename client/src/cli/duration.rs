//! Durations on the command line: `--timeout-ms 500`, `--timeout-ms 2s`.
//!
//! What it is: [`parse_duration`], the clap value parser of every
//! `--timeout-ms`. A plain number is milliseconds, as the flag's name says;
//! a number with a unit (`500ms`, `2s`, `1m`, `1m30s`, `1h`) is read the
//! humantime way. What it is not: a deadline; the commands and the library
//! decide what the duration bounds.
//!
//! # Implementation notes
//!
//! Units are parsed by the `humantime` crate (tiny, no dependencies, the
//! syntax users know from systemd and other Rust tools), rather than by hand: it already knows
//! compound forms and reports which unit it did not understand. Only the
//! unit-less case is ours, because humantime refuses a bare number.

use std::time::Duration;

/// Parses `MS` or a duration with units (`500ms`, `2s`, `1m`).
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map(Duration::from_millis).map_err(|_| {
            format!("{text} milliseconds is too long; give a unit instead, e.g. 90s or 5m")
        });
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{e}; give milliseconds (500) or a number with a unit (500ms, 2s, 1m)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_number_is_milliseconds() {
        assert_eq!(parse_duration("500"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("60000"), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn units_are_understood() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn nonsense_is_one_clear_error() {
        for bad in [
            "",
            "2 parsecs",
            "-5",
            "1.5.2s",
            "ms",
            "99999999999999999999999",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("unit"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
    }
}
