//! A selection persisted by waypass-server (`--persist`): setting one up
//! for the clipboard measurement to paste from, with its copier gone, and
//! what it costs the server in memory, heap and memfd pages apart.
//!
//! What it is: the steps a user takes (copy, the copier leaves, paste),
//! each waited for on the server's own word: its log lines
//! `persisted the regular selection …` (the copy is complete) and
//! `the server now serves the regular selection …` (its copier left). What
//! it is not: a test of persistence (the end-to-end tests are); it checks
//! only that the whole selection was kept and that a paste gives back its
//! length.
//!
//! # Implementation notes
//!
//! - The servers run with `RUST_LOG=info` for those lines, and with
//!   `--limit persist-deadline-ms=60000`: the copy of 1 GiB is not what is
//!   timed, and on a busy machine it could take longer than the default
//!   5 s.
//! - The copier leaves by being killed (its process gone), as when a CI
//!   step ends.
//! - memfd pages are not in the server's `RssAnon` (its heap), and are in
//!   its `RssShmem` only where it maps them: they are counted from the
//!   memfds themselves (`st_blocks` of each `/memfd:waypass-selection` fd).

use std::time::{Duration, Instant};

use waypass_client::Clipboard;

use crate::clipboard_peers::{drain, paste, DataFile, Pair};
use crate::process::ServerProcess;
use crate::procfs::{self, MemfdPages, MemoryStatus};
use crate::servers::{ServerKind, ServerSet};

/// The name waypass-server gives the memfd of each persisted type.
pub const MEMFD_NAME: &str = "waypass-selection";
/// How long a copy into the server, or its copier's leaving, may take to
/// show in its log before the side is called broken.
const PATIENCE: Duration = Duration::from_secs(120);

/// The server's memory at one point of [`measure_rss`].
#[derive(Debug, Clone, Copy)]
pub struct MemoryPoint {
    /// From `/proc/PID/status`.
    pub status: MemoryStatus,
    /// Its `waypass-selection` memfds.
    pub memfds: MemfdPages,
}

/// What [`measure_rss`] found.
#[derive(Debug, Clone)]
pub struct PersistedRss {
    /// The selection's size.
    pub bytes: u64,
    /// The server's `--persist-max`.
    pub budget: String,
    /// With the copier and the paster connected, before the copy.
    pub before: MemoryPoint,
    /// Once the copy is complete and its copier has left.
    pub persisted: MemoryPoint,
    /// After one paste of the whole selection from the server.
    pub after_paste: MemoryPoint,
}

/// `--persist-max` for `bytes`: `1GiB`, `64MiB`, or the plain count.
pub fn size_flag(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b => b.to_string(),
    }
}

/// Starts waypass-server with `--persist --persist-max <budget>`, has a
/// copier copy `data` and leave, and returns the server, the paster (whose
/// offer the server now serves) and how long the copy into the server
/// took (from the copy line to its log line, polled every millisecond).
pub fn persisted(
    servers: &ServerSet,
    data: &DataFile,
    budget: &str,
) -> Result<(ServerProcess, Clipboard, Duration), String> {
    let mut server = start(servers, budget)?;
    let pair = Pair::start(server.socket(), &data.path)?;
    let (paster, took) = copy_and_leave(&mut server, pair, data.bytes)?;
    Ok((server, paster, took))
}

/// The server's memory before a selection of `bytes` is copied, once it is
/// persisted and its copier gone, and after one paste of it; on a server
/// whose budget is `bytes`.
pub fn measure_rss(servers: &ServerSet, bytes: u64) -> Result<PersistedRss, String> {
    let data =
        DataFile::new(bytes).map_err(|e| format!("failed: cannot make the data file: {e}"))?;
    let budget = size_flag(bytes);
    let mut server = start(servers, &budget)?;
    let pid = server.pid();
    let point = || -> Result<MemoryPoint, String> {
        Ok(MemoryPoint {
            status: procfs::memory_status(pid).map_err(|e| format!("failed: {e}"))?,
            memfds: procfs::memfd_pages(pid, MEMFD_NAME).map_err(|e| format!("failed: {e}"))?,
        })
    };
    let pair = Pair::start(server.socket(), &data.path)?;
    let before = point()?;
    let (mut paster, _) = copy_and_leave(&mut server, pair, bytes)?;
    let persisted = point()?;
    let got = drain(&mut paste(&mut paster)?)?;
    if got != bytes {
        return Err(format!(
            "failed: a paste gave {got} bytes, {bytes} were copied"
        ));
    }
    let after_paste = point()?;
    Ok(PersistedRss {
        bytes,
        budget,
        before,
        persisted,
        after_paste,
    })
}

fn start(servers: &ServerSet, budget: &str) -> Result<ServerProcess, String> {
    let args = [
        "--persist",
        "--persist-max",
        budget,
        "--limit",
        "persist-deadline-ms=60000",
    ];
    servers.start_with(ServerKind::Ours, &args, "info")
}

/// The copier copies; once the server says the copy is complete, the
/// copier is killed; once the server says it serves the selection alone,
/// the paster is handed back with the copy's duration.
fn copy_and_leave(
    server: &mut ServerProcess,
    mut pair: Pair,
    bytes: u64,
) -> Result<(Clipboard, Duration), String> {
    let started = Instant::now();
    pair.copy()?;
    let line = server.wait_for_log("persisted the regular selection", PATIENCE)?;
    let took = started.elapsed();
    match kept(&line) {
        Some((1, 1, b)) if b == bytes => {}
        _ => {
            return Err(format!(
                "failed: the server did not keep the selection: {line}"
            ))
        }
    }
    // The server's own `send` (the copy), which the copier answered.
    pair.copier.expect("served")?;
    let Pair { copier, paster } = pair;
    drop(copier); // killed: its client and its source are gone
    server.wait_for_log("the server now serves the regular selection", PATIENCE)?;
    Ok((paster, took))
}

/// `(N, M, B)` from a log line that ends `…: N of M types, B bytes` (B
/// may have thousands separators).
fn kept(line: &str) -> Option<(u64, u64, u64)> {
    let tail = &line[line.rfind(": ")? + 2..];
    let (types, bytes) = tail.split_once(" types, ")?;
    let (n, m) = types.split_once(" of ")?;
    let number = |s: &str| -> Option<u64> {
        let digits: String = s.chars().filter(|c| *c != ',' && *c != '_').collect();
        digits.trim().parse().ok()
    };
    Some((
        number(n)?,
        number(m)?,
        number(bytes.trim_end().strip_suffix(" bytes")?)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_persisted_line_says_what_was_kept() {
        let line = "[2026-12-07T06:00:00Z INFO  waypass_server::persist] persisted the \
                    regular selection of client (pid 42, uid 0): 1 of 1 types, 1073741824 bytes";
        assert_eq!(kept(line), Some((1, 1, 1 << 30)));
        assert_eq!(kept("…: 2 of 3 types, 1,024 bytes"), Some((2, 3, 1024)));
        assert_eq!(kept("persisted nothing"), None);
    }

    #[test]
    fn budgets_are_written_as_the_server_reads_them() {
        assert_eq!(size_flag(1 << 30), "1GiB");
        assert_eq!(size_flag(64 << 20), "64MiB");
        assert_eq!(size_flag(4096), "4096");
    }
}
