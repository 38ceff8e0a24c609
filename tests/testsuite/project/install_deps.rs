//! `scripts/install-deps.sh` and the Makefile: `make demo` installs only
//! what building and running waypass needs, and what only the tests or the
//! bench need is installed by `make test` or `make bench`. Read from
//! `install-deps.sh --list`, which installs nothing.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The packages `install-deps.sh GROUP` would install.
fn packages(group: &str) -> Vec<String> {
    let out = Command::new(root().join("scripts/install-deps.sh"))
        .args(["--list", group])
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/install-deps.sh --list");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(1).expect("a package").to_string())
        .collect()
}

#[test]
fn the_demo_installs_only_xkbcommon_and_the_xkb_data() {
    assert_eq!(packages("demo"), ["libxkbcommon-dev", "xkb-data"]);
}

#[test]
fn the_tests_install_the_demo_packages_and_their_own() {
    let test = packages("test");
    for pkg in packages("demo") {
        assert!(test.contains(&pkg), "{pkg} in {test:?}");
    }
    for pkg in [
        "wayland-utils",
        "weston",
        "xvfb",
        "libwayland-dev",
        "pkg-config",
        "systemd",
    ] {
        assert!(test.contains(&pkg.to_string()), "{pkg} in {test:?}");
    }
    let bench = packages("bench");
    for pkg in ["weston", "xvfb", "wayland-utils"] {
        assert!(!bench.contains(&pkg.to_string()), "{pkg} in {bench:?}");
    }
}

/// The prerequisites of a Makefile target, as written on its rule line.
fn prerequisites(makefile: &str, target: &str) -> Vec<String> {
    let prefix = format!("{target}:");
    let line = makefile
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no rule for {target}"));
    line[prefix.len()..]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn make_demo_asks_for_the_demo_packages_only() {
    let makefile = fs::read_to_string(root().join("Makefile")).unwrap();
    assert_eq!(prerequisites(&makefile, "demo"), ["build"]);
    assert_eq!(prerequisites(&makefile, "build"), ["deps-demo"]);
    let rule = makefile
        .split("\ndeps-demo:\n")
        .nth(1)
        .expect("a deps-demo rule");
    assert!(
        rule.lines().next().unwrap().trim() == "scripts/install-deps.sh demo",
        "{rule}"
    );
    assert_eq!(prerequisites(&makefile, "test"), ["deps-test"]);
    assert_eq!(prerequisites(&makefile, "bench"), ["deps-bench"]);
}
