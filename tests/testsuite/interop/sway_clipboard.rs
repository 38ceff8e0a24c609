//! Our clipboard client against a real compositor: sway 1.7, headless
//! (wlroots' `zwlr_data_control_manager_v1` version 2; Debian's `sway`,
//! which `make deps` installs). sway refuses to run as root, so it runs as
//! `nobody` through `setpriv` (the support crate's `sway`), so the test
//! needs root.

use waypass_test_support::clipboard::{client, copy_with, output, wl};
use waypass_test_support::sway::Sway;

#[test]
#[ignore = "needs root: sway refuses to run as root, so the test runs it as nobody through setpriv"]
fn our_copy_and_paste_work_against_sway() {
    let sway = Sway::start().expect("sway (`make deps` installs it)");
    copy_with(client(&sway.socket, &["copy"]), b"through sway");
    let out = output(client(&sway.socket, &["paste", "-n"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"through sway");
    // With wl-clipboard on the other side, both ways.
    let wl_paste = wl(&sway.socket, "wl-paste", &["-n"]);
    assert_eq!(output(wl_paste).stdout, b"through sway");
    copy_with(wl(&sway.socket, "wl-copy", &[]), b"from wl-copy");
    assert_eq!(
        output(client(&sway.socket, &["paste", "-n"])).stdout,
        b"from wl-copy"
    );
    // The primary selection (wlr-data-control version 2).
    copy_with(client(&sway.socket, &["copy", "--primary"]), b"middle");
    assert_eq!(
        output(client(&sway.socket, &["paste", "--primary", "-n"])).stdout,
        b"middle"
    );
}
