//! Readings of another process's resource use from `/proc/PID`: open fds
//! and resident memory. What it is not: CPU time or memfd accounting (the
//! load helpers in [`crate::load`] read those).

use std::fs;

/// Number of open fds of process `pid`.
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Resident set size of process `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
