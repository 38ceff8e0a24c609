//! `completions` and `man` on the real binaries: each prints something its
//! consumer accepts (bash parses the completion script, which names the
//! subcommands and flags; the man page is roff with a `.TH` header), and
//! `man --out-dir` writes one page per command. Real bash, with the script
//! sourced, completes subcommands and, after a subcommand, its options
//! (`waypass-client paste --<TAB>`, `waypass-server man --<TAB>`).

use std::fs;
use std::process::{Command, Stdio};

use waypass_test_support::{bin, run_with_patience, TempDir};

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

/// What bash offers for `line<TAB>` with `binary`'s completion script
/// loaded: the script is sourced in a real bash, `COMP_WORDS` and
/// `COMP_CWORD` set as bash sets them, and the completion function called
/// as `complete -F` calls it (command, current word, previous word).
fn complete(binary: &str, line: &str) -> Vec<String> {
    let script = stdout_of(binary, &["completions", "bash"]);
    let dir = TempDir::new("cli-docs-complete");
    let file = dir.join(&format!("{binary}.bash"));
    fs::write(&file, script).unwrap();
    // A trailing space means a new, empty word.
    let mut words: Vec<&str> = line.split(' ').collect();
    if words.len() < 2 {
        words.push("");
    }
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.len() - 1;
    let probe = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={current}; \
         COMP_LINE='{line}'; COMP_POINT={}; \
         _{} '{binary}' '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        line.len(),
        binary.replace('-', "__"),
        words[current],
        words[current - 1],
    );
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "-c", &probe])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_a_subcommand_from_its_first_letter() {
    assert_eq!(
        complete("waypass-client", "waypass-client s"),
        ["send", "send-file"]
    );
}

#[test]
fn bash_completes_the_options_of_a_client_subcommand() {
    // clap_complete 4.6 alone offers nothing here (clap-rs/clap#6421).
    let offered = complete("waypass-client", "waypass-client paste --");
    for option in [
        "--type",
        "--list-types",
        "--primary",
        "--no-newline",
        "--socket",
    ] {
        assert!(
            offered.iter().any(|o| o == option),
            "{option} in {offered:?}"
        );
    }
    let offered = complete("waypass-client", "waypass-client send-file bob --");
    assert!(offered.iter().any(|o| o == "--wait"), "{offered:?}");
}

#[test]
fn the_docs_subcommands_take_no_socket() {
    for sub in ["completions", "man"] {
        let help = stdout_of("waypass-client", &[sub, "--help"]);
        assert!(!help.contains("--socket"), "{sub} --help: {help}");
        let offered = complete("waypass-client", &format!("waypass-client {sub} --"));
        assert!(
            !offered.iter().any(|o| o == "--socket"),
            "{sub}: {offered:?}"
        );
    }
    let help = stdout_of("waypass-client", &["keymap", "--help"]);
    assert!(help.contains("--socket"), "{help}");
    // Given before the subcommand, as for any other, it is still accepted.
    let script = stdout_of("waypass-client", &["--socket", "x", "completions", "bash"]);
    assert!(script.contains("complete -F"), "{script}");
}

#[test]
fn bash_completes_the_server_s_flags_and_subcommands() {
    let offered = complete("waypass-server", "waypass-server --la");
    assert_eq!(offered, ["--layout"]);
    let offered = complete("waypass-server", "waypass-server man --");
    assert!(offered.iter().any(|o| o == "--out-dir"), "{offered:?}");
    let offered = complete("waypass-server", "waypass-server completions ");
    for shell in ["bash", "zsh", "fish"] {
        assert!(offered.iter().any(|o| o == shell), "{shell} in {offered:?}");
    }
}
