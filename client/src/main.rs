//! `waypass-client`: the command line over the `waypass-client` library.
//!
//! `main` sets up logging (env_logger, to stderr), parses arguments, runs
//! the command, and turns every expected failure into one line on stderr,
//! `waypass-client: error: ...` with causes chained by `: ` (after `[TAG] `
//! with `--tag`), and a non-zero exit status: never a panic. The command itself lives in `cli`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: cli::Cli = waypass_cli_docs::parse();
    match cli::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (e.g. `| head`): nothing to say.
        Err(cli::CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            let tag = args.tag().map_or(String::new(), |t| format!("[{t}] "));
            eprintln!(
                "{tag}waypass-client: error: {}",
                waypass_client::chain_to_string(&e)
            );
            ExitCode::FAILURE
        }
    }
}
