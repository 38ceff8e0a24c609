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

use std::os::fd::OwnedFd;

use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::protocols::wayland::wl_keyboard::{self, KeymapFormat, WlKeyboard};
use waypass_protocol::protocols::wayland::wl_seat::{self, Capability, WlSeat};
use waypass_protocol::{NewId, ObjectId, DISPLAY_ID};

use crate::proto::ctx::{no_memory, Ctx, ProtocolError, Stop};
use crate::state::Object;

/// The requests of a `wl_seat` bound at `version`.
pub fn seat(
    cx: &mut Ctx<'_>,
    seat: ObjectId<WlSeat>,
    version: u32,
    request: wl_seat::Request<'_>,
) -> Result<(), Stop> {
    match request {
        wl_seat::Request::GetKeyboard { id } => get_keyboard(cx, id, version),
        wl_seat::Request::GetPointer { .. } => Err(missing_capability(seat, "pointer").into()),
        wl_seat::Request::GetTouch { .. } => Err(missing_capability(seat, "touch").into()),
        wl_seat::Request::Release => cx.destroy(seat),
    }
}

/// The requests of a `wl_keyboard`.
pub fn keyboard(
    cx: &mut Ctx<'_>,
    keyboard: ObjectId<WlKeyboard>,
    request: wl_keyboard::Request<'_>,
) -> Result<(), Stop> {
    match request {
        wl_keyboard::Request::Release => cx.destroy(keyboard),
    }
}

/// Binds a seat at `id`: creates it and sends `capabilities` and `name`.
pub fn bind(cx: &mut Ctx<'_>, id: NewId<WlSeat>, version: u32) -> Result<(), Stop> {
    let seat = cx.create(id, Object::Seat { version })?;
    let capabilities = Capability::KEYBOARD;
    cx.send(seat, wl_seat::Event::Capabilities { capabilities })?;
    // `name` is since version 2: skipped for older seats.
    let name = cx.shared.seat_name.as_c_str();
    cx.send_if_supported(seat, wl_seat::Event::Name { name })?;
    Ok(())
}

/// `wl_seat.get_keyboard`: a keyboard at the seat's version, with its
/// keymap and repeat settings.
fn get_keyboard(cx: &mut Ctx<'_>, id: NewId<WlKeyboard>, version: u32) -> Result<(), Stop> {
    let keyboards = cx.objects.iter().filter(|(_, o)| is_keyboard(o)).count() as u64;
    let limit = cx.shared.limits.keyboards;
    if keyboards >= limit {
        return Err(no_memory(format!(
            "too many keyboards (the limit is {limit})"
        )));
    }
    let keyboard = cx.create(id, Object::Keyboard { version })?;
    send_keymap(cx, keyboard)?;
    // `repeat_info` is since version 4: skipped for older keyboards.
    let settings = &cx.shared.settings;
    let (rate, delay) = (settings.repeat_rate, settings.repeat_delay);
    cx.send_if_supported(keyboard, wl_keyboard::Event::RepeatInfo { rate, delay })?;
    Ok(())
}

fn is_keyboard(object: &Object) -> bool {
    matches!(object, Object::Keyboard { .. })
}

/// The error for `get_pointer` / `get_touch` on a keyboard-only seat.
fn missing_capability(seat: ObjectId<WlSeat>, what: &str) -> ProtocolError {
    ProtocolError::new(
        seat.raw(),
        wl_seat::error::MISSING_CAPABILITY,
        format!("{seat:?} has no {what} capability"),
    )
}

/// Queues `wl_keyboard.keymap` for `keyboard` with the current keymap.
fn send_keymap(cx: &mut Ctx<'_>, keyboard: ObjectId<WlKeyboard>) -> Result<(), Stop> {
    let keymap = &cx.shared.keymap;
    let fd: OwnedFd = keymap.fd_for_client().map_err(|e| {
        Stop::Server(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::NO_MEMORY,
            format!("cannot open the keymap for {keyboard:?}: {e}"),
        ))
    })?;
    let size = keymap.size();
    // A fresh open of the sealed file, ours to give: the queue takes it as
    // it is and closes it once sent.
    let format = KeymapFormat::XkbV1;
    cx.send_owned(keyboard, wl_keyboard::Event::Keymap { format, fd, size })
}

/// Sends the current keymap to every keyboard of `cx`'s client (after a
/// reload). Returns how many keyboards were told.
pub fn push_keymap(cx: &mut Ctx<'_>) -> Result<usize, Stop> {
    let keyboards: Vec<ObjectId<WlKeyboard>> = cx
        .objects
        .iter()
        .filter(|(_, obj)| is_keyboard(obj))
        .map(|(id, _)| ObjectId::from_raw(id))
        .collect();
    for &keyboard in &keyboards {
        send_keymap(cx, keyboard)?;
    }
    Ok(keyboards.len())
}
