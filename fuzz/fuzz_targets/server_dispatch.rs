//! Fuzz target: the server's dispatch of one client's whole request stream.
//!
//! The input's first byte says how many fds ride along (0 to 7, copies of
//! `/dev/null`); the rest is the stream, fed through
//! `waypass_server::fuzzing::dispatch_stream`, the real receive, decode and
//! dispatch code without the event loop. What must hold: nothing panics;
//! what the server sent splits into whole messages; a client disconnected
//! for a protocol error got `wl_display.error` as the last message.
#![no_main]

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "check.rs"]
mod check;
use check::check;
use waypass_server::fuzzing::dispatch_stream;

fn spare() -> &'static File {
    static SPARE: OnceLock<File> = OnceLock::new();
    SPARE.get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let fds = (0..first & 7)
        .map(|_| spare().as_fd().try_clone_to_owned().expect("dup"))
        .collect();
    let outcome = dispatch_stream(bytes, fds).expect("harness");
    check(&outcome);
});
