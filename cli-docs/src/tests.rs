//! Unit tests of the documentation subcommands, on two small command
//! lines shaped like the real ones: flags only (as waypass-server) and
//! subcommands (as waypass-client).

use clap::{Parser, Subcommand};

use super::*;

/// Flags only, like waypass-server.
#[derive(Debug, Parser, PartialEq)]
#[command(name = "flags-only", version)]
struct FlagsOnly {
    /// A socket.
    #[arg(long)]
    socket: Option<String>,
}

/// Subcommands, like waypass-client.
#[derive(Debug, Parser, PartialEq)]
#[command(name = "with-subs", version)]
struct WithSubs {
    /// A global flag.
    #[arg(long, global = true)]
    socket: Option<String>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand, PartialEq)]
enum Sub {
    /// Reads something.
    Keymap,
    /// Listens for something.
    Listen {
        /// A name.
        name: String,
    },
}

fn render(docs: &Docs, cmd: Command) -> String {
    let mut out = Vec::new();
    generate(docs, cmd, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_augmented_commands_are_valid() {
    command::<FlagsOnly>().debug_assert();
    command::<WithSubs>().debug_assert();
}

#[test]
fn the_own_command_line_still_parses() {
    let parsed = try_parse_from::<FlagsOnly, _, _>(["flags-only", "--socket", "s"]).unwrap();
    assert!(matches!(parsed, Parsed::Run(FlagsOnly { socket: Some(s) }) if s == "s"));
    let parsed = try_parse_from::<WithSubs, _, _>(["with-subs", "listen", "bob"]).unwrap();
    assert!(matches!(
        parsed,
        Parsed::Run(WithSubs { command: Sub::Listen { name }, .. }) if name == "bob"
    ));
}

#[test]
fn the_docs_subcommands_parse() {
    let parsed = try_parse_from::<FlagsOnly, _, _>(["flags-only", "completions", "bash"]);
    assert!(matches!(
        parsed,
        Ok(Parsed::Docs(Docs::Completions(Shell::Bash)))
    ));
    let parsed = try_parse_from::<WithSubs, _, _>(["with-subs", "man", "--out-dir", "d"]);
    assert!(matches!(
        parsed,
        Ok(Parsed::Docs(Docs::Man { out_dir: Some(d) })) if d == Path::new("d")
    ));
}

#[test]
fn flags_and_docs_subcommands_do_not_mix_on_a_flags_only_command() {
    let err = try_parse_from::<FlagsOnly, _, _>(["flags-only", "--socket", "s", "man"]);
    assert!(err.is_err());
    let err = try_parse_from::<FlagsOnly, _, _>(["flags-only", "completions", "nosh"]);
    assert!(err.is_err());
}

#[test]
fn bash_completion_names_the_subcommands_and_flags() {
    let text = render(&Docs::Completions(Shell::Bash), command::<WithSubs>());
    for word in [
        "with-subs",
        "keymap",
        "listen",
        "completions",
        "man",
        "--socket",
    ] {
        assert!(text.contains(word), "{word} in {text}");
    }
    let text = render(&Docs::Completions(Shell::Bash), command::<FlagsOnly>());
    assert!(text.contains("--socket"), "{text}");
}

#[test]
fn every_state_the_bash_loop_reaches_has_its_case_arm() {
    // "with-subs" has a hyphen, as waypass-client does (clap-rs/clap#6421).
    let text = render(&Docs::Completions(Shell::Bash), command::<WithSubs>());
    let states: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cmd=\""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|state| !state.is_empty())
        .collect();
    assert!(states.contains(&"with__subs__subcmd__listen"), "{text}");
    for state in states {
        let arm = format!("\n        {state})\n");
        assert!(text.contains(&arm), "no case arm for {state} in {text}");
    }
}

#[test]
fn global_options_stay_out_of_the_docs_subcommands() {
    let mut cmd = command::<WithSubs>();
    cmd.build();
    for name in ["completions", "man"] {
        let sub = cmd.find_subcommand(name).expect(name);
        let socket = sub.get_arguments().find(|a| a.get_id() == "socket");
        assert!(
            socket.is_none_or(|a| a.is_hide_set()),
            "--socket shown in {name}"
        );
    }
    let keymap = cmd.find_subcommand("keymap").expect("keymap");
    let socket = keymap.get_arguments().find(|a| a.get_id() == "socket");
    assert!(
        socket.is_some_and(|a| !a.is_hide_set()),
        "--socket in keymap"
    );
    // Still accepted before the subcommand, as everywhere.
    let parsed = try_parse_from::<WithSubs, _, _>(["with-subs", "--socket", "s", "man"]);
    assert!(matches!(parsed, Ok(Parsed::Docs(Docs::Man { .. }))));
}

#[test]
fn the_man_page_is_roff_with_every_subcommand() {
    let text = render(&Docs::Man { out_dir: None }, command::<WithSubs>());
    // clap_mangen puts two lines defining the \*(Aq string before .TH.
    let th = text
        .lines()
        .take(3)
        .find(|l| l.starts_with(".TH"))
        .expect(".TH line");
    assert!(th.contains("with-subs"), "{th}");
    for word in ["keymap", "listen", "\\-\\-socket"] {
        assert!(text.contains(word), "{word} in {text}");
    }
}

#[test]
fn man_out_dir_writes_one_page_per_command() {
    // A directory that does not exist yet, inside one removed on drop.
    let parent = tempfile::Builder::new()
        .prefix("wp-cli-docs-")
        .tempdir()
        .unwrap();
    let dir = parent.path().join("man");
    let text = render(
        &Docs::Man {
            out_dir: Some(dir.clone()),
        },
        command::<WithSubs>(),
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "with-subs-completions.1",
            "with-subs-keymap.1",
            "with-subs-listen.1",
            "with-subs-man.1",
            "with-subs.1"
        ]
    );
    assert_eq!(text.lines().count(), names.len(), "{text}");
    let page = fs::read_to_string(dir.join("with-subs-listen.1")).unwrap();
    assert!(page.contains(".TH"), "{page}");
}
