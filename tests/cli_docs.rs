//! `completions` and `man` on the real binaries: each prints something its
//! consumer accepts (bash parses the completion script, which names the
//! subcommands and flags; the man page is roff with a `.TH` header), and
//! `man --out-dir` writes one page per command.

mod common;

use std::fs;
use std::process::{Command, Stdio};

use common::{bin, run_with_patience, TempDir};

/// Runs `binary args...` and returns its stdout, after checking exit 0 and
/// an empty stderr.
fn stdout_of(binary: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(bin(binary));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{binary} {args:?}: {stderr}");
    assert!(stderr.is_empty(), "{binary} {args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The script parses as bash (`bash -n`) and registers `complete -F`.
fn assert_bash_accepts(script: &str, binary: &str) {
    let dir = TempDir::new("cli-docs-bash");
    let file = dir.join("completion.bash");
    fs::write(&file, script).unwrap();
    let out = run_with_patience({
        let mut cmd = Command::new("bash");
        cmd.arg("-n").arg(&file).stderr(Stdio::piped());
        cmd
    });
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        script.contains(&format!("complete -F _{}", binary.replace('-', "__"))),
        "{script}"
    );
}

#[test]
fn client_bash_completion_names_every_subcommand() {
    let script = stdout_of("waypass-client", &["completions", "bash"]);
    assert_bash_accepts(&script, "waypass-client");
    for word in [
        "keymap",
        "listen",
        "send",
        "send-file",
        "completions",
        "man",
        "--socket",
        "--json",
    ] {
        assert!(script.contains(word), "{word} in the client's completion");
    }
}

#[test]
fn server_bash_completion_names_its_flags() {
    let script = stdout_of("waypass-server", &["completions", "bash"]);
    assert_bash_accepts(&script, "waypass-server");
    for word in [
        "--socket",
        "--layout",
        "--keymap",
        "--spawn",
        "completions",
        "man",
    ] {
        assert!(script.contains(word), "{word} in the server's completion");
    }
}

#[test]
fn other_shells_get_a_script_too() {
    for shell in ["zsh", "fish"] {
        for binary in ["waypass-client", "waypass-server"] {
            let script = stdout_of(binary, &["completions", shell]);
            assert!(script.contains("socket"), "{binary} {shell}: {script}");
        }
    }
}

#[test]
fn man_pages_are_roff_with_a_th_header() {
    for binary in ["waypass-client", "waypass-server"] {
        let page = stdout_of(binary, &["man"]);
        let th = page
            .lines()
            .take(3)
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{binary}: no .TH in {page}"));
        assert!(th.starts_with(&format!(".TH {binary} 1 ")), "{th}");
        assert!(page.contains(".SH NAME"), "{page}");
        assert!(page.contains("\\-\\-socket"), "{binary}: {page}");
    }
}

#[test]
fn man_out_dir_writes_a_page_per_subcommand() {
    let dir = TempDir::new("cli-docs-man");
    let out_dir = dir.join("man1");
    let listed = stdout_of(
        "waypass-client",
        &["man", "--out-dir", out_dir.to_str().unwrap()],
    );
    for page in [
        "waypass-client.1",
        "waypass-client-keymap.1",
        "waypass-client-listen.1",
        "waypass-client-send.1",
        "waypass-client-send-file.1",
    ] {
        let path = out_dir.join(page);
        assert!(
            listed.contains(path.to_str().unwrap()),
            "{page} in {listed}"
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(".TH "), "{page}: {text}");
    }
}

#[test]
fn server_flags_and_docs_subcommands_do_not_mix() {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.args(["--layout", "de", "man"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn bash_completes_a_subcommand_from_its_first_letter() {
    let script = stdout_of("waypass-client", &["completions", "bash"]);
    let dir = TempDir::new("cli-docs-complete");
    let file = dir.join("waypass-client.bash");
    fs::write(&file, script).unwrap();
    // What bash does on `waypass-client s<TAB>`.
    let probe = format!(
        "source {}; COMP_WORDS=(waypass-client s); COMP_CWORD=1; \
         COMP_LINE='waypass-client s'; COMP_POINT=16; \
         _waypass__client waypass-client s waypass-client; echo \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &probe])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "send send-file"
    );
}
