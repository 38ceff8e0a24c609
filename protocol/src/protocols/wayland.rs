//! The core Wayland interfaces waypass speaks, generated from upstream
//! `wayland.xml` (kept verbatim as `protocol/wayland.xml`).
//!
//! What it is: `wl_display`, `wl_registry`, `wl_callback`, `wl_seat`,
//! `wl_keyboard`, `wl_pointer` and `wl_touch`, each with every request,
//! event and enum of the newest upstream version, documented from the XML.
//! What it is not: the rest of the core protocol. Objects of interfaces not
//! generated here (`wl_surface`, ...) appear in arguments with
//! `interface: None`.
//!
//! # Implementation notes
//!
//! The tables come from [`waypass_scanner::interfaces!`] at compile time;
//! nothing here is written by hand. Upstream is at version 11 for the seat
//! family (wayland 1.25 added `wl_pointer.warp`); the tables follow it, and
//! a peer that binds a lower version simply never sees the newer messages.

waypass_scanner::interfaces!(
    "wayland.xml",
    only = [
        wl_display,
        wl_registry,
        wl_callback,
        wl_seat,
        wl_pointer,
        wl_keyboard,
        wl_touch
    ]
);

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
