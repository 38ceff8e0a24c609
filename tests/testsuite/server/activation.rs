//! End-to-end: socket activation. `systemd-socket-activate -l PATH
//! waypass-server` binds PATH and starts the server when the first client
//! connects, passing the socket as fd 3 with `LISTEN_FDS`/`LISTEN_PID`, as
//! `systemctl --user start waypass.socket` does with `contrib/systemd`.
//! The server serves it (close-on-exec), prints its path, takes no lock
//! file, leaves the path at exit, and passes no `LISTEN_*` to `--spawn`
//! children; a passed fd that is not a listening socket is one clear line.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use waypass_test_support::{
    bin, eventually, run_client, run_with_patience, wait_timeout, TempDir, PATIENCE,
};

/// `systemd-socket-activate`, then the server it becomes (the same pid):
/// killed on drop, so that a failing test leaves no server behind.
struct Activated(Child);

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `systemd-socket-activate -l socket waypass-server args...`, stdout
/// piped, stderr (its own lines, then the server's log) into `log`.
/// Returns once the socket exists; the server starts at the first connect.
fn activate(socket: &Path, log: &Path, args: &[&str]) -> Activated {
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("-l")
        .arg(socket)
        .arg(bin("waypass-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("XKB_DEFAULT_LAYOUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(log).expect("log file"));
    let child = cmd
        .spawn()
        .expect("systemd-socket-activate (Debian's systemd package; `make deps-test` installs it)");
    let child = Activated(child);
    assert!(
        eventually(|| socket.exists()),
        "{} never appeared",
        socket.display()
    );
    child
}

/// The fd flags line of `/proc/PID/fdinfo/FD`, as an octal number.
fn fd_flags(pid: u32, fd: u32) -> u32 {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).expect("fdinfo");
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("a flags line");
    u32::from_str_radix(flags.trim(), 8).expect("octal flags")
}

#[test]
fn the_first_client_starts_the_server_on_the_inherited_socket() {
    let dir = TempDir::new("activation");
    let socket = dir.join("wayland-sa");
    let log = dir.join("server.log");
    let mut server = activate(&socket, &log, &[]);
    let socket_arg = socket.to_str().unwrap();

    // This connect is what starts the server (systemd-socket-activate
    // execs it, keeping its pid).
    let out = run_client(&["--socket", socket_arg, "keymap"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keymap:    xkb_v1"));
    // A second client is served by the same process.
    let out = run_client(&["--socket", socket_arg, "keymap", "--json"]);
    assert!(out.status.success(), "{out:?}");

    let mut stdout = BufReader::new(server.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the path line");
    assert_eq!(line.trim_end(), socket_arg, "it prints the inherited path");
    const O_CLOEXEC: u32 = 0o2000000;
    assert_ne!(
        fd_flags(server.0.id(), 3) & O_CLOEXEC,
        0,
        "fd 3 is close-on-exec"
    );
    assert!(!dir.join("wayland-sa.lock").exists(), "no lock file");

    kill(Pid::from_raw(server.0.id() as i32), Signal::SIGTERM).expect("kill");
    let status = wait_timeout(&mut server.0, PATIENCE).expect("the server exits");
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}\n{text}");
    assert!(
        text.contains(&format!("listening on {socket_arg}")),
        "{text}"
    );
    assert!(
        socket.exists(),
        "the socket's path is systemd's: left in place"
    );
    assert!(!dir.join("wayland-sa.lock").exists(), "no lock file");
}

#[test]
fn spawned_children_inherit_no_listen_variables() {
    let dir = TempDir::new("activation-spawn");
    let socket = dir.join("wayland-sa");
    let log = dir.join("server.log");
    let env_file = dir.join("env");
    let dump = format!("env > {}", env_file.display());
    let mut server = activate(&socket, &log, &["--exit-with-children", "--spawn", &dump]);
    // Any connect starts it; the child then runs and the server exits.
    drop(UnixStream::connect(&socket).expect("connect"));
    let status = wait_timeout(&mut server.0, PATIENCE).expect("the server exits");
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}\n{text}");
    let env = fs::read_to_string(&env_file).expect("the child's environment");
    assert!(env.contains("WAYLAND_SOCKET="), "{env}");
    assert!(!env.contains("LISTEN_"), "{env}");
}

#[test]
fn variables_for_another_process_are_ignored_and_not_passed_on() {
    let dir = TempDir::new("activation-other");
    let env_file = dir.join("env");
    let socket = dir.join("wayland-own");
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket")
        .arg(&socket)
        .args(["--exit-with-children", "--spawn"])
        .arg(format!("env > {}", env_file.display()))
        // pid 1 is never us: the server binds its own socket as usual.
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "other")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        socket.to_str().unwrap()
    );
    let env = fs::read_to_string(&env_file).expect("the child's environment");
    assert!(!env.contains("LISTEN_"), "{env}");
}

#[test]
fn a_passed_fd_that_is_not_a_listening_socket_is_one_clear_line() {
    let server = bin("waypass-server");
    // `exec env` keeps the shell's pid, so LISTEN_PID=$$ names the server.
    for (count, fd3, expected) in [
        ("1", "3</dev/null", "fd 3 (LISTEN_FDS) is not a socket"),
        ("1", "3<&-", "fd 3 (LISTEN_FDS) is not open"),
        // A count past the fds passed stops at the first one missing.
        ("2000000000", "3</dev/null", "fd 4 (LISTEN_FDS) is not open"),
    ] {
        let script = format!(
            "exec env LISTEN_PID=$$ LISTEN_FDS={count} {} {fd3}",
            server.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = run_with_patience(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr, format!("waypass-server: error: {expected}\n"));
        assert!(out.stdout.is_empty());
    }
}
