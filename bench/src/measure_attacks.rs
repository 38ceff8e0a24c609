//! What one client's attack costs a good client, and what it leaves in the
//! server: for each attack of `attackers`, a good client's `sync` round
//! trips (p50, p99) with no attacker and while the attack runs, and the
//! server's RSS and fd count before the attacker came, while it attacks,
//! and after it has left.
//!
//! What it is: per attack, a fresh waypass-server (on the servers' CPU),
//! the setting the attack needs (a device farm of `attack_devices` for the
//! clipboard attacks), the good client (wayland-client, in the bench),
//! and the attacker (a separate process at a lower priority, on the
//! bench's CPU). Each round trip is timed on its own. What it is not: a
//! comparison with other servers (the attacks were found against ours).
//!
//! # Implementation notes
//!
//! - An attack that keeps sending (1, 2, 7) is paused (`SIGSTOP`) and
//!   resumed (`SIGCONT`) between blocks of 100 round trips, so that idle
//!   and attacked blocks alternate and the machine's slow spells fall on
//!   both alike; an idle block starts once the server has served what the
//!   attacker wrote before it stopped (under 1 ms of its CPU in 20 ms). An attack that builds a state (4, 8) cannot be paused:
//!   its idle phase is before it comes. Each side takes `attack_syncs`
//!   round trips or `attack_phase`, whichever ends first; the report gives
//!   the count.
//! - "After" is read once the server's fd count is back to what it was
//!   before the attacker came (or 10 s have passed), plus 200 ms.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::attackers::Attack;
use crate::line_peer::{LinePeer, Priority};
use crate::measure_fanout::farm_args;
use crate::procfs;
use crate::runner::Plan;
use crate::servers::{ServerKind, ServerSet};
use crate::wire_env::Pinning;
use crate::wl_client::SyncClient;

/// Round trips per block when the attacker is paused and resumed.
const BLOCK: u64 = 100;
/// How long an attacker may take to set up.
const SETUP_PATIENCE: Duration = Duration::from_secs(180);

/// The server's memory and fds at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open fds.
    pub fds: usize,
}

/// What one attack did.
pub struct AttackResult {
    /// The attack's number in the issue and what it does.
    pub label: String,
    /// What the attacker reported once set up.
    pub detail: String,
    /// The good client's round trips with no attacker, in seconds.
    pub idle: Vec<f64>,
    /// The same while the attack ran.
    pub attacked: Vec<f64>,
    /// Before the attacker came, while it attacked, after it left.
    pub usage: [Option<Usage>; 3],
    /// The attacker was cut off during the measurement (why).
    pub cut_off: Option<String>,
}

/// The attacks, in report order, with their sizes from `plan`.
fn attacks(plan: &Plan) -> Vec<(Attack, String, usize, u64)> {
    let devices = plan.attack_devices;
    vec![
        (
            Attack::NullSelections,
            format!(
                "1: 341 × set_selection(null) per write, {devices} devices on other connections"
            ),
            1,
            devices,
        ),
        (
            Attack::SelectionChanges,
            format!("2: 6 connections × a socket full of selection changes, {devices} devices"),
            6,
            devices,
        ),
        (
            Attack::UnreadChannels,
            format!(
                "4: {} owners with one unread channel each",
                plan.attack_owners
            ),
            plan.attack_owners,
            0,
        ),
        (
            Attack::UnreadOutput,
            format!(
                "8: {} connections that never read, ~80 KiB of output each",
                plan.attack_readers
            ),
            plan.attack_readers,
            0,
        ),
        (
            Attack::NewIds,
            "7: sync with ever-new ids from one connection".to_string(),
            1,
            0,
        ),
    ]
}

/// Runs every attack; an attack that cannot run gives its reason.
pub fn measure(plan: &Plan, servers: &ServerSet) -> Vec<(String, Result<AttackResult, String>)> {
    let pinning = Pinning::new();
    attacks(plan)
        .into_iter()
        .map(|(attack, label, count, devices)| {
            log::info!("attack {label}");
            let result = one(plan, servers, pinning.as_ref(), attack, count, devices);
            if let Err(why) = &result {
                log::warn!("attack {label}: {why}");
            }
            let result = result.map(|mut r| {
                r.label = label.clone();
                r
            });
            (label, result)
        })
        .collect()
}

fn one(
    plan: &Plan,
    servers: &ServerSet,
    pinning: Option<&Pinning>,
    attack: Attack,
    count: usize,
    devices: u64,
) -> Result<AttackResult, String> {
    let server = servers.start(ServerKind::Ours)?;
    let pid = server.pid();
    if let Some(p) = pinning {
        p.pin_server(pid);
    }
    let failed = |e: String| format!("failed: {e}");
    let farm = if devices > 0 {
        let mut farm = LinePeer::start(
            "device farm",
            &farm_args(server.socket(), devices),
            Priority::Low,
        )
        .map_err(failed)?;
        farm.expect("ready", SETUP_PATIENCE).map_err(failed)?;
        Some(farm)
    } else {
        None
    };
    let mut good = SyncClient::connect(server.socket()).map_err(|e| failed(e.to_string()))?;
    good.round_trips(plan.attack_syncs.min(200))
        .map_err(|e| failed(e.to_string()))?;
    let args: Vec<OsString> = vec![
        "peer-attacker".into(),
        "--attack".into(),
        attack_name(attack).into(),
        "--socket".into(),
        server.socket().into(),
        "--count".into(),
        count.to_string().into(),
    ];
    let (detail, [idle, attacked], [before, during], mut attacker) = if is_state(attack) {
        let idle = phase(&mut good, plan.attack_syncs, plan.attack_phase).map_err(failed)?;
        let before = usage(pid);
        let mut attacker = LinePeer::start("attacker", &args, Priority::Low).map_err(failed)?;
        let detail = attacker
            .expect("attacking", SETUP_PATIENCE)
            .map_err(failed)?;
        let attacked = phase(&mut good, plan.attack_syncs, plan.attack_phase).map_err(failed)?;
        (detail, [idle, attacked], [before, usage(pid)], attacker)
    } else {
        let before = usage(pid);
        let mut attacker = LinePeer::start("attacker", &args, Priority::Low).map_err(failed)?;
        let detail = attacker
            .expect("attacking", SETUP_PATIENCE)
            .map_err(failed)?;
        let phases = alternate(plan, &mut good, &attacker, pid).map_err(failed)?;
        let during = usage(pid);
        (detail, phases, [before, during], attacker)
    };
    let cut_off = attacker.try_expect("lost");
    attacker.stop();
    let after = settle(pid, before);
    drop(farm);
    Ok(AttackResult {
        label: String::new(),
        detail,
        idle,
        attacked,
        usage: [before, during, after],
        cut_off,
    })
}

fn attack_name(attack: Attack) -> String {
    use clap::ValueEnum;
    attack
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Whether the attack is a state the attacker builds once (owners,
/// unread output), rather than requests it keeps sending.
fn is_state(attack: Attack) -> bool {
    matches!(attack, Attack::UnreadChannels | Attack::UnreadOutput)
}

/// Round trips, each timed, until `count` are done or `limit` is spent.
fn phase(good: &mut SyncClient, count: u64, limit: Duration) -> Result<Vec<f64>, String> {
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    while (samples.len() as u64) < count && started.elapsed() < limit {
        let took = good
            .round_trips(1)
            .map_err(|e| format!("good client: {e}"))?;
        samples.push(took.as_secs_f64());
    }
    Ok(samples)
}

/// Blocks of [`BLOCK`] round trips, with the attacker stopped, then
/// running, in turn, so that a slow spell of the machine falls on both
/// sides alike: the idle samples and the attacked ones. The attacker is
/// left running.
fn alternate(
    plan: &Plan,
    good: &mut SyncClient,
    attacker: &LinePeer,
    server: u32,
) -> Result<[Vec<f64>; 2], String> {
    let blocks = plan.attack_syncs.div_ceil(BLOCK);
    let mut sides = [Vec::new(), Vec::new()];
    for _ in 0..blocks {
        for (running, samples) in sides.iter_mut().enumerate() {
            attacker.pause(running == 0)?;
            if running == 0 {
                // What the attacker had written before it stopped is
                // still being served: idle starts once the server is.
                wait_quiet(server);
            }
            let limit = plan.attack_phase / blocks as u32;
            samples.extend(phase(good, BLOCK, limit)?);
        }
    }
    Ok(sides)
}

/// Waits (2 s at most) until the server has used less than 1 ms of CPU
/// time in 20 ms (each reading taken at rest: see
/// [`procfs::cpu_time_at_rest`]).
fn wait_quiet(pid: u32) {
    let patience = Duration::from_secs(2);
    let started = Instant::now();
    let mut last = procfs::cpu_time_at_rest(pid, patience).ok();
    while started.elapsed() < patience {
        std::thread::sleep(Duration::from_millis(20));
        let now = procfs::cpu_time_at_rest(pid, patience).ok();
        match (last, now) {
            (Some(a), Some(b)) if b.saturating_sub(a) < Duration::from_millis(1) => return,
            (None, _) | (_, None) => return,
            _ => last = now,
        }
    }
}

fn usage(pid: u32) -> Option<Usage> {
    Some(Usage {
        rss_kib: procfs::rss_kib(pid).ok()?,
        fds: procfs::fd_usage(pid).ok()?.0,
    })
}

/// The server's usage once its fds are back to `before`'s (10 s at most).
fn settle(pid: u32, before: Option<Usage>) -> Option<Usage> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match (usage(pid), before) {
            (Some(now), Some(b)) if now.fds <= b.fds => break,
            (None, _) | (_, None) => break,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    usage(pid)
}
