//! The clipboard measurement's peer processes: the copier (a
//! `waypass_client::Clipboard` that sets a selection when told to and
//! serves every `send` that comes for it) and the plain-pipe writer (the
//! reference), both splicing one data file; and the bench's handles to
//! them ([`Copier`], [`Pair`], [`PipeWriter`], [`DataFile`]).
//!
//! What it is: the far ends of measurement 9, run as this binary's hidden
//! subcommands `peer-copier` and `peer-pipe-writer`, driven by lines on
//! their stdin and answering on their stdout. What it is not: the timing,
//! which is the bench's (`measure_clipboard`).
//!
//! The data file is a memfd of the bench process that the peers open
//! through `/proc/<pid>/fd/<n>`, so every side splices the same pages.
//!
//! # Implementation notes
//!
//! - The copier serves every `send`, not just "the paste that follows a
//!   copy": with `--persist` the first `send` is the server's own, which
//!   copies the selection into its memfd, and later pastes may never reach
//!   the copier at all. So it waits on its stdin and its connection at once
//!   (`poll`), and prints `served` after each `send` it has written and
//!   closed: the bench counts those lines.
//! - A `send` is written with one blocking `splice` loop, so the copier
//!   serves one paste at a time: the bench pastes one at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{splice, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_client::{Clipboard, Selection};

/// The MIME type the copier offers.
pub const MIME: &str = "application/x-waypass-bench";
/// How long the bench waits for a selection before the side is called broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// The data the sides send: a memfd of the bench process, filled with a
/// pattern, named by a `/proc` path the peers open.
pub struct DataFile {
    _file: File,
    /// Where the peers open it.
    pub path: PathBuf,
    /// Its length.
    pub bytes: u64,
}

impl DataFile {
    /// A new data file of `bytes` bytes.
    pub fn new(bytes: u64) -> io::Result<DataFile> {
        let memfd = memfd::MemfdOptions::default()
            .create("waypass-bench-clipboard")
            .map_err(io::Error::other)?;
        let mut file = memfd.into_file();
        let chunk: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        Ok(DataFile {
            _file: file,
            path,
            bytes,
        })
    }
}

/// A copier process (`peer-copier`), killed on drop: its client is gone
/// then, and so is its source.
pub struct Copier {
    child: Child,
    commands: ChildStdin,
    reports: BufReader<ChildStdout>,
}

impl Copier {
    /// Starts a copier on the server at `socket` and waits until it is
    /// connected.
    pub fn start(socket: &Path, data: &Path) -> Result<Copier, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("peer-copier")
            .arg("--socket")
            .arg(socket)
            .arg("--data")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the copier: {e}"))?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let reports = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut copier = Copier {
            child,
            commands,
            reports,
        };
        copier.expect("ready")?;
        Ok(copier)
    }

    /// Tells it to set a new selection.
    pub fn copy(&mut self) -> Result<(), String> {
        writeln!(self.commands, "copy").map_err(|e| format!("copier: {e}"))?;
        self.commands.flush().map_err(|e| format!("copier: {e}"))
    }

    /// Waits for its next line, which must be `want`.
    pub fn expect(&mut self, want: &str) -> Result<(), String> {
        let mut line = String::new();
        self.reports
            .read_line(&mut line)
            .map_err(|e| format!("copier: {e}"))?;
        if line.trim_end() == want {
            Ok(())
        } else {
            Err(format!("the copier said {line:?}, not {want:?}"))
        }
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copier process and the bench's paster, on one server.
pub struct Pair {
    /// The copier.
    pub copier: Copier,
    /// The paster: the bench's own clipboard client.
    pub paster: Clipboard,
}

impl Pair {
    /// Starts a copier of `data` and connects a paster, on `socket`.
    pub fn start(socket: &Path, data: &Path) -> Result<Pair, String> {
        let copier = Copier::start(socket, data)?;
        let socket = socket.to_str().ok_or("socket path is not UTF-8")?;
        let paster = Clipboard::connect(Some(socket)).map_err(|e| format!("paster: {e}"))?;
        Ok(Pair { copier, paster })
    }

    /// Tells the copier to set a new selection and waits until the paster
    /// sees it.
    pub fn copy(&mut self) -> Result<(), String> {
        self.copier.copy()?;
        if !self
            .paster
            .wait_for_change(Selection::Regular, Some(PATIENCE))
            .map_err(|e| format!("paster: {e}"))?
        {
            return Err("no selection came".into());
        }
        Ok(())
    }
}

/// Pastes the current selection as [`MIME`]; returns the pipe to read.
pub fn paste(paster: &mut Clipboard) -> Result<File, String> {
    paster
        .paste(Selection::Regular, MIME)
        .map_err(|e| format!("paste: {e}"))
}

/// A plain-pipe writer process (`peer-pipe-writer`), killed on drop.
pub struct PipeWriter {
    child: Child,
    commands: ChildStdin,
    pipe: ChildStdout,
    bytes: u64,
}

impl PipeWriter {
    /// Starts a writer of `data`.
    pub fn start(data: &DataFile) -> Result<PipeWriter, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("peer-pipe-writer")
            .arg("--data")
            .arg(&data.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the pipe writer: {e}"))?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let pipe = child.stdout.take().ok_or("no stdout")?;
        Ok(PipeWriter {
            child,
            commands,
            pipe,
            bytes: data.bytes,
        })
    }

    /// Has it write the data once; reads it all.
    pub fn send_once(&mut self) -> Result<u64, String> {
        writeln!(self.commands, "go").map_err(|e| format!("pipe writer: {e}"))?;
        self.commands
            .flush()
            .map_err(|e| format!("pipe writer: {e}"))?;
        drain(&mut (&mut self.pipe).take(self.bytes))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` to its end; returns how many bytes came.
pub fn drain(pipe: &mut impl Read) -> Result<u64, String> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the paste: {e}")),
        }
    }
}

/// The copier peer: `peer-copier --socket S --data FILE`. Prints `ready`;
/// on each `copy` line sets a new selection offering [`MIME`]; writes
/// FILE into the fd of every `send` that comes for its selection and
/// prints `served` after each. Ends at EOF on stdin or when the server
/// hangs up.
pub fn copier(socket: &Path, data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = File::open(data)?;
    let socket = socket.to_str().ok_or("socket path is not UTF-8")?;
    let mut clipboard = Clipboard::connect(Some(socket))?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    // Our own reader of fd 0: std's `Stdin` buffers too, where `poll`
    // cannot see it, and its buffer is not visible to us.
    let mut commands = BufReader::new(File::from(io::stdin().as_fd().try_clone_to_owned()?));
    loop {
        // Lines already buffered would not wake `poll` on stdin.
        let (commands_ready, server_ready) = if commands.buffer().is_empty() {
            let mut fds = [
                PollFd::new(commands.get_ref().as_fd(), PollFlags::POLLIN),
                PollFd::new(clipboard.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                // A signal: look again.
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        } else {
            (true, false)
        };
        if commands_ready {
            let mut line = String::new();
            if commands.read_line(&mut line)? == 0 {
                return Ok(()); // the bench is done with us
            }
            if line.trim_end() == "copy" {
                // Its round trip may read a `send` already: served below.
                clipboard.copy(Selection::Regular, &[MIME])?;
            }
        }
        if server_ready {
            clipboard.poll_changes()?;
        }
        for send in clipboard.take_sends()? {
            let mut pipe = File::from(send.fd);
            match splice_all(&data, &mut pipe) {
                Ok(()) => {}
                // The reader closed early (the latency rounds read one byte).
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e.into()),
            }
            drop(pipe); // EOF for the reader before we say so
            writeln!(out, "served")?;
            out.flush()?;
        }
    }
}

/// The reference peer: `peer-pipe-writer --data FILE`. Splices the whole of
/// FILE into its stdout for each line on its stdin; ends at EOF on stdin.
pub fn pipe_writer(data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = File::open(data)?;
    let stdout = io::stdout();
    let mut out = File::from(stdout.as_fd().try_clone_to_owned()?);
    for line in io::stdin().lock().lines() {
        line?;
        splice_all(&data, &mut out)?;
    }
    Ok(())
}

/// Splices all of `data`, from its start, into `pipe` (a paster closing
/// early is EPIPE).
pub fn splice_all(data: &File, pipe: &mut File) -> io::Result<()> {
    let len = data.metadata()?.len();
    let mut offset: i64 = 0;
    while (offset as u64) < len {
        let left = (len - offset as u64) as usize;
        match splice(
            data.as_fd(),
            Some(&mut offset),
            pipe.as_fd(),
            None,
            left,
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            // The file is shorter than its length said: nothing more to send.
            Ok(0) => break,
            // Progress, or a signal: go on from the new offset.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
