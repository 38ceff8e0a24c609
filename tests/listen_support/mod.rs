//! Shared by the `listen` tests: a `waypass-client listen` process whose
//! lines are read as they come, and in-process peers (the client library's
//! `Broker` and `PeerChannel`) that can send what the real `send` never
//! would.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::common::{bin, wait_timeout, Server, PATIENCE};
use waypass_client::{Broker, ChannelError, ConnectOptions, Peer, PeerChannel, PeerMessage};

/// A `waypass-client` process whose stdout lines are read as they come.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
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

/// `waypass-client listen bob extra...`, once it said it registered.
pub fn listen(server: &Server, extra: &[&str]) -> Running {
    listen_with(server, &[], extra)
}

/// [`listen`] under a command prefix (`prlimit ...`).
pub fn listen_with(server: &Server, prefix: &[&str], extra: &[&str]) -> Running {
    let mut args = vec!["listen", "bob"];
    args.extend_from_slice(extra);
    let mut listener = Running::spawn(server, prefix, &args);
    let json = extra.contains(&"--json");
    listener.expect_line("saying it registered", |l| {
        l == "registered name bob" || (json && l.contains("\"registered\""))
    });
    listener
}

/// An in-process peer connected to bob.
pub fn peer(server: &Server) -> (Broker, Peer) {
    peer_of(server.socket_arg())
}

/// An in-process peer connected to bob on `socket`.
pub fn peer_of(socket: impl AsRef<OsStr>) -> (Broker, Peer) {
    let socket = socket.as_ref().to_str().expect("utf-8 socket path");
    let mut broker = Broker::connect(Some(socket)).expect("broker");
    let peer = broker
        .connect_to("bob", ConnectOptions::default())
        .expect("connected to bob");
    (broker, peer)
}

/// How the listener answered our message `serial`.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Acked.
    Acked,
    /// Refused, with this reason.
    Refused(String),
}

/// Waits for the answer to `serial`, skipping progress messages.
pub fn answer(channel: &mut PeerChannel, serial: u32) -> Answer {
    match channel.wait_ack(serial, Some(PATIENCE)) {
        Ok(()) => Answer::Acked,
        Err(ChannelError::Refused { reason, .. }) => Answer::Refused(reason),
        Err(e) => panic!("no answer to {serial}: {e:?}"),
    }
}

/// Sends a text and returns the answer.
pub fn say(channel: &mut PeerChannel, text: &str) -> Answer {
    let serial = channel.send_text(text).expect("send text");
    answer(channel, serial)
}

/// Drops any message left in the channel's inbox (acks of earlier serials).
pub fn drain(channel: &mut PeerChannel) {
    while let Ok(Some(m)) = channel.recv(Some(Duration::ZERO)) {
        assert!(!matches!(m, PeerMessage::Text { .. }), "unexpected {m:?}");
    }
}
