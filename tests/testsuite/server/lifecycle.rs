//! End-to-end: the server process's life: the lock, stale sockets, signals,
//! start-up failures, default socket names and keymap reloads on SIGHUP.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use waypass_test_support::wlrs_client::{dev_ino, WlClient};
use waypass_test_support::{bin, eventually, run_with_patience, Server, TempDir};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn lock_of(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// `waypass-server ARGS` with stdout and stderr captured.
fn server_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the server expecting it to fail at start-up; returns its stderr.
fn start_fails(args: &[&str]) -> String {
    let out = run_with_patience(server_command(args));
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    assert!(out.stdout.is_empty(), "no socket path printed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn second_server_on_the_same_socket_fails() {
    let server = Server::start(&[]);
    let err = start_fails(&["--socket", server.socket_arg()]);
    assert!(
        err.contains(&format!("another server owns {}", server.socket.display())),
        "{err}"
    );
    // The first one is unharmed.
    let mut client = WlClient::connect(&server.socket);
    client.get_keyboard();
}

#[test]
fn sigterm_and_sigint_exit_zero_and_remove_both_files() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = Server::start(&[]);
        let mut client = WlClient::connect(&server.socket);
        client.get_keyboard();
        let lock = lock_of(&server.socket);
        assert!(server.socket.exists() && lock.exists());
        server.signal(sig);
        let status = server.wait();
        assert!(
            status.success(),
            "{sig:?}: {status:?}\n{}",
            server.log_text()
        );
        assert!(!server.socket.exists(), "{sig:?}: socket removed");
        assert!(!lock.exists(), "{sig:?}: lock file removed");
        assert!(
            server.log_text().contains("closing 1 client"),
            "{}",
            server.log_text()
        );
    }
}

#[test]
fn stale_socket_of_a_killed_server_is_reclaimed() {
    let mut first = Server::start(&[]);
    let socket = first.socket.clone();
    first.signal(Signal::SIGKILL);
    assert!(!first.wait().success());
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    assert!(UnixStream::connect(&socket).is_err(), "nobody listens");

    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket").arg(&socket);
    let dir = TempDir::new("srv-reclaim");
    let second = Server::spawn(cmd, dir, |_| {});
    assert_eq!(second.socket, socket);
    let mut client = WlClient::connect(&second.socket);
    client.get_keyboard();
    drop(first);
}

#[test]
fn no_socket_option_takes_the_first_free_wayland_n() {
    let runtime = TempDir::new("srv-runtime");
    let start = |runtime: &TempDir| {
        let mut cmd = Command::new(bin("waypass-server"));
        cmd.env("XDG_RUNTIME_DIR", runtime.path());
        Server::spawn(cmd, TempDir::new("srv-log"), |_| {})
    };
    let first = start(&runtime);
    assert_eq!(first.socket, runtime.join("wayland-0"));
    let second = start(&runtime);
    assert_eq!(second.socket, runtime.join("wayland-1"));
    WlClient::connect(&second.socket).get_keyboard();
}

#[test]
fn bad_keymaps_fail_before_the_socket_exists() {
    let dir = TempDir::new("srv-badkeymap");
    let socket = dir.join("wayland-bad");
    let socket_arg = socket.to_str().unwrap();

    let missing = dir.join("missing.xkb");
    let err = start_fails(&[
        "--socket",
        socket_arg,
        "--keymap",
        missing.to_str().unwrap(),
    ]);
    assert!(
        err.contains(missing.to_str().unwrap()),
        "names the file: {err}"
    );

    let garbage = dir.join("garbage.xkb");
    fs::write(&garbage, "xkb_keymap { this is not valid };").unwrap();
    let err = start_fails(&[
        "--socket",
        socket_arg,
        "--keymap",
        garbage.to_str().unwrap(),
    ]);
    assert!(
        err.contains(garbage.to_str().unwrap()),
        "names the file: {err}"
    );

    let err = start_fails(&["--socket", socket_arg, "--layout", "no-such-layout-xyz"]);
    assert!(err.contains("no-such-layout-xyz"), "names the RMLVO: {err}");

    assert!(!socket.exists(), "no socket was created");
    assert!(!lock_of(&socket).exists(), "no lock file was created");
}

#[test]
fn help_explains_with_an_example() {
    let out = run_with_patience(server_command(&["--help"]));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--socket",
        "--keymap",
        "--layout",
        "--repeat-rate",
        "--seat-name",
        "Examples",
    ] {
        assert!(help.contains(needle), "{needle} in {help}");
    }
}

/// The number of keymap memfds the server process holds open.
fn server_keymap_files(server: &Server) -> usize {
    fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("waypass-keymap"))
        .count()
}

#[test]
fn sighup_pushes_a_changed_keymap_file_and_keeps_the_old_one_on_failure() {
    let dir = TempDir::new("srv-reload");
    let file = dir.join("keymap.xkb");
    let us = fs::read(asset("us.xkb")).unwrap();
    let custom = fs::read(asset("custom.xkb")).unwrap();
    assert_ne!(us, custom);
    fs::write(&file, &us).unwrap();
    let server = Server::start(&["--keymap", file.to_str().unwrap()]);
    let mut client = WlClient::connect(&server.socket);
    let k0 = client.get_keyboard();
    let k1 = client.get_keyboard();
    let old_file = dev_ino(&client.seen.keymaps[k0].fd);
    assert_eq!(client.seen.keymaps[k0].text().as_bytes(), us);

    // A good change: each keyboard gets the new keymap exactly once.
    fs::write(&file, &custom).unwrap();
    server.signal(Signal::SIGHUP);
    client.dispatch_until(|seen| seen.keymaps.len() >= 4);
    assert!(eventually(|| server.log_text().contains("reloaded")));
    client.roundtrip();
    let new: Vec<_> = client.seen.keymaps[2..].iter().collect();
    assert_eq!(new.len(), 2, "one new keymap per keyboard");
    let mut targets: Vec<usize> = new.iter().map(|k| k.keyboard).collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            client.seen.keymaps[k0].keyboard,
            client.seen.keymaps[k1].keyboard
        ]
    );
    for k in &new {
        assert_eq!(k.text().as_bytes(), custom);
        assert_ne!(dev_ino(&k.fd), old_file, "a new file");
    }
    assert!(
        eventually(|| server_keymap_files(&server) == 1),
        "the old file is released"
    );

    // A broken change: an error is logged and the keymap stays.
    fs::write(&file, "xkb_keymap { broken").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(eventually(|| server
        .log_text()
        .contains("keeping the old keymap")));
    client.roundtrip();
    assert_eq!(
        client.seen.keymaps.len(),
        4,
        "no keymap event after a failed reload"
    );
    let mut late = WlClient::connect(&server.socket);
    let k = late.get_keyboard();
    assert_eq!(late.seen.keymaps[k].text().as_bytes(), custom);
}

#[test]
fn relative_socket_path_is_taken_from_the_current_directory() {
    let dir = TempDir::new("relsock");
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.args(["--socket", "./wayland-rel"])
        .current_dir(dir.path());
    // A name without '/' would need XDG_RUNTIME_DIR: make sure the path
    // form does not.
    cmd.env_remove("XDG_RUNTIME_DIR");
    let expected = dir.join("wayland-rel");
    let server = Server::spawn(cmd, TempDir::new("relsock-log"), |_| {});
    assert!(server.socket.is_absolute(), "{}", server.socket.display());
    assert_eq!(dev_ino_of(&server.socket), dev_ino_of(&expected));
    UnixStream::connect(&expected).expect("the socket is in the current directory");
}

fn dev_ino_of(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).expect("stat");
    (m.dev(), m.ino())
}
