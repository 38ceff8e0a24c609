//! Hand-written JSON output: a tiny value tree, a correct string escaper,
//! and the one-line JSON report of a received keymap.
//!
//! It only writes JSON (compact, one line, keys in insertion order); it
//! does not parse it. No serde: the output is small and fixed in shape.
//!
//! # Implementation notes
//!
//! Strings are escaped per RFC 8259: `"` and `\` are backslash-escaped,
//! control characters below U+0020 become `\n`, `\t`, ... or `\u00XX`, and
//! everything else, non-ASCII included, is written as UTF-8 as is.

use std::fmt::{self, Write};

use crate::keymap::{KeyOutput, Modifiers, ReceivedKeymap, FORMAT_XKB_V1};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys keep their order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn object<const N: usize>(pairs: [(&str, Json); N]) -> Json {
        Json::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }
}

impl fmt::Display for Json {
    /// Compact JSON on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(n) => write!(f, "{n}"),
            Json::Uint(n) => write!(f, "{n}"),
            Json::Str(s) => write_escaped(f, s),
            Json::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    item.fmt(f)?;
                }
                f.write_char(']')
            }
            Json::Object(pairs) => {
                f.write_char('{')?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_escaped(f, key)?;
                    f.write_char(':')?;
                    value.fmt(f)?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Writes `s` as a quoted, escaped JSON string.
pub fn write_escaped(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// `s` as a quoted, escaped JSON string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_escaped(&mut out, s).expect("writing to a String cannot fail");
    out
}

/// The version of the keymap report's schema, its `"version"` key
/// (documented in `docs/json.md`). It changes only when a field is removed
/// or changes meaning; new fields may appear within a version.
pub const KEYMAP_JSON_VERSION: u64 = 1;

/// The JSON report of `keymap`, with the keys `evdev_keys` at layout index
/// `layout` plain and with Shift:
///
/// `{"version":1,"seat":"seat0","repeat":{"rate":25,"delay":600},"format":"xkb_v1",
/// "size":66068,"fd":{"memfd":true,"sealable":true,"seals":["seal",...],
/// "dev":..,"ino":..,"file_size":..},"layouts":["French"],"layout_index":0,
/// "keycodes":{"min":8,"max":708},"keys":[{"evdev":16,"xkb":24,
/// "plain":{"keysym":"a","utf8":"a"},"shift":{...}}]}`
pub fn keymap_report(keymap: &ReceivedKeymap, evdev_keys: &[u32], layout: u32) -> Json {
    let repeat = match keymap.repeat() {
        Some(r) => Json::object([
            ("rate", Json::Int(r.rate.into())),
            ("delay", Json::Int(r.delay.into())),
        ]),
        None => Json::Null,
    };
    let format = if keymap.format() == FORMAT_XKB_V1 {
        Json::str("xkb_v1")
    } else {
        Json::Uint(keymap.format().into())
    };
    let fd = keymap.fd_info();
    let seals = fd.seals.map(|s| s.names()).unwrap_or_default();
    let fd = Json::object([
        ("memfd", Json::Bool(fd.memfd)),
        ("sealable", Json::Bool(fd.seals.is_some())),
        (
            "seals",
            Json::Array(seals.into_iter().map(Json::str).collect()),
        ),
        ("dev", Json::Uint(fd.dev)),
        ("ino", Json::Uint(fd.ino)),
        ("file_size", Json::Uint(fd.size)),
    ]);
    let (min, max) = keymap.keycode_range();
    let keys = evdev_keys
        .iter()
        .map(|&evdev| key_report(keymap, evdev, layout))
        .collect();
    Json::object([
        ("version", Json::Uint(KEYMAP_JSON_VERSION)),
        ("seat", keymap.seat_name().map_or(Json::Null, Json::str)),
        ("repeat", repeat),
        ("format", format),
        ("size", Json::Uint(keymap.size())),
        ("fd", fd),
        (
            "layouts",
            Json::Array(keymap.layouts().into_iter().map(Json::Str).collect()),
        ),
        ("layout_index", Json::Uint(layout.into())),
        (
            "keycodes",
            Json::object([
                ("min", Json::Uint(min.into())),
                ("max", Json::Uint(max.into())),
            ]),
        ),
        ("keys", Json::Array(keys)),
    ])
}

fn key_report(keymap: &ReceivedKeymap, evdev: u32, layout: u32) -> Json {
    let output = |mods| match keymap.key(evdev, layout, mods) {
        Some(KeyOutput { keysym, utf8 }) => {
            Json::object([("keysym", Json::Str(keysym)), ("utf8", Json::Str(utf8))])
        }
        None => Json::Null,
    };
    Json::object([
        ("evdev", Json::Uint(evdev.into())),
        ("xkb", Json::Uint(u64::from(evdev) + 8)),
        ("plain", output(Modifiers::NONE)),
        ("shift", output(Modifiers::SHIFT)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(escape(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(escape("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(escape("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
        assert_eq!(escape("/ \u{7f}"), "\"/ \u{7f}\"");
    }

    #[test]
    fn non_ascii_is_written_as_utf8() {
        assert_eq!(escape("é€😀"), "\"é€😀\"");
        assert_eq!(escape(""), "\"\"");
    }

    #[test]
    fn values_are_compact_and_ordered() {
        let v = Json::object([
            ("b", Json::Uint(1)),
            (
                "a",
                Json::Array(vec![Json::Null, Json::Bool(false), Json::Int(-3)]),
            ),
            ("k\"", Json::Object(vec![])),
        ]);
        assert_eq!(v.to_string(), r#"{"b":1,"a":[null,false,-3],"k\"":{}}"#);
    }
}
