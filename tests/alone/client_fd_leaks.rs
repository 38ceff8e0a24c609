//! The client library closes every fd it receives or opens: fetching
//! keymaps from the real `waypass-server` many times, and dropping a
//! watcher, leaves this process's fd count where it was.
//!
//! It runs alone ([`crate::alone`]), so no other test opens fds while it
//! counts `/proc/self/fd`.

use std::time::Duration;

use waypass_client::{fetch_keymap, FetchOptions, KeymapWatcher};
use waypass_test_support::{fd_count, Server};

#[test]
fn fetching_and_watching_leak_no_fds() {
    let _alone = crate::alone();
    let server = Server::start(&["--layout", "us"]);
    let socket = server.socket_arg().to_string();
    let me = std::process::id() as i32;
    // Warm up once: lazily opened files (e.g. by xkbcommon) stay open.
    fetch_keymap(Some(&socket), FetchOptions::default()).expect("fetch");
    let before = fd_count(me);
    for _ in 0..10 {
        let keymap = fetch_keymap(Some(&socket), FetchOptions::default()).expect("fetch");
        assert_eq!(keymap.layouts(), ["English (US)"]);
    }
    let mut watcher =
        KeymapWatcher::connect(Some(&socket), FetchOptions::default()).expect("watch");
    let first = watcher
        .next_keymap(Some(Duration::from_secs(30)))
        .expect("keymap")
        .expect("server up");
    assert_eq!(first.layouts(), ["English (US)"]);
    drop(watcher);
    assert_eq!(fd_count(me), before);
}
