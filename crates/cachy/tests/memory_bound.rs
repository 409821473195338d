//! `max_bytes` bounds the memory a store really takes: filled far past its bound with tiny,
//! medium or large values (and read back with `get_shared`), a store bounded at 64 MiB grows
//! its process by at most 1.3 times that. Each kind of value is measured in a process of its
//! own (this binary run again), so that neither another test's allocations nor what the
//! allocator keeps of an earlier phase is counted.

use cachy::Store;
use cachy::stores::{MemoryConfig, MemoryStore};

const BOUND: u64 = 64 << 20;
const TEST: &str = "a_store_bounded_at_64_mib_grows_the_process_by_at_most_1_3_times_that";

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux's /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Fill a store bounded at [`BOUND`] with `count` values of `size` bytes; how much the
/// process grew.
async fn fill(count: usize, size: usize) -> u64 {
    let before = resident();
    let mut config = MemoryConfig::default();
    config.max_bytes = Some(BOUND);
    let store = MemoryStore::with_config(config).unwrap();
    let value = vec![7u8; size];
    for i in 0..count {
        store
            .put(&format!("{size}:{i}"), &value, None)
            .await
            .unwrap();
    }
    resident().saturating_sub(before)
}

/// Fill a store bounded at [`BOUND`] with `count` strings of `size` bytes, each read back
/// with `get_shared` (which keeps no decoded copy in a store bounded by bytes); how much the
/// process grew.
async fn fill_and_read_shared(count: usize, size: usize) -> u64 {
    let before = resident();
    let mut config = MemoryConfig::default();
    config.max_bytes = Some(BOUND);
    let store = MemoryStore::with_config(config).unwrap();
    let repo = cachy::Repository::new(
        "bound",
        std::sync::Arc::new(store),
        cachy::serializer::Serializer::msgpack(),
    );
    let value = "x".repeat(size);
    for i in 0..count {
        let key = format!("{size}:{i}");
        repo.forever(&key, &value).await.unwrap();
        repo.get_shared::<String>(&key).await.unwrap().unwrap();
    }
    resident().saturating_sub(before)
}

#[tokio::test]
async fn a_store_bounded_at_64_mib_grows_the_process_by_at_most_1_3_times_that() {
    // Far past the bound each time: 1M tiny, 200k of 1 KB, 4,000 of 100 KB, and 200k of
    // 1 KB each read back decoded.
    let phases = [
        (1_000_000, 8, false),
        (200_000, 1_000, false),
        (4_000, 100_000, false),
        (200_000, 1_000, true),
    ];
    if let Ok(phase) = std::env::var("CACHY_MEMORY_BOUND_PHASE") {
        let (count, size, decoded) = phases[phase.parse::<usize>().unwrap()];
        let grown = if decoded {
            fill_and_read_shared(count, size).await
        } else {
            fill(count, size).await
        };
        println!(
            "{count} values of {size} bytes: the process grew by {} MiB",
            grown >> 20
        );
        assert!(
            grown as f64 <= 1.3 * BOUND as f64,
            "{count} values of {size} bytes grew the process by {} MiB, over 1.3 times the \
             64 MiB bound",
            grown >> 20
        );
        return;
    }
    for phase in 0..phases.len() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture"])
            .env("CACHY_MEMORY_BOUND_PHASE", phase.to_string())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "phase {phase}: {shown}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprint!(
            "{}",
            shown
                .lines()
                .find(|l| l.contains("grew"))
                .unwrap_or_default()
        );
        eprintln!();
    }
}
