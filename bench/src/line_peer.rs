//! A peer process of this binary driven by lines: commands on its stdin,
//! answers on its stdout, each answer awaited with a deadline.
//!
//! What it is: the handle the fan-out and attack measurements keep on the
//! device farm and the attackers. A peer may run at a lower priority
//! ([`Priority::Low`], `nice -n 10`): it shares the bench's CPU, and when
//! the good client wakes up to time its round trip, it must not wait
//! behind the crowd it is measured against. What it is not: the server
//! processes (`process::ServerProcess`), which report one line and are
//! read no more.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// The peer's scheduling priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The bench's own.
    Same,
    /// `nice -n 10`: behind the bench when both want the CPU.
    Low,
}

/// A running peer, killed on drop.
pub struct LinePeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
}

impl LinePeer {
    /// Runs `nice -n N <this binary> <args>` (N: 0 or 10, by `priority`);
    /// `what` names it in errors.
    pub fn start(what: &str, args: &[OsString], priority: Priority) -> Result<LinePeer, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let niceness = match priority {
            Priority::Same => "0",
            Priority::Low => "10",
        };
        let mut child = Command::new("nice")
            .args(["-n", niceness])
            .arg(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {what}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(LinePeer {
            child,
            stdin,
            lines,
            what: what.to_string(),
        })
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) it.
    pub fn pause(&self, paused: bool) -> Result<(), String> {
        use nix::sys::signal::{kill, Signal};
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        kill(pid, signal).map_err(|e| format!("cannot signal the {}: {e}", self.what))
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("the {} is gone: {e}", self.what))
    }

    /// The next line, which must start with `word`: the rest of it.
    pub fn expect(&mut self, word: &str, patience: Duration) -> Result<String, String> {
        let line = match self.lines.recv_timeout(patience) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the {} said nothing within {} s",
                    self.what,
                    patience.as_secs()
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("the {} exited ({status})", self.what));
            }
        };
        match line.strip_prefix(word) {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(format!("the {} said {line:?}, not {word:?}", self.what)),
        }
    }

    /// A line it has said already that starts with `word`, if any: the
    /// rest of it (no waiting).
    pub fn try_expect(&mut self, word: &str) -> Option<String> {
        while let Ok(line) = self.lines.try_recv() {
            if let Some(rest) = line.strip_prefix(word) {
                return Some(rest.trim().to_string());
            }
        }
        None
    }

    /// Ends it: stdin closed, then killed, and waited for.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LinePeer {
    fn drop(&mut self) {
        self.end();
    }
}
