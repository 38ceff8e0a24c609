//! Unit tests of the keymap: the embedded one compiles, NULs, garbage, how
//! RMLVO names resolve, the `--keymap` file rules, and unknown options
//! refused against a rules directory made for the test.

use super::*;

#[test]
fn embedded_keymap_compiles() {
    let text = validate_text(EMBEDDED_US.into(), "embedded").expect("valid");
    assert!(text.starts_with("xkb_keymap"), "{}", &text[..20]);
}

#[test]
fn trailing_nuls_are_cut_interior_ones_refused() {
    let mut bytes = EMBEDDED_US.as_bytes().to_vec();
    bytes.extend_from_slice(&[0, 0, 0]);
    let text = validate_text(bytes, "x").expect("valid");
    assert_eq!(text, EMBEDDED_US.trim_end_matches('\0'));
    let r = validate_text(b"xkb_keymap {\0};".to_vec(), "x");
    assert!(matches!(r, Err(KeymapError::InteriorNul { .. })));
}

#[test]
fn garbage_does_not_compile_and_names_its_origin() {
    let err = validate_text(b"this is not a keymap".to_vec(), "keymap file /x").unwrap_err();
    assert!(matches!(err, KeymapError::Compile { .. }));
    assert!(err.to_string().contains("/x"), "{err}");
}

#[test]
fn resolved_names_say_where_each_field_comes_from() {
    let env = |name: &str| match name {
        "XKB_DEFAULT_LAYOUT" => Some("de".to_string()),
        "XKB_DEFAULT_VARIANT" => Some("nodeadkeys".to_string()),
        _ => None,
    };
    let names = RuleNames {
        model: Some("pc104".into()),
        ..RuleNames::default()
    };
    let [r, m, l, v, o] = names.resolved(env);
    assert_eq!(r, "(default)");
    assert_eq!(m, "pc104");
    assert_eq!(l, "de (XKB_DEFAULT_LAYOUT)");
    assert_eq!(v, "nodeadkeys (XKB_DEFAULT_VARIANT)");
    assert_eq!(o, "(default)");
    // A layout flag takes the variant with it.
    let names = RuleNames {
        layout: Some("fr".into()),
        options: Some(String::new()),
        ..RuleNames::default()
    };
    let [_, _, l, v, o] = names.resolved(env);
    assert_eq!(
        (l.as_str(), v.as_str(), o.as_str()),
        ("fr", "(none)", "(none)")
    );
}

#[test]
fn only_regular_files_under_the_cap_are_read() {
    let err = read_file(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(err, KeymapError::NotARegularFile { .. }), "{err}");
    let err = read_file(Path::new("/")).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    let path = std::env::temp_dir().join(format!("wp-keymap-cap-{}", std::process::id()));
    let file = File::create(&path).unwrap();
    file.set_len(MAX_KEYMAP_FILE).unwrap();
    assert_eq!(read_file(&path).unwrap().len() as u64, MAX_KEYMAP_FILE);
    file.set_len(MAX_KEYMAP_FILE + 1).unwrap();
    let err = read_file(&path).unwrap_err();
    assert!(matches!(err, KeymapError::TooLarge { .. }), "{err}");
    std::fs::remove_file(&path).unwrap();
}

/// An XKB root with `rules/evdev.lst` and `rules/evdev` listing a few
/// options, and the environment xkbcommon would see with it.
struct XkbRoot {
    dir: tempfile::TempDir,
}

impl XkbRoot {
    fn new() -> XkbRoot {
        let dir = tempfile::Builder::new()
            .prefix("wp-xkb-root-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("rules/evdev.lst"),
            "! option\n  ctrl:nocaps  Caps Lock as Ctrl\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("rules/evdev"),
            "! option = symbols\n  grp:shift_toggle = +group(shifts_toggle)\n",
        )
        .unwrap();
        XkbRoot { dir }
    }

    /// The variables: this root, no home, and `extra` on top.
    fn env<'a>(&'a self, extra: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            if let Some((_, v)) = extra.iter().find(|(n, _)| *n == name) {
                return Some(v.to_string());
            }
            match name {
                "XKB_CONFIG_ROOT" => Some(self.dir.path().display().to_string()),
                "XKB_CONFIG_EXTRA_PATH" => Some("/nonexistent-wp".into()),
                _ => None,
            }
        }
    }
}

fn with_options(options: &str) -> RuleNames {
    RuleNames {
        options: Some(options.into()),
        ..RuleNames::default()
    }
}

#[test]
fn options_the_rules_define_pass() {
    let root = XkbRoot::new();
    let env = root.env(&[]);
    check_options(&with_options("ctrl:nocaps,grp:shift_toggle"), &env).expect("known");
    check_options(&with_options(""), &env).expect("no options");
    check_options(&RuleNames::default(), &env).expect("no options at all");
}

#[test]
fn an_unknown_option_is_refused_naming_the_list() {
    let root = XkbRoot::new();
    let env = root.env(&[]);
    let err = check_options(&with_options("ctrl:nocaps,bogus:opt"), &env).unwrap_err();
    let list = root.dir.path().join("rules/evdev.lst");
    assert!(
        matches!(&err, KeymapError::UnknownOption { option, list: l } if option == "bogus:opt" && l == &list),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "unknown XKB option \"bogus:opt\": {} lists the valid ones",
            list.display()
        )),
        "{err}"
    );
    // From XKB_DEFAULT_OPTIONS too, when no flag is given.
    let env = root.env(&[("XKB_DEFAULT_OPTIONS", "bogus:opt")]);
    let err = check_options(&RuleNames::default(), &env).unwrap_err();
    assert!(matches!(err, KeymapError::UnknownOption { .. }), "{err:?}");
}

#[test]
fn without_rules_files_options_pass_unchecked() {
    let root = XkbRoot::new();
    // Rules of another name: no file to check against.
    let env = root.env(&[("XKB_DEFAULT_RULES", "custom")]);
    check_options(&with_options("bogus:opt"), &env).expect("unchecked");
}
