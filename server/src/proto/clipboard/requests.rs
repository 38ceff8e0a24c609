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
use waypass_protocol::protocols::wayland::wl_seat::WlSeat;
use waypass_protocol::{ObjectId, DISPLAY_ID};

use super::announce::{catch_up, is_behind};
use super::flavor::{
    send_source, DeviceRequest, ManagerRequest, OfferRequest, SourceEvent, SourceRequest,
};
use super::{device_v1, persist, source_v1, Clipboard, Device, Source, SourceKey, Which};
use crate::ledger::Resource;
use crate::proto::ctx::{no_memory, Ctx, ProtocolError, Stop};
use crate::state::{ClientKey, Flavor, Object};

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
    cx.create_raw(id, Object::DataManager { flavor, version })?;
    clipboard.member(cx.key).managers += 1;
    Ok(())
}

/// The requests of a manager `id` of `flavor`, bound at `version`.
pub fn manager(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    flavor: Flavor,
    version: u32,
    request: ManagerRequest,
) -> Result<(), Stop> {
    match request {
        ManagerRequest::CreateDataSource { id } => {
            create_source(cx, clipboard, id, flavor, version)
        }
        ManagerRequest::GetDataDevice { id, seat } => {
            get_device(cx, clipboard, id, seat, flavor, version)
        }
        ManagerRequest::Destroy => {
            clipboard.member(cx.key).managers -= 1;
            clipboard.tidy(cx.key);
            cx.destroy_raw(id)
        }
    }
}

/// The requests of a device `id`.
pub fn device(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    request: DeviceRequest,
) -> Result<(), Stop> {
    match request {
        DeviceRequest::SetSelection { source } => {
            set_selection(cx, clipboard, id, source, Which::Regular)
        }
        DeviceRequest::SetPrimarySelection { source } => {
            set_selection(cx, clipboard, id, source, Which::Primary)
        }
        DeviceRequest::Destroy => {
            clipboard.member(cx.key).devices.retain(|d| d.id != id);
            clipboard.tidy(cx.key);
            cx.destroy_raw(id)
        }
    }
}

/// The requests of a source `id`.
pub fn source(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    request: SourceRequest<'_>,
) -> Result<(), Stop> {
    match request {
        SourceRequest::Offer { mime_type } => offer_type(cx, clipboard, id, mime_type),
        SourceRequest::Destroy => {
            clipboard.remove_source(SourceKey { client: cx.key, id });
            clipboard.tidy(cx.key);
            cx.destroy_raw(id)?;
            // Its devices learn at once if that cleared the selection.
            catch_up(cx, clipboard)
        }
    }
}

/// The requests of an offer `id` (created by the server).
pub fn offer(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    id: u32,
    request: OfferRequest<'_>,
) -> Result<(), Stop> {
    match request {
        // The paster's fd, to be forwarded as it is (no dup).
        OfferRequest::Receive { mime_type, fd } => receive(cx, clipboard, id, mime_type, fd),
        OfferRequest::Destroy => {
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
    }
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
    cx.create_raw(id, Object::DataSource { flavor, version })?;
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
    seat: ObjectId<WlSeat>,
    flavor: Flavor,
    version: u32,
) -> Result<(), Stop> {
    if !matches!(cx.objects.get(seat.raw()), Some(Object::Seat { .. })) {
        return Err(ProtocolError::new(
            DISPLAY_ID,
            wl_display::error::INVALID_OBJECT,
            format!("invalid object {}", seat.raw()),
        )
        .into());
    }
    let limit = cx.shared.limits.data_devices;
    if clipboard.member(cx.key).devices.len() as u64 >= limit {
        return Err(no_memory(format!(
            "too many data-control devices (the limit is {limit})"
        )));
    }
    cx.create_raw(id, Object::DataDevice { flavor, version })?;
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
            source_v1::error::INVALID_OFFER,
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
    source_id: Option<u32>,
    which: Which,
) -> Result<(), Stop> {
    let new = if let Some(source_id) = source_id {
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
                device_v1::error::USED_SOURCE,
                "cannot use a data source in set_selection more than once",
            )
            .into());
        }
        source.used = true;
        Some(key)
    } else {
        None
    };
    if let Some(old) = clipboard.set(which, new) {
        cancel(cx, clipboard, old)?;
    }
    persist::selection_set(cx, clipboard, which, new)?;
    catch_up(cx, clipboard)
}

/// Tells a replaced source it is no longer the selection.
fn cancel(cx: &mut Ctx<'_>, clipboard: &Clipboard, old: SourceKey) -> Result<(), Stop> {
    let Some(flavor) = clipboard.sources.get(&old).map(|s| s.flavor) else {
        return Ok(());
    };
    let cancelled = |cx: &mut Ctx<'_>| send_source(cx, flavor, old.id, SourceEvent::Cancelled);
    if old.client == cx.key {
        return cancelled(cx);
    }
    cx.with_other(old.client, cancelled);
    Ok(())
}

fn receive(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    offer_id: u32,
    mime: &CStr,
    fd: OwnedFd,
) -> Result<(), Stop> {
    let Some(offer) = clipboard.live_offer(cx.key, offer_id) else {
        // An inert offer (its selection was replaced) or a gone source:
        // the fd closes here, and the paster reads EOF.
        debug!("receive on an inert offer ({}): fd closed", cx.who());
        return Ok(());
    };
    // Served from the kept copy (now or once read), or by the copier.
    let Some(fd) = persist::paste(cx, clipboard, offer, mime, fd) else {
        return Ok(());
    };
    let source = offer.source;
    if source.client == ClientKey::SERVER {
        debug!(
            "receive of a type the server did not keep ({}): fd closed",
            cx.who()
        );
        return Ok(());
    }
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

/// Whether the copier (`cx`'s client) has room for one more
/// `send(mime, fd)`: under its `pending-sends`, with a share of fds in
/// flight and of output left.
pub(super) fn copier_has_room(cx: &mut Ctx<'_>, mime: &CStr) -> bool {
    let pending = cx.pending_fds() as u64;
    let limit = cx.shared.limits.pending_sends;
    // The event: header, the string (length, bytes, NUL, padding).
    let bytes = 8 + 4 + (mime.to_bytes_with_nul().len() as u64).next_multiple_of(4);
    pending < limit
        && cx.allowance(Resource::FdsInFlight) > 0
        && cx.allowance(Resource::OutputBytes) >= bytes
}

/// Queues `send(mime, fd)` on the source's client (`cx`), moving the
/// paster's fd; drops it (the paster reads EOF) when the copier already
/// has too many fds unread.
pub(super) fn forward(
    cx: &mut Ctx<'_>,
    source_id: u32,
    flavor: Flavor,
    mime: &CStr,
    fd: OwnedFd,
) -> Result<(), Stop> {
    if !copier_has_room(cx, mime) {
        debug!(
            "a paste is dropped: the copying client ({}) has {} fds unread",
            cx.who(),
            cx.pending_fds()
        );
        return Ok(());
    }
    // The paster's fd, forwarded as it is (no dup): it closes once sent.
    let send = SourceEvent::Send {
        mime_type: mime,
        fd,
    };
    send_source(cx, flavor, source_id, send)
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
