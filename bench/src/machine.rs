//! What machine the figures were measured on: cores, kernel, CPU model, and
//! the libwayland version the libwayland peer links against.
//!
//! What it is: a snapshot read once at start-up and printed at the head of
//! the report, because the issue asks for it next to every set of figures.
//!
//! What it is not: a hardware probe. It reads `/proc/cpuinfo`, `uname(2)` and
//! asks `pkg-config` for libwayland's version; where something is missing it
//! says "unknown" rather than guessing.

use std::fs;
use std::process::Command;
use std::thread;

/// The machine the bench runs on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// The first `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `pkg-config --modversion wayland-server`.
    pub libwayland: String,
}

impl Machine {
    /// Reads the machine's description.
    pub fn probe() -> Machine {
        let unknown = || "unknown".to_string();
        let cores = thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_else(|_| unknown());
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| cpu_model(&text))
            .unwrap_or_else(unknown);
        let libwayland = Command::new("pkg-config")
            .args(["--modversion", "wayland-server"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_else(unknown);
        Machine {
            cores,
            kernel,
            cpu_model,
            libwayland,
        }
    }

    /// The machine as a Markdown bullet list.
    pub fn markdown(&self) -> String {
        format!(
            "- cores: {}\n- kernel: `{}`\n- CPU: {}\n- libwayland (server peer): {}\n",
            self.cores, self.kernel, self.cpu_model, self.libwayland
        )
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let text =
            "processor\t: 0\nmodel name\t: Foo CPU @ 1GHz\nprocessor\t: 1\nmodel name\t: Bar\n";
        assert_eq!(cpu_model(text).as_deref(), Some("Foo CPU @ 1GHz"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
