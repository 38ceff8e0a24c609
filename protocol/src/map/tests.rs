//! Unit tests of [`ObjectMap`]: libwayland's id rules (no gaps, reuse, the
//! bound), lowest-first allocation, and memory that follows live objects.

use super::*;

#[test]
fn client_map_allocates_from_one_and_reuses_the_lowest_free_id() {
    let mut map = ObjectMap::new(Side::Client);
    assert_eq!(map.allocate('a'), Some(1));
    assert_eq!(map.allocate('b'), Some(2));
    assert_eq!(map.allocate('c'), Some(3));
    assert_eq!(map.remove(2), Some('b'));
    assert_eq!(map.remove(1), Some('a'));
    assert_eq!(map.allocate('d'), Some(1));
    assert_eq!(map.allocate('e'), Some(2));
    assert_eq!(map.allocate('f'), Some(4));
    assert_eq!(map.len(), 4);
    assert_eq!(map.get(3), Some(&'c'));
    map.client.check_invariants();
}

#[test]
fn server_map_allocates_from_server_id_start() {
    let mut map = ObjectMap::new(Side::Server);
    assert_eq!(map.allocate(10), Some(SERVER_ID_START));
    assert_eq!(map.allocate(11), Some(SERVER_ID_START + 1));
    assert_eq!(map.get(SERVER_ID_START + 1), Some(&11));
    assert_eq!(map.remove(SERVER_ID_START), Some(10));
    assert_eq!(map.allocate(12), Some(SERVER_ID_START));
    assert_eq!(map.get(u32::MAX), None);
}

#[test]
fn insert_at_follows_wl_map_insert_at() {
    let mut map = ObjectMap::new(Side::Server);
    assert_eq!(map.insert_at(0, "null"), Err(InsertError::Null));
    assert_eq!(
        map.insert_at(SERVER_ID_START, "own"),
        Err(InsertError::WrongRange)
    );
    assert_eq!(map.insert_at(2, "gap"), Err(InsertError::NotNext));
    map.insert_at(1, "display").unwrap();
    assert_eq!(map.insert_at(1, "again"), Err(InsertError::InUse));
    map.insert_at(2, "registry").unwrap();
    map.insert_at(3, "callback").unwrap();
    assert_eq!(map.insert_at(5, "gap"), Err(InsertError::NotNext));
    // A freed id may be reused, and the highest id ever used still counts.
    assert_eq!(map.remove(3), Some("callback"));
    assert_eq!(map.insert_at(5, "gap"), Err(InsertError::NotNext));
    map.insert_at(4, "next").unwrap();
    map.insert_at(3, "reused").unwrap();
    assert_eq!(map.len(), 4);
    assert_eq!(map.get(3), Some(&"reused"));
}

#[test]
fn client_map_inserts_server_ids_only() {
    let mut map = ObjectMap::new(Side::Client);
    assert_eq!(map.insert_at(1, ()), Err(InsertError::WrongRange));
    assert_eq!(
        map.insert_at(SERVER_ID_START + 1, ()),
        Err(InsertError::NotNext)
    );
    map.insert_at(SERVER_ID_START, ()).unwrap();
    map.insert_at(SERVER_ID_START + 1, ()).unwrap();
    assert_eq!(map.insert_at(SERVER_ID_START, ()), Err(InsertError::InUse));
    // Allocation in the own range is independent of the other range.
    assert_eq!(map.allocate(()), Some(1));
    assert_eq!(map.len(), 3);
}

#[test]
fn ids_past_libwaylands_bound_are_refused_before_the_gap_rule() {
    // As wl_map_insert_at: ENOSPC (the bound) is checked before EINVAL (a gap).
    let mut server = ObjectMap::new(Side::Server);
    assert_eq!(
        server.insert_at(MAX_CLIENT_ID, ()),
        Err(InsertError::NotNext)
    );
    assert_eq!(
        server.insert_at(MAX_CLIENT_ID + 1, ()),
        Err(InsertError::TooHigh)
    );
    assert_eq!(
        server.insert_at(SERVER_ID_START - 1, ()),
        Err(InsertError::TooHigh)
    );
    let mut client = ObjectMap::new(Side::Client);
    assert_eq!(
        client.insert_at(MAX_SERVER_ID, ()),
        Err(InsertError::NotNext)
    );
    assert_eq!(
        client.insert_at(MAX_SERVER_ID + 1, ()),
        Err(InsertError::TooHigh)
    );
    assert_eq!(client.insert_at(u32::MAX, ()), Err(InsertError::TooHigh));
    assert!(server.is_empty() && client.is_empty());
}

#[test]
fn the_bound_is_reached_by_ever_new_ids_and_holds_there() {
    // The real bound, in a range that starts near it: a peer that has used
    // every id up to MAX_CLIENT_ID - 1 may use MAX_CLIENT_ID, not one more.
    let mut map = ObjectMap::new(Side::Server);
    // Index MAX_CLIENT_ID - 2 is id MAX_CLIENT_ID - 1.
    map.client.skip_to(MAX_CLIENT_ID - 1);
    map.insert_at(MAX_CLIENT_ID, "last").unwrap();
    assert_eq!(
        map.insert_at(MAX_CLIENT_ID + 1, "over"),
        Err(InsertError::TooHigh)
    );
    assert_eq!(map.remove(MAX_CLIENT_ID), Some("last"));
    map.insert_at(MAX_CLIENT_ID, "again").unwrap();
    assert_eq!(map.get(MAX_CLIENT_ID), Some(&"again"));
    map.client.check_invariants();
}

#[test]
fn allocate_returns_none_when_the_range_is_full() {
    let mut map: ObjectMap<u32> = ObjectMap::new(Side::Server);
    map.server = IdRange::new(true, 2);
    assert_eq!(map.allocate(0), Some(SERVER_ID_START));
    assert_eq!(map.allocate(1), Some(SERVER_ID_START + 1));
    assert_eq!(map.allocate(2), Some(SERVER_ID_START + 2));
    assert_eq!(map.allocate(3), None);
    assert_eq!(map.len(), 3);
    map.remove(SERVER_ID_START + 1);
    assert_eq!(map.allocate(4), Some(SERVER_ID_START + 1));
    // The real bound: the last server id is MAX_SERVER_ID.
    assert_eq!(MAX_SERVER_ID - SERVER_ID_START, 0x00f0_0000);
}

#[test]
fn a_million_ever_new_ids_with_two_live_objects_keep_the_map_small() {
    let mut map = ObjectMap::new(Side::Server);
    map.insert_at(DISPLAY_ID, 0u64).unwrap();
    for id in 2..1_000_002 {
        map.insert_at(id, u64::from(id)).unwrap();
        assert_eq!(map.get(id), Some(&u64::from(id)));
        assert_eq!(map.remove(id), Some(u64::from(id)));
    }
    map.client.check_invariants();
    // One past the last id is still the next one; a gap is not.
    assert_eq!(map.insert_at(1_000_003, 0), Err(InsertError::NotNext));
    map.insert_at(1_000_002, 7).unwrap();
    assert_eq!(map.len(), 2);
    // Before: 8 MB (one slot per id ever used). Now: the small table only.
    assert!(map.heap_bytes() < 4096, "{} bytes", map.heap_bytes());
}

#[test]
fn a_million_allocations_and_removals_keep_the_own_range_small() {
    let mut map = ObjectMap::new(Side::Client);
    assert_eq!(map.allocate(0u64), Some(DISPLAY_ID));
    for round in 0..1_000_000u64 {
        let a = map.allocate(round).unwrap();
        let b = map.allocate(round).unwrap();
        assert_eq!((a, b), (2, 3));
        map.remove(if round % 2 == 0 { a } else { b });
        map.remove(if round % 2 == 0 { b } else { a });
    }
    map.client.check_invariants();
    assert!(map.heap_bytes() < 4096, "{} bytes", map.heap_bytes());
}

#[test]
fn memory_follows_live_objects_when_the_highest_survives() {
    // 10,000 live objects, then all destroyed but the one at the top: the
    // survivor moves out of the vector, which shrinks.
    let mut map = ObjectMap::new(Side::Server);
    for id in 1..=10_000u32 {
        map.insert_at(id, id).unwrap();
    }
    let full = map.heap_bytes();
    for id in 2..10_000u32 {
        map.remove(id);
        if id % 500 == 0 {
            map.client.check_invariants();
        }
    }
    assert_eq!(map.len(), 2);
    assert!(
        map.heap_bytes() < 4096,
        "{} of {full} bytes",
        map.heap_bytes()
    );
    assert_eq!(map.get(10_000), Some(&10_000));
    assert_eq!(map.get(1), Some(&1));
    assert_eq!(map.iter().collect::<Vec<_>>(), [(1, &1), (10_000, &10_000)]);
    // Freed ids below the high-water mark are usable again, dense or not.
    map.insert_at(5_000, 5_000).unwrap();
    map.insert_at(2, 2).unwrap();
    assert_eq!(map.insert_at(10_000, 0), Err(InsertError::InUse));
    assert_eq!(map.insert_at(5_000, 0), Err(InsertError::InUse));
    assert_eq!(map.insert_at(10_002, 0), Err(InsertError::NotNext));
    *map.get_mut(10_000).unwrap() += 1;
    assert_eq!(map.remove(10_000), Some(10_001));
    map.client.check_invariants();
}

/// A deterministic pseudo-random sequence (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

#[test]
fn random_operations_agree_with_a_plain_model() {
    use std::collections::BTreeMap;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut map = ObjectMap::new(Side::Server);
    let mut model: BTreeMap<u32, u32> = BTreeMap::new();
    let mut next: u32 = 1; // the next never-used client id
    let (mut most_sparse, mut most_dense, mut cuts) = (0, 0, 0);
    for step in 0..90_000u32 {
        // Phases: growth, shrinking (removing live ids), ever-new ids.
        let phase = (step / 10_000) % 3;
        let any = 1 + rng.below(next + 1);
        let (id, remove) = match phase {
            0 if rng.below(2) == 0 => (next, false),
            0 => (any, rng.below(4) == 0),
            1 if rng.below(8) != 0 => {
                let live = model.range(any..).next().or(model.iter().next());
                (live.map_or(any, |(&id, _)| id), true)
            }
            _ => (any, rng.below(2) == 0),
        };
        if remove {
            let before = map.client.dense_len();
            assert_eq!(map.remove(id), model.remove(&id), "remove {id}");
            cuts += usize::from(map.client.dense_len() < before);
        } else {
            let want = if id > next {
                Err(InsertError::NotNext)
            } else if model.contains_key(&id) {
                Err(InsertError::InUse)
            } else {
                Ok(())
            };
            assert_eq!(map.insert_at(id, step), want, "insert {id}");
            if want.is_ok() {
                model.insert(id, step);
                next = next.max(id + 1);
            }
        }
        if phase == 2 && rng.below(64) == 0 {
            // Ever-new ids: the high-water mark jumps.
            for _ in 0..rng.below(2000) {
                map.insert_at(next, 0).unwrap();
                map.remove(next);
                next += 1;
            }
        }
        most_sparse = most_sparse.max(map.client.sparse_len());
        most_dense = most_dense.max(map.client.dense_len());
        let probe = 1 + rng.below(next + 1);
        assert_eq!(map.get(probe), model.get(&probe), "get {probe}");
        if step % 500 == 0 {
            map.client.check_invariants();
            assert!(map.iter().map(|(i, v)| (i, *v)).eq(model.clone()));
        }
    }
    assert_eq!(map.len(), model.len());
    // Both parts were used, and the vector was cut as objects went.
    println!(
        "live {}, ids used {next}; most in the tree {most_sparse}, in the vector {most_dense}; \
         {cuts} cuts",
        map.len()
    );
    assert!(most_sparse > 100 && most_dense > 1000 && cuts >= 3);
}

#[test]
fn get_mut_remove_and_len_track_live_objects() {
    let mut map = ObjectMap::new(Side::Server);
    assert!(map.is_empty());
    map.insert_at(1, 1).unwrap();
    *map.get_mut(1).unwrap() += 41;
    assert_eq!(map.get(1), Some(&42));
    assert_eq!(map.get(0), None);
    assert_eq!(map.get_mut(7), None);
    assert_eq!(map.remove(1), Some(42));
    assert_eq!(map.remove(1), None);
    assert_eq!(map.remove(0), None);
    assert_eq!(map.remove(SERVER_ID_START + 9), None);
    assert!(map.is_empty());
}

#[test]
fn iter_lists_live_objects_in_id_order() {
    let mut map = ObjectMap::new(Side::Server);
    for id in 1..=3 {
        map.insert_at(id, id * 10).unwrap();
    }
    let s = map.allocate(99).unwrap();
    map.remove(2);
    let all: Vec<_> = map.iter().map(|(id, v)| (id, *v)).collect();
    assert_eq!(all, vec![(1, 10), (3, 30), (s, 99)]);
}

#[test]
fn side_of_id_splits_at_server_id_start() {
    assert_eq!(Side::of_id(1), Side::Client);
    assert_eq!(Side::of_id(SERVER_ID_START - 1), Side::Client);
    assert_eq!(Side::of_id(SERVER_ID_START), Side::Server);
    assert_eq!(Side::of_id(u32::MAX), Side::Server);
}

#[test]
fn errors_describe_themselves() {
    assert!(InsertError::NotNext.to_string().contains("skips"));
    assert!(InsertError::WrongRange.to_string().contains("range"));
    assert!(InsertError::TooHigh.to_string().contains("past the last"));
}

#[test]
fn the_server_range_runs_out_at_max_server_id() {
    // Every id of the real range, once: libwayland's bound, not one more.
    let mut map: ObjectMap<()> = ObjectMap::new(Side::Server);
    let mut last = 0;
    while let Some(id) = map.allocate(()) {
        assert_eq!(id, SERVER_ID_START + map.len() as u32 - 1);
        last = id;
    }
    assert_eq!(last, MAX_SERVER_ID);
    assert_eq!(map.len(), (MAX_SERVER_ID - SERVER_ID_START + 1) as usize);
    assert_eq!(map.remove(MAX_SERVER_ID), Some(()));
    assert_eq!(map.allocate(()), Some(MAX_SERVER_ID));
    assert_eq!(map.allocate(()), None);
}
