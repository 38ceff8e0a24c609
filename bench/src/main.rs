//! `waypass-bench`: the benchmarks of issue 7, run by `bench/run.sh`
//! (`make bench`).
//!
//! What it is: one binary that measures the kernel's limit (socketpair
//! ping-pong, `SCM_RIGHTS`), `wl_display.sync` round trips, connection cost
//! and memory per client, against waypass-server, a wayland-rs server and a
//! libwayland server, each in its own process; then channels brokered by
//! waypass-server and files passed over them, against the same raw
//! references; the clipboard (live and persisted by `--persist`), against
//! a plain pipe and sway; what a burst
//! of selection changes costs with thousands of devices, against sway; and
//! what hostile clients cost a good one. It prints a Markdown report where
//! every figure is a median (or a percentile) with its ratio to a reference
//! measured in the same run. Hidden subcommands turn the same binary into
//! those peer processes (servers, device farm, attackers).
//!
//! What it is not: a test. Targets are reported, never asserted; the exit
//! status is non-zero only if the bench itself cannot run.
//!
//! # Implementation notes
//!
//! This package is its own workspace (see Cargo.toml) so that enabling
//! libwayland for the peer server cannot leak into the root workspace's
//! wayland-rs interop tests through feature unification.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod attackers;
mod bare_server;
mod broker_peer;
mod c_client;
mod callgrind;
mod clipboard_peers;
mod clipboard_persist;
mod device_farm;
mod keymap;
mod line_peer;
mod machine;
mod measure_attacks;
mod measure_broker;
mod measure_clients;
mod measure_clipboard;
mod measure_fanout;
mod measure_files;
mod measure_wire;
mod peer_server;
mod process;
mod procfs;
mod raw;
mod raw_wayland;
mod report;
mod runner;
mod servers;
mod stats;
mod wire_env;
mod wl_client;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::peer_server::BackendKind;
use crate::runner::Plan;
use crate::servers::ServerSet;

/// Benchmarks of waypass against the kernel, wayland-rs and libwayland.
#[derive(Debug, Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    peer: Option<Peer>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The waypass-server binary (a release build); without it, the
    /// measurements of our server are reported as pending.
    #[arg(long, value_name = "PATH")]
    waypass_server: Option<PathBuf>,
    /// Another waypass-server build to measure beside it in the same run
    /// (e.g. the code before a change), to show a regression or its absence.
    #[arg(long, value_name = "PATH")]
    baseline_server: Option<PathBuf>,
    /// Measured rounds per side (the report gives their median).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Unrecorded warm-up rounds per side.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Fresh-server runs per client count in the memory measurement.
    #[arg(long, default_value_t = 3)]
    memory_runs: usize,
    /// Divide every count by 10 (a smoke test of the harness, not figures).
    #[arg(long)]
    quick: bool,
    /// Run the clipboard measurement alone and print its section, not a
    /// report (to work on it; `--output` is ignored).
    #[arg(long)]
    only_clipboard: bool,
    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The peer processes: this binary re-executed by the bench.
#[derive(Debug, Subcommand)]
enum Peer {
    /// Echoes 8-byte messages on the socket given as stdin.
    #[command(hide = true, name = "peer-echo")]
    Echo,
    /// Receives and closes fds on the socket given as stdin.
    #[command(hide = true, name = "peer-fd-sink")]
    FdSink,
    /// A wayland-rs or libwayland keyboard server.
    #[command(hide = true, name = "peer-server")]
    Server {
        /// Which backend.
        #[arg(long, value_enum)]
        backend: BackendKind,
        /// Where to listen.
        #[arg(long)]
        socket: PathBuf,
    },
    /// The bare epoll server: answers `wl_display.sync` and nothing else.
    #[command(hide = true, name = "peer-bare")]
    Bare {
        /// Where to listen.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Does `count` `wl_display.sync` round trips with one client against
    /// the server at `socket` (to look at a client with strace).
    #[command(hide = true, name = "peer-sync")]
    Sync {
        /// Which client.
        #[arg(long, value_enum)]
        client: measure_wire::ClientKind,
        /// The server's socket.
        #[arg(long)]
        socket: PathBuf,
        /// How many round trips.
        #[arg(long, default_value_t = 10_000)]
        count: u64,
    },
    /// Owns a name on waypass-server's broker and serves the channel the
    /// bench opens to it.
    #[command(hide = true, name = "peer-broker")]
    Broker {
        /// waypass-server's socket.
        #[arg(long)]
        server: PathBuf,
        /// The name to register.
        #[arg(long)]
        name: String,
        /// What to do with the channel.
        #[arg(long, value_enum)]
        mode: broker_peer::PeerMode,
    },
    /// Sets a clipboard selection on each `copy` line of stdin and serves
    /// every `send` that comes for it from the data file.
    #[command(hide = true, name = "peer-copier")]
    Copier {
        /// The server's socket.
        #[arg(long)]
        socket: PathBuf,
        /// The data to serve.
        #[arg(long)]
        data: PathBuf,
    },
    /// Holds data-control devices on a server and reads what they are
    /// told (see `device_farm`).
    #[command(hide = true, name = "peer-devices")]
    Devices {
        /// The server's socket.
        #[arg(long)]
        socket: PathBuf,
        /// How many devices.
        #[arg(long)]
        devices: usize,
        /// Devices per connection.
        #[arg(long)]
        per_connection: usize,
    },
    /// Runs one attack against a server until killed (see `attackers`).
    #[command(hide = true, name = "peer-attacker")]
    Attacker {
        /// Which attack.
        #[arg(long, value_enum)]
        attack: attackers::Attack,
        /// The server's socket.
        #[arg(long)]
        socket: PathBuf,
        /// Its size: connections, owners or readers.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Splices the data file into stdout for each line of stdin (the
    /// clipboard's reference).
    #[command(hide = true, name = "peer-pipe-writer")]
    PipeWriter {
        /// The data to write.
        #[arg(long)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.peer {
        Some(peer) => run_peer(peer),
        None => run_bench(cli.run),
    }
}

fn run_peer(peer: Peer) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // A peer must not outlive the bench that started it.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL) {
        log::warn!("cannot set the parent-death signal: {e}");
    }
    let result: Result<(), Box<dyn std::error::Error>> = match peer {
        Peer::Echo => stdin_socket().and_then(raw::echo_peer).map_err(Into::into),
        Peer::FdSink => stdin_socket()
            .and_then(raw::fd_sink_peer)
            .map_err(Into::into),
        Peer::Server { backend, socket } => {
            peer_server::serve(backend, &socket).map_err(Into::into)
        }
        Peer::Bare { socket } => bare_server::serve(&socket).map_err(Into::into),
        Peer::Sync {
            client,
            socket,
            count,
        } => measure_wire::sync_client(client, &socket, count),
        Peer::Broker { server, name, mode } => broker_peer::serve(&server, &name, mode),
        Peer::Copier { socket, data } => clipboard_peers::copier(&socket, &data),
        Peer::PipeWriter { data } => clipboard_peers::pipe_writer(&data),
        Peer::Devices {
            socket,
            devices,
            per_connection,
        } => device_farm::serve(&socket, devices, per_connection),
        Peer::Attacker {
            attack,
            socket,
            count,
        } => attackers::run(attack, &socket, count),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            log::error!("peer failed: {text}");
            ExitCode::FAILURE
        }
    }
}

/// The socketpair end the bench passed as stdin.
fn stdin_socket() -> io::Result<UnixStream> {
    Ok(UnixStream::from(io::stdin().as_fd().try_clone_to_owned()?))
}

fn run_bench(args: RunArgs) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    raise_fd_limit();
    let scale = if args.quick { 10 } else { 1 };
    let plan = Plan {
        warmup: args.warmup,
        runs: args.runs.max(1),
        ping_pongs: 50_000 / scale,
        fds: 50_000 / scale,
        syncs: 20_000 / scale,
        callgrind_warmups: 1_000 / scale,
        clients: 1_000 / scale,
        memory_clients: vec![1_000 / scale, 10_000 / scale],
        memory_runs: args.memory_runs.max(1),
        setups: 2_000 / scale,
        big_copies: (5 / scale).max(1),
        big_handovers: 1_000 / scale,
        clipboard_bytes: (1 << 30) / scale,
        clipboard_small_bytes: 1 << 20,
        clipboard_small_pastes: 64 / scale,
        persist_rss_bytes: 64 << 20,
        clipboard_rounds: 200 / scale,
        fanout_devices: vec![1_000 / scale, 10_000 / scale],
        fanout_bursts: vec![1, 100 / scale, 1_000 / scale],
        fanout_budget: Duration::from_secs(8),
        attack_devices: 2_000 / scale,
        attack_owners: 8_000 / scale as usize,
        attack_readers: 1_000 / scale as usize,
        attack_syncs: 2_000 / scale,
        attack_phase: Duration::from_secs(5),
    };
    let servers = ServerSet::new(
        args.waypass_server.as_deref(),
        args.baseline_server.as_deref(),
    );
    if args.only_clipboard {
        let clipboard = measure_clipboard::measure(&plan, &servers);
        print!("{}", report::clipboard_alone(&clipboard));
        return ExitCode::SUCCESS;
    }
    let machine = machine::Machine::probe();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let results = report::Results {
        wire: measure_wire::measure(&plan, &servers),
        connect: measure_clients::measure_connect(&plan, &servers),
        memory: measure_clients::measure_memory(&plan, &servers),
        broker: measure_broker::measure(&plan, &servers),
        files: measure_files::measure(&plan, &servers),
        clipboard: measure_clipboard::measure(&plan, &servers),
        fanout: measure_fanout::measure(&plan, &servers),
        attacks: measure_attacks::measure(&plan, &servers),
    };
    let text = report::render(&machine, &command, &plan, &results);
    print!("{text}");
    if let Some(path) = args.output {
        if let Err(e) = std::fs::write(&path, &text) {
            log::error!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Raises the soft fd limit to the hard one: the memory measurement holds
/// 10,000 clients open, and the servers it starts inherit the limit.
fn raise_fd_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("cannot raise the fd limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the fd limit: {e}"),
    }
}
