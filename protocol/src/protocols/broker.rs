//! The waypass broker extension, transcribed from
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
//! them to object id 1 and decode what arrives with the same request table.
//! The drift test `protocol/tests/xml_tables.rs` compares these tables with
//! the XML.

use crate::interface::{arg, destructor, msg, nullable, obj, ArgKind::*, Interface};

/// `waypass_broker_v1`: the broker global.
pub mod waypass_broker_v1 {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "waypass_broker_v1",
        version: 1,
        requests: &[
            destructor("destroy", 1, &[]),
            msg(
                "register",
                1,
                &[
                    obj("id", NewId, &super::waypass_name_v1::INTERFACE),
                    arg("name", String),
                ],
            ),
            msg(
                "connect",
                1,
                &[
                    obj("id", NewId, &super::waypass_connection_v1::INTERFACE),
                    arg("name", String),
                ],
            ),
        ],
        events: &[],
    };
    /// Request opcodes.
    pub mod req {
        /// `destroy()`, a destructor.
        pub const DESTROY: u16 = 0;
        /// `register(id: new_id<waypass_name_v1>, name: string)`.
        pub const REGISTER: u16 = 1;
        /// `connect(id: new_id<waypass_connection_v1>, name: string)`.
        pub const CONNECT: u16 = 2;
    }
    /// Enum `waypass_broker_v1.failure`: why `register` or `connect` failed.
    pub mod failure {
        /// The name is not 1 to 64 bytes of `[A-Za-z0-9._-]`.
        pub const INVALID_NAME: u32 = 0;
        /// Another live name object owns the name.
        pub const NAME_TAKEN: u32 = 1;
        /// The client owns as many names as the server allows.
        pub const TOO_MANY_NAMES: u32 = 2;
        /// No client owns the name.
        pub const UNKNOWN_NAME: u32 = 3;
        /// The requesting client owns the name itself.
        pub const SELF_CONNECT: u32 = 4;
        /// The client holds as many live connection objects as allowed.
        pub const TOO_MANY_PENDING: u32 = 5;
        /// The owner has not read as many channels as the server queues
        /// for one owner.
        pub const BUSY: u32 = 6;
    }
}

/// `waypass_name_v1`: a name owned by this client.
pub mod waypass_name_v1 {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "waypass_name_v1",
        version: 1,
        requests: &[destructor("withdraw", 1, &[])],
        events: &[
            msg("registered", 1, &[]),
            msg("failed", 1, &[arg("reason", Uint)]),
            msg(
                "peer",
                1,
                &[
                    arg("fd", Fd),
                    nullable(arg("peer_name", String)),
                    arg("pid", Int),
                    arg("uid", Uint),
                    arg("gid", Uint),
                ],
            ),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `withdraw()`, a destructor: releases the name.
        pub const WITHDRAW: u16 = 0;
    }
    /// Event opcodes.
    pub mod evt {
        /// `registered()`.
        pub const REGISTERED: u16 = 0;
        /// `failed(reason: uint)`, a `waypass_broker_v1.failure`.
        pub const FAILED: u16 = 1;
        /// `peer(fd: fd, peer_name: string?, pid: int, uid: uint, gid: uint)`.
        pub const PEER: u16 = 2;
    }
}

/// `waypass_connection_v1`: a requested channel to a name's owner.
pub mod waypass_connection_v1 {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "waypass_connection_v1",
        version: 1,
        requests: &[destructor("destroy", 1, &[])],
        events: &[
            msg(
                "established",
                1,
                &[
                    arg("fd", Fd),
                    arg("peer_name", String),
                    arg("pid", Int),
                    arg("uid", Uint),
                    arg("gid", Uint),
                ],
            ),
            msg("failed", 1, &[arg("reason", Uint)]),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `destroy()`, a destructor.
        pub const DESTROY: u16 = 0;
    }
    /// Event opcodes.
    pub mod evt {
        /// `established(fd: fd, peer_name: string, pid: int, uid: uint, gid: uint)`.
        pub const ESTABLISHED: u16 = 0;
        /// `failed(reason: uint)`, a `waypass_broker_v1.failure`.
        pub const FAILED: u16 = 1;
    }
}

/// `waypass_peer_v1`: spoken on a brokered socket, by both ends, to id 1.
pub mod waypass_peer_v1 {
    use super::*;
    /// The interface description (requests only: the protocol is symmetric).
    pub static INTERFACE: Interface = Interface {
        name: "waypass_peer_v1",
        version: 1,
        requests: &[
            msg("text", 1, &[arg("serial", Uint), arg("text", String)]),
            msg(
                "file",
                1,
                &[
                    arg("serial", Uint),
                    arg("fd", Fd),
                    arg("name", String),
                    arg("size_hi", Uint),
                    arg("size_lo", Uint),
                ],
            ),
            msg("ack", 1, &[arg("serial", Uint)]),
        ],
        events: &[],
    };
    /// The object id both ends send to and receive on.
    pub const OBJECT_ID: u32 = 1;
    /// Request opcodes.
    pub mod req {
        /// `text(serial: uint, text: string)`.
        pub const TEXT: u16 = 0;
        /// `file(serial: uint, fd: fd, name: string, size_hi: uint, size_lo: uint)`.
        pub const FILE: u16 = 1;
        /// `ack(serial: uint)`.
        pub const ACK: u16 = 2;
    }
}

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
        opcodes!(waypass_peer_v1, req: [TEXT, FILE, ACK], evt: []);
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
