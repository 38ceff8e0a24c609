//! `scripts/readme-check.sh`, the check that runs the README's shell blocks
//! (`make test` runs it on the real README): on small READMEs made for the
//! purpose, it runs ```sh blocks in order in one shell, skips ```sh
//! no-check and ```text blocks, names the block, line and command that
//! failed, and refuses a Dependencies table or a targets table that is not
//! a true copy.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use waypass_test_support::{run_with_patience, TempDir};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real README's Dependencies section, which the check compares with
/// `scripts/install-deps.sh --list`.
fn dependencies_section() -> String {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("## Dependencies\n")
        .expect("a Dependencies section");
    let len = readme[start + 3..].find("\n## ").expect("a next section") + 4;
    readme[start..start + len].to_string()
}

const TARGETS: &str = "<!-- targets: begin (written by make bench) -->\n\
                       | § | target | measured | verdict |\n\
                       |---|---|---|---|\n\
                       | 2 | a target | 1.000× | hit |\n\
                       <!-- targets: end -->\n";

/// Runs the check on `body` (after a true Dependencies section and targets
/// table), with `benchmarks` as BENCHMARKS.md.
fn check(body: &str, deps: &str, benchmarks: &str) -> Output {
    let dir = TempDir::new("readme-check");
    let readme = dir.join("README.md");
    fs::write(&readme, format!("# t\n\n{deps}\n{TARGETS}\n{body}")).unwrap();
    let bench = dir.join("BENCHMARKS.md");
    fs::write(&bench, benchmarks).unwrap();
    let mut cmd = Command::new(root().join("scripts/readme-check.sh"));
    cmd.env("README", &readme)
        .env("BENCHMARKS", &bench)
        .env("README_CHECK_TIMEOUT", "60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_patience(cmd)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn blocks_run_in_order_in_one_shell_and_the_failing_one_is_named() {
    let body = "```sh\nx=42\n```\n\n\
                ```text\nexit 3\n```\n\n\
                ```sh no-check\nexit 4\n```\n\n\
                ```sh\necho \"x is $x\"\nfalse || echo \"exit $?\"\nls /no-such-dir-for-readme-check\necho not reached\n```\n";
    let out = check(body, &dependencies_section(), TARGETS);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("x is 42\nexit 1\n"), "{stdout}");
    assert!(!stdout.contains("not reached"), "{stdout}");
    assert!(
        stderr.contains("skipping the ```sh no-check block"),
        "{stderr}"
    );
    // The README is "# t", a blank line, the Dependencies section, the
    // targets table, a blank line, then the body: count to the `ls` line.
    let prefix = format!("# t\n\n{}\n{TARGETS}\n", dependencies_section());
    let ls_line =
        prefix.lines().count() + body.lines().take_while(|l| !l.starts_with("ls ")).count() + 1;
    let expected = format!(
        "readme-check: FAILED: sh block 2, README.md line {ls_line}, exit 2: ls /no-such-dir-for-readme-check"
    );
    assert!(stderr.contains(&expected), "{expected}\nin\n{stderr}");
}

#[test]
fn a_readme_whose_blocks_all_succeed_passes() {
    let out = check("```sh\ntrue\n```\n", &dependencies_section(), TARGETS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("every sh block ran"));
}

#[test]
fn background_jobs_left_running_are_stopped() {
    let dir = TempDir::new("readme-check-bg");
    let pidfile = dir.join("pid");
    let body = format!("```sh\nsleep 300 &\necho $! >{}\n```\n", pidfile.display());
    let out = check(&body, &dependencies_section(), TARGETS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        waypass_test_support::eventually(|| !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))),
        "sleep {pid} outlived the check"
    );
}

#[test]
fn a_dependencies_table_that_is_not_the_scripts_is_refused() {
    let deps = dependencies_section();
    let fewer: String = deps
        .lines()
        .filter(|l| !l.contains("`weston`"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = check("```sh\ntrue\n```\n", &fewer, TARGETS);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Dependencies table differs"), "{stderr}");
    assert!(stderr.contains("weston test"), "{stderr}");
}

#[test]
fn a_targets_table_that_is_not_benchmarks_md_s_is_refused() {
    let other = TARGETS.replace("| hit |", "| **missed** |");
    let out = check("```sh\ntrue\n```\n", &dependencies_section(), &other);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("targets table is not BENCHMARKS.md's"));
}
