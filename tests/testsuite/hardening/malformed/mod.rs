//! End-to-end hardening: a suite of malformed and hostile inputs, each sent
//! over a raw `UnixStream` to one running `waypass-server`.
//!
//! What it checks, for every case: the misbehaving client gets
//! `wl_display.error` with the expected code (where the protocol has one)
//! or a disconnect, or, for the few inputs that are odd but legal, a
//! correct answer; a well-behaved wayland-rs client connected the whole
//! time completes a keymap fetch afterwards; and the server's
//! `/proc/PID/fd` count and resident memory return to their baseline.
//! It prints `malformed suite: N cases, N passed` (the figure in
//! `RELIABILITY.md`).
//!
//! What it is not: the server's own error-message table (that is
//! `tests/testsuite/server/errors.rs`, which checks message texts word for word) or a
//! codec test (`protocol/tests/wire_props.rs`).
//!
//! # Implementation notes
//!
//! - Valid prefixes are encoded with the protocol crate's [`wire::encode`]
//!   against the real interface tables; the bad parts are written by hand.
//! - Cases that leave a message incomplete shut the write side down, so the
//!   server sees end-of-file instead of waiting for the rest.
//! - The protocol has no request with an `fd` or `array` argument among the
//!   core interfaces the server offers, so "an fd argument with no fd" and
//!   "an array running past the message" are checked where such arguments
//!   are received: our client, against a raw server
//!   (`tests/testsuite/hardening/client_input.rs`).

mod broker;
mod cases;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use waypass_test_support::raw;

use cases::{cases, Action, Expect};
use waypass_test_support::raw::{display_error, parse_events, Raw};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

/// How far RSS may stay above the baseline after a case, in KiB.
const RSS_MARGIN_KIB: u64 = 1024;

/// What one case did to the server.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failures: Vec<String>,
    max_rss_over_kib: i64,
}

fn run_action(socket: &Path, action: &Action) -> Result<Vec<raw::Event>, String> {
    let mut raw = Raw::connect(socket);
    match action {
        Action::Send { bytes, close_write } => {
            raw.send(bytes);
            if *close_write {
                let _ = raw.stream.shutdown(std::net::Shutdown::Write);
            }
        }
        Action::SingleBytes(bytes) => {
            for b in bytes {
                raw.stream
                    .write_all(std::slice::from_ref(b))
                    .map_err(|e| format!("single-byte write: {e}"))?;
            }
        }
        Action::WithFds {
            bytes,
            fds,
            repeat,
            close_write,
        } => {
            let spare = File::open("/dev/null").map_err(|e| e.to_string())?;
            let many: Vec<_> = (0..*fds).map(|_| spare.as_fd()).collect();
            for _ in 0..*repeat {
                if !raw.try_send_with_fds(bytes, &many) {
                    break;
                }
            }
            if *close_write {
                let _ = raw.stream.shutdown(std::net::Shutdown::Write);
            }
        }
    }
    read_lossy(&mut raw)
}

/// Reads until the hang-up; parses what came if it is whole messages.
fn read_lossy(raw: &mut Raw) -> Result<Vec<raw::Event>, String> {
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match raw.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("no hang-up: {e}")),
        }
    }
    // A stream cut by the server (over a cap) may end mid-message.
    let whole = whole_len(&bytes);
    Ok(parse_events(&bytes[..whole]))
}

/// A `Served` or `Failed` case stays open until we close it: read its
/// replies up to the `done` of `marker` first.
fn run_served(socket: &Path, action: &Action, marker: u32) -> Result<Vec<raw::Event>, String> {
    let mut raw = Raw::connect(socket);
    let spare = File::open("/dev/null").map_err(|e| e.to_string())?;
    match action {
        Action::Send { bytes, .. } => raw.send(bytes),
        Action::SingleBytes(bytes) => {
            for b in bytes {
                raw.stream
                    .write_all(std::slice::from_ref(b))
                    .map_err(|e| format!("single-byte write: {e}"))?;
            }
        }
        Action::WithFds {
            bytes, fds, repeat, ..
        } => {
            let many: Vec<_> = (0..*fds).map(|_| spare.as_fd()).collect();
            for _ in 0..*repeat {
                raw.send_with_fds(bytes, &many);
            }
        }
    }
    // Until `wl_callback.done` from the marker id.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let events = parse_events(&bytes[..whole_len(&bytes)]);
        if let Some(e) = display_error(&events) {
            return Err(format!("unexpected error {e:?}"));
        }
        if events.iter().any(|e| (e.sender, e.opcode) == (marker, 0)) {
            return Ok(events);
        }
        let n = raw
            .stream
            .read(&mut buf)
            .map_err(|e| format!("reading replies: {e}"))?;
        if n == 0 {
            return Err(format!("hung up before the done of {marker}: {events:?}"));
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// How many leading bytes of `bytes` are whole messages.
fn whole_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let word = u32::from_ne_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let size = (word >> 16) as usize;
        if size < 8 || at + size > bytes.len() {
            break;
        }
        at += size;
    }
    at
}

fn check_answer(events: &[raw::Event], expect: Expect) -> Result<(), String> {
    let error = display_error(events);
    match expect {
        Expect::Error(code) => {
            let e = error.ok_or_else(|| format!("no wl_display.error in {events:?}"))?;
            if e.code != code {
                return Err(format!("code {} instead of {code}: {e:?}", e.code));
            }
            let last = events.last().expect("at least the error");
            if (last.sender, last.opcode) != (1, 0) {
                return Err("the error is not the last event".into());
            }
            Ok(())
        }
        // A hang-up happened (we read to EOF); an error before it is fine.
        Expect::Disconnect => Ok(()),
        Expect::Hangup if error.is_some() => Err(format!("unexpected error {error:?}")),
        Expect::Hangup => Ok(()),
        Expect::Served(_) => Ok(()),
        Expect::Failed { object, reason, .. } => {
            let failed = events.iter().find(|e| (e.sender, e.opcode) == (object, 1));
            let got = failed.map(|e| u32::from_ne_bytes(e.body[..4].try_into().unwrap()));
            if got == Some(reason) {
                Ok(())
            } else {
                Err(format!("failed({reason}) on {object} expected: {events:?}"))
            }
        }
    }
}

/// Runs one case and checks the misbehaving client's answer.
fn run_case(socket: &Path, action: &Action, expect: Expect) -> Result<(), String> {
    let events = match expect {
        Expect::Served(marker) | Expect::Failed { marker, .. } => {
            run_served(socket, action, marker)?
        }
        _ => run_action(socket, action)?,
    };
    check_answer(&events, expect)
}

/// The well-behaved client fetches a keymap and checks its contents.
fn keymap_fetch(good: &mut WlClient) -> Result<(), String> {
    let k = good.get_keyboard();
    let keymap = &good.seen.keymaps[k];
    let text = keymap.text();
    if !text.starts_with("xkb_keymap") || keymap.size as usize != text.len() + 1 {
        return Err(format!(
            "bad keymap: size {} text {}",
            keymap.size,
            text.len()
        ));
    }
    let name = keymap.compile().layout_get_name(0).to_string();
    if name != "English (US)" {
        return Err(format!("layout {name:?}"));
    }
    // Close the fd and release the keyboard: the good client fetches one
    // per case, and a client may hold 32 keyboards.
    good.seen.keymaps.pop();
    if let Some(keyboard) = good.seen.keyboards.pop() {
        keyboard.release();
    }
    Ok(())
}

#[test]
fn malformed_suite() {
    let server = Server::start(&[]);
    let mut good = WlClient::connect(&server.socket);
    let mut owner = broker::Owner::register(&server.socket).expect("owner registers");
    // Warm up: every path the server takes for a client has run once.
    keymap_fetch(&mut good).expect("first keymap fetch");
    broker::broker_exchange(&server.socket, &mut owner).expect("first broker exchange");
    good.roundtrip();
    good.roundtrip();
    let fd_base = server.fd_count();
    let rss_base = server.rss_kib();

    let mut all = cases();
    all.extend(broker::cases());
    let mut tally = Tally::default();
    for (name, action, expect) in &all {
        let answer = run_case(&server.socket, action, *expect);
        let fetched = keymap_fetch(&mut good).and_then(|()| {
            broker::broker_exchange(&server.socket, &mut owner)
                .map_err(|e| format!("broker exchange: {e}"))
        });
        let fds_back = eventually(|| server.fd_count() == fd_base);
        let rss_back = eventually(|| server.rss_kib() <= rss_base + RSS_MARGIN_KIB);
        let over = server.rss_kib() as i64 - rss_base as i64;
        tally.max_rss_over_kib = tally.max_rss_over_kib.max(over);
        let verdict = answer
            .and(fetched.map_err(|e| format!("keymap fetch after it: {e}")))
            .and(if fds_back {
                Ok(())
            } else {
                Err(format!("server fds {} != {fd_base}", server.fd_count()))
            })
            .and(if rss_back {
                Ok(())
            } else {
                Err(format!("server RSS +{over} KiB over {rss_base} KiB"))
            });
        match verdict {
            Ok(()) => tally.passed += 1,
            Err(e) => tally.failures.push(format!("{name}: {e}")),
        }
    }
    let log = server.log_text();
    println!(
        "malformed suite: {} cases, {} passed (server fds {fd_base}, RSS {rss_base} KiB, \
         most above it after a case: {} KiB)",
        all.len(),
        tally.passed,
        tally.max_rss_over_kib
    );
    assert!(all.len() >= 30, "at least 30 distinct cases");
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    assert!(!log.contains("panicked"), "{log}");
}
