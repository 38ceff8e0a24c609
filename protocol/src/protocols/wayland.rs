//! Core Wayland interfaces from wayland.xml (skeleton).
#![allow(missing_docs)]

use crate::interface::Interface;

pub mod wl_display {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_display",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const SYNC: u16 = 0;
        pub const GET_REGISTRY: u16 = 1;
    }
    pub mod evt {
        pub const ERROR: u16 = 0;
        pub const DELETE_ID: u16 = 1;
    }
    pub mod error {
        pub const INVALID_OBJECT: u32 = 0;
        pub const INVALID_METHOD: u32 = 1;
        pub const NO_MEMORY: u32 = 2;
        pub const IMPLEMENTATION: u32 = 3;
    }
}
pub mod wl_registry {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_registry",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const BIND: u16 = 0;
    }
    pub mod evt {
        pub const GLOBAL: u16 = 0;
        pub const GLOBAL_REMOVE: u16 = 1;
    }
}
pub mod wl_callback {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_callback",
        version: 1,
        requests: &[],
        events: &[],
    };
    pub mod evt {
        pub const DONE: u16 = 0;
    }
}
pub mod wl_seat {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_seat",
        version: 10,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const GET_POINTER: u16 = 0;
        pub const GET_KEYBOARD: u16 = 1;
        pub const GET_TOUCH: u16 = 2;
        pub const RELEASE: u16 = 3;
    }
    pub mod evt {
        pub const CAPABILITIES: u16 = 0;
        pub const NAME: u16 = 1;
    }
    pub mod capability {
        pub const POINTER: u32 = 1;
        pub const KEYBOARD: u32 = 2;
        pub const TOUCH: u32 = 4;
    }
    pub mod error {
        pub const MISSING_CAPABILITY: u32 = 0;
    }
}
pub mod wl_keyboard {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_keyboard",
        version: 10,
        requests: &[],
        events: &[],
    };
    pub mod req {
        pub const RELEASE: u16 = 0;
    }
    pub mod evt {
        pub const KEYMAP: u16 = 0;
        pub const ENTER: u16 = 1;
        pub const LEAVE: u16 = 2;
        pub const KEY: u16 = 3;
        pub const MODIFIERS: u16 = 4;
        pub const REPEAT_INFO: u16 = 5;
    }
    pub mod keymap_format {
        pub const NO_KEYMAP: u32 = 0;
        pub const XKB_V1: u32 = 1;
    }
}
pub mod wl_pointer {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_pointer",
        version: 10,
        requests: &[],
        events: &[],
    };
}
pub mod wl_touch {
    use super::*;
    pub static INTERFACE: Interface = Interface {
        name: "wl_touch",
        version: 10,
        requests: &[],
        events: &[],
    };
}
