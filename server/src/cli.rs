//! The command line of `waypass-server`, parsed with clap.
//!
//! This module only describes and parses options and turns them into a
//! [`ServerConfig`] ([`Cli::config`]), the one thing the library's
//! [`ServerBuilder`](crate::ServerBuilder) takes; [`Cli::config_from_environment`] adds the
//! socket that socket activation passed (`LISTEN_*`), the one place the
//! server reads those variables. It does not open sockets or compile
//! keymaps, and a program embedding the server does not need it (or
//! clap): it is compiled with the `cli` feature, on by default.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Persist, ServerConfig, Settings};
use crate::keymap::{KeymapSource, RuleNames};
use crate::limits::Limits;
use crate::runtime::activation::{ActivationError, ListenFds, LISTEN_VARIABLES};

const AFTER_HELP: &str = "\
Examples:
  # Serve the embedded US keymap on the first free $XDG_RUNTIME_DIR/wayland-N:
  waypass-server

  # Serve a German keymap with nodeadkeys on $XDG_RUNTIME_DIR/waypass-0:
  waypass-server --socket waypass-0 --layout de --variant nodeadkeys

  # Serve a keymap file as is; `kill -HUP <pid>` re-reads it:
  waypass-server --socket /tmp/wp.sock --keymap ./my.xkb

  # Run two clients connected through WAYLAND_SOCKET (each string goes
  # through /bin/sh -c); exit when both have, with status 0 only if both
  # exited 0:
  waypass-server --socket /tmp/wp.sock --exit-with-children \
      --spawn 'waypass-client listen bob --count 1' \
      --spawn 'waypass-client send bob hello --as alice --wait 5000'

  # XKB_DEFAULT_* fill the RMLVO fields no flag gives (as xkbcommon does):
  XKB_DEFAULT_LAYOUT=de XKB_DEFAULT_VARIANT=nodeadkeys waypass-server

  # Keep the clipboard when wl-copy exits, up to 256 MiB per user:
  waypass-server --persist --persist-max 256MiB

Keymap: --keymap FILE, else the RMLVO flags, each unset field taken from
XKB_DEFAULT_RULES/MODEL/LAYOUT/VARIANT/OPTIONS, then xkbcommon's default.
XKB_DEFAULT_VARIANT counts only when XKB_DEFAULT_LAYOUT gives the layout.
With no flag and none of these variables set, the embedded US keymap is
served (it needs no xkeyboard-config). Valid names: `localectl
list-x11-keymap-layouts` (-variants, -models, -options), or
/usr/share/X11/xkb/rules/evdev.lst. SIGHUP re-reads the keymap.

Socket activation: started by systemd (or systemd-socket-activate) with
LISTEN_FDS, it serves the socket passed as fd 3 instead of binding one,
takes no lock file and leaves the socket's path at exit (contrib/systemd
has the units). --socket, if given, must name that same path.

The socket path is printed on stdout once connections are accepted.
Logs go to stderr (RUST_LOG=debug for more); WAYLAND_DEBUG=server traces
every message. SIGINT and SIGTERM stop the server and remove the socket
and <socket>.lock, never a file that replaced them.
The waypass_broker_v1 global is offered beside wl_seat.";

/// `waypass-server`: a Wayland-compatible keymap server.
///
/// Offers `wl_seat` with a keyboard; every `wl_keyboard` receives the keymap
/// as one shared, sealed memory file, plus its repeat settings.
#[derive(Debug, Parser)]
#[command(name = "waypass-server", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Socket to listen on: a NAME under $XDG_RUNTIME_DIR or an absolute
    /// PATH, in an existing directory. Default: the first free wayland-N
    /// (N = 0..=32). A socket nobody listens on is replaced; a live one, or
    /// any other file, is an error and left alone.
    #[arg(long, value_name = "NAME|PATH")]
    pub socket: Option<String>,

    /// XKB layout(s), e.g. `us` or `us,de` (default: $XKB_DEFAULT_LAYOUT or us).
    #[arg(long, conflicts_with = "keymap")]
    pub layout: Option<String>,

    /// XKB variant(s), one per layout, e.g. `dvorak`; needs --layout
    /// (default: $XKB_DEFAULT_VARIANT when the layout is $XKB_DEFAULT_LAYOUT).
    #[arg(long, conflicts_with = "keymap", requires = "layout")]
    pub variant: Option<String>,

    /// XKB model, e.g. `pc105` (default: $XKB_DEFAULT_MODEL or pc105).
    #[arg(long, conflicts_with = "keymap")]
    pub model: Option<String>,

    /// XKB options, e.g. `ctrl:nocaps,compose:ralt` (default:
    /// $XKB_DEFAULT_OPTIONS or none). An option that neither
    /// rules/evdev.lst nor the rules file defines is refused.
    #[arg(long, conflicts_with = "keymap")]
    pub options: Option<String>,

    /// XKB rules, e.g. `evdev` (default: $XKB_DEFAULT_RULES or evdev).
    #[arg(long, conflicts_with = "keymap")]
    pub rules: Option<String>,

    /// An XKB keymap text file, served byte for byte (validated first): a
    /// regular file of at most 4 MiB.
    #[arg(long, value_name = "FILE")]
    pub keymap: Option<PathBuf>,

    /// Key repeat rate in characters per second (0 disables repeat).
    #[arg(long, default_value_t = 25, value_name = "PER_SECOND")]
    pub repeat_rate: i32,

    /// Delay before key repeat starts, in milliseconds.
    #[arg(long, default_value_t = 600, value_name = "MS")]
    pub repeat_delay: i32,

    /// The seat name announced with `wl_seat.name`.
    #[arg(long, default_value = "seat0")]
    pub seat_name: String,

    /// Broker names one client may own at once (more fail with
    /// too_many_names) [default: 16; the same as --limit names=N]
    #[arg(long, value_name = "N")]
    pub max_names: Option<u64>,

    /// Live broker connection objects one client may hold (more fail with
    /// too_many_pending) [default: 64; --limit pending-connects=N]
    #[arg(long, value_name = "N")]
    pub max_pending_connects: Option<u64>,

    /// Channels queued for one name owner that it has not read yet (more
    /// connects to it fail with busy; the owner stays connected)
    /// [default: 64; --limit pending-peers=N]
    #[arg(long, value_name = "N")]
    pub max_pending_peers: Option<u64>,

    /// Sets one limit (repeatable). Per client: objects, keyboards,
    /// data-devices, data-sources, data-offers, mime-types, mime-length,
    /// pending-sends, pastes, persist-deadline-ms, fds-in-flight,
    /// waiting-fds, output-bytes, names, pending-connects, pending-peers.
    /// Server-wide (0 derives the fd ones from RLIMIT_NOFILE):
    /// total-connections, total-fds, total-fds-in-flight, total-pastes,
    /// total-output-bytes, total-names, total-objects.
    /// The limits are checked against each other at start-up.
    #[arg(long, value_name = "NAME=N", value_parser = parse_limit)]
    pub limit: Vec<(String, u64)>,

    /// Keep each selection in the server (sealed memfds), so that it
    /// outlives the client that copied it: every offered type is read from
    /// the copier when it sets the selection, up to --persist-max.
    #[arg(long)]
    pub persist: bool,

    /// The bytes one uid's kept selections may hold, both selections and
    /// every type together: N, or N with KiB, MiB or GiB. A type that would
    /// go past it is not kept (nor offered once the copier has left).
    #[arg(long, value_name = "SIZE", requires = "persist", value_parser = parse_size, default_value = "64MiB")]
    pub persist_max: u64,

    /// Run CMD as a client: `/bin/sh -c CMD` with WAYLAND_SOCKET set to its
    /// end of a socketpair, and no other fd of the server. Repeatable.
    #[arg(long, value_name = "CMD")]
    pub spawn: Vec<String>,

    /// Stop once every --spawn child has exited, removing the socket as on
    /// SIGTERM. Exit status: 0 if every child exited with status 0, else 1.
    #[arg(long, requires = "spawn")]
    pub exit_with_children: bool,
}

impl Cli {
    /// The configuration these arguments describe, `XKB_DEFAULT_*`
    /// variables included.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            socket: self.socket.clone(),
            listener: None,
            keymap: self.keymap_source(),
            settings: self.settings(),
            limits: self.limits(),
            spawn: self.spawn.clone(),
            exit_with_children: self.exit_with_children,
        }
    }

    /// [`Cli::config`] with the listening socket of socket activation,
    /// if this process was passed one (`sd_listen_fds(3)`).
    ///
    /// Reads `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` and removes
    /// them from the environment, whoever they were for, so that no child
    /// inherits them. Call it once, before starting threads (removing a
    /// variable races with other threads reading the environment).
    pub fn config_from_environment(&self) -> Result<ServerConfig, ActivationError> {
        let [pid, fds, names] = LISTEN_VARIABLES.map(|name| {
            let value = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
            std::env::remove_var(name);
            value
        });
        let mut config = self.config();
        let passed = ListenFds::parse(
            pid.as_deref(),
            fds.as_deref(),
            names.as_deref(),
            std::process::id(),
        )?;
        if let Some(passed) = passed {
            // SAFETY: LISTEN_PID is our pid, so the fds were passed to this
            // process for it to take; the variables are gone now, so no
            // second call takes them again, and main calls this before any
            // thread exists.
            config.listener = Some(unsafe { passed.take_listener() }?);
        }
        Ok(config)
    }

    /// Where the keymap comes from: a file, RMLVO names (from flags or
    /// `XKB_DEFAULT_*`), or the embedded default.
    pub fn keymap_source(&self) -> KeymapSource {
        self.keymap_source_with(|name| std::env::var(name).ok())
    }

    /// [`Cli::keymap_source`] with `env` to look variables up.
    fn keymap_source_with(&self, env: impl Fn(&str) -> Option<String>) -> KeymapSource {
        if let Some(path) = &self.keymap {
            return KeymapSource::File(path.clone());
        }
        let names = RuleNames {
            rules: self.rules.clone(),
            model: self.model.clone(),
            layout: self.layout.clone(),
            variant: self.variant.clone(),
            options: self.options.clone(),
        };
        if names.is_empty() && !RuleNames::from_environment(env) {
            KeymapSource::Embedded
        } else {
            KeymapSource::Names(names)
        }
    }

    /// Every limit: the defaults, then `--limit` in order, then the named
    /// broker flags (which are `--limit names=`, `pending-connects=` and
    /// `pending-peers=` under their older names).
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        for (name, value) in &self.limit {
            // Names were checked when the arguments were parsed.
            let _ = limits.set(name, *value);
        }
        let named = [
            ("names", self.max_names),
            ("pending-connects", self.max_pending_connects),
            ("pending-peers", self.max_pending_peers),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                let _ = limits.set(name, value);
            }
        }
        limits
    }

    /// The seat and repeat settings.
    pub fn settings(&self) -> Settings {
        Settings {
            repeat_rate: self.repeat_rate,
            repeat_delay: self.repeat_delay,
            seat_name: self.seat_name.clone(),
            persist: self.persist.then_some(Persist {
                max_bytes: self.persist_max,
            }),
        }
    }
}

/// A size: a whole number of bytes, or of KiB, MiB or GiB.
fn parse_size(arg: &str) -> Result<u64, String> {
    let digits = arg.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &arg[digits.len()..] {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        unit => return Err(format!("{unit:?} is not a unit: use KiB, MiB or GiB")),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{digits:?} is not a whole number"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{arg} is too large"))
}

/// `NAME=N` for `--limit`, with a known name.
fn parse_limit(arg: &str) -> Result<(String, u64), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not NAME=N"))?;
    let value: u64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))?;
    Limits::default()
        .set(name, value)
        .map_err(|e| e.to_string())?;
    Ok((name.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn limit_sets_any_row_and_the_named_flags_win() {
        let cli = Cli::parse_from([
            "waypass-server",
            "--limit",
            "keyboards=4",
            "--limit",
            "names=3",
            "--max-names",
            "5",
        ]);
        let limits = cli.limits();
        assert_eq!(limits.keyboards, 4);
        assert_eq!(limits.names, 5);
        assert_eq!(limits.pending_peers, 64);
        assert!(Cli::try_parse_from(["waypass-server", "--limit", "bogus=1"]).is_err());
        assert!(Cli::try_parse_from(["waypass-server", "--limit", "names"]).is_err());
    }

    #[test]
    fn the_limit_help_names_every_row() {
        use clap::CommandFactory;
        let mut command = Cli::command();
        let help = command.render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for line in Limits::default().table().lines() {
            let name = line.split_whitespace().next().unwrap();
            assert!(help.contains(name), "--limit's help does not name {name}");
        }
    }

    #[test]
    fn no_keymap_option_means_embedded() {
        let cli = Cli::parse_from(["waypass-server"]);
        assert!(matches!(
            cli.keymap_source_with(no_env),
            KeymapSource::Embedded
        ));
        assert_eq!(cli.repeat_rate, 25);
        assert_eq!(cli.repeat_delay, 600);
        assert_eq!(cli.seat_name, "seat0");
        // The flags' defaults are the library's.
        assert_eq!(cli.settings(), Settings::default());
    }

    #[test]
    fn xkb_default_variables_alone_mean_names() {
        let cli = Cli::parse_from(["waypass-server"]);
        let env = |name: &str| (name == "XKB_DEFAULT_LAYOUT").then(|| "de".to_string());
        assert_eq!(
            cli.keymap_source_with(env),
            KeymapSource::Names(RuleNames::default())
        );
        // Alone, the variant is ignored by xkbcommon: so it is here.
        let env = |name: &str| (name == "XKB_DEFAULT_VARIANT").then(|| "dvorak".to_string());
        assert_eq!(cli.keymap_source_with(env), KeymapSource::Embedded);
        let env = |name: &str| (name == "XKB_DEFAULT_LAYOUT").then(String::new);
        assert_eq!(cli.keymap_source_with(env), KeymapSource::Embedded);
    }

    #[test]
    fn any_rmlvo_option_means_names() {
        let cli = Cli::parse_from(["waypass-server", "--model", "pc104"]);
        match cli.keymap_source_with(no_env) {
            KeymapSource::Names(n) => {
                assert_eq!(n.model.as_deref(), Some("pc104"));
                assert_eq!(n.layout, None);
            }
            other => panic!("unexpected source {other:?}"),
        }
    }

    #[test]
    fn a_variant_needs_a_layout() {
        // xkbcommon would silently drop a variant given without a layout.
        let r = Cli::try_parse_from(["waypass-server", "--variant", "dvorak"]);
        assert!(r.is_err());
        let cli = Cli::parse_from(["waypass-server", "--layout", "us", "--variant", "dvorak"]);
        assert!(matches!(cli.keymap_source(), KeymapSource::Names(_)));
    }

    #[test]
    fn spawn_is_repeatable_and_exit_with_children_needs_it() {
        let cli = Cli::parse_from(["waypass-server", "--spawn", "a b", "--spawn", "c"]);
        assert_eq!(cli.spawn, ["a b", "c"]);
        assert_eq!(cli.limits(), Limits::default());
        let r = Cli::try_parse_from(["waypass-server", "--exit-with-children"]);
        assert!(r.is_err());
    }

    #[test]
    fn keymap_file_conflicts_with_names() {
        let r = Cli::try_parse_from(["waypass-server", "--keymap", "x.xkb", "--layout", "de"]);
        assert!(r.is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn persist_max_takes_bytes_or_binary_units_and_needs_persist() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("64MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        let cli = Cli::try_parse_from(["waypass-server", "--persist"]).unwrap();
        assert_eq!(cli.settings().persist.map(|p| p.max_bytes), Some(64 << 20));
        assert_eq!(
            Cli::try_parse_from(["waypass-server"])
                .unwrap()
                .settings()
                .persist,
            None
        );
        assert!(Cli::try_parse_from(["waypass-server", "--persist-max", "1MiB"]).is_err());
    }
}
