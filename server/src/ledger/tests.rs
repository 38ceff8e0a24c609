use super::*;

const SERVER: u32 = 1000;
const OTHER: u32 = 65534;

fn ledger(fd_limit: u64) -> Ledger {
    let limits = Limits::default();
    Ledger::new(&limits, limits.budgets(fd_limit, 10).unwrap(), SERVER)
}

/// Opens connections of `uid` that each take as many of `resource` as
/// they may, up to `want`, until one gets nothing or `count` are open.
fn greedy(
    ledger: &mut Ledger,
    uid: u32,
    count: usize,
    resource: Resource,
    want: u64,
) -> Vec<Account> {
    let mut accounts = Vec::new();
    for _ in 0..count {
        let Ok(mut account) = ledger.open(uid) else {
            break;
        };
        let take = ledger.allowance(&account, resource).min(want);
        ledger.charge(&mut account, resource, take).unwrap();
        accounts.push(account);
    }
    accounts
}

#[test]
fn a_charge_over_the_per_client_limit_is_refused_whole() {
    let mut ledger = ledger(20_000);
    let mut a = ledger.open(SERVER).unwrap();
    ledger.charge(&mut a, Resource::Fds, 20).unwrap();
    let err = ledger.charge(&mut a, Resource::Fds, 9).unwrap_err();
    assert_eq!(err.scope, Scope::Client);
    assert_eq!((err.held, err.asked, err.limit), (20, 9, 28));
    assert_eq!(a.held(Resource::Fds), 20, "nothing charged");
    assert!(
        err.to_string().contains("the limit is 28 per client"),
        "{err}"
    );
    ledger.charge(&mut a, Resource::Fds, 8).unwrap();
    ledger.close(&mut a);
    assert_eq!(ledger.shared_used, [0; COUNT]);
    assert_eq!(ledger.takers, [0; COUNT]);
}

#[test]
fn a_thousand_connections_that_fill_their_waiting_fds_leave_room_for_everyone_else() {
    // The attack: 691 connections x 28 waiting fds filled the fd
    // table. Each taker now gets a share of what is left.
    let mut ledger = ledger(20_000);
    let attackers = greedy(&mut ledger, SERVER, 1000, Resource::Fds, 28);
    let taken: u64 = attackers.iter().map(|a| a.held(Resource::Fds)).sum();
    let pool = ledger.quotas[Resource::Fds.index()].shared;
    println!("1000 greedy connections hold {taken} of {pool} shared fds");
    assert!(taken < pool);
    // A newcomer still gets the fd of a request, and its keymap.
    let mut good = ledger.open(SERVER).unwrap();
    ledger.charge(&mut good, Resource::Fds, 1).unwrap();
    ledger.charge(&mut good, Resource::FdsInFlight, 1).unwrap();
}

#[test]
fn shares_shrink_as_takers_come_and_grow_back_as_they_go() {
    let mut ledger = ledger(2_000);
    let mut first = ledger.open(SERVER).unwrap();
    let alone = ledger.allowance(&first, Resource::OutputBytes);
    ledger
        .charge(&mut first, Resource::OutputBytes, 64 * 1024)
        .unwrap();
    let mut crowd = greedy(&mut ledger, SERVER, 200, Resource::OutputBytes, 1 << 20);
    let later = ledger.allowance(&crowd[199], Resource::OutputBytes);
    assert!(later < alone, "{later} < {alone}");
    for a in &mut crowd {
        ledger.close(a);
    }
    assert_eq!(
        ledger.allowance(&first, Resource::OutputBytes),
        alone - 64 * 1024
    );
}

#[test]
fn the_base_is_always_there() {
    // However the shared pool is used, a new connection gets its base:
    // one fd in flight (its keymap), 1 KiB of output, 16 objects.
    let mut ledger = ledger(20_000);
    let _hogs = greedy(&mut ledger, SERVER, 5000, Resource::FdsInFlight, 128);
    let mut good = ledger.open(SERVER).unwrap();
    ledger.charge(&mut good, Resource::FdsInFlight, 1).unwrap();
    ledger
        .charge(&mut good, Resource::OutputBytes, 4096)
        .unwrap();
    ledger.charge(&mut good, Resource::Objects, 16).unwrap();
}

#[test]
fn another_uid_gets_at_most_half_of_what_is_left() {
    let mut ledger = ledger(20_000);
    let pool = ledger.quotas[Resource::FdsInFlight.index()].shared;
    let foreign = greedy(&mut ledger, OTHER, 10_000, Resource::FdsInFlight, 128);
    let taken: u64 = foreign.iter().map(|a| a.held(Resource::FdsInFlight)).sum();
    let base = foreign.len() as u64; // one each, share-free
    println!(
        "uid {OTHER}: {} connections, {taken} fds in flight of a {pool} pool",
        foreign.len()
    );
    assert!(taken - base <= pool / 2, "{taken}");
    // Its connections too.
    let budget = ledger.connections;
    assert!(foreign.len() as u64 <= budget / 2 + 1, "{}", foreign.len());
    // The server's own uid is served.
    let mut own = ledger.open(SERVER).unwrap();
    ledger.charge(&mut own, Resource::FdsInFlight, 64).unwrap();
}

#[test]
fn a_uid_refusal_names_the_uid() {
    let mut ledger = ledger(20_000);
    let mut hogs = greedy(&mut ledger, OTHER, 10_000, Resource::Objects, 16_384);
    let last = hogs.last_mut().unwrap();
    let err = ledger.charge(last, Resource::Objects, 10_000).unwrap_err();
    assert!(
        matches!(err.scope, Scope::Uid(OTHER) | Scope::Share),
        "{err:?}"
    );
}

#[test]
fn set_records_what_was_measured_and_close_gives_everything_back() {
    let mut ledger = ledger(20_000);
    let mut a = ledger.open(OTHER).unwrap();
    ledger.set(&mut a, Resource::OutputBytes, 100_000);
    assert_eq!(ledger.takers[Resource::OutputBytes.index()], 1);
    assert_eq!(ledger.foreign_takers[Resource::OutputBytes.index()], 1);
    ledger.set(&mut a, Resource::OutputBytes, 10);
    assert_eq!(ledger.takers[Resource::OutputBytes.index()], 0);
    assert_eq!(ledger.foreign_takers[Resource::OutputBytes.index()], 0);
    ledger.set(&mut a, Resource::Names, 5);
    ledger.close(&mut a);
    ledger.close(&mut a); // twice is harmless
    assert_eq!(ledger.open, 0);
    assert!(ledger.uids.is_empty());
    assert_eq!(ledger.foreign_takers, [0; COUNT]);
    assert_eq!(ledger.shared_used, [0; COUNT]);
}

#[test]
fn connections_past_the_budget_are_refused() {
    let limits = Limits::default();
    let mut budgets = limits.budgets(20_000, 10).unwrap();
    budgets.connections = 3;
    let mut ledger = Ledger::new(&limits, budgets, SERVER);
    let _open: Vec<_> = (0..3).map(|_| ledger.open(SERVER).unwrap()).collect();
    let err = ledger.open(SERVER).unwrap_err();
    assert_eq!(err.resource, Resource::Connections);
}

#[test]
fn bases_never_add_up_past_a_budget() {
    // A million connections (an fd limit of ~1.6 M) against 64 MiB of
    // output: the share-free base shrinks so that all of them fit.
    let limits = Limits::default();
    let budgets = limits.budgets(1 << 21, 10).unwrap();
    let ledger = Ledger::new(&limits, budgets, SERVER);
    let output = ledger.quotas[Resource::OutputBytes.index()];
    assert!(
        output.base * ledger.connections <= budgets.output_bytes,
        "{output:?}"
    );
    for resource in Resource::ALL {
        let quota = ledger.quotas[resource.index()];
        assert!(quota.base <= quota.per_connection, "{resource:?}");
    }
}

#[test]
fn the_fast_paths_agree_with_the_shares() {
    // charge/set/allowance skip the share arithmetic when it cannot bind:
    // whatever the state, they must answer as the full rule does.
    let mut ledger = ledger(2_000);
    let mut accounts: Vec<Account> = Vec::new();
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for step in 0..5_000 {
        let uid = if next() % 3 == 0 { OTHER } else { SERVER };
        if accounts.len() < 300 && next() % 4 == 0 {
            if let Ok(a) = ledger.open(uid) {
                accounts.push(a);
            }
        }
        if accounts.is_empty() {
            continue;
        }
        let k = (next() as usize) % accounts.len();
        let resource = Resource::ALL[1 + (next() as usize) % 5];
        let amount = next() % 64;
        match next() % 3 {
            0 => {
                let _ = ledger.charge(&mut accounts[k], resource, amount);
            }
            1 => ledger.release(&mut accounts[k], resource, amount),
            _ => ledger.set(&mut accounts[k], resource, amount),
        }
        for a in &accounts {
            for r in Resource::ALL {
                assert_eq!(
                    ledger.allowance(a, r),
                    ledger.allowance_with_scope(a, r).0,
                    "step {step}, {r:?}"
                );
            }
        }
        if step % 97 == 0 {
            let mut gone = accounts.swap_remove(k);
            ledger.close(&mut gone);
        }
    }
    for a in &mut accounts {
        ledger.close(a);
    }
    assert_eq!(ledger.shared_used, [0; COUNT]);
    assert_eq!(ledger.takers, [0; COUNT]);
    assert_eq!(ledger.foreign_takers, [0; COUNT]);
}
