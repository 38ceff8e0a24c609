//! What the tests of `waypass-server --persist` share: a copier whose
//! answer to each paste request is scripted per MIME type (bytes, bytes
//! for ever, or nothing at all), the server's log lines about its copies,
//! the sizes of the memfds it holds them in, and reading a paste with a
//! hang detector.
//!
//! What it is not: a clipboard client anyone should use (the scripted
//! copier panics on what a test would call a failure), or a check of the
//! server's behaviour: the tests assert, these helpers only observe.
//!
//! # Implementation notes
//!
//! The copier is a [`Clipboard`] on a thread of its own that polls its
//! connection and hands each `send(mime, fd)` to a writer thread, so that
//! a type written for ever or a pipe the server stops reading never holds
//! up the other types. [`ScriptedCopier::leave`] drops the connection
//! (what the server sees when a copier is killed) and reports what each
//! writer met.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_client::{Clipboard, Selection};

use crate::{Server, PATIENCE};

/// What the scripted copier does with a paste request for one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Writes these bytes, then closes the pipe.
    Bytes(Vec<u8>),
    /// Writes until a write fails (or [`FOREVER_CAP`] bytes went through).
    Forever,
    /// Holds the pipe open and writes nothing, until the copier leaves.
    Nothing,
}

/// A [`Script::Forever`] writer gives up after this many bytes: far over
/// any budget a test sets, so reaching it means the server never closed
/// the pipe.
pub const FOREVER_CAP: u64 = 1 << 30;

/// How one paste request to the scripted copier ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was written and the pipe closed.
    Written(u64),
    /// A write failed with this error after `written` bytes (`BrokenPipe`:
    /// the server closed its read end).
    Failed {
        /// Bytes written before the failure.
        written: u64,
        /// The error.
        kind: ErrorKind,
    },
    /// A [`Script::Forever`] writer reached [`FOREVER_CAP`].
    Capped,
    /// [`Script::Nothing`]: the pipe was held, then closed when leaving.
    Held,
}

/// One paste request the copier was sent, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The MIME type asked for.
    pub mime: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// A copier whose answer to each paste request is scripted per type, on a
/// thread of its own; it leaves (its connection closes) on
/// [`ScriptedCopier::leave`] or on drop.
pub struct ScriptedCopier {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<Vec<Served>>>,
    thread: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl ScriptedCopier {
    /// Connects to `server`, offers the `types` (in that order) as the
    /// `which` selection and returns once the selection is set.
    pub fn copy(server: &Server, which: Selection, types: &[(&str, Script)]) -> ScriptedCopier {
        let socket = server.socket_arg().to_owned();
        let script: Vec<(String, Script)> = types
            .iter()
            .map(|(mime, s)| ((*mime).to_owned(), s.clone()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let (set, is_set) = mpsc::channel();
        let thread = {
            let (stop, served) = (stop.clone(), served.clone());
            thread::spawn(move || serve(&socket, which, script, &stop, &served, set))
        };
        is_set
            .recv_timeout(PATIENCE)
            .expect("the scripted copier set its selection");
        ScriptedCopier {
            stop,
            served,
            thread: Some(thread),
        }
    }

    /// The paste requests that have ended so far.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().expect("served").clone()
    }

    /// Waits (up to [`PATIENCE`]) until a request for `mime` has ended;
    /// returns how.
    pub fn wait_served(&self, mime: &str) -> Outcome {
        let start = Instant::now();
        loop {
            if let Some(s) = self.served().into_iter().find(|s| s.mime == mime) {
                return s.outcome;
            }
            assert!(start.elapsed() < PATIENCE, "no request for {mime} ended");
            thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Closes the connection (as a killed copier's), then waits for every
    /// writer and returns what each request met.
    pub fn leave(mut self) -> Vec<Served> {
        self.stop_and_join();
        self.served()
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let writers = thread.join().expect("the copier's thread");
            for w in writers {
                w.join().expect("a writer");
            }
        }
    }
}

impl Drop for ScriptedCopier {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop_and_join();
        } else {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// The copier's thread: copies, then hands each request to a writer until
/// told to stop; returns the writers, after closing the connection and
/// every held pipe.
fn serve(
    socket: &str,
    which: Selection,
    script: Vec<(String, Script)>,
    stop: &AtomicBool,
    served: &Arc<Mutex<Vec<Served>>>,
    set: mpsc::Sender<()>,
) -> Vec<JoinHandle<()>> {
    let mut clipboard = Clipboard::connect(Some(socket)).expect("the copier connects");
    let types: Vec<&str> = script.iter().map(|(m, _)| m.as_str()).collect();
    clipboard.copy(which, &types).expect("copy");
    let script: HashMap<String, Script> = script.into_iter().collect();
    let _ = set.send(());
    let mut held: Vec<(String, OwnedFd)> = Vec::new();
    let mut writers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(clipboard.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(20u8));
        // The server hung up on us: nothing more will come.
        if clipboard.poll_changes().is_err() {
            break;
        }
        for send in clipboard.take_sends().expect("take sends") {
            let mime = send.mime;
            let fd = send.fd;
            match script.get(&mime).cloned() {
                Some(Script::Nothing) => held.push((mime, fd)),
                Some(s) => {
                    let served = served.clone();
                    writers.push(thread::spawn(move || {
                        let outcome = write(File::from(fd), &s);
                        served
                            .lock()
                            .expect("served")
                            .push(Served { mime, outcome });
                    }));
                }
                None => panic!("the copier was asked for {mime:?}, which it never offered"),
            }
        }
    }
    drop(clipboard);
    let mut served = served.lock().expect("served");
    for (mime, fd) in held {
        drop(fd);
        served.push(Served {
            mime,
            outcome: Outcome::Held,
        });
    }
    writers
}

/// Writes what `script` says into `pipe`.
fn write(mut pipe: File, script: &Script) -> Outcome {
    let (data, forever): (&[u8], bool) = match script {
        Script::Bytes(data) => (data, false),
        Script::Forever => (&[0x5a; 1 << 16], true),
        Script::Nothing => unreachable!("held, not written"),
    };
    let mut written = 0u64;
    loop {
        let mut rest = data;
        while !rest.is_empty() {
            match pipe.write(rest) {
                Ok(n) => {
                    written += n as u64;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Outcome::Failed {
                        written,
                        kind: e.kind(),
                    }
                }
            }
        }
        if !forever {
            return Outcome::Written(written);
        }
        if written >= FOREVER_CAP {
            return Outcome::Capped;
        }
    }
}

/// What a `persisted the … selection of client (…): N of M types, B
/// bytes` log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persisted {
    /// Types kept (N).
    pub kept: usize,
    /// Types offered (M).
    pub offered: usize,
    /// Bytes kept (B).
    pub bytes: u64,
}

impl Persisted {
    /// Parses the part after the last `): ` of a `persisted the …` line.
    pub fn parse(line: &str) -> Option<Persisted> {
        let (_, tail) = line.rsplit_once("): ")?;
        let mut words = tail.split_whitespace();
        let kept = words.next()?.parse().ok()?;
        (words.next()? == "of").then_some(())?;
        let offered = words.next()?.parse().ok()?;
        (words.next()? == "types,").then_some(())?;
        let bytes = words.next()?.parse().ok()?;
        Some(Persisted {
            kept,
            offered,
            bytes,
        })
    }
}

/// `regular` or `primary`, as the server's log lines name a selection.
pub fn selection_word(which: Selection) -> &'static str {
    match which {
        Selection::Regular => "regular",
        Selection::Primary => "primary",
    }
}

/// Waits for the `nth` (from 1) `persisted the regular|primary selection`
/// line of `server`'s log and returns what it says.
pub fn wait_persisted(server: &Server, which: Selection, nth: usize) -> Persisted {
    let needle = format!("persisted the {} selection", selection_word(which));
    let line = server.wait_log(&needle, nth);
    Persisted::parse(&line).unwrap_or_else(|| panic!("unexpected persisted line: {line}"))
}

/// The sizes of the memfds named `name` that process `pid` holds open,
/// one per file (an fd and its dup count once), from `/proc/PID/fd` and
/// `fstat`.
pub fn memfd_sizes(pid: i32, name: &str) -> Vec<u64> {
    let prefix = format!("/memfd:{name}");
    let mut sizes = BTreeMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .flatten()
    {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        if !target.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        if let Ok(meta) = fs::metadata(entry.path()) {
            sizes.insert((meta.dev(), meta.ino()), meta.size());
        }
    }
    sizes.into_values().collect()
}

/// The name of the memfds the server keeps selections in.
pub const SELECTION_MEMFD: &str = "waypass-selection";

/// Reads `pipe` to EOF, panicking if no byte and no EOF comes for
/// [`PATIENCE`] (a hang, not a slow machine).
pub fn read_patiently(pipe: &mut File) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::try_from(PATIENCE).expect("timeout"))?;
        assert!(ready > 0, "a paste stalled after {} bytes", got.len());
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `len` bytes from `/dev/urandom`.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("read /dev/urandom");
    data
}
