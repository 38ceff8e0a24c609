//! sway 1.7, headless: the wlroots compositor that the clipboard tests run
//! our client against and the bench's clipboard measurements compare
//! waypass-server with (wlroots' `zwlr_data_control_manager_v1` version 2,
//! the reference semantics of the clipboard).
//!
//! What it is: starting it and killing it. sway refuses to run as root: it
//! runs as `nobody` through `setpriv`, with `WLR_BACKENDS=headless
//! WLR_RENDERER=pixman` and an empty config, in a runtime directory made
//! for it. What it is not: a judge of whether sway is installed beyond
//! looking for `/usr/bin/sway` and `/usr/bin/setpriv` (`make deps-test`
//! and `make deps-bench` install it). Switching to `nobody` needs root.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TempDir, PATIENCE};

/// sway 1.7, headless, as `nobody`, killed on drop.
pub struct Sway {
    child: Child,
    /// Its Wayland socket.
    pub socket: PathBuf,
    _dir: TempDir,
}

impl Sway {
    /// Starts sway and waits for its socket ([`PATIENCE`] at most).
    pub fn start() -> Result<Sway, String> {
        let found = |p: &str| Path::new(p).exists();
        if !found("/usr/bin/sway") || !found("/usr/bin/setpriv") {
            return Err(
                "not measured: sway or setpriv is not installed (make deps-bench installs sway)"
                    .into(),
            );
        }
        let dir = TempDir::try_new("sway").map_err(|e| e.to_string())?;
        let runtime = dir.join("run");
        std::fs::create_dir(&runtime).map_err(|e| e.to_string())?;
        let nobody = nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .ok_or("not measured: no user nobody")?;
        nix::unistd::chown(&runtime, Some(nobody.uid), Some(nobody.gid))
            .map_err(|e| e.to_string())?;
        let log = File::create(dir.join("sway.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new("/usr/bin/setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(["/usr/bin/sway", "-c", "/dev/null"])
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
            .map_err(|e| format!("failed: cannot start sway: {e}"))?;
        let started = Instant::now();
        let socket = loop {
            let found = std::fs::read_dir(&runtime).ok().and_then(|entries| {
                entries.flatten().map(|e| e.path()).find(|p| {
                    p.file_name().is_some_and(|n| {
                        n.to_string_lossy().starts_with("wayland-")
                            && !n.to_string_lossy().ends_with(".lock")
                    })
                })
            });
            if let Some(socket) = found {
                break socket;
            }
            if started.elapsed() > PATIENCE || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("sway.log"));
                return Err(format!(
                    "failed: sway did not start; its log:\n{}",
                    log.unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Sway {
            child,
            socket,
            _dir: dir,
        })
    }
}

impl Sway {
    /// Its process id (setpriv execs sway in the same process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
