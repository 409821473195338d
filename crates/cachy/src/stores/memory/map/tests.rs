use std::time::Duration;

use super::*;

fn entry(value: &[u8], deadline: Option<Instant>) -> Entry {
    Entry::new(value.into(), deadline)
}

impl Map {
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().entries.len())
            .sum()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.read(key, |entry| entry.value.to_vec())
    }
}

#[test]
fn expired_entries_are_never_read_and_are_swept_by_later_writes() {
    let map = Map::new(None);
    let past = Instant::now();
    for i in 0..1000 {
        map.insert(&format!("old{i}"), entry(b"x", Some(past)));
    }
    assert_eq!(map.get("old1"), None);
    for i in 0..10_000 {
        map.insert(&format!("new{i}"), entry(b"y", None));
    }
    assert_eq!(map.len(), 10_000, "the expired entries were swept");
}

/// A shard of many entries is swept a few entries per write: no single write pays for the
/// whole shard, and every expired entry still goes, also those that removals move behind
/// the sweep.
#[test]
fn a_large_shard_is_swept_a_step_per_write() {
    let map = Map::new(None);
    let past = Instant::now();
    let shard_of = |key: &str| {
        let hash = std::hash::BuildHasher::hash_one(&map.hasher, key);
        (hash >> 58) as usize % SHARDS
    };
    let keys: Vec<String> = (0..200_000)
        .map(|i| format!("k{i}"))
        .filter(|key| shard_of(key) == 0)
        .collect();
    let (expired, live) = keys.split_at(keys.len() / 2);
    for key in live {
        map.insert(key, entry(b"y", None));
    }
    for key in expired {
        map.insert(key, entry(b"x", Some(past)));
    }
    let before = map.len();
    let mut writes = 0;
    while map.len() > live.len() {
        let removed_by_one = map.len();
        // Removals during the sweep move entries it has not looked at yet behind it.
        let key = &live[writes % live.len()];
        map.update(key, |_| (Change::Remove, ()));
        map.insert(key, entry(b"y", None));
        writes += 1;
        assert!(
            removed_by_one.saturating_sub(map.len()) <= expiry::SWEEP_STEP,
            "one write swept more than a step"
        );
        assert!(writes < 10 * before, "the sweep never finished");
    }
    assert_eq!(map.len(), live.len(), "every expired entry went");
}

#[test]
fn the_entry_bound_is_exact_and_expired_entries_go_first() {
    let map = Map::new(Some(Bound::Entries(100)));
    let soon = Instant::now() + Duration::from_millis(50);
    for i in 0..50 {
        map.insert(&format!("short{i}"), entry(b"x", Some(soon)));
    }
    for i in 0..50 {
        map.insert(&format!("long{i}"), entry(b"x", None));
    }
    std::thread::sleep(Duration::from_millis(60));
    for i in 0..50 {
        map.insert(&format!("more{i}"), entry(b"x", None));
    }
    assert_eq!(map.len(), 100);
    assert_eq!(map.weight.load(Ordering::Relaxed), 100);
    let long_kept = (0..50)
        .filter(|i| map.get(&format!("long{i}")).is_some())
        .count();
    assert_eq!(long_kept, 50, "the expired entries went first");
}

#[test]
fn a_write_never_evicts_what_it_wrote() {
    let map = Map::new(Some(Bound::Entries(1)));
    for i in 0..2000 {
        let key = format!("k{i}");
        map.insert(&key, entry(b"x", None));
        assert!(map.get(&key).is_some(), "write {i} evicted its own key");
        assert_eq!(map.len(), 1);
    }
}

#[test]
fn a_recently_read_entry_outlives_the_others() {
    let map = Map::new(Some(Bound::Entries(100)));
    map.insert("hot", entry(b"h", None));
    for i in 0..5000 {
        map.insert(&format!("k{i}"), entry(b"x", None));
        assert!(map.get("hot").is_some(), "evicted after {i} writes");
    }
    assert_eq!(map.len(), 100);
}

#[test]
fn the_byte_bound_counts_keys_values_and_bookkeeping_and_refuses_what_cannot_fit() {
    let map = Map::new(Some(Bound::Bytes(1400)));
    map.insert("a", entry(&[1; 400], None));
    map.insert("b", entry(&[2; 400], None));
    assert_eq!(map.weight.load(Ordering::Relaxed), 802 + 2 * ENTRY_OVERHEAD);
    map.insert("a", entry(&[3; 100], None));
    assert_eq!(
        map.weight.load(Ordering::Relaxed),
        502 + 2 * ENTRY_OVERHEAD,
        "a replaced value is uncounted"
    );
    map.insert("c", entry(&[4; 600], None));
    assert!(map.weight.load(Ordering::Relaxed) <= 1400);
    map.insert("b", entry(&[5; 2000], None));
    assert_eq!(
        map.get("b"),
        None,
        "neither the old value nor the one too large"
    );
    map.update("c", |_| (Change::Remove, ()));
    map.update("a", |_| (Change::Remove, ()));
    assert_eq!(map.weight.load(Ordering::Relaxed), 0);
}

/// A value that alone fills the small queue's share waits its turn while every other item
/// is shown, and those turns do not count towards giving up: entries read between writes
/// (so that each goes round the main queue a few times first) are still evicted down to
/// the bound (a review's reproduction: the store kept 6,644 bytes under a bound of 5,000).
#[test]
fn entries_read_between_writes_are_still_evicted_down_to_the_byte_bound() {
    let map = Map::new(Some(Bound::Bytes(5000)));
    let writes = [
        (12, 196),
        (28, 21),
        (30, 0),
        (26, 19),
        (19, 1774),
        (23, 8926),
        (35, 12130),
        (34, 4480),
    ];
    for (key, len) in writes {
        map.insert(&format!("k{key}"), entry(&vec![7; len], None));
        let weight = map.weight.load(Ordering::Relaxed);
        assert!(weight <= 5000, "{weight} bytes held after writing k{key}");
        for (key, _) in writes {
            map.get(&format!("k{key}"));
        }
    }
    assert!(map.get("k34").is_some(), "the last write fits and is kept");
}

/// Random writes of values from nothing to nearly three times the bound, removals and
/// clears, with every key read after each write: the byte bound holds after every write.
#[test]
fn the_byte_bound_holds_under_random_writes_reads_and_clears() {
    let mut seed: u64 = 12345;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for bound in [500, 5000, 20_000] {
        for _ in 0..30 {
            let map = Map::new(Some(Bound::Bytes(bound)));
            for _ in 0..300 {
                let key = format!("k{}", next() % 40);
                match next() % 10 {
                    0..=5 => {
                        let len = next() % [50, 2000, 6000, 14_000][(next() % 4) as usize];
                        map.insert(&key, entry(&vec![7; len as usize], None));
                        let weight = map.weight.load(Ordering::Relaxed);
                        assert!(
                            weight <= bound,
                            "{weight} bytes held under a bound of {bound}"
                        );
                        for i in 0..40 {
                            map.get(&format!("k{i}"));
                        }
                    }
                    6..=7 => map.update(&key, |_| (Change::Remove, ())),
                    8 => map.clear(),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn many_threads_keep_the_bound_and_the_count_exact() {
    let map = Arc::new(Map::new(Some(Bound::Entries(500))));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    // Every thread writes and removes the same keys.
                    let key = format!("k{}", (i * (t + 1)) % 3000);
                    if i % 7 == 0 {
                        map.update(&key, |_| (Change::Remove, ()));
                    } else {
                        map.insert(&key, entry(b"v", None));
                    }
                    map.get(&format!("k{}", i % 11));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(map.len() <= 500, "{} entries", map.len());
    assert_eq!(map.weight.load(Ordering::Relaxed), map.len() as u64);
    map.clear();
    assert_eq!((map.len(), map.weight.load(Ordering::Relaxed)), (0, 0));
}

/// `get`, and `insert` on a miss: what a cache in front of a source does. Whether it hit.
fn access(map: &Map, key: &str) -> bool {
    let hit = map.get(key).is_some();
    if !hit {
        map.insert(key, entry(b"v", None));
    }
    hit
}

#[test]
fn a_scan_does_not_push_out_the_keys_read_often() {
    let map = Map::new(Some(Bound::Entries(1000)));
    let hot: Vec<String> = (0..500).map(|i| format!("hot{i}")).collect();
    for _ in 0..5 {
        for key in &hot {
            access(&map, key);
        }
    }
    for i in 0..20_000 {
        access(&map, &format!("scan{i}"));
    }
    let kept = hot.iter().filter(|key| map.get(key).is_some()).count();
    assert!(
        kept >= 450,
        "{kept} of the 500 hot keys outlived a scan of 20,000"
    );
    assert_eq!(map.len(), 1000);
}

#[test]
fn a_loop_a_little_larger_than_the_store_keeps_most_of_itself() {
    let map = Map::new(Some(Bound::Entries(1000)));
    let keys: Vec<String> = (0..1100).map(|i| format!("k{i}")).collect();
    let mut hits = 0;
    for round in 0..200 {
        for key in &keys {
            if access(&map, key) && round >= 150 {
                hits += 1;
            }
        }
    }
    // An exact LRU hits nothing here; keeping a fixed 90% of the loop hits 82%.
    let ratio = f64::from(hits) / (50.0 * 1100.0);
    assert!(ratio > 0.7, "hit ratio {ratio:.3} over the last 50 rounds");
}

#[test]
fn writes_and_removals_under_the_bound_do_not_grow_the_queues() {
    let map = Map::new(Some(Bound::Entries(1000)));
    for i in 0..100_000 {
        let key = format!("k{i}");
        map.insert(&key, entry(b"v", None));
        map.update(&key, |_| (Change::Remove, ()));
    }
    let queued = map.policy.as_ref().unwrap().queued();
    assert!(queued <= 2048, "{queued} items queued for an empty store");
}

#[test]
fn a_decoded_copy_is_kept_only_beside_its_own_bytes_and_never_when_bounded_by_bytes() {
    let serializer = crate::serializer::Serializer::msgpack();
    let copy = || crate::decoded::Decoded::new(Arc::new(1u64), &serializer, None);
    let kept = |map: &Map| {
        map.read("k", |entry| entry.decoded.get().is_some())
            .unwrap()
    };
    for (bound, keeps) in [
        (None, true),
        (Some(Bound::Entries(10)), true),
        (Some(Bound::Bytes(1 << 20)), false),
    ] {
        let map = Map::new(bound);
        map.insert("k", entry(b"v", None));
        let other: Arc<[u8]> = b"v".as_slice().into();
        map.keep_decoded("k", &other, copy());
        assert!(!kept(&map), "beside other bytes");
        let bytes = map.read("k", |entry| Arc::clone(&entry.value)).unwrap();
        map.keep_decoded("k", &bytes, copy());
        assert_eq!(kept(&map), keeps);
        map.insert("k", entry(b"w", None));
        assert!(!kept(&map), "a write drops the copy");
    }
}

#[test]
fn one_entry_is_one_entry_whatever_the_order_of_writes() {
    let map = Map::new(Some(Bound::Entries(1)));
    for key in ["a", "b", "a", "b", "b", "a", "c", "a"] {
        map.insert(key, entry(b"v", None));
        assert_eq!(map.len(), 1, "after writing {key}");
    }
}

#[test]
fn a_value_grown_in_place_makes_room_at_once() {
    let map = Map::new(Some(Bound::Bytes(767)));
    map.insert("k7", entry(&[1; 413], None));
    map.insert("k3", entry(b"", None));
    map.insert("k10", entry(&[1; 168], None));
    map.insert("k3", entry(&[1; 545], None));
    assert!(map.weight.load(Ordering::Relaxed) <= 767);
    assert!(map.get("k3").is_some(), "the value written is kept");
}

#[test]
fn readers_keeping_every_entry_busy_do_not_lift_the_bound() {
    let map = Arc::new(Map::new(Some(Bound::Entries(100))));
    let keys: Vec<String> = (0..150).map(|i| format!("k{i}")).collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (map, keys, done) = (Arc::clone(&map), keys.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    for key in &keys {
                        map.get(key);
                    }
                }
            })
        })
        .collect();
    for _ in 0..50 {
        for key in &keys {
            map.insert(key, entry(b"v", None));
            assert!(map.len() <= 100, "{} entries after a write", map.len());
        }
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
}

#[test]
fn a_bound_near_the_largest_integer_is_no_bound_and_no_panic() {
    for map in [
        Map::new(Some(Bound::Entries(u64::MAX))),
        Map::new(Some(Bound::Bytes(u64::MAX))),
        Map::new(Some(Bound::Entries(1 << 62))),
    ] {
        for i in 0..100 {
            map.insert(&format!("k{i}"), entry(b"v", None));
        }
        assert_eq!(map.len(), 100);
    }
}
