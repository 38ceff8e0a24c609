//! The README's table of `copy`/`paste` against `wl-copy`/`wl-paste` 2.1,
//! row by row: each test runs one row with both tools against a fresh
//! waypass-server of its own (wl-clipboard with wl-clipboard, our client
//! with our client) and checks the same observable result for both.
//! Error texts differ between the tools; exit statuses and data do not.

use std::fs;
use std::process::{Child, Command, Stdio};

use waypass_client::{Clipboard, Selection};
use waypass_test_support::clipboard::{client, copy_with, eventually, ok, output, wl};
use waypass_test_support::{wait_timeout, Server, PATIENCE};

/// One implementation of the two commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// `waypass-client copy` / `paste`.
    Ours,
    /// `wl-copy` / `wl-paste`.
    WlClipboard,
}

const BOTH: [Tool; 2] = [Tool::Ours, Tool::WlClipboard];

impl Tool {
    fn copy(self, server: &Server, args: &[&str]) -> Command {
        match self {
            Tool::Ours => client(&server.socket, &[&["copy"], args].concat()),
            Tool::WlClipboard => wl(&server.socket, "wl-copy", args),
        }
    }

    fn paste(self, server: &Server, args: &[&str]) -> Command {
        match self {
            Tool::Ours => client(&server.socket, &[&["paste"], args].concat()),
            Tool::WlClipboard => wl(&server.socket, "wl-paste", args),
        }
    }

    /// Copies `input` (on stdin) with `args`, until the selection is set.
    fn copies(self, server: &Server, args: &[&str], input: &[u8]) {
        copy_with(self.copy(server, args), input);
    }

    /// What `paste ARGS` prints; it must succeed.
    fn pasted(self, server: &Server, args: &[&str]) -> Vec<u8> {
        ok(self.paste(server, args))
    }

    /// Whether `paste ARGS` fails.
    fn paste_fails(self, server: &Server, args: &[&str]) -> bool {
        !output(self.paste(server, args)).status.success()
    }

    /// `paste --list-types`, sorted.
    fn types(self, server: &Server, args: &[&str]) -> Vec<String> {
        let listed = self.pasted(server, &[&["--list-types"], args].concat());
        let mut types: Vec<String> = String::from_utf8(listed)
            .expect("utf-8 types")
            .lines()
            .map(str::to_owned)
            .collect();
        types.sort();
        types
    }
}

/// Runs `row` for both tools, each against its own server.
fn both(row: impl Fn(Tool, &Server)) {
    for tool in BOTH {
        let server = Server::start(&[]);
        eprintln!("row with {tool:?}");
        row(tool, &server);
    }
}

fn sorted(types: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    v.sort();
    v
}

const TEXT_TYPES: [&str; 5] = [
    "text/plain;charset=utf-8",
    "text/plain",
    "UTF8_STRING",
    "STRING",
    "TEXT",
];

#[test]
fn copy_text_words_are_joined_by_spaces() {
    both(|tool, server| {
        tool.copies(server, &["hello", "big", "world"], b"");
        assert_eq!(tool.pasted(server, &["-n"]), b"hello big world");
        assert_eq!(tool.types(server, &[]), sorted(&TEXT_TYPES));
    });
}

#[test]
fn copy_without_words_takes_stdin() {
    both(|tool, server| {
        tool.copies(server, &[], b"from stdin\n");
        assert_eq!(tool.pasted(server, &["-n"]), b"from stdin\n");
    });
}

#[test]
fn copy_n_trim_newline_drops_one_trailing_newline_of_stdin() {
    both(|tool, server| {
        tool.copies(server, &["-n"], b"a\n\n");
        assert_eq!(tool.pasted(server, &["-n"]), b"a\n");
        tool.copies(server, &["--trim-newline"], b"b\n");
        assert_eq!(tool.pasted(server, &["-n"]), b"b");
    });
}

#[test]
fn copy_t_type_offers_it_and_the_text_types_when_it_is_text() {
    both(|tool, server| {
        tool.copies(server, &["-t", "text/html"], b"<b>bold</b>");
        let mut expected = sorted(&TEXT_TYPES);
        expected.push("text/html".into());
        expected.sort();
        assert_eq!(tool.types(server, &[]), expected);
        tool.copies(server, &["--type", "application/x-waypass"], b"\x00\x01");
        assert_eq!(tool.types(server, &[]), ["application/x-waypass"]);
    });
}

#[test]
fn copy_p_primary_and_paste_p_use_the_primary_selection() {
    both(|tool, server| {
        tool.copies(server, &["-p"], b"middle");
        assert_eq!(tool.pasted(server, &["-p", "-n"]), b"middle");
        assert_eq!(tool.pasted(server, &["--primary", "-n"]), b"middle");
        assert!(tool.paste_fails(server, &[]), "the clipboard stays empty");
        tool.copies(server, &["--primary", "--clear"], b"");
        assert!(tool.paste_fails(server, &["-p"]));
    });
}

#[test]
fn copy_c_clear_empties_the_clipboard() {
    both(|tool, server| {
        tool.copies(server, &[], b"soon gone");
        tool.copies(server, &["-c"], b"");
        assert!(tool.paste_fails(server, &[]));
        tool.copies(server, &[], b"again");
        tool.copies(server, &["--clear"], b"");
        assert!(tool.paste_fails(server, &[]));
    });
}

/// `copy -f TEXT` (or `--foreground`), left running.
fn copy_foreground(tool: Tool, server: &Server, flag: &str, text: &str) -> Child {
    tool.copy(server, &[flag, text])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the copy")
}

#[test]
fn copy_f_foreground_serves_until_replaced_then_exits() {
    both(|tool, server| {
        for flag in ["-f", "--foreground"] {
            let mut copier = copy_foreground(tool, server, flag, "first");
            eventually("the first selection", || {
                output(tool.paste(server, &["-n"])).stdout == b"first"
            });
            assert!(copier.try_wait().unwrap().is_none(), "{flag}: exited early");
            tool.copies(server, &[], b"second");
            let status = wait_timeout(&mut copier, PATIENCE).expect("the replaced copy hung");
            assert!(status.success(), "{flag}: {status}");
        }
    });
}

/// One paste through the library, the same for both copiers: wl-paste
/// 2.1 itself loses this race (it round-trips after `receive`, sees the
/// `selection(nil)` of the copier that exited, and says "No selection"
/// before reading the data), so it cannot be the observer here.
fn paste_once_with_the_library(server: &Server) -> Vec<u8> {
    use std::io::Read;
    let mut paster = Clipboard::connect(server.socket.to_str()).expect("connect");
    let mut pipe = paster
        .paste(Selection::Regular, "text/plain")
        .expect("a selection");
    let mut data = Vec::new();
    pipe.read_to_end(&mut data).expect("read");
    data
}

#[test]
fn copy_o_paste_once_serves_one_paste_then_empties_the_clipboard() {
    both(|tool, server| {
        for flag in ["-o", "--paste-once"] {
            tool.copies(server, &[flag, "once"], b"");
            assert_eq!(paste_once_with_the_library(server), b"once", "{flag}");
            eventually("the clipboard empty", || tool.paste_fails(server, &[]));
        }
    });
}

#[test]
fn copy_s_seat_and_paste_s_take_the_seat_by_name() {
    both(|tool, server| {
        tool.copies(server, &["-s", "seat0", "on", "seat0"], b"");
        assert_eq!(tool.pasted(server, &["-s", "seat0", "-n"]), b"on seat0");
        assert_eq!(tool.pasted(server, &["--seat", "seat0", "-n"]), b"on seat0");
        assert!(tool.paste_fails(server, &["-s", "nope"]));
        let copy = output(tool.copy(server, &["--seat", "nope", "x"]));
        assert!(!copy.status.success(), "a copy to no such seat");
        assert_eq!(tool.pasted(server, &["-n"]), b"on seat0");
    });
}

#[test]
fn copy_v_and_paste_v_print_a_version() {
    both(|tool, server| {
        for args in [
            ["copy", "-v"],
            ["copy", "--version"],
            ["paste", "-v"],
            ["paste", "--version"],
        ] {
            let cmd = match args[0] {
                "copy" => tool.copy(server, &args[1..]),
                _ => tool.paste(server, &args[1..]),
            };
            let version = String::from_utf8(ok(cmd)).unwrap();
            let first = version.lines().next().unwrap_or_default();
            let words: Vec<&str> = first.split_whitespace().collect();
            assert!(
                words.len() == 2 && words[1].chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{args:?}: {version:?}"
            );
        }
    });
}

#[test]
fn paste_appends_a_newline_to_text_unless_n_no_newline() {
    both(|tool, server| {
        tool.copies(server, &[], b"hi");
        assert_eq!(tool.pasted(server, &[]), b"hi\n");
        assert_eq!(tool.pasted(server, &["-n"]), b"hi");
        assert_eq!(tool.pasted(server, &["--no-newline"]), b"hi");
        // Never after what is not text.
        tool.copies(server, &["-t", "image/png"], b"\x89PNG");
        assert_eq!(tool.pasted(server, &[]), b"\x89PNG");
    });
}

#[test]
fn paste_l_list_types_prints_the_offered_types() {
    both(|tool, server| {
        tool.copies(server, &["-t", "application/x-a"], b"a");
        assert_eq!(tool.pasted(server, &["-l"]), b"application/x-a\n");
        assert_eq!(tool.pasted(server, &["--list-types"]), b"application/x-a\n");
    });
}

#[test]
fn paste_t_picks_the_type_exactly_or_by_text_or_by_prefix() {
    both(|tool, server| {
        tool.copies(server, &["-t", "image/png"], b"\x89PNG");
        assert_eq!(tool.pasted(server, &["-t", "image/png"]), b"\x89PNG");
        assert_eq!(tool.pasted(server, &["--type", "image"]), b"\x89PNG");
        assert!(tool.paste_fails(server, &["-t", "text"]));
        assert!(tool.paste_fails(server, &["-t", "image/jpeg"]));
        tool.copies(server, &["-t", "text/html"], b"<i>it</i>");
        assert_eq!(tool.pasted(server, &["-t", "text", "-n"]), b"<i>it</i>");
        assert_eq!(tool.pasted(server, &["-t", "text/html"]), b"<i>it</i>\n");
    });
}

#[test]
fn paste_fails_on_an_empty_clipboard() {
    both(|tool, server| {
        let out = output(tool.paste(server, &[]));
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
    });
}

#[test]
fn paste_w_watch_runs_for_each_selection_and_skips_empty_ones() {
    both(|tool, server| {
        let seen = server.dir.join("seen");
        let script = format!("cat >> '{0}'; echo >> '{0}'", seen.display());
        let mut watcher = tool
            .paste(server, &["--watch", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the watcher");
        let read = || fs::read_to_string(&seen).unwrap_or_default();
        tool.copies(server, &[], b"one");
        // The command's whole output: `cat`, then `echo`'s newline.
        eventually("one", || read().contains("one\n"));
        tool.copies(server, &["-c"], b"");
        tool.copies(server, &["-t", "image/png"], b"two");
        eventually("two", || read().contains("two\n"));
        // In order, nothing for the empty start nor for the clear.
        assert_eq!(read(), "one\ntwo\n");
        assert!(watcher.try_wait().unwrap().is_none(), "the watcher exited");
        watcher.kill().expect("kill");
        watcher.wait().expect("wait");
    });
}
