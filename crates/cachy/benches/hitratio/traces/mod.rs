//! The traces the hit ratio is measured on: the ARC paper's, read from `bench/traces/`, and
//! synthetic ones made here from a fixed seed, so every run replays the same requests.

mod fourth;
mod third;
mod unseen;

use std::io::BufRead;
use std::path::Path;

pub use fourth::fourth;
pub use third::third;
pub use unseen::unseen;

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
