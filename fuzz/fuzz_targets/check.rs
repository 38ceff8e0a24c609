//! What every server target checks of what the server sent one client:
//! whole, well-formed messages, and `wl_display.error` last when the
//! client was disconnected for a protocol error. Included by the
//! `server_dispatch` and `server_clients` targets.

use waypass_protocol::wire;
use waypass_server::fuzzing::Outcome;

/// Panics if `outcome` breaks what the server promises its clients.
pub fn check(outcome: &Outcome) {
    let mut rest = &outcome.sent[..];
    let mut last = None;
    while !rest.is_empty() {
        let (h, _) = wire::split_message(rest)
            .expect("the server sends well-formed messages")
            .expect("the server sends whole messages");
        last = Some((h.sender, h.opcode));
        rest = &rest[usize::from(h.size)..];
    }
    if outcome.protocol_error().is_some() {
        assert_eq!(last, Some((1, 0)), "wl_display.error comes last");
    }
}
