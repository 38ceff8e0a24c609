//! Unit tests of the save directory: names that fit, files that get a name
//! only once whole, never over an existing file, with `O_TMPFILE` and with
//! the hidden temporary used where it is missing.

use std::fs;
use std::io::Write;

use super::*;

/// A private directory (removed when the guard drops) and a save
/// directory inside it.
fn save_dir(label: &str) -> (tempfile::TempDir, SaveDir) {
    let parent = tempfile::Builder::new()
        .prefix(&format!("wp-savedir-{label}-"))
        .tempdir()
        .expect("temp dir");
    let dir = SaveDir::open(&parent.path().join("save")).expect("created");
    (parent, dir)
}

fn entries(dir: &SaveDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&dir.path)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write(file: &Unnamed<'_>, bytes: &[u8]) {
    let mut f = fs::File::from(file.fd().try_clone_to_owned().expect("dup"));
    f.write_all(bytes).expect("write");
}

#[test]
fn suffixes_fit_in_name_max() {
    assert_eq!(with_suffix("a.txt", 3), "a.txt.3");
    let long = "é".repeat(127) + "x"; // 255 bytes
    let cut = with_suffix(&long, 12);
    assert!(cut.len() <= NAME_MAX, "{}", cut.len());
    assert!(cut.ends_with(".12"));
}

#[test]
fn a_file_has_no_name_until_it_is_kept() {
    let (_parent, dir) = save_dir("tmpfile");
    let file = dir.create(Mode::from_bits_truncate(0o600)).expect("create");
    write(&file, b"whole");
    assert_eq!(
        entries(&dir),
        Vec::<String>::new(),
        "nameless while written"
    );
    let name = dir.keep(file, "a.txt").expect("kept");
    assert_eq!(name, "a.txt");
    assert_eq!(entries(&dir), ["a.txt"]);
    assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"whole");

    let dropped = dir.create(Mode::from_bits_truncate(0o600)).expect("create");
    write(&dropped, b"partial");
    drop(dropped);
    assert_eq!(entries(&dir), ["a.txt"], "a dropped file leaves nothing");
}

#[test]
fn an_existing_file_is_never_replaced() {
    for hidden in [false, true] {
        let (_parent, dir) = save_dir("noreplace");
        fs::write(dir.join("a.txt"), b"old").expect("existing");
        let mode = Mode::from_bits_truncate(0o600);
        let file = if hidden {
            dir.create_hidden(mode)
        } else {
            dir.create(mode)
        }
        .expect("create");
        write(&file, b"new");
        assert_eq!(dir.keep(file, "a.txt").expect("kept"), "a.txt.1");
        assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"old");
        assert_eq!(fs::read(dir.join("a.txt.1")).unwrap(), b"new");
        assert_eq!(entries(&dir), ["a.txt", "a.txt.1"], "hidden: {hidden}");
    }
}

#[test]
fn without_o_tmpfile_the_temporary_is_hidden_and_goes_on_drop() {
    let (_parent, dir) = save_dir("hidden");
    let file = dir
        .create_hidden(Mode::from_bits_truncate(0o600))
        .expect("create");
    write(&file, b"partial");
    let names = entries(&dir);
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with(".waypass-") && names[0].ends_with(".part"),
        "{names:?}"
    );
    drop(file);
    assert_eq!(entries(&dir), Vec::<String>::new());

    let file = dir
        .create_hidden(Mode::from_bits_truncate(0o600))
        .expect("create");
    write(&file, b"whole");
    assert_eq!(dir.keep(file, "b.bin").expect("kept"), "b.bin");
    assert_eq!(entries(&dir), ["b.bin"], "no temporary name left");
}

#[test]
fn a_name_taken_100_times_is_refused_before_and_after_writing() {
    let (_parent, dir) = save_dir("taken");
    for candidate in candidates("x") {
        fs::write(dir.join(&candidate), b"").expect("taken");
    }
    assert!(!dir.has_free_name("x"));
    assert!(dir.has_free_name("y"));
    let file = dir.create(Mode::from_bits_truncate(0o600)).expect("create");
    let err = dir.keep(file, "x").unwrap_err();
    assert!(matches!(err, SaveError::AllNamesTaken), "{err:?}");
    assert_eq!(entries(&dir).len(), 100);
}
