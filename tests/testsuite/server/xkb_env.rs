//! End-to-end: `waypass-server` honours `XKB_DEFAULT_RULES/MODEL/LAYOUT/
//! VARIANT/OPTIONS` as xkbcommon documents them (`struct xkb_rule_names`):
//! with no RMLVO flag, and for every field no flag gives; the variant comes
//! from the environment only with the layout. The layout served is read
//! back through `waypass-client keymap --json`, as a user would.

use std::process::Command;

use serde_json::Value;
use waypass_test_support::{run_client, Server};

const XKB_VARS: [&str; 5] = [
    "XKB_DEFAULT_RULES",
    "XKB_DEFAULT_MODEL",
    "XKB_DEFAULT_LAYOUT",
    "XKB_DEFAULT_VARIANT",
    "XKB_DEFAULT_OPTIONS",
];

/// Starts the server with `args` and exactly the `XKB_DEFAULT_*` in `env`.
fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Server::start_with(args, move |cmd: &mut Command| {
        for var in XKB_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(env);
    })
}

/// The layout names the client reports for the server's keymap.
fn layouts(server: &Server) -> Vec<String> {
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    report["layouts"]
        .as_array()
        .expect("layouts")
        .iter()
        .map(|l| l.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn no_flag_and_no_variable_serves_the_embedded_us_keymap() {
    let server = start(&[], &[]);
    assert_eq!(layouts(&server), ["English (US)"]);
    assert!(server.log_text().contains("embedded us keymap"));
}

#[test]
fn the_environment_alone_chooses_the_layout() {
    let server = start(&[], &[("XKB_DEFAULT_LAYOUT", "de")]);
    assert_eq!(layouts(&server), ["German"]);
    let log = server.log_text();
    assert!(log.contains("layout=de (XKB_DEFAULT_LAYOUT)"), "{log}");

    let server = start(
        &[],
        &[
            ("XKB_DEFAULT_LAYOUT", "de"),
            ("XKB_DEFAULT_VARIANT", "nodeadkeys"),
        ],
    );
    assert_eq!(layouts(&server), ["German (no dead keys)"]);

    let server = start(&[], &[("XKB_DEFAULT_LAYOUT", "us,fr")]);
    assert_eq!(layouts(&server), ["English (US)", "French"]);
}

#[test]
fn a_variant_from_the_environment_needs_the_layout_from_it_too() {
    // XKB_DEFAULT_VARIANT alone: xkbcommon ignores it, so do we.
    let server = start(&[], &[("XKB_DEFAULT_VARIANT", "dvorak")]);
    assert_eq!(layouts(&server), ["English (US)"]);
}

#[test]
fn flags_override_the_environment_field_by_field() {
    let env = [
        ("XKB_DEFAULT_LAYOUT", "de"),
        ("XKB_DEFAULT_VARIANT", "nodeadkeys"),
    ];
    // --layout replaces the layout, and with it the variant from the env.
    let server = start(&["--layout", "fr"], &env);
    assert_eq!(layouts(&server), ["French"]);
    let server = start(&["--layout", "us", "--variant", "dvorak"], &env);
    assert_eq!(layouts(&server), ["English (Dvorak)"]);
    // A flag for another field: the layout still comes from the env.
    let server = start(&["--model", "pc105"], &env);
    assert_eq!(layouts(&server), ["German (no dead keys)"]);
}
