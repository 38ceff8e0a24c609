//! An unmodified libwayland client against waypass-server: `wayland-info`
//! (Debian's wayland-utils, which `make deps` installs) lists our globals,
//! binds `wl_seat`, gets the keyboard and reads what the seat announces.
//! With `WAYLAND_DEBUG=1`, libwayland's own trace shows the keymap event
//! arriving with its fd; every line of it parses as a trace line.

use std::process::{Command, Stdio};

use waypass_protocol::__private::parse_trace_line;
use waypass_test_support::{run_with_patience, Server};

fn wayland_info(server: &Server, debug: bool) -> std::process::Output {
    let mut cmd = Command::new("wayland-info");
    cmd.env("WAYLAND_DISPLAY", &server.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("WAYLAND_SOCKET");
    if debug {
        cmd.env("WAYLAND_DEBUG", "1");
    }
    run_with_patience(cmd)
}

#[test]
fn wayland_info_reads_our_seat_and_keyboard() {
    let server = Server::start(&["--repeat-rate", "33", "--repeat-delay", "444"]);
    let out = wayland_info(&server, false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "'wl_seat'",
        "'waypass_broker_v1'",
        "name: seat0",
        "capabilities: keyboard",
        "keyboard repeat rate: 33",
        "keyboard repeat delay: 444",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
}

#[test]
fn libwayland_traces_the_keymap_fd_it_received() {
    let server = Server::start(&[]);
    let out = wayland_info(&server, true);
    assert!(out.status.success());
    let trace = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = trace.lines().filter(|l| l.starts_with('[')).collect();
    assert!(lines.len() > 5, "no trace:\n{trace}");
    for line in &lines {
        assert!(parse_trace_line(line).is_some(), "unparsed: {line}");
    }
    let keymap = lines
        .iter()
        .filter_map(|l| parse_trace_line(l))
        .find(|t| !t.sent && t.interface == "wl_keyboard" && t.message == "keymap")
        .unwrap_or_else(|| panic!("no keymap event in libwayland's trace:\n{trace}"));
    // format xkb_v1, then the fd, then the size of the embedded keymap + NUL.
    let args: Vec<&str> = keymap.args.split(", ").collect();
    assert_eq!(args[0], "1", "{keymap:?}");
    assert!(args[1].starts_with("fd "), "{keymap:?}");
    let size: usize = args[2].parse().expect("size");
    assert_eq!(size, include_str!("../../../assets/us.xkb").len() + 1);
}
