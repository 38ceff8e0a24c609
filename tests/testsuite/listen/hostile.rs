//! `waypass-client listen` against hostile peers: a real server, a real
//! listener, and peers built from the client library that send what
//! `send` never would. After each
//! attack the listener must still be running, still own its name, and
//! answer the next peer; every refused offer is answered with a reason.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, ExitStatus};

use super::support::{answer, listen, listen_with, peer, say, Answer, Running};
use nix::fcntl::{open, OFlag};
use nix::sys::memfd::MFdFlags;
use nix::sys::stat::Mode;
use waypass_test_support::{bin, Server, TempDir};

/// Whether a second peer still gets through: the name is still ours.
fn still_serving(server: &Server) {
    let (_b, mut p) = peer(server);
    assert_eq!(say(&mut p.channel, "still there?"), Answer::Acked);
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn refused(a: Answer, what: &str) -> String {
    match a {
        Answer::Refused(reason) => reason,
        Answer::Acked => panic!("{what} was accepted"),
    }
}

#[test]
fn a_255_byte_name_offered_twice_is_saved_twice() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let listener = listen(&server, &["--save-dir", inbox.path().to_str().unwrap()]);
    let (_b, mut p) = peer(&server);
    let name = "n".repeat(255);
    for _ in 0..2 {
        let s = p.channel.send_snapshot(&name, b"x").expect("offer");
        assert_eq!(answer(&mut p.channel, s), Answer::Acked);
    }
    let saved = files_in(inbox.path());
    assert_eq!(saved.len(), 2, "{saved:?}");
    assert!(saved.iter().all(|n| n.len() <= 255));
    still_serving(&server);
    listener.kill();
}

#[test]
fn a_thousand_offers_of_one_name_are_bounded_and_answered() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let listener = listen(&server, &["--save-dir", inbox.path().to_str().unwrap()]);
    let (_b, mut p) = peer(&server);
    let (mut acked, mut refusals) = (0, Vec::new());
    for _ in 0..1001 {
        let s = p.channel.send_snapshot("same.txt", b"x").expect("offer");
        match answer(&mut p.channel, s) {
            Answer::Acked => acked += 1,
            Answer::Refused(r) => refusals.push(r),
        }
    }
    assert_eq!(acked, 100, "name, name.1 ... name.99");
    assert_eq!(refusals.len(), 901);
    assert!(refusals[0].contains("already saved"), "{}", refusals[0]);
    assert_eq!(files_in(inbox.path()).len(), 100);
    still_serving(&server);
    listener.kill();
}

#[test]
fn a_file_size_limit_refuses_the_file_and_removes_the_partial_copy() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    // RLIMIT_FSIZE of 64 KiB: writing past it is SIGXFSZ, or EFBIG.
    let listener = listen_with(
        &server,
        &["prlimit", "--fsize=65536", "--"],
        &["--save-dir", inbox.path().to_str().unwrap()],
    );
    let (_b, mut p) = peer(&server);
    let s = p
        .channel
        .send_snapshot("big.bin", &[7u8; 1 << 20])
        .expect("offer");
    let reason = refused(answer(&mut p.channel, s), "a file over the limit");
    assert!(reason.contains("cannot write"), "{reason}");
    let s = p
        .channel
        .send_snapshot("small.bin", b"fits")
        .expect("offer");
    assert_eq!(answer(&mut p.channel, s), Answer::Acked);
    assert_eq!(files_in(inbox.path()), ["small.bin"]);
    still_serving(&server);
    listener.kill();
}

#[test]
fn a_save_dir_is_created_0700_and_a_bad_one_is_a_start_up_error_naming_it() {
    let server = Server::start(&[]);
    let dir = TempDir::new("dirs");
    let fresh = dir.join("inbox");
    let listener = listen(&server, &["--save-dir", fresh.to_str().unwrap()]);
    let mode = fs::metadata(&fresh).expect("created").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    listener.kill();

    let missing = dir.join("no/such/inbox");
    let (status, stderr) = run_listen(&server, &["--save-dir", missing.to_str().unwrap()]);
    assert!(!status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&dir.join("no/such").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("registered"), "{stderr}");

    let file = dir.join("a-file");
    fs::write(&file, b"not a dir").expect("write");
    let (status, stderr) = run_listen(&server, &["--save-dir", file.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    // The name was never taken.
    let again = listen(&server, &[]);
    again.kill();
}

/// `listen bob extra...`, expected to exit (at start-up): its status and stderr.
fn run_listen(server: &Server, extra: &[&str]) -> (ExitStatus, String) {
    let mut args = vec!["listen", "bob"];
    args.extend_from_slice(extra);
    let (status, _, stderr) = Running::spawn(server, &[], &args).finish();
    (status, stderr)
}

#[test]
fn fifos_directories_sockets_and_oversized_files_are_refused_with_a_reason() {
    let server = Server::start(&[]);
    let dir = TempDir::new("odd");
    let inbox = dir.join("inbox");
    let listener = listen(
        &server,
        &[
            "--save-dir",
            inbox.to_str().unwrap(),
            "--max-file-size",
            "1000",
        ],
    );
    let (_b, mut p) = peer(&server);

    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let fd = open(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()).expect("open");
    let s = p.channel.send_file(fd.as_fd(), "fifo", 0).expect("offer");
    let reason = refused(answer(&mut p.channel, s), "a FIFO");
    assert!(
        reason.contains("not a regular file") && reason.contains("FIFO"),
        "{reason}"
    );

    let d = open(
        dir.path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .expect("dir");
    let s = p.channel.send_file(d.as_fd(), "dir", 0).expect("offer");
    let reason = refused(answer(&mut p.channel, s), "a directory");
    assert!(reason.contains("directory"), "{reason}");

    let null = open("/dev/null", OFlag::O_RDONLY, Mode::empty()).expect("/dev/null");
    let s = p.channel.send_file(null.as_fd(), "null", 0).expect("offer");
    let reason = refused(answer(&mut p.channel, s), "a character device");
    assert!(reason.contains("character device"), "{reason}");

    let s = p.channel.send_snapshot("big", &[0u8; 2000]).expect("offer");
    let reason = refused(answer(&mut p.channel, s), "a file over --max-file-size");
    assert!(reason.contains("size limit of 1000 bytes"), "{reason}");

    assert!(files_in(&inbox).is_empty());
    still_serving(&server);
    let (_, stderr) = listener.kill();
    assert!(stderr.contains("refused file \"fifo\""), "{stderr}");
}

#[test]
fn a_1_tib_sparse_memfd_is_refused_at_once_and_others_are_served() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let listener = listen(&server, &["--save-dir", inbox.path().to_str().unwrap()]);
    let (_b, mut p) = peer(&server);
    let memfd = nix::sys::memfd::memfd_create("huge", MFdFlags::MFD_CLOEXEC).expect("memfd");
    nix::unistd::ftruncate(&memfd, 1 << 40).expect("1 TiB");
    let s = p
        .channel
        .send_file(memfd.as_fd(), "huge", 1 << 40)
        .expect("offer");
    let reason = refused(answer(&mut p.channel, s), "1 TiB");
    assert!(
        reason.contains("size limit of 1073741824 bytes"),
        "{reason}"
    );
    still_serving(&server);
    assert!(files_in(inbox.path()).is_empty());
    listener.kill();
}

#[test]
fn saved_files_are_0600_or_less_as_the_source() {
    let server = Server::start(&[]);
    let dir = TempDir::new("modes");
    let inbox = dir.join("inbox");
    fs::create_dir(&inbox).expect("inbox");
    let listener = listen(&server, &["--save-dir", inbox.to_str().unwrap()]);
    let (_b, mut p) = peer(&server);
    for (name, mode) in [
        ("open.txt", 0o644),
        ("private.txt", 0o600),
        ("ro.txt", 0o400),
    ] {
        let path = dir.join(name);
        fs::write(&path, b"contents").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        let s = p.channel.send_path(&path).expect("offer");
        assert_eq!(answer(&mut p.channel, s), Answer::Acked);
    }
    let mode = |n: &str| fs::metadata(inbox.join(n)).expect("saved").mode() & 0o777;
    assert_eq!(mode("open.txt"), 0o600);
    assert_eq!(mode("private.txt"), 0o600);
    assert_eq!(mode("ro.txt"), 0o400);
    assert_eq!(fs::read(inbox.join("ro.txt")).expect("read"), b"contents");
    listener.kill();
}

#[test]
fn names_texts_and_file_names_with_escapes_and_bidi_controls_are_escaped_or_refused() {
    let server = Server::start(&[]);
    let inbox = TempDir::new("inbox");
    let mut listener = listen(&server, &["--save-dir", inbox.path().to_str().unwrap()]);
    let (_b, mut p) = peer(&server);
    let text = "clear\u{1b}[2J now \u{202E}txt.exe \u{200B}\u{E0041}";
    assert_eq!(say(&mut p.channel, text), Answer::Acked);
    let line = listener.expect_line("with the text", |l| l.contains("clear"));
    assert!(
        line.ends_with(r"clear\u{1b}[2J now \u{202e}txt.exe \u{200b}\u{e0041}"),
        "{line:?}"
    );
    for name in ["evil\u{202E}txt.exe", "zero\u{200B}width", "bell\u{7}"] {
        let s = p.channel.send_snapshot(name, b"x").expect("offer");
        let reason = refused(answer(&mut p.channel, s), name);
        assert!(reason.contains("unsafe file name"), "{reason}");
    }
    assert!(files_in(inbox.path()).is_empty());
    let (lines, stderr) = listener.kill();
    for out in lines.iter().map(String::as_str).chain([stderr.as_str()]) {
        assert!(
            !out.contains(['\u{1b}', '\u{202E}', '\u{200B}', '\u{7}']),
            "{out:?}"
        );
    }
    assert!(stderr.contains(r"evil\u{202e}txt.exe"), "{stderr}");
}

/// `listen-peer say` as uid 65534: sends one text to bob (of the test's
/// uid) and returns what it printed (`ANSWER <how it was answered>`).
fn foreign_peer(server: &Server) -> String {
    let owner = format!("bob@{}", nix::unistd::getuid().as_raw());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("listen-peer"))
        .args(["say", server.socket_arg(), &owner, "from nobody"])
        .output()
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
#[ignore = "needs root: runs a peer as uid 65534 (make test runs it as root)"]
fn a_peer_of_another_uid_is_refused_unless_any_uid() {
    let server = Server::start(&[]);
    // Let uid 65534 reach the socket.
    fs::set_permissions(&server.socket, fs::Permissions::from_mode(0o777)).expect("chmod");
    let listener = listen(&server, &[]);
    let stdout = foreign_peer(&server);
    assert!(stdout.contains("ANSWER Refused("), "{stdout}");
    assert!(stdout.contains("only its own user"), "{stdout}");
    still_serving(&server);
    let (lines, stderr) = listener.kill();
    assert!(
        !lines.iter().any(|l| l.contains("from nobody")),
        "{lines:?}"
    );
    let refusals: Vec<&str> = stderr.lines().filter(|l| l.contains("uid 65534")).collect();
    assert_eq!(refusals.len(), 1, "{stderr}");

    let mut open = listen(&server, &["--any-uid"]);
    let stdout = foreign_peer(&server);
    assert!(stdout.contains("ANSWER Acked"), "{stdout}");
    open.expect_line("with the text", |l| l.ends_with(": from nobody"));
    open.kill();

    // A peer refused for who it is does not count for --count: it cannot
    // end a listener, and free its name, by connecting.
    let counting = listen(&server, &["--count", "1"]);
    let stdout = foreign_peer(&server);
    assert!(stdout.contains("ANSWER Refused("), "{stdout}");
    let (_b, mut p) = peer(&server);
    assert_eq!(say(&mut p.channel, "counted"), Answer::Acked);
    let (status, lines, stderr) = counting.finish();
    assert!(status.success(), "{stderr}");
    assert!(lines.iter().any(|l| l.ends_with(": counted")), "{lines:?}");
}
