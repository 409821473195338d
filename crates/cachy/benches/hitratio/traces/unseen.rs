//! The second set of synthetic traces.

use super::{KEYS, REQUESTS, Random, Trace, Zipf, scatter};

/// The second set (`CACHY_HITRATIO_UNSEEN=1`): shapes the first set does not have, each from
/// its own fixed seed, at 1% and 10% of the key count (or one capacity per loop).
pub fn unseen() -> Vec<Trace> {
    let mut traces = Vec::new();
    // 1-2. Flatter and steeper Zipf.
    for (s, seed) in [(0.6, 101), (1.2, 102)] {
        let zipf = Zipf::new(KEYS, s);
        let mut random = Random::new(seed);
        let keys = (0..REQUESTS)
            .map(|_| scatter(zipf.draw(&mut random)))
            .collect();
        traces.push(Trace::at_1_and_10_percent(
            format!("U Zipf {s} over 1M keys"),
            keys,
        ));
    }
    let zipf09 = Zipf::new(KEYS, 0.9);
    let zipf10 = Zipf::new(KEYS, 1.0);
    // 3. Zipf 0.9 interleaved one for one with a loop 20% larger than the cache.
    for capacity in [10_000u64, 100_000] {
        let span = capacity * 12 / 10;
        let mut random = Random::new(103);
        let mut looped = 0u64;
        let keys = (0..REQUESTS)
            .map(|i| {
                if i % 2 == 0 {
                    scatter(zipf09.draw(&mut random))
                } else {
                    looped += 1;
                    scatter((1u64 << 40) + looped % span)
                }
            })
            .collect();
        traces.push(Trace {
            name: format!("U Zipf 0.9 + loop {span} interleaved"),
            keys,
            capacities: vec![capacity],
        });
    }
    // 4. Two hot sets alternating every 200k requests.
    let mut random = Random::new(104);
    let keys = (0..REQUESTS)
        .map(|i| {
            let shift = if (i / 200_000) % 2 == 0 {
                0
            } else {
                KEYS as u64 / 2
            };
            scatter((zipf09.draw(&mut random) + shift) % KEYS as u64)
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "U Zipf 0.9, two hot sets alternating /200k".to_owned(),
        keys,
    ));
    // 5. Popularity sliding: a new key becomes the hottest every 50 requests and the others
    // move one rank down (news-like decay).
    let mut random = Random::new(105);
    let keys = (0..REQUESTS)
        .map(|i| {
            let newest = (1u64 << 41) + (i / 50) as u64;
            scatter(newest - zipf09.draw(&mut random))
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "U Zipf 0.9, sliding popularity /50".to_owned(),
        keys,
    ));
    // 6. Half one-hit wonders, half Zipf 1.0.
    let mut random = Random::new(106);
    let mut fresh = 1u64 << 42;
    let keys = (0..REQUESTS)
        .map(|_| {
            if random.unit() < 0.5 {
                fresh += 1;
                scatter(fresh)
            } else {
                scatter(zipf10.draw(&mut random))
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "U 50% one-hit wonders + Zipf 1.0".to_owned(),
        keys,
    ));
    // 7. Scan-heavy: Zipf 0.9 with 30% of requests in scans of 3,000 never-seen keys.
    let mut random = Random::new(107);
    let mut scanned = 1u64 << 43;
    let mut keys = Vec::with_capacity(REQUESTS * 10 / 7);
    for i in 0..REQUESTS {
        if i % 7_000 == 0 && i > 0 {
            for _ in 0..3_000 {
                keys.push(scanned);
                scanned += 1;
            }
        }
        keys.push(scatter(zipf09.draw(&mut random)));
    }
    traces.push(Trace::at_1_and_10_percent(
        "U Zipf 0.9, 30% scans of 3000".to_owned(),
        keys,
    ));
    // 8. Loops of 1.5x and 3x the cache.
    for capacity in [10_000u64, 100_000] {
        for (factor, label) in [(15u64, "1.5x"), (30, "3x")] {
            let span = capacity * factor / 10;
            let keys = (0..REQUESTS as u64)
                .map(|i| scatter((1u64 << 44) + i % span))
                .collect();
            traces.push(Trace {
                name: format!("U loop {label} ({span} keys)"),
                keys,
                capacities: vec![capacity],
            });
        }
    }
    // 9. A working set growing steadily: uniform over the first n keys, n from 1,000 to 200,000.
    let mut random = Random::new(109);
    let keys = (0..REQUESTS)
        .map(|i| {
            let n = 1_000 + (199_000 * i / REQUESTS) as u64;
            scatter((1u64 << 45) + random.next() % n)
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "U uniform, working set growing 1k->200k".to_owned(),
        keys,
    ));
    // 10. Bursts: 30% of the requests (a burst starts at one slot in 8) are keys asked 3
    // times within 100 requests, then never again; the rest Zipf 0.9.
    let mut random = Random::new(110);
    let mut timed: Vec<(u64, u64)> = Vec::with_capacity(REQUESTS * 3 / 2);
    let mut burst = 1u64 << 46;
    let mut at = 0u64;
    while timed.len() < REQUESTS {
        if random.unit() < 0.125 {
            burst += 1;
            timed.push((at * 1000, scatter(burst)));
            timed.push(((at + 1 + random.next() % 99) * 1000 + 1, scatter(burst)));
            timed.push(((at + 1 + random.next() % 99) * 1000 + 2, scatter(burst)));
        } else {
            timed.push((at * 1000, scatter(zipf09.draw(&mut random))));
        }
        at += 1;
    }
    timed.sort_by_key(|&(t, _)| t);
    let keys = timed.into_iter().map(|(_, k)| k).collect();
    traces.push(Trace::at_1_and_10_percent(
        "U bursts (3 in 100) + Zipf 0.9".to_owned(),
        keys,
    ));
    // 12. From a sceptical review, added once the policy was fixed: a web-like mix, a hot
    // set of 10,000 keys (Zipf 0.7) moving to other keys every 50,000 requests, 10% one-hit
    // wonders, 15% Zipf 0.7 over the whole million, and a scan of 50,000 keys every 400,000.
    let hot = Zipf::new(10_000, 0.7);
    let warm = Zipf::new(KEYS, 0.7);
    let mut random = Random::new(112);
    let (mut keys, mut wonder, mut moves) = (Vec::with_capacity(REQUESTS + 300_000), 0u64, 0u64);
    for i in 0..REQUESTS {
        if i > 0 && i % 50_000 == 0 {
            moves += 1;
        }
        if i > 0 && i % 400_000 == 0 {
            let start = random.next() % (KEYS as u64 - 50_000);
            keys.extend((start..start + 50_000).map(|k| scatter((6u64 << 44) + k)));
        }
        let u = random.unit();
        keys.push(if u < 0.10 {
            wonder += 1;
            scatter((7u64 << 44) + wonder)
        } else if u < 0.85 {
            scatter((8u64 << 44) + moves * 10_000 + hot.draw(&mut random))
        } else {
            scatter((6u64 << 44) + warm.draw(&mut random))
        });
    }
    traces.push(Trace::at_1_and_10_percent(
        "U web-like, hot 10k (Zipf 0.7) moving every 50k, 10% one-hit wonders, scans".to_owned(),
        keys,
    ));
    traces
}
