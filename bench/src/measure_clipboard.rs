//! The clipboard: a large paste through waypass-server against the same
//! bytes through a plain pipe, and the latency from `set_selection` to the
//! first byte pasted, as a multiple of one `sync` round trip, against
//! sway 1.7 headless (wlroots' data-control) as an anchor.
//!
//! What it is: two peer processes of this binary — a copier (a
//! `waypass_client::Clipboard` that, on each `copy` line on its stdin,
//! sets a new selection and serves the one paste that follows, splicing a
//! data file into the paster's pipe) and a pipe writer (the same splice
//! into its stdout, the reference) — and the bench process as the paster.
//! What it is not: a test of correctness (the clipboard tests are).
//!
//! # Implementation notes
//!
//! - The data file is a memfd of the bench process that the peers open
//!   through `/proc/<pid>/fd/<n>`, so both sides splice the same pages.
//! - Latency is timed from the line that tells the copier to copy (one
//!   pipe write) to the first byte read from the paste's pipe: the copier's
//!   `set_selection`, the server's offer to the paster, the paster's
//!   `receive`, the server's `send` to the copier, and the first write.
//! - sway is started by [`Sway`]; without sway or setpriv its
//!   side is reported as not measured, with the reason.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{splice, SpliceFFlags};
use waypass_client::{Clipboard, Selection};

use crate::procfs;
use crate::runner::{interleave, Plan, Side};
use crate::servers::{ServerKind, ServerSet};
use crate::stats::{Run, Series};
use waypass_test_support::sway::Sway;

/// The MIME type the copier offers.
const MIME: &str = "application/x-waypass-bench";
/// How long one round may take before the side is called broken.
const PATIENCE: Duration = Duration::from_secs(60);

/// What measurement 9 found.
pub struct ClipboardResults {
    /// Bytes per paste in the throughput runs.
    pub bytes: u64,
    /// Pastes through waypass-server, then the plain pipe.
    pub throughput: Vec<(String, Result<Series, String>)>,
    /// Per server: latency and round-trip series, and its RSS afterwards.
    pub latency: Vec<(String, Result<LatencyResult, String>)>,
}

/// One server's latency figures.
pub struct LatencyResult {
    /// Seconds from "copy" to the first byte pasted (one op per round).
    pub first_byte: Series,
    /// `wl_display.sync` round trips on the same server.
    pub sync: Series,
    /// The server's resident memory after the runs, in KiB.
    pub server_rss_kib: Option<u64>,
}

/// Runs measurement 9.
pub fn measure(plan: &Plan, servers: &ServerSet) -> ClipboardResults {
    let bytes = plan.clipboard_bytes;
    let data = match DataFile::new(bytes) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("failed: cannot make the data file: {e}");
            return ClipboardResults {
                bytes,
                throughput: vec![("waypass-server".into(), Err(why.clone()))],
                latency: vec![("waypass-server".into(), Err(why))],
            };
        }
    };
    ClipboardResults {
        bytes,
        throughput: throughput(plan, servers, &data),
        latency: latency(plan, servers),
    }
}

fn throughput(
    plan: &Plan,
    servers: &ServerSet,
    data: &DataFile,
) -> Vec<(String, Result<Series, String>)> {
    enum How {
        Clipboard(Box<Pair>),
        Pipe,
    }
    let ours = servers
        .start(ServerKind::Ours)
        .and_then(|server| Pair::start(server.socket(), &data.path).map(|p| (server, p)));
    let mut sides: Vec<Side<(How, Option<crate::process::ServerProcess>)>> = vec![
        Side::from_setup(
            "through waypass-server (copier → server-brokered pipe → paster)",
            ours.map(|(server, pair)| (How::Clipboard(Box::new(pair)), Some(server))),
        ),
        Side::ready(
            "plain pipe between two processes (the reference)",
            (How::Pipe, None),
        ),
    ];
    interleave(
        "clipboard throughput",
        &mut sides,
        plan.warmup,
        plan.runs,
        |(how, _)| {
            let started = Instant::now();
            let got = match how {
                How::Clipboard(pair) => pair.paste_all()?,
                How::Pipe => pipe_once(&data.path)?,
            };
            if got != data.bytes {
                return Err(format!("{got} bytes arrived, {} sent", data.bytes));
            }
            Ok(Run {
                ops: data.bytes,
                wall: started.elapsed(),
                server_cpu: None,
            })
        },
    );
    sides
        .into_iter()
        .map(|s| (s.label.clone(), s.outcome()))
        .collect()
}

fn latency(plan: &Plan, servers: &ServerSet) -> Vec<(String, Result<LatencyResult, String>)> {
    let small = match DataFile::new(4096) {
        Ok(d) => d,
        Err(e) => return vec![("waypass-server".into(), Err(format!("failed: {e}")))],
    };
    let mut out = Vec::new();
    let ours = servers.start(ServerKind::Ours);
    out.push((
        "waypass-server".to_string(),
        ours.and_then(|server| {
            let pid = server.pid();
            let result = latency_on(plan, server.socket(), &small);
            result.map(|mut r| {
                r.server_rss_kib = procfs::rss_kib(pid).ok();
                r
            })
        }),
    ));
    let sway = Sway::start().and_then(|sway| {
        let result = latency_on(plan, &sway.socket, &small);
        result.map(|mut r| {
            r.server_rss_kib = procfs::rss_kib(sway.pid()).ok();
            r
        })
    });
    out.push((
        "sway 1.7 headless (wlroots, zwlr_data_control_manager_v1 v2)".to_string(),
        sway,
    ));
    out
}

/// Rounds of copy → first byte, then of `sync` round trips, on one server.
fn latency_on(plan: &Plan, socket: &Path, data: &DataFile) -> Result<LatencyResult, String> {
    let mut pair = Pair::start(socket, &data.path)?;
    let rounds = plan.clipboard_rounds;
    let mut first_byte = Series::default();
    let mut sync = Series::default();
    for run in 0..plan.warmup + plan.runs {
        let mut pastes = Duration::ZERO;
        for _ in 0..rounds {
            pastes += pair.paste_first_byte()?;
        }
        let started = Instant::now();
        for _ in 0..rounds {
            pair.paster
                .session()
                .roundtrip()
                .map_err(|e| format!("sync: {e}"))?;
        }
        let syncs = started.elapsed();
        if run >= plan.warmup {
            first_byte.runs.push(Run {
                ops: rounds,
                wall: pastes,
                server_cpu: None,
            });
            sync.runs.push(Run {
                ops: rounds,
                wall: syncs,
                server_cpu: None,
            });
        }
    }
    Ok(LatencyResult {
        first_byte,
        sync,
        server_rss_kib: None,
    })
}

/// A copier process and the bench's paster, on one server.
struct Pair {
    copier: Child,
    commands: ChildStdin,
    reports: BufReader<ChildStdout>,
    paster: Clipboard,
}

impl Pair {
    fn start(socket: &Path, data: &Path) -> Result<Pair, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut copier = Command::new(exe)
            .arg("peer-copier")
            .arg("--socket")
            .arg(socket)
            .arg("--data")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the copier: {e}"))?;
        let commands = copier.stdin.take().ok_or("no stdin")?;
        let mut reports = BufReader::new(copier.stdout.take().ok_or("no stdout")?);
        expect_line(&mut reports, "ready")?;
        let socket = socket.to_str().ok_or("socket path is not UTF-8")?;
        let paster = Clipboard::connect(Some(socket)).map_err(|e| format!("paster: {e}"))?;
        Ok(Pair {
            copier,
            commands,
            reports,
            paster,
        })
    }

    /// Tells the copier to set a new selection and waits until the paster
    /// sees it; returns the pipe of its paste.
    fn copy_and_paste(&mut self) -> Result<File, String> {
        writeln!(self.commands, "copy").map_err(|e| format!("copier: {e}"))?;
        self.commands.flush().map_err(|e| format!("copier: {e}"))?;
        if !self
            .paster
            .wait_for_change(Selection::Regular, Some(PATIENCE))
            .map_err(|e| format!("paster: {e}"))?
        {
            return Err("no selection came".into());
        }
        self.paster
            .paste(Selection::Regular, MIME)
            .map_err(|e| format!("paste: {e}"))
    }

    /// One round: the time from "copy" to the first byte. Waiting for the
    /// copier to be done with the paste is not timed.
    fn paste_first_byte(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        let mut pipe = self.copy_and_paste()?;
        let mut byte = [0u8; 1];
        pipe.read_exact(&mut byte)
            .map_err(|e| format!("first byte: {e}"))?;
        let took = started.elapsed();
        drop(pipe); // the copier's write ends with EPIPE
        expect_line(&mut self.reports, "served")?;
        Ok(took)
    }

    fn paste_all(&mut self) -> Result<u64, String> {
        let mut pipe = self.copy_and_paste()?;
        let got = drain(&mut pipe)?;
        expect_line(&mut self.reports, "served")?;
        Ok(got)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.copier.kill();
        let _ = self.copier.wait();
    }
}

fn expect_line(reports: &mut impl BufRead, want: &str) -> Result<(), String> {
    let mut line = String::new();
    reports
        .read_line(&mut line)
        .map_err(|e| format!("copier: {e}"))?;
    if line.trim_end() == want {
        Ok(())
    } else {
        Err(format!("the copier said {line:?}, not {want:?}"))
    }
}

/// One reference run: a pipe writer process splices the data into its
/// stdout, which the bench reads.
fn pipe_once(data: &Path) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut writer = Command::new(exe)
        .arg("peer-pipe-writer")
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the pipe writer: {e}"))?;
    let mut pipe = writer.stdout.take().ok_or("no stdout")?;
    let got = drain(&mut pipe);
    let _ = writer.wait();
    got
}

fn drain(pipe: &mut impl Read) -> Result<u64, String> {
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

/// The data both sides send: a memfd of the bench process, filled with a
/// pattern, named by a `/proc` path the peers open.
struct DataFile {
    _file: File,
    path: PathBuf,
    bytes: u64,
}

impl DataFile {
    fn new(bytes: u64) -> io::Result<DataFile> {
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

/// The copier peer: `peer-copier --socket S --data FILE`. Prints `ready`,
/// then for each `copy` line sets a new selection offering [`MIME`],
/// serves the one paste that follows and prints `served`.
pub fn copier(socket: &Path, data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = File::open(data)?;
    let socket = socket.to_str().ok_or("socket path is not UTF-8")?;
    let mut clipboard = Clipboard::connect(Some(socket))?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        if line? != "copy" {
            continue;
        }
        clipboard.copy(Selection::Regular, &[MIME])?;
        let mut served = false;
        while !served {
            clipboard.serve(Some(Duration::from_millis(1)), |_, pipe| {
                served = true;
                splice_all(&data, pipe)
            })?;
        }
        writeln!(out, "served")?;
        out.flush()?;
    }
    Ok(())
}

/// The reference peer: splices FILE into stdout, then exits.
pub fn pipe_writer(data: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = File::open(data)?;
    let stdout = io::stdout();
    let mut out = File::from(stdout.as_fd().try_clone_to_owned()?);
    splice_all(&data, &mut out)?;
    Ok(())
}

/// Splices all of `data` into `pipe` (a paster closing early is EPIPE).
fn splice_all(data: &File, pipe: &mut File) -> io::Result<()> {
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
            Ok(0) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
