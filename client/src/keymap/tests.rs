//! Unit tests of keymap checking, parsing and key queries, on keymaps
//! compiled in-process and passed through real memfds and files.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use xkbcommon::xkb;

use super::*;

/// The text xkbcommon compiles for `layout` (comma-separated), as a
/// compositor would send it (without the NUL).
pub(crate) fn keymap_text(layout: &str) -> String {
    let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
    let keymap = xkb::Keymap::new_from_names(
        &context,
        "evdev",
        "pc105",
        layout,
        "",
        Some(String::new()),
        xkb::KEYMAP_COMPILE_NO_FLAGS,
    )
    .expect("xkeyboard-config has this layout");
    keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1)
}

/// A memfd holding `bytes`, sealed SHRINK | GROW | WRITE | SEAL if `seal`.
pub(crate) fn memfd_with(bytes: &[u8], seal: bool) -> OwnedFd {
    let fd = memfd_create(
        c"waypass-client-test",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd_create");
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).expect("write memfd");
    let fd = OwnedFd::from(file);
    if seal {
        let seals = SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("add seals");
    }
    fd
}

/// `text` plus the terminating NUL, as `wl_keyboard.keymap` carries it.
fn with_nul(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

fn parse_bytes(
    bytes: &[u8],
    size: u64,
    options: ParseOptions,
) -> Result<ReceivedKeymap, FetchError> {
    let fd = memfd_with(bytes, true);
    ReceivedKeymap::from_fd(fd, FORMAT_XKB_V1, size, KeymapOrigin::default(), options)
}

fn plain(k: &ReceivedKeymap, evdev: u32) -> String {
    k.key(evdev, 0, Modifiers::NONE).expect("layout 0").keysym
}

#[test]
fn french_keys_and_layout_name() {
    let text = keymap_text("fr");
    let bytes = with_nul(&text);
    let k = parse_bytes(&bytes, bytes.len() as u64, ParseOptions::default()).expect("parse");
    assert_eq!(k.layouts(), ["French"]);
    assert_eq!(k.text(), text);
    assert_eq!(plain(&k, 16), "a");
    assert_eq!(plain(&k, 17), "z");
    assert_eq!(plain(&k, 30), "q");
    assert_eq!(plain(&k, 50), "comma");
    let one = k.key(2, 0, Modifiers::NONE).expect("layout 0");
    assert_eq!((one.keysym.as_str(), one.utf8.as_str()), ("ampersand", "&"));
    let shift_one = k.key(2, 0, Modifiers::SHIFT).expect("layout 0");
    assert_eq!(
        (shift_one.keysym.as_str(), shift_one.utf8.as_str()),
        ("1", "1")
    );
    let (min, max) = k.keycode_range();
    assert!(min >= 8 && max > min, "range {min}..{max}");
    assert!(k.fd_info().memfd);
    assert_eq!(k.size(), bytes.len() as u64);
}

#[test]
fn shift_gives_upper_case_and_non_ascii_utf8() {
    let bytes = with_nul(&keymap_text("de"));
    let k = parse_bytes(&bytes, bytes.len() as u64, ParseOptions::default()).expect("parse");
    let q = k.key(16, 0, Modifiers::SHIFT).expect("layout 0");
    assert_eq!((q.keysym.as_str(), q.utf8.as_str()), ("Q", "Q"));
    // German: the key right of P (evdev 26) is ü.
    let ue = k.key(26, 0, Modifiers::NONE).expect("layout 0");
    assert_eq!((ue.keysym.as_str(), ue.utf8.as_str()), ("udiaeresis", "ü"));
}

#[test]
fn second_layout_is_selected_by_index() {
    let bytes = with_nul(&keymap_text("us,fr"));
    let k = parse_bytes(&bytes, bytes.len() as u64, ParseOptions::default()).expect("parse");
    assert_eq!(k.layouts(), ["English (US)", "French"]);
    assert_eq!(k.key(16, 0, Modifiers::NONE).expect("us").keysym, "q");
    assert_eq!(k.key(16, 1, Modifiers::NONE).expect("fr").keysym, "a");
    assert_eq!(k.key(16, 2, Modifiers::NONE), None);
}

#[test]
fn trailing_nuls_are_cut() {
    let text = keymap_text("us");
    let mut bytes = with_nul(&text);
    bytes.extend_from_slice(&[0; 40]);
    let k = parse_bytes(&bytes, bytes.len() as u64, ParseOptions::default()).expect("parse");
    assert_eq!(k.text(), text);
    assert_eq!(k.size(), bytes.len() as u64);
}

#[test]
fn size_zero_or_beyond_the_file_is_refused() {
    let bytes = with_nul(&keymap_text("us"));
    let len = bytes.len() as u64;
    match parse_bytes(&bytes, 0, ParseOptions::default()) {
        Err(FetchError::BadSize { size, file_size }) => assert_eq!((size, file_size), (0, len)),
        other => panic!("expected BadSize, got {other:?}"),
    }
    match parse_bytes(&bytes, len + 1, ParseOptions::default()) {
        Err(FetchError::BadSize { size, file_size }) => {
            assert_eq!((size, file_size), (len + 1, len))
        }
        other => panic!("expected BadSize, got {other:?}"),
    }
}

#[test]
fn other_formats_and_garbage_are_refused() {
    let fd = memfd_with(b"whatever\0", true);
    let r = ReceivedKeymap::from_fd(fd, 0, 9, KeymapOrigin::default(), ParseOptions::default());
    assert!(matches!(r, Err(FetchError::UnsupportedFormat(0))), "{r:?}");
    let garbage = b"xkb_keymap { nonsense\0";
    let r = parse_bytes(garbage, garbage.len() as u64, ParseOptions::default());
    assert!(matches!(r, Err(FetchError::Parse)), "{r:?}");
    let r = parse_bytes(b"\xff\xfe\0", 3, ParseOptions::default());
    assert!(matches!(r, Err(FetchError::NotUtf8(_))), "{r:?}");
}

#[test]
fn seals_are_reported_and_can_be_required() {
    let bytes = with_nul(&keymap_text("us"));
    let size = bytes.len() as u64;
    let strict = ParseOptions {
        require_seals: true,
    };
    let k = parse_bytes(&bytes, size, strict).expect("sealed memfd passes");
    let seals = k.fd_info().seals.expect("memfd supports seals");
    assert!(seals.contains(REQUIRED_SEALS) && seals.contains(Seals::SEAL));

    let unsealed = memfd_with(&bytes, false);
    let lax = ReceivedKeymap::from_fd(
        unsealed.try_clone().expect("dup"),
        FORMAT_XKB_V1,
        size,
        KeymapOrigin::default(),
        ParseOptions::default(),
    )
    .expect("unsealed is fine by default");
    assert_eq!(lax.fd_info().seals, Some(Seals(0)));
    let r = ReceivedKeymap::from_fd(
        unsealed,
        FORMAT_XKB_V1,
        size,
        KeymapOrigin::default(),
        strict,
    );
    assert!(
        matches!(
            r,
            Err(FetchError::SealsMissing {
                have: Some(Seals(0))
            })
        ),
        "{r:?}"
    );
}

#[test]
fn origin_is_kept() {
    let bytes = with_nul(&keymap_text("us"));
    let origin = KeymapOrigin {
        seat: Some("seat7".into()),
        repeat: Some(RepeatInfo {
            rate: 33,
            delay: 250,
        }),
    };
    let fd = memfd_with(&bytes, true);
    let k = ReceivedKeymap::from_fd(
        fd,
        1,
        bytes.len() as u64,
        origin.clone(),
        ParseOptions::default(),
    )
    .expect("parse");
    assert_eq!(k.seat_name(), Some("seat7"));
    assert_eq!(k.repeat(), origin.repeat);
}

#[test]
fn altgr_ctrl_and_combinations_give_their_levels() {
    let de = with_nul(&keymap_text("de"));
    let k = parse_bytes(&de, de.len() as u64, ParseOptions::default()).expect("parse");
    // German: AltGr+Q types @, AltGr+E the euro sign.
    let at = k.key(16, 0, Modifiers::ALT_GR).expect("layout 0");
    assert_eq!((at.keysym.as_str(), at.utf8.as_str()), ("at", "@"));
    let euro = k.key(18, 0, Modifiers::ALT_GR).expect("layout 0");
    assert_eq!(
        (euro.keysym.as_str(), euro.utf8.as_str()),
        ("EuroSign", "€")
    );

    let fr = with_nul(&keymap_text("fr"));
    let k = parse_bytes(&fr, fr.len() as u64, ParseOptions::default()).expect("parse");
    let euro = k.key(18, 0, Modifiers::MOD5).expect("layout 0");
    assert_eq!(
        (euro.keysym.as_str(), euro.utf8.as_str()),
        ("EuroSign", "€")
    );
    // French: AltGr+0 (evdev 11) is @, Shift+0 is 0.
    let at = k.key(11, 0, Modifiers::ALT_GR).expect("layout 0");
    assert_eq!(at.utf8, "@");
    assert_eq!(k.key(11, 0, Modifiers::SHIFT).expect("layout 0").utf8, "0");

    let us = with_nul(&keymap_text("us"));
    let k = parse_bytes(&us, us.len() as u64, ParseOptions::default()).expect("parse");
    // Ctrl+A: keysym a, text U+0001 (xkbcommon's control transformation).
    let ctrl_a = k.key(30, 0, Modifiers::CTRL).expect("layout 0");
    assert_eq!(
        (ctrl_a.keysym.as_str(), ctrl_a.utf8.as_str()),
        ("a", "\u{1}")
    );
    // Lock alone capitalises a letter; Lock + Shift cancel out.
    assert_eq!(k.key(30, 0, Modifiers::LOCK).expect("layout 0").utf8, "A");
    let both = Modifiers::LOCK | Modifiers::SHIFT;
    assert_eq!(k.key(30, 0, both).expect("layout 0").utf8, "a");
    // Each core modifier maps to one bit of this keymap.
    let all = Modifiers::SHIFT
        | Modifiers::LOCK
        | Modifiers::CTRL
        | Modifiers::MOD1
        | Modifiers::MOD2
        | Modifiers::MOD3
        | Modifiers::MOD4
        | Modifiers::MOD5;
    assert_eq!(all.mask(k.xkb_keymap()).count_ones(), 8);
    assert_eq!(Modifiers::NONE.mask(k.xkb_keymap()), 0);
}

/// A memfd holding `bytes` with exactly `seals` added.
fn memfd_sealed_with(bytes: &[u8], seals: SealFlag) -> OwnedFd {
    let fd = memfd_with(bytes, false);
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("add seals");
    fd
}

fn access_of(fd: OwnedFd, size: u64) -> KeymapAccess {
    ReceivedKeymap::from_fd(
        fd,
        FORMAT_XKB_V1,
        size,
        KeymapOrigin::default(),
        ParseOptions::default(),
    )
    .expect("parse")
    .access()
}

#[test]
fn only_a_file_sealed_against_shrinking_is_mapped() {
    let bytes = with_nul(&keymap_text("us"));
    let size = bytes.len() as u64;
    assert_eq!(
        access_of(memfd_with(&bytes, true), size),
        KeymapAccess::Mapped
    );
    let shrink = memfd_sealed_with(&bytes, SealFlag::F_SEAL_SHRINK);
    assert_eq!(access_of(shrink, size), KeymapAccess::Mapped);
    // Weston-like seals without SHRINK, or none: copied.
    let no_shrink = memfd_sealed_with(&bytes, SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE);
    assert_eq!(access_of(no_shrink, size), KeymapAccess::Copied);
    assert_eq!(
        access_of(memfd_with(&bytes, false), size),
        KeymapAccess::Copied
    );
    // A plain file (wlroots-like): not sealable, copied.
    let mut file = tempfile::tempfile().expect("temp file");
    std::io::Write::write_all(&mut file, &bytes).expect("write temp file");
    let k = ReceivedKeymap::from_fd(
        file.into(),
        FORMAT_XKB_V1,
        size,
        KeymapOrigin::default(),
        ParseOptions::default(),
    )
    .expect("parse");
    assert_eq!(
        (k.access(), k.fd_info().seals),
        (KeymapAccess::Copied, None)
    );
    assert_eq!(k.layouts(), ["English (US)"]);
}

#[test]
fn a_file_that_shrank_after_fstat_is_a_short_read() {
    let bytes = with_nul(&keymap_text("us"));
    let size = bytes.len() as u64;
    let fd = memfd_with(&bytes, false);
    let info = waypass_protocol::inspect_fd(fd.as_fd()).expect("inspect");
    // The server truncates between our fstat and our read.
    nix::unistd::ftruncate(&fd, 100).expect("truncate");
    match read::read_text(fd.as_fd(), size, &info) {
        Err(FetchError::ShortRead { size: s, read }) => assert_eq!((s, read), (size, 100)),
        other => panic!("expected ShortRead, got {other:?}"),
    }
    let text = FetchError::ShortRead { size, read: 100 }.to_string();
    assert!(text.contains("shrank"), "{text}");
}

#[test]
fn a_size_past_the_cap_is_refused_before_reading() {
    let fd = memfd_with(b"", false);
    let big = MAX_KEYMAP_SIZE + 1;
    nix::unistd::ftruncate(&fd, big as i64).expect("sparse file");
    match ReceivedKeymap::from_fd(
        fd,
        FORMAT_XKB_V1,
        big,
        KeymapOrigin::default(),
        ParseOptions::default(),
    ) {
        Err(FetchError::TooLarge { size, max }) => assert_eq!((size, max), (big, MAX_KEYMAP_SIZE)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn modifier_names_and_aliases() {
    for (name, mods) in [
        ("Shift", Modifiers::SHIFT),
        ("lock", Modifiers::LOCK),
        ("Control", Modifiers::CTRL),
        ("ctrl", Modifiers::CTRL),
        ("Mod1", Modifiers::MOD1),
        ("alt", Modifiers::ALT),
        ("Mod4", Modifiers::LOGO),
        ("AltGr", Modifiers::MOD5),
        ("Level3", Modifiers::ALT_GR),
    ] {
        assert_eq!(Modifiers::from_name(name), Some(mods), "{name}");
    }
    assert_eq!(Modifiers::from_name("Hyper"), None);
    assert_eq!(Modifiers::from_name(""), None);
    let mods = Modifiers::CTRL | Modifiers::SHIFT;
    assert_eq!(mods.names(), ["Shift", "Control"]);
    assert_eq!(format!("{mods:?}"), "Modifiers(Shift | Control)");
}

/// What a keymap reports besides the compiled keymap crosses threads.
#[test]
fn keymap_reports_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<KeymapOrigin>();
    send_sync::<FdInfo>();
    send_sync::<KeyOutput>();
    send_sync::<Modifiers>();
    send_sync::<KeymapAccess>();
    send_sync::<ParseOptions>();
    send_sync::<crate::FetchOptions>();
    send_sync::<crate::Deadline>();
}
