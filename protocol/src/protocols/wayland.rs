//! The core Wayland interfaces waypass speaks, transcribed from upstream
//! `wayland.xml` (kept verbatim as `protocol/wayland.xml`).
//!
//! What it is: `wl_display`, `wl_registry`, `wl_callback`, `wl_seat`,
//! `wl_keyboard`, `wl_pointer` and `wl_touch`, each with every request and
//! event of the newest upstream version, plus opcode and enum constants.
//! What it is not: the rest of the core protocol. Objects of interfaces not
//! described here (`wl_surface`, ...) appear in arguments with
//! `interface: None`.
//!
//! # Implementation notes
//!
//! The tables are written by hand with the shorthands of
//! [`crate::interface`]; `protocol/tests/xml_tables.rs` compares them with
//! the XML so that a transcription slip fails a test. Upstream is at version
//! 11 for the seat family (wayland 1.25 added `wl_pointer.warp`); the tables
//! follow it, and a peer that binds a lower version simply never sees the
//! newer messages.

use crate::interface::{arg, destructor, msg, nullable, obj, ArgKind::*, Interface};

/// `wl_display`: the core singleton, object id 1.
pub mod wl_display {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_display",
        version: 1,
        requests: &[
            msg(
                "sync",
                1,
                &[obj("callback", NewId, &super::wl_callback::INTERFACE)],
            ),
            msg(
                "get_registry",
                1,
                &[obj("registry", NewId, &super::wl_registry::INTERFACE)],
            ),
        ],
        events: &[
            msg(
                "error",
                1,
                &[
                    arg("object_id", Object),
                    arg("code", Uint),
                    arg("message", String),
                ],
            ),
            msg("delete_id", 1, &[arg("id", Uint)]),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `sync(callback: new_id<wl_callback>)`.
        pub const SYNC: u16 = 0;
        /// `get_registry(registry: new_id<wl_registry>)`.
        pub const GET_REGISTRY: u16 = 1;
    }
    /// Event opcodes.
    pub mod evt {
        /// `error(object_id: object, code: uint, message: string)`.
        pub const ERROR: u16 = 0;
        /// `delete_id(id: uint)`.
        pub const DELETE_ID: u16 = 1;
    }
    /// Enum `wl_display.error`: codes of `wl_display.error`.
    pub mod error {
        /// The server couldn't find the object.
        pub const INVALID_OBJECT: u32 = 0;
        /// The method doesn't exist on the interface, or the request is malformed.
        pub const INVALID_METHOD: u32 = 1;
        /// The server is out of memory.
        pub const NO_MEMORY: u32 = 2;
        /// Implementation error in the compositor.
        pub const IMPLEMENTATION: u32 = 3;
    }
}

/// `wl_registry`: lists globals and binds them.
pub mod wl_registry {
    use super::*;
    /// The interface description. `bind`'s untyped `new_id` is spelled out
    /// as `interface`, `version`, `id`, as it travels on the wire.
    pub static INTERFACE: Interface = Interface {
        name: "wl_registry",
        version: 1,
        requests: &[msg(
            "bind",
            1,
            &[
                arg("name", Uint),
                arg("interface", String),
                arg("version", Uint),
                arg("id", NewId),
            ],
        )],
        events: &[
            msg(
                "global",
                1,
                &[
                    arg("name", Uint),
                    arg("interface", String),
                    arg("version", Uint),
                ],
            ),
            msg("global_remove", 1, &[arg("name", Uint)]),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `bind(name: uint, interface: string, version: uint, id: new_id)`.
        pub const BIND: u16 = 0;
    }
    /// Event opcodes.
    pub mod evt {
        /// `global(name: uint, interface: string, version: uint)`.
        pub const GLOBAL: u16 = 0;
        /// `global_remove(name: uint)`.
        pub const GLOBAL_REMOVE: u16 = 1;
    }
}

/// `wl_callback`: a one-shot completion notification.
pub mod wl_callback {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_callback",
        version: 1,
        requests: &[],
        events: &[destructor("done", 1, &[arg("callback_data", Uint)])],
    };
    /// Event opcodes.
    pub mod evt {
        /// `done(callback_data: uint)`, a destructor.
        pub const DONE: u16 = 0;
    }
}

/// `wl_seat`: a group of input devices.
pub mod wl_seat {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_seat",
        version: 11,
        requests: &[
            msg(
                "get_pointer",
                1,
                &[obj("id", NewId, &super::wl_pointer::INTERFACE)],
            ),
            msg(
                "get_keyboard",
                1,
                &[obj("id", NewId, &super::wl_keyboard::INTERFACE)],
            ),
            msg(
                "get_touch",
                1,
                &[obj("id", NewId, &super::wl_touch::INTERFACE)],
            ),
            destructor("release", 5, &[]),
        ],
        events: &[
            msg("capabilities", 1, &[arg("capabilities", Uint)]),
            msg("name", 2, &[arg("name", String)]),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `get_pointer(id: new_id<wl_pointer>)`.
        pub const GET_POINTER: u16 = 0;
        /// `get_keyboard(id: new_id<wl_keyboard>)`.
        pub const GET_KEYBOARD: u16 = 1;
        /// `get_touch(id: new_id<wl_touch>)`.
        pub const GET_TOUCH: u16 = 2;
        /// `release()`, a destructor (since 5).
        pub const RELEASE: u16 = 3;
    }
    /// Event opcodes.
    pub mod evt {
        /// `capabilities(capabilities: uint)`, a [`super::capability`] bitfield.
        pub const CAPABILITIES: u16 = 0;
        /// `name(name: string)` (since 2).
        pub const NAME: u16 = 1;
    }
    /// Bitfield `wl_seat.capability`.
    pub mod capability {
        /// The seat has pointer devices.
        pub const POINTER: u32 = 1;
        /// The seat has one or more keyboards.
        pub const KEYBOARD: u32 = 2;
        /// The seat has touch devices.
        pub const TOUCH: u32 = 4;
    }
    /// Enum `wl_seat.error`.
    pub mod error {
        /// `get_pointer`, `get_keyboard` or `get_touch` without that capability.
        pub const MISSING_CAPABILITY: u32 = 0;
    }
}

/// `wl_keyboard`: keymap, focus and key events.
pub mod wl_keyboard {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_keyboard",
        version: 11,
        requests: &[destructor("release", 3, &[])],
        events: &[
            msg(
                "keymap",
                1,
                &[arg("format", Uint), arg("fd", Fd), arg("size", Uint)],
            ),
            msg(
                "enter",
                1,
                &[
                    arg("serial", Uint),
                    arg("surface", Object),
                    arg("keys", Array),
                ],
            ),
            msg("leave", 1, &[arg("serial", Uint), arg("surface", Object)]),
            msg(
                "key",
                1,
                &[
                    arg("serial", Uint),
                    arg("time", Uint),
                    arg("key", Uint),
                    arg("state", Uint),
                ],
            ),
            msg(
                "modifiers",
                1,
                &[
                    arg("serial", Uint),
                    arg("mods_depressed", Uint),
                    arg("mods_latched", Uint),
                    arg("mods_locked", Uint),
                    arg("group", Uint),
                ],
            ),
            msg("repeat_info", 4, &[arg("rate", Int), arg("delay", Int)]),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `release()`, a destructor (since 3).
        pub const RELEASE: u16 = 0;
    }
    /// Event opcodes.
    pub mod evt {
        /// `keymap(format: uint, fd: fd, size: uint)`.
        pub const KEYMAP: u16 = 0;
        /// `enter(serial: uint, surface: object, keys: array)`.
        pub const ENTER: u16 = 1;
        /// `leave(serial: uint, surface: object)`.
        pub const LEAVE: u16 = 2;
        /// `key(serial: uint, time: uint, key: uint, state: uint)`.
        pub const KEY: u16 = 3;
        /// `modifiers(serial, mods_depressed, mods_latched, mods_locked, group)`.
        pub const MODIFIERS: u16 = 4;
        /// `repeat_info(rate: int, delay: int)` (since 4).
        pub const REPEAT_INFO: u16 = 5;
    }
    /// Enum `wl_keyboard.keymap_format`.
    pub mod keymap_format {
        /// No keymap; the client must understand how to interpret the raw keycode.
        pub const NO_KEYMAP: u32 = 0;
        /// A libxkbcommon-compatible, NUL-terminated keymap string.
        pub const XKB_V1: u32 = 1;
    }
    /// Enum `wl_keyboard.key_state`.
    pub mod key_state {
        /// The key is not pressed.
        pub const RELEASED: u32 = 0;
        /// The key is pressed.
        pub const PRESSED: u32 = 1;
        /// The key was repeated (since 10).
        pub const REPEATED: u32 = 2;
    }
}

/// `wl_pointer`: pointer focus, motion, buttons and axes.
pub mod wl_pointer {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_pointer",
        version: 11,
        requests: &[
            msg(
                "set_cursor",
                1,
                &[
                    arg("serial", Uint),
                    nullable(arg("surface", Object)),
                    arg("hotspot_x", Int),
                    arg("hotspot_y", Int),
                ],
            ),
            destructor("release", 3, &[]),
        ],
        events: &[
            msg(
                "enter",
                1,
                &[
                    arg("serial", Uint),
                    arg("surface", Object),
                    arg("surface_x", Fixed),
                    arg("surface_y", Fixed),
                ],
            ),
            msg("leave", 1, &[arg("serial", Uint), arg("surface", Object)]),
            msg(
                "motion",
                1,
                &[
                    arg("time", Uint),
                    arg("surface_x", Fixed),
                    arg("surface_y", Fixed),
                ],
            ),
            msg(
                "button",
                1,
                &[
                    arg("serial", Uint),
                    arg("time", Uint),
                    arg("button", Uint),
                    arg("state", Uint),
                ],
            ),
            msg(
                "axis",
                1,
                &[arg("time", Uint), arg("axis", Uint), arg("value", Fixed)],
            ),
            msg("frame", 5, &[]),
            msg("axis_source", 5, &[arg("axis_source", Uint)]),
            msg("axis_stop", 5, &[arg("time", Uint), arg("axis", Uint)]),
            msg(
                "axis_discrete",
                5,
                &[arg("axis", Uint), arg("discrete", Int)],
            ),
            msg(
                "axis_value120",
                8,
                &[arg("axis", Uint), arg("value120", Int)],
            ),
            msg(
                "axis_relative_direction",
                9,
                &[arg("axis", Uint), arg("direction", Uint)],
            ),
            msg(
                "warp",
                11,
                &[arg("surface_x", Fixed), arg("surface_y", Fixed)],
            ),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `set_cursor(serial: uint, surface: object?, hotspot_x: int, hotspot_y: int)`.
        pub const SET_CURSOR: u16 = 0;
        /// `release()`, a destructor (since 3).
        pub const RELEASE: u16 = 1;
    }
    /// Event opcodes.
    pub mod evt {
        /// `enter(serial: uint, surface: object, surface_x: fixed, surface_y: fixed)`.
        pub const ENTER: u16 = 0;
        /// `leave(serial: uint, surface: object)`.
        pub const LEAVE: u16 = 1;
        /// `motion(time: uint, surface_x: fixed, surface_y: fixed)`.
        pub const MOTION: u16 = 2;
        /// `button(serial: uint, time: uint, button: uint, state: uint)`.
        pub const BUTTON: u16 = 3;
        /// `axis(time: uint, axis: uint, value: fixed)`.
        pub const AXIS: u16 = 4;
        /// `frame()` (since 5).
        pub const FRAME: u16 = 5;
        /// `axis_source(axis_source: uint)` (since 5).
        pub const AXIS_SOURCE: u16 = 6;
        /// `axis_stop(time: uint, axis: uint)` (since 5).
        pub const AXIS_STOP: u16 = 7;
        /// `axis_discrete(axis: uint, discrete: int)` (since 5, deprecated since 8).
        pub const AXIS_DISCRETE: u16 = 8;
        /// `axis_value120(axis: uint, value120: int)` (since 8).
        pub const AXIS_VALUE120: u16 = 9;
        /// `axis_relative_direction(axis: uint, direction: uint)` (since 9).
        pub const AXIS_RELATIVE_DIRECTION: u16 = 10;
        /// `warp(surface_x: fixed, surface_y: fixed)` (since 11).
        pub const WARP: u16 = 11;
    }
    /// Enum `wl_pointer.error`.
    pub mod error {
        /// The given `wl_surface` has another role.
        pub const ROLE: u32 = 0;
    }
    /// Enum `wl_pointer.button_state`.
    pub mod button_state {
        /// The button is not pressed.
        pub const RELEASED: u32 = 0;
        /// The button is pressed.
        pub const PRESSED: u32 = 1;
    }
    /// Enum `wl_pointer.axis`.
    pub mod axis {
        /// Vertical axis.
        pub const VERTICAL_SCROLL: u32 = 0;
        /// Horizontal axis.
        pub const HORIZONTAL_SCROLL: u32 = 1;
    }
}

/// `wl_touch`: touch points.
pub mod wl_touch {
    use super::*;
    /// The interface description.
    pub static INTERFACE: Interface = Interface {
        name: "wl_touch",
        version: 11,
        requests: &[destructor("release", 3, &[])],
        events: &[
            msg(
                "down",
                1,
                &[
                    arg("serial", Uint),
                    arg("time", Uint),
                    arg("surface", Object),
                    arg("id", Int),
                    arg("x", Fixed),
                    arg("y", Fixed),
                ],
            ),
            msg(
                "up",
                1,
                &[arg("serial", Uint), arg("time", Uint), arg("id", Int)],
            ),
            msg(
                "motion",
                1,
                &[
                    arg("time", Uint),
                    arg("id", Int),
                    arg("x", Fixed),
                    arg("y", Fixed),
                ],
            ),
            msg("frame", 1, &[]),
            msg("cancel", 1, &[]),
            msg(
                "shape",
                6,
                &[arg("id", Int), arg("major", Fixed), arg("minor", Fixed)],
            ),
            msg(
                "orientation",
                6,
                &[arg("id", Int), arg("orientation", Fixed)],
            ),
        ],
    };
    /// Request opcodes.
    pub mod req {
        /// `release()`, a destructor (since 3).
        pub const RELEASE: u16 = 0;
    }
    /// Event opcodes.
    pub mod evt {
        /// `down(serial: uint, time: uint, surface: object, id: int, x: fixed, y: fixed)`.
        pub const DOWN: u16 = 0;
        /// `up(serial: uint, time: uint, id: int)`.
        pub const UP: u16 = 1;
        /// `motion(time: uint, id: int, x: fixed, y: fixed)`.
        pub const MOTION: u16 = 2;
        /// `frame()`.
        pub const FRAME: u16 = 3;
        /// `cancel()`.
        pub const CANCEL: u16 = 4;
        /// `shape(id: int, major: fixed, minor: fixed)` (since 6).
        pub const SHAPE: u16 = 5;
        /// `orientation(id: int, orientation: fixed)` (since 6).
        pub const ORIENTATION: u16 = 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::tests::opcodes;

    #[rustfmt::skip]
    #[test]
    fn every_opcode_constant_is_its_message_position() {
        opcodes!(wl_display, req: [SYNC, GET_REGISTRY], evt: [ERROR, DELETE_ID]);
        opcodes!(wl_registry, req: [BIND], evt: [GLOBAL, GLOBAL_REMOVE]);
        opcodes!(wl_callback, req: [], evt: [DONE]);
        opcodes!(wl_seat,
            req: [GET_POINTER, GET_KEYBOARD, GET_TOUCH, RELEASE],
            evt: [CAPABILITIES, NAME]);
        opcodes!(wl_keyboard,
            req: [RELEASE],
            evt: [KEYMAP, ENTER, LEAVE, KEY, MODIFIERS, REPEAT_INFO]);
        opcodes!(wl_pointer,
            req: [SET_CURSOR, RELEASE],
            evt: [ENTER, LEAVE, MOTION, BUTTON, AXIS, FRAME, AXIS_SOURCE, AXIS_STOP,
                  AXIS_DISCRETE, AXIS_VALUE120, AXIS_RELATIVE_DIRECTION, WARP]);
        opcodes!(wl_touch,
            req: [RELEASE],
            evt: [DOWN, UP, MOTION, FRAME, CANCEL, SHAPE, ORIENTATION]);
    }

    #[test]
    fn typed_ids_point_at_the_right_tables() {
        let sync = &wl_display::INTERFACE.requests[wl_display::req::SYNC as usize];
        assert_eq!(sync.args[0].interface.map(|i| i.name), Some("wl_callback"));
        let get_kb = &wl_seat::INTERFACE.requests[wl_seat::req::GET_KEYBOARD as usize];
        assert_eq!(get_kb.args[0].interface, Some(&wl_keyboard::INTERFACE));
        let keymap = &wl_keyboard::INTERFACE.events[wl_keyboard::evt::KEYMAP as usize];
        assert_eq!(keymap.fd_count(), 1);
    }
}
