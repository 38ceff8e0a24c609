//! A `waypass-client` process whose stdout lines are read as they come,
//! shared by the broker, `listen` and `send` end-to-end tests.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;

use crate::{bin, wait_timeout, Server, PATIENCE};

/// A `waypass-client` process whose stdout lines are read as they come.
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its stdout lines not read yet, as they come.
    pub lines: mpsc::Receiver<String>,
    /// Its stdout lines read so far.
    pub seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Running {
    /// Runs `prefix... waypass-client --socket S args...`.
    pub fn spawn(server: &Server, prefix: &[&str], args: &[&str]) -> Running {
        let client = bin("waypass-client");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(&client);
                cmd
            }
            None => Command::new(&client),
        };
        cmd.arg("--socket").arg(server.socket_arg()).args(args);
        Self::spawn_command(cmd)
    }

    /// Runs `cmd`, reading its stdout as lines.
    pub fn spawn_command(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn waypass-client");
        let stdout = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for a stdout line that satisfies `pred` and returns it.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no line {what}; stdout so far: {:?}", self.seen);
                }
            }
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process; returns every stdout line and stderr.
    pub fn kill(mut self) -> (Vec<String>, String) {
        let _ = self.child.kill();
        let (_, lines, stderr) = self.finish();
        (lines, stderr)
    }

    /// Waits for a stdout line equal to `want`.
    pub fn expect_exact(&mut self, want: &str) {
        self.expect_line(&format!("{want:?}"), |line| line == want);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it and returns what it printed on stdout.
    pub fn stop(self) -> Vec<String> {
        self.kill().0
    }

    /// Waits for the exit; returns the status, every stdout line, stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let status = wait_timeout(&mut self.child, PATIENCE).expect("client exits in time");
        self.seen.extend(self.lines.iter());
        let stderr = self.stderr.take().expect("stderr reader");
        (
            status,
            std::mem::take(&mut self.seen),
            stderr.join().expect("stderr reader"),
        )
    }
}

impl Drop for Running {
    /// A test that fails leaves no process behind.
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
