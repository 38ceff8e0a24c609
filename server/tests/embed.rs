//! The server embedded in a host program: started in a thread of this
//! test process, stopped, and the host lives on with its socket removed,
//! its own children untouched and its own signal handlers in charge.
//!
//! What it is not: a test of the binary (the root `tests/` run
//! `waypass-server`) or of the protocol: one `wl_display.sync` round trip
//! shows the server serves.
//!
//! Tests in this file share one process, as threads of a host would: each
//! reaps only what it spawned, and only one sends the process a signal.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::getpid;
use waypass_server::{RunError, RunningServer, ServerBuilder, ServerConfig};

/// How long a wait may last before the test calls it a hang: far longer
/// than anything here takes, on a machine however busy.
const HANG: Duration = Duration::from_secs(120);

/// A configuration listening at `socket`, with nothing else set.
fn config_at(socket: &Path) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.socket = Some(socket.to_str().expect("utf-8 temp path").into());
    config
}

/// Connects to `socket` and makes one `wl_display.sync` round trip.
fn sync_round_trip(socket: &Path) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(HANG)).unwrap();
    // wl_display@1.sync(new wl_callback@2): 12 bytes, opcode 0.
    let words: [u32; 3] = [1, 12 << 16, 2];
    let request: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    stream.write_all(&request).expect("send sync");
    let mut event = [0u8; 12];
    stream
        .read_exact(&mut event)
        .expect("read the callback's done");
    let word = |i: usize| u32::from_ne_bytes(event[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(word(0), 2, "from wl_callback@2");
    assert_eq!(word(1) & 0xffff, 0, "wl_callback.done");
}

/// Whether process `pid` has exited and waits to be reaped.
fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // `pid (comm) S ...`: the state follows the last `)`.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    state.is_some_and(|s| s.starts_with('Z'))
}

/// Polls `cond` until it holds, or panics after [`HANG`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let step = Duration::from_millis(10);
    let steps = HANG.as_millis() / step.as_millis();
    for _ in 0..steps {
        if cond() {
            return;
        }
        thread::sleep(step);
    }
    panic!("still waiting for {what}");
}

/// `server.join()` on a thread of its own, so that a server that does not
/// end fails the test after [`HANG`] instead of hanging it.
fn join_or_fail(server: RunningServer, what: &str) -> Result<ExitCode, RunError> {
    let (ended, result) = mpsc::channel();
    thread::spawn(move || ended.send(server.join()));
    result
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("the server did not end: {what}"))
}

/// Kills and reaps the host's own child.
fn reap_ours(mut child: Child) {
    let _ = child.kill();
    child.wait().expect("the host reaps its own child");
}

static SIGTERM_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: nix::libc::c_int) {
    // Async-signal-safe: one atomic store. The host's main line acts on it.
    SIGTERM_SEEN.store(true, Ordering::SeqCst);
}

#[test]
fn a_host_stops_the_server_on_its_own_sigterm_and_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-embed");
    let host_child = Command::new("sleep").arg("30").spawn().expect("sleep");
    let handler = SigAction::new(
        SigHandler::Handler(on_sigterm),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: `on_sigterm` only stores to an atomic, which is
    // async-signal-safe; no other code of this process handles SIGTERM.
    unsafe { sigaction(Signal::SIGTERM, &handler) }.expect("install SIGTERM handler");

    let server = ServerBuilder::new(config_at(&socket))
        .start_in_thread()
        .expect("start");
    assert_eq!(server.socket_path(), socket);
    sync_round_trip(&socket);

    // To the whole process: any thread may take it, the server's too.
    kill(getpid(), Signal::SIGTERM).expect("send SIGTERM");
    wait_until("the host's SIGTERM handler", || {
        SIGTERM_SEEN.load(Ordering::SeqCst)
    });
    server.stop_handle().stop();
    let code = join_or_fail(server, "stopped").expect("run returned Ok");

    assert_eq!(code, ExitCode::SUCCESS);
    assert!(!socket.exists(), "the socket is removed");
    assert!(
        !dir.path().join("wayland-embed.lock").exists(),
        "so is its lock file"
    );
    // The host lives on (this line runs), and its child was left alone.
    let mut host_child = host_child;
    assert!(
        matches!(host_child.try_wait(), Ok(None)),
        "the host's child is still running, unreaped"
    );
    reap_ours(host_child);
}

#[test]
fn stop_from_another_thread_ends_run_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-stop");
    let server = ServerBuilder::new(config_at(&socket))
        .build()
        .expect("build");
    // Listening once `build` returns: this connection waits in the
    // backlog until `run` serves it.
    let early = UnixStream::connect(&socket).expect("connect before run");
    drop(early);
    let stop = server.stop_handle();
    let (ran, done) = mpsc::channel();
    let serving = socket.clone();
    let stopper = thread::spawn(move || {
        sync_round_trip(&serving);
        stop.stop();
        stop.stop(); // twice: nothing more
        if done.recv_timeout(HANG).is_err() {
            // `run` holds the test's thread: only ending the process fails
            // the test rather than hanging it.
            eprintln!("stop() did not end run");
            std::process::exit(101);
        }
        stop.stop(); // after the end: harmless
    });
    let code = server.run().expect("run");
    ran.send(()).unwrap();
    stopper.join().expect("stopper");
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(!socket.exists(), "the socket is removed");
}

#[test]
fn without_signal_handling_the_last_spawned_child_ends_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wayland-children");
    // A child of the host that has exited and not been reaped: a server
    // reaping with `waitpid(-1)` would take it.
    let mut host_child = Command::new("true").spawn().expect("true");
    let host_pid = host_child.id();
    wait_until("the host's child to exit", || is_zombie(host_pid));

    let mut config = config_at(&socket);
    config.spawn = vec!["exit 0".into(), "exit 3".into()];
    config.exit_with_children = true;
    let server = ServerBuilder::new(config).start_in_thread().expect("start");
    let code = join_or_fail(server, "its children have exited").expect("run returned Ok");

    assert_eq!(code, ExitCode::FAILURE, "one child exited with status 3");
    assert!(!socket.exists(), "the socket is removed");
    // Still the host's to reap: nobody took its exit status.
    let status = host_child.try_wait().expect("still our child to reap");
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
