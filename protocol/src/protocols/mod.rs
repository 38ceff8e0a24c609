//! Interface tables: Wayland's core interfaces and waypass's own extension.
//!
//! Each interface is a module holding `INTERFACE` plus `req`, `evt` and
//! enum constants, so that code names opcodes instead of numbers.

pub mod broker;
pub mod wayland;
