//! `lw-client SOCKET`: a wayland-rs client on libwayland-client. It binds
//! `wl_seat`, creates a keyboard, receives the keymap, and does a `sync`
//! round trip, then prints what it saw as `key=value` lines on stdout. Run
//! it with `WAYLAND_DEBUG=1` to get libwayland's own trace on stderr.

// The shared wayland-rs test client (waypass-test-support), compiled here
// on libwayland.
use waypass_test_support::wlrs_client;

use std::path::Path;

fn main() {
    let socket = std::env::args().nth(1).expect("usage: lw-client SOCKET");
    let mut client = wlrs_client::WlClient::connect(Path::new(&socket));
    let k = client.get_keyboard();
    client.roundtrip();
    let keymap = &client.seen.keymaps[k];
    let text = keymap.text();
    let compiled = keymap.compile();
    println!("format={}", keymap.format);
    println!("size={}", keymap.size);
    println!("text_len={}", text.len());
    println!("starts={}", text.starts_with("xkb_keymap"));
    println!("layout={}", compiled.layout_get_name(0));
    println!("seat={}", client.seen.seat_name.clone().unwrap_or_default());
    println!("repeat={:?}", client.seen.repeats);
    println!("syncs={}", client.seen.syncs_done);
}
