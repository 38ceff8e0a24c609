//! The conditions of the round-trip measurement (issue 14): the client and
//! the servers pinned to different CPUs, runs with steal time on the
//! server's CPU told apart, and the server's syscalls counted with strace.
//!
//! What it is: three small tools. [`Pinning`] puts the bench (the client)
//! on one CPU and each server on another, where the bench may use two, and
//! gives the bench its old CPUs back when dropped. [`steal_ticks`] reads one
//! CPU's steal time from `/proc/stat`. [`count_syscalls`] runs some work
//! while `strace -f -c` is attached to a server and returns the number of
//! syscalls the server made.
//!
//! What it is not: a judge. Whether a run with steal time is discarded, and
//! what a syscall count means, is the caller's.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The bench on one CPU, the servers on another.
pub struct Pinning {
    /// The CPU the client (this process) runs on.
    pub client_cpu: usize,
    /// The CPU each server is put on.
    pub server_cpu: usize,
    saved: CpuSet,
}

impl Pinning {
    /// Pins this process to the first CPU it may use, if it may use two;
    /// `None` (nothing pinned) otherwise.
    pub fn new() -> Option<Pinning> {
        let me = Pid::from_raw(0);
        let saved = sched_getaffinity(me).ok()?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| saved.is_set(c).unwrap_or(false))
            .take(2)
            .collect();
        let [client_cpu, server_cpu] = cpus[..] else {
            return None;
        };
        let mut set = CpuSet::new();
        set.set(client_cpu).ok()?;
        sched_setaffinity(me, &set).ok()?;
        Some(Pinning {
            client_cpu,
            server_cpu,
            saved,
        })
    }

    /// Puts the process `pid` (every thread it has now) on the server's CPU.
    pub fn pin_server(&self, pid: u32) {
        let mut set = CpuSet::new();
        if set.set(self.server_cpu).is_err() {
            return;
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                    .collect()
            })
            .unwrap_or_else(|_| vec![pid as i32]);
        for tid in tasks {
            if let Err(e) = sched_setaffinity(Pid::from_raw(tid), &set) {
                log::warn!("cannot pin task {tid} of {pid}: {e}");
            }
        }
    }

    /// How the report describes it.
    pub fn describe(pinning: Option<&Pinning>) -> String {
        match pinning {
            Some(p) => format!(
                "client (the bench) on CPU {}, each server on CPU {}",
                p.client_cpu, p.server_cpu
            ),
            None => "not pinned (the bench may use only one CPU)".to_string(),
        }
    }
}

impl Drop for Pinning {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.saved);
    }
}

/// The steal time of `cpu` so far, in clock ticks (`/proc/stat`'s eighth
/// field of its `cpuN` line); `None` if the kernel does not say.
pub fn steal_ticks(cpu: usize) -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_steal(&stat, cpu)
}

fn parse_steal(stat: &str, cpu: usize) -> Option<u64> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// Whether strace can be run.
pub fn strace_present() -> bool {
    tool_present("strace", "-V")
}

/// Whether `program` runs and succeeds when asked its version with `flag`.
pub fn tool_present(program: &str, flag: &str) -> bool {
    Command::new(program)
        .arg(flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `work` with `strace -f -c` attached to `pid`; returns the number of
/// syscalls the process made meanwhile (strace's "total" line).
pub fn count_syscalls(pid: u32, work: impl FnOnce() -> Result<(), String>) -> Result<u64, String> {
    let out = std::env::temp_dir().join(format!("wp-bench-strace-{}-{pid}", std::process::id()));
    let mut strace = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .args(["-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run strace: {e}"))?;
    let result = wait_traced(pid).and_then(|()| work());
    let _ = kill(Pid::from_raw(strace.id() as i32), Signal::SIGINT);
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    result?;
    let text = text.map_err(|e| format!("strace wrote no summary: {e}"))?;
    parse_total(&text).ok_or_else(|| format!("no total in strace's summary: {text}"))
}

/// Waits until `pid` is being traced (strace has attached), 5 s at most.
fn wait_traced(pid: u32) -> Result<(), String> {
    let status = PathBuf::from(format!("/proc/{pid}/status"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        let tracer = text
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(str::trim);
        if tracer.is_some_and(|t| t != "0") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err("strace did not attach within 5 s (ptrace not permitted?)".to_string())
}

/// The calls column of the "total" line of `strace -c`'s table.
fn parse_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_end().ends_with("total"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "100.00 0.046703 1 30005 [errors] total": calls is the fourth field.
    fields.get(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_the_eighth_value_of_the_cpu_line() {
        let stat =
            "cpu  1 2 3 4 5 6 7 99 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 42 0 0\n";
        assert_eq!(parse_steal(stat, 1), Some(42));
        assert_eq!(parse_steal(stat, 0), Some(8));
        assert_eq!(parse_steal(stat, 2), None);
    }

    #[test]
    fn the_total_line_gives_the_calls() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    40.11    0.019112           1     10001           recvmsg\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.047651           1     30005           total\n";
        assert_eq!(parse_total(text), Some(30005));
        let with_errors = "100.00    0.135118           1     70011     10001 total\n";
        assert_eq!(parse_total(with_errors), Some(70011));
    }
}
