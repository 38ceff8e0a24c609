//! wl-clipboard-rs (Rust, wayland-rs; it prefers ext-data-control) against
//! waypass-server, and against wl-clipboard through it: text both ways,
//! the offered types, the primary selection, and a large random payload
//! (1 GiB unless WAYPASS_CLIPBOARD_TEST_BYTES says otherwise) byte for byte
//! in both directions.
//!
//! One test: wl-clipboard-rs finds the display through WAYLAND_DISPLAY,
//! which is process-wide, so its cases run in sequence.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use waypass_test_support::clipboard::{ok, wl};

use waypass_test_support::{wait_timeout, Server, PATIENCE};
use wl_clipboard_rs::copy::{self, MimeSource, Options, Source};
use wl_clipboard_rs::paste::{self, ClipboardType, Seat};

fn wl_copy(server: &Server, args: &[&str], input: &Path) {
    let mut child = wl(&server.socket, "wl-copy", args)
        .stdin(File::open(input).expect("input"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wl-copy");
    let status = wait_timeout(&mut child, PATIENCE).expect("wl-copy hung");
    assert!(status.success(), "wl-copy {args:?}: {status}");
}

fn wl_paste(server: &Server, args: &[&str]) -> Vec<u8> {
    ok(wl(&server.socket, "wl-paste", args))
}

fn rs_copy(clipboard: copy::ClipboardType, mime: &str, bytes: Vec<u8>) {
    let mut options = Options::new();
    options.clipboard(clipboard);
    let source = MimeSource {
        source: Source::Bytes(bytes.into_boxed_slice()),
        mime_type: copy::MimeType::Specific(mime.to_owned()),
    };
    // Serves from a thread of its own until replaced.
    options
        .copy_multi(vec![source])
        .expect("wl-clipboard-rs copy");
}

fn rs_paste(clipboard: ClipboardType, mime: paste::MimeType<'_>) -> (impl Read, String) {
    paste::get_contents(clipboard, Seat::Unspecified, mime).expect("wl-clipboard-rs paste")
}

/// Whether `a` yields exactly the bytes of file `b`, compared in chunks.
fn same_bytes(mut a: impl Read, b: &Path) -> io::Result<bool> {
    let mut b = File::open(b)?;
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[test]
fn wl_clipboard_rs_and_wl_clipboard_through_waypass() {
    let _alone = crate::alone();
    let server = Server::start(&[]);
    std::env::set_var("WAYLAND_DISPLAY", &server.socket);
    std::env::set_var("XDG_RUNTIME_DIR", server.dir.path());
    std::env::remove_var("WAYLAND_SOCKET");

    // Text, both ways.
    rs_copy(
        copy::ClipboardType::Regular,
        "text/plain;charset=utf-8",
        b"from rs".to_vec(),
    );
    assert_eq!(wl_paste(&server, &["-n"]), b"from rs");
    let text = server.dir.join("text");
    File::create(&text)
        .unwrap()
        .write_all(b"from wl-copy")
        .unwrap();
    wl_copy(&server, &[], &text);
    let (mut reader, mime) = rs_paste(ClipboardType::Regular, paste::MimeType::Text);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "from wl-copy");
    assert!(mime.starts_with("text/plain"), "{mime}");
    let types = paste::get_mime_types(ClipboardType::Regular, Seat::Unspecified).unwrap();
    assert!(types.contains("UTF8_STRING"), "{types:?}");

    // The primary selection, on its own.
    rs_copy(
        copy::ClipboardType::Primary,
        "text/plain",
        b"primary".to_vec(),
    );
    assert_eq!(wl_paste(&server, &["--primary", "-n"]), b"primary");
    assert_eq!(wl_paste(&server, &["-n"]), b"from wl-copy");

    // A large random payload, byte for byte, both ways.
    let bytes: u64 = std::env::var("WAYPASS_CLIPBOARD_TEST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let big = server.dir.join("big");
    let status = Command::new("head")
        .args(["-c", &bytes.to_string(), "/dev/urandom"])
        .stdout(File::create(&big).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let mime = "application/x-waypass-random";
    wl_copy(&server, &["--type", mime], &big);
    let (reader, _) = rs_paste(ClipboardType::Regular, paste::MimeType::Specific(mime));
    assert!(
        same_bytes(reader, &big).unwrap(),
        "wl-copy -> wl-clipboard-rs differs"
    );

    let mut data = Vec::with_capacity(bytes as usize);
    File::open(&big).unwrap().read_to_end(&mut data).unwrap();
    rs_copy(copy::ClipboardType::Regular, mime, data);
    let mut cmd = wl(&server.socket, "wl-paste", &["--type", mime]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    assert!(
        same_bytes(out, &big).unwrap(),
        "wl-clipboard-rs -> wl-paste differs"
    );
    assert!(wait_timeout(&mut child, PATIENCE)
        .expect("wl-paste hung")
        .success());
}
