//! The waypass broker extension, from protocol/waypass-broker-v1.xml (skeleton).
#![allow(missing_docs)]

use crate::interface::Interface;

pub mod waypass_broker_v1 {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "waypass_broker_v1",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const DESTROY: u16 = 0;
        pub const REGISTER: u16 = 1;
        pub const CONNECT: u16 = 2;
    }
    pub mod failure {
        pub const INVALID_NAME: u32 = 0;
        pub const NAME_TAKEN: u32 = 1;
        pub const TOO_MANY_NAMES: u32 = 2;
        pub const UNKNOWN_NAME: u32 = 3;
        pub const SELF_CONNECT: u32 = 4;
        pub const TOO_MANY_PENDING: u32 = 5;
    }
}
pub mod waypass_name_v1 {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "waypass_name_v1",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const WITHDRAW: u16 = 0;
    }
    pub mod evt {
        pub const REGISTERED: u16 = 0;
        pub const FAILED: u16 = 1;
        pub const PEER: u16 = 2;
    }
}
pub mod waypass_connection_v1 {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "waypass_connection_v1",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const DESTROY: u16 = 0;
    }
    pub mod evt {
        pub const ESTABLISHED: u16 = 0;
        pub const FAILED: u16 = 1;
    }
}
pub mod waypass_peer_v1 {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "waypass_peer_v1",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const TEXT: u16 = 0;
        pub const FILE: u16 = 1;
        pub const ACK: u16 = 2;
    }
}
