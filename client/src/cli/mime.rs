//! MIME types as wl-clipboard 2.1 treats them: which types count as text,
//! which types a copy of text offers, and which offered type a paste asks
//! for (`--type text`, `--type image`, or none).
//!
//! What it is: pure functions over type names, shared by `copy` and
//! `paste`. What it is not: guessing a type from the data (`copy` tells
//! UTF-8 text from the rest, no more: wl-copy runs `xdg-mime` for that)
//! or from the name of the file stdout goes to (wl-paste looks that name
//! up in `/etc/mime.types`; we do not).

/// The types offered for UTF-8 text, as wl-copy offers them, the one a
/// paster prefers first.
pub(super) const TEXT_TYPES: &[&str] = &[
    "text/plain;charset=utf-8",
    "text/plain",
    "UTF8_STRING",
    "STRING",
    "TEXT",
];

const TEXT_PLAIN_UTF8: &str = "text/plain;charset=utf-8";
const TEXT_PLAIN: &str = "text/plain";

/// Whether wl-clipboard counts `mime` as text (its `mime_type_is_text`):
/// `text/*`, the X11 text atoms, JSON, scripts, XML, YAML, and keys.
pub(super) fn is_text(mime: &str) -> bool {
    let basic = mime.starts_with("text/") || matches!(mime, "TEXT" | "STRING" | "UTF8_STRING");
    let common = mime.contains("json")
        || mime.ends_with("script")
        || mime.ends_with("xml")
        || mime.ends_with("yaml");
    let special = mime.contains("application/vnd.ms-publisher") || mime.ends_with("pgp-keys");
    basic || common || special
}

/// The types a copy offers: `asked` first if given (then the text types
/// too when it is text, as wl-copy does), else the text types for UTF-8
/// text, else `application/octet-stream`.
pub(super) fn offered(asked: Option<&str>, utf8: bool) -> Vec<&str> {
    match asked {
        Some(t) if is_text(t) => std::iter::once(t)
            .chain(TEXT_TYPES.iter().copied().filter(|x| *x != t))
            .collect(),
        Some(t) => vec![t],
        None if utf8 => TEXT_TYPES.to_vec(),
        None => vec!["application/octet-stream"],
    }
}

/// The offered type a paste asks for, as wl-paste 2.1 picks it:
///
/// - no `asked`: `text/plain;charset=utf-8`, `text/plain`, the first text
///   type, the first type;
/// - `text`: the same, without falling back to a type that is not text;
/// - a type with a `/`, or starting with an upper-case letter
///   (`UTF8_STRING`): exactly that type;
/// - another word (`image`): that type, else the first type it prefixes
///   (`image/png`).
pub(super) fn choose<'t>(offered: &'t [String], asked: Option<&str>) -> Option<&'t str> {
    let exact = |want: &str| offered.iter().find(|t| *t == want);
    let text = || {
        exact(TEXT_PLAIN_UTF8)
            .or_else(|| exact(TEXT_PLAIN))
            .or_else(|| offered.iter().find(|t| is_text(t)))
    };
    let found = match asked {
        None => text().or_else(|| offered.first()),
        Some("text") => text(),
        Some(a) if a.contains('/') || a.starts_with(|c: char| c.is_ascii_uppercase()) => exact(a),
        Some(a) => exact(a).or_else(|| offered.iter().find(|t| t.starts_with(a))),
    };
    found.map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn text_is_what_wl_clipboard_calls_text() {
        for t in [
            "text/html",
            "UTF8_STRING",
            "application/json",
            "application/javascript",
        ] {
            assert!(is_text(t), "{t}");
        }
        for t in ["image/png", "application/octet-stream", "text"] {
            assert!(!is_text(t), "{t}");
        }
    }

    #[test]
    fn the_default_prefers_plain_text_then_any_text_then_the_first() {
        let html = types(&["image/png", "text/html", "text/plain"]);
        assert_eq!(choose(&html, None), Some("text/plain"));
        let no_plain = types(&["image/png", "text/html"]);
        assert_eq!(choose(&no_plain, None), Some("text/html"));
        assert_eq!(choose(&types(&["image/png"]), None), Some("image/png"));
        assert_eq!(choose(&[], None), None);
    }

    #[test]
    fn text_image_and_exact_names_pick_as_wl_paste_does() {
        let offered = types(&["image/png", "text/html", TEXT_PLAIN_UTF8]);
        assert_eq!(choose(&offered, Some("text")), Some(TEXT_PLAIN_UTF8));
        assert_eq!(choose(&types(&["image/png"]), Some("text")), None);
        assert_eq!(choose(&offered, Some("image")), Some("image/png"));
        assert_eq!(choose(&offered, Some("text/html")), Some("text/html"));
        assert_eq!(choose(&offered, Some("image/jpeg")), None);
        assert_eq!(
            choose(&types(&["UTF8_STRING_X"]), Some("UTF8_STRING")),
            None
        );
    }

    #[test]
    fn a_text_type_asked_for_brings_the_text_types_along_once() {
        assert_eq!(
            offered(Some("text/plain"), true),
            TEXT_TYPES_WITH_PLAIN_FIRST
        );
        assert_eq!(offered(Some("image/png"), false), ["image/png"]);
        assert_eq!(offered(None, false), ["application/octet-stream"]);
    }

    const TEXT_TYPES_WITH_PLAIN_FIRST: [&str; 5] = [
        "text/plain",
        "text/plain;charset=utf-8",
        "UTF8_STRING",
        "STRING",
        "TEXT",
    ];
}
