//! `waypass-server --persist`: the selection outlives its copier. wl-copy
//! (in the foreground, so that the test holds the process) copies, the
//! server logs that it has the copy, the copier is killed with SIGKILL,
//! and wl-paste still gets the bytes, byte for byte: text, a binary type,
//! the primary selection, a few MiB of random bytes. Without the flag the
//! same kill empties the selection. While the copier lives, pastes work as
//! before; after it leaves, only the types the server kept are offered.
//!
//! What it is not: the hostile copiers and pasters (`persist_hostile.rs`)
//! or wl-clipboard-rs, which needs the process to itself
//! (`tests/alone/clipboard_persist_wl_clipboard_rs.rs`).

use std::process::{Child, Output};

use waypass_client::Selection;
use waypass_test_support::clipboard::{eventually, ok, output, wl, wl_copy_foreground};
use waypass_test_support::persist::{
    random_bytes, wait_persisted, Outcome, Persisted, Script, ScriptedCopier,
};
use waypass_test_support::{wait_timeout, Server, PATIENCE};

/// `wl-copy --foreground ARGS` with `input` on stdin, left running.
fn copy_foreground(server: &Server, args: &[&str], input: &[u8]) -> Child {
    wl_copy_foreground(&server.socket, args, input)
}

/// SIGKILL, as a CI step's cleanup or the OOM killer would.
fn kill(mut copier: Child) {
    copier.kill().expect("kill the copier");
    wait_timeout(&mut copier, PATIENCE).expect("the killed copier is reaped");
}

fn paste(server: &Server, args: &[&str]) -> Output {
    output(wl(&server.socket, "wl-paste", args))
}

fn paste_ok(server: &Server, args: &[&str]) -> Vec<u8> {
    ok(wl(&server.socket, "wl-paste", args))
}

fn list_types(server: &Server, args: &[&str]) -> String {
    let out = paste_ok(server, &[&["--list-types"], args].concat());
    String::from_utf8(out).expect("types are UTF-8")
}

/// `wl-copy --foreground COPY_ARGS < INPUT` on a `--persist` server until
/// the server has the copy, then kills wl-copy and waits until the server
/// serves the selection itself. Returns what the server said it kept.
fn copy_then_kill(server: &Server, copy_args: &[&str], input: &[u8]) -> Persisted {
    let which = if copy_args.contains(&"--primary") {
        Selection::Primary
    } else {
        Selection::Regular
    };
    let copier = copy_foreground(server, copy_args, input);
    let persisted = wait_persisted(server, which, 1);
    assert_eq!(persisted.kept, persisted.offered, "{persisted:?}");
    kill(copier);
    let word = waypass_test_support::persist::selection_word(which);
    server.wait_log(&format!("the server now serves the {word} selection"), 1);
    persisted
}

#[test]
fn text_copied_by_wl_copy_outlives_its_killed_copier() {
    let server = Server::start(&["--persist"]);
    let copier = copy_foreground(&server, &[], b"still here\n");
    let persisted = wait_persisted(&server, Selection::Regular, 1);
    let live_types = list_types(&server, &[]);
    // wl-copy offers the text under several names, each kept.
    assert_eq!(
        persisted.offered,
        live_types.lines().count(),
        "{live_types}"
    );
    assert_eq!(persisted.kept, persisted.offered, "{persisted:?}");
    assert_eq!(persisted.bytes, 11 * persisted.kept as u64);
    kill(copier);
    server.wait_log("the server now serves the regular selection", 1);
    assert_eq!(paste_ok(&server, &["--no-newline"]), b"still here\n");
    assert_eq!(list_types(&server, &[]), live_types);
    for t in live_types.lines() {
        assert_eq!(
            paste_ok(&server, &["--type", t, "-n"]),
            b"still here\n",
            "{t}"
        );
    }
}

#[test]
fn a_binary_type_outlives_its_copier_byte_for_byte() {
    let server = Server::start(&["--persist"]);
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mime = "application/x-waypass-test";
    let persisted = copy_then_kill(&server, &["--type", mime], &data);
    assert_eq!((persisted.kept, persisted.bytes), (1, data.len() as u64));
    assert_eq!(list_types(&server, &[]), format!("{mime}\n"));
    assert!(paste_ok(&server, &["--type", mime]) == data);
}

#[test]
fn the_primary_selection_outlives_its_copier_and_stays_its_own() {
    let server = Server::start(&["--persist"]);
    copy_then_kill(&server, &[], b"regular");
    copy_then_kill(&server, &["--primary"], b"primary");
    assert_eq!(paste_ok(&server, &["-n"]), b"regular");
    assert_eq!(paste_ok(&server, &["--primary", "-n"]), b"primary");
}

#[test]
fn four_mib_of_random_bytes_outlive_their_copier_and_no_fd_is_left() {
    let server = Server::start(&["--persist"]);
    let baseline = server.fd_count();
    let data = random_bytes(4 << 20);
    let mime = "application/octet-stream";
    let persisted = copy_then_kill(&server, &["--type", mime], &data);
    assert_eq!(persisted.bytes, data.len() as u64);
    for round in 0..3 {
        let got = paste_ok(&server, &["--type", mime]);
        assert!(
            got == data,
            "round {round}: {} bytes back, {} sent",
            got.len(),
            data.len()
        );
    }
    // Clearing the selection drops the copy: its memfd and every pipe go.
    let mut clear = wl(&server.socket, "wl-copy", &["--clear"]);
    assert!(clear.status().expect("wl-copy --clear").success());
    server.wait_log("dropped the copy of the regular selection", 1);
    server.wait_fds_at_most(baseline);
}

#[test]
fn without_persist_the_same_kill_empties_the_selection() {
    for flags in [&[][..], &["--persist"][..]] {
        let server = Server::start(flags);
        let copier = copy_foreground(&server, &[], b"who keeps me?");
        eventually("the selection", || {
            paste(&server, &["-n"]).stdout == b"who keeps me?"
        });
        if flags.is_empty() {
            kill(copier);
            eventually("the selection cleared", || {
                let out = paste(&server, &[]);
                !out.status.success()
                    && String::from_utf8_lossy(&out.stderr).contains("No selection")
            });
        } else {
            wait_persisted(&server, Selection::Regular, 1);
            kill(copier);
            server.wait_log("the server now serves the regular selection", 1);
            assert_eq!(paste_ok(&server, &["-n"]), b"who keeps me?");
        }
    }
}

#[test]
fn pastes_work_while_the_copier_lives_and_only_kept_types_are_offered_after() {
    let server = Server::start(&["--persist", "--persist-max", "1MiB"]);
    let big = random_bytes(2 << 20);
    let copier = ScriptedCopier::copy(
        &server,
        Selection::Regular,
        &[
            ("text/plain", Script::Bytes(b"kept".to_vec())),
            ("image/png", Script::Bytes(big.clone())),
        ],
    );
    let persisted = wait_persisted(&server, Selection::Regular, 1);
    assert_eq!(
        persisted,
        Persisted {
            kept: 1,
            offered: 2,
            bytes: 4
        }
    );
    // Over the budget: the server closed its pipe, the copier saw EPIPE.
    assert!(
        matches!(
            copier.wait_served("image/png"),
            Outcome::Failed {
                kind: std::io::ErrorKind::BrokenPipe,
                ..
            }
        ),
        "{:?}",
        copier.served()
    );
    // While the copier lives, both types paste: the kept one from the
    // server's copy, the other from the copier as without --persist.
    assert_eq!(list_types(&server, &[]), "text/plain\nimage/png\n");
    assert_eq!(paste_ok(&server, &["--type", "text/plain", "-n"]), b"kept");
    assert!(paste_ok(&server, &["--type", "image/png"]) == big);
    copier.leave();
    server.wait_log("the server now serves the regular selection", 1);
    // The offer never promises what the server cannot serve.
    assert_eq!(list_types(&server, &[]), "text/plain\n");
    assert_eq!(paste_ok(&server, &["--type", "text/plain", "-n"]), b"kept");
    let out = paste(&server, &["--type", "image/png"]);
    assert!(
        !out.status.success(),
        "image/png still pasted after its copier left"
    );
}
