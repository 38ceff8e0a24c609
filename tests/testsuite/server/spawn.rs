//! End-to-end: `waypass-server --spawn`. A spawned child holds exactly
//! stdio and its `WAYLAND_SOCKET` fd, starts with no signal blocked, and
//! can speak Wayland over that fd; `--exit-with-children` stops the server
//! (removing its socket) once the children are done, with exit status 0
//! only if every child exited 0.

use std::collections::BTreeMap;
use std::fs;

use waypass_test_support::{bin, Server};

/// `sh` code that writes "N TARGET" for each fd of the shell itself (the
/// `sh -c` the server started) to `out`, then its own `WAYLAND_SOCKET`.
///
/// `exec >` redirects for good, so the shell saves no copy of stdout, and
/// `readlink` is a child reading the shell's `/proc/PID/fd`, so its own fds
/// are not listed. The glob's directory fd is listed but closed by the time
/// `readlink` runs: it prints as "gone".
fn list_fds(out: &str) -> String {
    format!(
        "exec > {out}; for f in /proc/$$/fd/*; do printf '%s ' \"${{f##*/}}\"; \
         readlink \"$f\" 2>/dev/null || echo gone; done; \
         echo \"WAYLAND_SOCKET $WAYLAND_SOCKET\"; grep -E '^Sig(Blk|Ign)' /proc/self/status"
    )
}

#[test]
fn child_holds_stdio_and_its_socket_only_and_speaks_wayland() {
    let dir = waypass_test_support::TempDir::new("spawn");
    let fds_file = dir.join("fds");
    let keymap_file = dir.join("keymap");
    let client = bin("waypass-client");
    let speak = format!("{} keymap > {}", client.display(), keymap_file.display());
    let mut server = Server::start(&[
        "--exit-with-children",
        "--spawn",
        &list_fds(fds_file.to_str().unwrap()),
        "--spawn",
        &speak,
    ]);
    let status = server.wait();
    assert!(status.success(), "{status:?}\n{}", server.log_text());
    assert!(!server.socket.exists(), "socket removed");
    assert!(
        !server.dir.join("wayland-test.lock").exists(),
        "lock removed"
    );

    let text = fs::read_to_string(&fds_file).expect("the child wrote its fds");
    let mut fds = BTreeMap::new();
    let mut gone = Vec::new();
    let mut socket_number = None;
    let mut masks = BTreeMap::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("WAYLAND_SOCKET ") {
            socket_number = Some(n.parse::<u32>().expect("a number"));
        } else if let Some((key, value)) = line.split_once(":\t") {
            masks.insert(key.to_string(), value.to_string());
        } else {
            let (n, target) = line.split_once(' ').expect("N TARGET");
            let n: u32 = n.parse().expect("fd number");
            if target == "gone" {
                gone.push(n);
            } else {
                fds.insert(n, target.to_string());
            }
        }
    }
    let socket_number = socket_number.expect("WAYLAND_SOCKET is set");
    let numbers: Vec<u32> = fds.keys().copied().collect();
    assert_eq!(numbers, [0, 1, 2, socket_number], "{text}");
    assert!(fds[&socket_number].starts_with("socket:["), "{text}");
    // At most the glob's directory, closed before readlink looked.
    assert!(gone.len() <= 1, "{text}");
    assert_eq!(masks["SigBlk"], "0000000000000000", "no signal blocked");
    // The server's own: SIGPIPE (the Rust runtime ignores it) and the
    // signals it handles. Others are inherited as the server got them.
    let ignored = u64::from_str_radix(&masks["SigIgn"], 16).unwrap();
    for signal in [1, 2, 13, 15, 17] {
        assert_eq!(ignored & (1 << (signal - 1)), 0, "signal {signal} ignored");
    }

    let keymap = fs::read_to_string(&keymap_file).unwrap();
    assert!(!keymap.is_empty(), "the client printed its keymap summary");
    let log = server.log_text();
    assert!(log.contains("exited with status 0"), "{log}");
}

#[test]
fn a_failing_child_makes_the_server_exit_1() {
    let mut server = Server::start(&[
        "--exit-with-children",
        "--spawn",
        "true",
        "--spawn",
        "exit 3",
    ]);
    let status = server.wait();
    assert_eq!(status.code(), Some(1), "{}", server.log_text());
    assert!(!server.socket.exists(), "socket removed");
    assert!(server.log_text().contains("exited with status 3"));
}

#[test]
fn a_child_killed_by_a_signal_is_a_failure() {
    let mut server = Server::start(&["--exit-with-children", "--spawn", "kill -TERM $$"]);
    let status = server.wait();
    assert_eq!(status.code(), Some(1), "{}", server.log_text());
    assert!(server.log_text().contains("killed by SIGTERM"));
}

#[test]
fn exit_with_children_needs_spawn() {
    let out = waypass_test_support::run_with_patience({
        let mut cmd = std::process::Command::new(bin("waypass-server"));
        cmd.arg("--exit-with-children")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--spawn"));
}
