//! End-to-end: a hostile `--keymap` path. Replaced by a FIFO, by a symlink
//! to `/dev/zero`, or by a file over the 4 MiB cap, a SIGHUP reload fails
//! at once with a logged reason, the old keymap stays, and the server keeps
//! serving and still stops on SIGTERM. At start-up the same paths fail with
//! one clear line.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;
use waypass_test_support::{bin, eventually, run_client, run_with_patience, Server, TempDir};

/// The server's cap on a `--keymap` file (server/src/keymap.rs).
const MAX_KEYMAP_FILE: u64 = 4 << 20;

fn us_keymap() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/us.xkb");
    fs::read(path).unwrap()
}

/// The keymap text a fresh client gets (without its NUL).
fn served_keymap(server: &Server) -> Vec<u8> {
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--dump"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = out.stdout;
    while text.last() == Some(&0) {
        text.pop();
    }
    text
}

/// Replaces `file` with what `make` puts there, sends SIGHUP, and checks
/// that the reload failed with `reason` and changed nothing.
fn reload_fails(server: &Server, file: &Path, reason: &str, make: impl FnOnce(&Path)) {
    let before = server.log_text().matches("keeping the old keymap").count();
    fs::remove_file(file).unwrap();
    make(file);
    server.signal(Signal::SIGHUP);
    assert!(
        eventually(|| server.log_text().matches("keeping the old keymap").count() > before),
        "the reload failed and said so:\n{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(log.contains(reason), "{reason} in:\n{log}");
    assert_eq!(served_keymap(server), us_keymap(), "the old keymap stays");
}

#[test]
fn sighup_with_a_fifo_dev_zero_or_a_huge_file_keeps_the_old_keymap() {
    let dir = TempDir::new("kmpath");
    let file = dir.join("keymap.xkb");
    fs::write(&file, us_keymap()).unwrap();
    let mut server = Server::start(&["--keymap", file.to_str().unwrap()]);
    assert_eq!(served_keymap(&server), us_keymap());
    let fds = server.fd_count();

    reload_fails(&server, &file, "is a FIFO, not a regular file", |p| {
        mkfifo(p, Mode::from_bits_truncate(0o600)).unwrap()
    });
    reload_fails(&server, &file, "is a character device", |p| {
        symlink("/dev/zero", p).unwrap()
    });
    reload_fails(&server, &file, "is larger than 4 MiB", |p| {
        // Sparse: costs no disk.
        File::create(p)
            .unwrap()
            .set_len(MAX_KEYMAP_FILE + 1)
            .unwrap();
    });

    // Every failed open was closed again (the baseline may still count
    // the first client's connection, hence <=).
    assert!(
        eventually(|| server.fd_count() <= fds),
        "fds: {fds} before, {} after",
        server.fd_count()
    );

    // Still answering SIGTERM.
    server.signal(Signal::SIGTERM);
    assert!(server.wait().success(), "{}", server.log_text());
}

/// Runs the server with `--keymap PATH`, expecting a start-up failure;
/// returns its stderr.
fn start_fails(dir: &TempDir, keymap: &Path) -> String {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket")
        .arg(dir.join("s"))
        .arg("--keymap")
        .arg(keymap)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "never listened");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn at_start_up_the_same_paths_fail_with_one_line() {
    let dir = TempDir::new("kmpath-start");
    let fifo = dir.join("fifo.xkb");
    mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let huge = dir.join("huge.xkb");
    File::create(&huge)
        .unwrap()
        .set_len(MAX_KEYMAP_FILE + 1)
        .unwrap();
    for (path, reason) in [
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (Path::new("/dev/zero"), "is a character device"),
        (dir.path(), "is a directory"),
        (huge.as_path(), "is larger than 4 MiB"),
    ] {
        let err = start_fails(&dir, path);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("waypass-server: error: keymap file "),
            "{err}"
        );
        assert!(err.contains(reason), "{reason} in {err}");
    }
}
