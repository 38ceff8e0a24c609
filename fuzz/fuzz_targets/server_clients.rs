//! Fuzz target: several clients of one server at once, so that what one
//! client does to the others (a brokered channel, a selection announced to
//! every device, a paste's fd forwarded to the copier, a client leaving) is
//! fuzzed too.
//!
//! The input is a script for `waypass_server::fuzzing::dispatch_clients`:
//! steps of `[op, len, bytes...]`, where `op` names one of 4 clients, how
//! many fds (copies of `/dev/null`) ride along, or a hang-up. What must
//! hold: nothing panics; what the server sent each client splits into
//! whole messages; a client disconnected for a protocol error got
//! `wl_display.error` as the last message.
#![no_main]

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "check.rs"]
mod check;
use check::check;
use waypass_server::fuzzing::dispatch_clients;

fn spare() -> &'static File {
    static SPARE: OnceLock<File> = OnceLock::new();
    SPARE.get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
}

fuzz_target!(|data: &[u8]| {
    let outcomes = dispatch_clients(data, spare().as_fd()).expect("harness");
    for (_, outcome) in outcomes {
        check(&outcome);
    }
});
