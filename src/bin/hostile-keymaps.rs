//! A hostile client for the end-to-end tests (`tests/testsuite/hostile/costs.rs`),
//! run as another user: round after round, it connects, asks for a
//! thousand keymaps without reading one, and keeps the socket open, so
//! that every fd the server sent stays in flight (charged by the kernel to
//! the server's user). It prints `ready` after the last round and exits
//! when its stdin closes.
//!
//! Usage: `hostile-keymaps SOCKET ROUNDS`
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn word(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

fn message(sender: u32, opcode: u16, args: &[&[u8]]) -> Vec<u8> {
    let body = args.concat();
    let size = 8 + body.len() as u32;
    [
        &word(sender)[..],
        &word((size << 16) | u32::from(opcode)),
        &body,
    ]
    .concat()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(socket), Some(rounds)) = (args.next(), args.next()) else {
        eprintln!("usage: hostile-keymaps SOCKET ROUNDS");
        std::process::exit(2);
    };
    let rounds: usize = rounds.parse().expect("ROUNDS is a number");
    let seat = b"wl_seat\0";
    let mut bytes = message(1, 1, &[&word(2)]); // get_registry -> 2
    bytes.extend(message(
        2,
        0,
        &[&word(1), &word(8), seat, &word(7), &word(3)],
    ));
    for _ in 0..1000 {
        bytes.extend(message(3, 1, &[&word(4)])); // get_keyboard(4)
        bytes.extend(message(4, 0, &[])); // release
    }
    let mut kept = Vec::new();
    for _ in 0..rounds {
        let Ok(mut stream) = UnixStream::connect(&socket) else {
            break;
        };
        // The server stops reading once it cuts us off: a partial write is
        // enough.
        stream
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = stream.write_all(&bytes);
        std::thread::sleep(Duration::from_millis(100));
        kept.push(stream);
    }
    println!("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(kept);
}
