//! The clipboard's request handlers: what each request of a data-control
//! manager, device, source or offer does to the [`Clipboard`] state, and
//! the events it queues.
//!
//! What it is not: the state itself, or its limits' bookkeeping (the
//! parent module), and it knows no sockets: output for other clients is
//! left as [`Delivery`]s.

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use log::debug;
use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{Arg, Message, DISPLAY_ID};

use super::{
    device, has_primary, manager, offer, source, Clipboard, Delivery, Device, Source, SourceKey,
    Which,
};
use crate::config::{
    MAX_MIME_LEN, MAX_MIME_TYPES, MAX_OFFERS_PER_CLIENT, MAX_PENDING_SENDS, MAX_SOURCES_PER_CLIENT,
};
use crate::proto::ctx::{Ctx, ProtocolError, Stop};
use crate::state::{Flavor, Object};

/// Binds a manager global.
pub fn bind_manager(cx: &mut Ctx<'_>, id: u32, flavor: Flavor, version: u32) -> Result<(), Stop> {
    cx.create(id, Object::DataManager { flavor, version })
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
        (Object::DataManager { .. }, manager::req::DESTROY, []) => cx.destroy(id),
        (Object::DataDevice { .. }, device::req::SET_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Regular)
        }
        (Object::DataDevice { .. }, device::req::SET_PRIMARY_SELECTION, [Obj(source)]) => {
            set_selection(cx, clipboard, id, *source, Which::Primary)
        }
        (Object::DataDevice { .. }, device::req::DESTROY, []) => {
            let key = cx.key;
            clipboard.devices.retain(|d| (d.client, d.id) != (key, id));
            cx.destroy(id)
        }
        (Object::DataSource { .. }, source::req::OFFER, [Str(Some(mime))]) => {
            offer_type(cx, clipboard, id, mime)
        }
        (Object::DataSource { .. }, source::req::DESTROY, []) => {
            clipboard.remove_source(SourceKey { client: cx.key, id });
            cx.destroy(id)?;
            flush_own(cx, clipboard)
        }
        (Object::DataOffer { .. }, offer::req::DESTROY, []) => {
            clipboard.offers.remove(&(cx.key, id));
            // A server-created id: freed with no delete_id, as libwayland.
            cx.objects.remove(id);
            Ok(())
        }
        _ => Err(no_handler(obj, id, msg.opcode)),
    }
}

/// A request the tables describe but no arm above covers: a bug of ours.
fn no_handler(obj: Object, id: u32, opcode: u16) -> Stop {
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        format!(
            "no handler for {}@{id} opcode {opcode}",
            obj.interface().name
        ),
    ))
}

fn create_source(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    if clipboard.sources_of(cx.key) >= MAX_SOURCES_PER_CLIENT {
        return Err(no_memory(format!(
            "too many data sources (the limit is {MAX_SOURCES_PER_CLIENT})"
        )));
    }
    cx.create(id, Object::DataSource { flavor, version })?;
    let key = SourceKey { client: cx.key, id };
    clipboard.sources.insert(
        key,
        Source {
            flavor,
            mimes: Vec::new(),
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
    cx.create(id, Object::DataDevice { flavor, version })?;
    clipboard.devices.push(Device {
        client: cx.key,
        id,
        flavor,
        version,
    });
    // A new device learns the current selections at once.
    announce(cx, clipboard, id, Which::Regular)?;
    if has_primary(flavor, version) {
        announce(cx, clipboard, id, Which::Primary)?;
    }
    Ok(())
}

fn offer_type(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    mime: &CStr,
) -> Result<(), Stop> {
    let Some(source) = clipboard.sources.get_mut(&SourceKey { client: cx.key, id }) else {
        return Err(bug(cx, id));
    };
    if source.used {
        return Err(ProtocolError::new(
            id,
            source::error::INVALID_OFFER,
            "cannot offer a MIME type after set_selection",
        )
        .into());
    }
    if mime.to_bytes().len() > MAX_MIME_LEN {
        return Err(no_memory(format!(
            "MIME type longer than {MAX_MIME_LEN} bytes"
        )));
    }
    if source.mimes.iter().any(|m| m.as_c_str() == mime) {
        return Ok(()); // offered twice: once is enough
    }
    if source.mimes.len() >= MAX_MIME_TYPES {
        return Err(no_memory(format!(
            "too many MIME types on one data source (the limit is {MAX_MIME_TYPES})"
        )));
    }
    source.mimes.push(mime.to_owned());
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
    clipboard.set(which, new);
    flush_own(cx, clipboard)
}

fn receive(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    offer_id: u32,
    mime: &CStr,
    fd: OwnedFd,
) -> Result<(), Stop> {
    let Some(Some(source)) = clipboard.offers.get(&(cx.key, offer_id)).copied() else {
        // An inert offer (its selection was replaced) or a gone source:
        // the fd closes here, and the paster reads EOF.
        debug!("receive on an inert offer ({}): fd closed", cx.who());
        return Ok(());
    };
    clipboard.deliveries.push(Delivery::Send {
        source,
        mime: mime.to_owned(),
        fd,
    });
    flush_own(cx, clipboard)
}

/// Queues, on `cx`'s own client, the deliveries meant for it, leaving the
/// others for the runtime ([`crate::runtime`]).
fn flush_own(cx: &mut Ctx<'_>, clipboard: &mut Clipboard) -> Result<(), Stop> {
    let all = clipboard.take_deliveries();
    let (own, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.client() == cx.key);
    clipboard.deliveries = others;
    for d in own {
        deliver(cx, clipboard, d)?;
    }
    Ok(())
}

/// Queues one delivery on its client (`cx`).
pub fn deliver(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    delivery: Delivery,
) -> Result<(), Stop> {
    match delivery {
        Delivery::Selection { device, which, .. } => {
            if matches!(cx.objects.get(device), Some(Object::DataDevice { .. })) {
                announce(cx, clipboard, device, which)?;
            }
            Ok(())
        }
        Delivery::Send { source, mime, fd } => {
            let Some(flavor) = clipboard.sources.get(&source).map(|s| s.flavor) else {
                return Ok(()); // gone meanwhile: the fd closes, EOF
            };
            if cx.pending_fds() >= MAX_PENDING_SENDS {
                debug!(
                    "a paste is dropped: the copying client ({}) has {MAX_PENDING_SENDS} fds unread",
                    cx.who()
                );
                return Ok(());
            }
            // The paster's fd, forwarded as it is (no dup): it closes
            // once sent.
            cx.send_owned(
                source.id,
                flavor.source(),
                source::evt::SEND,
                vec![Arg::Str(Some(&mime)), Arg::Fd(fd)],
            )
        }
        Delivery::Cancelled { source } => {
            let Some(flavor) = clipboard.sources.get(&source).map(|s| s.flavor) else {
                return Ok(());
            };
            cx.send(source.id, flavor.source(), source::evt::CANCELLED, &[])
        }
    }
}

/// Tells `device` of `cx`'s client what the `which` selection is now: a
/// new offer with its types, then `selection(offer)`, or `selection(null)`.
fn announce(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    device: u32,
    which: Which,
) -> Result<(), Stop> {
    let Some(Object::DataDevice { flavor, version }) = cx.objects.get(device).copied() else {
        return Ok(());
    };
    let current = clipboard.selection(which);
    let offer_id = match current {
        Some(source) => {
            if clipboard.offers_of(cx.key) >= MAX_OFFERS_PER_CLIENT {
                return Err(no_memory(format!(
                    "too many live data offers (the limit is {MAX_OFFERS_PER_CLIENT}): destroy old ones"
                )));
            }
            let offer_id = cx
                .objects
                .allocate(Object::DataOffer { flavor, version })
                .ok_or_else(|| no_memory("no free server object id".into()))?;
            clipboard.offers.insert((cx.key, offer_id), Some(source));
            cx.send(
                device,
                flavor.device(),
                device::evt::DATA_OFFER,
                &[Arg::NewId(offer_id)],
            )?;
            let mimes = clipboard
                .sources
                .get(&source)
                .map(|s| s.mimes.clone())
                .unwrap_or_default();
            for mime in &mimes {
                cx.send(
                    offer_id,
                    flavor.offer(),
                    offer::evt::OFFER,
                    &[Arg::Str(Some(mime))],
                )?;
            }
            offer_id
        }
        None => 0,
    };
    cx.send(
        device,
        flavor.device(),
        which.event(),
        &[Arg::Object(offer_id)],
    )
}

fn no_memory(message: String) -> Stop {
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::NO_MEMORY,
        message,
    ))
}

fn bug(cx: &Ctx<'_>, id: u32) -> Stop {
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
