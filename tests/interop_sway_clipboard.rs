//! Our clipboard client against a real compositor: sway 1.7, headless
//! (wlroots' `zwlr_data_control_manager_v1` version 2; Debian's `sway`,
//! which `make deps` installs). sway refuses to run as root, so it runs as
//! `nobody` through `setpriv`, with an empty config, in a runtime directory
//! made for it.

mod clipboard_support;
mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clipboard_support::{client, copy_with, output, wl};
use common::{TempDir, PATIENCE};

/// sway, killed on drop.
struct Sway {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl Sway {
    fn start() -> Sway {
        let dir = TempDir::new("sway");
        let runtime = dir.join("run");
        std::fs::create_dir(&runtime).unwrap();
        let nobody = nix::unistd::User::from_name("nobody")
            .unwrap()
            .expect("user nobody");
        nix::unistd::chown(&runtime, Some(nobody.uid), Some(nobody.gid)).unwrap();
        let log = File::create(dir.join("sway.log")).unwrap();
        let mut child = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(["sway", "-c", "/dev/null"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("WLR_BACKENDS", "headless")
            .env("WLR_RENDERER", "pixman")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sway (apt-get install sway; `make deps` does)");
        let started = Instant::now();
        let socket = loop {
            let entries = std::fs::read_dir(&runtime).unwrap();
            let found = entries.flatten().map(|e| e.path()).find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("wayland-") && !name.ends_with(".lock")
            });
            if let Some(socket) = found {
                break socket;
            }
            let exited = child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > PATIENCE {
                let log = std::fs::read_to_string(dir.join("sway.log")).unwrap_or_default();
                panic!("sway did not start ({exited:?}):\n{log}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        Sway {
            child,
            socket,
            _dir: dir,
        }
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn our_copy_and_paste_work_against_sway() {
    let sway = Sway::start();
    copy_with(client(&sway.socket, &["copy"]), b"through sway");
    let out = output(client(&sway.socket, &["paste", "-n"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"through sway");
    // With wl-clipboard on the other side, both ways.
    let wl_paste = wl(&sway.socket, "wl-paste", &["-n"]);
    assert_eq!(output(wl_paste).stdout, b"through sway");
    copy_with(wl(&sway.socket, "wl-copy", &[]), b"from wl-copy");
    assert_eq!(
        output(client(&sway.socket, &["paste", "-n"])).stdout,
        b"from wl-copy"
    );
    // The primary selection (wlr-data-control version 2).
    copy_with(client(&sway.socket, &["copy", "--primary"]), b"middle");
    assert_eq!(
        output(client(&sway.socket, &["paste", "--primary", "-n"])).stdout,
        b"middle"
    );
}
