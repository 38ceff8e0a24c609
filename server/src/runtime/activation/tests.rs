//! Unit tests of socket activation: the variables' rules, and which
//! sockets are accepted, on real sockets in a private directory. Taking
//! fds 3 and up is tested end to end (`tests/testsuite/server/activation.rs`), under
//! `systemd-socket-activate`: in a test process those fds are not ours.

use std::fs;
use std::os::unix::net::{UnixDatagram, UnixStream};

use super::*;

const PID: u32 = 4242;

fn parse(pid: Option<&str>, fds: Option<&str>, names: Option<&str>) -> Option<ListenFds> {
    ListenFds::parse(pid, fds, names, PID).expect("valid variables")
}

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wp-activation-")
        .tempdir()
        .expect("temp dir")
}

#[test]
fn variables_for_another_process_or_no_fds_mean_nothing_passed() {
    assert_eq!(parse(None, Some("1"), None), None);
    assert_eq!(parse(Some("1"), Some("1"), None), None);
    assert_eq!(parse(Some("4242"), None, None), None);
    assert_eq!(parse(Some("4242"), Some("0"), None), None);
    let passed = parse(Some("4242"), Some("2"), Some("waypass:other")).expect("ours");
    assert_eq!(passed.count(), 2);
    assert_eq!(passed.describe(0), r#"fd 3 (LISTEN_FDS, named "waypass")"#);
    assert_eq!(passed.describe(1), r#"fd 4 (LISTEN_FDS, named "other")"#);
    let unnamed = parse(Some("4242"), Some("1"), None).expect("ours");
    assert_eq!(unnamed.describe(0), "fd 3 (LISTEN_FDS)");
}

#[test]
fn variables_that_are_not_numbers_are_errors() {
    for (pid, fds, bad) in [
        ("x", "1", "LISTEN_PID"),
        ("4242", "one", "LISTEN_FDS"),
        ("4242", "-1", "LISTEN_FDS"),
        ("4242", "99999999999", "LISTEN_FDS"),
    ] {
        let err = ListenFds::parse(Some(pid), Some(fds), None, PID).unwrap_err();
        assert!(
            matches!(&err, ActivationError::BadVariable { name, .. } if *name == bad),
            "{pid} {fds}: {err:?}"
        );
        assert!(err.to_string().contains("is not a number"), "{err}");
    }
}

#[test]
fn a_listening_unix_stream_socket_is_adopted_and_its_file_kept() {
    let dir = temp();
    let path = dir.path().join("wayland-sa");
    let listener = UnixListener::bind(&path).expect("bind");
    // As systemd passes it: blocking, inheritable.
    set_flags(&listener, FdFlag::empty());
    let bound = adopt(listener, None).expect("adopted");
    assert_eq!(bound.files.socket(), path);
    let flags = fcntl(bound.listener.as_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
    assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    // Non-blocking: accept with nobody waiting returns at once.
    let err = bound.listener.accept().expect_err("nobody connected");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    drop(bound);
    assert!(path.exists(), "the inherited socket's file is not ours");
    assert!(!dir.path().join("wayland-sa.lock").exists());
}

#[test]
fn socket_must_name_the_inherited_path_if_given() {
    let dir = temp();
    let path = dir.path().join("wayland-sa");
    let same = UnixListener::bind(&path).expect("bind");
    adopt(same, path.to_str()).expect("the same path");
    fs::remove_file(&path).unwrap();
    let other = UnixListener::bind(&path).expect("bind");
    let elsewhere = dir.path().join("wayland-other");
    let err = adopt(other, elsewhere.to_str()).unwrap_err();
    assert!(
        matches!(err, ActivationError::SocketMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("leave --socket out"), "{err}");
}

#[test]
fn connections_datagrams_and_files_are_refused_with_the_fix() {
    let dir = temp();
    let (connected, _peer) = UnixStream::pair().expect("socketpair");
    let err = inspect(connected.as_fd(), "fd 3").unwrap_err();
    assert!(err.to_string().contains("Accept=no"), "{err}");

    let datagram = UnixDatagram::bind(dir.path().join("dgram")).expect("bind");
    let err = inspect(datagram.as_fd(), "fd 3").unwrap_err();
    assert_eq!(
        err.to_string(),
        "fd 3 is a datagram socket, not a listening Unix stream socket: use ListenStream="
    );

    let file = fs::File::open("/dev/null").expect("open");
    let err = inspect(file.as_fd(), "fd 3").unwrap_err();
    assert!(matches!(err, ActivationError::NotASocket { .. }), "{err:?}");
    assert_eq!(err.to_string(), "fd 3 is not a socket");
}

/// Sets the fd flags of `fd` to `flags`.
fn set_flags(fd: &impl AsFd, flags: FdFlag) {
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags)).expect("F_SETFD");
}
