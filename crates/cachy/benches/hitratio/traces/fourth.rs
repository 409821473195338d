//! The fourth set of synthetic traces, written by a review.

use super::{KEYS, REQUESTS, Random, Trace, Zipf, scatter};

/// The fourth set (`CACHY_HITRATIO_FOURTH=1`): shapes none of the others has, written by a
/// review before any result was seen and not tuned afterwards, each from its own fixed seed,
/// at 1% and 10% of [`KEYS`].
pub fn fourth() -> Vec<Trace> {
    let mut traces = Vec::new();
    // 1. Zipf whose exponent changes over time: eight phases of 250k requests, exponents
    // 0.6, 0.8, 1.0, 1.2, 1.2, 1.0, 0.8, 0.6, same keys and ranking throughout.
    let tables: Vec<Zipf> = [0.6, 0.8, 1.0, 1.2]
        .iter()
        .map(|&s| Zipf::new(KEYS, s))
        .collect();
    let phase_table = [0usize, 1, 2, 3, 3, 2, 1, 0];
    let mut random = Random::new(301);
    let keys = (0..REQUESTS)
        .map(|i| {
            let zipf = &tables[phase_table[(i / 250_000).min(7)]];
            scatter((1u64 << 47) + zipf.draw(&mut random))
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F Zipf exponent 0.6->1.2->0.6 in phases of 250k".to_owned(),
        keys,
    ));
    // 2. Daily cycles of two populations: "day" users (Zipf 1.0 over 200k keys) and "night"
    // batch jobs (Zipf 0.7 over 800k other keys); the day share follows a sine of period
    // 400k requests between 5% and 95%.
    let day = Zipf::new(KEYS / 5, 1.0);
    let night = Zipf::new(KEYS * 4 / 5, 0.7);
    let mut random = Random::new(302);
    let keys = (0..REQUESTS)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * i as f64 / 400_000.0;
            let day_share = 0.5 + 0.45 * phase.sin();
            if random.unit() < day_share {
                scatter((2u64 << 47) + day.draw(&mut random))
            } else {
                scatter((2u64 << 47) + (KEYS / 5) as u64 + night.draw(&mut random))
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F daily cycle /400k, day Zipf 1.0 over 200k vs night Zipf 0.7 over 800k".to_owned(),
        keys,
    ));
    // 3. Several loops of different sizes, each request from one at random: loops of 500,
    // 5,000, 20,000 and 300,000 keys taking 30%, 30%, 20% and 20% of the requests.
    let loops: [(u64, f64); 4] = [(500, 0.3), (5_000, 0.6), (20_000, 0.8), (300_000, 1.0)];
    let mut positions = [0u64; 4];
    let mut random = Random::new(303);
    let keys = (0..REQUESTS)
        .map(|_| {
            let u = random.unit();
            let which = loops.iter().position(|&(_, c)| u < c).unwrap_or(3);
            positions[which] += 1;
            scatter((3u64 << 47) + ((which as u64) << 32) + positions[which] % loops[which].0)
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F four loops (500, 5k, 20k, 300k keys; 30/30/20/20%) mixed".to_owned(),
        keys,
    ));
    // 4. LRU-friendly: an LRU stack model over 1M keys, each request to the key at a stack
    // depth drawn log-uniformly in 1..=depth of the stack (a density falling with depth, for
    // which LRU is optimal), 2% of the requests to new keys. The stack is a Fenwick tree
    // over the times of the keys' last requests.
    {
        let slots = KEYS + REQUESTS;
        let mut tree = vec![0i64; slots + 1];
        let add = |tree: &mut Vec<i64>, slot: usize, delta: i64| {
            let mut i = slot + 1;
            while i <= slots {
                tree[i] += delta;
                i += i & i.wrapping_neg();
            }
        };
        // The slot of the `k`-th marked slot (k from 1), counting from the oldest.
        let find = |tree: &Vec<i64>, mut k: i64| -> usize {
            let mut at = 0usize;
            let mut step = slots.next_power_of_two();
            while step > 0 {
                if at + step <= slots && tree[at + step] < k {
                    at += step;
                    k -= tree[at];
                }
                step /= 2;
            }
            at
        };
        let mut slot_key = vec![0u64; slots];
        for key in 0..KEYS {
            // Key 0 the most recent.
            let slot = KEYS - 1 - key;
            slot_key[slot] = key as u64;
            add(&mut tree, slot, 1);
        }
        let (mut stack, mut next_key) = (KEYS as i64, KEYS as u64);
        let mut random = Random::new(304);
        let mut keys = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let now = KEYS + i;
            let key = if random.unit() < 0.02 {
                let key = next_key;
                next_key += 1;
                stack += 1;
                key
            } else {
                let depth = ((random.unit() * (stack as f64).ln()).exp() as i64).clamp(1, stack);
                let slot = find(&tree, stack - depth + 1);
                add(&mut tree, slot, -1);
                slot_key[slot]
            };
            slot_key[now] = key;
            add(&mut tree, now, 1);
            keys.push(scatter((4u64 << 47) + key));
        }
        traces.push(Trace::at_1_and_10_percent(
            "F LRU stack model, log-uniform stack depth, 2% new keys".to_owned(),
            keys,
        ));
    }
    // 5. A gradual hot-set shift: Zipf 0.9 over one of five disjoint key sets, crossfading
    // linearly from set j to set j + 1 over each 500k requests.
    let zipf09 = Zipf::new(KEYS, 0.9);
    let mut random = Random::new(305);
    let keys = (0..REQUESTS)
        .map(|i| {
            let set = (i / 500_000) as u64;
            let into = (i % 500_000) as f64 / 500_000.0;
            let set = if random.unit() < into { set + 1 } else { set };
            scatter((5u64 << 47) + (set << 32) + zipf09.draw(&mut random))
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F Zipf 0.9, hot set crossfading gradually to a new one every 500k".to_owned(),
        keys,
    ));
    // 6. Heavy repeat bursts then silence: 40% of the requests are bursts of 20 to 60
    // requests to one key spread over 5,000 requests; a third of the burst keys burst again
    // 200k to 600k requests later, then never; the rest Zipf 0.8.
    let zipf08 = Zipf::new(KEYS, 0.8);
    let mut random = Random::new(306);
    let mut timed: Vec<(u64, u64)> = Vec::with_capacity(REQUESTS * 2);
    let (mut burst, mut at) = (6u64 << 47, 0u64);
    while timed.len() < REQUESTS {
        // A burst starts at a step with odds p, 40 (or 53 with its return) requests each:
        // p * 53 / (p * 53 + 1 - p) = 0.4.
        if random.unit() < 0.0124 {
            burst += 1;
            let key = scatter(burst);
            let again = random.unit() < 1.0 / 3.0;
            let later = 200_000 + random.next() % 400_000;
            for start in [Some(at), again.then_some(at + later)]
                .into_iter()
                .flatten()
            {
                let count = 20 + random.next() % 41;
                for _ in 0..count {
                    timed.push(((start + random.next() % 5_000) * 4 + 1, key));
                }
            }
        } else {
            timed.push((at * 4, scatter((7u64 << 47) + zipf08.draw(&mut random))));
        }
        at += 1;
    }
    timed.sort_by_key(|&(t, _)| t);
    timed.truncate(REQUESTS);
    let keys = timed.into_iter().map(|(_, k)| k).collect();
    traces.push(Trace::at_1_and_10_percent(
        "F heavy bursts (20-60 in 5k) then silence, some return, + Zipf 0.8".to_owned(),
        keys,
    ));
    // 7. Four tenants of different churn, a quarter of the requests each: a stable Zipf 1.0
    // over 100k keys; a Zipf 0.8 over 200k keys replaced by new keys every 100k requests; a
    // batch job looping over 30k keys; 70% one-hit wonders + 30% Zipf 0.9 over 50k keys.
    let stable = Zipf::new(KEYS / 10, 1.0);
    let churning = Zipf::new(KEYS / 5, 0.8);
    let small = Zipf::new(KEYS / 20, 0.9);
    let mut random = Random::new(307);
    let (mut looped, mut fresh) = (0u64, 0u64);
    let keys = (0..REQUESTS)
        .map(|i| {
            let u = random.unit();
            if u < 0.25 {
                scatter((8u64 << 47) + stable.draw(&mut random))
            } else if u < 0.5 {
                let epoch = (i / 100_000) as u64;
                scatter((9u64 << 47) + (epoch << 32) + churning.draw(&mut random))
            } else if u < 0.75 {
                looped += 1;
                scatter((10u64 << 47) + looped % 30_000)
            } else if random.unit() < 0.7 {
                fresh += 1;
                scatter((11u64 << 47) + fresh)
            } else {
                scatter((12u64 << 47) + small.draw(&mut random))
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F four tenants: stable, churning /100k, loop 30k, one-hit-heavy".to_owned(),
        keys,
    ));
    // 8. A web service: half the requests to a catalogue (Zipf 0.9 over 500k items), half
    // to the keys of users in session (5 keys each: profile, cart, ...), 2,000 sessions at a
    // time, each ending with odds 1/30 per request and replaced by a user drawn from Zipf
    // 0.6 over 1M users (returning users come back to their keys).
    let catalogue = Zipf::new(KEYS / 2, 0.9);
    let users = Zipf::new(KEYS, 0.6);
    let mut random = Random::new(308);
    let mut sessions: Vec<u64> = (0..2_000).map(|_| users.draw(&mut random)).collect();
    let keys = (0..REQUESTS)
        .map(|_| {
            if random.unit() < 0.5 {
                scatter((13u64 << 47) + catalogue.draw(&mut random))
            } else {
                let s = (random.next() % 2_000) as usize;
                let key = scatter((14u64 << 47) + sessions[s] * 8 + random.next() % 5);
                if random.unit() < 1.0 / 30.0 {
                    sessions[s] = users.draw(&mut random);
                }
                key
            }
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "F web service: catalogue Zipf 0.9 + user sessions (Zipf 0.6 returning users)".to_owned(),
        keys,
    ));
    traces
}
