//! Running and waiting for child processes with a hang detector
//! ([`PATIENCE`]): a one-shot `waypass-client`, any prepared command, and
//! polling a condition until it holds. No timing is asserted here: a wait
//! that runs out is a hang, not a slow machine.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bin;

/// How long a test waits for a process before calling it hung. Generous:
/// the machines are shared and noisy; this is a hang detector, not a timing
/// assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `child` until it exits or `limit` passes.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `waypass-client` with `args` and returns its output (panics if it
/// hangs past [`PATIENCE`]).
pub fn run_client(args: &[&str]) -> Output {
    run_client_with(args, |_| {})
}

/// Like [`run_client`], with a hook to adjust the command (env, ...).
pub fn run_client_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    run_with_patience(cmd)
}

/// Runs a prepared command to completion, killing it after [`PATIENCE`].
pub fn run_with_patience(mut cmd: Command) -> Output {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => out.expect("wait_with_output"),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{cmd:?} hung for {PATIENCE:?}");
        }
    }
}

/// Polls `cond` until it holds or [`PATIENCE`] passes; returns whether it held.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Why a child's first stdout line did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstLineError {
    /// Nothing within [`PATIENCE`].
    Timeout,
    /// Its stdout closed first (or was not piped).
    Closed,
}

/// Waits up to [`PATIENCE`] for the first line `child` writes on its piped
/// stdout (a server's socket path), and keeps draining the rest on a
/// thread so that the child never blocks on a full pipe.
pub fn first_line(child: &mut Child) -> Result<String, FirstLineError> {
    let Some(stdout) = child.stdout.take() else {
        return Err(FirstLineError::Closed);
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(line) => Ok(line),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(FirstLineError::Timeout),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(FirstLineError::Closed),
    }
}
