//! The client library and the `waypass-client` keymap commands against our
//! server, wayland-rs servers and fake globals.

mod deadline;
mod event_loop;
mod examples;
mod keymap;
mod messages;
mod watch;
mod wlrs;
