//! [`Deadline`]: one end time for a whole call, and the timeout it came
//! from.
//!
//! What it is: a copyable pair (`Instant`, `Duration`) that a call such as
//! [`crate::KeymapWatcher::connect`] or [`crate::Broker::connect_to`]
//! creates once and hands to every wait inside it (round trips, waiting
//! for an event, retries), so that the timeout the caller gave bounds the
//! whole call, and an error can name that timeout rather than what was left
//! of it. What it is not: a timer or a clock source.

use std::time::{Duration, Instant};

/// The end of a call's time, and the timeout it was computed from.
///
/// ```
/// use std::time::Duration;
/// use waypass_client::Deadline;
///
/// let deadline = Deadline::after(Duration::from_millis(300));
/// assert_eq!(deadline.timeout(), Duration::from_millis(300));
/// assert!(deadline.remaining() <= Duration::from_millis(300));
/// assert!(!deadline.passed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now. A timeout too large for the clock is cut to a
    /// century, which no call outlives.
    pub fn after(timeout: Duration) -> Deadline {
        let now = Instant::now();
        let at = now
            .checked_add(timeout)
            .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
            .unwrap_or(now);
        Deadline { at, timeout }
    }

    /// When the time runs out.
    pub fn at(self) -> Instant {
        self.at
    }

    /// The timeout this deadline was made from, for error messages.
    pub fn timeout(self) -> Duration {
        self.timeout
    }

    /// The time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the time has run out.
    pub fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of this deadline's end and `other`.
    pub fn min_with(self, other: Instant) -> Instant {
        self.at.min(other)
    }
}
