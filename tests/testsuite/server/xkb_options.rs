//! End-to-end: `--options` (and `XKB_DEFAULT_OPTIONS`) are checked against
//! xkb-data's rules before the server starts. An unknown option is one
//! line naming `evdev.lst`, and no socket is made; options that the list
//! or only the rules file define are served.

use std::process::{Command, Stdio};

use waypass_test_support::{bin, run_client, run_with_patience, Server, TempDir};

/// The rules' list as xkbcommon finds it by default.
const LIST: &str = "/usr/share/X11/xkb/rules/evdev.lst";

#[test]
fn an_unknown_option_is_refused_naming_the_list() {
    let dir = TempDir::new("xkb-options");
    let socket = dir.join("wayland-opt");
    for (args, env) in [
        (vec!["--options", "ctrl:nocaps,bogus:opt"], None),
        (vec![], Some("bogus:opt")),
    ] {
        let mut cmd = Command::new(bin("waypass-server"));
        cmd.arg("--socket")
            .arg(&socket)
            .args(&args)
            .env("RUST_LOG", "info")
            .env_remove("XKB_CONFIG_ROOT")
            .env_remove("XKB_DEFAULT_RULES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match env {
            Some(options) => cmd.env("XKB_DEFAULT_OPTIONS", options),
            None => cmd.env_remove("XKB_DEFAULT_OPTIONS"),
        };
        let out = run_with_patience(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err,
            format!(
                "waypass-server: error: unknown XKB option \"bogus:opt\": {LIST} lists the \
                 valid ones (as does `localectl list-x11-keymap-options`)\n"
            )
        );
        assert!(out.stdout.is_empty());
        assert!(!socket.exists(), "no socket made");
    }
}

#[test]
fn options_of_the_list_or_of_the_rules_file_alone_are_served() {
    // ctrl:nocaps is in evdev.lst; grp:shift_toggle only in rules/evdev.
    let server = Server::start(&["--options", "ctrl:nocaps,grp:shift_toggle"]);
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--dump"]);
    assert!(out.status.success(), "{out:?}\n{}", server.log_text());
    let keymap = String::from_utf8_lossy(&out.stdout);
    // What each option does: Caps Lock is a Control, and Shift with the
    // other Shift switches the layout.
    let key = |name: &str| {
        keymap
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("key <{name}>")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(key("CAPS").contains("Control_L"), "{}", key("CAPS"));
    assert!(key("LFSH").contains("ISO_Prev_Group"), "{}", key("LFSH"));
}
