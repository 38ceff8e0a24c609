//! Reading a server process's resource use from `/proc`: CPU time, resident
//! memory, and the memfds it holds open or mapped.
//!
//! What it is: small parsers over `/proc/PID/stat`, `/proc/PID/status`,
//! `/proc/PID/fd` and `/proc/PID/maps`, used on the peer processes the bench
//! spawned (same user, so no privilege is needed).
//!
//! What it is not: a general procfs library. It reads only the fields the
//! report needs, and it does not follow threads: CPU time from
//! `/proc/PID/stat` already covers every thread of the process.
//!
//! # Implementation notes
//!
//! CPU time is the same total as `utime + stime` in `/proc/PID/stat`, but
//! read through `clock_getcpuclockid(pid)`: the kernel keeps it in
//! nanoseconds, while `/proc/PID/stat` rounds it to clock ticks (10 ms), too
//! coarse for runs of a fraction of a second. `/proc/PID/stat` stays as the
//! fallback.
//!
//! A memfd is recognised by its name, which the kernel shows as `/memfd:NAME`
//! both as the target of an fd link and as the path of a mapping. Copies are
//! told apart by `(st_dev, st_ino)`: two fds of one memfd (a read-only reopen,
//! say) are one copy in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::stat::makedev;
use nix::time::clock_getcpuclockid;
use nix::unistd::{sysconf, Pid, SysconfVar};

/// Why a `/proc` file could not be used.
#[derive(Debug)]
pub enum ProcError {
    /// Reading the file failed (the process may have exited).
    Read {
        /// The file.
        path: PathBuf,
        /// The error from the read.
        source: io::Error,
    },
    /// The file did not have the expected shape.
    Parse {
        /// The file.
        path: PathBuf,
        /// What was missing.
        what: &'static str,
    },
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            ProcError::Parse { path, what } => {
                write!(f, "unexpected contents in {}: {what}", path.display())
            }
        }
    }
}

impl std::error::Error for ProcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcError::Read { source, .. } => Some(source),
            ProcError::Parse { .. } => None,
        }
    }
}

fn read(path: PathBuf) -> Result<(String, PathBuf), ProcError> {
    match fs::read_to_string(&path) {
        Ok(text) => Ok((text, path)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// User + system CPU time of process `pid`, all threads: the kernel's
/// nanosecond count through the process's CPU-time clock, or
/// `/proc/PID/stat` in clock ticks where that clock cannot be read.
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    let clock = clock_getcpuclockid(Pid::from_raw(pid as i32)).and_then(|c| c.now());
    match clock {
        Ok(ts) => Ok(Duration::from(ts)),
        Err(e) => {
            log::debug!("CPU clock of {pid} unreadable ({e}); using /proc/{pid}/stat");
            cpu_time_from_stat(pid)
        }
    }
}

/// [`cpu_time`] once no thread of `pid` is running (each sleeps or is
/// stopped), waiting `patience` at most. Another process's CPU clock
/// counts a running thread's time only up to the scheduler's last update
/// (its last tick or switch): a read while the server runs can miss a few
/// milliseconds, and a window opened and closed while it ran all along
/// can read as zero. A sleeping thread's count is exact.
pub fn cpu_time_at_rest(pid: u32, patience: Duration) -> Result<Duration, ProcError> {
    let started = std::time::Instant::now();
    while started.elapsed() < patience && is_running(pid)? {
        std::thread::sleep(Duration::from_micros(200));
    }
    cpu_time(pid)
}

/// Whether a thread of `pid` is running or runnable (state `R`).
fn is_running(pid: u32) -> Result<bool, ProcError> {
    let dir = PathBuf::from(format!("/proc/{pid}/task"));
    let tasks = fs::read_dir(&dir).map_err(|source| ProcError::Read {
        path: dir.clone(),
        source,
    })?;
    for task in tasks.flatten() {
        let Ok((text, _)) = read(task.path().join("stat")) else {
            continue; // a thread that ended meanwhile
        };
        let state = text
            .rfind(')')
            .and_then(|end| text[end + 1..].split_whitespace().next());
        if state == Some("R") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// User + system CPU time of process `pid`, all threads, from `/proc/PID/stat`.
pub fn cpu_time_from_stat(pid: u32) -> Result<Duration, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/stat")))?;
    let ticks = parse_stat_ticks(&text).ok_or(ProcError::Parse {
        path,
        what: "utime and stime (fields 14 and 15)",
    })?;
    Ok(ticks_to_duration(ticks))
}

/// `utime + stime` from the text of a `/proc/PID/stat`. The command name in
/// parentheses may hold spaces, so fields are counted after the last `)`.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // After ")" come field 3 (state) onwards: utime is field 14, stime 15.
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // _SC_CLK_TCK is always defined on Linux; 100 is its value everywhere.
    let hz = match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(hz)) if hz > 0 => hz as u64,
        _ => 100,
    };
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// Resident set size of process `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    parse_status_kib(&text, "VmRSS:").ok_or(ProcError::Parse {
        path,
        what: "a VmRSS line",
    })
}

/// The resident memory of a process split by kind, in KiB, from
/// `/proc/PID/status`: `RssAnon` (heap, stacks: anonymous pages),
/// `RssFile` (mapped files: the binary, libraries) and `RssShmem` (mapped
/// shared memory, memfds included, but only the pages the process maps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStatus {
    /// `VmRSS`: the three below together.
    pub rss: u64,
    /// `RssAnon`.
    pub anon: u64,
    /// `RssFile`.
    pub file: u64,
    /// `RssShmem`.
    pub shmem: u64,
}

/// `VmRSS`, `RssAnon`, `RssFile` and `RssShmem` of process `pid`.
pub fn memory_status(pid: u32) -> Result<MemoryStatus, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    let field = |key: &str, what: &'static str| {
        parse_status_kib(&text, key).ok_or(ProcError::Parse {
            path: path.clone(),
            what,
        })
    };
    Ok(MemoryStatus {
        rss: field("VmRSS:", "a VmRSS line")?,
        anon: field("RssAnon:", "an RssAnon line")?,
        file: field("RssFile:", "an RssFile line")?,
        shmem: field("RssShmem:", "an RssShmem line")?,
    })
}

fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// How many fds process `pid` has open, and its soft `RLIMIT_NOFILE`.
pub fn fd_usage(pid: u32) -> Result<(usize, Option<u64>), ProcError> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let open = match fs::read_dir(&dir) {
        Ok(entries) => entries.count(),
        Err(source) => return Err(ProcError::Read { path: dir, source }),
    };
    let (limits, _) = read(PathBuf::from(format!("/proc/{pid}/limits")))?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l["Max open files".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok());
    Ok((open, soft))
}

/// The memfds a process holds, as distinct files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemfdCensus {
    /// Each distinct memfd by `(st_dev, st_ino)`, with its name.
    pub files: BTreeMap<(u64, u64), String>,
    /// How many of the process's fds are memfds.
    pub open_fds: usize,
    /// How many of its mappings are of memfds.
    pub mappings: usize,
}

/// Counts the distinct memfds among the fds and the mappings of `pid`.
pub fn memfd_census(pid: u32) -> Result<MemfdCensus, ProcError> {
    let mut census = MemfdCensus::default();
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = fs::read_dir(&dir).map_err(|source| ProcError::Read {
        path: dir.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        // An fd closed between readdir and readlink/stat is simply skipped.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let Some(name) = memfd_name(&target.to_string_lossy()) else {
            continue;
        };
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        census.open_fds += 1;
        census.files.insert((meta.dev(), meta.ino()), name);
    }
    let (maps, _) = read(PathBuf::from(format!("/proc/{pid}/maps")))?;
    for (key, name) in maps.lines().filter_map(parse_memfd_mapping) {
        census.mappings += 1;
        census.files.insert(key, name);
    }
    Ok(census)
}

/// The memfds named `name` that a process holds open: how many distinct
/// files, their length, and the memory their pages take (`st_blocks` ×
/// 512: what the kernel allocated, mapped by anyone or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemfdPages {
    /// Distinct files, by `(st_dev, st_ino)`.
    pub files: usize,
    /// Their lengths added up, in bytes.
    pub len: u64,
    /// Their allocated pages added up, in bytes.
    pub allocated: u64,
}

/// The memfds named exactly `name` among the fds of `pid` (the target of
/// the `/proc/PID/fd` link is `/memfd:NAME (deleted)`), each counted once.
pub fn memfd_pages(pid: u32, name: &str) -> Result<MemfdPages, ProcError> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = fs::read_dir(&dir).map_err(|source| ProcError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut pages = MemfdPages::default();
    for entry in entries.flatten() {
        // An fd closed between readdir and readlink/stat is simply skipped.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if memfd_name(&target.to_string_lossy()).as_deref() != Some(name) {
            continue;
        }
        // stat follows the link to the memfd itself.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            pages.files += 1;
            pages.len += meta.len();
            pages.allocated += meta.blocks() * 512;
        }
    }
    Ok(pages)
}

/// `NAME` from a path `/memfd:NAME (deleted)`.
fn memfd_name(path: &str) -> Option<String> {
    let name = path.strip_prefix("/memfd:")?;
    Some(name.trim_end_matches(" (deleted)").to_string())
}

/// `((dev, ino), name)` from one line of `/proc/PID/maps` mapping a memfd:
/// `start-end perms offset MAJ:MIN inode /memfd:NAME (deleted)`.
fn parse_memfd_mapping(line: &str) -> Option<((u64, u64), String)> {
    let mut fields = line.split_whitespace();
    let dev = fields.nth(3)?;
    let ino: u64 = fields.next()?.parse().ok()?;
    let path_start = line.find("/memfd:")?;
    let name = memfd_name(&line[path_start..])?;
    let (major, minor) = dev.split_once(':')?;
    let major = u64::from_str_radix(major, 16).ok()?;
    let minor = u64::from_str_radix(minor, 16).ok()?;
    Some(((makedev(major, minor), ino), name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(line), Some(12));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_cpu_time_and_rss_are_readable() {
        let pid = std::process::id();
        // Burn a little CPU so that the reading is not trivially zero forever.
        let mut x = 0u64;
        for i in 0..10_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(std::hint::black_box(x), 1);
        let precise = cpu_time(pid).unwrap();
        let ticks = cpu_time_from_stat(pid).unwrap();
        // Both count the same CPU time; stat rounds down to 10 ms ticks.
        assert!(
            precise + Duration::from_millis(20) >= ticks,
            "{precise:?} vs {ticks:?}"
        );
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(matches!(rss_kib(u32::MAX), Err(ProcError::Read { .. })));
        let (open, limit) = fd_usage(pid).unwrap();
        assert!(open >= 3 && limit.unwrap() > 0);
    }

    #[test]
    fn maps_line_of_a_memfd_is_parsed() {
        let line = "7f00-7f10 r--p 00000000 00:01 2049   /memfd:keymap (deleted)";
        let ((dev, ino), name) = parse_memfd_mapping(line).unwrap();
        assert_eq!((dev, ino), (makedev(0, 1), 2049));
        assert_eq!(name, "keymap");
        assert_eq!(
            parse_memfd_mapping("7f00-7f10 r-xp 0 08:01 5 /usr/lib/x"),
            None
        );
    }

    #[test]
    fn census_counts_one_file_for_two_fds_of_it() {
        let mut file = memfd::MemfdOptions::default()
            .create("census-test-keymap")
            .unwrap()
            .into_file();
        file.write_all(&[7u8; 4096]).unwrap();
        let second = file.as_fd().try_clone_to_owned().unwrap();
        let census = memfd_census(std::process::id()).unwrap();
        let named = |w: &str| census.files.values().filter(|n| n.contains(w)).count();
        assert_eq!(named("census-test-keymap"), 1);
        assert!(census.open_fds >= 2);
        drop(second);
    }

    #[test]
    fn memfd_pages_count_one_file_once_with_its_pages() {
        let mut file = memfd::MemfdOptions::default()
            .create("pages-test-selection")
            .unwrap()
            .into_file();
        file.write_all(&[7u8; 64 << 10]).unwrap();
        let _second = file.as_fd().try_clone_to_owned().unwrap();
        let pages = memfd_pages(std::process::id(), "pages-test-selection").unwrap();
        assert_eq!((pages.files, pages.len), (1, 64 << 10));
        assert!(pages.allocated >= 64 << 10, "{pages:?}");
        let none = memfd_pages(std::process::id(), "pages-test").unwrap();
        assert_eq!(none, MemfdPages::default());
        let status = memory_status(std::process::id()).unwrap();
        assert!(status.rss > 0 && status.rss >= status.anon, "{status:?}");
    }
}
