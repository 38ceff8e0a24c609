//! A wl-clipboard-rs copier in a process of its own, for the `--persist`
//! tests (`tests/alone/clipboard_persist_wl_clipboard_rs.rs`): it copies
//! FILE as MIME with wl-clipboard-rs in the foreground, on the display of
//! `WAYLAND_DISPLAY`, and serves pastes until its selection is replaced
//! or it is killed, which is what the tests do to it.
//!
//! Usage: `wlrs-copy [--primary] [--sensitive] MIME FILE`
//!
//! `--sensitive` adds wl-clipboard-rs's password-manager hint
//! (`x-kde-passwordManagerHint`). What it is not: a `wl-copy`; it panics
//! on what a test would call a failure.
#![forbid(unsafe_code)]

use wl_clipboard_rs::copy::{ClipboardType, MimeSource, MimeType, Options, Source};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [mime, file] = rest.as_slice() else {
        eprintln!("usage: wlrs-copy [--primary] [--sensitive] MIME FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let mut options = Options::new();
    options
        .foreground(true)
        .sensitive(flag("--sensitive"))
        .clipboard(if flag("--primary") {
            ClipboardType::Primary
        } else {
            ClipboardType::Regular
        });
    let source = MimeSource {
        source: Source::Bytes(data.into_boxed_slice()),
        mime_type: MimeType::Specific(mime.to_string()),
    };
    // Foreground: sets the selection, then serves here until replaced.
    options
        .copy_multi(vec![source])
        .expect("wl-clipboard-rs copy");
}
