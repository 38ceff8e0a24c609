//! `keymap --keys`: the evdev key codes the user asks about.
//!
//! What it is: [`parse_key_code`], the clap value parser of each code in
//! `--keys 16,17,21`, with errors that say what a key code is and where to
//! find one. What it is not: a table of key names; the summary labels the
//! default keys itself, and a keymap decides what each code produces.
//!
//! # Implementation notes
//!
//! Codes are Linux evdev codes, as `wl_keyboard.key` carries them, from 0
//! to `KEY_MAX` (`linux/input-event-codes.h`). A larger number cannot be
//! a key: it is refused here rather than reported as `NoSymbol`. A code in
//! range that the keymap does not define is the summary's business (it
//! says so).

/// The highest evdev key code, `KEY_MAX` in `linux/input-event-codes.h`.
pub(super) const KEY_MAX: u32 = 0x2ff;

/// Parses one evdev key code, 0 to [`KEY_MAX`].
pub(super) fn parse_key_code(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not an evdev key code: give numbers, e.g. 16 for the key \
             labelled Q on a US keyboard (linux/input-event-codes.h lists them as KEY_*)"
        ));
    }
    match text.parse::<u32>() {
        Ok(code) if code <= KEY_MAX => Ok(code),
        // Past KEY_MAX, or past u32.
        _ => Err(format!(
            "{text} is above {KEY_MAX} (KEY_MAX), the highest evdev key code"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_0_to_key_max_are_taken() {
        assert_eq!(parse_key_code("16"), Ok(16));
        assert_eq!(parse_key_code(" 2 "), Ok(2));
        assert_eq!(parse_key_code("0"), Ok(0));
        assert_eq!(parse_key_code("767"), Ok(KEY_MAX));
    }

    #[test]
    fn numbers_past_key_max_are_refused() {
        for text in ["768", "999", "99999999999999"] {
            let err = parse_key_code(text).unwrap_err();
            assert!(err.contains("the highest evdev key code"), "{err}");
        }
    }

    #[test]
    fn names_and_other_words_say_what_a_code_is() {
        for text in ["Q", "KEY_Q", "-1", "", "1.5"] {
            let err = parse_key_code(text).unwrap_err();
            assert!(err.contains("is not an evdev key code"), "{text}: {err}");
            assert!(!err.contains("invalid digit"), "{err}");
        }
    }
}
