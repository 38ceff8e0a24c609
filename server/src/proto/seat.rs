//! The `wl_seat` global and its `wl_keyboard`s: capabilities, the seat
//! name, and the keymap and repeat settings every keyboard receives.
//!
//! This module creates seat and keyboard objects and queues their events.
//! It does not build the keymap ([`crate::keymap`] does) and does not
//! reach other clients: a reload calls [`push_keymap`] once per client.
//!
//! # Implementation notes
//!
//! - The seat has only the keyboard capability, so `get_pointer` and
//!   `get_touch` are `wl_seat.error.missing_capability`, a protocol error,
//!   as the protocol (version 8 and up) says.
//! - A keyboard gets `keymap` first and then, from version 4, `repeat_info`
//!   (sway's order; clients accept both).
//! - A client may hold [`Limits::keyboards`](crate::limits::Limits) keyboards: each one
//!   costs an fd in flight at creation and another at each keymap reload,
//!   so keyboards bound what a reload sends to one client. More is
//!   `no_memory`, as for too many objects. Real clients hold one per seat.
//! - The keymap fd is a fresh read-only open of the shared sealed file (see
//!   [`crate::keymap`]), ours alone: [`Ctx::send_owned`] moves it into the
//!   queue without a `dup`, and the queue closes it once it is sent.

use waypass_protocol::protocols::wayland::{wl_display, wl_keyboard, wl_seat};
use waypass_protocol::{Arg, DISPLAY_ID};

use crate::proto::ctx::{no_memory, Ctx, ProtocolError, Stop};
use crate::state::Object;

/// Binds a seat at `id`: creates it and sends `capabilities` and `name`.
pub fn bind(cx: &mut Ctx<'_>, id: u32, version: u32) -> Result<(), Stop> {
    cx.create(id, Object::Seat { version })?;
    cx.send(
        id,
        &wl_seat::INTERFACE,
        wl_seat::evt::CAPABILITIES,
        &[Arg::Uint(wl_seat::capability::KEYBOARD)],
    )?;
    // `name` is since version 2: skipped for older seats.
    let shared = cx.shared;
    cx.send_if_supported(
        id,
        &wl_seat::INTERFACE,
        wl_seat::evt::NAME,
        &[Arg::Str(Some(shared.seat_name.as_c_str()))],
    )?;
    Ok(())
}

/// `wl_seat.get_keyboard`: a keyboard at the seat's version, with its
/// keymap and repeat settings.
pub fn get_keyboard(cx: &mut Ctx<'_>, id: u32, version: u32) -> Result<(), Stop> {
    let keyboards = cx.objects.iter().filter(|(_, o)| is_keyboard(o)).count() as u64;
    let limit = cx.shared.limits.keyboards;
    if keyboards >= limit {
        return Err(no_memory(format!(
            "too many keyboards (the limit is {limit})"
        )));
    }
    cx.create(id, Object::Keyboard { version })?;
    send_keymap(cx, id)?;
    // `repeat_info` is since version 4: skipped for older keyboards.
    let settings = &cx.shared.settings;
    let (rate, delay) = (settings.repeat_rate, settings.repeat_delay);
    cx.send_if_supported(
        id,
        &wl_keyboard::INTERFACE,
        wl_keyboard::evt::REPEAT_INFO,
        &[Arg::Int(rate), Arg::Int(delay)],
    )?;
    Ok(())
}

fn is_keyboard(object: &Object) -> bool {
    matches!(object, Object::Keyboard { .. })
}

/// The error for `get_pointer` / `get_touch` on a keyboard-only seat.
pub fn missing_capability(seat: u32, what: &str) -> ProtocolError {
    ProtocolError::new(
        seat,
        wl_seat::error::MISSING_CAPABILITY,
        format!("wl_seat@{seat} has no {what} capability"),
    )
}

/// Queues `wl_keyboard.keymap` for keyboard `id` with the current keymap.
fn send_keymap(cx: &mut Ctx<'_>, id: u32) -> Result<(), Stop> {
    let keymap = &cx.shared.keymap;
    let fd = keymap.fd_for_client().map_err(|e| {
        Stop::Server(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::NO_MEMORY,
            format!("cannot open the keymap for wl_keyboard@{id}: {e}"),
        ))
    })?;
    let size = keymap.size();
    // A fresh open of the sealed file, ours to give: the queue takes it as
    // it is and closes it once sent.
    cx.send_owned(
        id,
        &wl_keyboard::INTERFACE,
        wl_keyboard::evt::KEYMAP,
        vec![
            Arg::Uint(wl_keyboard::keymap_format::XKB_V1),
            Arg::Fd(fd),
            Arg::Uint(size),
        ],
    )
}

/// Sends the current keymap to every keyboard of `cx`'s client (after a
/// reload). Returns how many keyboards were told.
pub fn push_keymap(cx: &mut Ctx<'_>) -> Result<usize, Stop> {
    let keyboards: Vec<u32> = cx
        .objects
        .iter()
        .filter(|(_, obj)| is_keyboard(obj))
        .map(|(id, _)| id)
        .collect();
    for &id in &keyboards {
        send_keymap(cx, id)?;
    }
    Ok(keyboards.len())
}
