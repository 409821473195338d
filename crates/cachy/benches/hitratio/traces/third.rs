//! The third set of synthetic traces.

use super::{KEYS, REQUESTS, Random, Trace, Zipf, scatter};

/// The third set (`CACHY_HITRATIO_THIRD=1`): shapes neither of the others has, written
/// before the policy was measured on them and not tuned against, each from its own fixed
/// seed, at 1% and 10% of its key count.
pub fn third() -> Vec<Trace> {
    let mut traces = Vec::new();
    // 1. Two tenants sharing the store: 60% of the requests Zipf 1.1 over one half of the
    // keys, 40% Zipf 0.7 over the other.
    let steep = Zipf::new(KEYS / 2, 1.1);
    let flat = Zipf::new(KEYS / 2, 0.7);
    let mut random = Random::new(201);
    let keys = (0..REQUESTS)
        .map(|_| {
            if random.unit() < 0.6 {
                scatter((3u64 << 44) + steep.draw(&mut random))
            } else {
                scatter((3u64 << 44) + (KEYS / 2) as u64 + flat.draw(&mut random))
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "T two tenants, Zipf 1.1 (60%) + Zipf 0.7 (40%)".to_owned(),
        keys,
    ));
    // 2. Temporal locality (LIRS-style): half the requests repeat the request made a
    // geometric number of requests earlier (mean 1,000), the rest are Zipf 0.8.
    let zipf08 = Zipf::new(KEYS, 0.8);
    let mut random = Random::new(202);
    let mut keys: Vec<u64> = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let repeat = random.unit() < 0.5;
        let gap = 1 + (random.unit().ln() / (1.0 - 1.0 / 1_000.0f64).ln()) as usize;
        let key = if repeat && gap <= keys.len() {
            keys[keys.len() - gap]
        } else {
            scatter((4u64 << 44) + zipf08.draw(&mut random))
        };
        keys.push(key);
    }
    traces.push(Trace::at_1_and_10_percent(
        "T temporal locality, 50% repeats at geometric gaps (mean 1000)".to_owned(),
        keys,
    ));
    // 3. Zipf 0.9 whose ranking drifts: after each request, the key at a rank drawn from the
    // same distribution trades places with one up to as many ranks further down.
    let zipf09 = Zipf::new(KEYS, 0.9);
    let mut random = Random::new(203);
    let mut ranked: Vec<u64> = (0..KEYS as u64).collect();
    let keys = (0..REQUESTS)
        .map(|_| {
            let key = scatter((5u64 << 44) + ranked[zipf09.draw(&mut random) as usize]);
            let rank = zipf09.draw(&mut random) as usize;
            let other = (rank + 1 + (random.next() % (rank as u64 + 1)) as usize).min(KEYS - 1);
            ranked.swap(rank, other);
            key
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "T Zipf 0.9, ranking drifting".to_owned(),
        keys,
    ));
    // 4. Short sequential runs (8 to 64 keys from a random start in 1M cold keys, 40% of the
    // requests) mixed with a hot set (Zipf 1.0 over 100k keys).
    let hot = Zipf::new(KEYS / 10, 1.0);
    let mut random = Random::new(204);
    let mut keys = Vec::with_capacity(REQUESTS + 64);
    while keys.len() < REQUESTS {
        // A run starts at a step with odds p, 36 keys on average: 36p / (36p + 1 - p) = 0.4.
        if random.unit() < 0.4 / 22.0 {
            let start = random.next() % KEYS as u64;
            let length = 8 + random.next() % 57;
            for offset in 0..length {
                keys.push(scatter((6u64 << 44) + (start + offset) % KEYS as u64));
            }
        } else {
            keys.push(scatter((7u64 << 44) + hot.draw(&mut random)));
        }
    }
    keys.truncate(REQUESTS);
    traces.push(Trace::at_1_and_10_percent(
        "T short runs (8-64 keys) + hot Zipf 1.0 over 100k".to_owned(),
        keys,
    ));
    // 5. Web-search-like: 35% of the requests are keys never seen before nor after (about
    // 70% of the distinct keys are seen once), the rest Zipf 0.8 over 300k keys.
    let popular = Zipf::new(KEYS * 3 / 10, 0.8);
    let mut random = Random::new(205);
    let mut fresh = 8u64 << 44;
    let keys = (0..REQUESTS)
        .map(|_| {
            if random.unit() < 0.35 {
                fresh += 1;
                scatter(fresh)
            } else {
                scatter((9u64 << 44) + popular.draw(&mut random))
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "T web search, 35% one-hit wonders + Zipf 0.8 over 300k".to_owned(),
        keys,
    ));
    traces
}
