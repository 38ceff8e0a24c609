//! The clipboard's request handlers: what each request of a data-control
//! manager, device, source or offer does to the [`Clipboard`] state, and
//! the events it queues, on its own client or (`cancelled`, `send`) on the
//! source's.
//!
//! What it is not: the state itself (the parent module) or the
//! announcement of selections to devices (`announce`).

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use log::debug;
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{Arg, Message, DISPLAY_ID};

use super::announce::{catch_up, is_behind};
use super::{device, manager, offer, source, Clipboard, Device, Source, SourceKey, Which};
use crate::ledger::Resource;
use crate::proto::ctx::{bug, no_memory, Ctx, ProtocolError, Stop};
use crate::state::{Flavor, Object};

/// Binds a manager global.
pub fn bind_manager(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    let limit = cx.shared.limits.data_devices;
    if clipboard.member(cx.key).managers >= limit {
        clipboard.tidy(cx.key);
        return Err(no_memory(format!(
            "too many data-control managers (the limit is {limit})"
        )));
    }
    cx.create(id, Object::DataManager { flavor, version })?;
    clipboard.member(cx.key).managers += 1;
    Ok(())
}

/// Handles a request to a manager, device, source or offer.
pub fn request(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    obj: Object,
    msg: Message<'_>,
) -> Result<(), Stop> {
    use Arg::{NewId, Object as Obj, Str};
    let id = msg.sender;
    if let (Object::DataOffer { .. }, offer::req::RECEIVE) = (obj, msg.opcode) {
        // The paster's fd is taken out of the message, to be forwarded as
        // it is (no dup).
        let mut args = msg.args.into_iter();
        return match (args.next(), args.next()) {
            (Some(Str(Some(mime))), Some(Arg::Fd(fd))) => receive(cx, clipboard, id, mime, fd),
            _ => Err(no_handler(obj, id, offer::req::RECEIVE)),
        };
    }
    match (obj, msg.opcode, msg.args.as_slice()) {
        (
            Object::DataManager { flavor, version },
            manager::req::CREATE_DATA_SOURCE,
            [NewId(new)],
        ) => create_source(cx, clipboard, *new, flavor, version),
        (
            Object::DataManager { flavor, version },
            manager::req::GET_DATA_DEVICE,
            [NewId(new), Obj(seat)],
        ) => get_device(cx, clipboard, *new, *seat, flavor, version),
        (Object::DataManager { .. }, manager::req::DESTROY, []) => {
            clipboard.member(cx.key).managers -= 1;
            clipboard.tidy(cx.key);
            cx.destroy(id)
        }
        (Object::DataDevice { .. }, device::req::SET_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Regular)
        }
        (Object::DataDevice { .. }, device::req::SET_PRIMARY_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Primary)
        }
        (Object::DataDevice { .. }, device::req::DESTROY, []) => {
            clipboard.member(cx.key).devices.retain(|d| d.id != id);
            clipboard.tidy(cx.key);
            cx.destroy(id)
        }
        (Object::DataSource { .. }, source::req::OFFER, [Str(Some(mime))]) => {
            offer_type(cx, clipboard, id, mime)
        }
        (Object::DataSource { .. }, source::req::DESTROY, []) => {
            clipboard.remove_source(SourceKey { client: cx.key, id });
            clipboard.tidy(cx.key);
            cx.destroy(id)?;
            // Its devices learn at once if that cleared the selection.
            catch_up(cx, clipboard)
        }
        (Object::DataOffer { .. }, offer::req::DESTROY, []) => {
            clipboard.member(cx.key).offers.remove(&id);
            clipboard.tidy(cx.key);
            // A server-created id: freed with no delete_id, as libwayland.
            cx.objects.remove(id);
            // Room for an offer it was owed (unless a round will tell it).
            if is_behind(clipboard, cx.key) {
                catch_up(cx, clipboard)?;
            }
            Ok(())
        }
        _ => Err(no_handler(obj, id, msg.opcode)),
    }
}

/// A request the tables describe but no arm above covers: a bug of ours.
fn no_handler(obj: Object, id: u32, opcode: u16) -> Stop {
    bug(format!(
        "no handler for {}@{id} opcode {opcode}",
        obj.interface().name
    ))
}

fn create_source(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    let limit = cx.shared.limits.data_sources;
    if clipboard.member(cx.key).sources.len() as u64 >= limit {
        return Err(no_memory(format!(
            "too many data sources (the limit is {limit})"
        )));
    }
    cx.create(id, Object::DataSource { flavor, version })?;
    clipboard.member(cx.key).sources.push(id);
    let key = SourceKey { client: cx.key, id };
    clipboard.sources.insert(
        key,
        Source {
            flavor,
            mimes: Rc::default(),
            used: false,
        },
    );
    Ok(())
}

fn get_device(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    seat: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    if !matches!(cx.objects.get(seat), Some(Object::Seat { .. })) {
        return Err(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::INVALID_OBJECT,
            format!("invalid object {seat}"),
        )
        .into());
    }
    let limit = cx.shared.limits.data_devices;
    if clipboard.member(cx.key).devices.len() as u64 >= limit {
        return Err(no_memory(format!(
            "too many data-control devices (the limit is {limit})"
        )));
    }
    cx.create(id, Object::DataDevice { flavor, version })?;
    let member = clipboard.member(cx.key);
    member.devices.push(Device {
        id,
        flavor,
        version,
        seen: [u64::MAX; 2],
    });
    // A new device learns the current selections at once.
    member.seen = u64::MAX;
    catch_up(cx, clipboard)
}

fn offer_type(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    mime: &CStr,
) -> Result<(), Stop> {
    let limits = cx.shared.limits;
    let Some(source) = clipboard.sources.get_mut(&SourceKey { client: cx.key, id }) else {
        return Err(unknown_source(cx, id));
    };
    if source.used {
        return Err(ProtocolError::new(
            id,
            source::error::INVALID_OFFER,
            "cannot offer a MIME type after set_selection",
        )
        .into());
    }
    if mime.to_bytes().len() as u64 > limits.mime_length {
        return Err(no_memory(format!(
            "MIME type longer than {} bytes",
            limits.mime_length
        )));
    }
    if source.mimes.iter().any(|m| m.as_c_str() == mime) {
        return Ok(()); // offered twice: once is enough
    }
    if source.mimes.len() as u64 >= limits.mime_types {
        return Err(no_memory(format!(
            "too many MIME types on one data source (the limit is {})",
            limits.mime_types
        )));
    }
    // Not shared before the source is used: no copy.
    Rc::make_mut(&mut source.mimes).push(mime.to_owned());
    Ok(())
}

fn set_selection(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    device_id: u32,
    source_id: u32,
    which: Which,
) -> Result<(), Stop> {
    let new = if source_id == 0 {
        None
    } else {
        let key = SourceKey {
            client: cx.key,
            id: source_id,
        };
        let Some(source) = clipboard.sources.get_mut(&key) else {
            // Not a live source of this client (or not a source at all).
            return Err(ProtocolError::new(
                DISPLAY_ID,
                wl_display::error::INVALID_OBJECT,
                format!("invalid object {source_id}"),
            )
            .into());
        };
        if source.used {
            return Err(ProtocolError::new(
                device_id,
                device::error::USED_SOURCE,
                "cannot use a data source in set_selection more than once",
            )
            .into());
        }
        source.used = true;
        Some(key)
    };
    if let Some(old) = clipboard.set(which, new) {
        cancel(cx, clipboard, old)?;
    }
    catch_up(cx, clipboard)
}

/// Tells a replaced source it is no longer the selection.
fn cancel(cx: &mut Ctx<'_>, clipboard: &Clipboard, old: SourceKey) -> Result<(), Stop> {
    let Some(flavor) = clipboard.sources.get(&old).map(|s| s.flavor) else {
        return Ok(());
    };
    if old.client == cx.key {
        return cx.send(old.id, flavor.source(), source::evt::CANCELLED, &[]);
    }
    cx.with_other(old.client, |other| {
        other.send(old.id, flavor.source(), source::evt::CANCELLED, &[])
    });
    Ok(())
}

fn receive(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    offer_id: u32,
    mime: &CStr,
    fd: OwnedFd,
) -> Result<(), Stop> {
    let Some(source) = clipboard.offer_source(cx.key, offer_id) else {
        // An inert offer (its selection was replaced) or a gone source:
        // the fd closes here, and the paster reads EOF.
        debug!("receive on an inert offer ({}): fd closed", cx.who());
        return Ok(());
    };
    let Some(flavor) = clipboard.sources.get(&source).map(|s| s.flavor) else {
        return Ok(());
    };
    if source.client == cx.key {
        return forward(cx, source.id, flavor, mime, fd);
    }
    let who = cx.who();
    cx.with_other(source.client, |copier| {
        forward(copier, source.id, flavor, mime, fd).or_else(|stop| match stop {
            // Over its share: the paste is dropped, the copier stays.
            Stop::Protocol(_) => {
                debug!("a paste from {who} is dropped: the copier has no room for its fd");
                Ok(())
            }
            other => Err(other),
        })
    });
    Ok(())
}

/// Queues `send(mime, fd)` on the source's client (`cx`), moving the
/// paster's fd; drops it (the paster reads EOF) when the copier already
/// has too many fds unread.
fn forward(
    cx: &mut Ctx<'_>,
    source_id: u32,
    flavor: Flavor,
    mime: &CStr,
    fd: OwnedFd,
) -> Result<(), Stop> {
    let pending = cx.pending_fds() as u64;
    let limit = cx.shared.limits.pending_sends;
    // The event: header, the string (length, bytes, NUL, padding).
    let bytes = 8 + 4 + (mime.to_bytes_with_nul().len() as u64).next_multiple_of(4);
    if pending >= limit
        || cx.allowance(Resource::FdsInFlight) == 0
        || cx.allowance(Resource::OutputBytes) < bytes
    {
        debug!(
            "a paste is dropped: the copying client ({}) has {pending} fds unread",
            cx.who()
        );
        return Ok(());
    }
    // The paster's fd, forwarded as it is (no dup): it closes once sent.
    cx.send_owned(
        source_id,
        flavor.source(),
        source::evt::SEND,
        vec![Arg::Str(Some(mime)), Arg::Fd(fd)],
    )
}

fn unknown_source(cx: &Ctx<'_>, id: u32) -> Stop {
    log::error!(
        "bug: data source {id} of {} is not in the clipboard",
        cx.who()
    );
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        format!("data source {id} is unknown to the server"),
    ))
}
