//! End-to-end hardening of our client against a keymap file that shrinks:
//! `waypass-client keymap` against a raw server that sends an unsealed
//! memfd as the keymap and truncates it, after sending it or before.
//!
//! A client that maps such a file dies of SIGBUS when the file shrinks
//! under the mapping. What this asserts: over a bounded number of runs the
//! client never dies of a signal; it prints the keymap or one clear error
//! line; a file shrunk before the client reads it is a clear error; and the
//! debug log says which path ran (`mapping` only for a file sealed against
//! shrinking, `pread` otherwise). What it is not: a test of the server.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::ftruncate;
use waypass_test_support::raw::{msg, serve_fake, u, FakeGlobal, Raw};
use waypass_test_support::{run_client_with, TempDir};
use xkbcommon::xkb;

/// What the raw server does with the keymap file it sends.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Sealed SHRINK | GROW | WRITE | SEAL: the client may map it.
    Sealed,
    /// Unsealed, left alone.
    Unsealed,
    /// Unsealed, truncated to 0 this many microseconds after sending.
    TruncateAfter(u64),
    /// Unsealed; after sending, its size flips between 0 and full for
    /// 150 ms, so that `fstat` may see it full and a read find it empty.
    FlipAfter,
    /// Unsealed, truncated to half before sending (size still announced
    /// in full).
    ShrunkBefore,
}

/// The US keymap text plus its NUL, as a compositor sends it; with
/// `padding`, followed by that many bytes of comment lines, so that reading
/// it takes a few milliseconds and a truncation lands during the read.
fn keymap_bytes(padding: usize) -> Vec<u8> {
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    let keymap = xkb::Keymap::new_from_names(&context, "evdev", "pc105", "us", "", None, 0)
        .expect("xkeyboard-config knows us");
    let mut bytes = keymap
        .get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1)
        .into_bytes();
    let line = b"// padding: a hostile server may send any size up to the client's cap\n";
    while bytes.len() < padding {
        bytes.extend_from_slice(line);
    }
    bytes.push(0);
    bytes
}

fn memfd(bytes: &[u8], seal: bool) -> OwnedFd {
    let fd = memfd_create(
        c"hostile-keymap",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd_create");
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).expect("write memfd");
    let fd = OwnedFd::from(file);
    if seal {
        let seals = SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("add seals");
    }
    fd
}

/// Sends `wl_keyboard.keymap` with a file prepared as `plan` says, then
/// shrinks it as `plan` says on a thread (returned), while the caller goes
/// on answering the client.
fn send_keymap(
    plan: Plan,
    keyboard: u32,
    stream: &UnixStream,
    bytes: &[u8],
) -> Option<thread::JoinHandle<()>> {
    let mut raw = Raw {
        stream: stream.try_clone().unwrap(),
    };
    let fd = memfd(bytes, matches!(plan, Plan::Sealed));
    let size = bytes.len() as i64;
    if let Plan::ShrunkBefore = plan {
        ftruncate(&fd, size / 2).expect("truncate");
    }
    raw.send_with_fds(&msg(keyboard, 0, &[u(1), u(size as u32)]), &[fd.as_fd()]);
    match plan {
        Plan::TruncateAfter(micros) => Some(thread::spawn(move || {
            thread::sleep(Duration::from_micros(micros));
            ftruncate(&fd, 0).expect("truncate");
        })),
        Plan::FlipAfter => Some(thread::spawn(move || {
            let until = Instant::now() + Duration::from_millis(150);
            while Instant::now() < until {
                ftruncate(&fd, 0).expect("truncate");
                ftruncate(&fd, size).expect("regrow");
            }
            ftruncate(&fd, 0).expect("truncate");
        })),
        _ => None,
    }
}

/// Serves one client: correct answers up to `get_keyboard`, then the
/// keymap as `plan` says; then answers round trips until the client leaves.
fn serve_one(listener: &UnixListener, plan: Plan, keymap: &[u8]) {
    let (stream, _) = listener.accept().expect("accept");
    let mut shrinker = None;
    serve_fake(stream, FakeGlobal::Seat, |keyboard, stream| {
        shrinker = send_keymap(plan, keyboard, stream, keymap);
    });
    if let Some(t) = shrinker {
        t.join().expect("shrinker thread");
    }
}

/// Runs the client once per plan against a raw server that serves the
/// plans in order; returns each run's output.
fn run(plans: &[Plan], padding: usize, debug: bool) -> Vec<Output> {
    let dir = TempDir::new("keymap-shrink");
    let socket = dir.join("wayland-raw");
    let listener = UnixListener::bind(&socket).unwrap();
    let served: Vec<Plan> = plans.to_vec();
    let server = thread::spawn(move || {
        let keymap = keymap_bytes(padding);
        for plan in served {
            serve_one(&listener, plan, &keymap);
        }
    });
    let socket = socket.to_str().unwrap().to_string();
    let outputs = plans
        .iter()
        .map(|_| {
            run_client_with(
                &["--socket", &socket, "keymap", "--timeout-ms", "5000"],
                |cmd| {
                    cmd.env(
                        "RUST_LOG",
                        if debug {
                            "waypass_client=debug"
                        } else {
                            "warn"
                        },
                    );
                },
            )
        })
        .collect();
    server.join().unwrap();
    outputs
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_keymap_truncated_after_sending_never_kills_the_client() {
    // 16 runs of a 4 MB keymap (the cap is 16 MiB): truncated 0.5 to 8 ms
    // after sending, most often while the client reads it; and two whose
    // size flips between 0 and full.
    let mut plans: Vec<Plan> = (1..=16).map(|i| Plan::TruncateAfter(i * 500)).collect();
    plans.extend([Plan::FlipAfter, Plan::FlipAfter]);
    let outputs = run(&plans, 4 << 20, false);
    let (mut ok, mut refused, mut killed) = (0, 0, Vec::new());
    for (plan, out) in plans.iter().zip(&outputs) {
        let err = stderr(out);
        if let Some(signal) = out.status.signal() {
            killed.push(format!("{plan:?}: signal {signal}"));
            continue;
        }
        match out.status.code() {
            Some(0) => ok += 1,
            Some(1) => {
                refused += 1;
                // One error line (xkbcommon may log its own parse errors
                // before it, for a file read while it was being cut).
                let ours: Vec<&str> = err
                    .lines()
                    .filter(|l| l.starts_with("waypass-client: error: "))
                    .collect();
                assert_eq!(ours.len(), 1, "{plan:?}: one error line: {err}");
            }
            other => panic!("{plan:?}: exit {other:?}: {err}"),
        }
        assert!(!err.contains("panicked"), "{plan:?}: {err}");
        eprintln!(
            "{plan:?}: {:?} {}",
            out.status.code(),
            err.lines().last().unwrap_or("")
        );
    }
    eprintln!(
        "{} runs: {ok} printed the keymap, {refused} refused it, {} killed by a signal",
        plans.len(),
        killed.len()
    );
    assert!(killed.is_empty(), "the client died of a signal: {killed:?}");
}

#[test]
fn a_keymap_shrunk_before_reading_is_a_clear_error() {
    let outputs = run(&[Plan::ShrunkBefore], 0, false);
    let out = &outputs[0];
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{:?} {err}", out.status);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad keymap size"), "{err}");
    assert!(err.contains("the file holds"), "{err}");
}

#[test]
fn only_a_keymap_sealed_against_shrinking_is_mapped() {
    let outputs = run(&[Plan::Sealed, Plan::Unsealed], 0, true);
    let (sealed, unsealed) = (stderr(&outputs[0]), stderr(&outputs[1]));
    assert_eq!(outputs[0].status.code(), Some(0), "{sealed}");
    assert_eq!(outputs[1].status.code(), Some(0), "{unsealed}");
    assert!(sealed.contains("mapping"), "{sealed}");
    assert!(!sealed.contains("pread"), "{sealed}");
    assert!(unsealed.contains("with pread"), "{unsealed}");
    assert!(!unsealed.contains("mapping"), "{unsealed}");
    let summary = String::from_utf8_lossy(&outputs[1].stdout);
    assert!(summary.contains("English (US)"), "{summary}");
}
