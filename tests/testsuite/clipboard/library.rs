//! `waypass_client::Clipboard` used as a library, against waypass-server:
//! a copier that copies again replaces its own selection without an empty
//! one in between, and its regular and primary selections are its own two.

use std::io::Read;
use std::thread;
use std::time::Duration;

use waypass_client::{Clipboard, Selection, Served};
use waypass_test_support::Server;

#[test]
fn copying_again_never_shows_pasters_an_empty_selection() {
    let server = Server::start(&[]);
    let socket = server.socket_arg();
    let mut copier = Clipboard::connect(Some(socket)).unwrap();
    let mut watcher = Clipboard::connect(Some(socket)).unwrap();
    for round in 0..5 {
        copier.copy(Selection::Regular, &["text/plain"]).unwrap();
        assert!(watcher
            .wait_for_change(Selection::Regular, Some(Duration::from_secs(10)))
            .unwrap());
        // Every change the watcher sees is a selection, never an empty one.
        assert!(watcher.types(Selection::Regular).is_some(), "round {round}");
    }
    // 1 change at connect (empty), then exactly one per copy.
    thread::sleep(Duration::from_millis(100));
    watcher
        .wait_for_change(Selection::Regular, Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(watcher.changes(Selection::Regular), 1 + 5);
}

#[test]
fn the_primary_and_regular_selections_of_one_copier_are_two() {
    let server = Server::start(&[]);
    let socket = server.socket_arg();
    let mut copier = Clipboard::connect(Some(socket)).unwrap();
    copier.copy(Selection::Regular, &["text/plain"]).unwrap();
    copier.copy(Selection::Primary, &["text/plain"]).unwrap();
    let mut paster = Clipboard::connect(Some(socket)).unwrap();
    assert!(
        paster.types(Selection::Regular).is_some(),
        "primary cleared regular"
    );
    assert!(paster.types(Selection::Primary).is_some());
    // Serve one paste of each, then stop serving.
    let mut regular = paster.paste(Selection::Regular, "text/plain").unwrap();
    let mut primary = paster.paste(Selection::Primary, "text/plain").unwrap();
    let served = copier
        .serve(Some(Duration::from_millis(300)), |_, pipe| {
            use std::io::Write;
            pipe.write_all(b"data")
        })
        .unwrap();
    assert_eq!(served, Served::TimedOut);
    let mut got = String::new();
    regular.read_to_string(&mut got).unwrap();
    primary.read_to_string(&mut got).unwrap();
    assert_eq!(got, "datadata");
}
