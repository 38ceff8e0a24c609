//! End-to-end: files the server does not own. A live socket of another
//! program at `--socket` is neither taken over nor deleted; at exit the
//! server removes only the socket and lock file it made (by dev, ino);
//! a `.lock` symlink is refused and its target never created; a lock file
//! that was there before keeps its contents.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use waypass_test_support::{bin, run_with_patience, Server, TempDir};

fn lock_of(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Runs `waypass-server --socket SOCKET` expecting a start-up failure;
/// returns its stderr.
fn start_fails(socket: &Path) -> String {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(!out.status.success(), "expected a failure: {out:?}");
    assert!(out.stdout.is_empty(), "no socket path printed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts a server on `socket` (in `dir`, for the log).
fn start_at(socket: &Path) -> Server {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket").arg(socket);
    Server::spawn(cmd, TempDir::new("files-log"), |_| {})
}

fn stop(server: &mut Server) {
    server.signal(Signal::SIGTERM);
    let status = server.wait();
    assert!(status.success(), "{status:?}\n{}", server.log_text());
}

#[test]
fn a_live_socket_of_another_program_is_neither_taken_nor_deleted() {
    let dir = TempDir::new("files-live");
    let socket = dir.join("bus");
    // Another program's socket, with no lock file (as dbus-daemon's).
    let other = UnixListener::bind(&socket).unwrap();
    let err = start_fails(&socket);
    assert!(
        err.contains(&format!(
            "another server is listening on {}",
            socket.display()
        )),
        "{err}"
    );
    assert!(socket.exists(), "the live socket is still there");
    UnixStream::connect(&socket).expect("and still reaches its owner");
    other.accept().expect("the owner sees our connect");
    assert!(!lock_of(&socket).exists(), "our lock file is gone again");
}

#[test]
fn a_stale_socket_is_still_reclaimed() {
    let dir = TempDir::new("files-stale");
    let socket = dir.join("s");
    drop(UnixListener::bind(&socket).unwrap());
    let mut server = start_at(&socket);
    UnixStream::connect(&socket).expect("ours now");
    stop(&mut server);
    assert!(!socket.exists());
}

#[test]
fn a_file_put_in_place_of_our_socket_survives_the_exit() {
    let dir = TempDir::new("files-replaced");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    let mut server = start_at(&socket);
    fs::remove_file(&socket).unwrap();
    fs::write(&socket, b"someone else's file").unwrap();
    fs::remove_file(&lock).unwrap();
    fs::write(&lock, b"someone else's lock").unwrap();
    stop(&mut server);
    assert_eq!(fs::read(&socket).unwrap(), b"someone else's file");
    assert_eq!(fs::read(&lock).unwrap(), b"someone else's lock");
    let log = server.log_text();
    assert!(log.contains("leaving it"), "{log}");
}

#[test]
fn a_lock_file_that_was_there_before_keeps_its_contents() {
    let dir = TempDir::new("files-oldlock");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    fs::write(&lock, b"precious").unwrap();
    let mut server = start_at(&socket);
    stop(&mut server);
    assert!(!socket.exists(), "our socket is removed");
    assert_eq!(fs::read(&lock).unwrap(), b"precious", "not our file");
}

#[test]
fn an_empty_leftover_lock_of_ours_is_removed_as_libwayland_does() {
    let dir = TempDir::new("files-emptylock");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    fs::write(&lock, b"").unwrap();
    let mut server = start_at(&socket);
    stop(&mut server);
    assert!(!socket.exists() && !lock.exists());
}

#[test]
fn a_lock_symlink_is_refused_and_its_target_never_created() {
    let dir = TempDir::new("files-locklink");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    let target = dir.join("victim");
    symlink(&target, &lock).unwrap();
    let err = start_fails(&socket);
    assert!(err.contains("symlink"), "{err}");
    assert!(!target.exists(), "the symlink's target was not created");
    assert!(fs::symlink_metadata(&lock).unwrap().is_symlink(), "kept");
    assert!(!socket.exists());

    // A symlink to an existing file: refused too, the file untouched.
    fs::write(&target, b"victim").unwrap();
    let err = start_fails(&socket);
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"victim");
}

#[test]
fn a_lock_that_is_not_a_regular_file_is_refused() {
    let dir = TempDir::new("files-lockfifo");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = start_fails(&socket);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(lock.exists(), "kept");
}

#[test]
#[ignore = "needs root: chowns the lock to another user (make test runs it as root)"]
fn an_empty_lock_of_another_user_is_kept() {
    let dir = TempDir::new("files-otherlock");
    let socket = dir.join("s");
    let lock = lock_of(&socket);
    fs::write(&lock, b"").unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(&lock, Some(nobody), None).unwrap();
    let mut server = start_at(&socket);
    stop(&mut server);
    assert!(!socket.exists());
    assert!(lock.exists(), "another user's file is not ours to delete");
}

#[test]
fn without_socket_a_live_foreign_wayland_0_is_skipped_and_kept() {
    let runtime = TempDir::new("files-runtime");
    let foreign = runtime.join("wayland-0");
    let _other = UnixListener::bind(&foreign).unwrap();
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.env("XDG_RUNTIME_DIR", runtime.path());
    let mut server = Server::spawn(cmd, TempDir::new("files-runtime-log"), |_| {});
    assert_eq!(server.socket, runtime.join("wayland-1"));
    stop(&mut server);
    assert!(foreign.exists(), "the foreign socket is still there");
    UnixStream::connect(&foreign).expect("and still live");
}
