//! `waypass-server`: parses the command line into a
//! [`waypass_server::ServerConfig`] (with the socket that socket
//! activation passed, if any), sets up logging and runs
//! [`waypass_server::run`]. Everything else lives in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use waypass_protocol::error_chain;
use waypass_server::{run, Cli};

fn main() -> ExitCode {
    let cli: Cli = waypass_cli_docs::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Before anything could start a thread: it edits the environment.
    let result = match cli.config_from_environment() {
        Ok(config) => run(config),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Not only a log line: RUST_LOG=off must not hide why we quit.
            // The same style as waypass-client: `<bin>: error: <causes>`.
            eprintln!("waypass-server: error: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
