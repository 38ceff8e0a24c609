//! Telling devices what the selection is: a new offer with its types and
//! `selection(offer)`, or `selection(null)`, once per device for the
//! latest selection only, and only when its client has room.
//!
//! What it is not: the selection state ([`Clipboard`]) or the requests that
//! change it (`requests`). See the parent module's notes for when devices
//! are told.

use std::ffi::CString;
use std::rc::Rc;

use super::flavor::{send_device, send_offer, DeviceEvent, OfferEvent};
use super::{Clipboard, Device, Offer, Which};
use crate::ledger::Resource;
use crate::proto::ctx::{with_client, Ctx, Shared, Stop, World};
use crate::state::{ClientKey, Object};

/// Whether client `key` has devices that were not told of the latest
/// selections and that no round is about to tell: a client that was
/// skipped for lack of room, at its next wakeup. One check, and a lookup
/// only when no round is pending, on every wakeup.
pub fn is_behind(clipboard: &Clipboard, key: ClientKey) -> bool {
    !clipboard.changed
        && !clipboard.members.is_empty()
        && clipboard
            .members
            .get(&key)
            .is_some_and(|m| !m.devices.is_empty() && m.seen != clipboard.generation())
}

/// Tells every device of `cx`'s client that is behind what the selections
/// are now, as far as its room allows; the rest wait for the next chance.
pub fn catch_up(cx: &mut Ctx<'_>, clipboard: &mut Clipboard) -> Result<(), Stop> {
    let behind = clipboard
        .members
        .get(&cx.key)
        .is_some_and(|m| !m.devices.is_empty() && m.seen != clipboard.generation());
    if !behind {
        return Ok(());
    }
    let total = clipboard.generation();
    let count = clipboard
        .members
        .get(&cx.key)
        .map_or(0, |m| m.devices.len());
    for index in 0..count {
        for which in Which::BOTH {
            let Some(device) = device_at(clipboard, cx.key, index) else {
                return Ok(());
            };
            let now = clipboard.generation[which.index()];
            if !device.has(which) || device.seen[which.index()] == now {
                continue;
            }
            if !tell(cx, clipboard, device, which)? {
                // No room: the rest waits, and the client stays behind.
                return Ok(());
            }
            if let Some(d) = device_mut(clipboard, cx.key, index) {
                d.seen[which.index()] = now;
            }
        }
    }
    if let Some(member) = clipboard.members.get_mut(&cx.key) {
        member.seen = total;
    }
    Ok(())
}

/// Once per loop pass after a change: every client that is behind is told
/// (see [`catch_up`]). A client that cannot take its output is condemned
/// in `world`, never the one whose change it was.
pub fn deliver_round(clipboard: &mut Clipboard, shared: &Shared, world: &mut World<'_>) {
    if !std::mem::take(&mut clipboard.changed) {
        return;
    }
    let behind: Vec<ClientKey> = clipboard
        .members
        .keys()
        .copied()
        .filter(|&key| is_behind(clipboard, key))
        .collect();
    for key in behind {
        with_client(shared, world, key, |cx| catch_up(cx, clipboard));
    }
}

/// The device at `index` of `key`'s devices, as it is now.
fn device_at(clipboard: &Clipboard, key: ClientKey, index: usize) -> Option<Device> {
    clipboard.members.get(&key)?.devices.get(index).copied()
}

fn device_mut(clipboard: &mut Clipboard, key: ClientKey, index: usize) -> Option<&mut Device> {
    clipboard.members.get_mut(&key)?.devices.get_mut(index)
}

/// Tells `device` of `cx`'s client what the `which` selection is now.
/// `Ok(false)` when its client has no room for it yet (too many live
/// offers, or not enough of its output share): nothing was sent.
pub(super) fn tell(
    cx: &mut Ctx<'_>,
    clipboard: &mut Clipboard,
    device: Device,
    which: Which,
) -> Result<bool, Stop> {
    if !matches!(cx.objects.get(device.id), Some(Object::DataDevice { .. })) {
        return Ok(true); // gone meanwhile: nothing to tell
    }
    let current = clipboard.selection(which);
    let mimes: Rc<Vec<CString>> = match current.and_then(|s| clipboard.sources.get(&s)) {
        Some(source) => Rc::clone(&source.mimes),
        None => Rc::default(),
    };
    if !has_room(cx, clipboard, current.is_some(), &mimes) {
        return Ok(false);
    }
    let offer_id = match current {
        Some(source) => {
            let offer_id = cx.allocate(Object::DataOffer {
                flavor: device.flavor,
                version: device.version,
            })?;
            let generation = clipboard.generation[which.index()];
            clipboard.member(cx.key).offers.insert(
                offer_id,
                Offer {
                    source,
                    which,
                    generation,
                },
            );
            let flavor = device.flavor;
            send_device(
                cx,
                flavor,
                device.id,
                DeviceEvent::DataOffer { id: offer_id },
            )?;
            for mime_type in mimes.iter() {
                let event = OfferEvent::Offer { mime_type };
                send_offer(cx, flavor, offer_id, event)?;
            }
            Some(offer_id)
        }
        None => None,
    };
    send_device(cx, device.flavor, device.id, which.event(offer_id))?;
    Ok(true)
}

/// Whether `cx`'s client has room for one announcement: a live offer
/// under its limit (for a selection), an object, and output.
fn has_room(cx: &mut Ctx<'_>, clipboard: &Clipboard, offer: bool, mimes: &[CString]) -> bool {
    if offer {
        let offers = clipboard.members.get(&cx.key).map_or(0, |m| m.offers.len());
        if offers as u64 >= cx.shared.limits.data_offers || cx.allowance(Resource::Objects) == 0 {
            return false;
        }
    }
    cx.allowance(Resource::OutputBytes) >= announcement_bytes(offer, mimes)
}

/// The bytes an announcement takes on the wire.
fn announcement_bytes(offer: bool, mimes: &[CString]) -> u64 {
    const HEADER: u64 = 8;
    let selection = HEADER + 4;
    if !offer {
        return selection;
    }
    let data_offer = HEADER + 4;
    let types: u64 = mimes
        .iter()
        .map(|m| HEADER + 4 + (m.as_bytes_with_nul().len() as u64).next_multiple_of(4))
        .sum();
    data_offer + types + selection
}
