//! End-to-end: the server out of file descriptors, started under
//! `prlimit --nofile=64:64`, with more clients than that connecting.
//!
//! libwayland and wayland-rs spin the CPU when `accept()` fails with
//! `EMFILE`, because the listening fd stays readable. What this asserts:
//! while saturated, with new connections arriving all the time, the
//! server's user+sys CPU time (from `/proc/PID/stat`) stays under 30% of
//! the window, which is generous: spinning would be near 100%; and once
//! clients leave, new clients are served again. What it reports: how many
//! clients were served and refused, and the CPU share measured.
//!
//! `prlimit` is util-linux's, which Debian marks essential.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use waypass_test_support::load::{cpu_ticks, sync, ticks_per_second};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{bin, eventually, Server, TempDir, PATIENCE};

const FD_LIMIT: usize = 64;
const CLIENTS: usize = 100;
/// How long the saturated server is watched.
const WINDOW: Duration = Duration::from_secs(3);
/// The most CPU the saturated server may use, as a share of the window.
const CPU_SHARE_MAX: f64 = 0.30;

/// Connects and asks for a `sync`: `Some(stream)` if served, `None` if the
/// server accepted and closed (refused), or answered with
/// `wl_display.error` (over its budget of connections) and closed.
fn try_client(server: &Server) -> Option<UnixStream> {
    let mut stream = UnixStream::connect(&server.socket).expect("connect (backlog)");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    use std::io::Write;
    let _ = stream.write_all(&sync(2));
    let mut reply = [0u8; 64];
    match stream.read(&mut reply) {
        Ok(0) => None,
        // wl_display@1.error: refused.
        Ok(n) if n >= 8 && reply[..4] == 1u32.to_ne_bytes() => None,
        Ok(_) => Some(stream),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("connection left hanging: {e}"),
    }
}

#[test]
fn out_of_fds_the_server_idles_and_recovers() {
    let dir = TempDir::new("emfile");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={FD_LIMIT}:{FD_LIMIT}"))
        .arg("--")
        .arg(bin("waypass-server"))
        .arg("--socket")
        .arg(dir.join("wayland-emfile"));
    let server = Server::spawn(cmd, dir, |cmd| {
        cmd.env("RUST_LOG", "warn");
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    assert!(
        limits.lines().any(|l| l.starts_with("Max open files")
            && l.split_whitespace().nth(3) == Some(&FD_LIMIT.to_string()[..])),
        "{limits}"
    );
    let idle = server.fd_count();

    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..CLIENTS {
        match try_client(&server) {
            Some(stream) => served.push(stream),
            None => refused += 1,
        }
    }
    assert!(!served.is_empty() && refused > 0, "{} served", served.len());
    assert!(served.len() < FD_LIMIT);

    // Saturated: new connections keep arriving during the window.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let socket = server.socket.clone();
    let pressure = thread::spawn(move || {
        let mut attempts = 0;
        while !flag.load(Ordering::SeqCst) && attempts < 500 {
            if let Ok(s) = UnixStream::connect(&socket) {
                drop(s);
            }
            attempts += 1;
            thread::sleep(Duration::from_millis(20));
        }
        attempts
    });
    let ticks_start = cpu_ticks(server.pid());
    let start = Instant::now();
    thread::sleep(WINDOW);
    let ticks = cpu_ticks(server.pid()) - ticks_start;
    let window = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let attempts = pressure.join().unwrap();
    let share = ticks as f64 / ticks_per_second() as f64 / window.as_secs_f64();

    // Reported, not asserted: `accept` fails with EMFILE before it looks
    // at the backlog, so each wakeup may retry with the reserve and find
    // nothing (EAGAIN) up to the batch size.
    let log = server.log_text();
    let futile = log.matches("accept with the reserve failed").count();
    println!(
        "emfile: limit {FD_LIMIT} fds; {} of {CLIENTS} clients served, {refused} refused; \
         {attempts} more connects in a {window:.1?} window; server CPU {:.1}% of it; \
         {} refusals and {futile} empty reserve accepts logged",
        served.len(),
        share * 100.0,
        log.matches("refused a connection").count()
    );
    assert!(share < CPU_SHARE_MAX, "server CPU {:.1}%", share * 100.0);

    // Once clients leave, new ones are served again.
    drop(served);
    assert!(
        eventually(|| server.fd_count() == idle),
        "fds back to {idle}"
    );
    let mut client = WlClient::connect(&server.socket);
    let k = client.get_keyboard();
    assert_eq!(
        client.seen.keymaps[k].compile().layout_get_name(0),
        "English (US)"
    );
    assert!(!server.log_text().contains("panicked"));
}
