//! What `keymap --json` prints: one JSON object per keymap, on one line
//! (the fields are documented in `docs/json.md`).
//!
//! What it is: [`KeymapReport`], the `Serialize` shape of the report,
//! built from a [`ReceivedKeymap`] and written by `serde_json`. What it is
//! not: the human summary (in `cli.rs`) or the `listen --json` lines
//! (`report.rs`).
//!
//! # Implementation notes
//!
//! Keys come in the order of the struct fields, `version` first. Strings
//! (layout and seat names, keysym text) are escaped by `serde_json`, per
//! RFC 8259; non-ASCII is written as UTF-8. A missing value (no seat
//! name, no repeat settings, a key with no symbol) is `null`.

use serde::Serialize;
use waypass_client::{KeyOutput, Modifiers, ReceivedKeymap, FORMAT_XKB_V1};

/// The version of the keymap report's schema, its `"version"` key. It
/// changes only when a field is removed or changes meaning; new fields may
/// appear within a version.
const KEYMAP_JSON_VERSION: u32 = 1;

/// One keymap, as `keymap --json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct KeymapReport {
    version: u32,
    seat: Option<String>,
    repeat: Option<Repeat>,
    format: Format,
    size: u64,
    fd: Fd,
    layouts: Vec<String>,
    layout_index: u32,
    keycodes: Keycodes,
    keys: Vec<Key>,
}

#[derive(Debug, Serialize)]
struct Repeat {
    rate: i32,
    delay: i32,
}

/// `"xkb_v1"`, or the number of a format we don't know.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Format {
    Named(&'static str),
    Code(u32),
}

#[derive(Debug, Serialize)]
struct Fd {
    memfd: bool,
    sealable: bool,
    seals: Vec<&'static str>,
    dev: u64,
    ino: u64,
    file_size: u64,
}

#[derive(Debug, Serialize)]
struct Keycodes {
    min: u32,
    max: u32,
}

#[derive(Debug, Serialize)]
struct Key {
    evdev: u32,
    xkb: u64,
    plain: Option<Symbol>,
    shift: Option<Symbol>,
}

#[derive(Debug, Serialize)]
struct Symbol {
    keysym: String,
    utf8: String,
}

impl KeymapReport {
    /// The report of `keymap`, with the keys `evdev_keys` at layout index
    /// `layout`, plain and with Shift.
    pub(super) fn new(keymap: &ReceivedKeymap, evdev_keys: &[u32], layout: u32) -> KeymapReport {
        let format = if keymap.format() == FORMAT_XKB_V1 {
            Format::Named("xkb_v1")
        } else {
            Format::Code(keymap.format())
        };
        let fd = keymap.fd_info();
        let (min, max) = keymap.keycode_range();
        KeymapReport {
            version: KEYMAP_JSON_VERSION,
            seat: keymap.seat_name().map(str::to_owned),
            repeat: keymap.repeat().map(|r| Repeat {
                rate: r.rate,
                delay: r.delay,
            }),
            format,
            size: keymap.size(),
            fd: Fd {
                memfd: fd.memfd,
                sealable: fd.seals.is_some(),
                seals: fd.seals.map(|s| s.names()).unwrap_or_default(),
                dev: fd.dev,
                ino: fd.ino,
                file_size: fd.size,
            },
            layouts: keymap.layouts(),
            layout_index: layout,
            keycodes: Keycodes { min, max },
            keys: evdev_keys
                .iter()
                .map(|&evdev| Key::new(keymap, evdev, layout))
                .collect(),
        }
    }

    /// The report as one line of compact JSON, without the newline.
    pub(super) fn to_line(&self) -> String {
        serde_json::to_string(self).expect("plain structs of strings and numbers serialize")
    }
}

impl Key {
    fn new(keymap: &ReceivedKeymap, evdev: u32, layout: u32) -> Key {
        let symbol = |mods| {
            keymap
                .key(evdev, layout, mods)
                .map(|KeyOutput { keysym, utf8 }| Symbol { keysym, utf8 })
        };
        Key {
            evdev,
            xkb: u64::from(evdev) + 8,
            plain: symbol(Modifiers::NONE),
            shift: symbol(Modifiers::SHIFT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_utf8_kept() {
        let symbol = Symbol {
            keysym: "a\"b\\c\n\u{1}".into(),
            utf8: "é€😀".into(),
        };
        assert_eq!(
            serde_json::to_string(&symbol).unwrap(),
            r#"{"keysym":"a\"b\\c\n\u0001","utf8":"é€😀"}"#
        );
    }

    #[test]
    fn an_unknown_format_is_its_number_and_missing_values_are_null() {
        let key = Key {
            evdev: 1,
            xkb: 9,
            plain: None,
            shift: None,
        };
        assert_eq!(
            serde_json::to_string(&(Format::Code(7), Format::Named("xkb_v1"), key)).unwrap(),
            r#"[7,"xkb_v1",{"evdev":1,"xkb":9,"plain":null,"shift":null}]"#
        );
    }
}
