//! Waiting for input inside `recvmsg`: the receive timeout that bounds a
//! blocking [`Connection::recv_wait`](super::Connection::recv_wait).
//!
//! What it is: the choice of `SO_RCVTIMEO` for a wait that must end by a
//! deadline, and the bookkeeping that keeps `setsockopt` calls rare. What it
//! is not: an event loop, or a replacement for `poll` when output is queued
//! too (a blocking `recvmsg` cannot also wait for room to write).
//!
//! # Implementation notes
//!
//! - **Why.** Waiting with `poll` and then reading with `recvmsg` takes two
//!   calls where one does the job. A `recvmsg` without `MSG_DONTWAIT` on a socket
//!   whose file is in blocking mode sleeps until data, end of file, a signal
//!   or `SO_RCVTIMEO`, and then reads: one call.
//! - **Keeping deadlines.** The timeout set on the socket is never longer
//!   than the time left, so a wait never overshoots its deadline; it may be
//!   shorter, and then the `recvmsg` returns `EAGAIN` early and the caller
//!   waits again. Setting it on every wait would cost a `setsockopt` each
//!   time, so it is set to a power of two of microseconds, at most
//!   [`SLICE`], that fits in the time left, and only changed when it no
//!   longer fits or is less than half of what would fit. A client whose
//!   deadlines are seconds away sets it once and never again.
//! - **Blocking mode.** The socket's file leaves non-blocking mode at the
//!   first blocking wait (one `ioctl(FIONBIO)`); every other call of
//!   [`Connection`](super::Connection) passes `MSG_DONTWAIT`, so nothing else
//!   changes. The file's mode is shared with every duplicate of the fd.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// The longest receive timeout set: a wait with no deadline, or a far one,
/// wakes at most this often and goes back to sleep.
pub(super) const SLICE: Duration = Duration::from_secs(1);

/// The receive timeout currently set on one socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReceiveTimeout {
    /// `None`: never set (the kernel's default, no timeout).
    set: Option<Duration>,
}

/// What a blocking wait should do before its `recvmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitPlan {
    /// The deadline has passed: only a non-blocking `recvmsg` is left.
    DontBlock,
    /// Block with the timeout that is set now.
    Block,
    /// Set this timeout first, then block.
    SetThenBlock(Duration),
}

impl ReceiveTimeout {
    /// What to do to wait until `deadline` (`None`: no limit), `now` being
    /// the current time.
    pub(super) fn plan(self, deadline: Option<Instant>, now: Instant) -> WaitPlan {
        let Some(deadline) = deadline else {
            // Any timeout works: an early wakeup just waits again.
            return WaitPlan::Block;
        };
        let left = deadline.saturating_duration_since(now);
        if left < Duration::from_micros(1) {
            return WaitPlan::DontBlock;
        }
        let fits = fitting(left);
        match self.set {
            Some(set) if set <= left && set >= fits / 2 => WaitPlan::Block,
            _ => WaitPlan::SetThenBlock(fits),
        }
    }

    /// Sets `SO_RCVTIMEO` on `socket` to `timeout` (not zero, which would
    /// mean no timeout at all) and remembers it.
    pub(super) fn set(&mut self, socket: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
        debug_assert!(!timeout.is_zero());
        let tv = TimeVal::new(
            timeout.as_secs() as nix::libc::time_t,
            timeout.subsec_micros() as nix::libc::suseconds_t,
        );
        // On failure the old value is still set: forget it, so the next
        // wait sets one again rather than trusting it.
        self.set = None;
        setsockopt(&socket, sockopt::ReceiveTimeout, &tv)?;
        self.set = Some(timeout);
        Ok(())
    }
}

/// The largest power of two of microseconds not above `left`, capped at
/// [`SLICE`]. `left` is at least one microsecond.
pub(super) fn fitting(left: Duration) -> Duration {
    if left >= SLICE {
        return SLICE;
    }
    let micros = left.as_micros() as u64; // Below SLICE: fits in u64.
    debug_assert!(micros >= 1);
    Duration::from_micros(1 << micros.ilog2())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_fits_in_the_time_left() {
        for micros in [1, 2, 3, 999, 1000, 1023, 1024, 250_000, 999_999] {
            let left = Duration::from_micros(micros);
            let t = fitting(left);
            assert!(t <= left && t * 2 > left, "{micros} µs -> {t:?}");
        }
        assert_eq!(fitting(Duration::from_secs(10)), SLICE);
        assert_eq!(fitting(SLICE), SLICE);
    }

    #[test]
    fn far_deadlines_set_the_timeout_once() {
        let now = Instant::now();
        let mut rt = ReceiveTimeout::default();
        let plan = rt.plan(Some(now + Duration::from_secs(10)), now);
        assert_eq!(plan, WaitPlan::SetThenBlock(SLICE));
        rt.set = Some(SLICE);
        for secs in [10, 5, 2, 1] {
            let plan = rt.plan(Some(now + Duration::from_secs(secs)), now);
            assert_eq!(plan, WaitPlan::Block, "{secs} s left");
        }
        assert_eq!(rt.plan(None, now), WaitPlan::Block);
    }

    #[test]
    fn a_near_deadline_shortens_the_timeout_and_a_passed_one_does_not_block() {
        let now = Instant::now();
        let rt = ReceiveTimeout { set: Some(SLICE) };
        let left = Duration::from_millis(300);
        let WaitPlan::SetThenBlock(t) = rt.plan(Some(now + left), now) else {
            panic!("the 1 s timeout does not fit in 300 ms");
        };
        assert!(t <= left && t * 2 > left);
        assert_eq!(rt.plan(Some(now), now), WaitPlan::DontBlock);
        assert_eq!(
            rt.plan(Some(now), now + Duration::from_secs(1)),
            WaitPlan::DontBlock
        );
    }

    #[test]
    fn one_microsecond_left_still_blocks_for_it() {
        // The smallest timeout the socket takes: a deadline that far away
        // is waited for, not treated as passed.
        let now = Instant::now();
        let rt = ReceiveTimeout::default();
        let left = Duration::from_micros(1);
        assert_eq!(rt.plan(Some(now + left), now), WaitPlan::SetThenBlock(left));
    }

    #[test]
    fn a_short_timeout_left_over_is_raised_again() {
        let now = Instant::now();
        let rt = ReceiveTimeout {
            set: Some(Duration::from_millis(2)),
        };
        let plan = rt.plan(Some(now + Duration::from_secs(10)), now);
        assert_eq!(plan, WaitPlan::SetThenBlock(SLICE));
        // A timeout that still fits and is more than half of what would
        // fit is kept.
        let rt = ReceiveTimeout {
            set: Some(Duration::from_micros(1 << 18)),
        };
        let plan = rt.plan(Some(now + Duration::from_millis(300)), now);
        assert_eq!(plan, WaitPlan::Block);
    }
}
