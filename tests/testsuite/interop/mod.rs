//! Real third-party peers: sway, Weston and `wayland-info` (libwayland)
//! against our binaries.

mod sway_clipboard;
mod wayland_info;
mod weston;
