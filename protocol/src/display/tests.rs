//! Unit tests of finding the server: names and paths, `sun_path`'s limit,
//! `WAYLAND_SOCKET` taken once, and what a failed connect says, on real
//! sockets in private directories. The environment lock is shared with the
//! crate's other tests that touch the environment.

use super::*;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixListener;
use std::sync::{Mutex, MutexGuard};

/// Serializes every test of this crate that reads or writes the
/// environment (the environment is process-global).
pub(crate) static ENV_LOCK: Mutex<()> = Mutex::new(());

const VARS: [&str; 4] = [
    "WAYLAND_SOCKET",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "WAYLAND_DEBUG",
];

/// Holds [`ENV_LOCK`], clears the variables these tests use, and puts
/// their old values back on drop.
pub(crate) struct EnvGuard {
    saved: Vec<(&'static str, Option<OsString>)>,
    _lock: MutexGuard<'static, ()>,
}

impl EnvGuard {
    pub(crate) fn new() -> EnvGuard {
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let saved = VARS.iter().map(|v| (*v, std::env::var_os(v))).collect();
        for v in VARS {
            std::env::remove_var(v);
        }
        EnvGuard { saved, _lock: lock }
    }

    pub(crate) fn set(&self, var: &str, value: impl AsRef<OsStr>) {
        std::env::set_var(var, value);
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (var, value) in &self.saved {
            match value {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
    }
}

/// A private directory under the system temp dir, removed on drop.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wp-display-")
        .tempdir()
        .expect("create temp dir")
}

/// Checks that `client` reaches the peer accepted on `listener`.
fn assert_connected(listener: &UnixListener, mut client: UnixStream) {
    let (mut server, _) = listener.accept().expect("accept");
    client.write_all(b"hi").expect("write");
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hi");
}

fn cloexec(fd: BorrowedFd<'_>) -> bool {
    let flags = fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD");
    FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
}

#[test]
fn absolute_name_is_used_as_is() {
    let path = socket_path("/run/waypass/wayland-9").unwrap();
    assert_eq!(path, Path::new("/run/waypass/wayland-9"));
}

#[test]
fn relative_name_goes_under_runtime_dir() {
    let env = EnvGuard::new();
    env.set("XDG_RUNTIME_DIR", "/run/user/1000");
    let path = socket_path("wayland-1").unwrap();
    assert_eq!(path, Path::new("/run/user/1000/wayland-1"));
}

#[test]
fn relative_name_without_usable_runtime_dir_fails() {
    let env = EnvGuard::new();
    assert!(matches!(
        socket_path("wayland-1"),
        Err(DisplayError::NoRuntimeDir)
    ));
    for bad in ["", "run/user/1000"] {
        env.set("XDG_RUNTIME_DIR", bad);
        assert!(
            matches!(socket_path("wayland-1"), Err(DisplayError::NoRuntimeDir)),
            "XDG_RUNTIME_DIR={bad:?}"
        );
    }
    // An absolute name needs no runtime dir at all.
    assert!(socket_path("/tmp/wayland-1").is_ok());
}

#[test]
fn paths_of_108_bytes_or_more_are_too_long() {
    let fits = format!("/{}", "a".repeat(SUN_PATH_MAX - 2));
    assert_eq!(fits.len(), 107);
    assert!(socket_path(&fits).is_ok());
    let long = format!("/{}", "a".repeat(SUN_PATH_MAX - 1));
    match socket_path(&long) {
        Err(DisplayError::PathTooLong(p)) => assert_eq!(p, Path::new(&long)),
        other => panic!("expected PathTooLong, got {other:?}"),
    }
    assert!(matches!(
        connect_to_path(Path::new(&long)),
        Err(DisplayError::PathTooLong(_))
    ));

    let env = EnvGuard::new();
    env.set("XDG_RUNTIME_DIR", format!("/{}", "r".repeat(100)));
    assert!(matches!(
        socket_path("wayland-0"),
        Err(DisplayError::PathTooLong(_))
    ));
}

#[test]
fn connects_to_a_listening_socket() {
    let dir = temp_dir();
    let path = dir.path().join("wayland-t");
    let listener = UnixListener::bind(&path).expect("bind");
    assert_connected(&listener, connect_to_path(&path).unwrap());
    let name = path.to_str().unwrap();
    assert_connected(&listener, connect_to_display(Some(name)).unwrap());
}

#[test]
fn connects_by_wayland_display_then_default_name() {
    let env = EnvGuard::new();
    let dir = temp_dir();
    env.set("XDG_RUNTIME_DIR", dir.path());

    let named = UnixListener::bind(dir.path().join("wayland-7")).expect("bind");
    env.set("WAYLAND_DISPLAY", "wayland-7");
    assert_connected(&named, connect_to_display(None).unwrap());

    std::env::remove_var("WAYLAND_DISPLAY");
    let default = UnixListener::bind(dir.path().join("wayland-0")).expect("bind");
    assert_connected(&default, connect_to_display(None).unwrap());
}

#[test]
fn connect_failure_names_the_path_and_says_how_to_start_a_server() {
    let dir = temp_dir();
    let missing = dir.path().join("nobody-here");
    let err = connect_to_path(&missing).unwrap_err();
    let shown = missing.display();
    assert_eq!(
        err.to_string(),
        format!(
            "no compositor at {shown}: no such socket \
             (start one with `waypass-server --socket {shown}`)"
        )
    );
    match &err {
        DisplayError::Connect { path, source } => {
            assert_eq!(path, &missing);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // The message says it: "No such file or directory" would repeat it.
    assert!(std::error::Error::source(&err).is_none());

    // A socket file nobody listens on any more: ECONNREFUSED.
    let stale = dir.path().join("stale");
    drop(UnixListener::bind(&stale).expect("bind"));
    let err = connect_to_path(&stale).unwrap_err();
    match &err {
        DisplayError::Connect { source, .. } => {
            assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("nobody listens on that socket any more"),
        "{err}"
    );
    // Any other errno stays the source.
    let err = DisplayError::Connect {
        path: stale,
        source: io::Error::from_raw_os_error(13),
    };
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn a_file_that_is_not_a_socket_is_named_as_such() {
    let dir = temp_dir();
    let file = dir.path().join("passwd");
    std::fs::write(&file, "root:x:0:0::/root:/bin/sh\n").expect("write");
    let err = connect_to_path(&file).unwrap_err();
    assert!(
        matches!(
            err,
            DisplayError::NotASocket {
                kind: "a regular file",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{} is a regular file, not a socket", file.display())
    );
    let err = connect_to_path(dir.path()).unwrap_err();
    assert!(
        err.to_string().ends_with("is a directory, not a socket"),
        "{err}"
    );
}

#[test]
fn wayland_socket_is_taken_made_cloexec_and_unset() {
    let env = EnvGuard::new();
    let (ours, mut peer) = UnixStream::pair().expect("socketpair");
    // Hand the fd over as a parent would: no owner left on this side,
    // and close-on-exec cleared so that the test can see it set again.
    let number = ours.into_raw_fd();
    // SAFETY: `number` was just released by `into_raw_fd` and is open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(number) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty())).expect("F_SETFD");
    assert!(!cloexec(borrowed));
    env.set("WAYLAND_SOCKET", number.to_string());

    let mut stream = connect_to_display(None).expect("WAYLAND_SOCKET");
    assert_eq!(stream.as_raw_fd(), number);
    assert!(std::env::var_os("WAYLAND_SOCKET").is_none());
    assert!(cloexec(stream.as_fd()));
    stream.write_all(b"ok").expect("write");
    let mut buf = [0u8; 2];
    peer.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ok");
}

#[test]
fn explicit_name_wins_over_wayland_socket() {
    let env = EnvGuard::new();
    let dir = temp_dir();
    let path = dir.path().join("wayland-x");
    let listener = UnixListener::bind(&path).expect("bind");
    env.set("WAYLAND_SOCKET", "not even a number");
    assert_connected(
        &listener,
        connect_to_display(Some(path.to_str().unwrap())).unwrap(),
    );
    assert!(std::env::var_os("WAYLAND_SOCKET").is_some());
}

#[test]
fn bad_wayland_socket_values_are_refused() {
    let env = EnvGuard::new();
    for value in ["abc", "", "-1", "3x", "2147483647", "99999999999"] {
        env.set("WAYLAND_SOCKET", value);
        match connect_to_display(None) {
            Err(DisplayError::BadWaylandSocket(v)) => assert_eq!(v, value),
            other => panic!("WAYLAND_SOCKET={value:?}: got {other:?}"),
        }
        // As in libwayland, a refused value stays in the environment.
        assert_eq!(std::env::var("WAYLAND_SOCKET").as_deref(), Ok(value));
    }
}

#[test]
fn wayland_socket_naming_a_non_socket_is_refused_and_left_open() {
    let env = EnvGuard::new();
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    env.set("WAYLAND_SOCKET", file.as_raw_fd().to_string());
    assert!(matches!(
        connect_to_display(None),
        Err(DisplayError::BadWaylandSocket(_))
    ));
    // Still open: F_GETFD succeeds, and dropping `file` closes it once
    // (std aborts on a double close in debug builds).
    assert!(fd_is_open(file.as_raw_fd()));
    drop(file);
}
