//! End-to-end: wayland-rs clients fetch the keymap from a real
//! `waypass-server` process, and every client gets the same sealed file.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

use wayland_client::Proxy;
use waypass_protocol::{inspect_fd, Seals};
use waypass_test_support::wlrs_client::{dev_ino, WlClient};
use waypass_test_support::Server;
use xkbcommon::xkb;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

/// The keysym name evdev key `evdev` gives with no modifiers.
fn keysym_name(keymap: &xkb::Keymap, evdev: u32) -> String {
    let state = xkb::State::new(keymap);
    xkb::keysym_get_name(state.key_get_one_sym(xkb::Keycode::new(evdev + 8)))
}

#[test]
fn wayland_rs_client_gets_the_default_us_keymap() {
    let server = Server::start(&["--seat-name", "test-seat", "--repeat-rate", "33"]);
    let mut client = WlClient::connect(&server.socket);
    assert!(client.seat().version() >= 7);
    assert_eq!(client.seen.capabilities, Some(2), "keyboard only");
    assert_eq!(client.seen.seat_name.as_deref(), Some("test-seat"));

    let k = client.get_keyboard();
    let event = &client.seen.keymaps[k];
    assert_eq!(event.format, 1, "xkb_v1");
    let bytes = event.bytes();
    assert_eq!(bytes.last(), Some(&0), "size includes the NUL");
    assert_eq!(
        bytes.iter().filter(|&&b| b == 0).count(),
        1,
        "exactly one NUL"
    );
    assert_eq!(
        &bytes[..bytes.len() - 1],
        fs::read(asset("us.xkb")).unwrap()
    );

    let keymap = event.compile();
    assert_eq!(keymap.layout_get_name(0), "English (US)");
    assert_eq!(keysym_name(&keymap, 16), "q");
    assert_eq!(keysym_name(&keymap, 30), "a");
    assert_eq!(client.seen.repeats, vec![(0, 33, 600)]);
}

#[test]
fn every_client_gets_the_same_sealed_read_only_file() {
    let server = Server::start(&[]);
    let mut clients: Vec<WlClient> = (0..3).map(|_| WlClient::connect(&server.socket)).collect();
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for client in &mut clients {
        let k = client.get_keyboard();
        let event = &client.seen.keymaps[k];
        ids.push(dev_ino(&event.fd));

        let info = inspect_fd(event.fd.as_fd()).expect("inspect");
        assert!(info.memfd, "a memfd");
        let seals = info.seals.expect("sealable");
        for s in [Seals::SHRINK, Seals::GROW, Seals::WRITE, Seals::SEAL] {
            assert!(seals.contains(s), "seal {:?} in {:?}", s, seals.names());
        }
        assert_eq!(info.size, u64::from(event.size));

        // Writing through the fd fails (read-only open, and write-sealed).
        let mut file = fs::File::from(event.fd.try_clone().unwrap());
        assert!(file.write(b"x").is_err(), "write through the keymap fd");

        // read() from offset 0 sees the whole keymap: each client's fd has
        // its own offset, so an earlier client's read does not move it.
        let mut text = Vec::new();
        file.read_to_end(&mut text).unwrap();
        assert_eq!(text.len(), event.size as usize);
        texts.push(text);

        // Read-only MAP_SHARED works too (it fails on old kernels for a
        // write-sealed fd opened read-write).
        // SAFETY: the file is sealed against shrinking.
        let shared = unsafe { memmap2::Mmap::map(&event.fd) }.expect("read-only MAP_SHARED");
        assert_eq!(shared.len(), event.size as usize);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one file: {ids:?}");
    assert!(texts.windows(2).all(|w| w[0] == w[1]));

    // A second keyboard of the same client gets the same file too.
    let k = clients[0].get_keyboard();
    assert_eq!(dev_ino(&clients[0].seen.keymaps[k].fd), ids[0]);
}

#[test]
fn keymap_file_is_served_byte_for_byte() {
    let custom = asset("custom.xkb");
    let server = Server::start(&["--keymap", custom.to_str().unwrap()]);
    let mut client = WlClient::connect(&server.socket);
    let k = client.get_keyboard();
    let event = &client.seen.keymaps[k];
    assert_eq!(event.text().as_bytes(), fs::read(&custom).unwrap());
    assert_eq!(event.size as usize, fs::read(&custom).unwrap().len() + 1);
}

#[test]
fn rmlvo_names_are_compiled() {
    let server = Server::start(&["--layout", "us", "--variant", "dvorak"]);
    let mut client = WlClient::connect(&server.socket);
    let k = client.get_keyboard();
    let keymap = client.seen.keymaps[k].compile();
    assert_eq!(keymap.layout_get_name(0), "English (Dvorak)");
    // Dvorak: the key labelled Q on a QWERTY keyboard types an apostrophe.
    assert_eq!(keysym_name(&keymap, 16), "apostrophe");
}

#[test]
fn unset_rmlvo_fields_follow_xkb_default_environment() {
    // Only the model is given: layout and variant come from the environment.
    let server = Server::start_with(&["--model", "pc105"], |cmd| {
        cmd.env("XKB_DEFAULT_LAYOUT", "de")
            .env("XKB_DEFAULT_VARIANT", "nodeadkeys");
    });
    let mut client = WlClient::connect(&server.socket);
    let k = client.get_keyboard();
    let keymap = client.seen.keymaps[k].compile();
    assert_eq!(keymap.layout_get_name(0), "German (no dead keys)");
    // German: the key labelled Y on a US keyboard types z.
    assert_eq!(keysym_name(&keymap, 21), "z");
}

#[test]
fn a_released_keyboard_can_be_replaced() {
    let server = Server::start(&[]);
    let mut client = WlClient::connect(&server.socket);
    let first = client.get_keyboard();
    client.release_keyboard(client.seen.keymaps[first].keyboard);
    // The server answers the release with delete_id; the connection stays
    // healthy and a new keyboard works.
    let second = client.get_keyboard();
    assert_ne!(first, second);
    assert_eq!(client.seen.keymaps.len(), 2);
}
