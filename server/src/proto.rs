//! The protocol layer: the code that knows interfaces.
//!
//! What it is: [`ctx`] (what a handler works with, and how it says a client
//! must go), [`dispatch`] (decoding a client's buffered requests and
//! routing each to its handler), and one module per group of interfaces:
//! [`globals`] (`wl_registry`), [`seat`] (`wl_seat`, `wl_keyboard`),
//! [`broker`] (`waypass_broker_v1` and its objects), [`clipboard`] (the
//! data-control protocols), and [`extension`] (globals the program that
//! embeds the server adds, behind the public [`Global`](crate::Global)
//! trait).
//!
//! What it is not: I/O. Nothing here calls `recvmsg` or `sendmsg` or
//! touches calloop: handlers read a connection's already-received bytes and
//! queue replies on its outgoing half, or on another client's through
//! [`ctx::Ctx::with_other`]; [`crate::runtime`] flushes them. It imports only [`crate::state`], [`crate::config`] and
//! [`crate::keymap`] from this crate. Inside, the modules point one way
//! too: `dispatch` over the interface modules, over `ctx`.

pub mod broker;
pub mod clipboard;
pub mod ctx;
pub mod dispatch;
pub mod extension;
pub mod globals;
pub mod seat;
pub mod stop;
#[cfg(test)]
pub mod testing;
