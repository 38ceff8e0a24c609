//! `lw-server DIR KEYMAP_FILE`: a wayland-rs compositor on
//! libwayland-server offering one `wl_seat` whose keyboard sends the keymap
//! in KEYMAP_FILE (as a plain file plus NUL, read-only fd per keyboard). It
//! binds `DIR/wayland-wlrs`, prints that path on stdout, and serves until
//! its stdin closes. Run it with `WAYLAND_DEBUG=1` to get libwayland's own
//! trace on stderr.

// The shared wayland-rs test compositor (waypass-test-support), compiled
// here on libwayland.
use waypass_test_support::wlrs_server;

use std::io::{Read, Write};
use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(keymap)) = (args.next(), args.next()) else {
        panic!("usage: lw-server DIR KEYMAP_FILE");
    };
    let dir = Path::new(&dir);
    let text = std::fs::read_to_string(&keymap).expect("read the keymap file");
    let plan = wlrs_server::keymap_file(&dir.join("keymap.xkb"), &text);
    let server = wlrs_server::WlrsServer::start(dir, wlrs_server::SeatPlan::keyboard(plan));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", server.socket_arg()).expect("stdout");
    stdout.flush().expect("stdout");
    drop(stdout);
    // Serve until the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
}
