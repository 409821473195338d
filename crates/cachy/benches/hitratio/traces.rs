//! The traces the hit ratio is measured on: the ARC paper's, read from `bench/traces/`, and
//! synthetic ones made here from a fixed seed, so every run replays the same requests.

use std::io::BufRead;
use std::path::Path;

/// One trace: its name, its keys in request order, and the capacities to replay it at.
pub struct Trace {
    pub name: String,
    pub keys: Vec<u64>,
    pub capacities: Vec<u64>,
}

impl Trace {
    /// A synthetic trace over [`KEYS`] keys, replayed at 1% and 10% of them.
    fn at_1_and_10_percent(name: String, keys: Vec<u64>) -> Self {
        Trace {
            name,
            keys,
            capacities: vec![(KEYS / 100) as u64, (KEYS / 10) as u64],
        }
    }
}

/// An ARC trace (`START COUNT X Y` per line: pages START..START+COUNT in order), already
/// decompressed; `None` if the file is missing.
pub fn arc(path: &Path, name: &str, capacities: &[u64]) -> Option<Trace> {
    let file = std::fs::File::open(path).ok()?;
    let mut keys = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("the trace reads");
        let mut fields = line.split_whitespace();
        let (Some(start), Some(count)) = (fields.next(), fields.next()) else {
            continue;
        };
        let start: u64 = start.parse().expect("a page number");
        let count: u64 = count.parse().expect("a page count");
        keys.extend(start..start + count);
    }
    Some(Trace {
        name: name.to_owned(),
        keys,
        capacities: capacities.to_vec(),
    })
}

/// xorshift64*: fast, and only reproducibility matters here.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn from a Zipf distribution of exponent `s` over `n` keys, by inverting its
/// cumulative distribution (a table of `n` floats and a binary search per draw).
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cumulative = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Zipf { cumulative }
    }

    /// A rank from 0 (the most popular) to `n - 1`.
    pub fn draw(&self, random: &mut Random) -> u64 {
        let u = random.unit();
        self.cumulative.partition_point(|c| *c < u) as u64
    }
}

/// Keys in the synthetic traces: ranks scattered over the key space, so a key's number says
/// nothing of its popularity.
fn scatter(rank: u64) -> u64 {
    rank.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

const KEYS: usize = 1_000_000;
const REQUESTS: usize = 2_000_000;

/// The synthetic traces, each at 1% and 10% of its key count.
pub fn synthetic() -> Vec<Trace> {
    let mut traces = Vec::new();
    for s in [0.8, 1.0] {
        let zipf = Zipf::new(KEYS, s);
        let mut random = Random::new(42);
        let keys: Vec<u64> = (0..REQUESTS)
            .map(|_| scatter(zipf.draw(&mut random)))
            .collect();
        traces.push(Trace::at_1_and_10_percent(
            format!("Zipf {s} over 1M keys"),
            keys,
        ));
        // A sequential scan of never-seen keys, 10% of the requests, every 100k requests: a
        // batch job or a crawler walking past the hot set.
        let mut random = Random::new(43);
        let mut keys = Vec::with_capacity(REQUESTS * 11 / 10);
        let mut scanned = u64::MAX / 2;
        for i in 0..REQUESTS {
            if i % 100_000 == 0 && i > 0 {
                for _ in 0..10_000 {
                    keys.push(scanned);
                    scanned += 1;
                }
            }
            keys.push(scatter(zipf.draw(&mut random)));
        }
        traces.push(Trace::at_1_and_10_percent(
            format!("Zipf {s}, with scans"),
            keys,
        ));
    }
    // A loop over 10% more keys than the cache holds: the case where recency alone hits
    // nothing and a policy must keep part of the loop to hit at all.
    for capacity in [10_000u64, 100_000] {
        let span = capacity * 11 / 10;
        let keys = (0..REQUESTS as u64).map(|i| scatter(i % span)).collect();
        traces.push(Trace {
            name: format!("loop over {span} keys"),
            keys,
            capacities: vec![capacity],
        });
    }
    // A hot set that moves halfway: yesterday's favourites must make room for today's.
    let zipf = Zipf::new(KEYS, 0.9);
    let mut random = Random::new(44);
    let keys = (0..REQUESTS)
        .map(|i| {
            let rank = zipf.draw(&mut random);
            let shift = if i < REQUESTS / 2 { 0 } else { KEYS as u64 / 2 };
            scatter((rank + shift) % KEYS as u64)
        })
        .collect();
    traces.push(Trace::at_1_and_10_percent(
        "Zipf 0.9, hot set moving halfway".to_owned(),
        keys,
    ));
    traces
}

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
