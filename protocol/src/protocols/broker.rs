//! The waypass broker extension, generated from
//! `protocol/waypass-broker-v1.xml`.
//!
//! What it is: the tables and constants of `waypass_broker_v1` (the global
//! that registers names and connects to them), `waypass_name_v1`,
//! `waypass_connection_v1`, and `waypass_peer_v1`, the symmetric protocol
//! two clients speak on a brokered socketpair. What it is not: the broker
//! itself (the server implements it) or any name rule check (the XML
//! describes the rule; the server enforces it).
//!
//! # Implementation notes
//!
//! `waypass_peer_v1` has requests only: both ends of a brokered socket send
//! them to object id [`PEER_OBJECT_ID`] and decode what arrives with the
//! same request table.

waypass_scanner::interfaces!("waypass-broker-v1.xml");

/// The object id both ends of a brokered socket send `waypass_peer_v1`
/// requests to and receive them on (there is no `wl_display` there, and
/// no object is ever created).
pub const PEER_OBJECT_ID: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::tests::opcodes;

    #[rustfmt::skip]
    #[test]
    fn every_opcode_constant_is_its_message_position() {
        opcodes!(waypass_broker_v1, req: [DESTROY, REGISTER, CONNECT], evt: []);
        opcodes!(waypass_name_v1, req: [WITHDRAW], evt: [REGISTERED, FAILED, PEER]);
        opcodes!(waypass_connection_v1, req: [DESTROY], evt: [ESTABLISHED, FAILED]);
        opcodes!(waypass_peer_v1, req: [TEXT, FILE, ACK, REFUSE, PROGRESS], evt: []);
    }

    #[test]
    fn fd_events_carry_one_fd_and_name_the_right_interfaces() {
        let peer = &waypass_name_v1::INTERFACE.events[waypass_name_v1::evt::PEER as usize];
        assert_eq!(peer.fd_count(), 1);
        assert!(peer.args[1].nullable);
        let est = &waypass_connection_v1::INTERFACE.events
            [waypass_connection_v1::evt::ESTABLISHED as usize];
        assert_eq!(est.fd_count(), 1);
        assert!(!est.args[1].nullable);
        let register =
            &waypass_broker_v1::INTERFACE.requests[waypass_broker_v1::req::REGISTER as usize];
        assert_eq!(
            register.args[0].interface,
            Some(&waypass_name_v1::INTERFACE)
        );
    }
}
