//! Checking XKB options (`--options`, `XKB_DEFAULT_OPTIONS`) against the
//! ones xkeyboard-config defines, before xkbcommon compiles them.
//!
//! What it is: [`check`], which refuses an option no rules file knows,
//! naming the file that lists the valid ones. xkbcommon itself ignores an
//! unknown option: `--options bogus:opt` compiled the default keymap and
//! said nothing. What it is not: a check of layouts, variants or models
//! (xkbcommon refuses those itself), nor of what an option does.
//!
//! # Implementation notes
//!
//! - **Two lists.** `rules/<rules>.lst` (xkb-data; `evdev.lst` by default)
//!   lists the options people choose from, in its `! option` section. The
//!   rules file `rules/<rules>` is what xkbcommon applies, and it has
//!   options the list does not name (`grp:shift_toggle`,
//!   `ctrl:ralt_rctrl`, ...), in the `option` column of its `! ... option
//!   ... = ...` sections. An option either of them names is accepted: the
//!   list alone would refuse options that work.
//! - **Where.** As xkbcommon looks for rules: `$XDG_CONFIG_HOME/xkb` (or
//!   `~/.config/xkb`), `~/.xkb`, `$XKB_CONFIG_EXTRA_PATH` (or `/etc/xkb`),
//!   then `$XKB_CONFIG_ROOT` (or `/usr/share/X11/xkb`). Every file found
//!   counts, so a user's own rules file adds its options; its `! include`
//!   lines are not followed (the system file is read anyway).
//! - **No file at all** (no xkb-data): a warning, and the options go to
//!   xkbcommon unchecked, as before.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The option names the rules files define, and the list to name in errors.
#[derive(Debug, Default)]
pub struct KnownOptions {
    names: HashSet<String>,
    /// The first `.lst` file read (else the first rules file).
    list: Option<PathBuf>,
}

impl KnownOptions {
    /// Reads `rules/<rules>.lst` and `rules/<rules>` under each of `dirs`;
    /// `None` when none of these files exists.
    pub fn read(dirs: &[PathBuf], rules: &str) -> Option<KnownOptions> {
        let mut known = KnownOptions::default();
        let mut rules_file = None;
        for dir in dirs {
            let lst = dir.join("rules").join(format!("{rules}.lst"));
            if let Ok(text) = fs::read_to_string(&lst) {
                known.names.extend(from_lst(&text).map(String::from));
                known.list.get_or_insert(lst);
            }
            let file = dir.join("rules").join(rules);
            if let Ok(text) = fs::read_to_string(&file) {
                known.names.extend(from_rules(&text).map(String::from));
                rules_file.get_or_insert(file);
            }
        }
        known.list = known.list.or(rules_file);
        known.list.is_some().then_some(known)
    }

    /// The file that lists the valid options.
    pub fn list(&self) -> &Path {
        self.list.as_deref().unwrap_or(Path::new("(none)"))
    }

    /// The first option of the comma-separated `options` that no file
    /// names (empty items, which xkbcommon skips, are skipped).
    pub fn first_unknown<'a>(&self, options: &'a str) -> Option<&'a str> {
        options
            .split(',')
            .map(str::trim)
            .find(|o| !o.is_empty() && !self.names.contains(*o))
    }
}

/// The directories xkbcommon searches for rules, in its order, from the
/// variables `env` looks up.
pub fn search_path(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = set("HOME");
    let mut dirs = Vec::new();
    match (set("XDG_CONFIG_HOME"), &home) {
        (Some(config), _) => dirs.push(config.join("xkb")),
        (None, Some(home)) => dirs.push(home.join(".config/xkb")),
        (None, None) => {}
    }
    if let Some(home) = &home {
        dirs.push(home.join(".xkb"));
    }
    dirs.push(set("XKB_CONFIG_EXTRA_PATH").unwrap_or_else(|| "/etc/xkb".into()));
    dirs.push(set("XKB_CONFIG_ROOT").unwrap_or_else(|| "/usr/share/X11/xkb".into()));
    dirs
}

/// The names in the `! option` section of a `.lst` file: the first word
/// of each line (group names such as `grp` included, harmlessly).
fn from_lst(text: &str) -> impl Iterator<Item = &str> {
    let mut in_options = false;
    text.lines().filter_map(move |line| {
        if let Some(header) = line.strip_prefix('!') {
            in_options = header.trim() == "option";
            return None;
        }
        in_options.then(|| line.split_whitespace().next()).flatten()
    })
}

/// The names in the `option` column of a rules file's sections, such as
/// `! option = symbols` or `! layout[1] option = symbols`.
fn from_rules(text: &str) -> impl Iterator<Item = &str> {
    let mut column = None;
    text.lines().filter_map(move |line| {
        let line = line.split("//").next().unwrap_or_default();
        if let Some(header) = line.strip_prefix('!') {
            // `! $group = a b c` and `! include FILE` have no option column.
            let (fields, _) = header.split_once('=').unwrap_or_default();
            column = fields.split_whitespace().position(|f| f == "option");
            return None;
        }
        let (matches, _) = line.split_once('=')?;
        matches.split_whitespace().nth(column?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LST: &str = "! model\n  pc105  Generic 105-key PC\n\n\
                       ! option\n  grp                  Switching to another layout\n\
                       \x20 grp:switch           Right Alt (while pressed)\n\
                       \x20 ctrl:nocaps          Caps Lock as Ctrl\n";

    const RULES: &str = "! $pcmodels = pc86 pc101\n\
                         ! layout\toption\t=\tsymbols\n  *\tlv3:ralt_alt\t= +level3(ralt_alt)\n\n\
                         ! option\t=\tsymbols\n  grp:shift_toggle\t=\t+group(shifts_toggle) // a comment\n\
                         ! model\t=\tgeometry\n  pc105\t=\tpc(pc105)\n";

    #[test]
    fn the_lst_file_gives_its_option_section() {
        let names: Vec<&str> = from_lst(LST).collect();
        assert_eq!(names, ["grp", "grp:switch", "ctrl:nocaps"]);
    }

    #[test]
    fn the_rules_file_gives_its_option_column() {
        let names: Vec<&str> = from_rules(RULES).collect();
        assert_eq!(names, ["lv3:ralt_alt", "grp:shift_toggle"]);
    }

    #[test]
    fn unknown_options_are_found_and_the_list_is_named() {
        let dir = tempfile::Builder::new()
            .prefix("wp-xkb-options-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("rules")).unwrap();
        fs::write(dir.path().join("rules/evdev.lst"), LST).unwrap();
        fs::write(dir.path().join("rules/evdev"), RULES).unwrap();
        let dirs = [dir.path().join("nothing-here"), dir.path().to_path_buf()];
        let known = KnownOptions::read(&dirs, "evdev").expect("files found");
        assert_eq!(known.list(), dir.path().join("rules/evdev.lst"));
        assert_eq!(known.first_unknown("ctrl:nocaps,,grp:shift_toggle"), None);
        assert_eq!(
            known.first_unknown("lv3:ralt_alt, bogus:opt"),
            Some("bogus:opt")
        );
        assert!(KnownOptions::read(&dirs, "no-such-rules").is_none());
    }

    #[test]
    fn the_search_path_is_xkbcommons() {
        let env = |name: &str| match name {
            "HOME" => Some("/home/u".to_string()),
            "XKB_CONFIG_ROOT" => Some("/opt/xkb".to_string()),
            _ => None,
        };
        let dirs: Vec<PathBuf> = search_path(env);
        let expected: Vec<PathBuf> = [
            "/home/u/.config/xkb",
            "/home/u/.xkb",
            "/etc/xkb",
            "/opt/xkb",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(dirs, expected);
    }
}
