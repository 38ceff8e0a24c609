//! The two data-control protocols as one: each flavor's typed requests
//! turned into the clipboard's own request enums, and the clipboard's own
//! events turned into each flavor's typed events and sent.
//!
//! What it is: the one place that names `ext-data-control-v1` and
//! `wlr-data-control-unstable-v1` message by message, with an exhaustive
//! `match` per flavor and per interface, so a request either XML adds
//! is a compile error here and nowhere else. What it is not: what a
//! request does (`requests`) or when devices are told (`announce`).
//!
//! # Implementation notes
//!
//! - **Enums, not a trait.** An object records its [`Flavor`] at run
//!   time, so the handlers take flavor-neutral enums and are compiled
//!   once; a trait over the two flavors would compile every handler
//!   twice and spread the flavor through their signatures. The
//!   conversions are written once, in the `flavor!` macro, and expanded for each
//!   flavor: each expansion is an exhaustive `match` over that flavor's
//!   own generated types.
//! - **Ids stay numbers inside.** The two flavors' ids have different
//!   types (`ObjectId<ExtDataControlOfferV1>`, ...); the clipboard keeps
//!   them as `u32` with the object's [`Flavor`] beside, and they become
//!   typed again here, on the way out.

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use waypass_protocol::protocols::wayland::wl_seat::WlSeat;
use waypass_protocol::{ArgsMismatch, Message, ObjectId};

use crate::proto::ctx::{Ctx, Stop};
use crate::state::Flavor;

/// A request to a data-control manager, of either flavor.
#[derive(Debug)]
pub enum ManagerRequest {
    /// `create_data_source(id)`.
    CreateDataSource {
        /// The new source.
        id: u32,
    },
    /// `get_data_device(id, seat)`.
    GetDataDevice {
        /// The new device.
        id: u32,
        /// The seat it is for.
        seat: ObjectId<WlSeat>,
    },
    /// `destroy`.
    Destroy,
}

/// A request to a data-control device, of either flavor.
#[derive(Debug)]
pub enum DeviceRequest {
    /// `set_selection(source)`; `None` clears it.
    SetSelection {
        /// The source, or none.
        source: Option<u32>,
    },
    /// `set_primary_selection(source)`; `None` clears it.
    SetPrimarySelection {
        /// The source, or none.
        source: Option<u32>,
    },
    /// `destroy`.
    Destroy,
}

/// A request to a data-control source, of either flavor.
#[derive(Debug)]
pub enum SourceRequest<'a> {
    /// `offer(mime_type)`.
    Offer {
        /// The MIME type offered.
        mime_type: &'a CStr,
    },
    /// `destroy`.
    Destroy,
}

/// A request to a data-control offer, of either flavor.
#[derive(Debug)]
pub enum OfferRequest<'a> {
    /// `receive(mime_type, fd)`: the paster's fd, to be moved on.
    Receive {
        /// The MIME type asked for.
        mime_type: &'a CStr,
        /// Where the copier writes the data.
        fd: OwnedFd,
    },
    /// `destroy`.
    Destroy,
}

/// An event the server sends on a data-control device.
#[derive(Debug, Clone, Copy)]
pub enum DeviceEvent {
    /// `data_offer(id)`: a new server-created offer.
    DataOffer {
        /// The offer's id.
        id: u32,
    },
    /// `selection(id)`; `None` when there is none.
    Selection {
        /// The offer, or none.
        id: Option<u32>,
    },
    /// `primary_selection(id)`; `None` when there is none.
    PrimarySelection {
        /// The offer, or none.
        id: Option<u32>,
    },
}

/// An event the server sends on a data-control offer.
#[derive(Debug, Clone, Copy)]
pub enum OfferEvent<'a> {
    /// `offer(mime_type)`: one type of the selection.
    Offer {
        /// The MIME type.
        mime_type: &'a CStr,
    },
}

/// An event the server sends on a data-control source.
#[derive(Debug)]
pub enum SourceEvent<'a> {
    /// `send(mime_type, fd)`: a paster's fd, moved on with no `dup`.
    Send {
        /// The MIME type asked for.
        mime_type: &'a CStr,
        /// Where to write the data.
        fd: OwnedFd,
    },
    /// `cancelled`: the source is no longer the selection.
    Cancelled,
}

/// A manager's request of `flavor`, from its decoded message.
pub fn manager(flavor: Flavor, msg: Message<'_>) -> Result<ManagerRequest, ArgsMismatch> {
    match flavor {
        Flavor::Ext => ext::manager(msg),
        Flavor::Wlr => wlr::manager(msg),
    }
}

/// A device's request of `flavor`, from its decoded message.
pub fn device(flavor: Flavor, msg: Message<'_>) -> Result<DeviceRequest, ArgsMismatch> {
    match flavor {
        Flavor::Ext => ext::device(msg),
        Flavor::Wlr => wlr::device(msg),
    }
}

/// A source's request of `flavor`, from its decoded message.
pub fn source(flavor: Flavor, msg: Message<'_>) -> Result<SourceRequest<'_>, ArgsMismatch> {
    match flavor {
        Flavor::Ext => ext::source(msg),
        Flavor::Wlr => wlr::source(msg),
    }
}

/// An offer's request of `flavor`, from its decoded message.
pub fn offer(flavor: Flavor, msg: Message<'_>) -> Result<OfferRequest<'_>, ArgsMismatch> {
    match flavor {
        Flavor::Ext => ext::offer(msg),
        Flavor::Wlr => wlr::offer(msg),
    }
}

/// Queues `event` on device `id` of `flavor`.
pub fn send_device(
    cx: &mut Ctx<'_>,
    flavor: Flavor,
    id: u32,
    event: DeviceEvent,
) -> Result<(), Stop> {
    match flavor {
        Flavor::Ext => ext::send_device(cx, id, event),
        Flavor::Wlr => wlr::send_device(cx, id, event),
    }
}

/// Queues `event` on offer `id` of `flavor`.
pub fn send_offer(
    cx: &mut Ctx<'_>,
    flavor: Flavor,
    id: u32,
    event: OfferEvent<'_>,
) -> Result<(), Stop> {
    match flavor {
        Flavor::Ext => ext::send_offer(cx, id, event),
        Flavor::Wlr => wlr::send_offer(cx, id, event),
    }
}

/// Queues `event` on source `id` of `flavor` (a `send` moves its fd).
pub fn send_source(
    cx: &mut Ctx<'_>,
    flavor: Flavor,
    id: u32,
    event: SourceEvent<'_>,
) -> Result<(), Stop> {
    match flavor {
        Flavor::Ext => ext::send_source(cx, id, event),
        Flavor::Wlr => wlr::send_source(cx, id, event),
    }
}

/// The conversions of one flavor, from its protocol module and its four
/// interfaces (module and marker type each).
macro_rules! flavor {
    (
        $flavor:ident,
        $manager:ident,
        $device:ident :: $Device:ident,
        $source:ident :: $Source:ident,
        $offer:ident :: $Offer:ident $(,)?
    ) => {
        /// The conversions of one flavor (the module's name).
        mod $flavor {
            use waypass_protocol::protocols::data_control::$flavor::{
                $device::{self as device, $Device as Device},
                $manager as manager,
                $offer::{self as offer, $Offer as Offer},
                $source::{self as source, $Source as Source},
            };
            use waypass_protocol::{ArgsMismatch, Message, NewId, ObjectId, TypedMessage};

            use super::{
                DeviceEvent, DeviceRequest, ManagerRequest, OfferEvent, OfferRequest, SourceEvent,
                SourceRequest,
            };
            use crate::proto::ctx::{Ctx, Stop};

            pub fn manager(msg: Message<'_>) -> Result<ManagerRequest, ArgsMismatch> {
                Ok(match manager::Request::from_args(msg.opcode, msg.args)? {
                    manager::Request::CreateDataSource { id } => {
                        ManagerRequest::CreateDataSource { id: id.raw() }
                    }
                    manager::Request::GetDataDevice { id, seat } => {
                        ManagerRequest::GetDataDevice { id: id.raw(), seat }
                    }
                    manager::Request::Destroy => ManagerRequest::Destroy,
                })
            }

            pub fn device(msg: Message<'_>) -> Result<DeviceRequest, ArgsMismatch> {
                Ok(match device::Request::from_args(msg.opcode, msg.args)? {
                    device::Request::SetSelection { source } => DeviceRequest::SetSelection {
                        source: source.map(ObjectId::raw),
                    },
                    device::Request::SetPrimarySelection { source } => {
                        DeviceRequest::SetPrimarySelection {
                            source: source.map(ObjectId::raw),
                        }
                    }
                    device::Request::Destroy => DeviceRequest::Destroy,
                })
            }

            pub fn source(msg: Message<'_>) -> Result<SourceRequest<'_>, ArgsMismatch> {
                Ok(match source::Request::from_args(msg.opcode, msg.args)? {
                    source::Request::Offer { mime_type } => SourceRequest::Offer { mime_type },
                    source::Request::Destroy => SourceRequest::Destroy,
                })
            }

            pub fn offer(msg: Message<'_>) -> Result<OfferRequest<'_>, ArgsMismatch> {
                Ok(match offer::Request::from_args(msg.opcode, msg.args)? {
                    offer::Request::Receive { mime_type, fd } => {
                        OfferRequest::Receive { mime_type, fd }
                    }
                    offer::Request::Destroy => OfferRequest::Destroy,
                })
            }

            pub fn send_device(cx: &mut Ctx<'_>, id: u32, event: DeviceEvent) -> Result<(), Stop> {
                let object = ObjectId::<Device>::from_raw;
                let offer = |id: Option<u32>| id.and_then(ObjectId::<Offer>::new);
                cx.send(
                    object(id),
                    match event {
                        DeviceEvent::DataOffer { id } => device::Event::DataOffer {
                            id: NewId::from_raw(id),
                        },
                        DeviceEvent::Selection { id } => device::Event::Selection { id: offer(id) },
                        DeviceEvent::PrimarySelection { id } => {
                            device::Event::PrimarySelection { id: offer(id) }
                        }
                    },
                )
            }

            pub fn send_offer(
                cx: &mut Ctx<'_>,
                id: u32,
                event: OfferEvent<'_>,
            ) -> Result<(), Stop> {
                let id = ObjectId::<Offer>::from_raw(id);
                match event {
                    OfferEvent::Offer { mime_type } => {
                        cx.send(id, offer::Event::Offer { mime_type })
                    }
                }
            }

            pub fn send_source(
                cx: &mut Ctx<'_>,
                id: u32,
                event: SourceEvent<'_>,
            ) -> Result<(), Stop> {
                let id = ObjectId::<Source>::from_raw(id);
                match event {
                    SourceEvent::Send { mime_type, fd } => {
                        cx.send_owned(id, source::Event::Send { mime_type, fd })
                    }
                    SourceEvent::Cancelled => cx.send(id, source::Event::Cancelled),
                }
            }
        }
    };
}

flavor!(
    ext,
    ext_data_control_manager_v1,
    ext_data_control_device_v1::ExtDataControlDeviceV1,
    ext_data_control_source_v1::ExtDataControlSourceV1,
    ext_data_control_offer_v1::ExtDataControlOfferV1,
);
flavor!(
    wlr,
    zwlr_data_control_manager_v1,
    zwlr_data_control_device_v1::ZwlrDataControlDeviceV1,
    zwlr_data_control_source_v1::ZwlrDataControlSourceV1,
    zwlr_data_control_offer_v1::ZwlrDataControlOfferV1,
);

#[cfg(test)]
mod tests {
    use waypass_protocol::protocols::data_control::{ext, wlr};
    use waypass_protocol::{Recv, TypedMessage};

    use super::*;
    use crate::proto::testing::Fixture;
    use crate::state::Object;

    /// A decoded message of `request`, as dispatch receives it.
    fn message<'a, R: TypedMessage<'a, OwnedFd>>(request: R) -> Message<'a> {
        let (opcode, args) = request.into_args();
        Message {
            sender: 5,
            opcode,
            args: args.into(),
        }
    }

    #[test]
    fn both_flavors_parse_into_the_same_requests() {
        use ext::ext_data_control_device_v1 as ext_device;
        use wlr::zwlr_data_control_device_v1 as wlr_device;
        let source = ObjectId::new(7);
        let ext = message(ext_device::Request::SetPrimarySelection { source });
        let wlr = message(wlr_device::Request::SetSelection { source: None });
        let ext = device(Flavor::Ext, ext).unwrap();
        let wlr = device(Flavor::Wlr, wlr).unwrap();
        assert!(matches!(
            ext,
            DeviceRequest::SetPrimarySelection { source: Some(7) }
        ));
        assert!(matches!(wlr, DeviceRequest::SetSelection { source: None }));

        use wlr::zwlr_data_control_offer_v1 as wlr_offer;
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let receive = wlr_offer::Request::Receive {
            mime_type: c"text/plain",
            fd: write_end,
        };
        match offer(Flavor::Wlr, message(receive)).unwrap() {
            OfferRequest::Receive { mime_type, fd } => {
                assert_eq!(mime_type, c"text/plain");
                drop((fd, read_end));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_go_out_as_their_flavor_at_its_versions() {
        let mut fx = Fixture::new();
        let (key, mut peer) = fx.client();
        // Version 1 of both: wlr has primary selection only from 2.
        for (id, flavor) in [(2, Flavor::Ext), (3, Flavor::Wlr)] {
            let device = Object::DataDevice { flavor, version: 1 };
            fx.get(key).objects.insert_at(id, device).unwrap();
        }
        fx.with(key, |cx| {
            let primary = DeviceEvent::PrimarySelection { id: None };
            send_device(cx, Flavor::Ext, 2, primary).unwrap();
            assert!(send_device(cx, Flavor::Wlr, 3, primary).is_err());
            let regular = DeviceEvent::Selection { id: None };
            send_device(cx, Flavor::Wlr, 3, regular).unwrap();
        });
        fx.get(key).conn.flush().unwrap();
        assert!(matches!(peer.recv().unwrap(), Recv::Data(_)));
        let mut got = Vec::new();
        while let Some(msg) = peer
            .next_message(|h| {
                let device = match h.sender {
                    2 => &ext::ext_data_control_device_v1::INTERFACE,
                    _ => &wlr::zwlr_data_control_device_v1::INTERFACE,
                };
                device.events.get(usize::from(h.opcode)).ok_or("opcode")
            })
            .unwrap()
        {
            got.push(match msg.sender {
                2 => format!(
                    "ext {:?}",
                    ext::ext_data_control_device_v1::Event::from_args(msg.opcode, msg.args)
                ),
                id => format!(
                    "wlr@{id} {:?}",
                    wlr::zwlr_data_control_device_v1::Event::from_args(msg.opcode, msg.args)
                ),
            });
        }
        assert_eq!(
            got,
            [
                "ext Ok(PrimarySelection { id: None })",
                "wlr@3 Ok(Selection { id: None })"
            ]
        );
    }
}
