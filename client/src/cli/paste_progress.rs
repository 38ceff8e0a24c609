//! The copy loop of `paste`: the pipe to stdout, with a byte counter on
//! stderr when stderr is a terminal and the paste grows large.
//!
//! What it is: [`copy`]. On a terminal, the counter is counting from the
//! first byte but drawn only past [`PROGRESS_THRESHOLD`], so the rate it
//! shows is measured over the whole paste (a counter started at 8 MiB
//! showed 8 MiB over a few microseconds: `203.25 GiB/s`). `SIGINT`,
//! `SIGTERM` and `SIGHUP` are blocked for the loop and read from a
//! `signalfd` beside the pipe, so that ^C first clears the counter's line
//! and then ends the process by the same signal, as the shell expects.
//! What it is not: shown on a pipe, ever, or a choice of what to paste
//! (`cli::paste`).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{raise, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::paste::output;
use super::CliError;

/// Pastes larger than this show a counter on a terminal.
const PROGRESS_THRESHOLD: u64 = 8 << 20;

/// Copies the pipe to `out` until EOF; returns the bytes copied.
pub(super) fn copy(pipe: &mut File, out: &mut impl Write) -> Result<u64, CliError> {
    if !io::stderr().is_terminal() {
        return plain(pipe, out);
    }
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            log::debug!("no signalfd ({e}): pasting without a counter");
            return plain(pipe, out);
        }
    };
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template("pasting {bytes} {bytes_per_sec}") {
        bar.set_style(style);
    }
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut shown) = (0u64, false);
    loop {
        if let Some(signal) = signals.wait(pipe)? {
            bar.finish_and_clear();
            signals.die_of(signal);
        }
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::Output(e)),
        };
        out.write_all(&buf[..n]).map_err(output)?;
        total += n as u64;
        bar.set_position(total);
        if !shown && total >= PROGRESS_THRESHOLD {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            // Drawn now: `set_position` draws only when its rate limit
            // allows, and the next read may be long in coming (a copier
            // that holds its pipe open).
            bar.tick();
            shown = true;
        }
    }
    bar.finish_and_clear();
    Ok(total)
}

/// The copy without a counter.
fn plain(pipe: &mut File, out: &mut impl Write) -> Result<u64, CliError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::Output(e)),
        };
        out.write_all(&buf[..n]).map_err(output)?;
        total += n as u64;
    }
}

/// The signals that end a paste, blocked and readable from a `signalfd`
/// while it lives.
struct Signals {
    fd: SignalFd,
    before: SigSet,
}

impl Signals {
    fn block() -> nix::Result<Signals> {
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        let before = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(Signals { fd, before }),
            Err(e) => {
                let _ = before.thread_set_mask();
                Err(e)
            }
        }
    }

    /// Waits until the pipe is readable (`None`) or a signal came.
    fn wait(&self, pipe: &File) -> Result<Option<Signal>, CliError> {
        loop {
            let mut fds = [
                PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(CliError::Poll(e.into())),
            }
            let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
            if signalled {
                if let Ok(Some(info)) = self.fd.read_signal() {
                    if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                        return Ok(Some(signal));
                    }
                }
            }
            // The pipe has data, EOF or an error: the read tells which.
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return Ok(None);
            }
        }
    }

    /// Ends the process by `signal`, as if it had not been blocked.
    fn die_of(&self, signal: Signal) -> ! {
        let _ = self.before.thread_set_mask();
        let _ = raise(signal);
        // Only if the signal is ignored: the shell's convention.
        std::process::exit(128 + signal as i32);
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = self.before.thread_set_mask();
    }
}
