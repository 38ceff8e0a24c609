//! `scripts/demo.sh` end to end: it runs the real server in spawn mode with
//! two real clients, and must tell its story and exit 0.
//!
//! The script is pointed at the binaries this test was built with
//! (`WAYPASS_BIN_DIR`), so it works whatever `CARGO_TARGET_DIR` is.

use std::path::Path;
use std::process::{Command, Stdio};

use waypass_test_support::{bin, run_with_patience};

#[test]
fn the_demo_tells_its_story_and_exits_0() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = bin("waypass-server")
        .parent()
        .expect("binary dir")
        .to_path_buf();
    bin("waypass-client");
    let mut cmd = Command::new(root.join("scripts/demo.sh"));
    cmd.env("WAYPASS_BIN_DIR", &bin_dir)
        .env_remove("WAYLAND_SOCKET")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // Part two: the clipboard, pasted by our client and by wl-paste.
    let pasted = lines
        .iter()
        .filter(|l| **l == "[clipboard]   copied by waypass-client")
        .count();
    assert_eq!(pasted, 2, "{stdout}");
    let has = |prefix: &str, part: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(part))
    };
    let hello = std::fs::read(root.join("assets/hello.txt")).expect("asset");
    let checks = [
        // Both printed the keymap summary they received.
        ("[alice] ", "keymap:    xkb_v1"),
        ("[bob] ", "keymap:    xkb_v1"),
        ("[alice] ", "layouts:   0: English (US)"),
        ("[bob] ", "layouts:   0: English (US)"),
        // The names and the brokered socketpair ends.
        ("[bob] ", "registered name bob"),
        ("[alice] ", "registered name alice"),
        ("[alice] ", "= one end of a socketpair (socket:["),
        ("[bob] ", "= one end of a socketpair (socket:["),
        // What travelled.
        ("[bob] ", "from alice: coucou"),
        ("[alice] ", "sent file hello.txt as fd "),
        ("[bob] ", "received fd "),
        (
            "[bob] ",
            &format!("file from alice: hello.txt {} bytes sha256=", hello.len()),
        ),
        ("[server] ", "exited 0"),
    ];
    for (prefix, part) in checks {
        assert!(
            has(prefix, part),
            "no {prefix}...{part}... line in:\n{stdout}"
        );
    }
    // Every line belongs to someone: no line was cut by another's output.
    for line in &lines {
        assert!(
            ["[alice] ", "[bob] ", "[server] ", "[clipboard] "]
                .iter()
                .any(|p| line.starts_with(p)),
            "unprefixed line {line:?} in:\n{stdout}"
        );
    }
    // The server says it listens before it starts the clients, which
    // connect after that.
    let first = |part: &str| {
        lines
            .iter()
            .position(|l| l.starts_with("[server] ") && l.contains(part))
            .unwrap_or_else(|| panic!("no [server] ...{part}... line in:\n{stdout}"))
    };
    assert!(first("keymap: ") < first("spawned `"), "{stdout}");
    assert!(first("listening on ") < first("spawned `"), "{stdout}");
    assert!(first("spawned `") < first("client connected"), "{stdout}");
    // The file bob read through the fd is the file alice sent: same inode.
    let sent = lines
        .iter()
        .find_map(|l| l.split_once("sent file hello.txt as fd ").map(|x| x.1))
        .expect("sent line");
    let identity = |s: &str| {
        let start = s.find("(dev ").expect("dev") + 1;
        s[start..start + s[start..].find(')').expect(")")].to_string()
    };
    let received = lines
        .iter()
        .find(|l| l.starts_with("[bob] received fd "))
        .expect("received line");
    assert_eq!(identity(sent), identity(received), "{stdout}");
}
