//! User-space instructions per `wl_display.sync` round trip of a server,
//! counted by callgrind: the one CPU figure of section 2 that does not
//! drift with what else the machine is doing.
//!
//! What it is: [`instructions_per_round_trip`] starts a server under
//! `valgrind --tool=callgrind`, warms it up with round trips from the
//! libwayland C client, zeroes callgrind's counters
//! (`callgrind_control -z PID`), does the measured round trips, dumps the
//! counters (`callgrind_control -d PID`) and reads the total `Ir` from the
//! dump. Callgrind counts the instructions the process executes in user
//! space, one by one: the same binary answering the same requests executes
//! the same instructions whatever the scheduler, the caches or the other
//! tenants do, so the figure repeats from run to run.
//!
//! What it is not: a count of the kernel's work (the syscalls are counted
//! by strace, see `wire_env`), nor a time: under callgrind the server runs
//! some fifty times slower, and no wall-clock figure is taken from it.
//!
//! # Implementation notes
//!
//! valgrind runs the server in the process it was started as, so the pid
//! of the spawned child is the one `callgrind_control` addresses (through
//! valgrind's gdbserver and `vgdb`, which interrupts the server's
//! `epoll_wait` with ptrace, as strace attaches). A dump of
//! `--callgrind-out-file=F` is written to `F.1`; the bench waits for its
//! `totals:` line, the dump's last, before reading it (the `summary:` line
//! of its header gives nearly the same count, a few instructions less).
//! The server is then ended with SIGTERM, not SIGKILL, so that valgrind
//! removes its FIFOs from `/tmp`.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::c_client::CClient;
use crate::process::ServerProcess;
use crate::servers::{ServerKind, ServerSet};
use crate::wire_env::{tool_present, Pinning};
use waypass_test_support::TempDir;

/// How long a dump may take to appear. A hang detector, not a measurement.
const DUMP_PATIENCE: Duration = Duration::from_secs(30);
/// How long valgrind may take to exit after SIGTERM.
const EXIT_PATIENCE: Duration = Duration::from_secs(10);

/// Whether valgrind and `callgrind_control` can be run.
pub fn valgrind_present() -> bool {
    ["valgrind", "callgrind_control"]
        .iter()
        .all(|program| tool_present(program, "--version"))
}

/// Starts `kind` under callgrind, does `warmup` round trips with the
/// libwayland C client, then `count` counted ones; returns the server's
/// user-space instructions per counted round trip.
pub fn instructions_per_round_trip(
    servers: &ServerSet,
    kind: ServerKind,
    pinning: Option<&Pinning>,
    warmup: u64,
    count: u64,
) -> Result<f64, String> {
    let dir = TempDir::try_new("callgrind").map_err(|e| format!("failed: {e}"))?;
    let out = dir.join("callgrind.out");
    let mut out_arg = OsString::from("--callgrind-out-file=");
    out_arg.push(&out);
    let args = [OsString::from("--tool=callgrind"), out_arg];
    let server = servers.start_under(kind, Path::new("valgrind"), &args)?;
    if let Some(pinning) = pinning {
        pinning.pin_server(server.pid());
    }
    let mut dump = out.into_os_string();
    dump.push(".1");
    let counted = count_round_trips(&server, Path::new(&dump), warmup, count)
        .map_err(|e| format!("failed: {e} (valgrind's log ends: {})", server.log_tail()));
    server.terminate(EXIT_PATIENCE);
    counted.map(|total| total as f64 / count as f64)
}

/// The warm-up, the zeroing, the counted round trips and the dump, on a
/// server running under callgrind; returns the dump's total `Ir`.
fn count_round_trips(
    server: &ServerProcess,
    dump: &Path,
    warmup: u64,
    count: u64,
) -> Result<u64, String> {
    let mut client =
        CClient::connect(server.socket()).map_err(|e| format!("cannot connect: {e}"))?;
    client
        .round_trips(warmup)
        .map_err(|e| format!("warm-up: {e}"))?;
    control(server, "-z")?;
    client
        .round_trips(count)
        .map_err(|e| format!("round trips: {e}"))?;
    control(server, "-d")?;
    wait_for_total(dump)
}

/// Runs `callgrind_control <option> <pid>`. It exits with 0 even when it
/// finds no callgrind task to talk to, so its output is read too.
fn control(server: &ServerProcess, option: &str) -> Result<(), String> {
    let output = Command::new("callgrind_control")
        .args([option, &server.pid().to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && !text.contains("Error") {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {option} ({}): {}",
            output.status,
            text.trim()
        ))
    }
}

/// Waits until the dump at `path` has its totals line; returns its `Ir`.
fn wait_for_total(path: &Path) -> Result<u64, String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(total) = parse_total(&text) {
            return Ok(total);
        }
        if start.elapsed() > DUMP_PATIENCE {
            return Err(format!(
                "no totals in {} after {} s",
                path.display(),
                DUMP_PATIENCE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first event count (`Ir`, the only event callgrind collects by
/// default) of a dump's `totals:` line: none until the dump is complete.
fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_the_first_event_of_the_totals_line() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\npid: 42\ncmd: bare\n\
                    events: Ir\nsummary: 86012330\n\nfn=(1) main\n3 120\n\n\
                    totals: 86012345\n";
        assert_eq!(parse_total(dump), Some(86_012_345));
        let two_events = "events: Ir Dr\ntotals: 4345 17\n";
        assert_eq!(parse_total(two_events), Some(4345));
        let unfinished = "events: Ir\nsummary: 86012330\n\nfn=(1) main\n";
        assert_eq!(parse_total(unfinished), None);
    }
}
