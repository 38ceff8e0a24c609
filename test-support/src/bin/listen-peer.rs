//! A peer of `waypass-client listen` in a process of its own, for the
//! `listen` end-to-end tests that need one: as another user (run through
//! `setpriv`), or as one of many processes.
//!
//! Usage:
//! - `listen-peer say SOCKET NAME TEXT`: sends TEXT to NAME (`bob@UID`)
//!   and prints `ANSWER <how it was answered>`.
//! - `listen-peer flood SOCKET N`: opens up to N channels to bob, each
//!   with a text carrying 28 fds, prints `READY`, and holds them until its
//!   stdin closes.
//!
//! What it is not: a client anyone should use; it panics on what a test
//! would call a failure.
#![forbid(unsafe_code)]

use std::io::Read;

use waypass_test_support::listen_peer::{flood, peer_of_name, say};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["say", socket, name, text] => {
            let (_broker, mut peer) = peer_of_name(socket, name);
            println!("ANSWER {:?}", say(&mut peer.channel, text));
        }
        ["flood", socket, n] => {
            let n = n.parse().expect("a count of channels");
            let (_broker, _peers) = flood(socket, n);
            println!("READY");
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        _ => {
            eprintln!("usage: listen-peer say SOCKET NAME TEXT | flood SOCKET N");
            std::process::exit(2);
        }
    }
}
