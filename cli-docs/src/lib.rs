//! `completions` and `man`: two subcommands that waypass-server and
//! waypass-client add to their own clap definitions, generated from those
//! definitions so they cannot drift from `--help`.
//!
//! What it is: [`parse`], a drop-in for `Cli::parse()` in a binary's
//! `main`. It takes the binary's derived [`clap::Parser`], adds the two
//! subcommands to its [`clap::Command`], and either returns the parsed
//! `Cli` as usual or prints what was asked and exits:
//!
//! - `completions <SHELL>`: a completion script for bash, zsh, fish,
//!   elvish or PowerShell (clap_complete), on stdout;
//! - `man`: the roff man page (clap_mangen), on stdout; `man --out-dir DIR`
//!   writes one page per command and subcommand into DIR and prints their
//!   paths.
//!
//! What it is not: part of either library. The subcommands are added at run
//! time in each binary's `main`, so the `Cli` types and the libraries'
//! code do not know about them.
//!
//! # Implementation notes
//!
//! - A command without subcommands of its own (waypass-server) gets
//!   `args_conflicts_with_subcommands`, so `waypass-server --layout de man`
//!   is an error rather than a man page that silently ignores `--layout`.
//! - The binary's global options (waypass-client's `--socket`) mean
//!   nothing to `completions` and `man`. clap propagates a global option
//!   into every subcommand that has no argument of the same id, so each of
//!   the two gets a placeholder of that id (`blocked_globals`): hidden,
//!   positional, after `--` only, and never read. Hidden is not enough
//!   for an option: clap_complete's bash script offers hidden options.
//! - The bash script is repaired after clap_complete writes it: for a
//!   binary name with a hyphen, its subcommands' case labels never match
//!   (`bash.rs`, clap-rs/clap#6421).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{value_parser, Arg, ArgMatches, Command, Parser};
use clap_complete::{Generator, Shell};

mod bash;

/// What `completions` and `man` print, for `completions --help`.
const COMPLETIONS_HELP: &str = "\
Examples:
  {bin} completions bash > ~/.local/share/bash-completion/completions/{bin}
  {bin} completions zsh > ~/.zfunc/_{bin}      # with fpath+=~/.zfunc
  {bin} completions fish > ~/.config/fish/completions/{bin}.fish";

/// The same for `man --help`.
const MAN_HELP: &str = "\
Examples:
  {bin} man | man -l -
  {bin} man --out-dir ~/.local/share/man/man1";

/// A documentation subcommand the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Docs {
    /// `completions <SHELL>`.
    Completions(Shell),
    /// `man [--out-dir DIR]`.
    Man {
        /// Where to write one page per command; `None`: the top page on stdout.
        out_dir: Option<PathBuf>,
    },
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed<P> {
    /// The binary's own command line, parsed.
    Run(P),
    /// A documentation subcommand.
    Docs(Docs),
}

/// The binary's command with `completions` and `man` added.
pub fn command<P: Parser>() -> Command {
    let cmd = P::command();
    let bin = cmd.get_name().to_string();
    let own_subcommands = cmd.has_subcommands();
    // After SHELL for `completions`; `man` has no positional of its own.
    let (completions_blocked, man_blocked) = (blocked_globals(&cmd, 2), blocked_globals(&cmd, 1));
    let cmd = cmd
        .subcommand(
            Command::new("completions")
                .args(completions_blocked)
                .about("Print a shell completion script on stdout")
                .arg(
                    Arg::new("shell")
                        .required(true)
                        .value_name("SHELL")
                        .value_parser(value_parser!(Shell)),
                )
                .after_help(COMPLETIONS_HELP.replace("{bin}", &bin)),
        )
        .subcommand(
            Command::new("man")
                .args(man_blocked)
                .about("Print the man page (roff) on stdout, or write every page to a directory")
                .arg(
                    Arg::new("out-dir")
                        .long("out-dir")
                        .value_name("DIR")
                        .help("Write BIN.1 and one BIN-SUBCOMMAND.1 per subcommand into DIR")
                        .value_parser(value_parser!(PathBuf)),
                )
                .after_help(MAN_HELP.replace("{bin}", &bin)),
        );
    if own_subcommands {
        cmd
    } else {
        cmd.args_conflicts_with_subcommands(true)
    }
}

/// Placeholders for the global arguments of `cmd`, from positional index
/// `first` on, that keep clap from propagating them into a subcommand
/// (see the implementation notes).
fn blocked_globals(cmd: &Command, first: usize) -> Vec<Arg> {
    cmd.get_arguments()
        .filter(|a| a.is_global_set())
        .enumerate()
        .map(|(i, a)| {
            Arg::new(a.get_id().clone())
                .index(first + i)
                .last(true)
                .hide(true)
        })
        .collect()
}

/// Parses `args` (the program name first) against [`command`].
pub fn try_parse_from<P, I, T>(args: I) -> Result<Parsed<P>, clap::Error>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command::<P>();
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    if let Some(docs) = docs_of(&matches) {
        return Ok(Parsed::Docs(docs));
    }
    P::from_arg_matches_mut(&mut matches)
        .map(Parsed::Run)
        .map_err(|e| e.format(&mut cmd))
}

fn docs_of(matches: &ArgMatches) -> Option<Docs> {
    match matches.subcommand()? {
        ("completions", m) => Some(Docs::Completions(*m.get_one::<Shell>("shell")?)),
        ("man", m) => Some(Docs::Man {
            out_dir: m.get_one::<PathBuf>("out-dir").cloned(),
        }),
        _ => None,
    }
}

/// Parses the process's arguments: returns the binary's `Cli`, or prints
/// the documentation asked for and exits (0, or 1 with one line on stderr
/// if it cannot be written). Errors and `--help` exit as `Cli::parse()` does.
pub fn parse<P: Parser>() -> P {
    match try_parse_from::<P, _, _>(std::env::args_os()) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Docs(docs)) => {
            let cmd = command::<P>();
            let bin = cmd.get_name().to_string();
            let mut out = io::stdout().lock();
            let code = match generate(&docs, cmd, &mut out).and_then(|()| out.flush()) {
                Ok(()) => 0,
                // The reader went away (e.g. `| head`): nothing to say.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    match docs {
                        Docs::Man { out_dir: Some(_) } => eprintln!("{bin}: error: {e}"),
                        _ => eprintln!("{bin}: error: cannot write to stdout: {e}"),
                    }
                    1
                }
            };
            std::process::exit(code)
        }
        Err(e) => e.exit(),
    }
}

/// Writes what `docs` asks for about `cmd` (as [`command`] returns it).
pub fn generate(docs: &Docs, mut cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    match docs {
        Docs::Completions(shell) => {
            // Not clap_complete::generate, which panics when the write
            // fails (a closed pipe, a full disk).
            let bin = cmd.get_name().to_string();
            cmd.set_bin_name(&bin);
            cmd.build();
            if *shell != Shell::Bash {
                return shell.try_generate(&cmd, out);
            }
            let mut script = Vec::new();
            shell.try_generate(&cmd, &mut script)?;
            let script = String::from_utf8(script).map_err(io::Error::other)?;
            out.write_all(bash::repair(&script, &bin).as_bytes())
        }
        Docs::Man { out_dir: None } => clap_mangen::Man::new(cmd).render(out),
        Docs::Man { out_dir: Some(dir) } => {
            let context = |e: io::Error| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write man pages to {}: {e}", dir.display()),
                )
            };
            fs::create_dir_all(dir).map_err(context)?;
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            let mut written = Vec::new();
            man_pages(cmd, dir, &mut written).map_err(context)?;
            for path in written {
                writeln!(out, "{}", path.display())?;
            }
            Ok(())
        }
    }
}

/// One page for `cmd` and one for each visible subcommand, depth first.
fn man_pages(cmd: Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub.clone(), dir, written)?;
    }
    written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
    Ok(())
}

#[cfg(test)]
mod tests;
