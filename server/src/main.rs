//! `waypass-server`: parses the command line into a
//! [`waypass_server::ServerConfig`] (with the socket that socket
//! activation passed, if any), sets up logging, builds the server with
//! signal handling, prints the socket path and runs it. Everything else
//! lives in the library.
#![forbid(unsafe_code)]

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use waypass_protocol::error_chain;
use waypass_server::{Cli, ServerBuilder};

fn main() -> ExitCode {
    let cli: Cli = waypass_cli_docs::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match serve(&cli) {
        Ok(code) => code,
        Err(e) => {
            // Not only a log line: RUST_LOG=off must not hide why we quit.
            // The same style as waypass-client: `<bin>: error: <causes>`.
            eprintln!("waypass-server: error: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Builds the server, prints its socket path on stdout and runs it.
fn serve(cli: &Cli) -> Result<ExitCode, Box<dyn Error>> {
    // Before anything could start a thread: it edits the environment.
    let config = cli.config_from_environment()?;
    // On this thread, before any other exists: the signal mask is inherited.
    let server = ServerBuilder::new(config).handle_signals(true).build()?;
    // The first line of stdout, which scripts and tests read; before the
    // `--spawn` children (started by `run`), who share our stdout.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", server.socket_path().display())?;
    stdout.flush()?;
    drop(stdout);
    Ok(server.run()?)
}
