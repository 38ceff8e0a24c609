//! The typed messages the scanner generates agree with the tables and the
//! codec, for every message of every interface waypass-protocol
//! describes.
//!
//! For each request and event it builds positional args with a distinct
//! value per argument (a distinct file per fd), encodes them, decodes the
//! bytes, turns the args into the typed message and back with both
//! `with_args` and `into_args`, and checks that the bytes and fds are the
//! same; once with every nullable argument set, once with it null. Then it
//! checks, on typed values written by hand, what a user sees: an
//! untyped new id (`wl_registry.bind`), nullable strings and objects,
//! an enum value the XML does not name, a bitfield's `Debug`, an fd, and
//! that a `match` needs no arm for the hidden variant.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use waypass_protocol::protocols::{self, broker, data_control, wayland};
use waypass_protocol::wire::{self, Arg};
use waypass_protocol::{
    AnyNewId, ArgKind, Fixed, InterfaceType, MessageDesc, NewId, ObjectId, TypedMessage,
};

/// `(st_dev, st_ino)`: how fds are compared.
fn file_id(fd: BorrowedFd<'_>) -> (u64, u64) {
    let file = std::fs::File::from(fd.try_clone_to_owned().expect("dup"));
    let meta = file.metadata().expect("fstat");
    (meta.dev(), meta.ino())
}

/// The bytes a message's args encode to, and the files of its fds.
fn encode(
    sender: u32,
    opcode: u16,
    desc: &MessageDesc,
    args: &[Arg<'_, BorrowedFd<'_>>],
) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut buf = [0u8; wire::MAX_MESSAGE_SIZE];
    let n = wire::encode(sender, opcode, desc, args, &mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", desc.name));
    let files = args
        .iter()
        .filter_map(|a| match a {
            Arg::Fd(fd) => Some(file_id(*fd)),
            _ => None,
        })
        .collect();
    (buf[..n].to_vec(), files)
}

fn borrow<'x>(arg: &'x Arg<'x, OwnedFd>) -> Arg<'x, BorrowedFd<'x>> {
    match arg {
        Arg::Int(v) => Arg::Int(*v),
        Arg::Uint(v) => Arg::Uint(*v),
        Arg::Fixed(v) => Arg::Fixed(*v),
        Arg::Str(v) => Arg::Str(*v),
        Arg::Object(v) => Arg::Object(*v),
        Arg::NewId(v) => Arg::NewId(*v),
        Arg::Array(v) => Arg::Array(v),
        Arg::Fd(fd) => Arg::Fd(fd.as_fd()),
    }
}

/// Decodes `bytes` (with `fds`) into `M`, then checks that `with_args`
/// and `into_args` give back the same bytes and files.
fn check_message<'b, M: TypedMessage<'b, OwnedFd>>(
    opcode: u16,
    bytes: &'b [u8],
    files: &[(u64, u64)],
    fds: Vec<OwnedFd>,
) {
    let desc = &M::messages()[usize::from(opcode)];
    let what = format!("{}.{}", M::INTERFACE.name, desc.name);
    let (header, message) = wire::split_message(bytes).unwrap().unwrap();
    let decoded = wire::decode(header, message, desc, &mut VecDeque::from(fds)).unwrap();
    let typed = M::from_args(decoded.opcode, decoded.args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(typed.opcode(), opcode, "{what}");
    assert!(std::ptr::eq(typed.desc(), desc), "{what}");
    assert_eq!(
        (typed.name(), typed.since(), typed.is_destructor()),
        (desc.name, desc.since, desc.destructor)
    );

    let again = typed.with_args(|op, args| encode(header.sender, op, desc, args));
    assert_eq!(again, (bytes.to_vec(), files.to_vec()), "{what}: with_args");

    let (op, owned) = typed.into_args();
    let borrowed: Vec<_> = owned.iter().map(borrow).collect();
    let moved = encode(header.sender, op, desc, &borrowed);
    assert_eq!(moved, (bytes.to_vec(), files.to_vec()), "{what}: into_args");
}

/// Positional args for `desc`, a distinct value per argument; nullable
/// ones null when `null`. The strings, arrays and fds live in `store`.
struct Store {
    strings: Vec<CString>,
    arrays: Vec<Vec<u8>>,
    files: Vec<OwnedFd>,
}

impl Store {
    fn new(desc: &MessageDesc) -> Self {
        let n = desc.args.len();
        Store {
            strings: (0..n)
                .map(|i| CString::new(format!("s{i}")).unwrap())
                .collect(),
            arrays: (0..n).map(|i| vec![i as u8; i + 1]).collect(),
            files: (0..desc.fd_count())
                .map(|_| tempfile::tempfile().expect("tempfile").into())
                .collect(),
        }
    }

    fn args(&self, desc: &MessageDesc, null: bool) -> Vec<Arg<'_, BorrowedFd<'_>>> {
        let mut fds = self.files.iter();
        let i32_of = |i: usize| i32::try_from(i).unwrap();
        desc.args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let null = null && a.nullable;
                let n = u32::try_from(i).unwrap();
                match a.kind {
                    ArgKind::Int => Arg::Int(-100 - i32_of(i)),
                    ArgKind::Uint => Arg::Uint(1000 + n),
                    ArgKind::Fixed => Arg::Fixed(Fixed(300 + i32_of(i))),
                    ArgKind::String if null => Arg::Str(None),
                    ArgKind::String => Arg::Str(Some(&self.strings[i])),
                    ArgKind::Object if null => Arg::Object(0),
                    ArgKind::Object => Arg::Object(100 + n),
                    ArgKind::NewId => Arg::NewId(200 + n),
                    ArgKind::Array => Arg::Array(&self.arrays[i]),
                    ArgKind::Fd => Arg::Fd(fds.next().expect("one file per fd").as_fd()),
                }
            })
            .collect()
    }
}

/// Every request and event of `I`, both ways; returns how many messages.
fn check_interface<I: InterfaceType>() -> usize {
    let iface = I::INTERFACE;
    for null in [false, true] {
        for (opcode, desc) in iface.requests.iter().enumerate() {
            let opcode = u16::try_from(opcode).unwrap();
            let store = Store::new(desc);
            let (bytes, files) = encode(7, opcode, desc, &store.args(desc, null));
            let fds = store.files.iter().map(|f| f.try_clone().unwrap()).collect();
            check_message::<I::Request<'_, OwnedFd>>(opcode, &bytes, &files, fds);
        }
        for (opcode, desc) in iface.events.iter().enumerate() {
            let opcode = u16::try_from(opcode).unwrap();
            let store = Store::new(desc);
            let (bytes, files) = encode(7, opcode, desc, &store.args(desc, null));
            let fds = store.files.iter().map(|f| f.try_clone().unwrap()).collect();
            check_message::<I::Event<'_, OwnedFd>>(opcode, &bytes, &files, fds);
        }
    }
    iface.requests.len() + iface.events.len()
}

#[test]
fn every_message_of_every_interface_round_trips() {
    use broker::*;
    use data_control::{ext::*, wlr::*};
    use wayland::*;
    let mut checked = Vec::new();
    let mut messages = 0;
    macro_rules! check {
        ($($module:ident::$marker:ident),* $(,)?) => {$(
            messages += check_interface::<$module::$marker>();
            checked.push(<$module::$marker as InterfaceType>::INTERFACE);
        )*};
    }
    check!(
        wl_display::WlDisplay,
        wl_registry::WlRegistry,
        wl_callback::WlCallback,
        wl_seat::WlSeat,
        wl_keyboard::WlKeyboard,
        wl_pointer::WlPointer,
        wl_touch::WlTouch,
        waypass_broker_v1::WaypassBrokerV1,
        waypass_name_v1::WaypassNameV1,
        waypass_connection_v1::WaypassConnectionV1,
        waypass_peer_v1::WaypassPeerV1,
        ext_data_control_manager_v1::ExtDataControlManagerV1,
        ext_data_control_device_v1::ExtDataControlDeviceV1,
        ext_data_control_source_v1::ExtDataControlSourceV1,
        ext_data_control_offer_v1::ExtDataControlOfferV1,
        zwlr_data_control_manager_v1::ZwlrDataControlManagerV1,
        zwlr_data_control_device_v1::ZwlrDataControlDeviceV1,
        zwlr_data_control_source_v1::ZwlrDataControlSourceV1,
        zwlr_data_control_offer_v1::ZwlrDataControlOfferV1,
    );
    // Every interface of the crate, and nothing twice.
    assert_eq!(checked.len(), protocols::ALL.len());
    for iface in protocols::ALL {
        assert!(
            checked.iter().any(|c| std::ptr::eq(*c, *iface)),
            "{}",
            iface.name
        );
    }
    assert!(messages > 60, "{messages} messages");
}

/// Typed → `with_args` → bytes → typed again, for a message without fds.
fn round_trip<'b, M: TypedMessage<'b, OwnedFd>>(msg: &M, buf: &'b mut Vec<u8>) -> M {
    *buf = msg
        .with_args(|opcode, args| encode(3, opcode, msg.desc(), args))
        .0;
    let (header, message) = wire::split_message(buf).unwrap().unwrap();
    let decoded = wire::decode(header, message, msg.desc(), &mut VecDeque::new()).unwrap();
    M::from_args(decoded.opcode, decoded.args).unwrap()
}

fn debug(v: &impl std::fmt::Debug) -> String {
    format!("{v:?}")
}

#[test]
fn bind_carries_an_untyped_new_id() {
    use wayland::{wl_registry, wl_seat};
    let bind: wl_registry::Request<'_> = wl_registry::Request::Bind {
        name: 4,
        id: AnyNewId {
            interface: c"wl_seat",
            version: 9,
            id: 12,
        },
    };
    let mut buf = Vec::new();
    let back = round_trip(&bind, &mut buf);
    assert_eq!(debug(&back), debug(&bind));
    let wl_registry::Request::Bind { name, id } = back;
    assert_eq!((name, id.interface, id.version), (4, c"wl_seat", 9));
    assert_eq!(id.typed::<wl_seat::WlSeat>().map(NewId::raw), Some(12));
}

#[test]
fn nullable_strings_and_objects() {
    use broker::waypass_name_v1;
    use data_control::ext::{ext_data_control_device_v1 as device, ext_data_control_offer_v1};
    for id in [None, ObjectId::new(40)] {
        let selection: device::Event<'_> = device::Event::Selection { id };
        let mut buf = Vec::new();
        let back = round_trip(&selection, &mut buf);
        let device::Event::Selection { id: back_id } = back else {
            panic!("{back:?}");
        };
        assert_eq!(back_id, id);
    }
    let offer: ObjectId<ext_data_control_offer_v1::ExtDataControlOfferV1> = ObjectId::from_raw(40);
    assert_eq!(debug(&offer), "ext_data_control_offer_v1@40");

    let file: OwnedFd = tempfile::tempfile().unwrap().into();
    for peer_name in [None, Some(c"alice")] {
        let peer: waypass_name_v1::Event<'_, BorrowedFd<'_>> = waypass_name_v1::Event::Peer {
            fd: file.as_fd(),
            peer_name,
            pid: 7,
            uid: 1000,
            gid: 100,
        };
        let (bytes, _) = peer.with_args(|op, args| encode(3, op, peer.desc(), args));
        let (header, message) = wire::split_message(&bytes).unwrap().unwrap();
        let mut fds = VecDeque::from([file.try_clone().unwrap()]);
        let decoded = wire::decode(header, message, peer.desc(), &mut fds).unwrap();
        let back =
            waypass_name_v1::Event::<OwnedFd>::from_args(header.opcode, decoded.args).unwrap();
        let waypass_name_v1::Event::Peer {
            fd,
            peer_name: name,
            pid,
            ..
        } = back
        else {
            panic!("{back:?}");
        };
        assert_eq!((name, pid), (peer_name, 7));
        assert_eq!(file_id(fd.as_fd()), file_id(file.as_fd()));
    }
}

#[test]
fn an_enum_value_the_xml_does_not_name_is_kept() {
    use broker::{waypass_broker_v1::Failure, waypass_name_v1};
    use wayland::wl_keyboard::{self, KeyState};
    assert_eq!(KeyState::from(1), KeyState::Pressed);
    assert_eq!(KeyState::from(42), KeyState::Unknown(42));
    assert_eq!(u32::from(KeyState::Unknown(42)), 42);
    let key: wl_keyboard::Event<'_> = wl_keyboard::Event::Key {
        serial: 1,
        time: 2,
        key: 30,
        state: KeyState::Unknown(42),
    };
    let mut buf = Vec::new();
    let back = round_trip(&key, &mut buf);
    assert!(matches!(
        back,
        wl_keyboard::Event::Key {
            state: KeyState::Unknown(42),
            ..
        }
    ));

    // An enum of another interface (`waypass_broker_v1.failure`).
    let failed: waypass_name_v1::Event<'_> = waypass_name_v1::Event::Failed {
        reason: Failure::from(broker::waypass_broker_v1::failure::NAME_TAKEN),
    };
    let back = round_trip(&failed, &mut buf);
    assert!(matches!(
        back,
        waypass_name_v1::Event::Failed {
            reason: Failure::NameTaken
        }
    ));
}

#[test]
fn bitfields_print_their_flags() {
    use wayland::wl_seat::{self, Capability};
    let both = Capability::POINTER | Capability::KEYBOARD;
    assert_eq!(debug(&both), "Capability(POINTER | KEYBOARD)");
    let odd = Capability::KEYBOARD | Capability::from_bits_retain(0x10);
    assert_eq!(debug(&odd), "Capability(KEYBOARD | 0x10)");
    assert_eq!(debug(&Capability::default()), "Capability(0x0)");
    assert!(both.contains(Capability::KEYBOARD) && !both.contains(Capability::TOUCH));
    assert!((both & Capability::TOUCH).is_empty());
    let mut all = both;
    all |= Capability::TOUCH;
    assert_eq!(all.bits(), 7);
    assert_eq!(
        u32::from(all),
        wl_seat::capability::POINTER | wl_seat::capability::KEYBOARD | wl_seat::capability::TOUCH
    );

    let caps: wl_seat::Event<'_> = wl_seat::Event::Capabilities { capabilities: odd };
    let mut buf = Vec::new();
    let back = round_trip(&caps, &mut buf);
    assert_eq!(
        debug(&back),
        "Capabilities { capabilities: Capability(KEYBOARD | 0x10) }"
    );
}

#[test]
fn a_keymap_fd_is_borrowed_to_send_and_owned_once_received() {
    use wayland::wl_keyboard::{self, KeymapFormat};
    let file: OwnedFd = tempfile::tempfile().unwrap().into();
    let keymap = wl_keyboard::Event::Keymap {
        format: KeymapFormat::XkbV1,
        fd: file.as_fd(),
        size: 64,
    };
    let (bytes, files) = keymap.with_args(|op, args| encode(3, op, keymap.desc(), args));
    assert_eq!(files, [file_id(file.as_fd())]);
    let (header, message) = wire::split_message(&bytes).unwrap().unwrap();
    let mut fds = VecDeque::from([file.try_clone().unwrap()]);
    let decoded = wire::decode(header, message, keymap.desc(), &mut fds).unwrap();
    let back = wl_keyboard::Event::<OwnedFd>::from_args(header.opcode, decoded.args).unwrap();
    let wl_keyboard::Event::Keymap { format, fd, size } = back else {
        panic!("{back:?}");
    };
    assert_eq!((format, size), (KeymapFormat::XkbV1, 64));
    assert_eq!(file_id(fd.as_fd()), file_id(file.as_fd()));
}

#[test]
fn since_constants_and_typed_ids() {
    use wayland::{wl_display, wl_pointer, wl_seat};
    assert_eq!(wl_seat::req::RELEASE_SINCE, 5);
    assert_eq!(wl_pointer::evt::AXIS_VALUE120_SINCE, 8);
    let release: wl_seat::Request<'_> = wl_seat::Request::Release;
    assert_eq!((release.since(), release.is_destructor()), (5, true));
    let sync: wl_display::Request<'_> = wl_display::Request::Sync {
        callback: NewId::from_raw(3),
    };
    assert_eq!(debug(&sync), "Sync { callback: new id wl_callback@3 }");
}

/// Compiles only if an exhaustive `match` on a message (by value, as
/// `from_args` returns it) needs no arm for the hidden `__Unused` variant.
fn request_name(request: wayland::wl_display::Request<'_>) -> &'static str {
    use wayland::wl_display::Request;
    match request {
        Request::Sync { .. } => "sync",
        Request::GetRegistry { .. } => "get_registry",
    }
}

/// Through a reference, rustc (1.95) does not count the uninhabited
/// variant as empty: the arm the generated docs tell to write.
fn request_name_by_ref(request: &wayland::wl_display::Request<'_>) -> &'static str {
    use wayland::wl_display::Request;
    match request {
        Request::Sync { .. } => "sync",
        Request::GetRegistry { .. } => "get_registry",
        Request::__Unused(never, _) => match *never {},
    }
}

#[test]
fn a_match_needs_no_arm_for_the_hidden_variant() {
    let get = || wayland::wl_display::Request::GetRegistry {
        registry: NewId::from_raw(2),
    };
    assert_eq!(request_name_by_ref(&get()), "get_registry");
    assert_eq!(request_name(get()), "get_registry");
}

#[test]
fn enum_values_know_their_xml_names() {
    use broker::waypass_broker_v1::Failure;
    use wayland::wl_keyboard::KeymapFormat;
    assert_eq!(Failure::NameTaken.xml_name(), Some("name_taken"));
    assert_eq!(Failure::TooManyPending.xml_name(), Some("too_many_pending"));
    assert_eq!(Failure::Unknown(99).xml_name(), None);
    assert_eq!(KeymapFormat::XkbV1.xml_name(), Some("xkb_v1"));
    assert_eq!(KeymapFormat::from(0).xml_name(), Some("no_keymap"));
}
