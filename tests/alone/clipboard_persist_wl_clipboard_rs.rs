//! wl-clipboard-rs and `waypass-server --persist`: a copier built on
//! wl-clipboard-rs (`wlrs-copy`, a process of its own) copies, the server
//! logs that it has the copy, the copier is killed with SIGKILL, and both
//! wl-clipboard-rs and wl-paste paste the bytes back, byte for byte: text,
//! a few MiB of random bytes, the primary selection. Also wl-copy killed
//! and wl-clipboard-rs pasting, and a selection wl-clipboard-rs marks as a
//! password (`x-kde-passwordManagerHint`), which the server never copies.
//!
//! One test: wl-clipboard-rs's paster finds the display through
//! WAYLAND_DISPLAY, which is process-wide, so its cases run in sequence
//! and alone (`crate::alone`).

use std::fs;
use std::io::Read;
use std::process::{Child, Stdio};

use waypass_test_support::clipboard::{eventually, ok, wl, wl_copy_foreground};
use waypass_test_support::persist::{random_bytes, selection_word, wait_persisted};
use waypass_test_support::{bin, wait_timeout, Server, PATIENCE};
use wl_clipboard_rs::paste::{self, ClipboardType, Seat};

/// Which selection, in the test support's and in wl-clipboard-rs's words.
#[derive(Clone, Copy)]
struct Which {
    ours: waypass_client::Selection,
    theirs: ClipboardType,
}

const REGULAR: Which = Which {
    ours: waypass_client::Selection::Regular,
    theirs: ClipboardType::Regular,
};
const PRIMARY: Which = Which {
    ours: waypass_client::Selection::Primary,
    theirs: ClipboardType::Primary,
};

/// Counts, per selection, the copies the server has logged so far, so that
/// each wait is for the next line.
#[derive(Default)]
struct Seen {
    persisted: [usize; 2],
    served: [usize; 2],
}

impl Seen {
    /// Waits for the next copy of `which`, kills `copier`, and waits until
    /// the server serves the selection itself.
    fn persist_then_kill(&mut self, server: &Server, which: Which, mut copier: Child) {
        let i = which.ours as usize;
        self.persisted[i] += 1;
        let persisted = wait_persisted(server, which.ours, self.persisted[i]);
        assert_eq!(persisted.kept, persisted.offered, "{persisted:?}");
        copier.kill().expect("kill the copier");
        wait_timeout(&mut copier, PATIENCE).expect("reaped");
        self.served[i] += 1;
        let word = selection_word(which.ours);
        let needle = format!("the server now serves the {word} selection");
        server.wait_log(&needle, self.served[i]);
    }
}

/// `wlrs-copy ARGS MIME FILE` with `data` in FILE, left running.
fn rs_copy(server: &Server, args: &[&str], mime: &str, data: &[u8]) -> Child {
    let file = server.dir.join("input");
    fs::write(&file, data).expect("write the input");
    let program = bin("wlrs-copy");
    let file = file.to_str().expect("UTF-8 path");
    wl(
        &server.socket,
        program.to_str().expect("UTF-8 path"),
        &[args, &[mime, file]].concat(),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn wlrs-copy")
}

/// `wl-copy --foreground ARGS` with `data` on stdin, left running.
fn wl_copy(server: &Server, args: &[&str], data: &[u8]) -> Child {
    wl_copy_foreground(&server.socket, args, data)
}

/// What wl-clipboard-rs pastes of `which` as `mime`.
fn rs_paste(which: Which, mime: paste::MimeType<'_>) -> Vec<u8> {
    let (mut pipe, _) =
        paste::get_contents(which.theirs, Seat::Unspecified, mime).expect("wl-clipboard-rs paste");
    let mut got = Vec::new();
    pipe.read_to_end(&mut got).expect("read the paste");
    got
}

fn wl_paste(server: &Server, args: &[&str]) -> Vec<u8> {
    ok(wl(&server.socket, "wl-paste", args))
}

#[test]
fn wl_clipboard_rs_selections_outlive_their_killed_copier() {
    let _alone = crate::alone();
    let server = Server::start(&["--persist"]);
    std::env::set_var("WAYLAND_DISPLAY", &server.socket);
    std::env::set_var("XDG_RUNTIME_DIR", server.dir.path());
    std::env::remove_var("WAYLAND_SOCKET");
    let mut seen = Seen::default();

    // Text: wl-clipboard-rs offers it under the usual text types too.
    let copier = rs_copy(&server, &[], "text/plain;charset=utf-8", b"from rs");
    seen.persist_then_kill(&server, REGULAR, copier);
    assert_eq!(rs_paste(REGULAR, paste::MimeType::Text), b"from rs");
    assert_eq!(wl_paste(&server, &["-n"]), b"from rs");
    let types = paste::get_mime_types(ClipboardType::Regular, Seat::Unspecified).unwrap();
    assert!(types.contains("UTF8_STRING"), "{types:?}");

    // A few MiB of random bytes, byte for byte, to both pasters.
    let mime = "application/x-waypass-random";
    let data = random_bytes(3 << 20);
    let copier = rs_copy(&server, &[], mime, &data);
    seen.persist_then_kill(&server, REGULAR, copier);
    assert!(rs_paste(REGULAR, paste::MimeType::Specific(mime)) == data);
    assert!(wl_paste(&server, &["--type", mime]) == data);

    // The primary selection, on its own.
    let copier = rs_copy(&server, &["--primary"], "text/plain", b"primary");
    seen.persist_then_kill(&server, PRIMARY, copier);
    assert_eq!(
        rs_paste(PRIMARY, paste::MimeType::Specific("text/plain")),
        b"primary"
    );
    assert_eq!(wl_paste(&server, &["--primary", "-n"]), b"primary");
    assert!(rs_paste(REGULAR, paste::MimeType::Specific(mime)) == data);

    // wl-copy killed, wl-clipboard-rs pasting.
    let copier = wl_copy(&server, &["--type", mime], &data[..1 << 20]);
    seen.persist_then_kill(&server, REGULAR, copier);
    assert!(rs_paste(REGULAR, paste::MimeType::Specific(mime)) == data[..1 << 20]);

    // A password (wl-clipboard-rs's --sensitive) is never copied: its
    // selection goes with its copier.
    let copies = server.log_count("persisted the regular selection");
    let mut copier = rs_copy(&server, &["--sensitive"], "text/plain", b"hunter2");
    eventually("the password's selection", || {
        String::from_utf8_lossy(&wl_paste(&server, &["--list-types"]))
            .lines()
            .any(|t| t == "x-kde-passwordManagerHint")
    });
    copier.kill().expect("kill");
    wait_timeout(&mut copier, PATIENCE).expect("reaped");
    eventually("the password's selection cleared", || {
        matches!(
            paste::get_contents(
                ClipboardType::Regular,
                Seat::Unspecified,
                paste::MimeType::Any
            ),
            Err(paste::Error::ClipboardEmpty)
        )
    });
    assert_eq!(server.log_count("persisted the regular selection"), copies);
}
